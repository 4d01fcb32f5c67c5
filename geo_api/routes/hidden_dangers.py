"""Dual prevention registers over HTTP: hidden dangers, inspection tasks, the three rates and
the effectiveness ranking.

Every hidden-danger change re-rates its enterprise at once: an open major danger raises the
dynamic colour (layers/risk/enterprise.py), so the map must follow the register, not lag it.
A major danger is reported rectified by the enterprise and closed only by a regulator's
acceptance (layers/prevention/major_dangers.py). Rate definitions live in
layers/prevention/dual.py, the ranking in layers/prevention/ranking.py.
"""

from __future__ import annotations

import datetime as dt
from typing import Annotated, Any

from fastapi import APIRouter, Path, Query, Request
from psycopg import AsyncConnection

from geo_api.auth import SITE_READERS, STAFF, Caller, CurrentCaller, allow
from geo_api.body import Day, Text, read_model
from geo_api.db import DbConn
from geo_api.errors import FieldError, NotFound, error_responses
from geo_api.models.prevention import (
    DistrictPrevention,
    EnterprisePrevention,
    HiddenDanger,
    HiddenDangerList,
)
from geo_api.models.supervision import InspectionTask, InspectionTaskList, Ranking
from geo_api.rerate import Rerate
from geo_api.scope import VisibleEnterprise, check_object, district_filter
from layers.access.roles import ENTERPRISE
from layers.core.changes import notify_change
from layers.prevention.dual import (
    HiddenDangerInput,
    HiddenDangerPatch,
    InspectionTaskInput,
    TaskDone,
    district_rates,
    enterprise_rates,
    insert_danger,
    insert_task,
    list_dangers,
    list_tasks,
    mark_task_done,
    update_danger,
)
from layers.prevention.major_dangers import (
    Acceptance,
    RectificationReport,
    Rejection,
    accept_rectification,
    reject_rectification,
    report_rectified,
)
from layers.prevention.ranking import ranking

router = APIRouter(tags=["dual prevention"])
Conn = DbConn
Site = [allow(*SITE_READERS)]  # enterprises keep their own registers
Staff = [allow(*STAFF)]  # regulators set inspection tasks
Id = Annotated[int, Path(ge=1, le=2**31 - 1)]
DistrictCode = Annotated[Text, Path(min_length=1, max_length=64)]
AsOf = Annotated[Day | None, Query(alias="date", description="as-of date; default today")]


def _today(as_of: dt.date | None) -> dt.date:
    return as_of or dt.datetime.now(dt.UTC).date()


# -- hidden dangers ----------------------------------------------------------------------------
@router.get(
    "/api/enterprises/{enterprise_id}/hidden-dangers",
    response_model=HiddenDangerList,
    dependencies=Site,
)
async def get_dangers(enterprise_id: VisibleEnterprise, conn: Conn) -> dict[str, Any]:
    items = await list_dangers(conn, enterprise_id)
    return {"items": items, "numberMatched": len(items)}


@router.post(
    "/api/enterprises/{enterprise_id}/hidden-dangers",
    status_code=201,
    response_model=HiddenDanger,
    dependencies=Site,
)
async def create_danger(
    enterprise_id: VisibleEnterprise, request: Request, conn: Conn, rerate: Rerate
) -> dict[str, Any]:
    danger = await read_model(request, HiddenDangerInput)
    row = await insert_danger(conn, enterprise_id, danger)
    await rerate(conn, [enterprise_id])
    return row


@router.patch(
    "/api/hidden-dangers/{danger_id}",
    response_model=HiddenDanger,
    responses=error_responses(409),  # a transition the register refuses
    dependencies=Site,
)
async def patch_danger(
    danger_id: Id, request: Request, conn: Conn, caller: CurrentCaller, rerate: Rerate
) -> dict[str, Any]:
    await check_object(conn, caller, "hidden danger", danger_id)
    patch = await read_model(request, HiddenDangerPatch)
    # A skipped step, or closing a major danger without acceptance: TransitionRefused, 409.
    row = await update_danger(conn, danger_id, patch, may_downgrade=caller.role != ENTERPRISE)
    return await _after_danger_change(conn, danger_id, row, rerate)


async def _after_danger_change(
    conn: AsyncConnection[Any], danger_id: int, row: dict[str, Any] | None, rerate: Rerate
) -> dict[str, Any]:
    if row is None:
        raise NotFound(f"hidden danger {danger_id} not found", [FieldError("id", "not found")])
    await notify_change(conn, "hidden_dangers", "enterprises", [row["enterprise_id"]])
    await rerate(conn, [row["enterprise_id"]])
    return row


# -- closing a major hidden danger: the enterprise reports, a regulator decides ----------------
@router.post(
    "/api/hidden-dangers/{danger_id}/report",
    response_model=HiddenDanger,
    responses=error_responses(409),  # a step the register's state does not allow
    dependencies=Site,
)
async def report_danger_rectified(
    danger_id: Id, request: Request, conn: Conn, caller: CurrentCaller, rerate: Rerate
) -> dict[str, Any]:
    """A major danger reported rectified with evidence: still open (the colour stays raised)
    until a regulator accepts it."""
    await check_object(conn, caller, "hidden danger", danger_id)
    report = await read_model(request, RectificationReport)
    row = await report_rectified(conn, danger_id, report, who_acted(caller))
    return await _after_danger_change(conn, danger_id, row, rerate)


