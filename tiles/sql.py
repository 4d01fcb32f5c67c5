"""SQL for one layer's tile, built only from registry constants; every request value is bound.

The shape follows the fastest PostGIS tile servers: ``ST_TileEnvelope`` with a margin, the
envelope transformed to the column's SRID (never the column), ``ST_AsMVTGeom`` with extent 4096
and buffer 64, the feature id column handed to ``ST_AsMVT``. Each statement returns one row:
the layer's MVT bytes and whether a feature cap cut features off.

Three shapes:
* plain — every feature; with a cap, the ``cap + 1`` worst (red first) are read so truncation
  is detected without counting the rest; features are written worst **last** so red is drawn
  on top of its neighbours;
* clustered (points below ``cluster_below``) — features snapped to a grid aligned with the
  tile (16 × 16 cells, 4 × 4 at city zoom: ``ClusterGrid`` in ``tiles/engine.py``), one point
  per cell carrying ``count`` and the worst colour (a minimum over ranks, never an average), at
  the centroid of its members; grid cells never straddle tiles, so each cluster is in exactly
  one tile;
* lines and polygons are clipped to the query envelope in their own SRID before being
  projected; below ``simplify_below`` they are simplified to a quarter of a tile unit, which
  ``ST_AsMVTGeom`` would snap away anyway, so tiles shrink without a visible change.
"""

from __future__ import annotations

from functools import cache
from typing import Final, Literal, LiteralString, cast

from psycopg import sql

from layers.catalog.tiles import COLOR_ARRAY_SQL, Prop, TileLayer
from tiles.tms import BUFFER, EXTENT

#: Cells per tile side when clustering near street level (16 → a cell is 16 px on a 256 px
#: tile); city zooms use coarser cells (``tiles/engine.py``).
CLUSTER_GRID: Final = 16

_BOUNDS = """
WITH b AS (
    SELECT ST_TileEnvelope(%(z)s, %(x)s, %(y)s) AS env,
           -- envelope → the column's SRID, never the column → 3857: the GiST index is used
           ST_Transform(ST_TileEnvelope(%(z)s, %(x)s, %(y)s, margin => %(margin)s), {srid}) AS qenv,
           ST_Transform(ST_TileEnvelope(%(z)s, %(x)s, %(y)s), {srid}) AS tenv
)"""


#: How a view narrows a layer's rows: not at all, to some districts, to one enterprise.
Scope = Literal["", "district", "enterprise"]


def _props(props: tuple[Prop, ...]) -> str:
    return ", ".join(f'{p.sql} AS "{p.name}"' for p in props)


def _prop_names(props: tuple[Prop, ...], prefix: str) -> str:
    return ", ".join(f'{prefix}."{p.name}"' for p in props)


def _where(layer: TileLayer, envelope: str, scope: Scope) -> str:
    clauses = [f"{layer.geom_sql} && b.{envelope}"]
    if layer.where_sql:
        clauses.append(layer.where_sql)
    if scope == "district":
        clauses.append(f"{layer.district_sql} = ANY(%(scope_districts)s)")
    elif scope == "enterprise":
        # A layer without an enterprise expression has no row of any one enterprise.
        clauses.append(f"{layer.enterprise_sql or 'NULL'} = %(scope_enterprise)s")
    return " AND ".join(clauses)


def _geom_3857(layer: TileLayer) -> str:
    if layer.geometry_type == "point":
        return "ST_Transform(s.g, 3857)" if layer.srid != 3857 else "s.g"
    # Clip to the query envelope before transforming: a city-wide zone is then projected only
    # where the tile needs it (ST_AsMVTGeom clips and repairs validity again afterwards).
    geom = "ST_ClipByBox2D(s.g, b.qenv)"
    geom = f"ST_Transform({geom}, 3857)" if layer.srid != 3857 else geom
    if layer.simplify_below is None:
        return geom
    # A quarter of one tile unit (tile width / 4096) at this zoom: invisible after snapping;
    # collapsed parts are kept so small features do not vanish.
    return (
        f"CASE WHEN %(z)s < {layer.simplify_below} THEN ST_Simplify({geom},"
        f" %(tile_width_m)s / {EXTENT * 4}, true) ELSE {geom} END"
    )


def _plain(layer: TileLayer, capped: bool, props: tuple[Prop, ...], scope: Scope) -> str:
    limit = " ORDER BY rk, fid LIMIT %(cap)s + 1" if capped else ""
    kept = "(SELECT * FROM src ORDER BY rk, fid LIMIT %(cap)s)" if capped else "src"
    truncated = "(SELECT count(*) FROM src) > %(cap)s" if capped else "false"
    return f"""{_BOUNDS.format(srid=layer.srid)},
src AS (
    SELECT {layer.id_sql} AS fid, {layer.geom_sql} AS g, {layer.rank_sql} AS rk, {_props(props)}
    FROM {layer.from_sql}, b
    WHERE {_where(layer, "qenv", scope)}{limit}
),
m AS (
    SELECT s.fid, s.rk, ST_AsMVTGeom({_geom_3857(layer)}, b.env, {EXTENT}, {BUFFER}, true) AS geom,
           {_prop_names(props, "s")}
    FROM {kept} s, b
)
SELECT (SELECT ST_AsMVT(q, %(name)s, {EXTENT}, 'geom', 'fid') FROM (
            SELECT m.fid, m.geom, {_prop_names(props, "m")} FROM m
            WHERE m.geom IS NOT NULL ORDER BY m.rk DESC, m.fid) q),
       {truncated}"""


def _clustered(layer: TileLayer, scope: Scope) -> str:
    return f"""{_BOUNDS.format(srid=layer.srid)},
src AS (
    SELECT ST_Transform({layer.geom_sql}, 3857) AS g, {layer.rank_sql} AS rk
    FROM {layer.from_sql}, b
    WHERE {_where(layer, "tenv", scope)}
),
cells AS (
    SELECT floor((ST_X(s.g) + {_HALF_WORLD}) / %(cell_m)s)::bigint AS gx,
           floor(({_HALF_WORLD} - ST_Y(s.g)) / %(cell_m)s)::bigint AS gy,
           count(*) AS count, min(s.rk) AS rk, ST_Centroid(ST_Collect(s.g)) AS g
    FROM src s GROUP BY 1, 2
)
SELECT (SELECT ST_AsMVT(q, %(name)s, {EXTENT}, 'geom', 'fid') FROM (
            SELECT c.gx * %(grid_n)s + c.gy AS fid,
                   ST_AsMVTGeom(c.g, b.env, {EXTENT}, {BUFFER}, true) AS geom,
                   c.count::int AS count, ({COLOR_ARRAY_SQL})[c.rk] AS color
            FROM cells c, b ORDER BY c.rk DESC, 1) q),
       false"""


_HALF_WORLD: Final = "20037508.342789244"


@cache
def layer_sql(
    layer: TileLayer,
    clustered: bool,
    capped: bool,
    props: tuple[Prop, ...] | None = None,
    scope: Scope = "",
) -> sql.SQL:
    """The statement for a layer; cached, so psycopg can prepare it once per connection.
    ``props`` (default: all of the layer's) and ``scope`` come from the caller's view."""
    chosen = layer.properties if props is None else props
    text = _clustered(layer, scope) if clustered else _plain(layer, capped, chosen, scope)
    # Registry constants only (see layers/catalog/tiles.py); request values are %(bound)s.
    return sql.SQL(cast(LiteralString, text))
