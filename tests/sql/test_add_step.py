"""add_step: step definitions, dependencies, indexes and their guards."""

from __future__ import annotations

import psycopg
import pytest

from .conftest import Core, q


def test_defaults_and_index_order(core: Core) -> None:
    core.create_flow("f")
    a = core.add_step("f", "a")
    b = core.add_step("f", "b", ["a"])
    c = core.add_step("f", "c", ["a", "b"], max_attempts=5, base_delay=2, timeout=30, start_delay=7)
    assert (a["step_index"], b["step_index"], c["step_index"]) == (0, 1, 2)
    assert (a["step_type"], a["deps_count"], a["opt_max_attempts"], a["opt_start_delay"]) == (
        "single",
        0,
        None,
        None,
    )
    assert b["deps_count"] == 1
    assert (
        c["deps_count"],
        c["opt_max_attempts"],
        c["opt_base_delay"],
        c["opt_timeout"],
        c["opt_start_delay"],
    ) == (
        2,
        5,
        2,
        30,
        7,
    )
    deps = q(core.conn, "SELECT dep_slug, step_slug FROM pgflow.deps ORDER BY 2, 1")
    assert [(d["dep_slug"], d["step_slug"]) for d in deps] == [("a", "b"), ("a", "c"), ("b", "c")]


def test_index_is_per_flow(core: Core) -> None:
    core.create_flow("f")
    core.create_flow("g")
    core.add_step("f", "a")
    assert core.add_step("g", "a")["step_index"] == 0


def test_map_steps(core: Core) -> None:
    core.create_flow("f")
    root = core.add_step("f", "root_map", step_type="map")
    child = core.add_step("f", "child_map", ["root_map"], step_type="map")
    assert (root["step_type"], root["deps_count"]) == ("map", 0)
    assert (child["step_type"], child["deps_count"]) == ("map", 1)


def test_map_step_with_two_deps_is_refused(core: Core) -> None:
    core.flow("f", [("a", []), ("b", [])])
    with pytest.raises(
        psycopg.errors.RaiseException,
        match=r'^Map step "m" can have at most one dependency, but 2 were provided: a, b',
    ):
        core.add_step("f", "m", ["a", "b"], step_type="map")


def test_repeat_is_idempotent_and_keeps_options(core: Core) -> None:
    core.create_flow("f")
    first = core.add_step("f", "a", max_attempts=4)
    again = core.add_step("f", "a", max_attempts=9, timeout=3)
    assert again == first
    assert len(q(core.conn, "SELECT * FROM pgflow.steps")) == 1


def test_repeat_with_same_deps_adds_nothing(core: Core) -> None:
    core.flow("f", [("a", []), ("b", ["a"])])
    core.add_step("f", "b", ["a"])
    assert len(q(core.conn, "SELECT * FROM pgflow.deps")) == 1


def test_missing_flow_is_a_fk_error(core: Core) -> None:
    with pytest.raises(psycopg.errors.ForeignKeyViolation, match="steps_flow_slug_fkey"):
        core.add_step("nope", "a")


def test_unknown_dependency_is_a_fk_error(core: Core) -> None:
    core.create_flow("f")
    with pytest.raises(psycopg.errors.ForeignKeyViolation, match="deps_flow_slug_dep_slug_fkey"):
        core.add_step("f", "b", ["ghost"])


def test_self_dependency_hits_deps_check(core: Core) -> None:
    core.create_flow("f")
    with pytest.raises(psycopg.errors.CheckViolation, match="deps_check"):
        core.add_step("f", "a", ["a"])


@pytest.mark.parametrize("slug", ["run", "9lives", "x" * 129, "a-b"])
def test_invalid_step_slug(core: Core, slug: str) -> None:
    core.create_flow("f")
    with pytest.raises(psycopg.errors.CheckViolation, match="steps_step_slug_check"):
        core.add_step("f", slug)


def test_longest_slug_is_accepted(core: Core) -> None:
    core.create_flow("f")
    assert core.add_step("f", "s" * 128)["step_slug"] == "s" * 128


def test_unknown_step_type(core: Core) -> None:
    core.create_flow("f")
    with pytest.raises(psycopg.errors.CheckViolation, match="steps_step_type_check"):
        core.add_step("f", "a", step_type="array")


@pytest.mark.parametrize(
    ("opts", "constraint"),
    [
        ({"max_attempts": -1}, "opt_max_attempts_is_nonnegative"),
        ({"base_delay": -1}, "opt_base_delay_is_nonnegative"),
        ({"timeout": 0}, "opt_timeout_is_positive"),
        ({"start_delay": -1}, "opt_start_delay_is_nonnegative"),
    ],
)
def test_option_checks(core: Core, opts: dict[str, int], constraint: str) -> None:
    core.create_flow("f")
    with pytest.raises(psycopg.errors.CheckViolation, match=constraint):
        core.add_step("f", "a", **opts)


def test_positional_call_like_compiled_flows(core: Core) -> None:
    core.conn.execute("SELECT pgflow.create_flow('f')")
    core.conn.execute("SELECT pgflow.add_step('f', 'a')")
    core.conn.execute(
        "SELECT pgflow.add_step('f', 'b', ARRAY['a'], max_attempts => 2, step_type => 'map')"
    )
    rows = q(
        core.conn,
        "SELECT step_slug, step_type, opt_max_attempts FROM pgflow.steps ORDER BY step_index",
    )
    assert rows == [
        {"step_slug": "a", "step_type": "single", "opt_max_attempts": None},
        {"step_slug": "b", "step_type": "map", "opt_max_attempts": 2},
    ]
