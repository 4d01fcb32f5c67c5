"""Keep hexagon rollups in step with colour changes, off the request path.

The risk engine sends ``NOTIFY georisk_changes`` whenever colours change. A single listener per
API process turns those notifications into "these hexagon layers are dirty" and one background
task re-rolls them, coalescing bursts: however many changes arrive, at most one rollup runs and
one more is queued (the dirty set is bounded by the number of layers).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from typing import Any

from psycopg_pool import AsyncConnectionPool

from layers.catalog import CATALOG, Catalog
from layers.core.changes import CHANGE_CHANNEL, listen
from layers.risk.hexagons import rollup_all

log = logging.getLogger("georisk.refresh")


class HexRefresher:
    """Which rollups a change dirties comes from the catalogue (``Layer.depends_on``)."""

    def __init__(
        self, url: str, pool: AsyncConnectionPool, delay_s: float, catalog: Catalog = CATALOG
    ) -> None:
        self.catalog = catalog
        self.url = url
        self.pool = pool
        self.delay_s = delay_s
        self.dirty: set[str] = set()
        self.wake = asyncio.Event()
        self.rollups_done = 0
        self._connected = False
        self._tasks: list[asyncio.Task[None]] = []

    def mark(self, changed_layer: str) -> None:
        layers = self.catalog.hex_layers_for_change(changed_layer)
        if layers:
            self.dirty.update(layers)
            self.wake.set()

    def _on_change(self, payload: dict[str, Any]) -> None:
        if not payload.get("full"):  # a full recompute rolls up by itself
            self.mark(str(payload.get("layer")))

    def _on_connect(self) -> None:
        # The first LISTEN is at startup; any later one follows a lost connection (a database
        # restart), and the changes notified meanwhile are gone: re-roll every hexagon layer.
        if self._connected:
            self.dirty.update(self.catalog.refreshed_hex_layers)
            self.wake.set()
        self._connected = True

    async def _listen(self) -> None:
        await listen(
            self.url,
            CHANGE_CHANNEL,
            self._on_change,
            name="hexagon refresh",
            on_connect=self._on_connect,
        )

    async def _work(self) -> None:
        while True:
            await self.wake.wait()
            await asyncio.sleep(self.delay_s)  # let a burst of changes gather
            self.wake.clear()
            layers, self.dirty = sorted(self.dirty), set()
            try:
                async with self.pool.connection() as conn:
                    await rollup_all(conn, layers=layers)
                self.rollups_done += 1
            except Exception:
                log.exception("hexagon refresh of %s failed", layers)

    def start(self) -> None:
        self._tasks = [asyncio.create_task(self._listen()), asyncio.create_task(self._work())]

    async def stop(self) -> None:
        for task in self._tasks:
            task.cancel()
        for task in self._tasks:
            with contextlib.suppress(asyncio.CancelledError):
                await task
