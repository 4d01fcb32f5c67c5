"""The live map's change feed: change notices turned into versioned tile-layer changes, per viewer.

Why: a map that refetches only when someone pans shows a colour minutes old. Every engine already
NOTIFYs what it changed (layer and bbox) inside its transaction; the process's change bus hands
each notice to :class:`MapChangeFeed` *after* the tile purge (subscription order), so by the time
a map hears "enterprises changed here", the cached tiles there are gone and a refetch renders
the new colour.

A notice names a changed table-layer (``enterprises``, ``alarms`` …); the catalogue says which
tile layers it invalidates (``Catalog.tile_layers_for_change``). Each of those becomes one
:class:`MapChange` with a version. Versions are integers that only grow: they start at the
process's start time in microseconds and count up, so a version from before a restart is older
than every new one. The last ``history`` changes are kept, so a map that reconnects with
``Last-Event-ID`` gets what it missed; one that missed more, or lagged behind its bounded queue,
is told to reload its view instead of growing a queue.

A viewer only hears of changes it may see: tile layers its role may request, and (for a district
regulator or officer, or an enterprise) changes whose bbox touches its own area.
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import time
from collections import deque
from dataclasses import dataclass, field
from typing import Any

from layers.catalog import Catalog

Bbox = tuple[float, float, float, float]


@dataclass(frozen=True)
class MapChange:
    version: int
    layer: str  # a tile layer name
    bbox: Bbox | None  # None: anywhere in the layer
    ts: str  # when this process received the notice (ISO 8601, UTC)

    def as_dict(self) -> dict[str, Any]:
        return {
            "version": self.version,
            "layer": self.layer,
            "bbox": list(self.bbox) if self.bbox is not None else None,
            "ts": self.ts,
        }


def _touches(a: Bbox | None, b: Bbox | None) -> bool:
    """Does change bbox ``a`` touch area ``b``? Unknown extents always do."""
    if a is None or b is None:
        return True
    return a[0] <= b[2] and b[0] <= a[2] and a[1] <= b[3] and b[1] <= a[3]


@dataclass(eq=False)  # identity: viewers live in a set
class Viewer:
    """One open map. ``layers``: tile layers it may see; ``area``: the extent of its own rows
    (None: everything), which filters the changes of ``scoped`` layers — reference layers such
    as zones are the same for everyone and are never cut to an area."""

    layers: frozenset[str]
    area: Bbox | None
    scoped: frozenset[str]
    size: int
    events: deque[MapChange] = field(init=False)
    reload_reason: str | None = None
    closed: bool = False
    wake: asyncio.Event = field(default_factory=asyncio.Event)

    def __post_init__(self) -> None:
        self.events = deque()

    def wants(self, change: MapChange) -> bool:
        if change.layer not in self.layers:
            return False
        return change.layer not in self.scoped or _touches(change.bbox, self.area)

    def offer(self, change: MapChange) -> None:
        """Never blocks. A viewer that falls ``size`` changes behind is told to reload its
        view: cheaper for both sides than replaying a backlog tile by tile."""
        if self.reload_reason is not None:
            return
        if len(self.events) >= self.size:
            self.events.clear()
            self.reload_reason = "lagging"
        else:
            self.events.append(change)
        self.wake.set()

    def reload(self, reason: str) -> None:
        self.events.clear()
        self.reload_reason = reason
        self.wake.set()

    def close(self) -> None:
        self.closed = True
        self.wake.set()

    async def next(self, timeout: float) -> tuple[str, Any] | None:
        """``("change", MapChange)``, ``("reload", reason)``, ``("closed", None)``; ``None``
        when nothing happened within ``timeout`` (time for a heartbeat)."""
        if not self.events and self.reload_reason is None and not self.closed:
            self.wake.clear()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self.wake.wait(), timeout)
        if self.closed:
            return ("closed", None)
        if self.reload_reason is not None:
            reason, self.reload_reason = self.reload_reason, None
            return ("reload", reason)
        if self.events:
            return ("change", self.events.popleft())
        return None


class TooManyViewers(Exception):
    pass


class MapChangeFeed:
    """A change bus subscriber (``on_change`` / ``on_reconnect``) and the hub of open maps."""

    def __init__(self, catalog: Catalog, history: int, queue_size: int, max_viewers: int) -> None:
        self.catalog = catalog
        self.queue_size = queue_size
        self.max_viewers = max_viewers
        self.version = time.time_ns() // 1000
        self.history: deque[MapChange] = deque(maxlen=history)
        self.viewers: set[Viewer] = set()

    # -- the change bus side ---------------------------------------------------------------
    def on_change(self, payload: dict[str, Any]) -> None:
        changed = str(payload.get("layer"))
        bbox = _bbox(payload)
        ts = dt.datetime.now(dt.UTC).isoformat(timespec="milliseconds")
        for tile_layer in self.catalog.tile_layers_for_change(changed):
            if not tile_layer.announce:
                continue
            self.version += 1
            change = MapChange(self.version, tile_layer.name, bbox, ts)
            self.history.append(change)
            for viewer in list(self.viewers):
                if viewer.wants(change):
                    viewer.offer(change)

    def on_reconnect(self) -> None:
        """Notices sent while the bus was disconnected are lost: every open map reloads."""
        for viewer in list(self.viewers):
            viewer.reload("change notices were interrupted")

    # -- the viewers' side -------------------------------------------------------------------
    def subscribe(
        self, layers: frozenset[str], area: Bbox | None, scoped: frozenset[str] = frozenset()
    ) -> Viewer:
        if len(self.viewers) >= self.max_viewers:
            raise TooManyViewers(f"more than {self.max_viewers} open map streams")
        viewer = Viewer(layers, area, scoped, self.queue_size)
        self.viewers.add(viewer)
        return viewer

    def unsubscribe(self, viewer: Viewer) -> None:
        self.viewers.discard(viewer)

    def missed(self, viewer: Viewer, since: int) -> list[MapChange] | None:
        """What ``viewer`` missed after version ``since``; None when that cannot be told (the
        version is unknown to this process or older than the history): reload."""
        if since > self.version:
            return None  # another process's (or a future) version
        if since == self.version:
            return []
        oldest = self.history[0].version if self.history else self.version + 1
        if since < oldest - 1:
            return None
        return [c for c in self.history if c.version > since and viewer.wants(c)]

    async def start(self) -> None:
        """Nothing to run: notices arrive through the bus."""

    async def stop(self) -> None:
        for viewer in list(self.viewers):
            viewer.close()


def _bbox(payload: dict[str, Any]) -> Bbox | None:
    raw = payload.get("bbox")
    if payload.get("full") or not isinstance(raw, list) or len(raw) != 4:
        return None
    try:
        return (float(raw[0]), float(raw[1]), float(raw[2]), float(raw[3]))
    except (TypeError, ValueError):
        return None
