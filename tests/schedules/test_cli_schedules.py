"""``pgflow schedules``: the listing (table and JSON) and add/remove/enable/disable."""

from __future__ import annotations

import json

from tests._helpers import run_cli

from .conftest import Conn, make_flow


def test_schedules_commands(pgflow_database_url: str, pgflow_conn: Conn) -> None:
    make_flow(pgflow_conn)
    url = ["-d", pgflow_database_url]
    empty = run_cli("schedules", *url, "--json")
    assert (empty.returncode, json.loads(empty.stdout)) == (0, [])

    added = run_cli(
        "schedules", "add", "tick", "*/5 * * * *", *url, "--input", '{"n": 1}', "--name", "five"
    )
    assert added.returncode == 0, added.stderr
    assert "schedule five: next at" in added.stdout
    run_cli("schedules", "add", "tick", "0 9 * * mon", *url, "--timezone", "Europe/Paris")

    listed = json.loads(run_cli("schedules", *url, "--json").stdout)
    assert [(s["name"], s["cron"], s["timezone"], s["input"]) for s in listed] == [
        ("five", "*/5 * * * *", "UTC", {"n": 1}),
        ("tick", "0 9 * * mon", "Europe/Paris", None),
    ]
    assert all(s["next_occurrence_at"] and s["enabled"] for s in listed)

    table = run_cli("schedules", *url)
    assert table.returncode == 0
    for text in ("name", "flow", "cron", "timezone", "enabled", "last", "next", "five"):
        assert text in table.stdout
    assert "Europe/Paris" in table.stdout

    assert run_cli("schedules", "disable", "five", *url).returncode == 0
    listed = json.loads(run_cli("schedules", *url, "--json", "--flow", "tick").stdout)
    assert [(s["name"], s["enabled"], s["next_occurrence_at"]) for s in listed] == [
        ("five", False, None),
        ("tick", True, listed[1]["next_occurrence_at"]),
    ]
    enabled = run_cli("schedules", "enable", "five", *url)
    assert "schedule five enabled, next at" in enabled.stdout

    removed = run_cli("schedules", "remove", "five", *url)
    assert removed.returncode == 0
    again = run_cli("schedules", "remove", "five", *url)
    assert again.returncode == 1
    assert "schedule 'five' does not exist" in again.stderr


def test_mistakes_are_one_line_errors(pgflow_database_url: str, pgflow_conn: Conn) -> None:
    make_flow(pgflow_conn)
    url = ["-d", pgflow_database_url]
    for args, message in [
        (("add", "tick", "* * *"), "a cron expression has 5 fields"),
        (("add", "tick", "* * * * *", "--input", "{nope"), "--input is not JSON"),
        (("add", "ghost", "* * * * *"), "flow 'ghost' does not exist"),
        (("enable", "ghost"), "schedule 'ghost' does not exist"),
    ]:
        result = run_cli("schedules", *args, *url)
        assert result.returncode == 1, args
        assert message in result.stderr, (args, result.stderr)
        assert "Traceback" not in result.stderr
    assert json.loads(run_cli("schedules", *url, "--json").stdout) == []


def test_worker_has_a_no_scheduler_flag() -> None:
    result = run_cli("worker", "--help")
    assert result.returncode == 0
    assert "--no-scheduler" in result.stdout
