"""Hypothesis against the SQL functions: random slugs, options and inputs get a valid result or a
clean error (data or integrity class, or our own RAISE), never an internal or syntax error, and
a failed call leaves no trace. Deterministic (derandomize) and small, for CI's two cores.

Each example runs in a transaction that is always rolled back, so examples share one database.
"""

from __future__ import annotations

from decimal import Decimal
from typing import Any

import psycopg
import pytest
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st
from psycopg.rows import DictRow
from psycopg.types.json import Jsonb

from pgflow.dsl._rules import slug_problem
from tests.reliability._state import database_state

FUZZ = settings(
    max_examples=120,
    derandomize=True,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
#: SQLSTATE classes of a clean refusal: data exception, integrity constraint violation, and
#: P0 (RAISE EXCEPTION in the SQL core).
CLEAN_ERROR_CLASSES = {"22", "23", "P0"}

# Mostly near-valid slugs (the interesting boundary), then anything PostgreSQL text can hold.
slugs = st.one_of(
    st.from_regex(r"[A-Za-z_][A-Za-z0-9_]{0,130}", fullmatch=True),
    st.sampled_from(["run", "a" * 128, "a" * 129, "", "1a", "a-b", "a b", "abc\n", "é"]),
    st.text(st.characters(blacklist_characters="\x00"), max_size=140),
)
options = st.one_of(st.none(), st.integers(min_value=-3, max_value=2**31 - 1))
json_scalars = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(min_value=-(2**80), max_value=2**80),
    st.floats(allow_nan=False, allow_infinity=False),
    st.text(st.characters(blacklist_characters="\x00")),
)
json_values = st.recursive(
    json_scalars,
    lambda inner: st.one_of(
        st.lists(inner, max_size=5),
        st.dictionaries(st.text(st.characters(blacklist_characters="\x00")), inner, max_size=5),
    ),
    max_leaves=40,
)


@pytest.fixture
def db(pgflow_conn: psycopg.Connection[DictRow]) -> psycopg.Connection[DictRow]:
    pgflow_conn.execute(
        """
        SELECT pgflow.create_flow('fuzz_chain');
        SELECT pgflow.add_step('fuzz_chain', 'first');
        SELECT pgflow.add_step('fuzz_chain', 'second', ARRAY['first']);
        SELECT pgflow.create_flow('fuzz_map');
        SELECT pgflow.add_step('fuzz_map', 'each', step_type => 'map');
        SELECT pgflow.add_step('fuzz_map', 'all', ARRAY['each']);
        """
    )
    return pgflow_conn


def _as_stored(value: Any) -> Any:
    """``value`` as jsonb gives it back: numbers are the decimals JSON text wrote, so a float
    with an integral value (2.0, 1.165232502312741e+17) returns as that decimal's int."""
    if isinstance(value, float) and value.is_integer():
        return int(Decimal(repr(value)))
    if isinstance(value, list):
        return [_as_stored(item) for item in value]
    if isinstance(value, dict):
        return {key: _as_stored(item) for key, item in value.items()}
    return value


def _assert_clean(error: psycopg.Error) -> None:
    sqlstate = error.sqlstate or ""
    assert sqlstate[:2] in CLEAN_ERROR_CLASSES, f"{sqlstate}: {error}"


def test_is_valid_slug_agrees_with_the_python_rule(db: psycopg.Connection[DictRow]) -> None:
    @FUZZ
    @given(st.lists(slugs, min_size=1, max_size=20))
    def check(candidates: list[str]) -> None:
        rows = db.execute(
            "SELECT s.slug, pgflow.is_valid_slug(s.slug) AS valid "
            "FROM unnest(%s::text[]) WITH ORDINALITY AS s(slug, n) ORDER BY s.n",
            (candidates,),
        ).fetchall()
        assert [(r["slug"], r["valid"]) for r in rows] == [
            (slug, slug_problem(slug) is None) for slug in candidates
        ]

    check()


