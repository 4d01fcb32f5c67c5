"""Dual prevention registers over HTTP: hidden dangers, inspection tasks and the three rates.

Every hidden-danger change re-rates its enterprise at once: an open major danger raises the
dynamic colour (layers/risk/enterprise.py), so the map must follow the register, not lag it.
Rate definitions live in layers/prevention/dual.py.
"""

from __future__ import annotations

import datetime as dt
from typing import Annotated, Any, TypeVar

from fastapi import APIRouter, Path, Query, Request
from pydantic import BaseModel, ValidationError

from geo_api.auth import SITE_READERS, STAFF, CurrentCaller, allow
from geo_api.body import Day, Text, read_json
from geo_api.db import DbConn
from geo_api.errors import FieldError, InvalidInput, NotFound, error_responses, invalid_input
from geo_api.models.prevention import (
    DistrictPrevention,
    EnterprisePrevention,
    HiddenDanger,
    HiddenDangerList,
    InspectionTask,
    InspectionTaskList,
)
from geo_api.rerate import Rerate
from geo_api.scope import VisibleEnterprise, check_object, district_filter
from geo_api.settings import Settings
from layers.prevention.dual import (
    HiddenDangerInput,
    HiddenDangerPatch,
    InspectionTaskInput,
    district_rates,
    enterprise_rates,
    insert_danger,
    insert_task,
    list_dangers,
    list_tasks,
    mark_task_done,
    update_danger,
)

router = APIRouter(tags=["dual prevention"])
Conn = DbConn
Site = [allow(*SITE_READERS)]  # enterprises keep their own registers
Staff = [allow(*STAFF)]  # regulators set inspection tasks
Id = Annotated[int, Path(ge=1, le=2**31 - 1)]
DistrictCode = Annotated[Text, Path(min_length=1, max_length=64)]
AsOf = Annotated[Day | None, Query(alias="date", description="as-of date; default today")]

M = TypeVar("M", bound=BaseModel)


async def _parse(request: Request, model: type[M]) -> M:
    settings: Settings = request.app.state.settings
    body = await read_json(request, settings.server.max_body_bytes)
    if not isinstance(body, dict):
        raise InvalidInput("body: expected a JSON object", [FieldError("body", "not an object")])
    try:
        return model.model_validate(body)
    except ValidationError as exc:
        raise invalid_input(exc) from None


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
    danger = await _parse(request, HiddenDangerInput)
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
    patch = await _parse(request, HiddenDangerPatch)
    row = await update_danger(conn, danger_id, patch)  # a skipped step: TransitionRefused, 409
    if row is None:
        raise NotFound(f"hidden danger {danger_id} not found", [FieldError("id", "not found")])
    await rerate(conn, [row["enterprise_id"]])
    return row


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
    task = await _parse(request, InspectionTaskInput)
    return await insert_task(conn, enterprise_id, task)


@router.post(
    "/api/inspection-tasks/{task_id}/done", response_model=InspectionTask, dependencies=Site
)
async def task_done(task_id: Id, conn: Conn, caller: CurrentCaller) -> dict[str, Any]:
    await check_object(conn, caller, "inspection task", task_id)
    row = await mark_task_done(conn, task_id)
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
