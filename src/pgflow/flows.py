"""Keeping flow definitions in the database in step with the code, sync and async.

Each function takes a psycopg connection (sync or async variant) and runs in one transaction
of its own (a savepoint inside the caller's transaction).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

import psycopg

from pgflow import _flow_ops
from pgflow._flow_ops import EnsureResult, FlowSummary
from pgflow._ops import arun, run
from pgflow.dsl._definition import FlowDefinition, definition_of
from pgflow.dsl._flow import Flow
from pgflow.dsl._job import Job

FlowLike = Flow[Any] | Job[Any, Any] | FlowDefinition


def ensure_flow(
    conn: psycopg.Connection[Any], flow: FlowLike, *, recreate: bool = False
) -> EnsureResult:
    """Create, verify or update (options only) the flow; refuse a shape change unless
    ``recreate`` (which deletes the flow's runs). Safe to call from many workers at once."""
    return run(conn, _flow_ops.ensure_flow(definition_of(flow), recreate=recreate))


async def aensure_flow(
    conn: psycopg.AsyncConnection[Any], flow: FlowLike, *, recreate: bool = False
) -> EnsureResult:
    return await arun(conn, _flow_ops.ensure_flow(definition_of(flow), recreate=recreate))


def _from_data(
    slug: str, steps: Iterable[Mapping[str, Any]], options: Mapping[str, Any]
) -> FlowDefinition:
    return FlowDefinition.from_data(slug, steps, options)


def upsert_flow(
    conn: psycopg.Connection[Any],
    slug: str,
    steps: Iterable[Mapping[str, Any]],
    *,
    recreate: bool = False,
    **options: int,
) -> EnsureResult:
    """A flow from plain data (per-tenant automations): ``steps`` are mappings with ``slug``,
    ``depends_on``, ``step_type`` and options; handlers are bound by slug in the worker."""
    return ensure_flow(conn, _from_data(slug, steps, options), recreate=recreate)


async def aupsert_flow(
    conn: psycopg.AsyncConnection[Any],
    slug: str,
    steps: Iterable[Mapping[str, Any]],
    *,
    recreate: bool = False,
    **options: int,
) -> EnsureResult:
    return await aensure_flow(conn, _from_data(slug, steps, options), recreate=recreate)


def delete_flow(conn: psycopg.Connection[Any], slug: str) -> bool:
    """Delete the definition, runs, tasks and queue of a flow; False if it did not exist."""
    return run(conn, _flow_ops.delete_flow(slug))


async def adelete_flow(conn: psycopg.AsyncConnection[Any], slug: str) -> bool:
    return await arun(conn, _flow_ops.delete_flow(slug))


def flow_exists(conn: psycopg.Connection[Any], slug: str) -> bool:
    return run(conn, _flow_ops.flow_exists(slug))


async def aflow_exists(conn: psycopg.AsyncConnection[Any], slug: str) -> bool:
    return await arun(conn, _flow_ops.flow_exists(slug))


def list_flows(conn: psycopg.Connection[Any]) -> list[FlowSummary]:
    return run(conn, _flow_ops.list_flows())


async def alist_flows(conn: psycopg.AsyncConnection[Any]) -> list[FlowSummary]:
    return await arun(conn, _flow_ops.list_flows())


__all__ = [
    "EnsureResult",
    "FlowDefinition",
    "FlowSummary",
    "adelete_flow",
    "aensure_flow",
    "aflow_exists",
    "alist_flows",
    "aupsert_flow",
    "delete_flow",
    "ensure_flow",
    "flow_exists",
    "list_flows",
    "upsert_flow",
]
