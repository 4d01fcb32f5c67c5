"""Vector tiles (docs/architecture.md §4): catalog, TileJSON 3.0.0, MVT tiles, MapLibre style.

Tile responses: ``200`` gzip MVT (``Content-Encoding: gzip`` when the client accepts it) with a
weak ``ETag`` and ``Cache-Control`` by layer class; ``304`` on a matching ``If-None-Match``;
``204 No Content`` when nothing is there — outside every requested layer's zoom range, or no
feature in the tile (MapLibre, QGIS and GDAL all treat 204 as an empty tile). ``X-Tile-Truncated``
names the layers whose feature cap cut features off (the worst colours were kept).

The tile handler takes no ``DbConn``: a cache hit must not hold a pool connection, so the tile
service borrows one only on a miss.
"""

from __future__ import annotations

import datetime as dt
import gzip
import logging
import re
from typing import Annotated, Any

from fastapi import APIRouter, Path, Query, Request
from fastapi.responses import JSONResponse, Response
from starlette.types import ASGIApp, Receive, Scope, Send

from geo_api.auth import ANYONE, Caller, CurrentCaller, allow, current_caller
from geo_api.body import Moment
from geo_api.db import DbConn
from geo_api.errors import (
    FieldError,
    Forbidden,
    GeoRiskError,
    InvalidInput,
    database_unavailable,
    unavailable_response,
)
from geo_api.models.tiles import (
    MVT,
    TILE_RESPONSES,
    MapStyle,
    TileCatalog,
    TileJson,
    TileToken,
)
from geo_api.settings import Settings, TilesSettings
from geo_api.tile_tokens import TileTokens, tile_query
from layers.access import roles as access
from layers.catalog import Catalog
from layers.catalog.tiles import TileLayer
from tiles.engine import TileRequest, TimeParams, UnknownTileLayer, parse_layers
from tiles.params import city_bounds, time_params
from tiles.service import TileService
from tiles.style import risk_style
from tiles.tilejson import catalog as tile_catalog
from tiles.tilejson import tilejson
from tiles.tms import Tile, TileOutOfRange

router = APIRouter(tags=["tiles"])
log = logging.getLogger("georisk.tiles")

#: What a tile's bytes depend on besides the URL: the encoding and who asks.
TILE_VARY = "Accept-Encoding, Authorization, X-API-Key, Cookie"
Everyone = [allow(*ANYONE)]  # which layers each role may ask for is checked per request
Layers = Annotated[str, Path(description="a layer name or a comma list (see GET /tiles)")]
TimeQuery = Annotated[Moment | None, Query(description="ISO 8601 time")]


def _catalog(request: Request) -> Catalog:
    catalog: Catalog = request.app.state.catalog
    return catalog


def _layers(text: str, caller: Caller, catalog: Catalog) -> tuple[TileLayer, ...]:
    layers = parse_layers(text, catalog.tiles)  # UnknownTileLayer is a 404 naming the layer
    _check_layers(layers, caller, catalog)
    return layers


def _check_layers(layers: tuple[TileLayer, ...], caller: Caller, catalog: Catalog) -> None:
    allowed = access.tile_layers_for(caller.role, catalog)
    refused = [layer.name for layer in layers if layer.name not in allowed]
    if refused:
        reason = f"not available to the {caller.role} role"
        raise Forbidden(
            f"layer: {', '.join(refused)} {reason}",
            [FieldError("layer", f"{name}: {reason}") for name in refused],
        )


def _tiles_settings(request: Request) -> TilesSettings:
    settings: Settings = request.app.state.settings
    return settings.tiles


def _time_params(
    cfg: TilesSettings, t_from: dt.datetime | None, t_to: dt.datetime | None, at: dt.datetime | None
) -> tuple[TimeParams, TimeParams]:
    return time_params(cfg.track_max_hours, cfg.latest_max_age_h, t_from, t_to, at)


def _json(doc: dict[str, Any]) -> JSONResponse:
    # What a document lists depends on who asks: never let a shared cache hand it on.
    return JSONResponse(doc, headers={"Cache-Control": "private, no-cache"})


@router.get(
    "/tiles",
    summary="Catalog of tile layers",
    response_model=TileCatalog,
    dependencies=Everyone,
)
async def tiles_catalog(request: Request, caller: CurrentCaller) -> JSONResponse:
    """The layers the caller may request, with their fields as the caller sees them."""
    layers = _catalog(request)
    allowed = access.tile_layers_for(caller.role, layers)
    return _json(tile_catalog(str(request.base_url), layers, allowed, caller.tile_view))


