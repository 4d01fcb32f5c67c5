"""Cluster-wide leases: a periodic job runs in one process of the whole deployment at a time.

Why: ``georisk serve --workers N`` (or several servers on several hosts against one database)
starts every background worker in every process. Clocks that change data — the stale sweep,
alert escalation, automatic deductions, the demo feed — must run once, not N times, and must
keep running when the process that runs them dies.

How: a lease is a PostgreSQL session advisory lock held on a connection of its own. The holder
runs the job; the others try again every ``retry_s``. When the holder dies (crash, SIGKILL,
host gone) its connection closes and PostgreSQL releases the lock, so a survivor takes the job
over within ``retry_s`` (plus TCP keepalive detection for a vanished host). If the holder loses
its own connection, it stops the job before anything else can take it over twice for long:
it checks the connection every ``retry_s``.

Every lease connection names itself in ``application_name`` (``georisk lease NAME host:pid``),
so ``pg_stat_activity`` joined with ``pg_locks`` tells who holds what (``holders``).
"""

from __future__ import annotations

import asyncio
import logging
import os
import socket
from dataclasses import dataclass
from typing import Any

import psycopg
from psycopg import AsyncConnection

from geo_api.workers import Worker
from layers.core.periodic import cancel_task

log = logging.getLogger("georisk.leases")

#: First key of every lease lock (two-int advisory locks): our own namespace, so a lease never
#: collides with the one-int locks recomputes and partition creation take.
LEASE_NAMESPACE_SQL = "hashtext('georisk.lease')"
_APP_NAME_PREFIX = "georisk lease "


def process_label() -> str:
    """``host:pid`` of this process, as lease holders are named."""
    return f"{socket.gethostname()}:{os.getpid()}"


@dataclass(frozen=True)
class Holder:
    lease: str
    process: str  # host:pid of the server process holding it
    since: Any  # when its lease connection started (a datetime)


class Leased:
    """Runs ``inner`` only while this process holds the lease ``name``.

    A :class:`Worker` itself: ``start`` returns at once (the lease is taken in the background,
    perhaps never, while another process holds it); ``stop`` stops the job and releases the
    lease by closing its connection.
    """

    def __init__(self, name: str, inner: Worker, dsn: str, retry_s: float) -> None:
        self.name = name
        self.inner = inner
        self.dsn = dsn
        self.retry_s = retry_s
        self.held = False
        self._task: asyncio.Task[None] | None = None

    async def start(self) -> None:
        self._task = asyncio.create_task(self._hold_forever(), name=f"lease {self.name}")

    async def stop(self) -> None:
        await cancel_task(self._task)
        self._task = None

    async def _hold_forever(self) -> None:
        while True:
            try:
                await self._hold_once()
            except asyncio.CancelledError:
                raise
            except (psycopg.OperationalError, OSError) as exc:
                log.warning("lease %s: database unavailable (%s); retrying", self.name, exc)
            except Exception:
                log.exception("lease %s failed; retrying", self.name)
            await asyncio.sleep(self.retry_s)

    async def _hold_once(self) -> None:
        """Take the lease on a fresh connection, run the job while the connection lives."""
        conn = await AsyncConnection.connect(
            self.dsn,
            autocommit=True,
            application_name=f"{_APP_NAME_PREFIX}{self.name} {process_label()}"[:63],
            # A holder whose host vanished must lose its lock in seconds, not after the
            # kernel's two-hour default: the server probes the idle connection.
            keepalives=1,
            keepalives_idle=5,
            keepalives_interval=2,
            keepalives_count=3,
        )
        try:
            while not await self._try_lock(conn):
                await asyncio.sleep(self.retry_s)
            log.info("lease %s taken by %s", self.name, process_label())
            self.held = True
            try:
                await self.inner.start()
                while True:  # the lease lives as long as this connection answers
                    await asyncio.sleep(self.retry_s)
                    await conn.execute("SELECT 1")
            finally:
                self.held = False
                await self.inner.stop()
                log.info("lease %s released by %s", self.name, process_label())
        finally:
            await conn.close()  # closing the session releases the advisory lock

    async def _try_lock(self, conn: AsyncConnection[Any]) -> bool:
        cur = await conn.execute(
            f"SELECT pg_try_advisory_lock({LEASE_NAMESPACE_SQL}, hashtext(%s))", (self.name,)
        )
        row = await cur.fetchone()
        return bool(row and row[0])


async def holders(conn: AsyncConnection[Any]) -> list[Holder]:
    """Every lease held anywhere in the deployment, from the database's own lock table."""
    cur = await conn.execute(
        "SELECT a.application_name, a.backend_start FROM pg_locks l"
        " JOIN pg_stat_activity a ON a.pid = l.pid"
        f" WHERE l.locktype = 'advisory' AND l.granted AND l.classid::int = {LEASE_NAMESPACE_SQL}"
        # Advisory locks belong to one database: another deployment's database on the same
        # server holds leases of the same names.
        "  AND l.database = (SELECT oid FROM pg_database WHERE datname = current_database())"
        "  AND a.application_name LIKE %s"
        " ORDER BY a.application_name",
        (_APP_NAME_PREFIX + "%",),
    )
    found = []
    for app_name, since in await cur.fetchall():
        lease, _, process = app_name[len(_APP_NAME_PREFIX) :].partition(" ")
        found.append(Holder(lease, process, since))
    return found
