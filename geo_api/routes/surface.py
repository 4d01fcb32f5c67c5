"""``GET /api/risk/surface.tif`` and ``surface.png``: the continuous risk index over a bbox.

The index and its colour classes are defined once, in ``layers/risk/surface.py``; these handlers
only validate the request and pick the encoding.
"""

from __future__ import annotations

from typing import Annotated, Literal

from fastapi import APIRouter, Depends, Query, Request
from fastapi.responses import Response

from geo_api.auth import STAFF, allow
from geo_api.db import DbConn
from geo_api.errors import BadRequest, FieldError, InvalidInput
from geo_api.models.base import binary
from geo_api.settings import Settings, SurfaceSettings
from layers.collections.read import parse_bbox
from layers.risk import surface

router = APIRouter()

Conn = DbConn


def surface_settings(request: Request) -> SurfaceSettings:
    settings: Settings = request.app.state.settings
    return settings.surface


Limits = Annotated[SurfaceSettings, Depends(surface_settings)]
BboxParam = Annotated[str | None, Query(description="minx,miny,maxx,maxy (WGS 84), required")]
WidthParam = Annotated[str | None, Query(description="pixels across; height follows the bbox")]


def _size(
    bbox_text: str | None, width_text: str | None, limits: SurfaceSettings
) -> tuple[surface.Bbox, int, int]:
    if bbox_text is None:
        raise BadRequest("bbox: required", [FieldError("bbox", "required: minx,miny,maxx,maxy")])
    bbox = parse_bbox(bbox_text)  # a QueryError: a 400 naming bbox
    reason = f"must be an integer within 1..{limits.max_size}"
    try:
        width = int(width_text) if width_text is not None else limits.default_width
    except ValueError:
        raise InvalidInput(f"width: {reason}", [FieldError("width", reason)]) from None
    if not 1 <= width <= limits.max_size:
        raise InvalidInput(f"width: {width} {reason}", [FieldError("width", reason)])
    height = surface.grid_height(bbox, width)
    if height > limits.max_size:
        why = f"this bbox at width {width} needs {height} rows; at most {limits.max_size}"
        raise InvalidInput(f"width: {why}", [FieldError("width", why)])
    return bbox, width, height


@router.get(
    "/api/risk/surface.{fmt}",
    tags=["risk"],
    response_class=Response,
    responses=binary(("image/tiff", "image/png"), "the GeoTIFF (.tif) or the PNG (.png)"),
    dependencies=[allow(*STAFF)],
)
async def surface_image(
    fmt: Literal["tif", "png"],
    conn: Conn,
    limits: Limits,
    bbox: BboxParam = None,
    width: WidthParam = None,
) -> Response:
    """``tif``: float32 GeoTIFF (EPSG:4326) of the risk index, exactly over ``bbox``.
    ``png``: a quick look in the four display colours by ``surface.CLASS_BREAKS``,
    transparent below the lowest break."""
    box, cols, rows = _size(bbox, width, limits)
    grid = await surface.risk_surface(conn, box, cols, rows)
    if fmt == "tif":
        return Response(surface.geotiff_bytes(grid), media_type="image/tiff")
    return Response(surface.png_bytes(grid), media_type="image/png")
