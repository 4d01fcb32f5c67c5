"""The daily bulletin over HTTP: issue, read (JSON, CSV, PDF), record actions, history; and
its inputs, administrative penalties and accidents (layers/prevention/bulletin.py,
sanctions.py).

A district regulator sees the city's bulletin cut to its districts and records actions only
for entries in them; an enterprise sees its own bulletin history, penalties and accidents.
"""

from __future__ import annotations

import csv
import datetime as dt
import io
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Path, Query, Request, Response
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import JSONResponse
from pydantic import BaseModel, ConfigDict, Field, StringConstraints

from geo_api.auth import SITE_READERS, STAFF, Caller, CurrentCaller, allow
from geo_api.body import Day, read_model
from geo_api.bulletin_task import bulletin_rules
from geo_api.db import DbConn, actor_name
from geo_api.models.bulletins import (
    Accident,
    AccidentList,
    Bulletin,
    BulletinAction,
    BulletinHistory,
    BulletinList,
    Penalty,
    PenaltyList,
)
from geo_api.scope import VisibleEnterprise, district_filter
from layers.core import vocab
from layers.core.errors import FieldError, Forbidden, InvalidField, NotFound
from layers.prevention import bulletin as bl
from layers.prevention import sanctions
from layers.prevention.bulletin_pdf import render_bulletin
from layers.risk.fonts import CjkFontMissing, cjk_font_file

router = APIRouter(tags=["reports"])
Staff = [allow(*STAFF)]
Site = [allow(*SITE_READERS)]
Number = Annotated[str, Path(pattern=r"^[0-9]{4}-[0-9]{3}$", description="YYYY-DDD")]
ActionKind = Literal[vocab.BULLETIN_ACTIONS]  # type: ignore[valid-type]
Note = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=2000)]


def _rules(request: Request) -> bl.BulletinRules:
    return bulletin_rules(request.app.state.settings)


def _actor(caller: Caller) -> str:
    return actor_name(caller.name, caller.role, caller.key_id)


class IssueInput(BaseModel):
    model_config = ConfigDict(extra="forbid")
    date: Day | None = None


class ActionInput(BaseModel):
    model_config = ConfigDict(extra="forbid")
    enterprise_id: Annotated[int, Field(ge=1, le=2**31 - 1)]
    kind: ActionKind
    taken_on: Day
    note: Note


# -- the bulletin ------------------------------------------------------------------------------
@router.post(
    "/api/bulletins",
    status_code=201,
    response_model=Bulletin,
    responses={200: {"model": Bulletin, "description": "already issued: the bulletin as it is"}},
    dependencies=[allow("admin")],
)
async def issue_bulletin(request: Request, conn: DbConn, caller: CurrentCaller) -> JSONResponse:
    """Issue the bulletin of ``date`` (default today, UTC); issuing a day again answers the
    bulletin already issued (200), never a second one."""
    body = await read_model(request, IssueInput)
    day = body.date or dt.datetime.now(dt.UTC).date()
    if day > dt.datetime.now(dt.UTC).date() + dt.timedelta(days=1):
        raise InvalidField("date", "a bulletin cannot be issued for a future day")
    issued, created = await bl.issue(conn, day, _rules(request), _actor(caller))
    return JSONResponse(issued, status_code=201 if created else 200)


@router.get("/api/bulletins", response_model=BulletinList, dependencies=Staff)
async def list_bulletins(
    conn: DbConn,
    caller: CurrentCaller,
    since: Annotated[Day | None, Query(alias="from")] = None,
    until: Annotated[Day | None, Query(alias="to")] = None,
    limit: Annotated[int, Query(ge=1, le=1000)] = 60,
) -> dict[str, Any]:
    """Issued bulletins, newest first, with counts of entries and actions."""
    districts = district_filter(caller, None)
    return {"items": await bl.bulletins(conn, since, until, districts, limit)}


async def _bulletin(request: Request, conn: Any, caller: Caller, number: str) -> dict[str, Any]:
    return await bl.load(conn, number, district_filter(caller, None), _rules(request))


@router.get(
    "/api/bulletins/{number}.csv",
    dependencies=Staff,
    responses={200: {"content": {"text/csv": {"schema": {"type": "string"}}}}},
    response_class=Response,
)
async def bulletin_csv(
    number: Number, request: Request, conn: DbConn, caller: CurrentCaller
) -> Response:
    issued = await _bulletin(request, conn, caller, number)
    buffer = io.StringIO()
    csv.writer(buffer).writerows(bl.csv_rows(issued))
    return Response(
        buffer.getvalue(),
        media_type="text/csv; charset=utf-8",
        headers={"Content-Disposition": f'attachment; filename="bulletin-{number}.csv"'},
    )


