"""Render one tile address — one or several registry layers — into MVT bytes.

Each layer is one statement (``tiles/sql.py``) returning its ``ST_AsMVT`` bytes; an MVT is a
sequence of layer messages, so the response for a comma list is their concatenation. Layers
outside their zoom range are left out (an empty result is answered 204 by the route).
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Final
from weakref import WeakKeyDictionary

from psycopg import AsyncConnection
from psycopg.rows import tuple_row

from layers.access.roles import FULL_VIEW, TileView
from layers.catalog.tiles import TileLayer, h3_resolution
from layers.core.errors import FieldError, NotFound
from layers.risk.hexagons import ensure_rollup
from tiles.sql import CLUSTER_GRID, Scope, layer_sql
from tiles.tms import MARGIN, Tile

#: Pixels of a 256-px tile a cluster cell may span (a power of two, so cells never straddle
#: tiles and a cell's id stays unique at its zoom).
CELL_PX_CHOICES: Final = (4, 8, 16, 32, 64, 128, 256)


@dataclass(frozen=True)
class ClusterGrid:
    """How coarse point clusters are: ``fine_px`` cells near street level, ``city_px`` cells at
    ``city_zoom`` and below. With 16-px cells the demo city's default view at zoom 10 drew
    about 1,850 overlapping circles; 64-px cells keep one readable stack per cell (issue 19)."""

    fine_px: int = 256 // CLUSTER_GRID
    city_px: int = 64
    city_zoom: int = 11

    def __post_init__(self) -> None:
        for px in (self.fine_px, self.city_px):
            if px not in CELL_PX_CHOICES:
                raise ValueError(f"cluster cell of {px} px: must be one of {CELL_PX_CHOICES}")

    def cells(self, z: int) -> int:
        """Cells per tile side at zoom ``z``."""
        return 256 // (self.city_px if z <= self.city_zoom else self.fine_px)


class UnknownTileLayer(NotFound, KeyError):
    """A tile layer the catalogue does not have (a 404 naming ``layer``)."""

    def __init__(self, name: str) -> None:
        text = f"unknown layer {name!r}; see GET /tiles for the catalog"
        super().__init__(text, [FieldError("layer", text)])
        self.name = name

    def __str__(self) -> str:
        return self.message


def parse_layers(text: str, tiles: Mapping[str, TileLayer]) -> tuple[TileLayer, ...]:
    """``a,b`` → catalogue layers in request order, duplicates dropped; unknown → error."""
    out: list[TileLayer] = []
    for name in (n.strip() for n in text.split(",")):
        if not name:
            continue
        layer = tiles.get(name)
        if layer is None:
            raise UnknownTileLayer(name)
        if layer not in out:
            out.append(layer)
    if not out:
        raise UnknownTileLayer(text)
    return tuple(out)


@dataclass(frozen=True)
class TimeParams:
    """Resolved time bounds (``t_from``, ``t_to``) and the raw values that key the cache."""

    t_from: dt.datetime | None = None
    t_to: dt.datetime | None = None
    key: str = ""


@dataclass(frozen=True)
class TileRequest:
    layers: tuple[TileLayer, ...]
    tile: Tile
    window: TimeParams = field(default_factory=TimeParams)  # tracks: ?from=&to=
    at: TimeParams = field(default_factory=TimeParams)  # latest positions: ?at=
    view: TileView = FULL_VIEW  # whose tile: rows and properties (layers/access/roles.py)

    @property
    def key(self) -> str:
        names = ",".join(layer.name for layer in self.layers)
        tile = f"{names}/{self.tile.z}/{self.tile.x}/{self.tile.y}"
        return f"{tile}?{self.window.key}&{self.at.key}#{self.view.key}"

    def visible(self) -> tuple[TileLayer, ...]:
        z = self.tile.z
        return tuple(layer for layer in self.layers if layer.minzoom <= z <= layer.maxzoom)


@dataclass(frozen=True)
class RenderedTile:
    data: bytes
    truncated: tuple[str, ...] = ()


def plan_reusable(layer: TileLayer) -> bool:
    """Is one generic plan of this layer's statement as good for every tile? Then it is
    planned once per connection instead of for each tile (planning was a third of
    PostgreSQL's time per cold tile). Not when the best plan depends on the values: a time
    window over the day-partitioned fixes (a generic plan keeps every day's partition:
    tracks measured 36× slower) or a hexagon rollup whose rows per layer and resolution
    differ by orders of magnitude (fixes 2× slower). Same bytes either way."""
    return layer.time_window == "none" and layer.h3_layer is None


#: Connections whose plans the renderer chooses (the tile pool's, geo_api/db.py
#: ``open_tile_pool``) → whether they force generic plans now. Weak: a closed connection goes.
_GENERIC: WeakKeyDictionary[AsyncConnection[Any], bool] = WeakKeyDictionary()


def choose_plans(conn: AsyncConnection[Any], generic: bool) -> None:
    """Let renders switch ``conn`` (autocommit, used for tiles only) between one generic plan
    per statement and PostgreSQL's own choice; ``generic``: its ``plan_cache_mode`` now."""
    _GENERIC[conn] = generic


async def _plans_for(conn: AsyncConnection[Any], layer: TileLayer) -> None:
    # Only connections handed over by choose_plans: on any other (the API's, a replica's) a
    # session setting would outlive the render and change other queries' plans.
    current = _GENERIC.get(conn)
    want = plan_reusable(layer)
    if current is None or current == want or not conn.autocommit:
        return
    # One round trip, only when a connection moves between the two kinds of layers.
    await conn.execute(f"SET plan_cache_mode = {'force_generic_plan' if want else 'auto'}")
    _GENERIC[conn] = want


class Renderer:
    """Runs the per-layer statements; remembers which hexagon rollups are known to exist."""

    def __init__(
        self, caps: dict[str, int] | None = None, clusters: ClusterGrid | None = None
    ) -> None:
        self.caps = caps or {}
        self.clusters = clusters or ClusterGrid()
        self._rolled: set[tuple[str, int]] = set()

    def cap_for(self, layer: TileLayer) -> int | None:
        return self.caps.get(layer.name, layer.feature_cap)

    async def render(self, conn: AsyncConnection[Any], req: TileRequest) -> RenderedTile:
        parts: list[bytes] = []
        truncated: list[str] = []
        for layer in req.visible():
            data, cut = await self._layer(conn, layer, req)
            if data:
                parts.append(data)
            if cut:
                truncated.append(layer.name)
        return RenderedTile(b"".join(parts), tuple(truncated))

    async def _layer(
        self, conn: AsyncConnection[Any], layer: TileLayer, req: TileRequest
    ) -> tuple[bytes, bool]:
        tile = req.tile
        cap = self.cap_for(layer)
        clustered = layer.cluster_below is not None and tile.z < layer.cluster_below
        cells = self.clusters.cells(tile.z)
        params: dict[str, Any] = {
            "z": tile.z,
            "x": tile.x,
            "y": tile.y,
            "margin": MARGIN,
            "name": layer.name,
            "cap": cap or 0,
            "tile_width_m": tile.width_m,
            "cell_m": tile.width_m / cells,
            "grid_n": (1 << tile.z) * cells,
        }
        if layer.h3_layer is not None:
            res = h3_resolution(layer, tile.z)
            params.update(h3_layer=layer.h3_layer, h3_res=res)
            await self._ensure_rollup(conn, layer.h3_layer, res)
        if layer.time_window == "window":
            params.update(t_from=req.window.t_from, t_to=req.window.t_to)
        elif layer.time_window == "at":
            params.update(t_from=req.at.t_from, t_to=req.at.t_to)
        view = req.view
        scope: Scope = ""
        if view.scoped_by_enterprise(layer):
            scope = "enterprise"
            params["scope_enterprise"] = view.enterprise_id
        elif view.scoped_by_district(layer):
            scope = "district"
            params["scope_districts"] = list(view.districts or ())
        statement = layer_sql(layer, clustered, cap is not None, view.properties(layer), scope)
        await _plans_for(conn, layer)
        # Binary results: the MVT bytea arrives as is, not hex-encoded by the server.
        cur = conn.cursor(row_factory=tuple_row, binary=True)
        await cur.execute(statement, params)
        row = await cur.fetchone()
        if row is None:
            return b"", False
        return (bytes(row[0]) if row[0] else b""), bool(row[1])

    async def _ensure_rollup(self, conn: AsyncConnection[Any], layer: str, res: int) -> None:
        if (layer, res) in self._rolled:
            return
        state = await ensure_rollup(conn, layer, res)
        await conn.commit()
        if state != "no-data":
            self._rolled.add((layer, res))
