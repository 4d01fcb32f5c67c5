"""Change notifications: every engine that rewrites derived rows says what changed and where.

``NOTIFY georisk_changes`` with a JSON payload ``{"layer", "count", "ids"?, "bbox"?, "full"?}``
is sent inside the writer's transaction, so listeners (tile cache purge, hexagon refresh, live
push) hear of a change only once it is committed. In the API process they all hear it through
one ``ChangeBus``: one listening connection, fanned out to named subscribers.
"""

from __future__ import annotations

import asyncio
import json
import logging
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from typing import Any, Final

import psycopg
from psycopg import AsyncConnection, sql
from psycopg.rows import tuple_row

from layers.core.periodic import cancel_task

log = logging.getLogger("georisk.changes")

#: PostgreSQL channel every engine notifies on.
CHANGE_CHANNEL: Final = "georisk_changes"
#: NOTIFY payloads must stay under 8000 bytes; past this many ids we send the bbox only.
MAX_IDS_IN_PAYLOAD: Final = 500


async def notify_change(
    conn: AsyncConnection, layer: str, table: str | None, ids: Iterable[int], full: bool = False
) -> dict[str, Any] | None:
    """NOTIFY ``georisk_changes`` with the layer, the ids (when few) and their bbox.

    ``table`` must be a constant from the caller (it names the geometry's table); None for
    rows without a geometry of their own (the notice then has no bbox: the whole layer).
    """
    id_list = sorted(set(ids))
    if not id_list:
        return None
    row = None
    if table is not None:
        cur = conn.cursor(row_factory=tuple_row)
        await cur.execute(
            f"SELECT ST_XMin(x), ST_YMin(x), ST_XMax(x), ST_YMax(x)"
            f" FROM (SELECT ST_Extent(geom)::geometry AS x FROM {table} WHERE id = ANY(%s)) b",
            (id_list,),
        )
        row = await cur.fetchone()
    payload: dict[str, Any] = {"layer": layer, "count": len(id_list)}
    if full:
        payload["full"] = True
    if row and row[0] is not None:
        payload["bbox"] = [round(float(v), 7) for v in row]
    if len(id_list) <= MAX_IDS_IN_PAYLOAD:
        payload["ids"] = id_list
    await conn.execute("SELECT pg_notify(%s, %s)", (CHANGE_CHANNEL, json.dumps(payload)))
    return payload


async def listen(
    url: str,
    channels: Sequence[str],
    on_notice: Callable[[str, dict[str, Any]], None],
    *,
    name: str,
    ready: asyncio.Event | None = None,
    on_connect: Callable[[], None] | None = None,
    retry_s: float = 2.0,
) -> None:
    """LISTEN on ``channels`` over one connection forever; hand each JSON object payload to
    ``on_notice(channel, payload)``.

    Reconnects after a lost connection (a database restart), calling ``on_connect`` each time
    it is listening again — the place to drop whatever may have been missed meanwhile — and
    keeps ``ready`` set only while it is listening. An empty payload is passed as ``{}``, a
    bare JSON value as ``{"value": …}``; a malformed one is logged and skipped. The one home of
    this loop; ``ChangeBus`` is its one user in the API process.
    """
    failures = 0
    while True:
        try:
            conn = await psycopg.AsyncConnection.connect(url, autocommit=True)
            async with conn:
                for channel in channels:
                    await conn.execute(sql.SQL("LISTEN {}").format(sql.Identifier(channel)))
                if failures:
                    log.warning("%s is listening again (%d failed attempts)", name, failures)
                    failures = 0
                if on_connect is not None:
                    on_connect()
                if ready is not None:
                    ready.set()
                async for note in conn.notifies():
                    try:
                        payload = json.loads(note.payload) if note.payload else {}
                    except ValueError:
                        log.warning("%s ignored a malformed payload %r", name, note.payload)
                        continue
                    # A bare value (e.g. a count) still wakes the listener.
                    body = payload if isinstance(payload, dict) else {"value": payload}
                    on_notice(note.channel, body)
        except (psycopg.OperationalError, OSError) as exc:
            # The database restarted or is unreachable: expected; one line per outage.
            if ready is not None:
                ready.clear()
            if not failures:
                log.warning(
                    "%s lost its database connection (%s); retrying every %g s",
                    name,
                    type(exc).__name__,
                    retry_s,
                )
            failures += 1
            await asyncio.sleep(retry_s)
        except psycopg.Error:
            if ready is not None:
                ready.clear()
            log.exception("%s failed; retrying in %g s", name, retry_s)
            failures += 1
            await asyncio.sleep(retry_s)


#: What a subscriber is handed for each notice on its channel.
NoticeHandler = Callable[[dict[str, Any]], None]


