"""Keep hexagon rollups in step with colour changes, off the request path.

The risk engine sends ``NOTIFY georisk_changes`` whenever colours change. The process's change
bus (layers/core/changes.py) hands each notice to ``on_change``, which turns it into "these
hexagon layers are dirty", and one background task re-rolls them, coalescing bursts: however
many changes arrive, at most one rollup runs and one more is queued (the dirty set is bounded
by the number of layers).

One process of the deployment re-rolls: the refresher runs under the ``hex_refresh`` lease
(geo_api/app.py). The others still hear every notice and keep marking layers dirty, so a
process taking the lease over re-rolls what changed meanwhile, including what a holder that
died may have left undone.
"""

from __future__ import annotations

import asyncio
import logging
from typing import Any

from psycopg_pool import AsyncConnectionPool

from layers.catalog import CATALOG, Catalog
from layers.core.periodic import cancel_task
from layers.risk.hexagons import rollup_all

log = logging.getLogger("georisk.refresh")


class HexRefresher:
    """Which rollups a change dirties comes from the catalogue (``Layer.depends_on``)."""

    def __init__(
        self, pool: AsyncConnectionPool, delay_s: float, catalog: Catalog = CATALOG
    ) -> None:
        self.catalog = catalog
        self.pool = pool
        self.delay_s = delay_s
        self.dirty: set[str] = set()
        self.wake = asyncio.Event()
        self.rollups_done = 0
        self._task: asyncio.Task[None] | None = None

    def mark(self, changed_layer: str) -> None:
        layers = self.catalog.hex_layers_for_change(changed_layer)
        if layers:
            self.dirty.update(layers)
            self.wake.set()

    def on_change(self, payload: dict[str, Any]) -> None:
        """A change bus subscriber: mark what the notice dirties."""
        if not payload.get("full"):  # a full recompute rolls up by itself
            self.mark(str(payload.get("layer")))

    def on_reconnect(self) -> None:
        """After a lost connection the changes notified meanwhile are gone: re-roll every
        hexagon layer."""
        self.dirty.update(self.catalog.refreshed_hex_layers)
        self.wake.set()

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

    async def start(self) -> None:
        self._task = asyncio.create_task(self._work())

    async def stop(self) -> None:
        await cancel_task(self._task)
        self._task = None
