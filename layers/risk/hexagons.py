"""H3 hexagon rollups of the map layers: count, worst colour and ranking score per cell.

A cell's colour is the **worst** colour of anything inside or overlapping it, never an average
(docs/domain.md §2.6): one red and ten blue enterprises make a red cell of count 11. Grey (offline)
loses to any real colour and shows only where everything in the cell is offline. Fixes and stops
carry no risk colour, so their cells have none (NULL): grey would claim "offline", which is false.

Score (one formula, ranks cells of the same colour):
* coloured layers — the risk index of ``layers/risk/surface.py`` at the cell's centre
  (Σ R · exp(-d / 500 m) within 3 km, plus open alarms weighted by level), so a hexagon's score
  is the risk surface's value at its centre;
* fixes and stops — the count.

Rows live in ``h3_cells`` (layer, res, h3, count, color, score, geom); each ``rollup`` replaces
one layer's rows at the given resolutions in one transaction. Points are indexed with
``h3ronpy`` (vectorised H3 over numpy, same cells as the reference library) directly at every
resolution: deriving parents from a fine cell would misplace ≈ 6 % of the points at resolution
8, since H3 children do not nest exactly inside their parents. Polygons take every cell they
overlap. Cell outlines come from the same library in lon/lat order.

Incremental updates: the engine reruns the cheap layers (everything except ``fixes``, well under
a second at scale 1) after a recompute; ``fixes`` is rolled up on a schedule or on demand.
"""

from __future__ import annotations

import asyncio
import json
import os
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any, Final, LiteralString, cast

import numpy as np
from h3ronpy import ContainmentMode, cells_to_string
from h3ronpy.vector import (
    cells_to_coordinates,
    cells_to_wkb_polygons,
    coordinates_to_cells,
    wkb_to_cells,
)
from numpy.typing import NDArray
from psycopg import AsyncConnection, sql
from psycopg.rows import tuple_row

from layers.catalog import CATALOG
from layers.catalog.model import Hexagons
from layers.catalog.tiles import hexagon_notice
from layers.core.changes import CHANGE_CHANNEL
from layers.core.colors import LIVE_COLORS
from layers.core.errors import FieldError, NotFound
from layers.risk.surface import Emitters, index_at_points, load_emitters

MIN_RES: Final = 5
MAX_RES: Final = 10
RESOLUTIONS: Final = range(MIN_RES, MAX_RES + 1)

#: Colour ranks, worst first (red 0 … grey 4); ``NO_COLOR`` for uncoloured things.
_RANK: Final[dict[str, int]] = {c: i for i, c in enumerate(LIVE_COLORS)}
NO_COLOR: Final = 255
#: Heap blocks of ``positions`` read per query (≈ 1 M fixes, 16 MB of coordinates).
FIX_CHUNK_BLOCKS: Final = 8192
#: Threads indexing one chunk of fixes (h3ronpy runs without the GIL).
INDEX_THREADS: Final = max(1, min(4, os.cpu_count() or 1))

U64 = NDArray[np.uint64]


#: How each layer is rolled up, from its catalogue entry (``Layer.hexagons``).
LAYERS: Final[dict[str, Hexagons]] = CATALOG.hexagons


class UnknownLayer(NotFound, ValueError):
    """No hexagon layer of that name (a 404 naming ``layer``)."""

    def __init__(self, layer: str) -> None:
        reason = f"unknown layer {layer!r}; use one of {', '.join(LAYERS)}"
        super().__init__(reason, [FieldError("layer", reason)])
        self.layer = layer


def check_resolutions(resolutions: Sequence[int]) -> list[int]:
    res = sorted(set(int(r) for r in resolutions))
    bad = [r for r in res if not MIN_RES <= r <= MAX_RES]
    if bad or not res:
        raise ValueError(
            f"resolutions must lie within {MIN_RES}..{MAX_RES}, got {list(resolutions)}"
        )
    return res


# -- aggregation ------------------------------------------------------------------------------
@dataclass
class Cells:
    """One resolution's cells: id, count and worst colour rank, aligned."""

    ids: U64
    count: NDArray[np.int64]
    rank: NDArray[np.uint8]

    @classmethod
    def empty(cls) -> Cells:
        return cls(np.empty(0, np.uint64), np.empty(0, np.int64), np.empty(0, np.uint8))


