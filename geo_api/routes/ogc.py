"""OGC API – Tiles (OGC 20-057) under ``/ogc`` (issue 16 §2): the vector tile layers as OGC
collections, so GIS clients that speak OGC API find them.

* ``/ogc`` landing page, ``/ogc/conformance`` (only the classes implemented here: a later
  OGC API – Features adds its own), ``/ogc/tileMatrixSets[/WebMercatorQuad]``;
* ``/ogc/collections[/{id}]`` — the caller's tile layers, one collection each;
* ``/ogc/collections/{id}/tiles[/WebMercatorQuad]`` and ``/ogc/tiles[/WebMercatorQuad]`` (all
  the caller's layers in one tile) — tileset lists and tileset metadata;
* ``…/WebMercatorQuad/{tileMatrix}/{tileRow}/{tileCol}`` — the tile itself, served by the same
  code as ``/tiles/{layers}/{z}/{x}/{y}.mvt`` (``answer``): the caller's own credential (a key
  header, a session, ``?key=``) reads it, no redirect that a client might follow without it.

The ``item`` template a tileset hands out is the existing MVT URL with a short-lived tile token
(``?t=``), never a key. JSON only (``application/json``); ``f=json`` is accepted and ignored.
Who sees which collection is the tile rule (``layers/access/roles.py``): an unknown id is a
404, a layer the role may not read a 403, both naming ``collectionId``.
"""

from __future__ import annotations

from typing import Annotated, Any
from urllib.parse import urlencode

from fastapi import APIRouter, Path, Query, Request
from fastapi.responses import JSONResponse, Response

from geo_api.auth import Caller, CurrentCaller
from geo_api.db import DbConn
from geo_api.errors import FieldError, Forbidden, NotFound
from geo_api.routes.tiles import Everyone, _bounds, _time_params, answer
from geo_api.settings import Settings
from geo_api.tile_tokens import PARAM, TileTokens
from layers.access import roles as access
from layers.catalog import Catalog
from layers.catalog.tiles import TileLayer
from tiles.engine import TileRequest
from tiles.tilejson import WORLD, tile_url
from tiles.tilematrixset import CRS84, TMS_ID, TMS_URI, tileset, web_mercator_quad
from tiles.tms import Tile, TileOutOfRange

router = APIRouter(prefix="/ogc", tags=["ogc"])

