"""Size limit of the JSON values pgflow stores: run inputs and step outputs.

PostgreSQL refuses a jsonb value over 255 MB, and every value is copied into task inputs and
events, so values near that limit fail late and deep inside the SQL core. pgflow refuses them at
the boundary instead: 64 MB by default (its UTF-8 JSON text), configurable with
``PGFLOW_MAX_JSON_BYTES``. pgmq messages carry only ids, so queues are never the limit.
"""

from __future__ import annotations

import os

DEFAULT_MAX_JSON_BYTES = 64 * 1024 * 1024
MAX_JSON_BYTES_VARIABLE = "PGFLOW_MAX_JSON_BYTES"


def max_json_bytes() -> int:
    """The limit in force (read on every call, so a changed environment takes effect)."""
    configured = os.environ.get(MAX_JSON_BYTES_VARIABLE)
    return int(configured) if configured else DEFAULT_MAX_JSON_BYTES


def oversize_problem(json_text: str, what: str) -> str | None:
    """Why ``json_text`` is too large to store, or None when it fits."""
    limit = max_json_bytes()
    size = len(json_text.encode())
    if size <= limit:
        return None
    return (
        f"{what} is {size} bytes of JSON, over the limit of {limit} bytes "
        f"(set {MAX_JSON_BYTES_VARIABLE} to change it)"
    )