@router.post(
    "/api/hidden-dangers/{danger_id}/accept",
    response_model=HiddenDanger,
    responses=error_responses(409),  # a step the register's state does not allow
    dependencies=Staff,
)
async def accept_danger_rectification(
    danger_id: Id, request: Request, conn: Conn, caller: CurrentCaller, rerate: Rerate
) -> dict[str, Any]:
    """A regulator of the enterprise's district (or an admin) accepts: closed (销号)."""
    await check_object(conn, caller, "hidden danger", danger_id)
    acceptance = await read_model(request, Acceptance, optional=True)
    row = await accept_rectification(conn, danger_id, acceptance, who_acted(caller))
    return await _after_danger_change(conn, danger_id, row, rerate)


@router.post(
    "/api/hidden-dangers/{danger_id}/reject",
    response_model=HiddenDanger,
    responses=error_responses(409),  # a step the register's state does not allow
    dependencies=Staff,
)
async def reject_danger_rectification(
    danger_id: Id, request: Request, conn: Conn, caller: CurrentCaller, rerate: Rerate
) -> dict[str, Any]:
    """Back to rectifying, with the reason."""
    await check_object(conn, caller, "hidden danger", danger_id)
    rejection = await read_model(request, Rejection)
    row = await reject_rectification(conn, danger_id, rejection, who_acted(caller))
    return await _after_danger_change(conn, danger_id, row, rerate)


def who_acted(caller: Caller) -> str:
    """Who acted, as the registers record it: the caller's role and name."""
    return f"{caller.role}:{caller.name}"


# -- inspection tasks --------------------------------------------------------------------------
@router.get(
    "/api/enterprises/{enterprise_id}/inspection-tasks",
    response_model=InspectionTaskList,
    dependencies=Site,
)
async def get_tasks(enterprise_id: VisibleEnterprise, conn: Conn) -> dict[str, Any]:
    items = await list_tasks(conn, enterprise_id)
    return {"items": items, "numberMatched": len(items)}


@router.post(
    "/api/enterprises/{enterprise_id}/inspection-tasks",
    status_code=201,
    response_model=InspectionTask,
    dependencies=Staff,
)
async def create_task(
    enterprise_id: VisibleEnterprise, request: Request, conn: Conn
) -> dict[str, Any]:
    task = await read_model(request, InspectionTaskInput)
    return await insert_task(conn, enterprise_id, task)


@router.post(
    "/api/inspection-tasks/{task_id}/done", response_model=InspectionTask, dependencies=Site
)
async def task_done(
    task_id: Id, request: Request, conn: Conn, caller: CurrentCaller
) -> dict[str, Any]:
    """A one-off task done; for a recurring one the current round (or ``{"due_date"}``)."""
    await check_object(conn, caller, "inspection task", task_id)
    done = await read_model(request, TaskDone, optional=True)
    row = await mark_task_done(conn, task_id, _today(None), who_acted(caller), done)
    if row is None:
        raise NotFound(f"inspection task {task_id} not found", [FieldError("id", "not found")])
    return row


# -- rates -------------------------------------------------------------------------------------
@router.get(
    "/api/enterprises/{enterprise_id}/prevention",
    response_model=EnterprisePrevention,
    dependencies=Site,
)
async def enterprise_prevention(
    enterprise_id: VisibleEnterprise, conn: Conn, as_of: AsOf = None
) -> dict[str, Any]:
    day = _today(as_of)
    rates = (await enterprise_rates(conn, day, enterprise_ids=[enterprise_id])).get(enterprise_id)
    if rates is None:
        raise NotFound(f"enterprise {enterprise_id} not found", [FieldError("id", "not found")])
    return {"enterprise_id": enterprise_id, "date": day.isoformat(), **rates.as_dict()}


@router.get(
    "/api/districts/{code}/prevention", response_model=DistrictPrevention, dependencies=Staff
)
async def district_prevention(
    code: DistrictCode, conn: Conn, caller: CurrentCaller, as_of: AsOf = None
) -> dict[str, Any]:
    cur = await conn.execute("SELECT 1 FROM districts WHERE code = %s", (code,))
    if await cur.fetchone() is None:
        raise NotFound(f"district {code} not found", [FieldError("code", "not found")])
    district_filter(caller, [code])  # 403 for a district outside the regulator's
    day = _today(as_of)
    per_enterprise = await enterprise_rates(conn, day, district=code)
    return {
        "district": code,
        "date": day.isoformat(),
        "enterprises": len(per_enterprise),
        **district_rates(per_enterprise).as_dict(),
    }


@router.get("/api/prevention/ranking", response_model=Ranking, dependencies=Staff)
async def prevention_ranking(
    conn: Conn,
    caller: CurrentCaller,
    district: Annotated[list[Text] | None, Query(max_length=100)] = None,
    as_of: AsOf = None,
    limit: Annotated[int, Query(ge=1, le=5000)] = 100,
) -> dict[str, Any]:
    """Enterprises ranked by dual-prevention effectiveness (the mean of the three rates); a
    regulator sees its own districts only (403 naming ``district`` for another)."""
    districts = district_filter(caller, district)
    day = _today(as_of)
    matched, items = await ranking(conn, day, districts, limit)
    return {"date": day.isoformat(), "numberMatched": matched, "items": items}
