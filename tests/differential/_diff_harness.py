"""Drive two pgflow cores in lock-step and compare everything a caller can observe of them.

Each action (a call of the public SQL API, the way a worker or client makes it) runs against
the upstream core first, then ours; after it both databases are captured and normalised, and
any difference fails the test with the action history:

* function results (rows, in the order that is contractual), errors (SQLSTATE + message) and
  notices;
* ``flows``, ``steps``, ``deps``, ``runs``, ``step_states``, ``step_tasks``: every upstream
  column (additive columns of ours are ignored, a missing one is a difference);
* the flow's queue (``pgmq.meta`` row), ``pgmq.q_<flow>`` and archive ``pgmq.a_<flow>``:
  messages, read counts, visibility;
* the realtime events recorded by the stub, in send order.

Normalisation, so that only behaviour is compared:

* Timestamps become ``@k``: the index of the action whose time window holds them (the window
  runs from ``clock_timestamp()`` just before the action to just after it). That keeps the
  order of events between actions and the "set in the same call" relation, and it ignores
  clock noise. Event payload timestamps (``*_at`` keys) are treated the same.
* A message's visibility time becomes ``@k+Ns``: set by action ``k`` to ``N`` whole seconds
  after the action began (``floor``; an action takes far less than a second).
* Message ids become their rank among the flow's messages (queue and archive together): the
  sequences of two databases need not agree, the order of sends must.
* Run ids become ``run0``, ``run1``... (they are chosen by the test, equal in both cores);
  the worker id becomes ``worker``; the random ``id`` the realtime stub adds becomes ``<id>``.
* JSON ``null`` and SQL NULL stay distinct (``JSON_NULL`` vs ``None``).

Time is simulated where it would make tests slow or flaky: a read (``Differential.read``) first
moves every message of the queue to "visible now", as if the clock had jumped past every delay,
then reads with ``pgmq.read``; visibility times themselves are compared before that, after
every action.

Nothing is normalised away beyond this list, except documented, deliberate improvements of ours
over upstream, each a function in ``DELIBERATE_DIFFERENCES`` that accepts exactly that one
difference (so far: ``start_tasks`` extending the message visibility to the step timeout).
"""

from __future__ import annotations

import bisect
import itertools
import json
import math
import re
import uuid
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

import psycopg
from psycopg import sql
from psycopg.rows import dict_row
from psycopg.types.json import Jsonb, set_json_loads

Conn = psycopg.Connection[dict[str, Any]]
#: An action: given the side it runs on, what to do with that side's connection.
Work = Callable[["Side"], Callable[[Conn], list[dict[str, Any]]]]

WORKER_ID = uuid.UUID("00000000-0000-4000-8000-00000000feed")
_NO_SUCH_MSG_ID = 2**40  # a message id no test queue reaches
_example_numbers = itertools.count(1)


class _Marker:
    def __init__(self, name: str) -> None:
        self.name = name

    def __repr__(self) -> str:
        return self.name


#: JSON ``null`` as loaded from jsonb (SQL NULL loads as ``None``).
JSON_NULL: Any = _Marker("JSON_NULL")
#: An argument passed as SQL NULL (as opposed to ``Jsonb(None)``, the JSON ``null``).
SQL_NULL: Any = _Marker("SQL_NULL")


def _json_loads(data: str | bytes) -> Any:
    value = json.loads(data)
    return JSON_NULL if value is None else value


def json_param(value: Any) -> Jsonb | None:
    """A drawn JSON value as a query parameter: ``SQL_NULL`` -> NULL, anything else jsonb."""
    if value is SQL_NULL:
        return None
    return Jsonb(_plain(value))