JSON = "application/json"
MVT = "application/vnd.mapbox-vector-tile"
REL = "http://www.opengis.net/def/rel/ogc/1.0/"
TILES_CONF = "http://www.opengis.net/spec/ogcapi-tiles-1/1.0/conf/"
#: What this module implements, and nothing more: OGC API – Features will add its classes.
CONFORMANCE = (
    "http://www.opengis.net/spec/ogcapi-common-1/1.0/conf/core",
    "http://www.opengis.net/spec/ogcapi-common-1/1.0/conf/landing-page",
    "http://www.opengis.net/spec/ogcapi-common-1/1.0/conf/json",
    "http://www.opengis.net/spec/ogcapi-common-1/1.0/conf/oas30",
    "http://www.opengis.net/spec/ogcapi-common-2/1.0/conf/collections",
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

CollectionId = Annotated[
    str, Path(alias="collectionId", description="a tile layer (GET /ogc/collections)")
]
TmsId = Annotated[str, Path(alias="tileMatrixSetId", description="WebMercatorQuad")]
Format = Annotated[str | None, Query(description="json (the only encoding)")]


def _base(request: Request) -> str:
    return str(request.base_url).rstrip("/") + "/ogc"


def _link(href: str, rel: str, title: str, kind: str = JSON, **extra: Any) -> dict[str, Any]:
    return {"href": href, "rel": rel, "type": kind, "title": title, **extra}


def _doc(doc: dict[str, Any], token: bool = False) -> JSONResponse:
    # Every document depends on who asks (no shared cache); one holding a tile token is kept
    # by no cache at all, not even the browser's.
    cache = "private, no-store" if token else "private, no-cache"
    return JSONResponse(doc, headers={"Cache-Control": cache})


def _catalog(request: Request) -> Catalog:
    catalog: Catalog = request.app.state.catalog
    return catalog


def _allowed(request: Request, caller: Caller) -> list[TileLayer]:
    catalog = _catalog(request)
    names = access.tile_layers_for(caller.role, catalog)
    return [layer for layer in catalog.tiles.values() if layer.name in names]


def _collection_layer(request: Request, caller: Caller, collection_id: str) -> TileLayer:
    catalog = _catalog(request)
    layer = catalog.tiles.get(collection_id)
    if layer is None:
        reason = f"{collection_id} is no collection (GET /ogc/collections)"
        raise NotFound(f"collectionId: {reason}", [FieldError("collectionId", reason)])
    if layer.name not in access.tile_layers_for(caller.role, catalog):
        reason = f"{collection_id} is not available to the {caller.role} role"
        raise Forbidden(f"collectionId: {reason}", [FieldError("collectionId", reason)])
    return layer


def _check_tms(tms_id: str) -> None:
    if tms_id != TMS_ID:
        reason = f"{tms_id} is not offered; use {TMS_ID}"
        raise NotFound(f"tileMatrixSetId: {reason}", [FieldError("tileMatrixSetId", reason)])


async def _extent(conn: Any) -> tuple[float, float, float, float]:
    """The city's extent (the districts), the world while none is loaded."""
    return await _bounds(conn) or WORLD


def _token_query(request: Request, caller: Caller, names: list[str]) -> str:
    """``t=<tile token>`` for these layers — none for the anonymous public map."""
    if caller.via == "anonymous":
        return ""
    tokens: TileTokens = request.app.state.tile_tokens
    return urlencode({PARAM: tokens.issue(caller, names)[0]})


# --- landing page, conformance, tile matrix sets -----------------------------------------


@router.get("", summary="OGC API landing page", dependencies=Everyone)
async def landing(request: Request, caller: CurrentCaller, f: Format = None) -> JSONResponse:
    base, root = _base(request), str(request.base_url).rstrip("/")
    return _doc(
        {
            "title": "GeoRisk OGC API",
            "description": "The GeoRisk risk map's vector tile layers as OGC API – Tiles "
            "(WebMercatorQuad, Mapbox vector tiles); the collections you see depend on your role.",
            "links": [
                _link(base, "self", "this document"),
                _link(
                    f"{root}/openapi.json",
                    "service-desc",
                    "the API definition",
                    "application/vnd.oai.openapi+json;version=3.0",
                ),
                _link(f"{base}/conformance", "conformance", "conformance classes"),
                _link(f"{base}/collections", "data", "collections (tile layers)"),
                _link(f"{base}/tileMatrixSets", f"{REL}tiling-schemes", "tile matrix sets"),
                _link(f"{base}/tiles", f"{REL}tilesets-vector", "all your layers in one tileset"),
            ],
        }
    )


@router.get("/conformance", summary="OGC API conformance classes", dependencies=Everyone)
async def conformance(f: Format = None) -> JSONResponse:
    return _doc({"conformsTo": list(CONFORMANCE)})


@router.get("/tileMatrixSets", summary="Tile matrix sets", dependencies=Everyone)
async def tile_matrix_sets(request: Request, f: Format = None) -> JSONResponse:
    href = f"{_base(request)}/tileMatrixSets/{TMS_ID}"
    return _doc(
        {
            "tileMatrixSets": [
                {
                    "id": TMS_ID,
                    "title": "Google Maps compatible Web Mercator quadtree",
                    "uri": TMS_URI,
                    "links": [
                        _link(href, "self", TMS_ID),
                        _link(href, f"{REL}tiling-scheme", TMS_ID),
                    ],
                }
            ],
            "links": [_link(f"{_base(request)}/tileMatrixSets", "self", "this document")],
        }
    )


@router.get(
    "/tileMatrixSets/{tileMatrixSetId}",
    summary="A tile matrix set (OGC 17-083r4 JSON)",
    dependencies=Everyone,
)
async def tile_matrix_set(tms_id: TmsId, f: Format = None) -> JSONResponse:
    _check_tms(tms_id)
    return _doc(web_mercator_quad())


# --- collections ----------------------------------------------------------------------


def _collection(base: str, layer: TileLayer, bounds: tuple[float, ...]) -> dict[str, Any]:
    href = f"{base}/collections/{layer.name}"
    return {
        "id": layer.name,
        "title": layer.title,
        "description": layer.description,
        "extent": {"spatial": {"bbox": [list(bounds)], "crs": CRS84}},
        "dataType": "vector",
        "links": [
            _link(href, "self", layer.title),
            _link(f"{href}/tiles", f"{REL}tilesets-vector", f"{layer.title}: vector tilesets"),
        ],
    }


@router.get(
    "/collections", summary="The caller's tile layers as collections", dependencies=Everyone
)
async def collections(
    request: Request, conn: DbConn, caller: CurrentCaller, f: Format = None
) -> JSONResponse:
    base, bounds = _base(request), await _extent(conn)
    return _doc(
        {
            "collections": [
                _collection(base, layer, bounds) for layer in _allowed(request, caller)
            ],
            "links": [_link(f"{base}/collections", "self", "this document")],
        }
    )


@router.get("/collections/{collectionId}", summary="One collection", dependencies=Everyone)
async def collection(
    request: Request,
    conn: DbConn,
    caller: CurrentCaller,
    collection_id: CollectionId,
    f: Format = None,
) -> JSONResponse:
    layer = _collection_layer(request, caller, collection_id)
    return _doc(_collection(_base(request), layer, await _extent(conn)))


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
                    _link(f"{href}/{TMS_ID}", "self", f"{title}: {TMS_ID}"),
                    _link(tms, f"{REL}tiling-scheme", TMS_ID),
                ],
            }
        ],
        "links": [_link(href, "self", "this document")],
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
        _link(f"{href}/{TMS_ID}", "self", title),
        _link(f"{_base(request)}/tileMatrixSets/{TMS_ID}", f"{REL}tiling-scheme", TMS_ID),
        _link(template, "item", f"{title}: Mapbox vector tiles", MVT, templated=True),
        _link(f"{root.rstrip('/')}/tiles/{joined}.json", "describedby", "TileJSON 3.0.0"),
    ]
    doc = tileset(layers, title, await _extent(conn), caller.tile_view, links)
    return _doc(doc, token=True)


