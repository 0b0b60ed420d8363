"""Drawings as inline SVG, made on the server: the DAG, the timeline of a run, bar charts.

Colours come from the stylesheet through class names (``status-completed``…), so the SVG has
no inline styles and the page's Content-Security-Policy can forbid them.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime

from pgflow.cli._dag import layers
from pgflow.web._html import css_token, duration, esc

NODE_WIDTH = 168
NODE_HEIGHT = 46
COLUMN_GAP = 56
ROW_GAP = 18
MARGIN = 8
SLUG_CHARS = 20


@dataclass(frozen=True)
class DagNode:
    slug: str
    step_type: str
    deps: Sequence[str]
    #: None when drawing a flow's definition rather than a run.
    status: str | None = None
    detail: str = ""
    href: str | None = None


def _short(text: str, chars: int) -> str:
    return text if len(text) <= chars else text[: chars - 1] + "…"


def dag_svg(nodes: Sequence[DagNode], *, label: str) -> str:
    """Steps in columns by depth, left to right, with an arrow from each dependency."""
    if not nodes:
        return '<p class="note">This flow has no steps.</p>'
    columns = layers(nodes)
    tallest = max(len(c) for c in columns)
    height = MARGIN * 2 + tallest * NODE_HEIGHT + (tallest - 1) * ROW_GAP
    width = MARGIN * 2 + len(columns) * NODE_WIDTH + (len(columns) - 1) * COLUMN_GAP
    position: dict[str, tuple[float, float]] = {}
    for index, column in enumerate(columns):
        column_height = len(column) * NODE_HEIGHT + (len(column) - 1) * ROW_GAP
        top = (height - column_height) / 2
        for row, slug in enumerate(column):
            position[slug] = (
                MARGIN + index * (NODE_WIDTH + COLUMN_GAP),
                top + row * (NODE_HEIGHT + ROW_GAP),
            )
    edges = []
    for node in nodes:
        x2, y2 = position[node.slug]
        for dependency in node.deps:
            if dependency not in position:
                continue
            x1, y1 = position[dependency]
            start = (x1 + NODE_WIDTH, y1 + NODE_HEIGHT / 2)
            end = (x2 - 4, y2 + NODE_HEIGHT / 2)
            bend = COLUMN_GAP / 2
            edges.append(
                f'<path class="dag-edge" marker-end="url(#dag-arrow)" d="M{start[0]:.0f} '
                f"{start[1]:.0f} C{start[0] + bend:.0f} {start[1]:.0f} {end[0] - bend:.0f} "
                f'{end[1]:.0f} {end[0]:.0f} {end[1]:.0f}"/>'
            )
    boxes = []
    for node in nodes:
        x, y = position[node.slug]
        state = css_token(node.status) if node.status else "defined"
        kind = " dag-map" if node.step_type == "map" else ""
        described = f"{node.slug} ({node.step_type}){': ' + node.status if node.status else ''}"
        caption = " · ".join(filter(None, (node.status, node.detail))) or node.step_type
        box = (
            f'<g class="dag-node status-{state}{kind}" data-step="{esc(node.slug)}">'
            f"<title>{esc(described + (' ' + node.detail if node.detail else ''))}</title>"
            f'<rect x="{x:.0f}" y="{y:.0f}" width="{NODE_WIDTH}" height="{NODE_HEIGHT}" rx="6"/>'
            f'<text x="{x + 10:.0f}" y="{y + 19:.0f}" class="dag-slug">'
            f"{esc(_short(node.slug, SLUG_CHARS))}</text>"
            f'<text x="{x + 10:.0f}" y="{y + 36:.0f}" class="dag-detail">'
            f"{esc(_short(caption, 26))}"
            "</text></g>"
        )
        if node.href:
            box = f'<a href="{esc(node.href)}">{box}</a>'
        boxes.append(box)
    return (
        f'<svg class="dag" role="img" aria-label="{esc(label)}" viewBox="0 0 {width:.0f} '
        f'{height:.0f}" width="{width:.0f}" height="{height:.0f}">'
        '<defs><marker id="dag-arrow" viewBox="0 0 8 8" refX="7" refY="4" markerWidth="8" '
        'markerHeight="8" orient="auto"><path d="M0 0 L8 4 L0 8 z"/></marker></defs>'
        f"{''.join(edges)}{''.join(boxes)}</svg>"
    )


@dataclass(frozen=True)
class Bar:
    label: str
    status: str
    start: datetime | None
    end: datetime | None
    note: str = ""


GANTT_WIDTH = 900
GANTT_LABEL = 170
GANTT_ROW = 26
GANTT_AXIS = 24


def gantt_svg(bars: Sequence[Bar], origin: datetime, finish: datetime, *, label: str) -> str:
    """One row per bar on a shared time axis from ``origin`` to ``finish``; a bar without an
    end is still running (it reaches ``finish``), one without a start has not started."""
    span = max((finish - origin).total_seconds(), 0.001)
    plot = GANTT_WIDTH - GANTT_LABEL - MARGIN
    height = GANTT_AXIS + len(bars) * GANTT_ROW + MARGIN

    def x_at(moment: datetime) -> float:
        offset = (moment - origin).total_seconds()
        return GANTT_LABEL + plot * min(max(offset / span, 0.0), 1.0)

    ticks = []
    for fraction in (0, 0.25, 0.5, 0.75, 1):
        x = GANTT_LABEL + plot * fraction
        anchor = "end" if fraction == 1 else "start" if fraction == 0 else "middle"
        ticks.append(
            f'<line class="gantt-grid" x1="{x:.0f}" y1="{GANTT_AXIS - 6}" x2="{x:.0f}" '
            f'y2="{height - MARGIN}"/><text class="gantt-tick" x="{x:.0f}" y="{GANTT_AXIS - 10}" '
            f'text-anchor="{anchor}">{esc(duration(span * fraction))}</text>'
        )
    rows = []
    for index, bar in enumerate(bars):
        y = GANTT_AXIS + index * GANTT_ROW
        row = (
            f'<text class="gantt-label" x="{GANTT_LABEL - 8}" y="{y + 17}" text-anchor="end">'
            f"{esc(_short(bar.label, 22))}</text>"
        )
        if bar.start is not None:
            left = x_at(bar.start)
            right = max(x_at(bar.end or finish), left + 2)
            state = css_token(bar.status)
            seconds = ((bar.end or finish) - bar.start).total_seconds()
            text = f"{duration(seconds)}{' · ' + bar.note if bar.note else ''}"
            inside = right - left > 7 * len(text)
            row += (
                f'<g class="gantt-bar status-{state}"><title>{esc(bar.label)}: {esc(bar.status)}'
                f", {esc(text)}</title>"
                f'<rect x="{left:.1f}" y="{y + 4}" width="{right - left:.1f}" '
                f'height="{GANTT_ROW - 8}" rx="3"/>'
                f'<text class="gantt-text{" inside" if inside else ""}" '
                f'x="{(left + 6) if inside else (right + 6):.1f}" y="{y + 17}">{esc(text)}</text>'
                "</g>"
            )
        else:
            row += (
                f'<text class="gantt-text" x="{GANTT_LABEL + 6}" y="{y + 17}">'
                f"{esc(bar.status)}</text>"
            )
        rows.append(row)
    return (
        f'<svg class="gantt" role="img" aria-label="{esc(label)}" viewBox="0 0 {GANTT_WIDTH} '
        f'{height}" width="{GANTT_WIDTH}" height="{height}">{"".join(ticks)}{"".join(rows)}</svg>'
    )


@dataclass(frozen=True)
class Series:
    name: str
    css_class: str
    values: Sequence[float]


CHART_WIDTH = 900
CHART_HEIGHT = 200
CHART_LEFT = 56
CHART_BOTTOM = 22


def bar_chart(
    labels: Sequence[str], series: Sequence[Series], *, label: str, unit: str = ""
) -> str:
    """Stacked bars, one per label; the series are stacked bottom-up in the order given."""
    count = len(labels)
    if count == 0:
        return '<p class="note">No data.</p>'
    totals = [sum(s.values[i] for s in series) for i in range(count)]
    peak = max(max(totals), 1e-9)
    plot_width = CHART_WIDTH - CHART_LEFT - MARGIN
    plot_height = CHART_HEIGHT - CHART_BOTTOM - MARGIN
    slot = plot_width / count
    bars = []
    for i in range(count):
        bottom = float(CHART_HEIGHT - CHART_BOTTOM)
        for s in series:
            value = s.values[i]
            if value <= 0:
                continue
            size = plot_height * value / peak
            bottom -= size
            bars.append(
                f'<rect class="{esc(s.css_class)}" x="{CHART_LEFT + i * slot + slot * 0.1:.1f}" '
                f'y="{bottom:.1f}" width="{max(slot * 0.8, 1):.1f}" height="{size:.1f}">'
                f"<title>{esc(labels[i])}: {esc(s.name)} {value:g}{esc(unit)}</title></rect>"
            )
    axis = (
        f'<text class="chart-tick" x="{CHART_LEFT - 6}" y="{MARGIN + 10}" text-anchor="end">'
        f"{peak:.3g}{esc(unit)}</text>"
        f'<text class="chart-tick" x="{CHART_LEFT - 6}" y="{CHART_HEIGHT - CHART_BOTTOM}" '
        f'text-anchor="end">0</text>'
        f'<line class="chart-axis" x1="{CHART_LEFT}" y1="{CHART_HEIGHT - CHART_BOTTOM}" '
        f'x2="{CHART_WIDTH - MARGIN}" y2="{CHART_HEIGHT - CHART_BOTTOM}"/>'
        f'<text class="chart-tick" x="{CHART_LEFT}" y="{CHART_HEIGHT - 6}">{esc(labels[0])}</text>'
        f'<text class="chart-tick" x="{CHART_WIDTH - MARGIN}" y="{CHART_HEIGHT - 6}" '
        f'text-anchor="end">{esc(labels[-1])}</text>'
    )
    legend = "".join(
        f'<span class="legend {esc(s.css_class)}">{esc(s.name)}</span>' for s in series
    )
    return (
        f'<figure class="chart"><svg role="img" aria-label="{esc(label)}" '
        f'viewBox="0 0 {CHART_WIDTH} {CHART_HEIGHT}" width="{CHART_WIDTH}" '
        f'height="{CHART_HEIGHT}">{axis}{"".join(bars)}</svg>'
        f"<figcaption>{esc(label)} {legend}</figcaption></figure>"
    )
