"""OGC API – Tiles (OGC 20-057) under ``/ogc`` (issue 16 §2): the vector tile layers as OGC
tilesets, so GIS clients that speak OGC API find them.

* ``/ogc/tileMatrixSets[/WebMercatorQuad]``;
* ``/ogc/collections/{id}/tiles[/WebMercatorQuad]`` and ``/ogc/tiles[/WebMercatorQuad]`` (all
  the caller's layers in one tile) — tileset lists and tileset metadata;
* ``…/WebMercatorQuad/{tileMatrix}/{tileRow}/{tileCol}`` — the tile itself, served by the same
  code as ``/tiles/{layers}/{z}/{x}/{y}.mvt`` (``answer``): the caller's own credential (a key
  header, a session, ``?key=``) reads it, no redirect that a client might follow without it.

The ``item`` template a tileset hands out is the existing MVT URL with a short-lived tile token
(``?t=``), never a key. Which collections a caller has is ``ogc_common`` (404 otherwise).
"""

from __future__ import annotations

from typing import Annotated, Any
from urllib.parse import urlencode

from fastapi import APIRouter, Path, Query, Request
from fastapi.responses import JSONResponse, Response

from geo_api.auth import Caller, CurrentCaller
from geo_api.db import DbConn
from geo_api.errors import FieldError, Forbidden, NotFound
from geo_api.models import ogc as models
from geo_api.models.tiles import TILE_RESPONSES
from geo_api.routes.ogc_common import (
    MVT,
    REL,
    CollectionId,
    Format,
    base_url,
    document,
    link,
    tile_layer,
    tile_layers,
)
from geo_api.routes.tiles import Everyone, answer
from geo_api.settings import Settings
from geo_api.tile_tokens import PARAM, TileTokens
from layers.catalog.tiles import TileLayer
from tiles.engine import TileRequest
from tiles.params import city_bounds, time_params
from tiles.tilejson import WORLD, tile_url
from tiles.tilematrixset import TMS_ID, TMS_URI, tileset, web_mercator_quad
from tiles.tms import Tile, TileOutOfRange

router = APIRouter(prefix="/ogc", tags=["ogc"])

TILES_CONF = "http://www.opengis.net/spec/ogcapi-tiles-1/1.0/conf/"
CONFORMANCE = (
    f"{TILES_CONF}core",
    f"{TILES_CONF}tileset",
    f"{TILES_CONF}tilesets-list",
    f"{TILES_CONF}geodata-tilesets",
    f"{TILES_CONF}dataset-tilesets",
    f"{TILES_CONF}mvt",
    "http://www.opengis.net/spec/tms/2.0/conf/tilematrixset",
    "http://www.opengis.net/spec/tms/2.0/conf/json-tilematrixset",
    "http://www.opengis.net/spec/tms/2.0/conf/tilesetmetadata",
    "http://www.opengis.net/spec/tms/2.0/conf/json-tilesetmetadata",
)

TmsId = Annotated[str, Path(alias="tileMatrixSetId", description="WebMercatorQuad")]


def _check_tms(tms_id: str) -> None:
    if tms_id != TMS_ID:
        reason = f"{tms_id} is not offered; use {TMS_ID}"
        raise NotFound(f"tileMatrixSetId: {reason}", [FieldError("tileMatrixSetId", reason)])


async def city_extent(conn: Any) -> tuple[float, float, float, float]:
    """The city's extent (the districts), the world while none is loaded."""
    return await city_bounds(conn) or WORLD


def collection_links(base: str, root: str, layer: TileLayer) -> list[dict[str, Any]]:
    """A tile collection's links: its tilesets and its TileJSON."""
    href = f"{base}/collections/{layer.name}"
    return [
        link(f"{href}/tiles", f"{REL}tilesets-vector", f"{layer.title}: vector tilesets"),
        link(f"{root}/tiles/{layer.name}.json", "describedby", f"{layer.title}: TileJSON 3.0.0"),
    ]


def _token_query(request: Request, caller: Caller, names: list[str]) -> str:
    """``t=<tile token>`` for these layers — none for the anonymous public map."""
    if caller.via == "anonymous":
        return ""
    tokens: TileTokens = request.app.state.tile_tokens
    return urlencode({PARAM: tokens.issue(caller, names)[0]})


