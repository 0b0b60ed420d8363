"""The dashboard's pages, as HTML strings built from the API's models.

A page's live part is a *fragment* with its own URL: the page's script refetches it when an
event for what it shows arrives, and swaps it in, so the server renders everything.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from pgflow.client._models import RUN_STATUSES
from pgflow.web._html import (
    at,
    css_token,
    duration,
    error_viewer,
    esc,
    json_viewer,
    layout,
    query,
    status_badge,
    when,
)
from pgflow.web._models import (
    FlowDetail,
    FlowStep,
    FlowSummary,
    Metrics,
    RunDetail,
    RunPage,
    RunSummary,
    Schedule,
    StepStatus,
    WorkerInfo,
)
from pgflow.web._state import RUN_ACTIONS
from pgflow.web._svg import Bar, DagNode, Series, bar_chart, dag_svg, gantt_svg


@dataclass(frozen=True)
class Site:
    """What every page needs to know about where and how it is served."""

    base: str
    #: The run actions this server offers (``cancel``, ``retry``…); empty when read-only.
    run_actions: tuple[str, ...] = ()
    can_start: bool = False
    #: Whether schedules can be enabled and disabled from their page.
    can_switch_schedules: bool = False


@dataclass(frozen=True)
class RunFilters:
    status: str | None = None
    flow: str | None = None
    q: str | None = None
    cursor: str | None = None


def _live(src: str, body: str, *, run_id: str | None = None) -> str:
    """A region the script refreshes from ``src`` on events (of one run, or of every run)."""
    scope = f'data-live-run="{esc(run_id)}"' if run_id else "data-live-all"
    return f'<div id="live" data-live-src="{esc(src)}" {scope}>{body}</div>'


def _run_link(site: Site, run_id: object) -> str:
    return f'<a class="mono" href="{esc(site.base)}/runs/{esc(run_id)}">{esc(run_id)}</a>'


def _flow_link(site: Site, slug: str) -> str:
    return f'<a href="{esc(site.base)}/flows/{esc(slug)}">{esc(slug)}</a>'


def _runs_table(site: Site, runs: Sequence[RunSummary], *, show_flow: bool = True) -> str:
    if not runs:
        return '<p class="note">No runs.</p>'
    head = "<th scope=col>Run</th>" + ("<th scope=col>Flow</th>" if show_flow else "")
    head += "<th scope=col>Status</th><th scope=col>Started</th><th scope=col>Duration</th>"
    head += "<th scope=col>Error</th>"
    rows = []
    for run in runs:
        flow_cell = f"<td>{_flow_link(site, run.flow_slug)}</td>" if show_flow else ""
        rows.append(
            f'<tr data-run="{esc(run.run_id)}"><td>{_run_link(site, run.run_id)}</td>{flow_cell}'
            f"<td>{status_badge(run.status)}</td><td>{when(run.started_at)}</td>"
            f'<td class="num">{esc(duration(run.duration))}</td>'
            f'<td class="error-cell">{esc((run.error or "")[:120])}</td></tr>'
        )
    return (
        f'<table class="runs"><thead><tr>{head}</tr></thead><tbody>{"".join(rows)}</tbody></table>'
    )


def runs_fragment(site: Site, page: RunPage, filters: RunFilters) -> str:
    more = ""
    if page.next_cursor:
        older = query(status=filters.status, flow=filters.flow, cursor=page.next_cursor)
        link = f"{site.base}/{older}"
        more = f'<p><a class="more" rel="next" href="{esc(link)}">Older runs →</a></p>'
    return _runs_table(site, page.runs) + more


def runs_page(
    site: Site, page: RunPage, filters: RunFilters, flows: Sequence[str], message: str = ""
) -> str:
    def options(values: Sequence[str], chosen: str | None, everything: str) -> str:
        listed = [f'<option value="">{esc(everything)}</option>']
        listed += [
            f'<option value="{esc(v)}"{" selected" if v == chosen else ""}>{esc(v)}</option>'
            for v in values
        ]
        return "".join(listed)

    form = (
        f'<form class="filters" method="get" action="{esc(site.base)}/" role="search">'
        f'<label>Status <select name="status">{options(RUN_STATUSES, filters.status, "any")}'
        "</select></label>"
        f'<label>Flow <select name="flow">{options(flows, filters.flow, "any")}</select></label>'
        '<label>Run id <input name="q" type="search" size="38" placeholder="UUID" '
        f'value="{esc(filters.q or "")}"></label>'
        '<button type="submit">Filter</button></form>'
    )
    notice = f'<p class="notice" role="alert">{esc(message)}</p>' if message else ""
    fragment = runs_fragment(site, page, filters)
    filtered = query(status=filters.status, flow=filters.flow)
    if filters.cursor is None:  # only the newest page changes as runs start and finish
        fragment = _live(f"{site.base}/fragments/runs{filtered}", fragment)
    else:
        newest = f"{site.base}/{filtered}"
        fragment = f'<p><a href="{esc(newest)}">← Newest runs</a></p>{fragment}'
    return layout("Runs", form + notice + fragment, base=site.base, current="runs")


def _step_input(run: RunDetail, step: StepStatus) -> Any:
    """What the step's handler was given: the run input and the outputs of its dependencies
    (a map step: the array it maps over)."""
    outputs = {s.step_slug: s.output for s in run.steps}
    if step.step_type == "map":
        return outputs.get(step.deps[0]) if step.deps else run.input
    return {"run": run.input, **{d: outputs.get(d) for d in step.deps}}


def _task_rows(step: StepStatus, run: RunDetail) -> str:
    tasks = [t for t in run.tasks if t.step_slug == step.step_slug]
    if step.step_type != "map" or not tasks:
        return ""
    rows = "".join(
        f"<tr><td class=num>{t.task_index}</td><td>{status_badge(t.status)}</td>"
        f'<td class="num">{t.attempts}</td><td class="num">{esc(duration(t.duration))}</td>'
        f"<td>{error_viewer(t.error)}"
        f"{json_viewer(t.output, f'output of task {t.task_index}') if t.output is not None else ''}"
        "</td></tr>"
        for t in tasks
    )
    return (
        f'<details id="tasks-{esc(step.step_slug)}"><summary>Tasks ({len(tasks)})</summary>'
        "<table><thead><tr><th scope=col>#</th><th scope=col>Status</th>"
        "<th scope=col>Attempts</th><th scope=col>Duration</th><th scope=col>Output / error</th>"
        f"</tr></thead><tbody>{rows}</tbody></table></details>"
    )


def _progress(step: StepStatus) -> str:
    if step.step_type != "map":
        return ""
    total = "?" if step.tasks_total is None else str(step.tasks_total)
    return f"{step.tasks_done}/{total}"


#: What each skip reason means, in words.
SKIP_REASONS = {
    "condition_unmet": "its condition was not met",
    "handler_failed": "its task ran out of attempts",
    "dependency_skipped": "a step it depends on was skipped",
}


def _step_section(step: StepStatus, run: RunDetail) -> str:
    facts = [
        ("type", step.step_type),
        ("attempts", str(step.attempts)),
        ("duration", duration(step.duration)),
    ]
    if step.step_type == "map":
        facts.append(("tasks done", _progress(step)))
    if step.skip_reason is not None:
        facts.append(("skipped", SKIP_REASONS.get(step.skip_reason, step.skip_reason)))
    listed = "".join(f"<dt>{esc(k)}</dt><dd>{esc(v)}</dd>" for k, v in facts)
    slug = esc(step.step_slug)
    output = ""
    if step.status == "completed":
        output = (
            f'<details id="output-{slug}" open><summary>Output</summary>'
            f"{json_viewer(step.output, f'output of {step.step_slug}')}</details>"
        )
    return (
        f'<section class="step step-{css_token(step.status)}" id="step-{slug}" '
        f'data-step="{slug}">'
        f"<h3>{slug} {status_badge(step.status)}</h3><dl>{listed}</dl>"
        f"{error_viewer(step.error)}"
        f'<details id="input-{slug}"><summary>Input</summary>'
        f"{json_viewer(_step_input(run, step), f'input of {step.step_slug}')}</details>"
        f"{output}{_task_rows(step, run)}</section>"
    )


def _actions(site: Site, run: RunDetail) -> str:
    offered = [a for a in site.run_actions if run.status in RUN_ACTIONS[a].statuses]
    if not offered:
        return ""
    buttons = "".join(
        f'<button type="button" data-action="{esc(site.base)}/api/runs/{esc(run.run_id)}/'
        f'{esc(action)}">{esc(action.capitalize())}</button>'
        for action in offered
    )
    return f'<div class="actions" role="group" aria-label="Actions">{buttons}</div>'


def _run_control(site: Site, run: RunDetail) -> str:
    """Summary rows for a cancelled run (when, why) and a retry (the run it retries)."""
    rows = ""
    if run.cancelled_at is not None:
        rows += (
            f"<dt>Cancelled</dt><dd>{when(run.cancelled_at)}</dd>"
            f'<dt>Cancel reason</dt><dd id="cancel-reason">'
            f"{esc(run.cancel_reason or 'none given')}</dd>"
        )
    if run.retry_of is not None:
        rows += f"<dt>Retry of</dt><dd>{_run_link(site, run.retry_of)}</dd>"
    return rows


def run_fragment(site: Site, run: RunDetail, now: datetime | None = None) -> str:
    finish = run.completed_at or run.failed_at or run.cancelled_at or now or datetime.now(UTC)
    summary = (
        '<dl class="summary">'
        f"<dt>Flow</dt><dd>{_flow_link(site, run.flow_slug)}</dd>"
        f'<dt>Status</dt><dd id="run-status" data-status="{esc(run.status)}">'
        f"{status_badge(run.status)}</dd>"
        f"<dt>Started</dt><dd>{when(run.started_at)}</dd>"
        f"<dt>Duration</dt><dd>{esc(duration(run.duration))}</dd>"
        f"<dt>Steps left</dt><dd>{run.remaining_steps}</dd>{_run_control(site, run)}</dl>"
    )
    nodes = [
        DagNode(
            slug=s.step_slug,
            step_type=s.step_type,
            deps=s.deps,
            status=s.status,
            detail=s.skip_reason or _progress(s),
            href=f"#step-{s.step_slug}",
        )
        for s in run.steps
    ]
    bars = [
        Bar(
            s.step_slug,
            s.status,
            s.started_at,
            s.completed_at or s.failed_at or s.skipped_at,
            f"{s.attempts} attempts" if s.attempts > 1 else "",
        )
        for s in run.steps
    ]
    output = ""
    if run.status == "completed":
        output = f"<h2>Output</h2>{json_viewer(run.output, 'run output')}"
    return (
        f"{summary}{_actions(site, run)}{error_viewer(run.error)}"
        f"<h2>Steps</h2>{dag_svg(nodes, label=f'Steps of run {run.run_id}')}"
        f"<h2>Timeline</h2>"
        f"{gantt_svg(bars, run.started_at, finish, label='Timeline of the steps')}"
        f'<details id="run-input"><summary>Run input</summary>'
        f"{json_viewer(run.input, 'run input')}</details>{output}"
        f"<h2>Step details</h2>{''.join(_step_section(s, run) for s in run.steps)}"
    )


def run_page(site: Site, run: RunDetail) -> str:
    body = _live(
        f"{site.base}/fragments/runs/{run.run_id}",
        run_fragment(site, run),
        run_id=str(run.run_id),
    )
    return layout(f"Run {run.run_id}", body, base=site.base, current="runs")


def _rate(value: float | None) -> str:
    return "–" if value is None else f"{value * 100:.1f} %"


def _options(options: dict[str, int]) -> str:
    return (
        f"max_attempts {options.get('max_attempts')}, base_delay {options.get('base_delay')} s, "
        f"timeout {options.get('timeout')} s"
    )


def flows_page(site: Site, flows: Sequence[FlowSummary]) -> str:
    if not flows:
        return layout("Flows", '<p class="note">No flows yet.</p>', base=site.base, current="flows")
    rows = "".join(
        f"<tr><td>{_flow_link(site, f.flow_slug)}</td><td class=num>{len(f.steps)}</td>"
        f"<td class=num>{f.stats.runs}</td><td class=num>{f.stats.running}</td>"
        f"<td class=num>{f.stats.failed}</td><td class=num>{_rate(f.stats.success_rate)}</td>"
        f"<td class=num>{esc(duration(f.stats.p95_duration))}</td>"
        f"<td>{esc(_options(f.options))}</td></tr>"
        for f in flows
    )
    table = (
        '<p class="note">Run counts and durations: runs started in the last 24 hours.</p>'
        "<table><thead><tr><th scope=col>Flow</th><th scope=col>Steps</th>"
        "<th scope=col>Runs</th><th scope=col>Running</th><th scope=col>Failed</th>"
        "<th scope=col>Success rate</th><th scope=col>p95 duration</th>"
        f"<th scope=col>Options</th></tr></thead><tbody>{rows}</tbody></table>"
    )
    return layout("Flows", table, base=site.base, current="flows")


STEP_OPTIONS = ("max_attempts", "base_delay", "timeout", "start_delay")


def _condition(step: FlowStep) -> str:
    """When the step runs (its patterns as JSON) and what an unmet condition or a task out of
    attempts does; '–' for a step that always runs and fails when out of attempts."""
    parts = [
        f"{name} {json.dumps(pattern, ensure_ascii=False)}"
        for name, pattern in (("when", step.when), ("unless", step.unless))
        if pattern is not None
    ]
    if parts:
        parts.append(f"if unmet: {step.when_unmet}")
    if step.when_exhausted != "fail":
        parts.append(f"if out of attempts: {step.when_exhausted}")
    return f'<span class="condition">{esc("; ".join(parts))}</span>' if parts else "–"


def flow_page(site: Site, flow: FlowDetail) -> str:
    stats = flow.stats
    summary = (
        '<dl class="summary">'
        f"<dt>Runs (24 h)</dt><dd>{stats.runs}</dd><dt>Running</dt><dd>{stats.running}</dd>"
        f"<dt>Success rate</dt><dd>{_rate(stats.success_rate)}</dd>"
        f"<dt>p50 / p95 duration</dt><dd>{esc(duration(stats.p50_duration))} / "
        f"{esc(duration(stats.p95_duration))}</dd>"
        f"<dt>Options</dt><dd>{esc(_options(flow.options))}</dd></dl>"
    )
    nodes = [DagNode(s.step_slug, s.step_type, s.deps) for s in flow.steps]
    steps = "".join(
        f"<tr><td>{esc(s.step_slug)}</td><td>{esc(s.step_type)}</td>"
        f"<td>{esc(', '.join(s.deps) or '–')}</td>"
        + "".join(
            f"<td>{esc('inherited' if s.options.get(o) is None else s.options[o])}</td>"
            for o in STEP_OPTIONS
        )
        + f"<td>{_condition(s)}</td></tr>"
        for s in flow.steps
    )
    start = ""
    if site.can_start:
        start = (
            f'<h2>Start a run</h2><form class="start-run" data-start="{esc(site.base)}/api/flows/'
            f'{esc(flow.flow_slug)}/runs"><label>Input (JSON)<textarea name="input" rows="4" '
            'cols="60">{}</textarea></label><button type="submit">Start</button>'
            '<output class="notice" role="status"></output></form>'
        )
    option_heads = "".join(f"<th scope=col>{o}</th>" for o in STEP_OPTIONS)
    body = (
        f"{summary}<h2>Steps</h2>{dag_svg(nodes, label=f'Steps of flow {flow.flow_slug}')}"
        "<table><thead><tr><th scope=col>Step</th><th scope=col>Type</th>"
        f"<th scope=col>Depends on</th>{option_heads}<th scope=col>Condition</th></tr></thead>"
        f"<tbody>{steps}</tbody></table>{start}"
        f"<h2>Recent runs</h2>{_runs_table(site, flow.recent_runs, show_flow=False)}"
    )
    return layout(f"Flow {flow.flow_slug}", body, base=site.base, current="flows")


def workers_page(site: Site, workers: Sequence[WorkerInfo], include_stopped: bool) -> str:
    toggle = (
        f'<p><a href="{esc(site.base)}/workers">Only live workers</a></p>'
        if include_stopped
        else f'<p><a href="{esc(site.base)}/workers?include_stopped=true">Include stopped '
        "workers</a></p>"
    )
    if not workers:
        return layout(
            "Workers", toggle + '<p class="note">No workers.</p>', base=site.base, current="workers"
        )
    rows = "".join(
        f'<tr><td class="mono">{esc(w.worker_id)}</td><td>{_flow_link(site, w.flow_slug)}</td>'
        f"<td>{esc(w.function_name)}</td><td>{status_badge(w.status)}</td>"
        f"<td>{when(w.last_heartbeat_at)}</td><td>{when(w.started_at)}</td>"
        f"<td>{when(w.deprecated_at) if w.deprecated_at else 'no'}</td></tr>"
        for w in workers
    )
    table = (
        "<table><thead><tr><th scope=col>Worker</th><th scope=col>Flow</th>"
        "<th scope=col>Function</th><th scope=col>State</th><th scope=col>Last heartbeat</th>"
        f"<th scope=col>Started</th><th scope=col>Deprecated</th></tr></thead><tbody>{rows}"
        "</tbody></table>"
    )
    return layout("Workers", toggle + table, base=site.base, current="workers")


def _schedule_switch(site: Site, schedule: Schedule) -> str:
    verb = "disable" if schedule.enabled else "enable"
    return (
        f'<button type="button" data-schedule-action="{esc(site.base)}/api/schedules/'
        f'{esc(schedule.name)}/{verb}">{verb.capitalize()}</button>'
    )


def schedules_page(site: Site, schedules: Sequence[Schedule]) -> str:
    if not schedules:
        note = '<p class="note">No schedules. Add one with <code>pgflow schedules add</code>.</p>'
        return layout("Schedules", note, base=site.base, current="schedules")
    rows = []
    for item in schedules:
        upcoming = at(item.next_occurrence_at)
        if item.overdue_since is not None:
            upcoming = f'<span class="overdue">overdue since {at(item.overdue_since)}</span>'
        switch = f"<td>{_schedule_switch(site, item)}</td>" if site.can_switch_schedules else ""
        rows.append(
            f'<tr data-schedule="{esc(item.name)}"><td>{esc(item.name)}</td>'
            f"<td>{_flow_link(site, item.flow_slug)}</td><td class=mono>{esc(item.cron)}</td>"
            f"<td>{esc(item.timezone)}</td><td>{'yes' if item.enabled else 'no'}</td>"
            f"<td>{when(item.last_occurrence_at)}</td><td>{upcoming}</td>{switch}</tr>"
        )
    action_head = "<th scope=col>Action</th>" if site.can_switch_schedules else ""
    table = (
        "<table><thead><tr><th scope=col>Name</th><th scope=col>Flow</th>"
        "<th scope=col>Cron</th><th scope=col>Time zone</th><th scope=col>Enabled</th>"
        "<th scope=col>Last occurrence</th><th scope=col>Next occurrence</th>"
        f"{action_head}</tr></thead><tbody>{''.join(rows)}</tbody></table>"
    )
    return layout("Schedules", table, base=site.base, current="schedules")


def metrics_page(site: Site, metrics: Metrics, flows: Sequence[str]) -> str:
    labels = [b.start.strftime("%d %b %H:%M") for b in metrics.buckets]
    choices = "".join(
        f'<option value="{esc(f)}"{" selected" if f == metrics.flow else ""}>{esc(f)}</option>'
        for f in flows
    )
    form = (
        f'<form class="filters" method="get" action="{esc(site.base)}/metrics">'
        f'<label>Flow <select name="flow"><option value="">any</option>{choices}</select></label>'
        '<button type="submit">Show</button></form>'
    )
    runs = metrics.run_duration
    totals = (
        f'<dl class="summary"><dt>Runs started</dt><dd>since {when(metrics.since)}, bars of '
        f"{esc(duration(metrics.bucket_seconds))}</dd><dt>Total</dt><dd>{metrics.total_runs}</dd>"
        f"<dt>Completed / failed / running</dt><dd>{metrics.completed} / {metrics.failed} / "
        f"{metrics.running}</dd><dt>Success rate</dt><dd>{_rate(metrics.success_rate)}</dd>"
        f"<dt>Duration p50 / p95 / max</dt><dd>{esc(duration(runs.p50))} / "
        f"{esc(duration(runs.p95))} / {esc(duration(runs.max))}</dd>"
        f"<dt>Throughput</dt><dd>{metrics.throughput_per_minute:.2f} runs/min</dd></dl>"
    )
    throughput = bar_chart(
        labels,
        [
            Series("completed", "fill-completed", [b.completed for b in metrics.buckets]),
            Series("failed", "fill-failed", [b.failed for b in metrics.buckets]),
        ],
        label="Runs started, by outcome",
    )
    failures = bar_chart(
        labels,
        [Series("failed", "fill-failed", [b.failed for b in metrics.buckets])],
        label="Failed runs",
    )
    durations = bar_chart(
        labels,
        [Series("p95", "fill-duration", [b.p95_duration or 0 for b in metrics.buckets])],
        label="p95 duration of completed runs",
        unit=" s",
    )
    reasons = "".join(
        f"<tr><td class=num>{r.count}</td><td>{error_viewer(r.error or '(no message)')}</td></tr>"
        for r in metrics.failure_reasons
    )
    slowest = "".join(
        f"<tr><td>{_flow_link(site, s.flow_slug)}</td><td>{esc(s.step_slug)}</td>"
        f"<td class=num>{s.count}</td><td class=num>{esc(duration(s.p95))}</td>"
        f"<td class=num>{esc(duration(s.max))}</td></tr>"
        for s in metrics.slowest_steps
    )
    tables = (
        "<h2>Slowest steps</h2><table><thead><tr><th scope=col>Flow</th><th scope=col>Step</th>"
        "<th scope=col>Completed</th><th scope=col>p95</th><th scope=col>max</th></tr></thead>"
        f"<tbody>{slowest}</tbody></table>"
        "<h2>Most frequent errors</h2><table><thead><tr><th scope=col>Runs</th>"
        f"<th scope=col>Error</th></tr></thead><tbody>{reasons}</tbody></table>"
    )
    return layout(
        "Metrics",
        form + totals + throughput + failures + durations + tables,
        base=site.base,
        current="metrics",
    )


def problem_page(site: Site, title: str, message: str) -> str:
    return layout(
        title, f'<p class="notice" role="alert">{esc(message)}</p>', base=site.base, current=""
    )