@router.get(
    "/collections/{collectionId}/tiles",
    summary="A collection's vector tilesets",
    dependencies=Everyone,
)
async def collection_tilesets(
    request: Request,
    caller: CurrentCaller,
    collection_id: CollectionId,
    f: Format = None,
) -> JSONResponse:
    layer = _collection_layer(request, caller, collection_id)
    return _doc(_tileset_list(f"{_base(request)}/collections/{layer.name}/tiles", layer.title))


@router.get(
    "/collections/{collectionId}/tiles/{tileMatrixSetId}",
    summary="A collection's tileset metadata (with the tile URL template)",
    dependencies=Everyone,
)
async def collection_tileset(
    request: Request,
    conn: DbConn,
    caller: CurrentCaller,
    collection_id: CollectionId,
    tms_id: TmsId,
    f: Format = None,
) -> JSONResponse:
    layer = _collection_layer(request, caller, collection_id)
    _check_tms(tms_id)
    href = f"{_base(request)}/collections/{layer.name}/tiles"
    return await _tileset(request, conn, caller, (layer,), href, layer.title)


@router.get("/tiles", summary="All the caller's layers: vector tilesets", dependencies=Everyone)
async def dataset_tilesets(
    request: Request, caller: CurrentCaller, f: Format = None
) -> JSONResponse:
    return _doc(_tileset_list(f"{_base(request)}/tiles", "GeoRisk: all your layers"))


def _dataset_layers(request: Request, caller: Caller) -> tuple[TileLayer, ...]:
    layers = tuple(_allowed(request, caller))
    if not layers:  # a role without any tile layer never gets this far (Everyone)
        raise Forbidden(
            "role: no tile layer is available", [FieldError("role", "no tile layer is available")]
        )
    return layers


@router.get(
    "/tiles/{tileMatrixSetId}",
    summary="All the caller's layers: tileset metadata",
    dependencies=Everyone,
)
async def dataset_tileset(
    request: Request,
    conn: DbConn,
    caller: CurrentCaller,
    tms_id: TmsId,
    f: Format = None,
) -> JSONResponse:
    _check_tms(tms_id)
    layers = _dataset_layers(request, caller)
    href = f"{_base(request)}/tiles"
    return await _tileset(request, conn, caller, layers, href, "GeoRisk: all your layers")


# --- tiles ----------------------------------------------------------------------------

TileMatrix = Annotated[int, Path(alias="tileMatrix", description="zoom level, 0–22")]
TileRow = Annotated[int, Path(alias="tileRow", description="row, 0 at the top")]
TileCol = Annotated[int, Path(alias="tileCol", description="column, 0 at the left")]
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
    window, moment = _time_params(settings.tiles, None, None, None)
    req = TileRequest(layers, tile, window, moment, caller.tile_view)
    return await answer(
        request.app.state.tiles,
        settings.tiles,
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
)
async def collection_tile(
    request: Request,
    caller: CurrentCaller,
    collection_id: CollectionId,
    tms_id: TmsId,
    z: TileMatrix,
    row: TileRow,
    col: TileCol,
    f: Annotated[str | None, Query(description="mvt (the only encoding)")] = None,
) -> Response:
    layer = _collection_layer(request, caller, collection_id)
    _check_tms(tms_id)
    return await _tile(request, caller, (layer,), z, row, col)


@router.get(
    "/tiles/{tileMatrixSetId}/{tileMatrix}/{tileRow}/{tileCol}",
    summary="A vector tile of all the caller's layers",
    response_class=Response,
    dependencies=Everyone,
)
async def dataset_tile(
    request: Request,
    caller: CurrentCaller,
    tms_id: TmsId,
    z: TileMatrix,
    row: TileRow,
    col: TileCol,
    f: Annotated[str | None, Query(description="mvt (the only encoding)")] = None,
) -> Response:
    _check_tms(tms_id)
    return await _tile(request, caller, _dataset_layers(request, caller), z, row, col)
