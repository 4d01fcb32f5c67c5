"""Tanker fixes in (``POST /api/positions``) and tracks out (``GET /api/vehicles/{id}/track``).

The handler hands the body to the shared ingest route (``geo_api/ingest.py``) with the tanker
kind (``layers.transport.ingest``), which re-rates the carriers that got a new illegal-parking
alert (their dynamic colour rises).
"""

from __future__ import annotations

import datetime as dt
from typing import Annotated, Any

from fastapi import APIRouter, Path, Query, Request
from fastapi.responses import JSONResponse

from geo_api.auth import TRANSPORT, CurrentCaller, allow
from geo_api.body import DAY_MAX, DAY_MIN, batch_body_doc
from geo_api.db import DbConn
from geo_api.errors import BadRequest, FieldError, NotFound
from geo_api.ingest import ingest_request
from geo_api.models.base import GeoJSONResponse
from geo_api.models.transport import IngestResult, Track
from geo_api.scope import check_ingest_scope, check_object
from geo_api.settings import Settings
from layers.access.roles import FIX_WRITERS
from layers.transport.ingest import TankerFixes
from layers.transport.parse import Rows
from layers.transport.track import MAX_WINDOW, track

router = APIRouter(tags=["tankers"])

_BODY_DOC = batch_body_doc("Fixes `{vehicle_id, ts, lon, lat, speed_kmh, heading?, alarm_bits?}`")


#: GPS platforms and terminal gateways push with an ``ingest`` key (or an administrator's);
#: people never post fixes.
@router.post(
    "/api/positions",
    response_model=IngestResult,
    openapi_extra=_BODY_DOC,
    dependencies=[allow(*FIX_WRITERS)],
)
async def post_positions(request: Request, conn: DbConn, caller: CurrentCaller) -> JSONResponse:
    """Store a batch of fixes; answers `{accepted, duplicates, rejected: [{index, error}]}`.

    Idempotent on (vehicle_id, ts); noisy fixes and unknown vehicles are per-row rejections.
    The answer comes after the commit: an accepted fix is durable. An ingest key bound to
    districts or carriers sends fixes of their vehicles only (403 naming the first other row).
    """
    settings: Settings = request.app.state.settings
    kind = TankerFixes(settings.tanker.rules())

    async def in_scope(rows: Rows) -> None:
        ids, index = rows.vehicle_id.tolist(), rows.index.tolist()
        await check_ingest_scope(conn, caller, kind.key, kind.noun, ids, index)

    return await ingest_request(request, conn, kind, settings.tanker.max_batch, in_scope)


def _time(value: str | None, name: str) -> dt.datetime | None:
    if value is None:
        return None
    try:
        t = dt.datetime.fromisoformat(value)
    except ValueError:
        raise BadRequest(
            f"{name}: not an ISO 8601 date-time", [FieldError(name, "not ISO 8601")]
        ) from None
    if not DAY_MIN <= t.date() <= DAY_MAX:  # a day either side must still be a datetime
        reason = f"must be between {DAY_MIN} and {DAY_MAX}"
        raise BadRequest(f"{name}: {reason}", [FieldError(name, reason)])
    return t if t.tzinfo else t.replace(tzinfo=dt.UTC)


@router.get(
    "/api/vehicles/{vehicle_id}/track",
    response_model=Track,
    response_class=GeoJSONResponse,
    dependencies=[allow(*TRANSPORT)],
)
async def get_track(
    conn: DbConn,
    caller: CurrentCaller,
    vehicle_id: Annotated[int, Path(ge=1, le=2**31 - 1)],
    start: Annotated[
        str | None, Query(alias="from", description="ISO 8601; default to − 24 h")
    ] = None,
    end: Annotated[str | None, Query(alias="to", description="ISO 8601; default now")] = None,
) -> JSONResponse:
    """GeoJSON FeatureCollection: one LineString (``properties.times`` parallel to its vertices,
    ISO 8601 UTC, and ``speeds_kmh``) plus one Point per stop in the window."""
    t1 = _time(end, "to") or dt.datetime.now(dt.UTC)
    t0 = _time(start, "from") or t1 - dt.timedelta(days=1)
    if t1 < t0 or t1 - t0 > MAX_WINDOW:
        msg = f"from/to: the window must be ordered and at most {MAX_WINDOW.days} days"
        raise BadRequest(msg, [FieldError("from", msg)])
    # Officers follow tankers across district lines (layers/access/roles.py): any vehicle's track.
    if caller.role not in ("admin", "officer"):
        await check_object(conn, caller, "vehicle", vehicle_id)
    cur = await conn.execute("SELECT 1 FROM vehicles WHERE id = %s", (vehicle_id,))
    if await cur.fetchone() is None:
        raise NotFound(f"vehicle {vehicle_id} not found", [FieldError("vehicle_id", "unknown")])
    body: dict[str, Any] = await track(conn, vehicle_id, t0, t1)
    return JSONResponse(body, media_type="application/geo+json")