def _plain(value: Any) -> Any:
    if value is JSON_NULL:
        return None
    if isinstance(value, dict):
        return {k: _plain(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_plain(v) for v in value]
    return value


class DifferentialMismatch(AssertionError):
    """The two cores disagreed on something observable."""


@dataclass(frozen=True)
class Outcome:
    rows: list[dict[str, Any]] | None
    error: tuple[str | None, str | None] | None = None
    notices: tuple[tuple[str | None, str | None], ...] = ()


def new_example_id() -> int:
    return next(_example_numbers)


def run_uuid(example: int, run: int) -> uuid.UUID:
    """A run id chosen by the test: distinct per example and run, equal in both cores."""
    return uuid.UUID(f"{example:08x}-0000-4000-8000-{run:012x}")


# -- one core -------------------------------------------------------------------------------


class Side:
    """One database with one pgflow core, and what is needed to normalise what it shows."""

    def __init__(self, name: str, url: str) -> None:
        self.name = name
        self.conn: Conn = psycopg.connect(url, autocommit=True, row_factory=dict_row)
        set_json_loads(_json_loads, self.conn)
        self.notices: list[tuple[str | None, str | None]] = []
        self.conn.add_notice_handler(
            lambda diag: self.notices.append((diag.severity_nonlocalized, diag.message_primary))
        )
        self.conn.execute(
            "INSERT INTO pgflow.workers (worker_id, queue_name, function_name)"
            " VALUES (%s, 'differential', 'differential') ON CONFLICT DO NOTHING",
            (WORKER_ID,),
        )
        self.extra_columns: dict[str, set[str]] = {}
        self.reset()

    def close(self) -> None:
        self.conn.close()

    def reset(self) -> None:
        """Start a new example: forget windows, visibility history and recorded events."""
        self.windows: list[tuple[datetime, datetime]] = []
        self.window_starts: list[datetime] = []
        self.vt_seen: dict[int, tuple[datetime, str]] = {}
        self.ranks: dict[int, int] = {}
        self.ids_by_rank: list[int] = []
        self.run_labels: dict[str, str] = {}
        self.conn.execute("TRUNCATE realtime.messages")

    # -- acting ---------------------------------------------------------------------------
    def _clock(self) -> datetime:
        row = self.conn.execute("SELECT clock_timestamp() AS t").fetchone()
        assert row is not None
        value: datetime = row["t"]
        return value

    def act(self, work: Callable[[Conn], list[dict[str, Any]]]) -> Outcome:
        """Run ``work`` in a new time window; an error becomes part of the outcome."""
        start = self._clock()
        self.notices.clear()
        try:
            rows: list[dict[str, Any]] | None = work(self.conn)
            error = None
        except psycopg.Error as exc:
            rows, error = None, (exc.sqlstate, exc.diag.message_primary)
        outcome = Outcome(rows, error, tuple(self.notices))
        end = self._clock()
        self.windows.append((start, end))
        self.window_starts.append(start)
        return outcome

    def msg_id(self, rank: int) -> int:
        """The message id of this core for a message rank (a never-used id when unknown)."""
        return self.ids_by_rank[rank] if 0 <= rank < len(self.ids_by_rank) else _NO_SUCH_MSG_ID

    # -- normalising ----------------------------------------------------------------------
    def ts(self, value: datetime | None) -> str | None:
        if value is None:
            return None
        if value.tzinfo is None:  # no such column in upstream's tables: never compared
            return "<timestamp without time zone>"
        i = bisect.bisect_right(self.window_starts, value) - 1
        if i >= 0 and value <= self.windows[i][1]:
            return f"@{i}"
        return f"@{i}~"  # between windows: never produced by a sane core

    def _ts_text(self, text: str) -> str:
        try:
            parsed = datetime.fromisoformat(text)
        except ValueError:
            return text
        return self.ts(parsed) or text

    def vt(self, msg_id: int, value: datetime) -> str:
        seen = self.vt_seen.get(msg_id)
        if seen is not None and seen[0] == value:
            return seen[1]
        k = len(self.windows) - 1
        seconds = math.floor((value - self.windows[k][0]).total_seconds())
        label = f"@{k}{seconds:+d}s"
        self.vt_seen[msg_id] = (value, label)
        return label

    def rank(self, msg_id: int | None) -> str | None:
        if msg_id is None:
            return None
        found = self.ranks.get(msg_id)
        return f"m{found}" if found is not None else f"m?{msg_id}"

    def json(self, value: Any, key: str = "") -> Any:
        if isinstance(value, dict):
            return {k: self.json(v, k) for k, v in value.items()}
        if isinstance(value, list):
            return [self.json(v) for v in value]
        if isinstance(value, str):
            if value in self.run_labels:
                return self.run_labels[value]
            if key.endswith("_at"):
                return self._ts_text(value)
        return value

    def value(self, column: str, value: Any) -> Any:
        if column in {"message_id", "msg_id"}:
            return self.rank(value)
        if isinstance(value, datetime):
            return self.ts(value)
        if isinstance(value, uuid.UUID):
            if value == WORKER_ID:
                return "worker"
            return self.run_labels.get(str(value), "uuid?")
        if isinstance(value, (dict, list, str)):
            return self.json(value, column)
        return value

    def row(self, row: dict[str, Any]) -> dict[str, Any]:
        return {column: self.value(column, v) for column, v in row.items()}

    # -- capturing ------------------------------------------------------------------------
    def _rows(
        self, query: sql.Composable | str, params: Sequence[Any] = ()
    ) -> list[dict[str, Any]]:
        return self.conn.execute(query, params or None).fetchall()  # type: ignore[arg-type]

    def capture(self, flow_slug: str) -> dict[str, Any]:
        """Everything observable about this flow, normalised."""
        queue = self._queue_rows(f"q_{flow_slug}")
        archive = self._queue_rows(f"a_{flow_slug}")
        self.ids_by_rank = sorted({r["msg_id"] for r in (queue or []) + (archive or [])})
        self.ranks = {msg_id: i for i, msg_id in enumerate(self.ids_by_rank)}
        picture: dict[str, Any] = {}
        for table, order in (
            ("flows", ()),
            ("steps", ("step_slug",)),
            ("deps", ("step_slug", "dep_slug")),
            ("runs", ("run_id",)),
            ("step_states", ("run_id", "step_slug")),
            ("step_tasks", ("run_id", "step_slug", "task_index")),
        ):
            rows = self._rows(
                sql.SQL("SELECT * FROM pgflow.{} WHERE flow_slug = %s").format(
                    sql.Identifier(table)
                ),
                (flow_slug,),
            )
            rows = [self.row(r) for r in rows]
            picture[table] = sorted(rows, key=lambda r: [str(r.get(c)) for c in order])
        picture["queue_meta"] = self._rows(
            "SELECT queue_name, is_partitioned, is_unlogged FROM pgmq.meta WHERE queue_name = %s",
            [flow_slug],
        )
        picture["queue"] = "<no queue>" if queue is None else [self._message(r) for r in queue]
        picture["archive"] = (
            "<no archive>" if archive is None else [self._message(r) for r in archive]
        )
        picture["events"] = self.events()
        return picture

    def _queue_rows(self, table: str) -> list[dict[str, Any]] | None:
        found = self._rows("SELECT to_regclass(%s) IS NOT NULL AS found", [f"pgmq.{table}"])
        if not found[0]["found"]:
            return None
        return self._rows(
            sql.SQL("SELECT * FROM pgmq.{} ORDER BY msg_id").format(sql.Identifier(table))
        )

    def _message(self, row: dict[str, Any]) -> dict[str, Any]:
        out = self.row({k: v for k, v in row.items() if k != "vt"})
        out["vt"] = self.vt(row["msg_id"], row["vt"])
        return out

    def events(self) -> list[dict[str, Any]]:
        # ctid follows insertion order in this append-only table (truncated per example): it
        # is the send order, which is part of the contract. inserted_at/updated_at are now()
        # (the same for all events of one call) and the stub's id is random: not compared.
        rows = self._rows(
            "SELECT event, topic, payload, private, extension FROM realtime.messages ORDER BY ctid"
        )
        out = []
        for r in rows:
            payload = self.json(r["payload"])
            if isinstance(payload, dict) and "id" in payload:
                payload["id"] = "<id>"
            topic = r["topic"]
            for run_id, label in self.run_labels.items():
                topic = topic.replace(run_id, label)
            out.append({**r, "payload": payload, "topic": topic})
        return out

    def outcome(self, outcome: Outcome, *, ordered: bool) -> dict[str, Any]:
        # Notices (e.g. a deprecation NOTICE) are part of the outcome when there are any.
        extra = {"notices": list(outcome.notices)} if outcome.notices else {}
        if outcome.error is not None:
            return {"error": outcome.error, **extra}
        assert outcome.rows is not None
        rows = [self._result_row(r) for r in outcome.rows]
        if not ordered:
            rows.sort(key=_row_identity)
        return {"rows": rows, **extra}

    def _result_row(self, row: dict[str, Any]) -> dict[str, Any]:
        if "vt" in row and "msg_id" in row and isinstance(row["vt"], datetime):
            out = self.row({k: v for k, v in row.items() if k != "vt"})
            out["vt"] = self.vt(row["msg_id"], row["vt"])
            return out
        return self.row(row)


_IDENTITY = ("run_id", "step_slug", "task_index", "msg_id")


def _row_identity(row: dict[str, Any]) -> list[str]:
    """Sort key for rows whose order is not contractual: what they are about, then content."""
    return [str(row.get(k)) for k in _IDENTITY] + [json.dumps(row, sort_keys=True, default=repr)]


# -- comparing ------------------------------------------------------------------------------


def differences(expected: Any, got: Any, path: str = "") -> list[str]:
    """Human-readable paths where ``got`` differs from ``expected``."""
    if isinstance(expected, dict) and isinstance(got, dict):
        out: list[str] = []
        for key in expected:
            if key not in got:
                out.append(f"{path}.{key}: missing (expected {expected[key]!r})")
            else:
                out.extend(differences(expected[key], got[key], f"{path}.{key}"))
        out.extend(f"{path}.{key}: unexpected {got[key]!r}" for key in got if key not in expected)
        return out
    if isinstance(expected, list) and isinstance(got, list):
        out = []
        for i, (e, g) in enumerate(zip(expected, got, strict=False)):
            out.extend(differences(e, g, f"{path}[{i}]"))
        if len(expected) != len(got):
            out.append(
                f"{path}: {len(expected)} items expected, got {len(got)}; expected tail "
                f"{expected[len(got) :]!r}, got tail {got[len(expected) :]!r}"
            )
        return out
    if expected != got or type(expected) is not type(got):
        return [f"{path}: expected {expected!r}, got {got!r}"]
    return []


def _project(upstream: dict[str, Any], ours: dict[str, Any], extra: dict[str, set[str]]) -> None:
    """Drop ours' additive table columns (allowed by the contract) before comparing."""
    for table in ("flows", "steps", "deps", "runs", "step_states", "step_tasks"):
        up_rows, our_rows = upstream[table], ours[table]
        if not up_rows or not our_rows:
            continue
        columns = set(up_rows[0])
        for row in our_rows:
            for column in set(row) - columns:
                extra.setdefault(table, set()).add(column)
                del row[column]


def _sort_state_steps(outcome: dict[str, Any]) -> None:
    """``{"run": ..., "steps": [...]}`` results: the steps come from ``jsonb_agg`` without
    ORDER BY, so their order is not contractual; compare them sorted by step slug."""
    for row in outcome.get("rows", []):
        for value in row.values():
            if isinstance(value, dict) and isinstance(value.get("steps"), list):
                value["steps"].sort(key=lambda s: str(s.get("step_slug")))


Normaliser = Callable[
    ["Differential", dict[str, Any], dict[str, Any], dict[str, Any], dict[str, Any]], None
]

_VT_LABEL = re.compile(r"^@(\d+)([+-]\d+)s$")


def start_tasks_extends_visibility(
    d: Differential,
    up_outcome: dict[str, Any],
    up_picture: dict[str, Any],
    our_outcome: dict[str, Any],
    our_picture: dict[str, Any],
) -> None:
    """Deliberate: ours' ``start_tasks`` hides a started task's message for the step's
    timeout + 2 s, as the contract (section 1.5, 2.3) describes. Upstream 0.8.1 as shipped does
    not: its ``set_vt_batch`` CTE is never referenced, so PostgreSQL never runs it, and the
    message keeps the short visibility of the worker's read (a long task's message keeps coming
    back to pollers). Documented in ``src/pgflow/sql/functions/start_tasks.sql``.

    Accepts exactly that: a message whose visibility ours last set in a ``start_tasks`` action
    to the step's effective timeout + 2 s compares as upstream's. Nothing else.
    """
    del up_outcome, our_outcome
    flows = up_picture.get("flows") or [{}]
    timeouts = {
        s["step_slug"]: s["opt_timeout"] or flows[0].get("opt_timeout")
        for s in up_picture.get("steps", [])
    }
    for table in ("queue", "archive"):
        ups, ours = up_picture.get(table), our_picture.get(table)
        if not isinstance(ups, list) or not isinstance(ours, list):
            continue
        for up, our in zip(ups, ours, strict=False):
            found = _VT_LABEL.match(str(our.get("vt")))
            if found is None or our["vt"] == up.get("vt"):
                continue
            action = d.history[int(found[1])] if int(found[1]) < len(d.history) else ""
            step = (our.get("message") or {}).get("step_slug")
            expected = timeouts.get(step)
            if (
                action.startswith(f"#{found[1]} start_tasks(")
                and expected is not None
                and int(found[2]) == expected + 2
            ):
                our["vt"] = up.get("vt")


def _is_cascade_completion(event: dict[str, Any]) -> bool:
    payload = event.get("payload")
    return (
        isinstance(payload, dict)
        and payload.get("event_type") == "step:completed"
        and "remaining_tasks" in payload  # only the taskless cascade sends these keys
    )


def canonical_taskless_cascade_order(picture: dict[str, Any]) -> None:
    """Upstream 0.8.1 leaves unspecified the order in which one cascade level announces the
    taskless steps it completes (maps over empty arrays): two upstream databases, given the
    same calls, were seen to announce sibling steps in different orders. Ours announces them
    by step_index. So within each run of consecutive cascade ``step:completed`` events of one
    run, events are put in a canonical order (depth in the flow, then slug), but only when the
    order found is causal (no step announced before one of its dependencies in the same run of
    events); a non-causal order is left as it is, to be reported."""
    deps: dict[str, set[str]] = {}
    for row in picture.get("deps") or []:
        deps.setdefault(str(row.get("step_slug")), set()).add(str(row.get("dep_slug")))
    depth: dict[str, int] = {}

    def depth_of(step: str, seen: frozenset[str] = frozenset()) -> int:
        if step not in depth:
            parents = deps.get(step, set()) - seen
            depth[step] = 1 + max((depth_of(p, seen | {step}) for p in parents), default=-1)
        return depth[step]

    events = picture.get("events")
    if not isinstance(events, list):
        return
    start = 0
    while start < len(events):
        end = start
        while (
            end < len(events)
            and _is_cascade_completion(events[end])
            and events[end].get("topic") == events[start].get("topic")
        ):
            end += 1
        if end - start > 1:
            block = events[start:end]
            slugs = [str(e["payload"].get("step_slug")) for e in block]
            causal = all(
                not (deps.get(slug, set()) & set(slugs[i + 1 :])) for i, slug in enumerate(slugs)
            )
            if causal:
                events[start:end] = sorted(
                    block,
                    key=lambda e: (
                        depth_of(str(e["payload"].get("step_slug"))),
                        str(e["payload"].get("step_slug")),
                    ),
                )
        start = max(end, start + 1)


def taskless_cascade_order_is_unspecified(
    d: Differential,
    up_outcome: dict[str, Any],
    up_picture: dict[str, Any],
    our_outcome: dict[str, Any],
    our_picture: dict[str, Any],
) -> None:
    """Not an improvement but a nondeterminism of upstream's (see
    :func:`canonical_taskless_cascade_order`): both sides are put in the canonical order."""
    del d, up_outcome, our_outcome
    canonical_taskless_cascade_order(up_picture)
    canonical_taskless_cascade_order(our_picture)


#: Differences that are documented, deliberate improvements of ours over upstream 0.8.1, and
#: orders upstream itself leaves unspecified (two upstream databases disagree). Each entry
#: normalises ``(driver, upstream outcome, upstream state, our outcome, our state)`` in place
#: so that the difference compares equal, and its docstring names the reason and the place
#: where ours documents it. Nothing else may be normalised away.
DELIBERATE_DIFFERENCES: tuple[Normaliser, ...] = (
    start_tasks_extends_visibility,
    taskless_cascade_order_is_unspecified,
)


def _project_rows(
    upstream: dict[str, Any], ours: dict[str, Any], extra: dict[str, set[str]]
) -> None:
    """Drop result columns upstream does not return (table row types with additive columns)."""
    up_rows, our_rows = upstream.get("rows"), ours.get("rows")
    if not up_rows or not our_rows:
        return
    columns = set(up_rows[0])
    for row in our_rows:
        for column in set(row) - columns:
            extra.setdefault("(function results)", set()).add(column)
            del row[column]


# -- the driver -----------------------------------------------------------------------------


@dataclass
class TaskRef:
    run: int
    step_slug: str
    task_index: int
    status: str


@dataclass
class Differential:
    """A flow under test in both cores, driven by actions that are compared one by one."""

    upstream: Side
    ours: Side
    example: int = field(default_factory=new_example_id)
    history: list[str] = field(default_factory=list)
    runs: list[uuid.UUID] = field(default_factory=list)
    inbox: list[int] = field(default_factory=list)  # message ranks read, not yet started
    picture: dict[str, Any] = field(default_factory=dict)  # upstream's, after the last action

    def __post_init__(self) -> None:
        self.flow_slug = f"diff_{self.example}"
        for side in (self.upstream, self.ours):
            side.reset()

    # -- core loop ------------------------------------------------------------------------
    def do(
        self,
        description: str,
        work: Work,
        *,
        ordered: bool = True,
        post: Callable[[dict[str, Any]], None] | None = None,
        strict_columns: bool = False,
    ) -> dict[str, Any]:
        """Apply one action to both cores and compare; returns upstream's normalised outcome.

        ``post`` adjusts both normalised outcomes in place before comparing (for results whose
        inner order is not contractual). Result rows are compared on upstream's columns only
        (a function returning ``pgflow.step_tasks`` returns our additive columns too), unless
        ``strict_columns``: then the set of columns is part of the contract.
        """
        self.history.append(f"#{len(self.upstream.windows)} {description}")
        seen: list[tuple[dict[str, Any], dict[str, Any]]] = []
        for side in (self.upstream, self.ours):
            raw = side.act(work(side))
            picture = side.capture(self.flow_slug)
            outcome = side.outcome(raw, ordered=ordered)
            if strict_columns and raw.rows:
                outcome["columns"] = list(raw.rows[0])  # attribute order, too
            if post is not None:
                post(outcome)
            seen.append((outcome, picture))
        (up_outcome, up_picture), (our_outcome, our_picture) = seen
        _project(up_picture, our_picture, self.ours.extra_columns)
        if not strict_columns:
            _project_rows(up_outcome, our_outcome, self.ours.extra_columns)
        for known in DELIBERATE_DIFFERENCES:
            known(self, up_outcome, up_picture, our_outcome, our_picture)
        problems = differences(up_outcome, our_outcome, "result") + differences(
            up_picture, our_picture, "state"
        )
        if problems:
            shown = "\n  ".join(problems[:25])
            more = f"\n  ... and {len(problems) - 25} more" if len(problems) > 25 else ""
            raise DifferentialMismatch(
                f"cores differ after {description}\n  {shown}{more}\n"
                f"flow: {self.flow_slug}; actions so far:\n    " + "\n    ".join(self.history)
            )
        self.picture = up_picture
        return up_outcome

    @staticmethod
    def statement(
        query: str | sql.Composable, params: Sequence[Any] | Callable[[Side], Sequence[Any]] = ()
    ) -> Work:
        def work(side: Side) -> Callable[[Conn], list[dict[str, Any]]]:
            values = params(side) if callable(params) else params

            def run(conn: Conn) -> list[dict[str, Any]]:
                cur = conn.execute(query, values or None)  # type: ignore[arg-type]
                return cur.fetchall() if cur.description else []

            return run

        return work

    def sql(
        self, description: str, query: str | sql.Composable, params: Sequence[Any] = ()
    ) -> dict[str, Any]:
        """Any statement, run in both cores and compared (results in the order returned)."""
        return self.do(description, self.statement(query, params))

    # -- definitions ----------------------------------------------------------------------
    def create_flow(self, **options: int | None) -> dict[str, Any]:
        named = {k: v for k, v in options.items() if v is not None}
        query = sql.SQL("SELECT * FROM pgflow.create_flow(flow_slug => %s{})").format(
            sql.SQL("").join(sql.SQL(", {} => %s").format(sql.Identifier(k)) for k in named)
        )
        return self.do(
            f"create_flow({self.flow_slug!r}, {named})",
            self.statement(query, [self.flow_slug, *named.values()]),
        )

    def add_step(
        self,
        step_slug: str,
        deps: Sequence[str] | None = None,
        *,
        step_type: str | None = None,
        flow_slug: str | None = None,
        **options: int | None,
    ) -> dict[str, Any]:
        named: dict[str, Any] = {k: v for k, v in options.items() if v is not None}
        if deps is not None:
            named = {"deps_slugs": list(deps), **named}
        if step_type is not None:
            named["step_type"] = step_type
        query = sql.SQL("SELECT * FROM pgflow.add_step(flow_slug => %s, step_slug => %s{})").format(
            sql.SQL("").join(sql.SQL(", {} => %s").format(sql.Identifier(k)) for k in named)
        )
        flow = self.flow_slug if flow_slug is None else flow_slug
        return self.do(
            f"add_step({step_slug!r}, {named})",
            self.statement(query, [flow, step_slug, *named.values()]),
        )

    # -- runs -----------------------------------------------------------------------------
    def start_flow(
        self, flow_input: Any, *, with_states: bool = False, run: int | None = None
    ) -> dict[str, Any]:
        """Start a run with a test-chosen id (``run`` reuses an earlier run's id)."""
        if run is None:
            run_id = run_uuid(self.example, len(self.runs))
            self.runs.append(run_id)
            for side in (self.upstream, self.ours):
                side.run_labels[str(run_id)] = f"run{len(self.runs) - 1}"
        else:
            run_id = self.runs[run]
        function = "start_flow_with_states" if with_states else "start_flow"
        query = sql.SQL("SELECT * FROM pgflow.{}(flow_slug => %s, input => %s, run_id => %s)")
        return self.do(
            f"{function}(input={flow_input!r}, run={self._label(run_id)})",
            self.statement(
                query.format(sql.Identifier(function)),
                [self.flow_slug, json_param(flow_input), run_id],
            ),
            post=_sort_state_steps,
        )

    def run_id(self, run: int) -> uuid.UUID:
        """The id of run number ``run``; a negative number gives an id no run has."""
        return self.runs[run] if run >= 0 else run_uuid(self.example, 0xFFFFFF)

    def _label(self, run_id: uuid.UUID) -> str:
        return self.upstream.run_labels.get(str(run_id), str(run_id))

    def read(self, qty: int = 100, vt: int = 2) -> dict[str, Any]:
        """A worker's read, after making every message visible (the clock jumps forward)."""
        table = sql.Identifier(f"q_{self.flow_slug}")

        def work(side: Side) -> Callable[[Conn], list[dict[str, Any]]]:
            def run(conn: Conn) -> list[dict[str, Any]]:
                conn.execute(
                    sql.SQL(
                        "UPDATE pgmq.{} SET vt = clock_timestamp() - interval '1 second'"
                    ).format(table)
                )
                return conn.execute(
                    "SELECT * FROM pgmq.read(queue_name => %s, vt => %s, qty => %s)",
                    (self.flow_slug, vt, qty),
                ).fetchall()

            return run

        outcome = self.do(f"read(qty={qty}, vt={vt})", work, ordered=False)
        for row in outcome.get("rows", []):
            rank = int(str(row["msg_id"]).removeprefix("m"))
            if rank not in self.inbox:
                self.inbox.append(rank)
        return outcome

    def poll(self, qty: int = 100) -> dict[str, Any]:
        """Both phases of a worker's poll: read (everything made visible), then start_tasks."""
        self.read(qty)
        return self.start_tasks()

    def start_tasks(self, ranks: Iterable[int] | None = None) -> dict[str, Any]:
        """``start_tasks`` for messages given by rank (default: everything read so far)."""
        chosen = list(self.inbox if ranks is None else ranks)
        self.inbox = [r for r in self.inbox if r not in chosen]
        return self.do(
            f"start_tasks(msgs={['m' + str(r) for r in chosen]})",
            self.statement(
                "SELECT * FROM pgflow.start_tasks(flow_slug => %s, msg_ids => %s, worker_id => %s)",
                lambda side: [self.flow_slug, [side.msg_id(r) for r in chosen], WORKER_ID],
            ),
            # A set-returning SQL function without ORDER BY: row order is not contractual.
            ordered=False,
            # pgflow.step_task_record: its attributes (and their order) are the contract.
            strict_columns=True,
        )

    def complete_task(
        self, run: int, step_slug: str, task_index: int, output: Any
    ) -> dict[str, Any]:
        return self.do(
            f"complete_task(run{run}, {step_slug!r}, {task_index}, {output!r})",
            self.statement(
                "SELECT * FROM pgflow.complete_task(run_id => %s, step_slug => %s,"
                " task_index => %s, output => %s)",
                [self.run_id(run), step_slug, task_index, json_param(output)],
            ),
        )

    def fail_task(
        self, run: int, step_slug: str, task_index: int, error_message: str | None
    ) -> dict[str, Any]:
        return self.do(
            f"fail_task(run{run}, {step_slug!r}, {task_index}, {error_message!r})",
            self.statement(
                "SELECT * FROM pgflow.fail_task(run_id => %s, step_slug => %s,"
                " task_index => %s, error_message => %s)",
                [self.run_id(run), step_slug, task_index, error_message],
            ),
        )

    def get_run_with_states(self, run: int) -> dict[str, Any]:
        return self.do(
            f"get_run_with_states(run{run})",
            self.statement("SELECT pgflow.get_run_with_states(%s) AS state", [self.run_id(run)]),
            post=_sort_state_steps,
        )

    # -- reading upstream's state (to choose the next action) ------------------------------
    def tasks(self) -> list[TaskRef]:
        labels = {f"run{i}": i for i in range(len(self.runs))}
        return [
            TaskRef(labels[t["run_id"]], t["step_slug"], t["task_index"], t["status"])
            for t in self.picture.get("step_tasks", [])
        ]

    def queued_ranks(self) -> list[int]:
        return [int(str(m["msg_id"]).removeprefix("m")) for m in self.picture.get("queue", [])]

    def message_count(self) -> int:
        return len(self.picture.get("queue", [])) + len(self.picture.get("archive", []))

    def run_statuses(self) -> list[str]:
        return [r["status"] for r in self.picture.get("runs", [])]


def open_sides(upstream_url: str, ours_url: str) -> tuple[Side, Side]:
    return Side("upstream", upstream_url), Side("ours", ours_url)
