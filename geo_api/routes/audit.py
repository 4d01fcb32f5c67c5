"""``GET /api/audit``: the audit log, for administrators (issue 8)."""

from __future__ import annotations

import datetime as dt
from typing import Annotated, Literal

from fastapi import APIRouter, Query
from fastapi.responses import JSONResponse

from geo_api.auth import allow
from geo_api.body import Text, json_response
from geo_api.db import DbConn
from geo_api.models.access import AuditLog
from layers.access.audit import ACTIONS, ENTITIES, AuditQuery, read_audit

router = APIRouter(tags=["audit"])
Entity = Literal[ENTITIES]  # type: ignore[valid-type]
Action = Literal[ACTIONS]  # type: ignore[valid-type]


@router.get("/api/audit", response_model=AuditLog, dependencies=[allow("admin")])
async def audit_log(
    conn: DbConn,
    entity: Entity | None = None,
    entity_id: Annotated[int | None, Query(ge=1, le=2**62)] = None,
    actor: Annotated[Text | None, Query(max_length=300)] = None,
    action: Action | None = None,
    since: dt.datetime | None = None,
    until: dt.datetime | None = None,
    limit: Annotated[int, Query(ge=1, le=1000)] = 100,
    offset: Annotated[int, Query(ge=0, le=10_000_000)] = 0,
) -> JSONResponse:
    """Who changed what and when, with the row before and after; newest first. Throttle
    lockouts are entries too (``action=lockout``, ``entity=credentials``)."""
    q = AuditQuery(entity, entity_id, actor, action, since, until, limit, offset)
    total, rows = await read_audit(conn, q)
    return json_response({"numberMatched": total, "numberReturned": len(rows), "entries": rows})