@router.get(
    "/tileMatrixSets",
    summary="Tile matrix sets",
    dependencies=Everyone,
    response_model=models.TileMatrixSets,
)
async def tile_matrix_sets(request: Request, f: Format = None) -> JSONResponse:
    href = f"{base_url(request)}/tileMatrixSets/{TMS_ID}"
    return document(
        {
            "tileMatrixSets": [
                {
                    "id": TMS_ID,
                    "title": "Google Maps compatible Web Mercator quadtree",
                    "uri": TMS_URI,
                    "links": [
                        link(href, "self", TMS_ID),
                        link(href, f"{REL}tiling-scheme", TMS_ID),
                    ],
                }
            ],
            "links": [link(f"{base_url(request)}/tileMatrixSets", "self", "this document")],
        }
    )


@router.get(
    "/tileMatrixSets/{tileMatrixSetId}",
    summary="A tile matrix set (OGC 17-083r4 JSON)",
    dependencies=Everyone,
    response_model=models.TileMatrixSet,
)
async def tile_matrix_set(tms_id: TmsId, f: Format = None) -> JSONResponse:
    _check_tms(tms_id)
    return document(web_mercator_quad())


# --- tilesets -------------------------------------------------------------------------


def _tileset_list(href: str, title: str) -> dict[str, Any]:
    """A tileset list with its one tileset (WebMercatorQuad, vector)."""
    tms = href.split("/ogc/")[0] + f"/ogc/tileMatrixSets/{TMS_ID}"
    return {
        "tilesets": [
            {
                "title": title,
                "dataType": "vector",
                "crs": "http://www.opengis.net/def/crs/EPSG/0/3857",
                "tileMatrixSetURI": TMS_URI,
                "links": [
                    link(f"{href}/{TMS_ID}", "self", f"{title}: {TMS_ID}"),
                    link(tms, f"{REL}tiling-scheme", TMS_ID),
                ],
            }
        ],
        "links": [link(href, "self", "this document")],
    }


async def _tileset(
    request: Request,
    conn: Any,
    caller: Caller,
    layers: tuple[TileLayer, ...],
    href: str,
    title: str,
) -> JSONResponse:
    names = [layer.name for layer in layers]
    root, joined = str(request.base_url), ",".join(names)
    query = _token_query(request, caller, names)
    template = (
        tile_url(root, joined)
        .replace("{z}", "{tileMatrix}")
        .replace("{x}", "{tileCol}")
        .replace("{y}", "{tileRow}")
    ) + (f"?{query}" if query else "")
    links = [
        link(f"{href}/{TMS_ID}", "self", title),
        link(f"{base_url(request)}/tileMatrixSets/{TMS_ID}", f"{REL}tiling-scheme", TMS_ID),
        link(template, "item", f"{title}: Mapbox vector tiles", MVT, templated=True),
        link(f"{root.rstrip('/')}/tiles/{joined}.json", "describedby", "TileJSON 3.0.0"),
    ]
    doc = tileset(layers, title, await city_extent(conn), caller.tile_view, links)
    return document(doc, token=True)


@router.get(
    "/collections/{collectionId}/tiles",
    summary="A collection's vector tilesets",
    dependencies=Everyone,
    response_model=models.Tilesets,
)
async def collection_tilesets(
    request: Request, caller: CurrentCaller, collection_id: CollectionId, f: Format = None
) -> JSONResponse:
    layer = tile_layer(request, caller, collection_id)
    href = f"{base_url(request)}/collections/{layer.name}/tiles"
    return document(_tileset_list(href, layer.title))


@router.get(
    "/collections/{collectionId}/tiles/{tileMatrixSetId}",
    summary="A collection's tileset metadata (with the tile URL template)",
    dependencies=Everyone,
    response_model=models.Tileset,
)
async def collection_tileset(
    request: Request,
    conn: DbConn,
    caller: CurrentCaller,
    collection_id: CollectionId,
    tms_id: TmsId,
    f: Format = None,
) -> JSONResponse:
    layer = tile_layer(request, caller, collection_id)
    _check_tms(tms_id)
    href = f"{base_url(request)}/collections/{layer.name}/tiles"
    return await _tileset(request, conn, caller, (layer,), href, layer.title)