def _with_token(doc: dict[str, Any]) -> JSONResponse:
    # It holds a tile token: no cache, not even the browser's, keeps a copy.
    return JSONResponse(doc, headers={"Cache-Control": "private, no-store"})


@router.get(
    "/tiles/token",
    summary="A short-lived tile token (?t=) for the caller's view",
    response_model=TileToken,
    dependencies=Everyone,
)
async def tiles_token(
    request: Request,
    caller: CurrentCaller,
    layers: Annotated[
        str | None, Query(description="comma list; default every layer the caller may read")
    ] = None,
) -> JSONResponse:
    """A signed token for tile URLs (``…/{z}/{x}/{y}.mvt?t=<token>``) good for the caller's
    view and ``layers`` until ``expires_at``; ask again before then. Only tile requests
    accept it, and a tile token cannot ask for another. The anonymous public map gets
    ``"token": null``: its tile URLs need none."""
    catalog = _catalog(request)
    if layers is None:
        names = sorted(access.tile_layers_for(caller.role, catalog))
    else:
        try:
            names = [layer.name for layer in _layers(layers, caller, catalog)]
        except UnknownTileLayer as exc:
            raise InvalidInput(f"layers: {exc}", [FieldError("layers", str(exc))]) from None
    tokens: TileTokens = request.app.state.tile_tokens
    if caller.via == "anonymous":
        # The public map's tile URLs need no credential, and a token in them would only make
        # the shared caches (a CDN) keep one copy of each tile per visitor.
        return _with_token({"token": None, "expires_at": None, "expires_in": None, "layers": names})
    token, expires = tokens.issue(caller, names)
    return _with_token(
        {"token": token, "expires_at": expires, "expires_in": tokens.ttl_s, "layers": names}
    )


@router.get(
    "/tiles/{layers}.json",
    summary="TileJSON 3.0.0 of a layer or comma list",
    response_model=TileJson,
    dependencies=Everyone,
)
async def tiles_tilejson(
    request: Request, conn: DbConn, caller: CurrentCaller, layers: Layers
) -> JSONResponse:
    """Its tile URLs carry a tile token for these layers (never the key it was asked with):
    fetch the TileJSON again before ``GEORISK_SECURITY_TILE_TOKEN_TTL_S`` runs out."""
    chosen = _layers(layers, caller, _catalog(request))
    base, bounds = str(request.base_url), await city_bounds(conn)
    query = tile_query(request, caller, [layer.name for layer in chosen])
    return _with_token(tilejson(chosen, base, bounds, query, caller.tile_view))


@router.get(
    "/styles/risk.json",
    summary="MapLibre style in the four risk colours",
    response_model=MapStyle,
    dependencies=Everyone,
)
async def tiles_style(request: Request, caller: CurrentCaller) -> JSONResponse:
    """Its sources hold tile URLs with a tile token for every layer the caller may read."""
    layers = _catalog(request)
    allowed = access.tile_layers_for(caller.role, layers)
    query = tile_query(request, caller, allowed)
    return _with_token(risk_style(str(request.base_url), layers, allowed, query))


async def answer(
    service: TileService,
    cfg: TilesSettings,
    req: TileRequest,
    accept: str,
    if_none_match: str,
    caller: Caller,
) -> Response:
    """The response for a valid tile request — shared by the route and the fast path."""
    live = any(layer.cache_class == "live" for layer in req.layers)
    max_age = cfg.live_max_age_s if live else cfg.static_max_age_s
    # Tiles differ by caller (layers/access/roles.py): only the anonymous public map (when it is
    # switched on) may be kept by a shared cache such as a CDN. ``no-cache`` makes every cache
    # revalidate by ETag, so a tile is never reused after a change nor across callers whose
    # views differ (the other view's bytes have another ETag); ``Vary`` tells proxies the
    # credential is part of the answer.
    shared = "public" if caller.via == "anonymous" else "private"
    freshness = f"max-age={max_age}" if max_age > 0 else "no-cache"
    headers = {"Cache-Control": f"{shared}, {freshness}", "Vary": TILE_VARY}
    if not req.visible():
        return Response(status_code=204, headers=headers)
    entry = await service.tile(req)
    if not entry.body:
        return Response(status_code=204, headers=headers)
    headers["ETag"] = entry.etag
    if entry.truncated:
        headers["X-Tile-Truncated"] = ",".join(entry.truncated)
    if entry.etag in if_none_match:
        return Response(status_code=304, headers=headers)
    body = entry.body
    if service.compressed:
        if "gzip" in accept:
            headers["Content-Encoding"] = "gzip"
        else:
            body = gzip.decompress(body)
    return Response(body, media_type=MVT, headers=headers)


