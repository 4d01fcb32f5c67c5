"""``GET /api/h3/{layer}?res=&bbox=``: hexagon rollups as GeoJSON, read from ``h3_cells``.

The FeatureCollection is assembled by PostgreSQL, so a response is one indexed read and no
Python-side (de)serialisation. A layer/resolution never rolled up is computed once, on the
spot, when the layer has data (``X-H3-Rollup: computed``); an empty collection is returned only
when the layer itself is empty (``X-H3-Rollup: no-data``).
"""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Path, Query, Request
from fastapi.responses import Response
from psycopg.rows import tuple_row

from geo_api.auth import TRANSPORT, CurrentCaller, allow
from geo_api.db import DbConn
from geo_api.errors import FieldError, Forbidden, InvalidInput
from geo_api.models.base import GeoJSONResponse
from geo_api.models.risk import HexCollection
from layers.access import roles as access
from layers.catalog import Catalog
from layers.collections.read import parse_bbox
from layers.risk import hexagons

router = APIRouter()

GEOJSON = "application/geo+json"
Conn = DbConn

_FEATURES = """
SELECT json_build_object('type', 'FeatureCollection', 'features', coalesce(json_agg(
    json_build_object('type', 'Feature', 'id', h3, 'geometry', ST_AsGeoJSON(geom, 7)::json,
        'properties', json_build_object('h3', h3, 'count', count, 'color', color,
                                        'score', score, 'res', res, 'layer', layer))
), '[]'::json))::text
FROM h3_cells
WHERE layer = %(layer)s AND res = %(res)s
"""
# The envelope is a constant in the column's SRID, so the GiST index on geom serves the filter.
_BBOX = " AND geom && ST_MakeEnvelope(%(minx)s, %(miny)s, %(maxx)s, %(maxy)s, 4326)"


def _res(text: str) -> int:
    reason = f"must be an integer within {hexagons.MIN_RES}..{hexagons.MAX_RES}"
    try:
        value = int(text)
    except ValueError:
        raise InvalidInput(f"res: {text!r} {reason}", [FieldError("res", reason)]) from None
    if not hexagons.MIN_RES <= value <= hexagons.MAX_RES:
        raise InvalidInput(f"res: {value} {reason}", [FieldError("res", reason)])
    return value


@router.get(
    "/api/h3/{layer}",
    tags=["hexagons"],
    response_model=HexCollection,
    response_class=GeoJSONResponse,
    dependencies=[allow(*TRANSPORT)],  # counts and worst colours: city-wide aggregates
)
async def hexagon_cells(
    request: Request,
    conn: Conn,
    caller: CurrentCaller,
    layer: Annotated[str, Path(description=f"one of {', '.join(hexagons.LAYERS)}")],
    res: Annotated[str, Query(description="H3 resolution, 5–10")] = "8",
    bbox: Annotated[str | None, Query(description="minx,miny,maxx,maxy (WGS 84)")] = None,
) -> Response:
    """Cells of one layer with ``h3``, ``count``, worst ``color`` and ``score``."""
    if layer not in hexagons.LAYERS:
        raise hexagons.UnknownLayer(layer)  # a 404 naming the layer
    catalog: Catalog = request.app.state.catalog
    source = catalog.layer(layer)
    if source is None:
        raise hexagons.UnknownLayer(layer)
    if not access.reads_rollup(caller.role, source):
        reason = f"not available to the {caller.role} role"
        raise Forbidden(f"layer: {layer} {reason}", [FieldError("layer", reason)])
    resolution = _res(res)
    params: dict[str, Any] = {"layer": layer, "res": resolution}
    query = _FEATURES
    if bbox is not None:
        params.update(zip(("minx", "miny", "maxx", "maxy"), parse_bbox(bbox), strict=True))
        query += _BBOX
    state = await hexagons.ensure_rollup(conn, layer, resolution)
    cur = conn.cursor(row_factory=tuple_row)
    await cur.execute(query, params)
    row = await cur.fetchone()
    body = row[0] if row else '{"type": "FeatureCollection", "features": []}'
    return Response(body, media_type=GEOJSON, headers={"X-H3-Rollup": state})
