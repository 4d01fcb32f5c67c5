"""The REST collections (docs/api.md): list, one item and create, for every layer of the
catalogue that declares a collection (``layers/catalog``) — enterprises, hazard sources,
monitoring points, pipelines, zones, vehicles, districts, and whatever a deployment adds.

Handlers only translate HTTP to domain calls: filters are parsed and SQL is built in
``layers.collections``, features are validated in ``layers.imports.payload``.
"""

from __future__ import annotations

import dataclasses
import json
from typing import Annotated, Any

from fastapi import APIRouter, Path, Query, Request
from fastapi.responses import JSONResponse, Response

from geo_api.auth import Caller, CurrentCaller, allow
from geo_api.body import read_json
from geo_api.db import DbConn
from geo_api.errors import (
    Conflict,
    FieldError,
    Forbidden,
    GeoRiskError,
    InvalidInput,
    NotFound,
)
from geo_api.rerate import Rerate
from geo_api.scope import district_filter
from geo_api.settings import Settings
from layers.access import roles as access
from layers.catalog import Catalog
from layers.collections import (
    Collection,
    FeaturePage,
    ListQuery,
    get_feature,
    list_features,
    parse_list_query,
    store_records,
)
from layers.collections.read import RowScope, outside_scope
from layers.core.features import FeaturesRejected
from layers.imports.payload import validate_payload
from layers.risk.recompute import refresh_after_create

GEOJSON = "application/geo+json"
Conn = DbConn
ItemId = Annotated[int, Path(ge=1, le=2**31 - 1, description="the feature's id")]
CrsParam = Annotated[
    str | None,
    Query(description="CRS of the body's coordinates (e.g. EPSG:4490); default WGS 84"),
]


def _settings(request: Request) -> Settings:
    settings: Settings = request.app.state.settings
    return settings


def _links(request: Request, query: ListQuery, page: FeaturePage) -> list[dict[str, str]]:
    def link(rel: str, offset: int | None = None) -> dict[str, str]:
        url = request.url if offset is None else request.url.include_query_params(offset=offset)
        return {"rel": rel, "href": str(url), "type": GEOJSON}

    links = [link("self")]
    if query.offset + page.number_returned < page.number_matched:
        links.append(link("next", query.offset + query.limit))
    if query.offset > 0:
        links.append(link("prev", max(0, query.offset - query.limit)))
    return links


def _rejected(exc: FeaturesRejected) -> GeoRiskError:
    errors = [FieldError(p.field, p.reason, p.index) for p in exc.problems]
    return (Conflict if exc.is_conflict else InvalidInput)(str(exc), errors)


def _scope(coll: Collection, caller: Caller, writing: bool = False) -> RowScope:
    districts, enterprise_id = access.collection_scope(
        caller.role, coll, caller.districts, caller.enterprise_id, writing
    )
    return RowScope(districts, enterprise_id)


async def _check_scope(
    conn: Any, coll: Collection, caller: Caller, ids: list[int], writing: bool = False
) -> None:
    """403 when any of ``ids`` lies outside the caller's rows (for a write: rolled back)."""
    outside = await outside_scope(conn, coll, ids, _scope(coll, caller, writing))
    if outside:
        reason = f"outside this {caller.role} key's districts or enterprise"
        raise Forbidden(
            f"{coll.noun} {outside[0]}: {reason}",
            [FieldError("id", f"{coll.noun} {i}: {reason}") for i in outside[:20]],
        )


def _filter_docs(coll: Collection) -> list[dict[str, Any]]:
    """OpenAPI entries for the filters; they are parsed from the query string by the domain,
    which refuses unknown ones instead of ignoring them."""
    described = {
        "bbox": "minx,miny,maxx,maxy in WGS 84",
        "limit": "page size (default and maximum from the server settings)",
        "offset": "features to skip",
        "district": "district code",
        "color": "risk colour (400 while the collection has no colour)",
    }
    ranges = {">=": "at or after", "<": "before"}
    described.update(
        {
            f.name: f"exact match on {f.name}"
            if f.op == "="
            else f"{f.sql.removeprefix('t.')} {ranges[f.op]} this date or ISO 8601 time"
            for f in coll.filters
        }
    )
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