def aggregate(cells: U64, rank: NDArray[np.uint8], n: NDArray[np.int64]) -> Cells:
    """Count per cell and the worst (lowest) colour rank — a minimum, never a mean."""
    ids, inverse = np.unique(cells, return_inverse=True)
    count = np.bincount(inverse, weights=n, minlength=ids.size).astype(np.int64)
    worst = np.full(ids.size, NO_COLOR, dtype=np.uint8)
    np.minimum.at(worst, inverse, rank)
    return Cells(ids, count, worst)


def _ranks(colors: Sequence[str | None]) -> NDArray[np.uint8]:
    return np.array([_RANK.get(c, NO_COLOR) if c else NO_COLOR for c in colors], dtype=np.uint8)


async def _fetch(
    conn: AsyncConnection[Any], query: str, params: Sequence[Any] = ()
) -> list[tuple[Any, ...]]:
    """Rows as tuples whatever the connection's row factory; ``query`` is a module constant."""
    cur = conn.cursor(row_factory=tuple_row)
    await cur.execute(sql.SQL(cast(LiteralString, query)), params)
    return await cur.fetchall()


async def _point_cells(
    conn: AsyncConnection[Any], spec: Hexagons, resolutions: list[int]
) -> dict[int, Cells]:
    rows = await _fetch(conn, spec.sql)
    # Indexing is CPU work (h3ronpy and numpy release the GIL): off the event loop, so a
    # background rollup never stalls the requests this process serves.
    return await asyncio.to_thread(_point_aggregates, rows, resolutions)


def _point_aggregates(rows: list[tuple[Any, ...]], resolutions: list[int]) -> dict[int, Cells]:
    if not rows:
        return {r: Cells.empty() for r in resolutions}
    lon = np.array([r[0] for r in rows], dtype=np.float64)
    lat = np.array([r[1] for r in rows], dtype=np.float64)
    rank = _ranks([r[2] for r in rows])
    n = np.array([r[3] for r in rows], dtype=np.int64)
    return {
        res: aggregate(np.asarray(coordinates_to_cells(lat, lon, res)), rank, n)
        for res in resolutions
    }


async def _polygon_cells(
    conn: AsyncConnection[Any], spec: Hexagons, resolutions: list[int]
) -> dict[int, Cells]:
    rows = await _fetch(conn, spec.sql)
    return await asyncio.to_thread(_polygon_aggregates, rows, resolutions)  # CPU: off the loop


def _polygon_aggregates(rows: list[tuple[Any, ...]], resolutions: list[int]) -> dict[int, Cells]:
    out: dict[int, Cells] = {}
    for res in resolutions:
        parts, ranks = [], []
        for wkb, color in rows:
            cells = np.asarray(
                wkb_to_cells(
                    np.array([bytes(wkb)], dtype=object),
                    res,
                    containment_mode=ContainmentMode.IntersectsBoundary,
                    flatten=True,
                ),
                dtype=np.uint64,
            )
            parts.append(np.unique(cells))
            ranks.append(np.full(parts[-1].size, _RANK.get(color or "", NO_COLOR), np.uint8))
        if not parts:
            out[res] = Cells.empty()
            continue
        all_cells = np.concatenate(parts)
        out[res] = aggregate(all_cells, np.concatenate(ranks), np.ones(all_cells.size, np.int64))
    return out


# -- fixes: streamed from positions in heap-block chunks ------------------------------------------
_PARTITIONS_SQL = """
SELECT n.nspname, c.relname, pg_relation_size(c.oid) / current_setting('block_size')::int
FROM pg_inherits i
JOIN pg_class c ON c.oid = i.inhrelid
JOIN pg_namespace n ON n.oid = c.relnamespace
WHERE i.inhparent = 'positions'::regclass AND c.relkind = 'r'
ORDER BY c.relname
"""

# One bytea of interleaved big-endian float8 (lon, lat) per chunk: a TID range scan, no
# per-row round trip (COPY TO sends one message per row, ten times slower from Python).
_CHUNK_SQL = (
    "SELECT string_agg(float8send(lon) || float8send(lat), ''::bytea) FROM {}"
    " WHERE ctid >= %s::tid AND ctid < %s::tid"
)
#: Only the fixes stored without their resolution-8 cell (older rows) need indexing for res 8.
_UNINDEXED_CHUNK_SQL = _CHUNK_SQL + " AND h3_r8 IS NULL"
_STORED_R8_SQL = "SELECT h3_r8, count(*) FROM positions WHERE h3_r8 IS NOT NULL GROUP BY h3_r8"
_UNINDEXED_SQL = "SELECT EXISTS (SELECT 1 FROM positions WHERE h3_r8 IS NULL)"
#: The resolution stored with every fix (positions.h3_r8).
STORED_FIX_RES: Final = 8