@dataclass(frozen=True)
class Subscription:
    """One named consumer of one channel.

    ``on_notice`` and ``on_reconnect`` run inline on the bus's task, so they must not block or
    await: they note what changed (a set, an event) and wake their own worker, whose state is
    bounded by what it tracks (layers, ids since the last read), never by how many notices came.
    """

    name: str
    channel: str
    on_notice: NoticeHandler
    on_reconnect: Callable[[], None] | None = None


class ChangeBus:
    """One LISTEN connection per process, its notices fanned out to named subscribers.

    Why one: every consumer of ``georisk_changes`` (tile purge, hexagon refresh, alert stream)
    and the webhook worker used to hold a listening connection of its own — a connection each,
    per process, and each with its own copy of the reconnect rules. Here the rules live once:

    - ``start`` returns once LISTEN is issued, so whatever starts after the bus hears every
      change committed from then on;
    - a LISTEN after that (a lost connection, a database restart) calls every subscriber's
      ``on_reconnect``: notices sent meanwhile are gone, each subscriber catches up its own way;
      if the first LISTEN took longer than ``ready_timeout_s``, it counts as such a reconnect,
      since the subscribers were started without it.

    Nothing is queued here: a notice is handed to each subscriber of its channel before the
    next is read. A failing subscriber is logged and the others still get the notice.
    Channels are fixed once started (LISTEN is issued on connect): subscribe first.
    """

    def __init__(
        self,
        url: str,
        *,
        name: str = "change bus",
        retry_s: float = 2.0,
        ready_timeout_s: float = 10.0,
    ) -> None:
        self.url = url
        self.name = name
        self.retry_s = retry_s
        self.ready_timeout_s = ready_timeout_s
        #: Set while the connection is listening.
        self.ready = asyncio.Event()
        self.notices = 0
        self.reconnects = 0
        self._subscriptions: dict[str, Subscription] = {}
        self._started = False  # start() returned: a LISTEN from now on is a reconnect
        self._task: asyncio.Task[None] | None = None

    # -- subscribers ------------------------------------------------------------------------
    def subscribe(
        self,
        name: str,
        on_notice: NoticeHandler,
        *,
        channel: str = CHANGE_CHANNEL,
        on_reconnect: Callable[[], None] | None = None,
    ) -> Subscription:
        if name in self._subscriptions:
            raise ValueError(f"{self.name}: a subscriber named {name!r} exists already")
        if self._task is not None and channel not in self.channels:
            raise RuntimeError(f"{self.name} is listening already: cannot add channel {channel}")
        sub = Subscription(name, channel, on_notice, on_reconnect)
        self._subscriptions[name] = sub
        return sub

    def unsubscribe(self, name: str) -> None:
        self._subscriptions.pop(name, None)

    @property
    def subscriptions(self) -> tuple[Subscription, ...]:
        return tuple(self._subscriptions.values())

    @property
    def channels(self) -> tuple[str, ...]:
        """Every channel some subscriber wants, each once (the LISTENs issued on connect)."""
        return tuple(sorted({sub.channel for sub in self._subscriptions.values()}))

    # -- fan-out ----------------------------------------------------------------------------
    def dispatch(self, channel: str, payload: dict[str, Any]) -> None:
        """Hand one notice to every subscriber of ``channel``."""
        self.notices += 1
        for sub in self.subscriptions:
            if sub.channel != channel:
                continue
            try:
                sub.on_notice(payload)
            except Exception:
                log.exception("%s: subscriber %s failed on %r", self.name, sub.name, payload)

    def _on_connect(self) -> None:
        if not self._started:
            return  # the LISTEN start() waits for: nothing was missed yet
        self.reconnects += 1
        for sub in self.subscriptions:
            if sub.on_reconnect is None:
                continue
            try:
                sub.on_reconnect()
            except Exception:
                log.exception("%s: subscriber %s failed to catch up", self.name, sub.name)

    # -- the worker protocol ----------------------------------------------------------------
    async def start(self) -> None:
        """Listen, and return once listening (or after ``ready_timeout_s``: it keeps trying)."""
        self._task = asyncio.create_task(
            listen(
                self.url,
                self.channels,
                self.dispatch,
                name=self.name,
                ready=self.ready,
                on_connect=self._on_connect,
                retry_s=self.retry_s,
            )
        )
        try:
            await asyncio.wait_for(self.ready.wait(), self.ready_timeout_s)
        except TimeoutError:
            log.warning("%s is not listening yet; subscribers will catch up when it is", self.name)
        self._started = True

    async def stop(self) -> None:
        await cancel_task(self._task)
        self._task = None
        self.ready.clear()
        self._started = False
