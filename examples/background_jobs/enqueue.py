"""Enqueue the jobs of one sign-up: the welcome e-mail now, the reminder later.

python -m examples.background_jobs.enqueue ada@example.com Ada
"""

from __future__ import annotations

import sys
from datetime import timedelta

from examples.background_jobs.jobs import Email, send_trial_reminder, send_welcome_email
from pgflow import Client
from pgflow.client import RunHandle

#: How long a trial lasts; the reminder goes out a day before it ends.
TRIAL = timedelta(days=14)


def enqueue_signup_jobs(
    client: Client, email: Email, *, reminder_in: timedelta = TRIAL - timedelta(days=1)
) -> tuple[RunHandle, RunHandle]:
    """The welcome e-mail as soon as a worker is free, the reminder after ``reminder_in``."""
    welcome = client.enqueue(send_welcome_email, email)
    reminder = client.enqueue_in(send_trial_reminder, email, reminder_in)
    return welcome, reminder


def main(argv: list[str]) -> None:
    to, name = argv if len(argv) == 2 else ("ada@example.com", "Ada")
    with Client() as client:
        welcome, reminder = enqueue_signup_jobs(client, {"to": to, "name": name})
        print("welcome:", welcome.wait(timeout=60).output)
        print("reminder run", reminder.run_id, "is", reminder.get().status)


if __name__ == "__main__":
    main(sys.argv[1:])
