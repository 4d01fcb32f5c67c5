"""Reads from streaming replicas that never show the map older than a change already announced.

Why: tiles and read-only queries are most of the load; PostgreSQL's own streaming replicas
(``GEORISK_READ_DATABASE_URL``, one or more) can take them. A replica lags the primary by a
few milliseconds to seconds, and the map must not lie: a colour the caller just changed, or
that the process already told an open map about, must not come back old from a replica.

How: the router keeps the WAL position this process must see (``must_see``). Whenever a change
notice arrives (any process's write, via the change bus) or this process commits a write, the
position is refreshed from the primary (``pg_current_wal_lsn()``, read after the commit, so it
covers it). A read goes to a replica only once that replica has replayed at least that far
(``pg_last_wal_replay_lsn()``, remembered per replica so a replica in step costs nothing
extra); otherwise — or when no replica answers — the read goes to the primary. So a read is
never older than the last change this process knows of; what no process knows of yet is only
the notice's own delivery latency, the same as for the tile cache.
"""

from __future__ import annotations

import contextlib
import itertools
import logging
from collections.abc import AsyncIterator, Sequence
from typing import Any

import psycopg
from psycopg import AsyncConnection
from psycopg_pool import AsyncConnectionPool, PoolTimeout

log = logging.getLogger("georisk.replicas")


def lsn_value(text: str | None) -> int:
    """``'16/B374D848'`` → a comparable integer (``pg_lsn`` is two 32-bit halves)."""
    if not text:
        return 0
    high, _, low = str(text).partition("/")
    return (int(high, 16) << 32) | int(low, 16)


class Replica:
    def __init__(self, pool: AsyncConnectionPool[Any]) -> None:
        self.pool = pool
        self.replayed = 0  # the last replay position seen; only grows on a streaming replica
        self.reads = 0


class ReadRouter:
    """``connection()`` lends a connection for a read: a replica in step, else the primary."""

    def __init__(
        self, primary: AsyncConnectionPool[Any], replicas: Sequence[AsyncConnectionPool[Any]]
    ) -> None:
        self.primary = primary
        self.replicas = [Replica(p) for p in replicas]
        self._turn = itertools.cycle(range(len(self.replicas))) if self.replicas else None
        self.must_see = 0
        self._refresh = False
        self.primary_reads = 0

    # -- what this process must see --------------------------------------------------------
    def on_change(self, payload: dict[str, Any]) -> None:
        """A change was committed somewhere: reads must see the primary's position from now."""
        self._refresh = True

    def on_reconnect(self) -> None:
        self._refresh = True

    def wrote(self) -> None:
        """This process committed a write (read-your-writes for its caller)."""
        self._refresh = True

    async def _update_must_see(self) -> None:
        if not self._refresh:
            return
        self._refresh = False
        async with self.primary.connection() as conn:
            row = await (await conn.execute("SELECT pg_current_wal_lsn()::text")).fetchone()
        self.must_see = max(self.must_see, lsn_value(row[0] if row else None))

    # -- lending ---------------------------------------------------------------------------
    @contextlib.asynccontextmanager
    async def connection(
        self, primary: AsyncConnectionPool[Any] | None = None
    ) -> AsyncIterator[AsyncConnection[Any]]:
        """A replica in step, else a connection to the primary from ``primary`` (another pool
        of the same database, e.g. the tile renders' own; default: the router's pool)."""
        fallback = primary or self.primary
        if not self.replicas:
            async with fallback.connection() as conn:
                yield conn
            return
        await self._update_must_see()
        async with contextlib.AsyncExitStack() as stack:
            conn = await self._replica_in_step(stack)
            if conn is None:
                self.primary_reads += 1
                conn = await stack.enter_async_context(fallback.connection())
            yield conn

    def reading_from(self, primary: AsyncConnectionPool[Any]) -> PrimaryVia:
        """This router, falling back to ``primary`` instead of its own pool (same rules)."""
        return PrimaryVia(self, primary)

    async def _replica_in_step(
        self, stack: contextlib.AsyncExitStack
    ) -> AsyncConnection[Any] | None:
        assert self._turn is not None
        for _ in range(len(self.replicas)):
            replica = self.replicas[next(self._turn)]
            try:
                conn = await stack.enter_async_context(replica.pool.connection(timeout=2.0))
            except (PoolTimeout, psycopg.OperationalError) as exc:
                log.warning("read replica unavailable (%s); trying the next one", exc)
                continue
            if replica.replayed < self.must_see:
                try:
                    cur = await conn.execute("SELECT pg_last_wal_replay_lsn()::text")
                    row = await cur.fetchone()
                except psycopg.OperationalError as exc:
                    log.warning("read replica unavailable (%s); trying the next one", exc)
                    await stack.aclose()
                    continue
                replica.replayed = max(replica.replayed, lsn_value(row[0] if row else None))
            if replica.replayed >= self.must_see:
                replica.reads += 1
                return conn
            # Behind: give the connection back now and ask the next replica.
            await stack.aclose()
        return None

    def stats(self) -> dict[str, Any]:
        return {
            "primary_reads": self.primary_reads,
            "replica_reads": [r.reads for r in self.replicas],
            "must_see": self.must_see,
        }


class PrimaryVia:
    """A :class:`ReadRouter` whose primary reads come from another pool of the primary: the
    tile renders' own (geo_api/db.py ``open_tile_pool``). Replicas and the position every read
    must see are the router's, so the read-your-writes rule is the same one."""

    def __init__(self, router: ReadRouter, primary: AsyncConnectionPool[Any]) -> None:
        self.router = router
        self.primary = primary

    def connection(self) -> contextlib.AbstractAsyncContextManager[AsyncConnection[Any]]:
        return self.router.connection(self.primary)
