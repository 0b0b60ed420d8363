"""Small HTML helpers: every value that reaches a page goes through :func:`esc` (or ``attr``).

No template engine: pages are Python functions returning strings. Values from the database
(slugs, inputs, outputs, error messages) are escaped where they are inserted, and the pages'
Content-Security-Policy forbids inline scripts, so a ``<script>`` in a step output is text.
"""

from __future__ import annotations

import json
import re
from datetime import UTC, datetime
from html import escape
from typing import Any
from urllib.parse import urlencode

#: JSON viewers show at most this many characters; the API has the whole value.
MAX_JSON_CHARS = 50_000

NAVIGATION = (
    ("runs", "Runs", "/"),
    ("flows", "Flows", "/flows"),
    ("workers", "Workers", "/workers"),
    ("schedules", "Schedules", "/schedules"),
    ("metrics", "Metrics", "/metrics"),
)


def esc(value: object) -> str:
    """Text for element content or a double-quoted attribute."""
    return escape(str(value), quote=True)


def css_token(value: str) -> str:
    """A value made safe for a class name (statuses come from the database)."""
    return re.sub(r"[^a-z0-9_-]", "", value.lower()) or "unknown"


def query(**params: object) -> str:
    """``?a=1&b=2`` from the parameters that are set (empty when none are)."""
    given = {k: str(v) for k, v in params.items() if v is not None and v != ""}
    return f"?{urlencode(given)}" if given else ""


def duration(seconds: float | None) -> str:
    if seconds is None:
        return "–"
    if seconds < 1:
        return f"{seconds * 1000:.0f} ms"
    if seconds < 60:
        return f"{seconds:.1f} s"
    minutes, secs = divmod(round(seconds), 60)
    if minutes < 60:
        return f"{minutes}m {secs:02d}s"
    hours, minutes = divmod(minutes, 60)
    return f"{hours}h {minutes:02d}m"


def ago(moment: datetime, now: datetime | None = None) -> str:
    seconds = ((now or datetime.now(UTC)) - moment).total_seconds()
    for unit, size in (("d", 86400), ("h", 3600), ("m", 60)):
        if seconds >= size:
            return f"{seconds // size:.0f}{unit} ago"
    return f"{max(seconds, 0):.0f}s ago"


def when(moment: datetime | None) -> str:
    """A relative time that the page's script keeps current; the exact time on hover."""
    if moment is None:
        return "–"
    iso = moment.isoformat()
    return f'<time datetime="{esc(iso)}" title="{esc(iso)}" data-relative>{esc(ago(moment))}</time>'


def at(moment: datetime | None) -> str:
    """An exact time in UTC (for moments that may be in the future, which ``when`` cannot
    say)."""
    if moment is None:
        return "–"
    iso = moment.isoformat()
    shown = moment.astimezone(UTC).strftime("%Y-%m-%d %H:%M:%S UTC")
    return f'<time datetime="{esc(iso)}" title="{esc(iso)}">{esc(shown)}</time>'


def status_badge(status: str) -> str:
    return f'<span class="status status-{css_token(status)}">{esc(status)}</span>'


def json_viewer(value: Any, label: str) -> str:
    text = json.dumps(value, indent=2, ensure_ascii=False, default=str)
    note = ""
    if len(text) > MAX_JSON_CHARS:
        note = f'<p class="note">Showing {MAX_JSON_CHARS} of {len(text)} characters.</p>'
        text = text[:MAX_JSON_CHARS]
    return f'<pre class="json" aria-label="{esc(label)}">{esc(text)}</pre>{note}'


def error_viewer(message: str | None) -> str:
    if not message:
        return ""
    return f'<pre class="error" role="alert">{esc(message)}</pre>'


def layout(title: str, body: str, *, base: str, current: str) -> str:
    links = " ".join(
        f'<a href="{esc(base + path)}"{" aria-current=page" if key == current else ""}>'
        f"{esc(text)}</a>"
        for key, text, path in NAVIGATION
    )
    return (
        '<!doctype html><html lang="en"><head><meta charset="utf-8">'
        '<meta name="viewport" content="width=device-width, initial-scale=1">'
        f"<title>{esc(title)} · pgflow</title>"
        '<link rel="icon" href="data:,">'
        f'<link rel="stylesheet" href="{esc(base)}/static/dashboard.css">'
        f'<script src="{esc(base)}/static/dashboard.js" defer></script>'
        f'</head><body data-base="{esc(base)}">'
        '<a class="skip" href="#main">Skip to content</a>'
        f'<header><nav aria-label="Main"><a class="brand" href="{esc(base)}/">pgflow</a> {links}'
        '</nav><span id="live-state" class="live-state" role="status" aria-live="polite">'
        "</span></header>"
        f'<main id="main"><h1>{esc(title)}</h1>{body}</main></body></html>'
    )
