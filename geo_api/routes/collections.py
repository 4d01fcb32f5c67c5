"""The REST collections (docs/api.md): list, one item, create, edit (``PATCH``, an RFC 7396
merge patch) and delete, for every layer of the catalogue that declares a collection
(``layers/catalog``) — enterprises, hazard sources, monitoring points, pipelines, zones,
vehicles, districts, and whatever a deployment adds.

Items carry a strong ``ETag`` (their row version); ``PATCH`` and ``DELETE`` require
``If-Match`` (428 without it, 412 when stale — nothing changed), are scoped and audited like
``POST``, re-rate what depends on them and announce the old and the new extent.

Handlers only translate HTTP to domain calls: filters are parsed and SQL is built in
``layers.collections``, features are validated in ``layers.imports.payload``.
"""

from __future__ import annotations

import dataclasses
import json
from typing import Annotated, Any, Final

from fastapi import APIRouter, Header, Path, Query, Request
from fastapi.responses import JSONResponse, Response

from geo_api.auth import Caller, CurrentCaller, allow
from geo_api.body import read_json
from geo_api.db import DbConn, ReadConn
from geo_api.errors import (
    BadRequest,
    Conflict,
    ErrorBody,
    FieldError,
    Forbidden,
    GeoRiskError,
    InvalidInput,
    NotFound,
    error_responses,
)
from geo_api.models.base import GeoJSONResponse
from geo_api.models.collections import (
    Created,
    DeleteOutcome,
    EditOutcome,
    collection_model,
    feature_model,
)
from geo_api.rerate import Rerate
from geo_api.scope import district_filter
from geo_api.settings import Settings
from layers.access import roles as access
from layers.catalog import Catalog, Layer
from layers.collections import (
    Collection,
    FeaturePage,
    ListQuery,
    get_feature,
    list_features,
    parse_list_query,
    store_records,
)
from layers.collections.edit import (
    check_precondition,
    current_document,
    delete_or_retire,
    etag,
    gone,
    locked,
    merged_item,
    parse_if_match,
    row_state,
)
from layers.collections.read import RowScope, outside_scope
from layers.collections.write import announce, update_record
from layers.core.features import FeaturesRejected, Problem
from layers.imports.payload import validate_item, validate_payload
from layers.risk.recompute import enterprises_rated_by, refresh_after_create, refresh_after_edit

GEOJSON = "application/geo+json"
Conn = DbConn
ItemId = Annotated[int, Path(ge=1, le=2**31 - 1, description="the feature's id")]
CrsParam = Annotated[
    str | None,
    Query(description="CRS of the body's coordinates (e.g. EPSG:4490); default WGS 84"),
]
IfMatchHeader = Annotated[
    str | None,
    Header(
        alias="If-Match",
        description='the ETag from GET (e.g. "3"), or * for any current version; required',
    ),
]
MERGE_PATCH = "application/merge-patch+json"


def _error(description: str) -> dict[str, Any]:
    return {"model": ErrorBody, "description": description}


#: The answers an edit adds to every route's (geo_api/errors.py ERROR_RESPONSES).
EDIT_RESPONSES: dict[int | str, dict[str, Any]] = {
    410: _error("the item was retired: kept for history, no longer served or edited"),
    412: _error("If-Match is not the current version (the ETag header names it); nothing changed"),
    428: _error("If-Match is required"),
}


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


_PRIVATE: Final = {"Cache-Control": "private, no-cache"}


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
            f.name: f.description
            if f.description
            else f"exact match on {f.name}"
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


