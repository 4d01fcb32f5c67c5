"""OGC API – Features (Parts 1–3) under ``/ogc`` (issue 16 §1): the REST collections as
OGC feature collections, so QGIS, ArcGIS and GDAL add our layers as features.

* ``/ogc/collections/{id}/items`` — a GeoJSON FeatureCollection: ``bbox`` (+ ``bbox-crs``),
  ``limit``/``offset`` paging with ``next``/``prev`` links that keep every other parameter,
  ``crs`` (CRS84, EPSG:4490 in lat/lon order, EPSG:3857; ``Content-Crs`` says which),
  ``datetime`` where the layer has time, ``?<queryable>=value`` and CQL2 ``filter``;
* ``/ogc/collections/{id}/items/{featureId}`` — one feature;
* ``/ogc/collections/{id}/queryables`` — JSON Schema of what a filter may name.

Who reads which collection and which of its rows is ``/api``'s rule (``ogc_common``,
``layers/access/roles.py``): the same row scope, the same properties; anything else is a 404
naming ``collectionId`` (or ``featureId``). Parsing and SQL are ``layers/collections/ogc.py``
and ``cql2.py``.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import json
from typing import Annotated, Any

from fastapi import APIRouter, Path, Query, Request
from fastapi.responses import JSONResponse, Response

from geo_api.auth import Caller, CurrentCaller
from geo_api.db import DbConn
from geo_api.errors import FieldError, NotFound
from geo_api.models import ogc as models
from geo_api.models.base import GeoJSONResponse
from geo_api.routes.ogc_common import (
    GEOJSON,
    JSON,
    SCHEMA_JSON,
    CollectionId,
    Format,
    SchemaJSONResponse,
    base_url,
    document,
    feature_collection,
)
from geo_api.routes.tiles import Everyone
from geo_api.settings import Settings
from layers.access import roles as access
from layers.catalog import Collection, Layer
from layers.collections import ogc
from layers.collections.read import FeaturePage, QueryError, RowScope
from layers.core.crs import CRS84, OGC_CRSS, CRSRejected, ogc_crs

router = APIRouter(prefix="/ogc", tags=["ogc"])

FEATURES = "http://www.opengis.net/spec/ogcapi-features-1/1.0/conf/"
FILTER = "http://www.opengis.net/spec/ogcapi-features-3/1.0/conf/"
CQL2 = "http://www.opengis.net/spec/cql2/1.0/conf/"
CONFORMANCE = (
    f"{FEATURES}core",
    f"{FEATURES}geojson",
    f"{FEATURES}oas30",
    "http://www.opengis.net/spec/ogcapi-features-2/1.0/conf/crs",
    f"{FILTER}queryables",
    f"{FILTER}queryables-query-parameters",
    f"{FILTER}filter",
    f"{FILTER}features-filter",
    f"{CQL2}cql2-text",
    f"{CQL2}cql2-json",
    f"{CQL2}basic-cql2",
    f"{CQL2}advanced-comparison-operators",
    f"{CQL2}basic-spatial-functions",
)
FeatureId = Annotated[
    int, Path(alias="featureId", ge=1, le=2**31 - 1, description="the feature's id")
]


def _scope(coll: Collection, caller: Caller) -> RowScope:
    districts, enterprise_id = access.collection_scope(
        caller.role, coll, caller.districts, caller.enterprise_id
    )
    return RowScope(districts, enterprise_id)


def _redacted(caller: Caller) -> bool:
    return caller.tile_view.redacted


def _items_doc_parameters() -> list[dict[str, Any]]:
    """OpenAPI entries for the query parameters, which the domain parses from the query string
    (it refuses unknown ones instead of ignoring them; queryables are per collection)."""
    described = {
        "bbox": "lower and upper corner in bbox-crs (default CRS84: lon,lat,lon,lat)",
        "bbox-crs": "CRS of bbox: CRS84, EPSG:4490 (lat,lon order) or EPSG:3857",
        "crs": "CRS of the answer: CRS84 (default), EPSG:4490 (lat/lon) or EPSG:3857",
        "limit": "page size (GEORISK_OGC_DEFAULT_LIMIT 100; at most GEORISK_OGC_MAX_LIMIT)",
        "offset": "features to skip (the next/prev links set it)",
        "datetime": "instant or interval start/end ('..' open) on the layer's time",
        "filter": "CQL2 filter over the queryables",
        "filter-lang": "cql2-text (default), cql2-json; cql-text (the draft name) reads as text",
        "filter-crs": "CRS of the filter's geometry literals (default CRS84)",
        "f": "json (the only encoding)",
    }
    return [
        {
            "name": n,
            "in": "query",
            "required": False,
            "schema": {"type": "string"},
            "description": d,
        }
        for n, d in described.items()
    ]


def _links(request: Request, query: ogc.ItemsQuery, page: FeaturePage) -> list[dict[str, Any]]:
    """self / next / prev: the request's own URL with every parameter kept but the key
    (a link is never a credential) and ``offset`` moved."""
    url = request.url.remove_query_params("key")

    def link(rel: str, offset: int | None = None) -> dict[str, Any]:
        href = url if offset is None else url.include_query_params(offset=offset)
        return {"href": str(href), "rel": rel, "type": GEOJSON, "title": rel}

    links = [link("self")]
    if query.offset + page.number_returned < page.number_matched:
        links.append(link("next", query.offset + query.limit))
    if query.offset > 0:
        links.append(link("prev", max(0, query.offset - query.limit)))
    collection = f"{base_url(request)}/collections/{request.path_params['collectionId']}"
    links.append({"href": collection, "rel": "collection", "type": JSON, "title": "collection"})
    return links


def _now() -> str:
    return dt.datetime.now(dt.UTC).isoformat(timespec="seconds").replace("+00:00", "Z")


@router.get(
    "/collections/{collectionId}/items",
    summary="Features of a collection (GeoJSON; bbox, datetime, CQL2 filter, crs)",
    dependencies=Everyone,
    response_class=GeoJSONResponse,
    response_model=models.FeatureCollection,
    responses={200: {"description": "a GeoJSON FeatureCollection"}},
    openapi_extra={"parameters": _items_doc_parameters()},
)
async def items(
    request: Request, conn: DbConn, caller: CurrentCaller, collection_id: CollectionId
) -> Response:
    coll, layer = feature_collection(request, caller, collection_id)
    redacted = _redacted(caller)
    fields = ogc.queryables(layer, redacted)
    paging = _settings(request).ogc
    query = ogc.parse_items_query(
        layer, request.query_params, fields, paging.default_limit, paging.max_limit
    )
    query = dataclasses.replace(query, scope=_scope(coll, caller))
    page = await ogc.list_items(
        conn, coll, layer, query, ogc.feature_props(layer, redacted), fields
    )
    head = {
        "type": "FeatureCollection",
        "numberMatched": page.number_matched,
        "numberReturned": page.number_returned,
        "timeStamp": _now(),
        "links": _links(request, query, page),
    }
    # The features arrive as JSON text from PostGIS and are spliced in, not re-parsed.
    body = json.dumps(head)[:-1] + ', "features": ' + page.features_json + "}"
    return Response(
        body.encode(),
        media_type=GEOJSON,
        headers={"Content-Crs": query.crs.header, "Cache-Control": "private, no-cache"},
    )


@router.get(
    "/collections/{collectionId}/items/{featureId}",
    summary="One feature (GeoJSON)",
    dependencies=Everyone,
    response_class=GeoJSONResponse,
    response_model=models.Feature,
    responses={200: {"description": "a GeoJSON Feature"}},
)
async def item(
    request: Request,
    conn: DbConn,
    caller: CurrentCaller,
    collection_id: CollectionId,
    feature_id: FeatureId,
    crs: Annotated[str | None, Query(description="CRS84 (default), EPSG:4490 or EPSG:3857")] = None,
    f: Format = None,
) -> Response:
    coll, layer = feature_collection(request, caller, collection_id)
    try:
        out = ogc_crs(crs)
    except CRSRejected as exc:
        raise QueryError("crs", str(exc)) from None
    props = ogc.feature_props(layer, _redacted(caller))
    feature = await ogc.get_item(conn, coll, feature_id, props, out, _scope(coll, caller))
    if feature is None:
        reason = f"no {coll.noun} {feature_id} in {layer.name}"
        raise NotFound(f"featureId: {reason}", [FieldError("featureId", reason)])
    doc = json.loads(feature)
    base = f"{base_url(request)}/collections/{layer.name}"
    doc["links"] = [
        {"href": f"{base}/items/{feature_id}", "rel": "self", "type": GEOJSON, "title": "this"},
        {"href": base, "rel": "collection", "type": JSON, "title": layer.title},
    ]
    return Response(
        json.dumps(doc).encode(),
        media_type=GEOJSON,
        headers={"Content-Crs": out.header, "Cache-Control": "private, no-cache"},
    )


@router.get(
    "/collections/{collectionId}/queryables",
    summary="What a filter may name (JSON Schema)",
    dependencies=Everyone,
    response_class=SchemaJSONResponse,
    response_model=models.Queryables,
)
async def queryables(
    request: Request, caller: CurrentCaller, collection_id: CollectionId, f: Format = None
) -> JSONResponse:
    _, layer = feature_collection(request, caller, collection_id)
    href = f"{base_url(request)}/collections/{layer.name}/queryables"
    response = document(ogc.queryables_schema(layer, _redacted(caller), href))
    response.headers["Content-Type"] = SCHEMA_JSON
    return response


def collection_parts(
    request: Request, layer: Layer, temporal: list[str | None] | None
) -> dict[str, Any]:
    """What a feature collection adds to its collection document: item type, CRSs, the
    temporal extent and the links to items and queryables."""
    href = f"{base_url(request)}/collections/{layer.name}"
    parts: dict[str, Any] = {
        "itemType": "feature",
        "crs": [c.uri for c in OGC_CRSS],
        "storageCrs": CRS84.uri,
        "links": [
            {
                "href": f"{href}/items",
                "rel": "items",
                "type": GEOJSON,
                "title": f"{layer.title}: features",
            },
            {
                "href": f"{href}/queryables",
                "rel": "http://www.opengis.net/def/rel/ogc/1.0/queryables",
                "type": SCHEMA_JSON,
                "title": f"{layer.title}: queryables",
            },
        ],
    }
    if temporal is not None:
        parts["temporal"] = {
            "interval": [temporal],
            "trs": "http://www.opengis.net/def/uom/ISO-8601/0/Gregorian",
        }
    return parts


async def temporal_of(conn: Any, coll: Collection, layer: Layer, caller: Caller) -> Any:
    return await ogc.temporal_extent(conn, coll, layer, _scope(coll, caller))


def _settings(request: Request) -> Settings:
    settings: Settings = request.app.state.settings
    return settings
