"""Purge cached tiles when the engines say rows changed (``NOTIFY georisk_changes``).

``TilePurge`` subscribes to the process's change bus (layers/core/changes.py), like the hexagon
refresher. A payload ``{layer, bbox}`` purges exactly that layer's tiles touching the bbox at
every zoom; ``full`` or a payload without a bbox (rows deleted) purges the whole layer. After a
lost connection the whole cache is dropped: notifications sent meanwhile are gone, so nothing
cached can be trusted.
"""

from __future__ import annotations

import logging
from typing import Any

from layers.catalog import Catalog
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


class TilePurge:
    """The tile cache's change bus subscriber; synchronous, so a notice costs no task switch."""

    def __init__(self, cache: TileCache, catalog: Catalog) -> None:
        self.cache = cache
        self.catalog = catalog
        self.notes = 0

    def on_change(self, payload: dict[str, Any]) -> None:
        self.notes += 1
        try:
            apply_change(self.cache, payload, self.catalog)
        except (ValueError, TypeError):
            log.warning("ignored malformed change payload %r", payload)

    def on_reconnect(self) -> None:
        self.cache.clear()
