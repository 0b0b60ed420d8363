"""Random flows and random worker/client behaviour, applied to upstream 0.8.1 and to ours.

Hypothesis draws a flow (chains, diamonds, several roots, root maps, dependent maps, map->map,
singles feeding maps, options at flow and step level) and then, one action at a time and
looking at upstream's state to choose, a sequence of calls: start_flow (explicit run ids,
arrays of length 0..4 and other JSON), reads of the queue (every message made visible first),
start_tasks with the messages read (or any, stale or unknown), complete_task with arbitrary
JSON outputs (arrays, objects, null, SQL NULL, 0, false), fail_task (retries, exhaustion),
and late calls on tasks of any status (queued, completed, failed, of failed runs). After every
action the harness compares results, errors, tables, queue, archive and realtime events.

``PGFLOW_DIFF_EXAMPLES`` raises the number of examples (default 100, about a minute).
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field

import pytest
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st

from tests.differential._diff_harness import JSON_NULL, SQL_NULL, Differential, Side

pytestmark = pytest.mark.differential

EXAMPLES = int(os.environ.get("PGFLOW_DIFF_EXAMPLES", "100"))
MAX_ACTIONS = 40
MAX_RUNS = 3
# Slugs drawn in random order, so that step_index order and slug order disagree (upstream
# starts ready steps in slug order but completes taskless ones in step_index order).
SLUGS = ("a", "b", "c", "d", "e", "f", "g")


# -- JSON -------------------------------------------------------------------------------------

_leaves = st.one_of(st.integers(-1, 3), st.booleans(), st.none(), st.sampled_from(["", "x", "run"]))
_values = st.recursive(
    _leaves,
    lambda inner: st.one_of(
        st.lists(inner, max_size=3),
        st.dictionaries(st.sampled_from(["a", "k", "run"]), inner, max_size=2),
    ),
    max_leaves=4,
)
#: Any JSON document (top-level null is JSON null, not SQL NULL).
json_docs = _values.map(lambda v: JSON_NULL if v is None else v)
#: Arrays of length 0..4, the inputs of map steps.
json_arrays = st.lists(_values, max_size=4)
#: What a handler may return, including the falsy values and SQL NULL.
outputs = st.one_of(
    json_arrays,
    json_arrays,
    json_docs,
    st.sampled_from([SQL_NULL, JSON_NULL, 0, False, "", {}]),
)


# -- flows ------------------------------------------------------------------------------------


def _option(low: int, high: int) -> st.SearchStrategy[int | None]:
    # Mostly unset (inherit), sometimes a value.
    return st.one_of(st.none(), st.none(), st.integers(low, high))


@dataclass
class StepSpec:
    slug: str
    step_type: str
    deps: list[str]
    options: dict[str, int | None]
    explicit_type: bool
    explicit_deps: bool


@dataclass
class FlowSpec:
    options: dict[str, int | None]
    steps: list[StepSpec] = field(default_factory=list)

    @property
    def has_root_map(self) -> bool:
        return any(s.step_type == "map" and not s.deps for s in self.steps)

    def __repr__(self) -> str:
        def opts(options: dict[str, int | None]) -> str:
            given = {k: v for k, v in options.items() if v is not None}
            return str(given) if given else ""

        steps = " ".join(
            f"{s.slug}:{s.step_type}<-{','.join(s.deps) or '-'}{opts(s.options)}"
            for s in self.steps
        )
        return f"Flow({opts(self.options)} {steps})"


@st.composite
def flows(draw: st.DrawFn) -> FlowSpec:
    spec = FlowSpec(
        options={
            "max_attempts": draw(_option(0, 3)),
            "base_delay": draw(_option(0, 3)),
            "timeout": draw(_option(1, 30)),
        }
    )
    count = draw(st.integers(1, 6))
    slugs = draw(st.permutations(SLUGS))[:count]
    for i, slug in enumerate(slugs):
        earlier = list(slugs[:i])
        step_type = draw(st.sampled_from(["single", "map"]))
        if not earlier:
            deps: list[str] = []
        elif step_type == "map":
            deps = draw(st.lists(st.sampled_from(earlier), max_size=1))
        else:
            deps = draw(
                st.one_of(
                    st.just([earlier[-1]]),  # chains
                    st.lists(st.sampled_from(earlier), unique=True, max_size=3),
                )
            )
        spec.steps.append(
            StepSpec(
                slug=slug,
                step_type=step_type,
                deps=deps,
                options={
                    "max_attempts": draw(_option(0, 3)),
                    "base_delay": draw(_option(0, 3)),
                    "timeout": draw(_option(1, 30)),
                    "start_delay": draw(_option(0, 5)),
                },
                explicit_type=step_type == "map" or draw(st.booleans()),
                explicit_deps=bool(deps) or draw(st.booleans()),
            )
        )
    return spec


# -- one example -----------------------------------------------------------------------------


def _setup(d: Differential, flow: FlowSpec) -> None:
    d.create_flow(**flow.options)
    for s in flow.steps:
        d.add_step(
            s.slug,
            s.deps if s.explicit_deps else None,
            step_type=s.step_type if s.explicit_type else None,
            **s.options,
        )


def _play(d: Differential, flow: FlowSpec, data: st.DataObject) -> None:
    _setup(d, flow)
    inputs = (
        st.one_of(json_arrays, json_arrays, json_arrays, json_docs)
        if flow.has_root_map
        else st.one_of(json_docs, json_arrays)
    )
    steps = [s.slug for s in flow.steps]
    for _ in range(data.draw(st.integers(1, MAX_ACTIONS), label="number of actions")):
        tasks = d.tasks()
        started = [t for t in tasks if t.status == "started"]
        # Weighted by repetition: mostly a worker's loop (poll, then complete or fail what it
        # started), sometimes a client starting runs, sometimes odd or late calls.
        kinds: list[str] = []
        if not d.runs:
            kinds += ["start_flow"]
        else:
            kinds += ["late", "stale_start", "get_run"]
            if len(d.runs) < MAX_RUNS:
                kinds += ["start_flow"]
        if d.queued_ranks():
            kinds += ["poll"] * 5 + ["read"]
        if d.inbox:
            kinds += ["start_tasks"] * 2
        if started:
            kinds += ["complete"] * 8 + ["fail"] * 4
        kind = data.draw(st.sampled_from(kinds), label="action")
        if kind == "start_flow":
            reuse = bool(d.runs) and data.draw(st.integers(0, 19), label="reuse run id") == 0
            d.start_flow(
                data.draw(inputs, label="input"),
                with_states=data.draw(st.integers(0, 3), label="with states") == 0,
                run=data.draw(st.integers(0, len(d.runs) - 1)) if reuse else None,
            )
        elif kind in {"read", "poll"}:
            d.read(qty=data.draw(st.sampled_from([100, 1, 2, 3]), label="qty"))
            if kind == "poll":
                d.start_tasks()
        elif kind == "start_tasks":
            d.start_tasks()
        elif kind == "stale_start":
            # Messages of any state, plus one unknown id (rank past the end).
            ranks = data.draw(
                st.lists(st.integers(0, d.message_count()), max_size=3, unique=True),
                label="ranks",
            )
            d.start_tasks(ranks)
        elif kind in {"complete", "fail"}:
            task = data.draw(st.sampled_from(started), label="task")
            if kind == "complete":
                d.complete_task(
                    task.run, task.step_slug, task.task_index, data.draw(outputs, label="output")
                )
            else:
                d.fail_task(task.run, task.step_slug, task.task_index, f"boom {len(d.history)}")
        elif kind == "late":
            # Any task of any status, or one that does not exist (run -1: an unknown run id).
            if tasks and data.draw(st.integers(0, 4), label="existing task") > 0:
                task = data.draw(st.sampled_from(tasks), label="task")
                run, step_slug, index = task.run, task.step_slug, task.task_index
            else:
                run = data.draw(st.integers(-1, len(d.runs) - 1), label="run")
                step_slug = data.draw(st.sampled_from(steps), label="step")
                index = data.draw(st.integers(0, 5), label="task index")
            if data.draw(st.booleans(), label="complete?"):
                d.complete_task(run, step_slug, index, data.draw(outputs, label="output"))
            else:
                error = data.draw(st.sampled_from(["late", None]), label="error")
                d.fail_task(run, step_slug, index, error)
        else:
            d.get_run_with_states(data.draw(st.integers(0, len(d.runs) - 1), label="run"))
    for status in d.run_statuses():
        event(f"run {status}")


# -- tests -----------------------------------------------------------------------------------


_SETTINGS = settings(
    max_examples=EXAMPLES,
    deadline=None,
    # One database pair per test function serves every example; examples are isolated by a
    # flow (and so a queue) of their own and by clearing the recorded events.
    suppress_health_check=[
        HealthCheck.function_scoped_fixture,
        HealthCheck.too_slow,
        HealthCheck.data_too_large,
    ],
)


@_SETTINGS
@given(flow=flows(), data=st.data())
def test_random_flows_behave_like_upstream(
    sides: tuple[Side, Side], flow: FlowSpec, data: st.DataObject
) -> None:
    upstream, ours = sides
    _play(Differential(upstream, ours), flow, data)


@settings(_SETTINGS, max_examples=min(EXAMPLES, 10))
@given(flow=flows(), data=st.data())
def test_harness_sees_no_difference_between_upstream_and_itself(
    upstream_twins: tuple[Side, Side], flow: FlowSpec, data: st.DataObject
) -> None:
    """The normalisation is deterministic: upstream compared with a clone of itself agrees."""
    first, second = upstream_twins
    _play(Differential(first, second), flow, data)