def _add_routes(router: APIRouter, coll: Collection) -> None:
    base = f"/api/{coll.name}"

    async def list_items(request: Request, conn: Conn, caller: CurrentCaller) -> Response:
        server = _settings(request).server
        query = parse_list_query(  # a bad filter is a QueryError: a 400 naming it
            coll, request.query_params, server.default_page_size, server.max_page_size
        )
        if query.district is not None and access.scoped_on_read(coll):
            district_filter(caller, [query.district])  # 403 outside a regulator's districts
        query = dataclasses.replace(
            query,
            scope=_scope(coll, caller),
            masked=not access.reads_personal_data(caller.role),
        )
        page = await list_features(conn, coll, query)
        head = {
            "type": "FeatureCollection",
            "numberMatched": page.number_matched,
            "numberReturned": page.number_returned,
            "links": _links(request, query, page),
        }
        # The features arrive as JSON text from PostGIS and are spliced in, not re-parsed.
        body = json.dumps(head)[:-1] + ', "features": ' + page.features_json + "}"
        return Response(body.encode(), media_type=GEOJSON)

    async def get_item(item_id: ItemId, conn: Conn, caller: CurrentCaller) -> Response:
        masked = not access.reads_personal_data(caller.role)
        feature = await get_feature(conn, coll, item_id, masked)
        if feature is None:
            raise NotFound(
                f"{coll.noun} {item_id} not found", [FieldError("id", f"no {coll.noun} {item_id}")]
            )
        await _check_scope(conn, coll, caller, [item_id])
        return Response(feature.encode(), media_type=GEOJSON)

    async def create(
        request: Request, conn: Conn, caller: CurrentCaller, rerate: Rerate, crs: CrsParam = None
    ) -> JSONResponse:
        payload = await read_json(
            request, _settings(request).server.max_body_bytes, check_text=False
        )  # validation refuses NUL / lone surrogates, naming the feature's index
        assert coll.model is not None  # only writable collections get this route
        try:
            records, problems, single = validate_payload(coll.model, coll.name, payload, crs)
            result = await store_records(conn, coll, records, problems)
            await _check_scope(conn, coll, caller, result.ids, writing=True)
            await refresh_after_create(conn, coll.layer, result.ids, rerate.config())
        except FeaturesRejected as exc:
            raise _rejected(exc) from None
        body: dict[str, Any] = {"ids": result.ids}
        headers = {}
        if single:
            body["id"] = result.ids[0]
            headers["Location"] = f"{base}/{result.ids[0]}"
        return JSONResponse(body, status_code=201, headers=headers)

    readers = [allow(*access.collection_readers(coll))]
    router.add_api_route(
        base,
        list_items,
        dependencies=readers,
        methods=["GET"],
        tags=[coll.name],
        summary=f"List {coll.name} as GeoJSON",
        response_class=Response,
        openapi_extra={"parameters": _filter_docs(coll)},
    )
    if coll.item_route:
        router.add_api_route(
            base + "/{item_id}",
            get_item,
            dependencies=readers,
            methods=["GET"],
            tags=[coll.name],
            summary=f"One {coll.noun} as a GeoJSON Feature",
            response_class=Response,
        )
    if not coll.writable:
        return
    router.add_api_route(
        base,
        create,
        dependencies=[allow(*access.collection_writers(coll))],
        methods=["POST"],
        tags=[coll.name],
        status_code=201,
        summary=f"Create {coll.name} (all or nothing)",
        response_class=JSONResponse,
    )


def router_for(catalog: Catalog) -> APIRouter:
    """The collection routes of a catalogue (built per app, so a catalogue with one more
    layer serves one more collection)."""
    router = APIRouter()
    for coll in catalog.collections.values():
        _add_routes(router, coll)
    return router
