"""Which database to use: one rule, everywhere.

Precedence: an explicit URL (the ``--database-url`` flag) > ``PGFLOW_DATABASE_URL`` >
``DATABASE_URL`` > the embedded default server (started on demand, see :mod:`pgflow._embedded`).
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Literal

import psycopg.conninfo

from pgflow.errors import ConfigurationError, first_line

ENV_DATABASE_URL = "PGFLOW_DATABASE_URL"
ENV_FALLBACK_DATABASE_URL = "DATABASE_URL"

Source = Literal["flag", "PGFLOW_DATABASE_URL", "DATABASE_URL", "embedded"]


@dataclass(frozen=True)
class DatabaseChoice:
    """The URL to connect to (None for the embedded default) and where the choice came from."""

    url: str | None
    source: Source

    @property
    def is_embedded(self) -> bool:
        return self.source == "embedded"


def validate_url(url: str, *, origin: str = "database URL") -> str:
    """Return ``url`` unchanged if libpq can parse it, else raise a one-line error naming it."""
    text = url.strip()
    if not text:
        raise ConfigurationError(f"{origin} is empty")
    try:
        psycopg.conninfo.conninfo_to_dict(text)
    except psycopg.ProgrammingError as exc:
        raise ConfigurationError(
            f"{origin} is not a valid PostgreSQL URL: {first_line(exc, 'unparsable')}"
        ) from None
    return text


def choose_database(
    flag_url: str | None = None, environ: Mapping[str, str] | None = None
) -> DatabaseChoice:
    """Apply the precedence rule; validate whichever URL wins."""
    env = os.environ if environ is None else environ
    if flag_url:
        return DatabaseChoice(validate_url(flag_url, origin="--database-url"), "flag")
    for name in (ENV_DATABASE_URL, ENV_FALLBACK_DATABASE_URL):
        value = env.get(name)
        if value:
            source: Source = "PGFLOW_DATABASE_URL" if name == ENV_DATABASE_URL else "DATABASE_URL"
            return DatabaseChoice(validate_url(value, origin=name), source)
    return DatabaseChoice(None, "embedded")


def redact(url: str) -> str:
    """The URL with any password replaced, safe to print."""
    try:
        params = psycopg.conninfo.conninfo_to_dict(url)
    except psycopg.ProgrammingError:
        return "<invalid URL>"
    if params.get("password"):
        params["password"] = "***"
        return psycopg.conninfo.make_conninfo(**{k: str(v) for k, v in params.items()})
    return url