@router.get(
    "/tiles/{layers}/{z}/{x}/{y}.mvt",
    summary="Mapbox vector tile",
    response_class=Response,
    responses=TILE_RESPONSES,
    dependencies=Everyone,
)
async def tiles_tile(
    request: Request,
    caller: CurrentCaller,
    layers: Layers,
    z: int,
    x: int,
    y: int,
    t_from: Annotated[TimeQuery, Query(alias="from")] = None,
    t_to: Annotated[TimeQuery, Query(alias="to")] = None,
    at: TimeQuery = None,
    key: Annotated[str | None, Query(description="API key, for clients without headers")] = None,
    t: Annotated[
        str | None, Query(description="tile token (TileJSON, the style or GET /tiles/token)")
    ] = None,
    v: Annotated[
        int | None,
        Query(ge=0, le=2**63 - 1, description="change version (the live map's cache-buster)"),
    ] = None,
) -> Response:
    chosen = _layers(layers, caller, _catalog(request))
    tile = Tile(z, x, y).check()  # TileOutOfRange is a 404 naming z, x or y
    cfg = _tiles_settings(request)
    window, moment = _time_params(cfg, t_from, t_to, at)
    req = TileRequest(chosen, tile, window, moment, caller.tile_view)
    accept = request.headers.get("accept-encoding", "")
    return await answer(
        request.app.state.tiles, cfg, req, accept, request.headers.get("if-none-match", ""), caller
    )


_PLAIN_QUERY = re.compile(rb"^(?:(?:key=[^&]*|t=[A-Za-z0-9_.-]*|v=[0-9]{1,20})(?:&|$))+$")
_FAST_PATH = re.compile(r"^/tiles/([A-Za-z0-9_,]+)/([0-9]{1,2})/([0-9]{1,7})/([0-9]{1,7})\.mvt$")


class TileFastPath:
    """ASGI shortcut for well-formed tile requests without a query string (but ``?key=``,
    ``?t=`` — already turned into the caller by ``TileTokenGate`` — and ``v=``).

    Tiles are most of a map server's traffic, and for a cached tile FastAPI's routing,
    parameter validation and dependency resolution cost more than the answer itself. This
    serves exactly what ``tiles_tile`` would (same ``answer``, same caller and layer checks);
    anything unusual — another query parameter, an unknown layer, an impossible address, a
    caller who may not have the tile — falls through to the route, which validates it and
    answers the errors.
    """

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        match = None
        if scope["type"] == "http" and scope["method"] == "GET" and _plain_query(scope):
            match = _FAST_PATH.match(scope["path"])
        app = scope.get("app")
        if match is None or app is None or not hasattr(app.state, "tiles"):
            await self.app(scope, receive, send)
            return
        try:
            catalog: Catalog = app.state.catalog
            layers = parse_layers(match[1], catalog.tiles)
            tile = Tile(int(match[2]), int(match[3]), int(match[4])).check()
        except (UnknownTileLayer, TileOutOfRange):
            await self.app(scope, receive, send)
            return
        request = Request(scope, receive)
        try:
            caller = await current_caller(request)
            _check_layers(layers, caller, catalog)
        except GeoRiskError:
            await self.app(scope, receive, send)  # the route answers the 401/403
            return
        cfg: TilesSettings = app.state.settings.tiles
        if any(layer.time_window != "none" for layer in layers):
            window, moment = _time_params(cfg, None, None, None)
        else:  # the same cache key; no clock read for layers that have no time
            window, moment = TimeParams(), TimeParams()
        req = TileRequest(layers, tile, window, moment, caller.tile_view)
        accept = request.headers.get("accept-encoding", "")
        try:
            response = await answer(
                app.state.tiles, cfg, req, accept, request.headers.get("if-none-match", ""), caller
            )
        except Exception as exc:
            if not database_unavailable(exc):
                raise
            log.warning("database unavailable on tile %s: %s", scope["path"], type(exc).__name__)
            response = unavailable_response()
        await response(scope, receive, send)


def _plain_query(scope: Scope) -> bool:
    """No query string, or only ``key=…`` / ``t=…`` (credentials) and ``v=<version>``
    (the live map's cache-buster after a change; it never changes the tile)."""
    query: bytes = scope["query_string"]
    return not query or _PLAIN_QUERY.match(query) is not None
