"""The differential harness's normalisers accept exactly what they document, nothing more."""

from __future__ import annotations

from typing import Any

from ._diff_harness import canonical_taskless_cascade_order


def _cascade(step: str, topic: str = "pgflow:run:run0") -> dict[str, Any]:
    payload = {"event_type": "step:completed", "step_slug": step, "remaining_tasks": 0}
    return {"event": f"step:{step}:completed", "topic": topic, "payload": payload}


def _picture(events: list[dict[str, Any]]) -> dict[str, Any]:
    # b is a map over []: its map children c and d (and d's child e) complete in the cascade.
    deps = [("c", "b"), ("d", "b"), ("e", "d")]
    return {
        "deps": [{"step_slug": s, "dep_slug": d} for s, d in deps],
        "events": events,
    }


def _slugs(picture: dict[str, Any]) -> list[str]:
    return [e["payload"]["step_slug"] for e in picture["events"]]


def test_siblings_of_one_cascade_compare_in_one_order() -> None:
    # The order two upstream databases were seen to disagree on.
    first = _picture([_cascade("b"), _cascade("c"), _cascade("d"), _cascade("e")])
    second = _picture([_cascade("b"), _cascade("d"), _cascade("c"), _cascade("e")])
    canonical_taskless_cascade_order(first)
    canonical_taskless_cascade_order(second)
    assert _slugs(first) == _slugs(second) == ["b", "c", "d", "e"]


def test_a_step_announced_before_its_dependency_is_left_to_be_reported() -> None:
    wrong = _picture([_cascade("b"), _cascade("e"), _cascade("d"), _cascade("c")])
    canonical_taskless_cascade_order(wrong)
    assert _slugs(wrong) == ["b", "e", "d", "c"]


def test_other_events_and_other_runs_are_not_reordered() -> None:
    started = {"event": "step:x:started", "topic": "pgflow:run:run0", "payload": {"step_slug": "x"}}
    picture = _picture(
        [_cascade("d"), started, _cascade("c"), _cascade("d", "pgflow:run:run1"), _cascade("c")]
    )
    canonical_taskless_cascade_order(picture)
    assert _slugs(picture) == ["d", "x", "c", "d", "c"]
