"""Monitoring alarms: ``GET /api/alarms`` (GeoJSON) and the operator's ack / dispose steps."""

from __future__ import annotations

import datetime as dt
from typing import Annotated, Any

from fastapi import APIRouter, Path, Query, Request
from fastapi.responses import JSONResponse

from geo_api.auth import SITE_READERS, CurrentCaller, allow
from geo_api.body import Text
from geo_api.db import DbConn
from geo_api.errors import BadRequest, FieldError, NotFound, error_responses
from geo_api.models.base import GeoJSONResponse
from geo_api.models.monitoring import AlarmCollection, AlarmFeature
from geo_api.rerate import Rerate
from geo_api.scope import check_object, district_filter, enterprise_filter
from geo_api.settings import Settings
from layers.monitoring.alarms import (
    STATUSES,
    AlarmFilter,
    advance,
    list_alarms,
)

router = APIRouter(tags=["monitoring"])


def _since(value: str | None) -> dt.datetime | None:
    if value is None:
        return None
    try:
        t = dt.datetime.fromisoformat(value)
    except ValueError:
        raise BadRequest(
            "since: not an ISO 8601 date-time", [FieldError("since", "not ISO 8601")]
        ) from None
    return t if t.tzinfo else t.replace(tzinfo=dt.UTC)


@router.get(
    "/api/alarms",
    response_model=AlarmCollection,
    response_class=GeoJSONResponse,
    dependencies=[allow(*SITE_READERS)],
)
async def get_alarms(
    request: Request,
    conn: DbConn,
    caller: CurrentCaller,
    status: Annotated[str | None, Query(description="open|acknowledged|disposed|cleared")] = None,
    level: Annotated[int | None, Query(ge=1, le=2)] = None,
    enterprise_id: Annotated[int | None, Query(ge=1, le=2**31 - 1)] = None,
    district: Annotated[Text | None, Query(max_length=64)] = None,
    since: Annotated[str | None, Query(description="raised at or after (ISO 8601)")] = None,
    limit: Annotated[int | None, Query(ge=1)] = None,
) -> JSONResponse:
    """GeoJSON FeatureCollection of alarms at their points' positions, newest first."""
    if status is not None and status not in STATUSES:
        msg = f"status: one of {', '.join(STATUSES)}"
        raise BadRequest(msg, [FieldError("status", msg)])
    settings: Settings = request.app.state.settings
    size = min(limit or settings.server.default_page_size, settings.server.max_page_size)
    districts = district_filter(caller, [district] if district else None)
    enterprise = enterprise_filter(caller, enterprise_id)
    f = AlarmFilter(status, level, enterprise, districts, _since(since), size)
    return JSONResponse(await list_alarms(conn, f), media_type="application/geo+json")


async def _step(
    request: Request, conn: DbConn, rerate: Rerate, alarm_id: int, step: str
) -> JSONResponse:
    settings: Settings = request.app.state.settings
    await check_object(conn, request.state.caller, "alarm", alarm_id)
    # A dispose before the acknowledgement raises TransitionRefused: a 409.
    alarm, enterprises = await advance(conn, alarm_id, step, settings.monitoring.flat_line_n)
    if alarm is None:
        raise NotFound(f"alarm {alarm_id} not found", [FieldError("alarm_id", "unknown")])
    if enterprises:
        await rerate(conn, enterprises)
    body: dict[str, Any] = alarm
    return JSONResponse(body, media_type="application/geo+json")


@router.post(
    "/api/alarms/{alarm_id}/ack",
    response_model=AlarmFeature,
    response_class=GeoJSONResponse,
    responses=error_responses(409),
    dependencies=[allow(*SITE_READERS)],
)
async def ack_alarm(
    request: Request,
    conn: DbConn,
    rerate: Rerate,
    alarm_id: Annotated[int, Path(ge=1, le=2**63 - 1)],
) -> JSONResponse:
    """Acknowledge (idempotent: a second ack keeps the first time)."""
    return await _step(request, conn, rerate, alarm_id, "ack")


@router.post(
    "/api/alarms/{alarm_id}/dispose",
    response_model=AlarmFeature,
    response_class=GeoJSONResponse,
    responses=error_responses(409),
    dependencies=[allow(*SITE_READERS)],
)
async def dispose_alarm(
    request: Request,
    conn: DbConn,
    rerate: Rerate,
    alarm_id: Annotated[int, Path(ge=1, le=2**63 - 1)],
) -> JSONResponse:
    """Record disposal; 409 before acknowledgement."""
    return await _step(request, conn, rerate, alarm_id, "dispose")
