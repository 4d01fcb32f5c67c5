"""Direct-red findings over HTTP (MEM 2018 guide; layers/risk/findings.py).

An enterprise reads its own findings; a regulator of its district (or an admin) records and
closes them. Each write is audited (triggers of migration 0014), announced on the change bus
and re-rates the enterprise at once: an open finding makes it red with that reason first.
"""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Path, Request

from geo_api.auth import SITE_READERS, STAFF, CurrentCaller, allow
from geo_api.body import read_model
from geo_api.db import DbConn
from geo_api.errors import FieldError, NotFound
from geo_api.models.supervision import Finding, FindingList
from geo_api.rerate import Rerate
from geo_api.routes.hidden_dangers import who_acted
from geo_api.scope import VisibleEnterprise
from layers.core.changes import notify_change
from layers.risk.findings import (
    FindingClose,
    FindingInput,
    close_finding,
    insert_finding,
    list_findings,
)

router = APIRouter(tags=["supervision"])
Id = Annotated[int, Path(ge=1, le=2**31 - 1)]
PATH = "/api/enterprises/{enterprise_id}/findings"


@router.get(PATH, response_model=FindingList, dependencies=[allow(*SITE_READERS)])
async def get_findings(enterprise_id: VisibleEnterprise, conn: DbConn) -> dict[str, Any]:
    items = await list_findings(conn, enterprise_id)
    return {"items": items, "numberMatched": len(items)}


@router.post(PATH, status_code=201, response_model=Finding, dependencies=[allow(*STAFF)])
async def create_finding(
    enterprise_id: VisibleEnterprise,
    request: Request,
    conn: DbConn,
    caller: CurrentCaller,
    rerate: Rerate,
) -> dict[str, Any]:
    """Record a direct-red circumstance with its evidence: the enterprise turns red."""
    finding = await read_model(request, FindingInput)
    row = await insert_finding(conn, enterprise_id, finding, who_acted(caller))
    await notify_change(conn, "enterprise_findings", "enterprises", [enterprise_id])
    await rerate(conn, [enterprise_id])
    return row


@router.post(PATH + "/{finding_id}/close", response_model=Finding, dependencies=[allow(*STAFF)])
async def close(
    enterprise_id: VisibleEnterprise,
    finding_id: Id,
    request: Request,
    conn: DbConn,
    caller: CurrentCaller,
    rerate: Rerate,
) -> dict[str, Any]:
    """Close an open finding with the reason; the colour goes back to the other inputs."""
    body = await read_model(request, FindingClose)
    row = await close_finding(conn, enterprise_id, finding_id, body, who_acted(caller))
    if row is None:
        raise NotFound(
            f"enterprise {enterprise_id} has no finding {finding_id}",
            [FieldError("finding_id", "not found")],
        )
    await notify_change(conn, "enterprise_findings", "enterprises", [enterprise_id])
    await rerate(conn, [enterprise_id])
    return row
