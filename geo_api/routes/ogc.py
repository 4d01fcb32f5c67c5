"""OGC API under ``/ogc`` (issue 16 §1–2): the landing page, the conformance classes and the
collections, each collection one catalogue layer as the caller sees it — features
(``ogc_features.py``: the REST collections their role reads), vector tiles (``ogc_tiles.py``:
the tile layers their role reads) or both. Derived from the catalogue and the caller, never a
hand list; a collection outside the caller's view is a 404 (``ogc_common``).

JSON only (``application/json``, GeoJSON for features); ``f=json`` is accepted and ignored.
The operations live in ``ogc_features.py``, ``ogc_tiles.py`` and ``ogc_openapi.py`` (the OGC
API's own service description), each router listed in ``geo_api/routes/__init__.py``.
Authentication is the API's (a key header, a session) plus ``?key=`` for GIS clients that
cannot send headers (``geo_api/auth.py``); no link or template ever carries the key.
"""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse

from geo_api.auth import Caller, CurrentCaller
from geo_api.db import DbConn
from geo_api.models import ogc as models
from geo_api.routes import ogc_features, ogc_tiles
from geo_api.routes.ogc_common import (
    JSON,
    OPENAPI,
    REL,
    CollectionId,
    Format,
    any_collection,
    base_url,
    document,
    feature_collections,
    link,
    tile_layers,
)
from geo_api.routes.tiles import Everyone
from layers.catalog import Collection, Layer
from layers.catalog.tiles import TileLayer
from layers.core.crs import CRS84_URI

router = APIRouter(prefix="/ogc", tags=["ogc"])

#: What is implemented here, and nothing more.
CONFORMANCE = (
    "http://www.opengis.net/spec/ogcapi-common-1/1.0/conf/core",
    "http://www.opengis.net/spec/ogcapi-common-1/1.0/conf/landing-page",
    "http://www.opengis.net/spec/ogcapi-common-1/1.0/conf/json",
    "http://www.opengis.net/spec/ogcapi-common-1/1.0/conf/oas30",
    "http://www.opengis.net/spec/ogcapi-common-2/1.0/conf/collections",
    *ogc_features.CONFORMANCE,
    *ogc_tiles.CONFORMANCE,
)


@router.get(
    "", summary="OGC API landing page", dependencies=Everyone, response_model=models.LandingPage
)
async def landing(request: Request, caller: CurrentCaller, f: Format = None) -> JSONResponse:
    base, root = base_url(request), str(request.base_url).rstrip("/")
    return document(
        {
            "title": "GeoRisk OGC API",
            "description": "The GeoRisk risk map's layers as OGC API – Features (GeoJSON, "
            "CRS84 / EPSG:4490 / EPSG:3857, CQL2 filters) and OGC API – Tiles "
            "(WebMercatorQuad, Mapbox vector tiles); the collections you see depend on your role.",
            "links": [
                link(base, "self", "this document"),
                # The OGC API's own definition (server /ogc, one path per collection): what
                # OGC clients read a collection's parameters from (ogc_openapi.py).
                link(f"{base}/openapi.json", "service-desc", "the API definition", OPENAPI),
                link(f"{root}/docs", "service-doc", "the API documentation", "text/html"),
                link(f"{base}/conformance", "conformance", "conformance classes"),
                link(f"{base}/collections", "data", "collections"),
                link(f"{base}/tileMatrixSets", f"{REL}tiling-schemes", "tile matrix sets"),
                link(f"{base}/tiles", f"{REL}tilesets-vector", "all your layers in one tileset"),
            ],
        }
    )


@router.get(
    "/conformance",
    summary="OGC API conformance classes",
    dependencies=Everyone,
    response_model=models.Conformance,
)
async def conformance(f: Format = None) -> JSONResponse:
    return document({"conformsTo": list(CONFORMANCE)})


async def _collection(
    request: Request,
    conn: Any,
    caller: Caller,
    bounds: tuple[float, float, float, float],
    features: tuple[Collection, Layer] | None,
    tiles: TileLayer | None,
) -> dict[str, Any]:
    """One collection document: a feature collection, a tile collection, or both."""
    source = features[1] if features is not None else tiles
    assert source is not None
    base, root = base_url(request), str(request.base_url).rstrip("/")
    href = f"{base}/collections/{source.name}"
    doc: dict[str, Any] = {
        "id": source.name,
        "title": source.title,
        "description": source.description,
        # GDAL's OGCAPI driver reads this box in the tile matrix set's CRS for vector tiles,
        # whatever ``crs`` says: docs/qgis.md tells GDAL users its MINX… open options.
        "extent": {"spatial": {"bbox": [list(bounds)], "crs": CRS84_URI}},
        "links": [link(href, "self", source.title)],
    }
    if features is not None:
        temporal = await ogc_features.temporal_of(conn, *features, caller)
        parts = ogc_features.collection_parts(request, features[1], temporal)
        doc["links"] += parts.pop("links")
        if "temporal" in parts:
            doc["extent"]["temporal"] = parts.pop("temporal")
        doc.update(parts)
    if tiles is not None:
        doc["dataType"] = "vector"
        doc["links"] += ogc_tiles.collection_links(base, root, tiles)
    return doc


@router.get(
    "/collections",
    summary="The caller's collections (features and vector tiles)",
    dependencies=Everyone,
    response_model=models.Collections,
)
async def collections(
    request: Request, conn: DbConn, caller: CurrentCaller, f: Format = None
) -> JSONResponse:
    bounds = await ogc_tiles.city_extent(conn)
    features = {layer.name: (coll, layer) for coll, layer in feature_collections(request, caller)}
    tiles = {layer.name: layer for layer in tile_layers(request, caller)}
    names = list(features) + [name for name in tiles if name not in features]
    docs = [
        await _collection(request, conn, caller, bounds, features.get(n), tiles.get(n))
        for n in names
    ]
    href = f"{base_url(request)}/collections"
    return document({"collections": docs, "links": [link(href, "self", "this document", JSON)]})


@router.get(
    "/collections/{collectionId}",
    summary="One collection",
    dependencies=Everyone,
    response_model=models.Collection,
)
async def collection(
    request: Request,
    conn: DbConn,
    caller: CurrentCaller,
    collection_id: CollectionId,
    f: Format = None,
) -> JSONResponse:
    features, tiles = any_collection(request, caller, collection_id)
    bounds = await ogc_tiles.city_extent(conn)
    return document(await _collection(request, conn, caller, bounds, features, tiles))
