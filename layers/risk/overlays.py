"""Overlay zones: every source's consequence zones, dissolved per colour, worst colour on top.

1. ``build_consequence_zones`` — one row per (source, colour) in ``consequence_zones``: a
   geodesic buffer of the hazard source's footprint or the pipeline segment's line by the
   radius from layers/risk/consequence.py (the only home of the figures). Radii are computed in
   Python; buffers in one set-based statement; only rows whose radius or shape changed are
   written, so ids stay stable.
2. ``dissolve_overlays`` — the union of each colour minus every worse colour (red = ∪ red;
   orange = ∪ orange − red; yellow = ∪ yellow − (red ∪ orange); blue = the rest), exploded
   into single polygons (``ST_Dump``) so tiles stay light. Each polygon lists the sources
   whose zone of that colour meets it, and its geodesic area. Unchanged polygons keep their
   row; NOTIFY ``overlay_zones`` names the removed and the added ones.
"""

from __future__ import annotations

from collections import defaultdict
from typing import Any, Final

from psycopg import AsyncConnection
from psycopg.rows import dict_row

from layers.core.changes import notify_change
from layers.core.colors import RISK_COLORS
from layers.risk.consequence import (
    HazardClass,
    hazard_class_of,
    hazard_source_radii,
    pipeline_radii,
)

#: Polygons smaller than this (m²) are floating-point slivers of the differences, not zones.
MIN_POLYGON_M2: Final = 1.0

_SOURCES_SQL = """
SELECT h.id,
       coalesce(json_agg(json_build_object('name', s.name, 'cas', s.cas, 'q', s.q,
                                           'hazard_class', s.hazard_class))
                FILTER (WHERE s.id IS NOT NULL), '[]') AS substances
FROM hazard_sources h
LEFT JOIN hazard_source_substances s ON s.hazard_source_id = h.id
WHERE h.retired_at IS NULL
GROUP BY h.id
"""

_SEGMENTS_SQL = """
SELECT s.id, p.diameter_mm, p.pressure_mpa
FROM pipeline_segments s JOIN pipelines p ON p.id = s.pipeline_id
WHERE p.retired_at IS NULL
"""

_BUFFER_SQL = """
INSERT INTO tmp_zones_new (source_kind, source_id, color, radius_m, geom)
SELECT r.source_kind, r.source_id, r.color, r.radius_m,
       ST_Multi(ST_CollectionExtract(ST_Buffer(src.geom::geography, r.radius_m)::geometry, 3))
FROM tmp_zone_radii r
JOIN (SELECT 'hazard_source' AS kind, id, geom FROM hazard_sources
      UNION ALL
      SELECT 'pipeline_segment', id, geom FROM pipeline_segments) src
  ON src.kind = r.source_kind AND src.id = r.source_id
"""

_ZONES_UPDATE = """
UPDATE consequence_zones c SET radius_m = n.radius_m, geom = n.geom
FROM tmp_zones_new n
WHERE (c.source_kind, c.source_id, c.color) = (n.source_kind, n.source_id, n.color)
  AND (c.radius_m <> n.radius_m OR NOT ST_OrderingEquals(c.geom, n.geom))
RETURNING c.id
"""

_ZONES_INSERT = """
INSERT INTO consequence_zones (source_kind, source_id, color, radius_m, geom)
SELECT n.source_kind, n.source_id, n.color, n.radius_m, n.geom FROM tmp_zones_new n
WHERE NOT EXISTS (SELECT 1 FROM consequence_zones c
                  WHERE (c.source_kind, c.source_id, c.color)
                        = (n.source_kind, n.source_id, n.color))
ORDER BY n.source_kind, n.source_id, array_position(%(colors)s::text[], n.color)
RETURNING id
"""

_ZONES_DELETE = """
DELETE FROM consequence_zones c
WHERE NOT EXISTS (SELECT 1 FROM tmp_zones_new n
                  WHERE (c.source_kind, c.source_id, c.color)
                        = (n.source_kind, n.source_id, n.color))
RETURNING c.id
"""


def _source_rows(rows: list[dict[str, Any]]) -> list[tuple[str, int, str, float]]:
    out: list[tuple[str, int, str, float]] = []
    for row in rows:
        quantity: dict[HazardClass, float] = defaultdict(float)
        for s in row["substances"]:
            quantity[hazard_class_of(s["hazard_class"], s["cas"], s["name"])] += s["q"]
        radii = hazard_source_radii(quantity)
        if radii is not None:
            out.extend(("hazard_source", row["id"], c, r) for c, r in radii.items())
    return out


async def build_consequence_zones(conn: AsyncConnection) -> list[int]:
    """Rebuild ``consequence_zones`` for every hazard source and pipeline segment; returns the
    ids written (inserted or changed)."""
    cur = conn.cursor(row_factory=dict_row)
    await cur.execute(_SOURCES_SQL)
    wanted = _source_rows(await cur.fetchall())
    await cur.execute(_SEGMENTS_SQL)
    for seg in await cur.fetchall():
        radii = pipeline_radii(seg["diameter_mm"], seg["pressure_mpa"])
        wanted.extend(("pipeline_segment", seg["id"], c, r) for c, r in radii.items())
    await conn.execute(
        "CREATE TEMP TABLE IF NOT EXISTS tmp_zone_radii (source_kind text, source_id int,"
        " color text, radius_m float8) ON COMMIT DELETE ROWS"
    )
    await conn.execute(
        "CREATE TEMP TABLE IF NOT EXISTS tmp_zones_new (source_kind text, source_id int,"
        " color text, radius_m float8, geom geometry(MultiPolygon, 4326))"
        " ON COMMIT DELETE ROWS"
    )
    await conn.execute("TRUNCATE tmp_zone_radii, tmp_zones_new")
    async with conn.cursor().copy("COPY tmp_zone_radii FROM STDIN") as copy:
        for record in wanted:
            await copy.write_row(record)
    await conn.execute(_BUFFER_SQL)
    await conn.execute("DELETE FROM tmp_zones_new WHERE ST_IsEmpty(geom)")
    updated = [r[0] for r in await (await conn.execute(_ZONES_UPDATE)).fetchall()]
    inserted = await conn.execute(_ZONES_INSERT, {"colors": list(RISK_COLORS)})
    await conn.execute(_ZONES_DELETE)
    return sorted(updated + [r[0] for r in await inserted.fetchall()])


