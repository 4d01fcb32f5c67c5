"""Reports: the daily watch list as JSON or CSV (rules in layers/prevention/watch_list.py)."""

from __future__ import annotations

import csv
import datetime as dt
import io
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Query, Request, Response

from geo_api.auth import STAFF, Caller, CurrentCaller, allow
from geo_api.body import Day as ValidDay
from geo_api.bulletin_task import bulletin_rules
from geo_api.db import DbConn
from geo_api.models.prevention import WatchList
from geo_api.scope import district_filter
from layers.prevention.watch_list import DailyList, WatchRules, daily_list

router = APIRouter(tags=["reports"])
Day = Annotated[ValidDay | None, Query(alias="date", description="YYYY-MM-DD; default today")]
Format = Annotated[Literal["json", "csv"], Query(alias="format")]


def _rules(request: Request) -> WatchRules:
    """The bulletin's thresholds (the score threshold is the risk engine's, so the list and
    the colour agree): the report is the bulletin not yet issued."""
    return bulletin_rules(request.app.state.settings).watch


def _csv(report: DailyList) -> Response:
    buffer = io.StringIO()
    csv.writer(buffer).writerows(report.csv_rows())
    name = f"daily-{report.date.isoformat()}.csv"
    return Response(
        buffer.getvalue(),
        media_type="text/csv; charset=utf-8",
        headers={"Content-Disposition": f'attachment; filename="{name}"'},
    )


async def _report(request: Request, conn: Any, caller: Caller, day: dt.date | None) -> DailyList:
    report = await daily_list(conn, day or dt.datetime.now(dt.UTC).date(), _rules(request))
    districts = district_filter(caller, None)
    return report if districts is None else report.within(districts)


@router.get("/api/reports/daily.csv", dependencies=[allow(*STAFF)])
async def daily_csv(
    request: Request, conn: DbConn, caller: CurrentCaller, day: Day = None
) -> Response:
    return _csv(await _report(request, conn, caller, day))


@router.get(
    "/api/reports/daily",
    response_model=WatchList,
    responses={200: {"content": {"text/csv": {"schema": {"type": "string"}}}}},  # format=csv
    dependencies=[allow(*STAFF)],
)
async def daily(
    request: Request,
    conn: DbConn,
    caller: CurrentCaller,
    day: Day = None,
    fmt: Format = "json",
) -> dict[str, Any] | Response:
    report = await _report(request, conn, caller, day)
    return _csv(report) if fmt == "csv" else report.as_dict()
