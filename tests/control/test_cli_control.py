"""`pgflow cancel`, `pgflow retry` and `pgflow resume`: the resulting run, as text or JSON."""

from __future__ import annotations

import json
import uuid

from pgflow.client import Client
from tests._helpers import run_cli


def test_cancel_retry_resume_print_the_resulting_run(pgflow_database_url: str) -> None:
    with Client(pgflow_database_url) as client:
        client.upsert_flow("cli_ctl", [{"slug": "a"}])
        run_id = client.start_flow("cli_ctl", {"x": 1}).run_id

    cancelled = run_cli("cancel", str(run_id), "--reason", "by hand", "-d", pgflow_database_url)
    assert cancelled.returncode == 0, cancelled.stderr
    assert cancelled.stdout.strip() == f"run {run_id} (cli_ctl): cancelled, reason: by hand"

    retried = run_cli("retry", str(run_id), "--json", "-d", pgflow_database_url)
    assert retried.returncode == 0, retried.stderr
    new = json.loads(retried.stdout)
    assert (new["status"], new["retry_of"], new["input"]) == ("started", str(run_id), {"x": 1})

    resumed = run_cli("resume", str(run_id), "-d", pgflow_database_url)
    assert resumed.returncode == 0, resumed.stderr
    assert resumed.stdout.strip() == (
        f"run {run_id} (cli_ctl): started, resumed 1 time(s), 1 step(s) to go"
    )
    with Client(pgflow_database_url) as client:
        assert client.get_run(run_id).resumed_count == 1


def test_refusals_are_one_line_errors(pgflow_database_url: str) -> None:
    with Client(pgflow_database_url) as client:
        client.upsert_flow("cli_ctl", [{"slug": "a"}])
        run_id = client.start_flow("cli_ctl", {}).run_id
    missing = uuid.uuid4()

    unknown = run_cli("cancel", str(missing), "-d", pgflow_database_url)
    assert unknown.returncode == 1
    assert unknown.stderr.strip() == f"error: run {missing} does not exist"

    running = run_cli("resume", str(run_id), "-d", pgflow_database_url)
    assert running.returncode == 1
    assert running.stderr.strip() == (
        f"error: run {run_id} is started: only a failed or cancelled run can be resumed"
    )

    not_an_id = run_cli("retry", "nope", "-d", pgflow_database_url)
    assert not_an_id.returncode == 1
    assert "not a run id" in not_an_id.stderr
    assert "Traceback" not in unknown.stderr + running.stderr + not_an_id.stderr