def test_create_flow_and_add_step_give_a_valid_flow_or_a_clean_error(
    db: psycopg.Connection[DictRow],
) -> None:
    before = database_state(db)

    @FUZZ
    @given(
        flow_slug=slugs,
        step_slug=slugs,
        step_type=st.sampled_from(["single", "map", "fan_out"]),
        depends_on_existing=st.booleans(),
        max_attempts=options,
        base_delay=options,
        timeout=options,
        start_delay=options,
    )
    def check(
        flow_slug: str,
        step_slug: str,
        step_type: str,
        depends_on_existing: bool,
        max_attempts: int | None,
        base_delay: int | None,
        timeout: int | None,
        start_delay: int | None,
    ) -> None:
        deps = ["root"] if depends_on_existing else []
        with db.transaction(force_rollback=True):
            try:
                with db.transaction():  # a savepoint: the error must leave nothing behind
                    db.execute("SELECT pgflow.create_flow(%s)", (flow_slug,))
                    if depends_on_existing:
                        db.execute("SELECT pgflow.add_step(%s, 'root')", (flow_slug,))
                    db.execute(
                        "SELECT pgflow.add_step(%s, %s, %s, %s, %s, %s, %s, %s)",
                        (
                            flow_slug,
                            step_slug,
                            deps,
                            max_attempts,
                            base_delay,
                            timeout,
                            start_delay,
                            step_type,
                        ),
                    )
            except psycopg.Error as exc:
                _assert_clean(exc)
                assert database_state(db) == before
                event(f"refused: {type(exc).__name__}")
                return
            event("created")
            assert slug_problem(flow_slug) is None
            assert slug_problem(step_slug) is None
            step = db.execute(
                "SELECT * FROM pgflow.steps WHERE flow_slug = %s AND step_slug = %s",
                (flow_slug, step_slug),
            ).fetchone()
            assert step is not None
            assert (step["step_type"], step["deps_count"]) == (step_type, len(deps))
            assert (step["opt_max_attempts"], step["opt_timeout"]) == (max_attempts, timeout)
            assert (step["opt_base_delay"], step["opt_start_delay"]) == (base_delay, start_delay)
            assert db.execute("SELECT pgmq.metrics(%s)", (flow_slug,)).fetchone() is not None

    check()
    assert database_state(db) == before


def test_start_flow_with_random_inputs_starts_a_consistent_run_or_refuses_cleanly(
    db: psycopg.Connection[DictRow],
) -> None:
    before = database_state(db)

    @FUZZ
    @given(flow_slug=st.sampled_from(["fuzz_chain", "fuzz_map"]), payload=json_values)
    def check(flow_slug: str, payload: Any) -> None:
        with db.transaction(force_rollback=True):
            try:
                with db.transaction():
                    run = db.execute(
                        "SELECT * FROM pgflow.start_flow(%s, %s)", (flow_slug, Jsonb(payload))
                    ).fetchone()
            except psycopg.Error as exc:
                _assert_clean(exc)
                assert (flow_slug, isinstance(payload, list)) == ("fuzz_map", False)
                assert database_state(db) == before
                return
            assert run is not None
            assert run["input"] == _as_stored(payload)
            _assert_consistent(db, run["run_id"], payload)

    check()
    assert database_state(db) == before


def _assert_consistent(db: psycopg.Connection[Any], run_id: Any, payload: Any) -> None:
    """The run's steps, tasks and queue agree with each other after start_flow."""
    states = {
        r["step_slug"]: r
        for r in db.execute("SELECT * FROM pgflow.step_states WHERE run_id = %s", (run_id,))
    }
    tasks = db.execute(
        "SELECT step_slug, count(*) AS n, count(message_id) AS queued "
        "FROM pgflow.step_tasks WHERE run_id = %s GROUP BY step_slug",
        (run_id,),
    ).fetchall()
    run = db.execute("SELECT * FROM pgflow.runs WHERE run_id = %s", (run_id,)).fetchone()
    assert run is not None
    assert run["remaining_steps"] == sum(s["status"] != "completed" for s in states.values())
    for row in tasks:
        assert row["n"] == row["queued"] == states[row["step_slug"]]["initial_tasks"]
    if isinstance(payload, list) and "each" in states:
        assert states["each"]["initial_tasks"] == len(payload)


def test_deeply_nested_input_is_stored_as_given(db: psycopg.Connection[DictRow]) -> None:
    deep: Any = "bottom"
    for level in range(400):
        deep = {"level": level, "below": [deep]} if level % 2 else [deep]
    with db.transaction(force_rollback=True):
        run = db.execute("SELECT * FROM pgflow.start_flow('fuzz_chain', %s)", (Jsonb(deep),))
        row = run.fetchone()
        assert row is not None
        assert row["input"] == deep