@router.get(
    "/tiles",
    summary="All the caller's layers: vector tilesets",
    dependencies=Everyone,
    response_model=models.Tilesets,
)
async def dataset_tilesets(
    request: Request, caller: CurrentCaller, f: Format = None
) -> JSONResponse:
    return document(_tileset_list(f"{base_url(request)}/tiles", "GeoRisk: all your layers"))


def _dataset_layers(request: Request, caller: Caller) -> tuple[TileLayer, ...]:
    layers = tuple(tile_layers(request, caller))
    if not layers:  # a role without any tile layer never gets this far (Everyone)
        raise Forbidden(
            "role: no tile layer is available", [FieldError("role", "no tile layer is available")]
        )
    return layers


@router.get(
    "/tiles/{tileMatrixSetId}",
    summary="All the caller's layers: tileset metadata",
    dependencies=Everyone,
    response_model=models.Tileset,
)
async def dataset_tileset(
    request: Request, conn: DbConn, caller: CurrentCaller, tms_id: TmsId, f: Format = None
) -> JSONResponse:
    _check_tms(tms_id)
    layers = _dataset_layers(request, caller)
    href = f"{base_url(request)}/tiles"
    return await _tileset(request, conn, caller, layers, href, "GeoRisk: all your layers")


# --- tiles ----------------------------------------------------------------------------

TileMatrix = Annotated[int, Path(alias="tileMatrix", description="zoom level, 0–22")]
TileRow = Annotated[int, Path(alias="tileRow", description="row, 0 at the top")]
TileCol = Annotated[int, Path(alias="tileCol", description="column, 0 at the left")]
TileFormat = Annotated[str | None, Query(description="mvt (the only encoding)")]
#: Tile.check names z, x, y; an OGC client sent tileMatrix, tileCol, tileRow.
_OGC_NAMES = {"z": "tileMatrix", "x": "tileCol", "y": "tileRow"}


async def _tile(
    request: Request, caller: Caller, layers: tuple[TileLayer, ...], z: int, row: int, col: int
) -> Response:
    try:
        tile = Tile(z, col, row).check()
    except TileOutOfRange as exc:
        field = _OGC_NAMES[exc.field]
        reason = exc.reason
        raise NotFound(f"no such tile: {field}: {reason}", [FieldError(field, reason)]) from None
    settings: Settings = request.app.state.settings
    cfg = settings.tiles
    window, moment = time_params(cfg.track_max_hours, cfg.latest_max_age_h)
    req = TileRequest(layers, tile, window, moment, caller.tile_view)
    return await answer(
        request.app.state.tiles,
        cfg,
        req,
        request.headers.get("accept-encoding", ""),
        request.headers.get("if-none-match", ""),
        caller,
    )


@router.get(
    "/collections/{collectionId}/tiles/{tileMatrixSetId}/{tileMatrix}/{tileRow}/{tileCol}",
    summary="A collection's vector tile",
    response_class=Response,
    dependencies=Everyone,
    responses=TILE_RESPONSES,
)
async def collection_tile(
    request: Request,
    caller: CurrentCaller,
    collection_id: CollectionId,
    tms_id: TmsId,
    z: TileMatrix,
    row: TileRow,
    col: TileCol,
    f: TileFormat = None,
) -> Response:
    layer = tile_layer(request, caller, collection_id)
    _check_tms(tms_id)
    return await _tile(request, caller, (layer,), z, row, col)


@router.get(
    "/tiles/{tileMatrixSetId}/{tileMatrix}/{tileRow}/{tileCol}",
    summary="A vector tile of all the caller's layers",
    response_class=Response,
    dependencies=Everyone,
    responses=TILE_RESPONSES,
)
async def dataset_tile(
    request: Request,
    caller: CurrentCaller,
    tms_id: TmsId,
    z: TileMatrix,
    row: TileRow,
    col: TileCol,
    f: TileFormat = None,
) -> Response:
    _check_tms(tms_id)
    return await _tile(request, caller, _dataset_layers(request, caller), z, row, col)
