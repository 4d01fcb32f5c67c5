"""Purge cached tiles when the engines say rows changed (``NOTIFY georisk_changes``).

One listening connection per API process (the same shape as ``geo_api/refresh.py``). A payload
``{layer, bbox}`` purges exactly that layer's tiles touching the bbox at every zoom; ``full`` or
a payload without a bbox (rows deleted) purges the whole layer. After a lost connection the
whole cache is dropped: notifications sent meanwhile are gone, so nothing cached can be trusted.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from typing import Any

from layers.catalog import Catalog
from layers.core.changes import CHANGE_CHANNEL, listen
from tiles.cache import TileCache

log = logging.getLogger("georisk.tiles")


def apply_change(cache: TileCache, payload: dict[str, Any], catalog: Catalog) -> int:
    """Purge what one payload invalidates; returns the number of tiles dropped."""
    bbox_raw = payload.get("bbox")
    bbox = None
    if not payload.get("full") and isinstance(bbox_raw, list) and len(bbox_raw) == 4:
        bbox = (float(bbox_raw[0]), float(bbox_raw[1]), float(bbox_raw[2]), float(bbox_raw[3]))
    dropped = 0
    for layer in catalog.tile_layers_for_change(str(payload.get("layer"))):
        dropped += cache.purge(layer.name, bbox)
    return dropped


class ChangeListener:
    def __init__(self, url: str, cache: TileCache, catalog: Catalog) -> None:
        self.url = url
        self.cache = cache
        self.catalog = catalog
        self.notes = 0
        self.ready = asyncio.Event()
        self._task: asyncio.Task[None] | None = None

    def _on_change(self, payload: dict[str, Any]) -> None:
        self.notes += 1
        try:
            apply_change(self.cache, payload, self.catalog)
        except (ValueError, TypeError):
            log.warning("ignored malformed change payload %r", payload)

    async def _listen(self) -> None:
        # Whatever happened before LISTEN is unknown: start from an empty cache each time.
        await listen(
            self.url,
            CHANGE_CHANNEL,
            self._on_change,
            name="tile cache",
            ready=self.ready,
            on_connect=self.cache.clear,
        )

    def start(self) -> None:
        self._task = asyncio.create_task(self._listen())

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
