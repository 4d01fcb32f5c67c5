"""Monitoring readings in (``POST /api/readings``).

The handler hands the body to the shared ingest route (``geo_api/ingest.py``) with the readings
kind (``layers.monitoring.ingest``), which re-rates the enterprises whose points changed colour
or alarm (their dynamic colour follows).
"""

from __future__ import annotations

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse

from geo_api.auth import CurrentCaller, allow
from geo_api.body import batch_body_doc
from geo_api.db import DbConn
from geo_api.errors import FieldError, Forbidden
from geo_api.ingest import ingest_request
from geo_api.models.transport import IngestResult
from geo_api.scope import check_ingest_scope
from geo_api.settings import Settings
from layers.access.roles import READING_WRITERS
from layers.monitoring.ingest import SensorReadings
from layers.monitoring.parse import Rows

router = APIRouter(tags=["monitoring"])

_BODY_DOC = batch_body_doc("Readings `{point_id, ts, value}`")


async def _own_points_only(conn: DbConn, enterprise_id: int | None, point_ids: list[int]) -> None:
    """An enterprise's gateway sends its own points' readings, nobody else's (403, whole batch:
    nothing of it is stored)."""
    cur = await conn.execute(
        "SELECT min(p.id) FROM unnest(%s::int[]) p(id) WHERE NOT EXISTS (SELECT 1 FROM"
        " monitoring_points mp JOIN hazard_sources h ON h.id = mp.hazard_source_id"
        " WHERE mp.id = p.id AND h.enterprise_id = %s)",
        (sorted(set(point_ids)), enterprise_id),
    )
    row = await cur.fetchone()
    if row and row[0] is not None:
        reason = f"point {row[0]} is not a monitoring point of enterprise {enterprise_id}"
        raise Forbidden(f"point_id: {reason}", [FieldError("point_id", reason)])


@router.post(
    "/api/readings",
    response_model=IngestResult,
    openapi_extra=_BODY_DOC,
    dependencies=[allow(*READING_WRITERS)],
)
async def post_readings(request: Request, conn: DbConn, caller: CurrentCaller) -> JSONResponse:
    """Store a batch of readings; answers `{accepted, duplicates, rejected: [{index, error}]}`.

    Idempotent on (point_id, ts); unknown points and non-numeric values are per-row
    rejections. The answer comes after the commit and the re-rating of affected enterprises.
    An enterprise key may send readings of its own points only; an ingest key bound to
    districts, of points in them (403 naming the first other row).
    """
    settings: Settings = request.app.state.settings
    kind = SensorReadings(settings.monitoring.rules())

    async def own_points_only(rows: Rows) -> None:
        await _own_points_only(conn, caller.enterprise_id, rows.point_id.tolist())

    async def in_scope(rows: Rows) -> None:
        ids, index = rows.point_id.tolist(), rows.index.tolist()
        await check_ingest_scope(conn, caller, kind.key, kind.noun, ids, index)

    check = own_points_only if caller.role == "enterprise" else in_scope
    return await ingest_request(request, conn, kind, settings.monitoring.max_batch, check)
