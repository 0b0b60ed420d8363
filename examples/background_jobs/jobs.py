"""Two jobs of a sign-up: a welcome e-mail now, a reminder when the trial is about to end.

A job is a flow of one step, so it gets retries, timeouts, the run history and the monitoring
of any flow. Both jobs write to an ``outbox`` table that a mail relay would drain; they are
transactional, so the row commits with the task's completion and a retried job never sends
twice.

Run it::

    pgflow worker examples.background_jobs.jobs
"""

from __future__ import annotations

from typing import TypedDict

from pgflow import Context, job

OUTBOX_SQL = """
CREATE TABLE IF NOT EXISTS outbox (
    id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    recipient text NOT NULL,
    subject text NOT NULL,
    run_id uuid NOT NULL UNIQUE,
    queued_at timestamptz NOT NULL DEFAULT now()
)
"""


class Email(TypedDict):
    to: str
    name: str


def _queue_mail(ctx: Context, recipient: str, subject: str) -> int:
    ctx.conn.execute(OUTBOX_SQL)  # an application would create it in a migration
    row = ctx.conn.execute(
        "INSERT INTO outbox (recipient, subject, run_id) VALUES (%s, %s, %s) RETURNING id",
        (recipient, subject, ctx.run_id),
    ).fetchone()
    return int(row[0])


@job(max_attempts=5, base_delay=2, timeout=10, transactional=True)
def send_welcome_email(email: Email, ctx: Context) -> dict[str, int]:
    return {"outbox_id": _queue_mail(ctx, email["to"], f"Welcome, {email['name']}!")}


@job(max_attempts=5, base_delay=2, timeout=10, transactional=True)
def send_trial_reminder(email: Email, ctx: Context) -> dict[str, int]:
    return {"outbox_id": _queue_mail(ctx, email["to"], "Your trial ends tomorrow")}