def _add_routes(router: APIRouter, coll: Collection, layer: Layer) -> None:
    base = f"/api/{coll.name}"
    feature = feature_model(layer)  # the documented bodies, derived from the catalogue

    async def list_items(request: Request, conn: ReadConn, caller: CurrentCaller) -> Response:
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
        # One caller's view (scoped, personal data masked per role): no shared cache keeps it.
        return Response(body.encode(), media_type=GEOJSON, headers=_PRIVATE)

    async def get_item(item_id: ItemId, conn: ReadConn, caller: CurrentCaller) -> Response:
        state = await row_state(conn, coll, item_id) if coll.writable else None
        masked = not access.reads_personal_data(caller.role)
        feature = await get_feature(conn, coll, item_id, masked)
        if feature is None:
            raise NotFound(
                f"{coll.noun} {item_id} not found", [FieldError("id", f"no {coll.noun} {item_id}")]
            )
        await _check_scope(conn, coll, caller, [item_id])
        if state is not None and state.retired_at is not None:
            raise gone(coll, state)  # kept for history, no longer served: 410
        headers = {"ETag": state.etag} if state is not None else None
        return Response(feature.encode(), media_type=GEOJSON, headers=headers)

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
            headers["ETag"] = etag(1)  # a new row is at version 1 (migration 0012)
        return JSONResponse(body, status_code=201, headers=headers)

    async def patch_item(
        item_id: ItemId,
        request: Request,
        conn: Conn,
        caller: CurrentCaller,
        rerate: Rerate,
        if_match: IfMatchHeader = None,
    ) -> JSONResponse:
        precondition = parse_if_match(if_match)  # 428 without one
        patch = await _read_merge_patch(request)
        state = await locked(conn, coll, item_id)  # 404; held until the commit
        await _check_scope(conn, coll, caller, [item_id], writing=True)  # 403
        check_precondition(coll, state, precondition)  # 410 retired, 412 stale
        rated = await enterprises_rated_by(conn, coll.layer, [item_id])
        await announce(conn, coll, [item_id])  # the old extent: its tiles are purged too
        try:
            props, geometry = merged_item(
                coll, item_id, await current_document(conn, coll, item_id), patch
            )
            record, problems = validate_item(coll.writing.model, coll.name, props, geometry, 0)
            if record is None:  # one item: an index would only say "0"
                raise FeaturesRejected([Problem(None, p.field, p.reason) for p in problems])
            version = await update_record(conn, coll, item_id, record, state.version)
            await _check_scope(conn, coll, caller, [item_id], writing=True)  # and still ours
        except FeaturesRejected as exc:
            raise _rejected(exc) from None
        rated |= await enterprises_rated_by(conn, coll.layer, [item_id])
        await announce(conn, coll, [item_id])  # the new extent
        await refresh_after_edit(conn, coll.layer, [item_id], rated, rerate.config())
        tag = etag(version)
        return JSONResponse({"id": item_id, "version": version, "etag": tag}, headers={"ETag": tag})

    async def delete_item(
        item_id: ItemId,
        conn: Conn,
        caller: CurrentCaller,
        rerate: Rerate,
        if_match: IfMatchHeader = None,
    ) -> Response:
        precondition = parse_if_match(if_match)
        state = await locked(conn, coll, item_id)
        await _check_scope(conn, coll, caller, [item_id], writing=True)
        check_precondition(coll, state, precondition)
        rated = await enterprises_rated_by(conn, coll.layer, [item_id])
        await announce(conn, coll, [item_id])  # read while the row is still served
        outcome = await delete_or_retire(conn, coll, item_id)
        await refresh_after_edit(conn, coll.layer, [item_id], rated, rerate.config())
        if outcome == "deleted":
            return Response(status_code=204)
        return JSONResponse({"id": item_id, "outcome": outcome})

    readers = [allow(*access.collection_readers(coll))]
    router.add_api_route(
        base,
        list_items,
        dependencies=readers,
        methods=["GET"],
        tags=[coll.name],
        summary=f"List {coll.name} as GeoJSON",
        response_model=collection_model(layer, feature),
        response_class=GeoJSONResponse,
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
            response_model=feature,
            response_class=GeoJSONResponse,
        )
    if not coll.writable:
        return
    writers = [allow(*access.collection_writers(coll))]
    router.add_api_route(
        base,
        create,
        dependencies=writers,
        methods=["POST"],
        tags=[coll.name],
        status_code=201,
        summary=f"Create {coll.name} (all or nothing)",
        response_model=Created,
        response_class=JSONResponse,
        responses=error_responses(409),
    )
    router.add_api_route(
        base + "/{item_id}",
        patch_item,
        dependencies=writers,
        methods=["PATCH"],
        tags=[coll.name],
        summary=f"Edit one {coll.noun} (RFC 7396 merge patch; If-Match required)",
        response_model=EditOutcome,
        response_class=JSONResponse,
        responses={409: _error("a unique key taken by another row"), **EDIT_RESPONSES},
        openapi_extra=_patch_docs(coll),
    )
    router.add_api_route(
        base + "/{item_id}",
        delete_item,
        dependencies=writers,
        methods=["DELETE"],
        tags=[coll.name],
        summary=f"Delete one {coll.noun}: 204, or retired (200) when history names it; "
        "409 naming live dependents",
        response_model=DeleteOutcome,
        response_class=JSONResponse,
        responses={
            204: {"description": "deleted"},
            409: _error("live objects still need it; `dependents` names them"),
            **EDIT_RESPONSES,
        },
    )


async def _read_merge_patch(request: Request) -> Any:
    """The body of a PATCH: ``application/merge-patch+json`` (RFC 7396) — plain JSON is
    accepted too, since the merge rules are the only ones a PATCH here has."""
    kind = request.headers.get("content-type", "").split(";")[0].strip().lower()
    if kind not in (MERGE_PATCH, "application/json", ""):
        raise BadRequest(
            f"Content-Type: {kind} is not {MERGE_PATCH}",
            [FieldError("Content-Type", f"expected {MERGE_PATCH}")],
        )
    return await read_json(request, _settings(request).server.max_body_bytes, check_text=False)


def _patch_docs(coll: Collection) -> dict[str, Any]:
    """The request body of a PATCH in the OpenAPI document."""
    mapped = coll.writing.model.geometry is not None
    example: dict[str, Any] = {"properties": {"name": "…"}} if mapped else {"carrier": "…"}
    return {
        "requestBody": {
            "required": True,
            "content": {
                MERGE_PATCH: {
                    "schema": {"type": "object"},
                    "example": example,
                }
            },
            "description": "RFC 7396 merge patch of the item as POST would send it (a Feature"
            " for mapped layers: properties and geometry); null removes a property",
        }
    }


def router_for(catalog: Catalog) -> APIRouter:
    """The collection routes of a catalogue (built per app, so a catalogue with one more
    layer serves one more collection)."""
    router = APIRouter()
    for coll in catalog.collections.values():
        _add_routes(router, coll, catalog.layers[coll.layer])
    return router
