"""Alerts for transport officers: list, one, acknowledge, dispose (docs/architecture.md §4).

``GET /api/alerts`` answers GeoJSON (a FeatureCollection of alert points, ``numberMatched``)
by default, or plain JSON ``{"alerts": [properties…], "numberMatched"}`` with ``f=json``.
"""

from __future__ import annotations

import datetime as dt
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Path, Query, Request
from fastapi.responses import JSONResponse
from pydantic import BaseModel, Field

from geo_api.auth import TRANSPORT, CurrentCaller, allow
from geo_api.body import Text
from geo_api.db import DbConn
from geo_api.errors import error_responses
from geo_api.models.alerts import AlertCollection, AlertFeature, AlertList
from geo_api.models.base import GeoJSONResponse, json_variant
from geo_api.rerate import Rerate
from geo_api.scope import check_object, district_filter
from layers.access import roles as access
from layers.alerts import lifecycle
from layers.core.vocab import ALERT_RULES, ALERT_STATUSES, DEPARTMENTS, ILLEGAL_PARKING_RULES

router = APIRouter(tags=["alerts"])
AlertId = Annotated[int, Path(ge=1, le=2**63 - 1)]
Status = Literal[ALERT_STATUSES]  # type: ignore[valid-type]
Rule = Literal[ALERT_RULES]  # type: ignore[valid-type]
Department = Literal[DEPARTMENTS]  # type: ignore[valid-type]


class Disposal(BaseModel):
    outcome: Literal["disposed", "false_alarm"]
    note: Text | None = Field(default=None, max_length=4000)


@router.get(
    "/api/alerts",
    response_model=AlertCollection,
    response_class=GeoJSONResponse,
    openapi_extra=json_variant(AlertList),  # f=json
    dependencies=[allow(*TRANSPORT, access.ENTERPRISE)],
)
async def list_alerts(
    request: Request,
    conn: DbConn,
    caller: CurrentCaller,
    status: Status | None = None,
    rule: Rule | None = None,
    district: Annotated[Text | None, Query(max_length=64)] = None,
    vehicle_id: Annotated[int | None, Query(ge=1, le=2**31 - 1)] = None,
    since: Annotated[
        dt.datetime | None, Query(description="changed at or after (ISO 8601)")
    ] = None,
    active: Annotated[bool | None, Query(description="episode still going on")] = None,
    department: Annotated[
        Department | None, Query(description="the queue of one department (alert routing)")
    ] = None,
    limit: Annotated[int | None, Query(ge=1)] = None,
    offset: Annotated[int, Query(ge=0, le=2**31 - 1)] = 0,
    f: Annotated[Literal["geojson", "json"], Query(description="output format")] = "geojson",
) -> JSONResponse:
    """Alerts, newest first (overdue ones are escalated by geo_api/escalation.py, not here).
    A carrier enterprise's key lists the alerts routed to it, and only those."""
    server = request.app.state.settings.server
    size = min(limit or server.default_page_size, server.max_page_size)
    if since is not None and since.tzinfo is None:
        since = since.replace(tzinfo=dt.UTC)
    districts = district_filter(caller, [district] if district else None)
    carrier = caller.enterprise_id if caller.role == access.ENTERPRISE else None
    q = lifecycle.AlertQuery(
        status, rule, districts, vehicle_id, since, active, size, offset, department, carrier
    )
    features, matched = await lifecycle.list_alerts(conn, q)
    if f == "json":
        body: dict[str, Any] = {
            "alerts": [x["properties"] for x in features],
            "numberMatched": matched,
        }
        return JSONResponse(body)
    body = {
        "type": "FeatureCollection",
        "numberMatched": matched,
        "numberReturned": len(features),
        "features": features,
    }
    return JSONResponse(body, media_type="application/geo+json")


@router.get(
    "/api/alerts/{alert_id}",
    response_model=AlertFeature,
    response_class=GeoJSONResponse,
    dependencies=[allow(*TRANSPORT, access.ENTERPRISE)],
)
async def get_alert(conn: DbConn, caller: CurrentCaller, alert_id: AlertId) -> JSONResponse:
    """One alert as a GeoJSON Feature."""
    await check_object(conn, caller, "alert", alert_id)
    feature = await lifecycle.get_alert(conn, alert_id)  # AlertNotFound: a 404
    return JSONResponse(feature, media_type="application/geo+json")


@router.post(
    "/api/alerts/{alert_id}/ack",
    response_model=AlertFeature,
    response_class=GeoJSONResponse,
    responses=error_responses(409),
    dependencies=[allow(*TRANSPORT)],
)
async def ack_alert(conn: DbConn, alert_id: AlertId, caller: CurrentCaller) -> JSONResponse:
    """new → acknowledged (409 naming the state otherwise)."""
    await check_object(conn, caller, "alert", alert_id)
    feature = await lifecycle.acknowledge(conn, alert_id, caller.name)  # TransitionRefused: 409
    return JSONResponse(feature, media_type="application/geo+json")


@router.post(
    "/api/alerts/{alert_id}/dispose",
    response_model=AlertFeature,
    response_class=GeoJSONResponse,
    responses=error_responses(409),
    dependencies=[allow(*TRANSPORT)],
)
async def dispose_alert(
    conn: DbConn, alert_id: AlertId, body: Disposal, caller: CurrentCaller, rerate: Rerate
) -> JSONResponse:
    """acknowledged → disposed | false_alarm, with a note (409 naming the state otherwise)."""
    await check_object(conn, caller, "alert", alert_id)
    feature = await lifecycle.dispose(conn, alert_id, caller.name, body.outcome, body.note)
    props = feature["properties"]
    if body.outcome == "false_alarm" and props["rule"] in ILLEGAL_PARKING_RULES:
        # A false alarm no longer counts against the carrier's dynamic colour.
        await conn.commit()
        if props.get("enterprise_id"):
            await rerate(conn, [int(props["enterprise_id"])])
    return JSONResponse(feature, media_type="application/geo+json")
