"""Conditional steps end to end: our worker runs the branch that is taken, the SQL core skips
the other, and a handler downstream gets None for the skipped dependency."""

from __future__ import annotations

from typing import Any

from pgflow import AsyncClient, Flow
from pgflow.worker import Worker

FAST = {"poll_interval": 0.2, "heartbeat_interval": 0.3, "summary_interval": 3600}


def review_flow(calls: list[tuple[str, Any]]) -> Flow[dict[str, int]]:
    flow: Flow[dict[str, int]] = Flow("review", timeout=5, base_delay=1)

    @flow.step
    def score(run: dict[str, int]) -> dict[str, str]:
        return {"risk": "high" if run["amount"] > 100 else "low"}

    @flow.step(score, when={"score": {"risk": "high"}})
    def manual(run: dict[str, int], score: dict[str, str]) -> str:
        calls.append(("manual", score))
        return "checked by hand"

    @flow.step(score, unless={"score": {"risk": "high"}})
    async def automatic(run: dict[str, int], score: dict[str, str]) -> str:
        calls.append(("automatic", score))
        return "checked automatically"

    @flow.step(manual, automatic)
    def decide(run: dict[str, int], manual: str | None, automatic: str | None) -> dict[str, Any]:
        calls.append(("decide", (manual, automatic)))
        return {"manual": manual, "automatic": automatic}

    @flow.step(max_attempts=2, when_exhausted="skip")
    def enrich(run: dict[str, int]) -> str:
        calls.append(("enrich", run["amount"]))
        raise RuntimeError("enrichment service down")

    @flow.step(enrich)
    def report(run: dict[str, int], enriched: str | None) -> str:
        return f"enriched={enriched}"

    return flow


async def test_branch_taken_branch_skipped_and_none_for_skipped_dependencies(
    pgflow_database_url: str,
) -> None:
    calls: list[tuple[str, Any]] = []
    async with (
        Worker([review_flow(calls)], database_url=pgflow_database_url, **FAST),
        AsyncClient(pgflow_database_url) as client,
    ):
        high = await client.start_flow_sync("review", {"amount": 500}, timeout=30)
        low = await client.start_flow_sync("review", {"amount": 5}, timeout=30)
        high_states = await client.get_run_with_states(high.run_id)
        # Rebuilt from the tables for a subscriber that comes after the run ended.
        past = [(e.event_type, e.step_slug) async for e in client.events(high.run_id)]

    assert high.status == "completed"
    assert high.output == {
        "decide": {"manual": "checked by hand", "automatic": None},
        "report": "enriched=None",
    }
    assert low.output == {
        "decide": {"manual": None, "automatic": "checked automatically"},
        "report": "enriched=None",
    }
    ran = [name for name, _ in calls]
    assert ran.count("manual") == 1
    assert ran.count("automatic") == 1
    assert ran.count("enrich") == 4  # two attempts per run, then skipped
    assert ("decide", ("checked by hand", None)) in calls

    automatic = high_states.step("automatic")
    assert (automatic.status, automatic.skip_reason) == ("skipped", "condition_unmet")
    assert automatic.skipped_at is not None
    assert high_states.tasks_of("automatic") == ()
    enrich = high_states.step("enrich")
    assert (enrich.status, enrich.skip_reason, enrich.error_message) == (
        "skipped",
        "handler_failed",
        "RuntimeError: enrichment service down",
    )
    assert high_states.step("manual").skip_reason is None
    assert ("step:skipped", "automatic") in past
    assert ("step:skipped", "enrich") in past
    assert past.index(("step:started", "enrich")) < past.index(("step:skipped", "enrich"))
    assert past[-1] == ("run:completed", None)
