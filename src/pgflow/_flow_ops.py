"""Operations on flow definitions in the database (sans-IO; see :mod:`pgflow._ops`)."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Literal

from psycopg import sql

from pgflow._ops import Operation
from pgflow.dsl._compile import compile_flow
from pgflow.dsl._definition import SQL_FLOW_DEFAULTS, FlowDefinition
from pgflow.dsl._rules import CONDITION_OPTIONS, STEP_OPTIONS
from pgflow.errors import FlowShapeMismatchError

EnsureStatus = Literal["created", "verified", "updated", "recreated"]


@dataclass(frozen=True)
class EnsureResult:
    """What ``ensure_flow`` found and did."""

    flow_slug: str
    status: EnsureStatus
    differences: tuple[str, ...] = ()
    deleted_runs: int = 0


@dataclass(frozen=True)
class FlowSummary:
    flow_slug: str
    max_attempts: int
    base_delay: int
    timeout: int
    step_count: int
    created_at: datetime


# Same lock as upstream's ensure_flow_compiled, so that our workers and TypeScript workers
# compiling the same flow at start-up wait for each other.
_LOCK = "SELECT pg_advisory_xact_lock(1, hashtext(%s))"

# The condition columns are read through the row's JSON so that a core without them (upstream
# 0.8.1) reads as NULL, which stands for the defaults.
_READ_STEPS = """
SELECT s.step_slug, s.step_type, s.step_index,
       s.opt_max_attempts, s.opt_base_delay, s.opt_timeout, s.opt_start_delay,
       coalesce((SELECT array_agg(d.dep_slug ORDER BY d.dep_slug)
                 FROM pgflow.deps AS d
                 WHERE d.flow_slug = s.flow_slug AND d.step_slug = s.step_slug), '{}') AS deps,
       j.step -> 'required_input_pattern' AS required_input_pattern,
       j.step -> 'forbidden_input_pattern' AS forbidden_input_pattern,
       coalesce(j.step ->> 'when_unmet', 'skip') AS when_unmet,
       coalesce(j.step ->> 'when_exhausted', 'fail') AS when_exhausted