def fix_cells(lon: NDArray[np.float64], lat: NDArray[np.float64]) -> NDArray[np.int64]:
    """Resolution-8 cells of fixes as signed 64-bit ids (H3 ids fit in 63 bits) for h3_r8."""
    cells = np.asarray(coordinates_to_cells(lat, lon, STORED_FIX_RES), dtype=np.uint64)
    return cells.view(np.int64)


_LONLAT = np.dtype([("lon", ">f8"), ("lat", ">f8")])


async def _fix_chunks(conn: AsyncConnection[Any]) -> list[tuple[sql.Composable, int, int]]:
    parts = await _fetch(conn, _PARTITIONS_SQL)
    return [
        (sql.Identifier(schema, name), start, start + FIX_CHUNK_BLOCKS)
        for schema, name, blocks in parts
        for start in range(0, int(blocks), FIX_CHUNK_BLOCKS)
    ]


async def _read_chunk(
    conn: AsyncConnection[Any],
    table: sql.Composable,
    start: int,
    stop: int,
    unindexed_only: bool = False,
) -> tuple[NDArray[np.float64], NDArray[np.float64]]:
    cur = conn.cursor(row_factory=tuple_row, binary=True)
    query = _UNINDEXED_CHUNK_SQL if unindexed_only else _CHUNK_SQL
    await cur.execute(sql.SQL(query).format(table), (f"({start},0)", f"({stop},0)"))
    row = await cur.fetchone()
    blob = row[0] if row else None
    data = np.frombuffer(blob or b"", dtype=_LONLAT)
    return data["lon"].astype(np.float64), data["lat"].astype(np.float64)


def _count_chunk(
    lon: NDArray[np.float64], lat: NDArray[np.float64], resolutions: list[int]
) -> dict[int, tuple[U64, NDArray[np.int64]]]:
    out = {}
    for res in resolutions:
        ids, counts = np.unique(np.asarray(coordinates_to_cells(lat, lon, res)), return_counts=True)
        out[res] = (ids, counts.astype(np.int64))
    return out


async def _fix_cells(conn: AsyncConnection[Any], resolutions: list[int]) -> dict[int, Cells]:
    """Count fixes per cell. Resolution 8 comes from the cells stored with the fixes (one
    GROUP BY), plus on-the-fly indexing of any fix stored without one; other resolutions are
    indexed on the fly."""
    out: dict[int, Cells] = {}
    others = [r for r in resolutions if r != STORED_FIX_RES]
    if others:
        out.update(await _indexed_fix_cells(conn, others, unindexed_only=False))
    if STORED_FIX_RES in resolutions:
        cur = conn.cursor(row_factory=tuple_row)
        await cur.execute(_STORED_R8_SQL)
        rows = await cur.fetchall()
        ids = np.array([r[0] for r in rows], dtype=np.int64).view(np.uint64)
        counts = np.array([r[1] for r in rows], dtype=np.int64)
        await cur.execute(_UNINDEXED_SQL)
        flag = await cur.fetchone()
        if flag and flag[0]:
            late = (await _indexed_fix_cells(conn, [STORED_FIX_RES], unindexed_only=True))[
                STORED_FIX_RES
            ]
            ids = np.concatenate([ids, late.ids])
            counts = np.concatenate([counts, late.count])
        out[STORED_FIX_RES] = aggregate(ids, np.full(ids.size, NO_COLOR, np.uint8), counts)
    return out


async def _indexed_fix_cells(
    conn: AsyncConnection[Any], resolutions: list[int], unindexed_only: bool
) -> dict[int, Cells]:
    """Index fixes on the fly: chunk k is indexed in threads (h3ronpy releases the GIL), one
    per ``INDEX_THREADS`` slice, while chunk k + 1 is read; at most two chunks in memory."""
    partial: dict[int, list[tuple[U64, NDArray[np.int64]]]] = {r: [] for r in resolutions}
    pending: list[asyncio.Future[dict[int, tuple[U64, NDArray[np.int64]]]]] = []

    async def collect() -> None:
        for done in await asyncio.gather(*pending):
            for res, pair in done.items():
                partial[res].append(pair)
        pending.clear()

    for table, start, stop in await _fix_chunks(conn):
        lon, lat = await _read_chunk(conn, table, start, stop, unindexed_only)
        await collect()
        for part in range(INDEX_THREADS if lon.size else 0):
            sl = slice(part, None, INDEX_THREADS)
            pending.append(
                asyncio.ensure_future(
                    asyncio.to_thread(_count_chunk, lon[sl], lat[sl], resolutions)
                )
            )
    await collect()
    out: dict[int, Cells] = {}
    for res, pairs in partial.items():
        if not pairs:
            out[res] = Cells.empty()
            continue
        ids = np.concatenate([p[0] for p in pairs])
        counts = np.concatenate([p[1] for p in pairs])
        out[res] = aggregate(ids, np.full(ids.size, NO_COLOR, np.uint8), counts)
    return out


