"""The 12-point safety licence of one enterprise: its score with history, manual deductions.

Points always come from the enterprise's rule set (layers/prevention/scoring.py), never
from the client, so an inspector cannot deduct a different amount than the published item says.
"""

from __future__ import annotations

import datetime as dt
from typing import Any
from zoneinfo import ZoneInfo

from fastapi import APIRouter, Request
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from geo_api.auth import SITE_READERS, STAFF, allow
from geo_api.body import Moment, read_json
from geo_api.db import DbConn
from geo_api.errors import FieldError, InvalidInput, NotFound, invalid_input
from geo_api.models.prevention import Deduction, SafetyScore
from geo_api.rerate import Rerate
from geo_api.scope import VisibleEnterprise
from geo_api.settings import Settings
from layers.prevention.scoring import deduct, history, rule_set_of, score_of

router = APIRouter(tags=["safety score"])


class DeductionInput(BaseModel):
    model_config = ConfigDict(extra="forbid")
    item_code: str = Field(min_length=1, max_length=64)
    note: str = Field(min_length=1, max_length=4000)
    evidence_url: str | None = Field(default=None, max_length=2000, pattern=r"^https?://")
    occurred_at: Moment | None = None


def _today(request: Request) -> dt.date:
    settings: Settings = request.app.state.settings
    return dt.datetime.now(ZoneInfo(settings.scoring.timezone)).date()


def _not_found(enterprise_id: int) -> NotFound:
    return NotFound(f"enterprise {enterprise_id} not found", [FieldError("id", "not found")])


@router.post(
    "/api/enterprises/{enterprise_id}/deductions",
    status_code=201,
    response_model=Deduction,
    dependencies=[allow(*STAFF)],
)
async def create_deduction(
    enterprise_id: VisibleEnterprise, request: Request, conn: DbConn, rerate: Rerate
) -> dict[str, Any]:
    """Deduct points for an inspection finding (regulators of the enterprise's district)."""
    settings: Settings = request.app.state.settings
    body = await read_json(request, settings.server.max_body_bytes)
    try:
        data = DeductionInput.model_validate(body)
    except ValidationError as exc:
        raise invalid_input(exc) from None
    rule_set = await rule_set_of(conn, enterprise_id)
    if rule_set is None:
        raise _not_found(enterprise_id)
    item = rule_set.item(data.item_code)
    if item is None:
        reason = f"unknown item {data.item_code!r} in rule set {rule_set.code!r}"
        raise InvalidInput(f"item_code: {reason}", [FieldError("item_code", reason)])
    occurred_at = data.occurred_at or dt.datetime.now(dt.UTC)
    if occurred_at.tzinfo is None:
        occurred_at = occurred_at.replace(tzinfo=dt.UTC)
    # No evidence column: the URL is kept in the note, where inspectors read it anyway.
    note = data.note if data.evidence_url is None else f"{data.note}\nevidence: {data.evidence_url}"
    event_id = await deduct(conn, enterprise_id, rule_set, item, occurred_at, note)
    await rerate(conn, [enterprise_id])
    return {
        "id": event_id,
        "rule_set": rule_set.code,
        "item_code": item.code,
        "points": item.points,
    }


@router.get(
    "/api/enterprises/{enterprise_id}/score",
    response_model=SafetyScore,
    dependencies=[allow(*SITE_READERS)],
)
async def get_score(
    enterprise_id: VisibleEnterprise, request: Request, conn: DbConn
) -> dict[str, Any]:
    result = await score_of(conn, enterprise_id, _today(request))
    if result is None:
        raise _not_found(enterprise_id)
    score, events = result
    measure = score.measure
    return {
        "enterprise_id": enterprise_id,
        "rule_set": {"code": score.rule_set.code, "name": score.rule_set.name.model_dump()},
        "cycle_start": score.cycle_start.isoformat(),
        "cycle_end": score.cycle_end.isoformat(),
        "deducted": score.deducted,
        "remaining": score.remaining,
        "measure": None
        if measure is None
        else {"at": measure.at, "code": measure.code, "text": measure.text.model_dump()},
        "history": history(events, score),
    }