@router.get(
    "/api/bulletins/{number}.pdf",
    dependencies=Staff,
    responses={
        200: {"content": {"application/pdf": {"schema": {"type": "string", "format": "binary"}}}}
    },
    response_class=Response,
)
async def bulletin_pdf(
    number: Number, request: Request, conn: DbConn, caller: CurrentCaller
) -> Response:
    issued = await _bulletin(request, conn, caller, number)
    try:
        font = cjk_font_file()
    except CjkFontMissing as exc:
        reason = f"{exc.package} is not installed"
        return JSONResponse(
            {"detail": str(exc), "errors": [{"field": "font", "reason": reason}]},
            status_code=503,
        )
    body = await run_in_threadpool(render_bulletin, issued, font)
    return Response(
        body,
        media_type="application/pdf",
        headers={"Content-Disposition": f'inline; filename="bulletin-{number}.pdf"'},
    )


@router.get("/api/bulletins/{number}", response_model=Bulletin, dependencies=Staff)
async def get_bulletin(
    number: Number, request: Request, conn: DbConn, caller: CurrentCaller
) -> dict[str, Any]:
    """The bulletin as issued (entries in rank order, each with the actions taken since)."""
    return await _bulletin(request, conn, caller, number)


@router.post(
    "/api/bulletins/{number}/actions",
    status_code=201,
    response_model=BulletinAction,
    dependencies=Staff,
)
async def record_action(
    number: Number, request: Request, conn: DbConn, caller: CurrentCaller
) -> dict[str, Any]:
    """Record what was done about an entry: interview, inspection, enforcement or other."""
    action = await read_model(request, ActionInput)
    own = district_filter(caller, None)
    if own is not None:
        cur = await conn.execute(
            "SELECT district FROM enterprises WHERE id = %s", (action.enterprise_id,)
        )
        row = await cur.fetchone()
        if row is None:
            raise NotFound(
                f"enterprise {action.enterprise_id} not found",
                [FieldError("enterprise_id", "not found")],
            )
        if row[0] not in own:
            raise Forbidden(
                "the enterprise is outside this key's districts",
                [FieldError("enterprise_id", "outside this key's districts")],
            )
    return await bl.record_action(
        conn,
        number,
        action.enterprise_id,
        action.kind,
        action.taken_on,
        action.note,
        _actor(caller),
    )


@router.get(
    "/api/enterprises/{enterprise_id}/bulletins",
    response_model=BulletinHistory,
    dependencies=Site,
)
async def enterprise_bulletins(
    enterprise_id: VisibleEnterprise,
    conn: DbConn,
    limit: Annotated[int, Query(ge=1, le=1000)] = 100,
) -> dict[str, Any]:
    """Every bulletin the enterprise was on, newest first: list, reasons, actions."""
    return {
        "enterprise_id": enterprise_id,
        "items": await bl.enterprise_history(conn, enterprise_id, limit),
    }


# -- inputs: penalties and accidents ----------------------------------------------------------
@router.get(
    "/api/enterprises/{enterprise_id}/penalties", response_model=PenaltyList, dependencies=Site
)
async def get_penalties(enterprise_id: VisibleEnterprise, conn: DbConn) -> dict[str, Any]:
    return {"items": await sanctions.penalties_of(conn, enterprise_id)}


@router.post(
    "/api/enterprises/{enterprise_id}/penalties",
    status_code=201,
    response_model=Penalty,
    dependencies=Staff,
)
async def add_penalty(
    enterprise_id: VisibleEnterprise, request: Request, conn: DbConn
) -> dict[str, Any]:
    """An administrative penalty decided against the enterprise (S4 on the watch list)."""
    penalty = await read_model(request, sanctions.PenaltyInput)
    return await sanctions.add_penalty(conn, enterprise_id, penalty)


@router.get(
    "/api/enterprises/{enterprise_id}/accidents", response_model=AccidentList, dependencies=Site
)
async def get_accidents(enterprise_id: VisibleEnterprise, conn: DbConn) -> dict[str, Any]:
    return {"items": await sanctions.accidents_of(conn, enterprise_id)}


@router.post(
    "/api/enterprises/{enterprise_id}/accidents",
    status_code=201,
    response_model=Accident,
    dependencies=Staff,
)
async def add_accident(
    enterprise_id: VisibleEnterprise, request: Request, conn: DbConn
) -> dict[str, Any]:
    """A production safety accident at the enterprise (K6 on the watch list)."""
    accident = await read_model(request, sanctions.AccidentInput)
    return await sanctions.add_accident(conn, enterprise_id, accident)
