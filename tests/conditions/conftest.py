"""Conditional steps reuse the SQL core tests' helpers: a fresh database per test, the pgflow
calls as a worker makes them, the realtime stub and a LISTEN connection."""

from __future__ import annotations

from tests.sql.conftest import core, listener, realtime

__all__ = ["core", "listener", "realtime"]