# -- writing ------------------------------------------------------------------------------------
_TMP_DDL = (
    "CREATE TEMP TABLE IF NOT EXISTS tmp_h3_cells (res smallint, h3 text, count int,"
    " color text, score float8, wkb bytea) ON COMMIT DELETE ROWS"
)
_REPLACE_SQL = (
    "INSERT INTO h3_cells (layer, res, h3, count, color, score, geom)"
    " SELECT %s, res, h3, count, color, score, ST_GeomFromWKB(wkb, 4326) FROM tmp_h3_cells"
)


def _scores(cells: Cells, spec: Hexagons, emitters: Emitters | None) -> NDArray[np.float64]:
    if spec.scored_by_count or emitters is None:
        return cells.count.astype(np.float64)
    centres = cells_to_coordinates(cells.ids)
    lat = np.asarray(centres.column("lat"), dtype=np.float64)
    lon = np.asarray(centres.column("lng"), dtype=np.float64)
    return np.round(index_at_points(lon, lat, emitters), 6)


def _cell_rows(
    cells: Cells, spec: Hexagons, emitters: Emitters | None
) -> tuple[NDArray[Any], NDArray[Any], NDArray[np.float64]]:
    """Names, outlines and scores of one resolution's cells (CPU work, run in a thread)."""
    names = np.asarray(cells_to_string(cells.ids))
    outlines = np.asarray(cells_to_wkb_polygons(cells.ids))
    return names, outlines, _scores(cells, spec, emitters)


async def _write(
    conn: AsyncConnection[Any],
    layer: str,
    by_res: dict[int, Cells],
    emitters: Emitters | None,
) -> int:
    spec = LAYERS[layer]
    await conn.execute(_TMP_DDL)
    await conn.execute("TRUNCATE tmp_h3_cells")
    written = 0
    async with conn.cursor().copy(
        "COPY tmp_h3_cells (res, h3, count, color, score, wkb) FROM STDIN (FORMAT BINARY)"
    ) as copy:
        copy.set_types(["int2", "text", "int4", "text", "float8", "bytea"])
        for res, cells in by_res.items():
            if cells.ids.size == 0:
                continue
            names, outlines, scores = await asyncio.to_thread(_cell_rows, cells, spec, emitters)
            for i in range(cells.ids.size):
                rank = int(cells.rank[i])
                await copy.write_row(
                    (
                        res,
                        str(names[i]),
                        int(cells.count[i]),
                        LIVE_COLORS[rank] if rank != NO_COLOR else None,
                        float(scores[i]),
                        outlines[i],
                    )
                )
            written += int(cells.ids.size)
    await _notify_changed_cells(conn, layer, list(by_res))
    await conn.execute(
        "DELETE FROM h3_cells WHERE layer = %s AND res = ANY(%s)", (layer, list(by_res))
    )
    await conn.execute(_REPLACE_SQL, (layer,))
    return written


#: Cells whose count, colour or score differ between the stored rollup and the new one (or
#: that appear or vanish): their extent is what the hexagon tiles must redraw.
_CHANGED_CELLS_SQL = """
SELECT d.n, ST_XMin(d.e), ST_YMin(d.e), ST_XMax(d.e), ST_YMax(d.e) FROM (
    SELECT count(*) AS n, ST_Extent(coalesce(o.geom, ST_GeomFromWKB(nw.wkb, 4326)))::geometry AS e
    FROM (SELECT res, h3, count, color, score, geom FROM h3_cells
          WHERE layer = %s AND res = ANY(%s)) o
    FULL JOIN tmp_h3_cells nw ON nw.res = o.res AND nw.h3 = o.h3
    WHERE o.h3 IS NULL OR nw.h3 IS NULL OR o.count <> nw.count
       OR o.color IS DISTINCT FROM nw.color OR o.score IS DISTINCT FROM nw.score
) d
"""


