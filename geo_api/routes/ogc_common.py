"""What every ``/ogc`` document shares: the base URL, links, the cache rule, and which
collection ids a caller may read — as features (the REST collections their role reads) or as
vector tiles (the tile rule). One answer for "may not read" and "does not exist": a 404 naming
``collectionId``, so an id reveals nothing about layers outside the caller's view.
"""

from __future__ import annotations

from typing import Annotated, Any, Final

from fastapi import Path, Query, Request
from fastapi.responses import JSONResponse

from geo_api.auth import Caller
from geo_api.errors import FieldError, NotFound
from layers.access import roles as access
from layers.catalog import Catalog, Collection, Layer
from layers.catalog.tiles import TileLayer

JSON: Final = "application/json"
GEOJSON: Final = "application/geo+json"
SCHEMA_JSON: Final = "application/schema+json"
OPENAPI: Final = "application/vnd.oai.openapi+json;version=3.0"
MVT: Final = "application/vnd.mapbox-vector-tile"
REL: Final = "http://www.opengis.net/def/rel/ogc/1.0/"

CollectionId = Annotated[
    str, Path(alias="collectionId", description="a collection id (GET /ogc/collections)")
]
Format = Annotated[str | None, Query(description="json (the only encoding)")]


class SchemaJSONResponse(JSONResponse):
    """``application/schema+json`` (queryables). Named as ``response_class`` so /openapi.json
    documents the media type the handler really sends; the handler sets it itself."""

    media_type = SCHEMA_JSON


class OpenApiJSONResponse(JSONResponse):
    """The OpenAPI 3.0 media type of ``/ogc/openapi.json``, for the same reason."""

    media_type = OPENAPI


def base_url(request: Request) -> str:
    return str(request.base_url).rstrip("/") + "/ogc"


def link(href: str, rel: str, title: str, kind: str = JSON, **extra: Any) -> dict[str, Any]:
    return {"href": href, "rel": rel, "type": kind, "title": title, **extra}


def document(doc: dict[str, Any], token: bool = False, **headers: str) -> JSONResponse:
    # Every document depends on who asks (no shared cache); one holding a tile token is kept
    # by no cache at all, not even the browser's.
    cache = "private, no-store" if token else "private, no-cache"
    return JSONResponse(doc, headers={"Cache-Control": cache, **headers})


def catalog_of(request: Request) -> Catalog:
    catalog: Catalog = request.app.state.catalog
    return catalog


def tile_layers(request: Request, caller: Caller) -> list[TileLayer]:
    """The caller's tile layers, in drawing order."""
    catalog = catalog_of(request)
    names = access.tile_layers_for(caller.role, catalog)
    return [layer for layer in catalog.tiles.values() if layer.name in names]


def feature_collections(request: Request, caller: Caller) -> list[tuple[Collection, Layer]]:
    """The REST collections the caller's role reads (the same rule as ``/api``), in the
    catalogue's collection order, each with its layer."""
    catalog = catalog_of(request)
    return [
        (coll, catalog.layers[coll.layer])
        for coll in catalog.collections.values()
        if caller.role in access.collection_readers(coll)
    ]


def _not_found(collection_id: str, what: str = "collection") -> NotFound:
    reason = f"{collection_id} is no {what} of yours (GET /ogc/collections)"
    return NotFound(f"collectionId: {reason}", [FieldError("collectionId", reason)])


def tile_layer(request: Request, caller: Caller, collection_id: str) -> TileLayer:
    """A tile collection of the caller, else 404."""
    for layer in tile_layers(request, caller):
        if layer.name == collection_id:
            return layer
    raise _not_found(collection_id, "tile collection")


def feature_collection(
    request: Request, caller: Caller, collection_id: str
) -> tuple[Collection, Layer]:
    """A feature collection of the caller, else 404."""
    for coll, layer in feature_collections(request, caller):
        if layer.name == collection_id:
            return coll, layer
    raise _not_found(collection_id, "feature collection")


def any_collection(
    request: Request, caller: Caller, collection_id: str
) -> tuple[tuple[Collection, Layer] | None, TileLayer | None]:
    """(features, tiles) of one collection id, either possibly None; 404 when both are."""
    features = next(
        (pair for pair in feature_collections(request, caller) if pair[1].name == collection_id),
        None,
    )
    tiles = next((t for t in tile_layers(request, caller) if t.name == collection_id), None)
    if features is None and tiles is None:
        raise _not_found(collection_id)
    return features, tiles