FROM pgflow.steps AS s
CROSS JOIN LATERAL (SELECT to_jsonb(s) AS step) AS j
WHERE s.flow_slug = %s
ORDER BY s.step_index
"""


def _create(definition: FlowDefinition) -> Operation[None]:
    for statement in compile_flow(definition):
        yield statement, None


def compare_shapes(definition: FlowDefinition, db_steps: list[dict[str, Any]]) -> list[str]:
    """Differences in steps, their order, types, dependencies and conditions (options are not
    shape)."""
    differences: list[str] = []
    code = definition.shape()
    database = [
        (
            r["step_slug"],
            r["step_type"],
            tuple(r["deps"]),
            (
                r["required_input_pattern"],
                r["forbidden_input_pattern"],
                r["when_unmet"],
                r["when_exhausted"],
            ),
        )
        for r in db_steps
    ]
    if len(code) != len(database):
        differences.append(
            f"step count differs: code has {len(code)}, database has {len(database)}"
        )
    for index, (mine, theirs) in enumerate(zip(code, database, strict=False)):
        if mine[0] != theirs[0]:
            differences.append(f"step {index}: code has {mine[0]!r}, database has {theirs[0]!r}")
            continue
        if mine[1] != theirs[1]:
            differences.append(
                f"step {mine[0]!r}: type differs: code {mine[1]!r}, database {theirs[1]!r}"
            )
        if mine[2] != theirs[2]:
            differences.append(
                f"step {mine[0]!r}: dependencies differ: code [{', '.join(mine[2])}], "
                f"database [{', '.join(theirs[2])}]"
            )
        for name, mine_value, their_value in zip(
            CONDITION_OPTIONS, mine[3], theirs[3], strict=True
        ):
            if mine_value != their_value:
                differences.append(
                    f"step {mine[0]!r}: {name} differs: code {mine_value!r}, "
                    f"database {their_value!r}"
                )
    for extra in code[len(database) :]:
        differences.append(f"step {extra[0]!r} is missing in the database")
    for extra in database[len(code) :]:
        differences.append(f"step {extra[0]!r} is in the database but not in the code")
    return differences


def _option_updates(
    definition: FlowDefinition, flow_row: Mapping[str, Any], db_steps: list[dict[str, Any]]
) -> list[tuple[sql.Composed, tuple[Any, ...]]]:
    updates: list[tuple[sql.Composed, tuple[Any, ...]]] = []
    wanted_flow = {k: definition.options.get(k, v) for k, v in SQL_FLOW_DEFAULTS.items()}
    changed = {k: v for k, v in wanted_flow.items() if flow_row[f"opt_{k}"] != v}
    if changed:
        assignments = sql.SQL(", ").join(
            sql.SQL("{} = %s").format(sql.Identifier(f"opt_{k}")) for k in changed
        )
        updates.append(
            (
                sql.SQL("UPDATE pgflow.flows SET {} WHERE flow_slug = %s").format(assignments),
                (*changed.values(), definition.slug),
            )
        )
    by_slug = {r["step_slug"]: r for r in db_steps}
    for step in definition.steps:
        row = by_slug[step.slug]
        options = step.options or {}
        step_changed = {
            k: options.get(k) for k in STEP_OPTIONS if row[f"opt_{k}"] != options.get(k)
        }
        if step_changed:
            assignments = sql.SQL(", ").join(
                sql.SQL("{} = %s").format(sql.Identifier(f"opt_{k}")) for k in step_changed
            )
            updates.append(
                (
                    sql.SQL(
                        "UPDATE pgflow.steps SET {} WHERE flow_slug = %s AND step_slug = %s"
                    ).format(assignments),
                    (*step_changed.values(), definition.slug, step.slug),
                )
            )
    return updates


def ensure_flow(definition: FlowDefinition, *, recreate: bool = False) -> Operation[EnsureResult]:
    """Create the flow if absent; verify it if equal; apply option changes without data loss;
    on a shape difference refuse (or, with ``recreate``, delete the flow and its runs and create
    it anew)."""
    slug = definition.slug
    yield _LOCK, (slug,)
    flows = yield (
        "SELECT opt_max_attempts, opt_base_delay, opt_timeout FROM pgflow.flows "
        "WHERE flow_slug = %s",
        (slug,),
    )
    if not flows:
        yield from _create(definition)
        return EnsureResult(slug, "created")
    db_steps = yield _READ_STEPS, (slug,)
    differences = compare_shapes(definition, db_steps)
    if differences:
        counted = yield "SELECT count(*) AS runs FROM pgflow.runs WHERE flow_slug = %s", (slug,)
        runs = int(counted[0]["runs"])
        if not recreate:
            raise FlowShapeMismatchError(slug, differences, runs)
        yield "SELECT pgflow.delete_flow_and_data(%s)", (slug,)
        yield from _create(definition)
        return EnsureResult(slug, "recreated", tuple(differences), runs)
    updates = _option_updates(definition, flows[0], db_steps)
    for statement, params in updates:
        yield statement.as_string(None), params
    return EnsureResult(slug, "updated" if updates else "verified")


def delete_flow(slug: str) -> Operation[bool]:
    """Delete a flow with its runs, tasks and queue; False when there was no such flow."""
    yield _LOCK, (slug,)
    found = yield "SELECT 1 AS found FROM pgflow.flows WHERE flow_slug = %s", (slug,)
    yield "SELECT pgflow.delete_flow_and_data(%s)", (slug,)
    return bool(found)


def flow_exists(slug: str) -> Operation[bool]:
    rows = yield "SELECT EXISTS (SELECT 1 FROM pgflow.flows WHERE flow_slug = %s) AS e", (slug,)
    return bool(rows[0]["e"])


def list_flows() -> Operation[list[FlowSummary]]:
    rows = yield (
        """
        SELECT f.flow_slug, f.opt_max_attempts, f.opt_base_delay, f.opt_timeout, f.created_at,
               (SELECT count(*) FROM pgflow.steps AS s WHERE s.flow_slug = f.flow_slug) AS steps
        FROM pgflow.flows AS f ORDER BY f.flow_slug
        """,
        None,
    )
    return [
        FlowSummary(
            flow_slug=r["flow_slug"],
            max_attempts=r["opt_max_attempts"],
            base_delay=r["opt_base_delay"],
            timeout=r["opt_timeout"],
            step_count=int(r["steps"]),
            created_at=r["created_at"],
        )
        for r in rows
    ]
