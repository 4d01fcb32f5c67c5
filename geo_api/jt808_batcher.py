"""The JT/T 808 gateway's ingest: fixes of all connections, stored in shared batches.

Why batches: one transaction per location report would cost a commit per fix; terminals
report every few seconds, so fixes wait up to ``flush_interval_s`` (or until ``batch_size``
have come) and go through the SAME pipeline as ``POST /api/positions`` — the tanker kind of
``layers/core/ingest.py`` on one pooled connection, the carriers it names re-rated, the
terminals marked seen — in one transaction. ``submit`` returns only once that transaction has
committed, so the gateway answers a terminal after its fixes are durable; if the store fails
(database down) ``submit`` raises and the terminal gets no answer and re-sends.

Bounded: at most ``max_pending`` fixes wait (a submitter beyond that waits for room, first come
first served, and its connection stops reading — TCP backpressure to the terminal). Up to
``commits`` batches are stored at once, each in its own transaction on its own pooled
connection: while PostgreSQL works on one, this process decodes and screens the next. A
vehicle's rows are locked in id order by every batch (``layers/core/ingest.py``), so two
batches naming the same vehicle queue rather than deadlock.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections import deque
from dataclasses import dataclass

import numpy as np
from psycopg_pool import AsyncConnectionPool

from geo_api.db import set_actor
from geo_api.rerate import Rerater
from layers.core.ingest import ingest_batch
from layers.core.periodic import cancel_task
from layers.core.window import DEFAULT_WINDOW, TsWindow
from layers.transport.config import TankerRules
from layers.transport.ingest import TankerFixes
from layers.transport.jt808 import terminals
from layers.transport.jt808.fixes import concat_rows
from layers.transport.parse import Rows

log = logging.getLogger("georisk.jt808")
ACTOR = "jt808-gateway"  # who wrote, in the audit log


@dataclass
class _Submission:
    rows: Rows  # one message's fixes (``index`` within the message)
    done: asyncio.Future[list[str | None]]


@dataclass
class BatchStats:
    batches: int = 0
    stored: int = 0
    duplicates: int = 0
    rejected: int = 0
    failures: int = 0


class FixBatcher:
    def __init__(
        self,
        pool: AsyncConnectionPool,
        rerate: Rerater,
        rules: TankerRules,
        batch_size: int,
        flush_interval_s: float,
        max_pending: int,
        window: TsWindow = DEFAULT_WINDOW,
        commits: int = 1,
    ) -> None:
        self.pool = pool
        self.rerate = rerate
        self.rules = rules
        self.window = window  # the configured retention and skew (GEORISK_RETENTION_*)
        self.batch_size = batch_size
        self.flush_interval_s = flush_interval_s
        self.max_pending = max_pending
        self.commits = commits
        self.stats = BatchStats()
        self._queue: deque[_Submission] = deque()
        self._queued = 0  # fixes in ``_queue``
        self._pending = 0  # fixes submitted and not yet answered (queued or being stored)
        # Submitters waiting for room, first come first served: woken one by one as room
        # frees (a Condition's notify_all woke all thousand connections for every batch).
        self._waiting: deque[tuple[int, asyncio.Future[None]]] = deque()
        self._wake = asyncio.Event()
        self._full = asyncio.Event()
        self._slots = asyncio.Semaphore(commits)
        self._stores: set[asyncio.Task[None]] = set()
        self._task: asyncio.Task[None] | None = None

    async def submit(self, rows: Rows) -> list[str | None]:
        """Store one message's fixes (``layers/transport/jt808/fixes.py``); per row of it
        ``None`` (stored, or already stored) or the reason it was refused. Returns after the
        commit; raises when the batch could not be stored."""
        n = rows.total
        # One submission larger than the bound still goes alone.
        if self._waiting or (self._pending and self._pending + n > self.max_pending):
            room: asyncio.Future[None] = asyncio.get_running_loop().create_future()
            self._waiting.append((n, room))
            try:
                await room  # ``_release`` counts our fixes in ``_pending`` when it wakes us
            except asyncio.CancelledError:
                if room.done() and not room.cancelled():  # room was given: hand it on
                    self._release(n)
                raise
        else:
            self._pending += n
        done: asyncio.Future[list[str | None]] = asyncio.get_running_loop().create_future()
        self._queue.append(_Submission(rows, done))
        self._queued += n
        self._wake.set()
        if self._queued >= self.batch_size:
            self._full.set()
        return await done

    def _release(self, n: int) -> None:
        """``n`` fixes answered: let waiting submitters in, in order, while they fit (their
        fixes are counted as they are woken, so later arrivals cannot take the room)."""
        self._pending -= n
        while self._waiting:
            want, room = self._waiting[0]
            if room.done():  # its connection went while it waited
                self._waiting.popleft()
                continue
            if self._pending and self._pending + want > self.max_pending:
                break
            self._waiting.popleft()
            self._pending += want
            room.set_result(None)

    def _take(self) -> list[_Submission]:
        """Whole submissions up to ``batch_size`` fixes (at least one)."""
        take: list[_Submission] = []
        rows = 0
        while self._queue and (not take or rows + self._queue[0].rows.total <= self.batch_size):
            sub = self._queue.popleft()
            take.append(sub)
            rows += sub.rows.total
        self._queued -= rows
        if self._queued < self.batch_size:
            self._full.clear()
        if not self._queue:
            self._wake.clear()
        return take

    async def _run(self) -> None:
        while True:
            await self._wake.wait()
            with contextlib.suppress(TimeoutError):  # gather for a while unless full
                await asyncio.wait_for(self._full.wait(), self.flush_interval_s)
            # Up to ``commits`` batches are stored at once: while the database works on one,
            # this process decodes and screens the next (one process has one core).
            await self._slots.acquire()
            take = self._take()
            if not take:
                self._slots.release()
                continue
            task = asyncio.create_task(self._commit(take))
            self._stores.add(task)
            task.add_done_callback(self._stores.discard)

    async def _commit(self, take: list[_Submission]) -> None:
        try:
            results = await self._store(concat_rows([sub.rows for sub in take]))
        except Exception as exc:
            self.stats.failures += 1
            log.warning("jt808: a batch of fixes could not be stored, no answer sent (%s)", exc)
            for sub in take:
                if not sub.done.done():
                    sub.done.set_exception(exc)
        else:
            pos = 0
            for sub in take:
                part = results[pos : pos + sub.rows.total]
                pos += sub.rows.total
                if not sub.done.done():  # its connection may have gone meanwhile
                    sub.done.set_result(part)
        finally:
            self._slots.release()
            self._release(sum(sub.rows.total for sub in take))

    async def _store(self, rows: Rows) -> list[str | None]:
        async with self.pool.connection() as conn:
            await set_actor(conn, ACTOR)
            result = await ingest_batch(conn, TankerFixes(self.rules), rows, self.window)
            if result.enterprises:
                await self.rerate(conn, result.enterprises)
            await terminals.seen(conn, np.unique(rows.vehicle_id).tolist())
        # Committed: now the answers may go out.
        out: list[str | None] = [None] * rows.total
        for r in result.rejected:
            out[r["index"]] = r["error"]
        self.stats.batches += 1
        self.stats.stored += result.accepted
        self.stats.duplicates += result.duplicates
        self.stats.rejected += len(result.rejected)
        return out

    async def start(self) -> None:
        self._task = asyncio.create_task(self._run())

    async def stop(self) -> None:
        await cancel_task(self._task)
        self._task = None
        # Batches being committed finish (their terminals get their answers) …
        if self._stores:
            await asyncio.gather(*self._stores, return_exceptions=True)
        for sub in self._queue:  # … the queued ones were never stored: their terminals re-send
            if not sub.done.done():
                sub.done.cancel()
        self._queue.clear()
        self._queued = 0
        for _, room in self._waiting:
            room.cancel()
        self._waiting.clear()
