"""poll_for_tasks: deprecated, answers with a NOTICE and no tasks."""

from __future__ import annotations

from .conftest import Core, q


def test_returns_nothing_and_warns(core: Core) -> None:
    core.flow("f", [("a", [])])
    core.start_flow("f", {})
    notices: list[tuple[str | None, str | None]] = []
    # The Diagnostic object is only valid inside the handler: copy what is needed.
    core.conn.add_notice_handler(
        lambda d: notices.append((d.severity_nonlocalized, d.message_primary))
    )
    assert q(core.conn, "SELECT * FROM pgflow.poll_for_tasks('f', 2, 10)") == []
    assert (
        q(
            core.conn,
            "SELECT * FROM pgflow.poll_for_tasks(queue_name => 'f', vt => 2, qty => 10,"
            " max_poll_seconds => 1, poll_interval_ms => 50)",
        )
        == []
    )
    assert len(notices) == 2
    assert notices[0][0] == "NOTICE"
    assert notices[0][1] == (
        "DEPRECATED: poll_for_tasks is deprecated and will be removed."
        ' Please update pgflow via "npx pgflow install".'
    )
    assert (
        core.task(q(core.conn, "SELECT run_id FROM pgflow.runs")[0]["run_id"], "a")["status"]
        == "queued"
    )
    assert core.queue("f")[0]["read_ct"] == 0