async def _notify_changed_cells(conn: AsyncConnection[Any], layer: str, res: list[int]) -> None:
    """Tell the change bus which hexagons a rollup is about to change (issue 13): inside the
    rollup's transaction, so the notice is delivered only if the new cells are committed."""
    rows = await _fetch(conn, _CHANGED_CELLS_SQL, (layer, res))
    if not rows or rows[0][1] is None:
        return
    n, *bbox = rows[0]
    payload = {
        "layer": hexagon_notice(layer),
        "count": int(n),
        "bbox": [round(float(v), 7) for v in bbox],
    }
    await conn.execute("SELECT pg_notify(%s, %s)", (CHANGE_CHANNEL, json.dumps(payload)))


# -- entry points ---------------------------------------------------------------------------------
async def _lock(conn: AsyncConnection[Any], layer: str) -> None:
    """Serialise rollups of one layer (scheduled, engine and on-demand) across processes."""
    await conn.execute("SELECT pg_advisory_xact_lock(hashtext(%s))", (f"georisk.h3.{layer}",))


async def _rollup_locked(
    conn: AsyncConnection[Any], layer: str, res: list[int], emitters: Emitters | None
) -> int:
    spec = LAYERS[layer]
    if spec.kind == "fixes":
        by_res = await _fix_cells(conn, res)
    elif spec.kind == "polygons":
        by_res = await _polygon_cells(conn, spec, res)
    else:
        by_res = await _point_cells(conn, spec, res)
    if emitters is None and not spec.scored_by_count:
        emitters = await load_emitters(conn, None)
    return await _write(conn, layer, by_res, emitters)


async def rollup(
    conn: AsyncConnection[Any],
    layer: str,
    resolutions: Sequence[int] = RESOLUTIONS,
    emitters: Emitters | None = None,
) -> int:
    """Replace ``layer``'s cells at ``resolutions`` in one transaction; returns rows written.

    Other resolutions of the layer are left as they are. ``emitters`` lets ``rollup_all`` load
    the scoring inputs once for every coloured layer.
    """
    if layer not in LAYERS:
        raise UnknownLayer(layer)
    res = check_resolutions(resolutions)
    async with conn.transaction():
        await _lock(conn, layer)
        return await _rollup_locked(conn, layer, res, emitters)


async def ensure_rollup(conn: AsyncConnection[Any], layer: str, res: int) -> str:
    """Make sure ``layer`` at ``res`` has been rolled up; say what was found.

    Returns ``"stored"`` (rows were there), ``"computed"`` (there was data but no rollup, so it
    was computed now, once) or ``"no-data"`` (the layer has nothing to roll up).
    """
    if layer not in LAYERS:
        raise UnknownLayer(layer)
    check_resolutions([res])
    query = "SELECT EXISTS (SELECT 1 FROM h3_cells WHERE layer = %s AND res = %s)"
    if (await _fetch(conn, query, (layer, res)))[0][0]:
        return "stored"
    async with conn.transaction():
        await _lock(conn, layer)
        # Re-check under the lock: a concurrent request may have just computed it.
        if (await _fetch(conn, query, (layer, res)))[0][0]:
            return "stored"
        has_data = await _fetch(conn, LAYERS[layer].exists_sql)
        if not (has_data and has_data[0][0]):
            return "no-data"
        await _rollup_locked(conn, layer, [res], None)
    return "computed"


@dataclass
class RollupReport:
    rows: dict[str, int] = field(default_factory=dict)
    seconds: dict[str, float] = field(default_factory=dict)

    def summary(self) -> str:
        return "; ".join(
            f"{layer}: {n} cells in {self.seconds[layer]:.2f} s" for layer, n in self.rows.items()
        )


async def rollup_all(
    conn: AsyncConnection[Any],
    resolutions: Sequence[int] = RESOLUTIONS,
    layers: Sequence[str] | None = None,
) -> RollupReport:
    """Roll up every layer (or ``layers``), each in its own transaction."""
    report = RollupReport()
    emitters = await load_emitters(conn, None)
    for layer in layers or list(LAYERS):
        started = time.perf_counter()
        report.rows[layer] = await rollup(conn, layer, resolutions, emitters)
        report.seconds[layer] = time.perf_counter() - started
    return report
