"""The connection a worker's last call used, kept for its next call.

psycopg_pool hands out the connection that has waited longest, so an idle worker's successive
calls (claim, complete and claim, complete and claim...) each went to another server process,
one that had been asleep for a while. On the benchmark machine a call is slower in a process
that has not just run: the same complete-and-claim loop took 1.7 ms a call on one connection and
2.0-3.0 ms rotating through two or three. Keeping the last connection for the next call makes
an idle worker's calls go to one warm server process. A busy worker (its claims get as many
tasks as they ask for) uses the pool as before: keeping a connection there measured 5-8 % fewer
tasks a second in the busy chain (two workers, alternating A/B rounds), for no gain.
"""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator
from typing import TYPE_CHECKING, Any

from psycopg.pq import TransactionStatus

if TYPE_CHECKING:
    from psycopg import AsyncConnection
    from psycopg_pool import AsyncConnectionPool


class WarmConnection:
    """Connections of ``pool`` for autocommit statements; while the worker is quiet, the one
    given back last is kept for the next call."""

    def __init__(self, pool: AsyncConnectionPool[Any]) -> None:
        self._pool = pool
        self._kept: AsyncConnection[Any] | None = None
        self._out = 0
        #: Set by the caller: the last claim found the queue dry (fewer tasks than it asked
        #: for), so the next call is likely a lone one whose latency counts.
        self.quiet = True

    @contextlib.asynccontextmanager
    async def connection(self) -> AsyncIterator[AsyncConnection[Any]]:
        """A connection for statements in autocommit mode (no transaction is left open)."""
        self._out += 1
        try:
            conn, self._kept = self._kept, None
            if conn is None:
                conn = await self._pool.getconn()
        except BaseException:
            self._out -= 1
            raise
        try:
            yield conn
        except BaseException:
            self._out -= 1
            # The pool looks at it: rolls back what is open, replaces it if it is broken.
            await self._pool.putconn(conn)
            raise
        self._out -= 1
        if (
            self.quiet
            and self._out == 0
            and self._kept is None
            and not conn.closed
            and conn.info.transaction_status == TransactionStatus.IDLE
        ):
            self._kept = conn
        else:
            await self._pool.putconn(conn)

    async def close(self) -> None:
        """Give the kept connection back to the pool (before the pool closes)."""
        conn, self._kept = self._kept, None
        if conn is not None:
            await self._pool.putconn(conn)
