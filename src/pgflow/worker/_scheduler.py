"""The worker's scheduler: fires the cron schedules of the flows a worker serves.

Every worker runs one (unless ``scheduler=False``); any number of them, on any number of hosts,
may serve the same flows. Each occurrence starts exactly one run: firing inserts the occurrence
under its primary key in the same transaction as the run (see ``pgflow.fire_schedule``), and a
schedule being fired is row-locked, so other schedulers skip it instead of redoing the work.

The scheduler sleeps until the next occurrence is due (at most ``interval`` seconds, so that
schedules added meanwhile are found), reading the time from the database: hosts' clocks do not
matter.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Sequence
from typing import Any

import psycopg
from psycopg_pool import AsyncConnectionPool

from pgflow import _schedule_ops
from pgflow._ops import arun
from pgflow.dsl._flow import Flow
from pgflow.errors import PgflowError, first_line

log = logging.getLogger("pgflow.scheduler")

#: After a schedule failed to fire, it is retried this many seconds later.
RETRY_AFTER = 10.0
#: Shortest sleep while a due schedule is held by another scheduler.
MIN_SLEEP = 0.1


class Scheduler:
    """Registers the schedules declared on ``flows`` and fires those of the flows' schedules
    (declared or added by clients) that are due."""

    def __init__(
        self, pool: AsyncConnectionPool[Any], flows: Sequence[Flow[Any]], *, interval: float
    ) -> None:
        self.pool = pool
        self.flows = list(flows)
        self.interval = interval
        self._retry_at: dict[str, float] = {}

    async def register(self) -> None:
        """Store the schedules declared in code (an operator's enable/disable is kept)."""
        async with self.pool.connection() as conn:
            for flow in self.flows:
                for spec in flow.schedules:
                    schedule = await arun(conn, _schedule_ops.register_declared(flow, spec))
                    log.info(
                        "schedule %s (%s, %s) of flow %s: next at %s%s",
                        schedule.name,
                        schedule.cron,
                        schedule.timezone,
                        flow.slug,
                        schedule.next_occurrence_at,
                        "" if schedule.enabled else " (disabled)",
                    )

    async def run_once(self) -> float:
        """Fire every due schedule; returns how long to sleep before the next pass."""
        async with self.pool.connection() as conn:
            due = await arun(conn, _schedule_ops.due_schedules([f.slug for f in self.flows]))
        now = time.monotonic()
        sleep = self.interval
        fired_any = False
        for name, due_in in due:
            retry_at = self._retry_at.get(name)
            if retry_at is not None and retry_at > now:
                sleep = min(sleep, retry_at - now)
                continue
            if due_in > 0:
                sleep = min(sleep, due_in)
                continue
            fired_any |= await self._fire(name)
        return 0.0 if fired_any else max(sleep, MIN_SLEEP)

    async def _fire(self, name: str) -> bool:
        """Fire one due schedule; False when it was not due any more (another scheduler
        fired it), or it failed."""
        try:
            async with self.pool.connection() as conn:
                result = await arun(conn, _schedule_ops.fire_due(name))
        except (psycopg.Error, PgflowError) as exc:
            log.warning(
                "schedule %s could not fire: %s (retrying in %.0fs)",
                name,
                first_line(exc),
                RETRY_AFTER,
            )
            self._retry_at[name] = time.monotonic() + RETRY_AFTER
            return False
        self._retry_at.pop(name, None)
        if result.skipped is not None:
            log.warning(
                "schedule %s: skipped missed occurrences from %s to %s (max_catch_up)",
                name,
                result.skipped[0].isoformat(),
                result.skipped[1].isoformat(),
            )
        for occurrence, run_id in result.fired:
            log.info("schedule %s: started run %s for %s", name, run_id, occurrence.isoformat())
        return result.claimed

    async def run(self) -> None:
        while True:
            try:
                sleep = await self.run_once()
            except psycopg.Error as exc:
                log.warning("scheduler pass failed: %s", first_line(exc))
                sleep = self.interval
            await asyncio.sleep(sleep)


async def start_scheduler(
    pool: AsyncConnectionPool[Any], flows: Sequence[Flow[Any]], *, interval: float, register: bool
) -> asyncio.Task[None] | None:
    """Register the declared schedules (when ``register``) and start firing; None when the
    database's pgflow core has no schedules (an upstream core, or not upgraded)."""
    async with pool.connection() as conn:
        cur = await conn.execute(
            "SELECT to_regprocedure('pgflow.fire_schedule(text, timestamptz)')"
        )
        row = await cur.fetchone()
    if row is None or row[0] is None:
        if any(flow.schedules for flow in flows):
            log.warning(
                "this database's pgflow core has no schedules (run `pgflow install`): the "
                "schedules declared on the flows are not fired"
            )
        return None
    scheduler = Scheduler(pool, flows, interval=interval)
    if register:
        await scheduler.register()
    return asyncio.create_task(scheduler.run(), name="pgflow:scheduler")
