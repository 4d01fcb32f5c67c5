"""In-process LRU of gzip-compressed tiles, bounded by bytes, with an optional disk tier.

Why gzip in memory: MVT compresses 3–5×, so the same budget holds several times more tiles, and
almost every client accepts gzip, so a hit is sent without any work.

Invalidation is by place: ``purge(layer, bbox)`` drops exactly the cached tiles, at every zoom,
whose query area (tile + margin) intersects the bbox, in every entry that contains the layer
(comma lists included). Every purge bumps the layer's generation; a tile rendered while a purge
happened is not stored (``put`` compares generations), so a slow render can never put back
what a change just invalidated. Live layers also expire after ``ttl`` seconds, since fixes
arrive without a NOTIFY.

The disk tier is cleared when the process starts: changes made while no listener ran are
unknown, so nothing on disk from before can be trusted.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import shutil
import time
from collections import OrderedDict
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

from tiles.tms import MARGIN, Tile, intersects

#: Bookkeeping bytes charged per entry besides the tile itself.
ENTRY_OVERHEAD = 256


@dataclass(frozen=True)
class Entry:
    body: bytes  # gzip-compressed MVT (empty for an empty tile)
    etag: str
    truncated: tuple[str, ...]
    layers: tuple[str, ...]
    tile: Tile
    expires: float | None = None  # monotonic deadline for live layers

    @property
    def size(self) -> int:
        return len(self.body) + ENTRY_OVERHEAD

    def fresh(self, now: float) -> bool:
        return self.expires is None or now < self.expires


class TileCache:
    def __init__(self, max_bytes: int, disk_dir: Path | None = None) -> None:
        self.max_bytes = max_bytes
        self.bytes = 0
        self._lru: OrderedDict[str, Entry] = OrderedDict()
        self._by_layer: dict[str, set[str]] = {}
        self._generation: dict[str, int] = {}
        self.hits = self.misses = self.purged = 0
        self.disk = DiskTier(disk_dir) if disk_dir else None

    @property
    def enabled(self) -> bool:
        return self.max_bytes > 0

    def __len__(self) -> int:
        return len(self._lru)

    def generations(self, layers: Iterable[str]) -> tuple[int, ...]:
        return tuple(self._generation.get(name, 0) for name in layers)

    def get(self, key: str) -> Entry | None:
        entry = self._lru.get(key)
        if entry is None and self.disk is not None:
            entry = self.disk.get(key)
            if entry is not None:
                self._store(key, entry)
        if entry is None or not entry.fresh(time.monotonic()):
            if entry is not None:
                self._remove(key)
            self.misses += 1
            return None
        self._lru.move_to_end(key)
        self.hits += 1
        return entry

    def put(self, key: str, entry: Entry, generations: tuple[int, ...]) -> bool:
        """Store unless a purge of one of its layers happened since rendering began."""
        if not self.enabled or entry.size > self.max_bytes:
            return False
        if self.generations(entry.layers) != generations:
            return False
        self._store(key, entry)
        if self.disk is not None and entry.expires is None:
            self.disk.put(key, entry)
        return True

    def _store(self, key: str, entry: Entry) -> None:
        if key in self._lru:
            self._remove(key, disk=False)
        self._lru[key] = entry
        self.bytes += entry.size
        for name in entry.layers:
            self._by_layer.setdefault(name, set()).add(key)
        while self.bytes > self.max_bytes and self._lru:
            old, _ = next(iter(self._lru.items()))
            self._remove(old, disk=False)

    def _remove(self, key: str, disk: bool = True) -> None:
        entry = self._lru.pop(key, None)
        if entry is not None:
            self.bytes -= entry.size
            for name in entry.layers:
                self._by_layer.get(name, set()).discard(key)
        if disk and self.disk is not None:
            self.disk.remove(key)

    def purge(self, layer: str, bbox: tuple[float, float, float, float] | None) -> int:
        """Drop ``layer``'s tiles touching ``bbox`` (lon/lat) at every zoom; None → all."""
        self._generation[layer] = self._generation.get(layer, 0) + 1
        keys = set(self._by_layer.get(layer, ()))
        if self.disk is not None:
            keys |= self.disk.keys_for(layer)
        doomed = [k for k in keys if bbox is None or self._touches(k, bbox)]
        for key in doomed:
            self._remove(key)
        self.purged += len(doomed)
        return len(doomed)

    def _touches(self, key: str, bbox: tuple[float, float, float, float]) -> bool:
        entry = self._lru.get(key)
        tile = entry.tile if entry is not None else self.disk.tile_of(key) if self.disk else None
        return tile is None or intersects(tile.lonlat_bounds(MARGIN), bbox)

    def clear(self) -> None:
        for layer in list(self._by_layer) + list(self._generation):
            self._generation[layer] = self._generation.get(layer, 0) + 1
        self._lru.clear()
        self._by_layer.clear()
        self.bytes = 0
        if self.disk is not None:
            self.disk.clear()


class DiskTier:
    """Tiles as files ``<sha1>.mvt.gz`` with a one-line JSON header; an index in memory."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self._index: dict[str, tuple[Tile, tuple[str, ...]]] = {}
        self.clear()

    def clear(self) -> None:
        if self.root.exists():
            shutil.rmtree(self.root, ignore_errors=True)
        self.root.mkdir(parents=True, exist_ok=True)
        self._index.clear()

    def _path(self, key: str) -> Path:
        return self.root / f"{hashlib.sha1(key.encode()).hexdigest()}.mvt.gz"

    def put(self, key: str, entry: Entry) -> None:
        head = {
            "etag": entry.etag,
            "truncated": list(entry.truncated),
            "layers": list(entry.layers),
            "tile": [entry.tile.z, entry.tile.x, entry.tile.y],
        }
        path = self._path(key)
        tmp = path.with_suffix(".tmp")
        tmp.write_bytes(json.dumps(head).encode() + b"\n" + entry.body)
        tmp.replace(path)
        self._index[key] = (entry.tile, entry.layers)

    def get(self, key: str) -> Entry | None:
        if key not in self._index:
            return None
        try:
            raw = self._path(key).read_bytes()
        except OSError:
            self._index.pop(key, None)
            return None
        head_text, _, body = raw.partition(b"\n")
        head = json.loads(head_text)
        return Entry(
            body=body,
            etag=head["etag"],
            truncated=tuple(head["truncated"]),
            layers=tuple(head["layers"]),
            tile=Tile(*head["tile"]),
        )

    def remove(self, key: str) -> None:
        if self._index.pop(key, None) is not None:
            with contextlib.suppress(OSError):
                self._path(key).unlink()

    def keys_for(self, layer: str) -> set[str]:
        return {k for k, (_, layers) in self._index.items() if layer in layers}

    def tile_of(self, key: str) -> Tile | None:
        found = self._index.get(key)
        return found[0] if found else None
