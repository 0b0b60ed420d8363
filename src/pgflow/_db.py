"""Resolving the configured database to a URL and connecting with one-line errors."""

from __future__ import annotations

from collections.abc import Callable

import psycopg

from pgflow._embedded import EmbeddedServer
from pgflow.config import DatabaseChoice, choose_database, redact
from pgflow.errors import DatabaseUnavailableError


def resolve_url(
    choice: DatabaseChoice | None = None,
    *,
    on_embedded: Callable[[EmbeddedServer, str], None] | None = None,
) -> str:
    """The URL to connect to; starts (or reuses) the embedded server when nothing is configured.

    ``on_embedded`` is told where the embedded server is, so that a CLI can print it.
    """
    chosen = choice or choose_database()
    if chosen.url is not None:
        return chosen.url
    server = EmbeddedServer()
    url = server.start()
    if on_embedded is not None:
        on_embedded(server, url)
    return url


def describe_connect_error(url: str, exc: psycopg.Error) -> str:
    """One line that says which database failed and why (libpq's first line, no password)."""
    detail = str(exc).strip().splitlines()
    reason = detail[0] if detail else type(exc).__name__
    # libpq prefixes every attempt with "connection failed: connection to server at ...";
    # keep the last, most specific part.
    for line in detail:
        if "FATAL" in line or "Connection refused" in line or "could not" in line:
            reason = line.strip()
            break
    return f"cannot connect to {redact(url)}: {reason}"


def connect(url: str, *, autocommit: bool = False, connect_timeout: int = 10) -> psycopg.Connection:
    """A sync connection; connection problems become :class:`DatabaseUnavailableError`."""
    try:
        return psycopg.connect(url, autocommit=autocommit, connect_timeout=connect_timeout)
    except psycopg.OperationalError as exc:
        raise DatabaseUnavailableError(describe_connect_error(url, exc)) from None
