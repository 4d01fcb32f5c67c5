"""Live alert feed: the process's change bus fanned out to many SSE subscribers.

The engine NOTIFYs ``georisk_changes`` with ``layer = "alerts"`` and the alert ids inside its
transaction, so a notification means "committed". The broadcaster subscribes to the change bus
(layers/core/changes.py) and collects ids; one worker reads those alerts (one query per burst,
coalesced) and hands each subscriber a copy. Each
subscriber owns a bounded deque: a slow client loses its oldest events and is told how many
(``lagged``) — publishing never waits on a client and memory stays bounded per client.
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import logging
from collections import deque
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

from psycopg_pool import AsyncConnectionPool

from geo_api.errors import database_unavailable
from layers.alerts.feeds import alerts_by_ids, alerts_changed_since
from layers.core.periodic import cancel_task

log = logging.getLogger("georisk.alert_stream")

#: After a lost LISTEN connection, alerts changed up to this long ago are read again.
RESCAN_MAX_S = 600.0


@dataclass(frozen=True)
class StreamFilter:
    """Empty sets match everything; otherwise the alert's value must be in the set."""

    districts: frozenset[str] = frozenset()
    rules: frozenset[str] = frozenset()
    statuses: frozenset[str] = frozenset()

    def matches(self, props: dict[str, Any]) -> bool:
        return (
            (not self.districts or props.get("district") in self.districts)
            and (not self.rules or props.get("rule") in self.rules)
            and (not self.statuses or props.get("status") in self.statuses)
        )


@dataclass(eq=False)  # identity, not value: subscribers live in a set
class Subscriber:
    """One open stream. ``dropped`` counts events lost to overflow since the last read."""

    filter: StreamFilter
    size: int
    events: deque[dict[str, Any]] = field(init=False)
    dropped: int = 0
    closed: bool = False
    wake: asyncio.Event = field(default_factory=asyncio.Event)

    def __post_init__(self) -> None:
        self.events = deque(maxlen=self.size)

    def offer(self, feature: dict[str, Any]) -> None:
        """Never blocks: a full deque forgets its oldest event (``maxlen`` does the drop)."""
        if len(self.events) == self.size:
            self.dropped += 1
        self.events.append(feature)
        self.wake.set()

    def close(self) -> None:
        self.closed = True
        self.wake.set()

    async def next(self, timeout: float) -> tuple[str, Any] | None:
        """``("lagged", n)``, ``("alert", feature)``, ``("closed", None)``; ``None`` on timeout."""
        if not self.events and not self.dropped and not self.closed:
            self.wake.clear()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self.wake.wait(), timeout)
        if self.closed:
            return ("closed", None)
        if self.dropped:
            n, self.dropped = self.dropped, 0
            return ("lagged", n)
        if self.events:
            return ("alert", self.events.popleft())
        return None


class TooManySubscribers(Exception):
    pass


class AlertBroadcaster:
    """Started and stopped by the app's lifespan; subscribers come and go with requests."""

    def __init__(self, pool: AsyncConnectionPool, queue_size: int, max_subscribers: int) -> None:
        self.pool = pool
        self.queue_size = queue_size
        self.max_subscribers = max_subscribers
        self.subscribers: set[Subscriber] = set()
        self.published = 0
        self._pending: set[int] = set()
        self._rescan = False  # a NOTIFY without ids (> 500 changed): read by time instead
        self._scan_from: dt.datetime | None = None
        self._wake = asyncio.Event()
        self._task: asyncio.Task[None] | None = None

    # -- subscribers --------------------------------------------------------------------
    def subscribe(self, flt: StreamFilter) -> Subscriber:
        if len(self.subscribers) >= self.max_subscribers:
            raise TooManySubscribers(f"more than {self.max_subscribers} open alert streams")
        sub = Subscriber(flt, self.queue_size)
        self.subscribers.add(sub)
        return sub

    def unsubscribe(self, sub: Subscriber) -> None:
        self.subscribers.discard(sub)

    def publish(self, features: Iterable[dict[str, Any]]) -> None:
        for feature in features:
            props = feature.get("properties") or {}
            for sub in list(self.subscribers):
                if sub.filter.matches(props):
                    sub.offer(feature)
            self.published += 1

    # -- the change bus subscriber and the reader ----------------------------------------------
    def on_change(self, payload: dict[str, Any]) -> None:
        if payload.get("layer") != "alerts":
            return
        ids = payload.get("ids")
        if ids is None:
            self._rescan = True
        else:
            self._pending.update(int(i) for i in ids)
        self._wake.set()

    def on_reconnect(self) -> None:
        """After a lost connection (a database restart) what was notified meanwhile is gone,
        but streams that stayed open must not miss it (only a reconnecting browser resumes by
        Last-Event-ID). Re-read by time from the last read, at most RESCAN_MAX_S back (a replay
        sends an alert again, never loses one)."""
        floor = dt.datetime.now(dt.UTC) - dt.timedelta(seconds=RESCAN_MAX_S)
        self._scan_from = max(self._scan_from or floor, floor)
        self._rescan = True
        self._wake.set()

    async def _read(self) -> None:
        while True:
            await self._wake.wait()
            self._wake.clear()
            ids, self._pending = sorted(self._pending), set()
            rescan, self._rescan = self._rescan, False
            if not self.subscribers:
                continue  # nobody listens: don't read
            try:
                async with self.pool.connection() as conn:
                    if rescan:
                        since = self._scan_from or dt.datetime.now(dt.UTC)
                        features = await alerts_changed_since(conn, since, 10_000)
                    else:
                        features = await alerts_by_ids(conn, ids)
                    cur = await conn.execute("SELECT now() - interval '2 seconds'")
                    row = await cur.fetchone()
                    self._scan_from = row[0] if row else None
            except Exception as exc:
                if not database_unavailable(exc):
                    log.exception("reading %d changed alerts failed", len(ids))
                    continue
                # The database is restarting: these alerts are committed (NOTIFY said so), so
                # keep them and read again shortly instead of dropping them.
                log.warning("reading %d changed alerts: database unavailable", len(ids))
                self._pending.update(ids)
                self._rescan = self._rescan or rescan
                await asyncio.sleep(1.0)
                self._wake.set()
                continue
            self.publish(features)

    async def start(self) -> None:
        self._task = asyncio.create_task(self._read())

    async def stop(self) -> None:
        """Close every stream (their responses end) and stop the reader."""
        for sub in list(self.subscribers):
            sub.close()
        await cancel_task(self._task)
        self._task = None
