"""``GET /ogc/openapi.json`` — the OGC API's own definition (the landing page's
``service-desc``), written for the caller: its server is ``/ogc`` and each of the caller's
feature collections has concrete paths (``/collections/enterprises/items``) listing the
collection's own query parameters — its queryables, ``datetime`` where it has time, and
``filter-lang``'s languages.

Why a document of its own beside ``/openapi.json`` (the whole server, which documents the same
operations with a ``{collectionId}`` template): OGC clients read a collection's parameters
from the service description of the landing page, relative to it. GDAL's OAPIF driver, for one,
looks up ``/collections/<id>/items`` there to learn which properties it may filter on server
side and whether CQL text is understood; without it every filter is evaluated client side
after downloading the whole collection.
"""

from __future__ import annotations

from typing import Any, Final

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse

from geo_api.auth import Caller, CurrentCaller
from geo_api.models import ogc as models
from geo_api.routes.ogc_common import (
    GEOJSON,
    OPENAPI,
    OpenApiJSONResponse,
    base_url,
    feature_collections,
)
from geo_api.routes.tiles import Everyone
from geo_api.settings import Settings
from layers.catalog import Layer
from layers.collections import cql2, ogc
from layers.core.crs import OGC_CRSS

router = APIRouter(prefix="/ogc", tags=["ogc"])

_STRING: Final = {"type": "string"}
_CRS_ENUM: Final = {"type": "string", "enum": [c.uri for c in OGC_CRSS]}
_JSON_TYPES: Final = {"String": "string", "Number": "number", "Boolean": "boolean"}


def _param(name: str, description: str, schema: dict[str, Any] | None = None) -> dict[str, Any]:
    return {
        "name": name,
        "in": "query",
        "required": False,
        "description": description,
        "schema": schema or _STRING,
    }


def _items_parameters(layer: Layer, redacted: bool, settings: Settings) -> list[dict[str, Any]]:
    paging = settings.ogc
    params = [
        _param("bbox", "lower and upper corner in bbox-crs (default CRS84: lon,lat,lon,lat)"),
        _param("bbox-crs", "CRS of bbox (EPSG:4490 is lat,lon order)", _CRS_ENUM),
        _param("crs", "CRS of the answer (EPSG:4490 is lat/lon order)", _CRS_ENUM),
        _param(
            "limit",
            "page size",
            {
                "type": "integer",
                "minimum": 1,
                "maximum": paging.max_limit,
                "default": paging.default_limit,
            },
        ),
        _param("offset", "features to skip (next/prev links set it)", {"type": "integer"}),
        _param("filter", f"CQL2 over the queryables: {cql2.SUPPORTED}"),
        _param(
            "filter-lang",
            "cql2-text (default), cql2-json; cql-text is read as cql2-text",
            {"type": "string", "enum": [*cql2.LANGS, *cql2.ALIASES]},
        ),
        _param("filter-crs", "CRS of the filter's geometry literals", _CRS_ENUM),
    ]
    if layer.rest is not None and layer.rest.datetime_sql is not None:
        params.append(_param("datetime", "instant or interval start/end ('..' open)"))
    for name, q in ogc.queryables(layer, redacted).items():
        schema = (
            {"type": "string", "format": "date-time"}
            if q.type == "Date"
            else {"type": _JSON_TYPES[q.type]}
        )
        params.append(_param(name, f"features whose {name} equals this", schema))
    return params


def _operation(summary: str, media: str, schema: str, params: list[Any] | None = None) -> Any:
    return {
        "get": {
            "summary": summary,
            "parameters": params or [],
            "responses": {
                "200": {
                    "description": summary,
                    "content": {media: {"schema": {"$ref": f"#/components/schemas/{schema}"}}},
                },
                "400": {"description": "a parameter the server cannot use; the body names it"},
                "404": {"description": "no such collection or feature of yours"},
            },
        }
    }


def definition(request: Request, caller: Caller) -> dict[str, Any]:
    """The OpenAPI 3.0 document of the caller's OGC API."""
    settings: Settings = request.app.state.settings
    redacted = caller.tile_view.redacted
    paths: dict[str, Any] = {
        "/": _operation("landing page", "application/json", "LandingPage"),
        "/conformance": _operation("conformance classes", "application/json", "Conformance"),
        "/collections": _operation("collections", "application/json", "Collections"),
    }
    for _, layer in feature_collections(request, caller):
        base = f"/collections/{layer.name}"
        paths[base] = _operation(layer.title, "application/json", "Collection")
        paths[f"{base}/items"] = _operation(
            f"{layer.title}: features",
            GEOJSON,
            "FeatureCollection",
            _items_parameters(layer, redacted, settings),
        )
        item = _operation(f"{layer.title}: one feature", GEOJSON, "Feature")
        item["get"]["parameters"] = [
            {"name": "featureId", "in": "path", "required": True, "schema": {"type": "integer"}},
            _param("crs", "CRS of the answer", _CRS_ENUM),
        ]
        paths[f"{base}/items/{{featureId}}"] = item
        paths[f"{base}/queryables"] = _operation(
            f"{layer.title}: queryables", "application/schema+json", "Queryables"
        )
    schemas = {
        name: getattr(models, name).model_json_schema(ref_template="#/components/schemas/{model}")
        for name in (
            "LandingPage",
            "Conformance",
            "Collections",
            "Collection",
            "FeatureCollection",
            "Feature",
            "Queryables",
        )
    }
    for schema in list(schemas.values()):
        schemas.update(schema.pop("$defs", {}))
    root = str(request.base_url).rstrip("/")
    return {
        "openapi": "3.0.3",
        "info": {
            "title": "GeoRisk OGC API",
            "version": "1.0.0",
            "description": "OGC API – Features (Parts 1–3) and Tiles of the collections this "
            "caller may read. The whole server's definition: /openapi.json.",
        },
        "servers": [{"url": base_url(request)}],
        "externalDocs": {"description": "the whole API", "url": f"{root}/openapi.json"},
        "paths": paths,
        "components": {"schemas": schemas},
    }


@router.get(
    "/openapi.json",
    summary="The OGC API's definition (OpenAPI 3.0), for the caller's collections",
    dependencies=Everyone,
    response_class=OpenApiJSONResponse,
    response_model=models.OpenApiDocument,
)
async def ogc_openapi(request: Request, caller: CurrentCaller) -> JSONResponse:
    return JSONResponse(
        definition(request, caller),
        media_type=OPENAPI,
        headers={"Cache-Control": "private, no-cache"},
    )