# -- dissolve --------------------------------------------------------------------------------
# Unions aggregate in id order so that unchanged input gives byte-identical output and the
# diff below keeps unchanged rows.
_DISSOLVE_SQL = """
WITH k AS (
    SELECT color, rank FROM unnest(%(colors)s::text[]) WITH ORDINALITY AS k(color, rank)
), u AS (
    SELECT k.color, k.rank, ST_Union(z.geom ORDER BY z.id) AS g
    FROM k JOIN consequence_zones z ON z.color = k.color
    GROUP BY k.color, k.rank
), layered AS (
    SELECT a.color, a.rank,
           CASE WHEN w.g IS NULL THEN a.g ELSE ST_Difference(a.g, w.g) END AS g
    FROM u a
    LEFT JOIN LATERAL (SELECT ST_Union(b.g ORDER BY b.rank) AS g FROM u b
                       WHERE b.rank < a.rank) w ON true
), parts AS (
    SELECT color, rank, (ST_Dump(ST_CollectionExtract(g, 3))).geom AS g FROM layered
), measured AS (
    SELECT color, rank, g, ST_Area(g::geography) AS area FROM parts
)
INSERT INTO tmp_overlay_new (color, area_m2, hash, geom)
SELECT color, area, md5(ST_AsBinary(ST_Normalize(ST_Multi(g)))), ST_Multi(g) FROM measured
WHERE area >= %(min_area)s
ORDER BY rank, area DESC
"""

# The polygon is the repeated argument of the join, so PostGIS prepares it once.
_SOURCES_ATTACH = """
UPDATE tmp_overlay_new n SET sources = s.sources
FROM (
    SELECT n.tid, jsonb_agg(jsonb_build_object('kind', z.source_kind, 'id', z.source_id)
                            ORDER BY z.source_kind, z.source_id) AS sources
    FROM tmp_overlay_new n
    JOIN consequence_zones z
      ON z.color = n.color AND z.geom && n.geom AND ST_Intersects(n.geom, z.geom)
    GROUP BY n.tid
) s
WHERE n.tid = s.tid
"""

_OVERLAY_REMOVED = """
SELECT o.id FROM overlay_zones o
WHERE NOT EXISTS (SELECT 1 FROM tmp_overlay_new n
                  WHERE n.color = o.color AND n.sources = o.sources
                    AND n.hash = md5(ST_AsBinary(ST_Normalize(o.geom))))
"""

_OVERLAY_INSERT = """
INSERT INTO overlay_zones (color, sources, area_m2, geom)
SELECT n.color, n.sources, n.area_m2, n.geom FROM tmp_overlay_new n
WHERE NOT EXISTS (SELECT 1 FROM overlay_zones o
                  WHERE n.color = o.color AND n.sources = o.sources
                    AND n.hash = md5(ST_AsBinary(ST_Normalize(o.geom))))
ORDER BY n.tid
RETURNING id
"""


async def dissolve_overlays(conn: AsyncConnection) -> tuple[int, list[int], list[int]]:
    """Dissolve ``consequence_zones`` into ``overlay_zones``; ``(rows, added ids, removed ids)``."""
    await conn.execute(
        "CREATE TEMP TABLE IF NOT EXISTS tmp_overlay_new (tid int GENERATED BY DEFAULT AS"
        " IDENTITY, color text, sources jsonb NOT NULL DEFAULT '[]', area_m2 float8, hash text,"
        " geom geometry(MultiPolygon, 4326)) ON COMMIT DELETE ROWS"
    )
    await conn.execute("TRUNCATE tmp_overlay_new")
    await conn.execute(_DISSOLVE_SQL, {"colors": list(RISK_COLORS), "min_area": MIN_POLYGON_M2})
    await conn.execute(_SOURCES_ATTACH)
    removed = [r[0] for r in await (await conn.execute(_OVERLAY_REMOVED)).fetchall()]
    if removed:
        # The bbox must be read while the rows still exist; NOTIFY is sent at commit.
        await notify_change(conn, "overlay_zones", "overlay_zones", removed)
        await conn.execute("DELETE FROM overlay_zones WHERE id = ANY(%s)", (removed,))
    added = [r[0] for r in await (await conn.execute(_OVERLAY_INSERT)).fetchall()]
    await notify_change(conn, "overlay_zones", "overlay_zones", added)
    row = await (await conn.execute("SELECT count(*) FROM overlay_zones")).fetchone()
    return (int(row[0]) if row else 0), added, removed


async def recompute_overlays(conn: AsyncConnection) -> int:
    """Rebuild consequence zones and overlay zones for the whole city, in one transaction;
    returns the number of overlay polygons stored."""
    async with conn.transaction():
        await build_consequence_zones(conn)
        count, _added, _removed = await dissolve_overlays(conn)
    return count
