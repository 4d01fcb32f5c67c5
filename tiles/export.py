"""Offline export of tiles for field inspectors: PMTiles (the ``pmtiles`` writer) or MBTiles.

Tiles are rendered by the same engine as the server (one connection, no HTTP), gzip-compressed
as both formats expect for MVT, and empty tiles are skipped. PMTiles wants tiles in tile-id
order for a clustered archive, so addresses are sorted by their Hilbert id before rendering.
MBTiles rows use the TMS row order (y flipped), as the MBTiles 1.3 spec says.

Every package is rendered through one :class:`TileView` — the same rows and properties the
tile routes give that role — and its metadata records the view (``georisk_view``,
``layers/access/packages.py``) and lists only the fields the view leaves in, so a package
never holds more than its recipient may see, and the server knows whom it may hand it to.
"""

from __future__ import annotations

import datetime as dt
import gzip
import json
import sqlite3
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import psycopg
from pmtiles.tile import Compression, TileType, zxy_to_tileid
from pmtiles.writer import Writer
from tqdm import tqdm

from layers.access.packages import METADATA_KEY
from layers.access.roles import FULL_VIEW, TileView
from layers.catalog.tiles import TileLayer
from tiles.engine import Renderer, TileRequest, TimeParams
from tiles.tilejson import vector_layer
from tiles.tms import Tile, tiles_in


@dataclass
class ExportReport:
    tiles: int = 0
    written: int = 0
    bytes: int = 0

    def summary(self) -> str:
        return f"{self.written} of {self.tiles} tiles written ({self.bytes / 1e6:.1f} MB of MVT)"


def parse_zooms(text: str) -> range:
    """``8-14`` or ``12`` → a range of zooms within 0..22."""
    lo, _, hi = text.partition("-")
    z0, z1 = int(lo), int(hi or lo)
    if not 0 <= z0 <= z1 <= 22:
        raise ValueError("zooms must look like 8-14 within 0..22")
    return range(z0, z1 + 1)


async def _render_all(
    url: str,
    layers: tuple[TileLayer, ...],
    tiles: Sequence[Tile],
    progress: bool,
    view: TileView,
) -> list[tuple[Tile, bytes]]:
    now = dt.datetime.now(dt.UTC)
    window = TimeParams(now - dt.timedelta(hours=1), now)
    moment = TimeParams(now - dt.timedelta(hours=48), now)
    renderer = Renderer()
    out: list[tuple[Tile, bytes]] = []
    conn = await psycopg.AsyncConnection.connect(url)
    async with conn:
        for tile in tqdm(tiles, unit="tile", disable=not progress):
            req = TileRequest(layers, tile, window, moment, view)
            if not req.visible():
                continue
            rendered = await renderer.render(conn, req)
            if rendered.data:
                out.append((tile, gzip.compress(rendered.data, compresslevel=6, mtime=0)))
    return out


def _metadata(
    layers: tuple[TileLayer, ...], zooms: range, view: TileView, recorded: dict[str, Any] | None
) -> dict[str, Any]:
    meta: dict[str, Any] = {
        "name": ",".join(layer.name for layer in layers),
        "format": "pbf",
        "minzoom": zooms.start,
        "maxzoom": zooms.stop - 1,
        "vector_layers": [vector_layer(layer, view) for layer in layers],
        "attribution": "GeoRisk",
    }
    if recorded is not None:
        meta[METADATA_KEY] = recorded
    return meta


async def export_tiles(
    url: str,
    layers: tuple[TileLayer, ...],
    bbox: tuple[float, float, float, float],
    zooms: range,
    out: Path,
    progress: bool = True,
    view: TileView = FULL_VIEW,
    recorded: dict[str, Any] | None = None,
) -> ExportReport:
    """Render ``layers`` over ``bbox`` and ``zooms`` through ``view`` into ``out``;
    ``recorded`` (a :class:`PackageView` as JSON) goes into the metadata for the server."""
    tiles = sorted(tiles_in(bbox, zooms), key=lambda t: zxy_to_tileid(t.z, t.x, t.y))
    rendered = await _render_all(url, layers, tiles, progress, view)
    report = ExportReport(tiles=len(tiles), written=len(rendered))
    report.bytes = sum(len(data) for _, data in rendered)
    meta = _metadata(layers, zooms, view, recorded)
    if out.suffix.lower() == ".mbtiles":
        _write_mbtiles(out, rendered, meta, bbox)
    else:
        _write_pmtiles(out, rendered, meta, bbox, zooms)
    return report


def _write_pmtiles(
    out: Path,
    rendered: list[tuple[Tile, bytes]],
    meta: dict[str, Any],
    bbox: tuple[float, float, float, float],
    zooms: range,
) -> None:
    if not rendered:
        raise ValueError("no tile in the bbox holds data; nothing to write")
    with out.open("wb") as f:
        writer = Writer(f)
        for tile, data in rendered:  # already in tile-id order
            writer.write_tile(zxy_to_tileid(tile.z, tile.x, tile.y), data)
        west, south, east, north = bbox
        header = {
            "tile_type": TileType.MVT,
            "tile_compression": Compression.GZIP,
            "min_lon_e7": int(west * 1e7),
            "min_lat_e7": int(south * 1e7),
            "max_lon_e7": int(east * 1e7),
            "max_lat_e7": int(north * 1e7),
            "center_zoom": zooms.start,
            "center_lon_e7": int((west + east) / 2 * 1e7),
            "center_lat_e7": int((south + north) / 2 * 1e7),
        }
        writer.finalize(header, meta)


def _write_mbtiles(
    out: Path,
    rendered: list[tuple[Tile, bytes]],
    meta: dict[str, Any],
    bbox: tuple[float, float, float, float],
) -> None:
    out.unlink(missing_ok=True)
    db = sqlite3.connect(out)
    try:
        db.execute("CREATE TABLE metadata (name text, value text)")
        db.execute(
            "CREATE TABLE tiles (zoom_level integer, tile_column integer, tile_row integer,"
            " tile_data blob)"
        )
        db.execute("CREATE UNIQUE INDEX tile_index ON tiles (zoom_level, tile_column, tile_row)")
        rows = {
            "name": meta["name"],
            "format": "pbf",
            "minzoom": str(meta["minzoom"]),
            "maxzoom": str(meta["maxzoom"]),
            "bounds": ",".join(str(v) for v in bbox),
            "attribution": meta["attribution"],
            "json": json.dumps({"vector_layers": meta["vector_layers"]}),
        }
        if METADATA_KEY in meta:
            rows[METADATA_KEY] = json.dumps(meta[METADATA_KEY])
        db.executemany("INSERT INTO metadata VALUES (?, ?)", rows.items())
        db.executemany(
            "INSERT INTO tiles VALUES (?, ?, ?, ?)",
            (((t.z, t.x, (1 << t.z) - 1 - t.y, data) for t, data in rendered)),
        )
        db.commit()
    finally:
        db.close()
