"""examples/background_jobs: a job now, a job later (enqueue_in), each written once."""

from __future__ import annotations

import time
from datetime import timedelta
from typing import Any

import psycopg
import pytest
from examples.background_jobs.enqueue import enqueue_signup_jobs, main
from examples.background_jobs.jobs import send_trial_reminder, send_welcome_email

from pgflow import Client
from pgflow.testing import running_worker

JOBS = [send_welcome_email, send_trial_reminder]


@pytest.fixture
def outbox(pgflow_conn: psycopg.Connection[Any]) -> psycopg.Connection[Any]:
    """Where the jobs write (they create the table on first use)."""
    return pgflow_conn


def test_the_reminder_waits_for_its_delay_and_the_welcome_does_not(
    pgflow_database_url: str, outbox: psycopg.Connection[Any]
) -> None:
    with Client(pgflow_database_url) as client, running_worker(JOBS, pgflow_database_url):
        enqueued = time.monotonic()
        welcome, reminder = enqueue_signup_jobs(
            client, {"to": "ada@example.com", "name": "Ada"}, reminder_in=timedelta(seconds=3)
        )
        assert welcome.wait(timeout=30).status == "completed"
        assert reminder.get().status == "started"  # its task is still invisible
        assert reminder.wait(timeout=30).status == "completed"
        waited = time.monotonic() - enqueued
        assert welcome.get().output == {"send_welcome_email": {"outbox_id": 1}}
    assert waited >= 3
    subjects = outbox.execute("SELECT subject, run_id FROM outbox ORDER BY id").fetchall()
    assert subjects == [
        {"subject": "Welcome, Ada!", "run_id": welcome.run_id},
        {"subject": "Your trial ends tomorrow", "run_id": reminder.run_id},
    ]


def test_enqueue_script_waits_for_the_welcome_and_leaves_the_reminder_queued(
    pgflow_database_url: str,
    outbox: psycopg.Connection[Any],
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    monkeypatch.setenv("PGFLOW_DATABASE_URL", pgflow_database_url)
    with running_worker(JOBS, pgflow_database_url):
        main(["grace@example.com", "Grace"])
    printed = capsys.readouterr().out.splitlines()
    assert printed[0] == "welcome: {'send_welcome_email': {'outbox_id': 1}}"
    assert printed[1].endswith("is started")
    queued = outbox.execute(
        "SELECT t.status, q.vt > now() + interval '12 days' AS in_twelve_days_or_more "
        "FROM pgflow.step_tasks AS t JOIN pgmq.q_send_trial_reminder AS q "
        "ON q.msg_id = t.message_id WHERE t.flow_slug = 'send_trial_reminder'"
    ).fetchall()
    assert queued == [{"status": "queued", "in_twelve_days_or_more": True}]
