"""Monitoring readings in (``POST /api/readings``).

The handler only reads the body and calls ``layers.monitoring``; after the batch committed it
re-rates the enterprises whose points changed colour or alarm (their dynamic colour follows).
"""

from __future__ import annotations

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse

from geo_api.auth import CurrentCaller, allow
from geo_api.body import batch_body_doc, read_body
from geo_api.db import DbConn
from geo_api.errors import BadRequest, FieldError, Forbidden, PayloadTooLarge
from geo_api.settings import Settings
from layers.core.bodies import BodyError
from layers.monitoring.ingest import ingest
from layers.monitoring.parse import parse_body
from layers.risk.recompute import recompute

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


@router.post("/api/readings", openapi_extra=_BODY_DOC, dependencies=[allow("admin", "enterprise")])
async def post_readings(request: Request, conn: DbConn, caller: CurrentCaller) -> JSONResponse:
    """Store a batch of readings; answers `{accepted, duplicates, rejected: [{index, error}]}`.

    Idempotent on (point_id, ts); unknown points and non-numeric values are per-row
    rejections. The answer comes after the commit and the re-rating of affected enterprises.
    An enterprise key may send readings of its own points only.
    """
    settings: Settings = request.app.state.settings
    body = await read_body(request, settings.server.max_body_bytes)
    try:
        rows = parse_body(body, request.headers.get("content-type", "application/json"))
    except BodyError as exc:
        raise BadRequest(str(exc), [FieldError("body", str(exc))]) from None
    if rows.total > settings.monitoring.max_batch:
        msg = f"body: at most {settings.monitoring.max_batch} readings per request"
        raise PayloadTooLarge(msg, [FieldError("body", msg)])
    if caller.role == "enterprise":
        await _own_points_only(conn, caller.enterprise_id, rows.point_id.tolist())
    result = await ingest(conn, rows, settings.monitoring.rules())
    if result.enterprises:
        config = settings.risk.recompute_config(settings.db.data_dir)
        await recompute(conn, config, result.enterprises)
    return JSONResponse(
        {
            "accepted": result.accepted,
            "duplicates": result.duplicates,
            "rejected": result.rejected,
        }
    )
