"""The 12-point safety licence of one enterprise: its score, deductions and their lifecycle,
earned-back points (docs/rules.md).

Points always come from the enterprise's rule set (layers/prevention/scoring.py), never from
the client. Who does what: regulators of the enterprise's district (and admins) deduct,
accept, reject and void; the enterprise reports the rectification of its own deductions and
asks to earn points back; a regulator approves that. ``VisibleEnterprise`` keeps every caller
to enterprises it may see (404 / 403 otherwise).
"""

from __future__ import annotations

import datetime as dt
from typing import Annotated, Any, Literal
from zoneinfo import ZoneInfo

from fastapi import APIRouter, Path, Request
from pydantic import BaseModel, ConfigDict, Field

from geo_api.auth import SITE_READERS, STAFF, Caller, CurrentCaller, allow
from geo_api.body import Day, Moment, read_model
from geo_api.db import DbConn, actor_name
from geo_api.errors import FieldError, InvalidInput, NotFound, error_responses
from geo_api.models.prevention import Deduction, SafetyScore
from geo_api.models.rules import DeductionStep, EarnBack, EnterpriseTags
from geo_api.rerate import Rerate
from geo_api.scope import VisibleEnterprise
from geo_api.settings import Settings
from layers.access import roles as access
from layers.prevention.deductions import (
    deducted_event,
    request_earn_back,
    review_earn_back,
    step,
)
from layers.prevention.rule_book import RuleSet
from layers.prevention.scoring import deduct, rule_set_of, score_json

router = APIRouter(tags=["safety score"])

Id = Annotated[int, Path(ge=1, le=2**31 - 1)]
#: A step the deduction's (or earn-back's) state does not allow: 409 naming the state.
_REFUSED = error_responses(409)
EvidenceUrl = Annotated[str, Field(max_length=2000, pattern=r"^https?://\S+$")]


class DeductionInput(BaseModel):
    model_config = ConfigDict(extra="forbid")
    item_code: str = Field(min_length=1, max_length=64)
    note: str = Field(min_length=1, max_length=4000)
    evidence_url: EvidenceUrl | None = None
    occurred_at: Moment | None = None


class ReportInput(BaseModel):
    """The enterprise: what it did, and the evidence (a photo, a report)."""

    model_config = ConfigDict(extra="forbid")
    note: str = Field(min_length=1, max_length=4000)
    evidence_url: EvidenceUrl


class ReviewInput(BaseModel):
    """A regulator after re-inspection (``reinspected_on``: the day of the visit)."""

    model_config = ConfigDict(extra="forbid")
    reinspected_on: Day
    note: str = Field(min_length=1, max_length=4000)


class VoidInput(BaseModel):
    model_config = ConfigDict(extra="forbid")
    reason: str = Field(min_length=1, max_length=4000)


class EarnBackInput(BaseModel):
    model_config = ConfigDict(extra="forbid")
    points: int = Field(ge=1, le=12)
    reason: Literal["training", "improvement"]
    note: str = Field(min_length=1, max_length=4000)
    evidence_url: EvidenceUrl
    occurred_at: Moment | None = None


class TagsInput(BaseModel):
    """Labels that rule-set assignments match (e.g. ``furnace``: docs/rules.md)."""

    model_config = ConfigDict(extra="forbid")
    tags: list[Annotated[str, Field(pattern=r"^[a-z0-9][a-z0-9_-]{0,63}$")]] = Field(max_length=32)


class EarnBackReview(BaseModel):
    model_config = ConfigDict(extra="forbid")
    approve: bool
    note: str | None = Field(default=None, min_length=1, max_length=4000)


def _today(request: Request) -> dt.date:
    settings: Settings = request.app.state.settings
    return dt.datetime.now(ZoneInfo(settings.scoring.timezone)).date()


def _actor(caller: Caller) -> str:
    return actor_name(caller.name, caller.role, caller.key_id)


async def _rule_set(conn: DbConn, enterprise_id: int) -> RuleSet:
    rule_set = await rule_set_of(conn, enterprise_id)
    if rule_set is None:
        reason = "no rule set is assigned to this enterprise (docs/rules.md: assignments)"
        raise InvalidInput(f"enterprise {enterprise_id}: {reason}", [FieldError("id", reason)])
    return rule_set


def _moment(value: dt.datetime | None) -> dt.datetime:
    if value is None:
        return dt.datetime.now(dt.UTC)
    return value if value.tzinfo is not None else value.replace(tzinfo=dt.UTC)


@router.post(
    "/api/enterprises/{enterprise_id}/deductions",
    status_code=201,
    response_model=Deduction,
    dependencies=[allow(*STAFF)],
)
async def create_deduction(
    enterprise_id: VisibleEnterprise,
    request: Request,
    conn: DbConn,
    caller: CurrentCaller,
    rerate: Rerate,
) -> dict[str, Any]:
    """Deduct points for an inspection finding (regulators of the enterprise's district)."""
    data: DeductionInput = await read_model(request, DeductionInput)
    rule_set = await _rule_set(conn, enterprise_id)
    item = rule_set.item(data.item_code)
    if item is None:
        reason = f"unknown item {data.item_code!r} in rule set {rule_set.code!r}"
        raise InvalidInput(f"item_code: {reason}", [FieldError("item_code", reason)])
    occurred_at = _moment(data.occurred_at)
    if occurred_at > dt.datetime.now(dt.UTC) + dt.timedelta(minutes=5):
        reason = "is in the future"
        raise InvalidInput(f"occurred_at: {reason}", [FieldError("occurred_at", reason)])
    actor = _actor(caller)
    event_id = await deduct(
        conn, enterprise_id, rule_set, item, occurred_at, data.note, data.evidence_url, actor
    )
    await deducted_event(conn, enterprise_id, event_id, actor)
    await rerate(conn, [enterprise_id])
    return {
        "id": event_id,
        "rule_set": rule_set.code,
        "rule_set_version": rule_set.version,
        "is_sample": rule_set.is_sample,
        "item_code": item.code,
        "points": item.points,
        "state": "open",
    }


async def _step(
    request: Request,
    conn: DbConn,
    caller: Caller,
    rerate: Rerate,
    enterprise_id: int,
    deduction_id: int,
    action: str,
) -> dict[str, Any]:
    if action == "report":
        report: ReportInput = await read_model(request, ReportInput)
        row = await step(
            conn,
            enterprise_id,
            deduction_id,
            action,
            _actor(caller),
            report.note,
            report.evidence_url,
        )
    elif action == "void":
        void: VoidInput = await read_model(request, VoidInput)
        row = await step(conn, enterprise_id, deduction_id, action, _actor(caller), void.reason)
    else:
        review: ReviewInput = await read_model(request, ReviewInput)
        row = await step(
            conn,
            enterprise_id,
            deduction_id,
            action,
            _actor(caller),
            review.note,
            reinspected_on=review.reinspected_on,
            today=_today(request),
        )
    if action in ("accept", "void"):  # the points may stop counting: the colour follows
        await rerate(conn, [enterprise_id])
    return row


@router.post(
    "/api/enterprises/{enterprise_id}/deductions/{deduction_id}/rectification",
    response_model=DeductionStep,
    responses=_REFUSED,
    dependencies=[allow(access.ENTERPRISE, access.ADMIN)],
)
async def report_rectification(
    enterprise_id: VisibleEnterprise,
    deduction_id: Id,
    request: Request,
    conn: DbConn,
    caller: CurrentCaller,
    rerate: Rerate,
) -> dict[str, Any]:
    """The enterprise reports it rectified (with evidence); the points stay until accepted."""
    return await _step(request, conn, caller, rerate, enterprise_id, deduction_id, "report")


@router.post(
    "/api/enterprises/{enterprise_id}/deductions/{deduction_id}/accept",
    response_model=DeductionStep,
    responses=_REFUSED,
    dependencies=[allow(*STAFF)],
)
async def accept_rectification(
    enterprise_id: VisibleEnterprise,
    deduction_id: Id,
    request: Request,
    conn: DbConn,
    caller: CurrentCaller,
    rerate: Rerate,
) -> dict[str, Any]:
    """A regulator accepts the reported rectification after re-inspection."""
    return await _step(request, conn, caller, rerate, enterprise_id, deduction_id, "accept")


@router.post(
    "/api/enterprises/{enterprise_id}/deductions/{deduction_id}/reject",
    response_model=DeductionStep,
    responses=_REFUSED,
    dependencies=[allow(*STAFF)],
)
async def reject_rectification(
    enterprise_id: VisibleEnterprise,
    deduction_id: Id,
    request: Request,
    conn: DbConn,
    caller: CurrentCaller,
    rerate: Rerate,
) -> dict[str, Any]:
    """A regulator rejects it (the enterprise may report again)."""
    return await _step(request, conn, caller, rerate, enterprise_id, deduction_id, "reject")


@router.post(
    "/api/enterprises/{enterprise_id}/deductions/{deduction_id}/void",
    response_model=DeductionStep,
    responses=_REFUSED,
    dependencies=[allow(*STAFF)],
)
async def void_deduction(
    enterprise_id: VisibleEnterprise,
    deduction_id: Id,
    request: Request,
    conn: DbConn,
    caller: CurrentCaller,
    rerate: Rerate,
) -> dict[str, Any]:
    """Void a wrong deduction with a reason: no points, the row and its audit entry stay."""
    return await _step(request, conn, caller, rerate, enterprise_id, deduction_id, "void")


@router.post(
    "/api/enterprises/{enterprise_id}/earn-backs",
    status_code=201,
    response_model=EarnBack,
    dependencies=[allow(*SITE_READERS)],
)
async def create_earn_back(
    enterprise_id: VisibleEnterprise, request: Request, conn: DbConn, caller: CurrentCaller
) -> dict[str, Any]:
    """Ask to earn points back (training, a verified improvement), where the set allows it."""
    data: EarnBackInput = await read_model(request, EarnBackInput)
    rule_set = await _rule_set(conn, enterprise_id)
    return await request_earn_back(
        conn,
        enterprise_id,
        rule_set,
        data.points,
        data.reason,
        data.note,
        data.evidence_url,
        _moment(data.occurred_at),
        _actor(caller),
    )


@router.post(
    "/api/enterprises/{enterprise_id}/earn-backs/{earn_back_id}/review",
    response_model=EarnBack,
    responses=_REFUSED,
    dependencies=[allow(*STAFF)],
)
async def review_earn_back_route(
    enterprise_id: VisibleEnterprise,
    earn_back_id: Id,
    request: Request,
    conn: DbConn,
    caller: CurrentCaller,
    rerate: Rerate,
) -> dict[str, Any]:
    """A regulator approves or rejects an earn-back; approved points count within the cap."""
    data: EarnBackReview = await read_model(request, EarnBackReview)
    row = await review_earn_back(
        conn, enterprise_id, earn_back_id, data.approve, _actor(caller), data.note
    )
    await rerate(conn, [enterprise_id])
    return row


@router.put(
    "/api/enterprises/{enterprise_id}/tags",
    response_model=EnterpriseTags,
    dependencies=[allow(*STAFF)],
)
async def put_tags(
    enterprise_id: VisibleEnterprise, request: Request, conn: DbConn, rerate: Rerate
) -> dict[str, Any]:
    """Replace an enterprise's tags; the rule set scoring it may change with them (and with
    it the cycle, the measures and the colour)."""
    data: TagsInput = await read_model(request, TagsInput)
    tags = sorted(set(data.tags))
    await conn.execute("UPDATE enterprises SET tags = %s WHERE id = %s", (tags, enterprise_id))
    rule_set = await rule_set_of(conn, enterprise_id)
    await rerate(conn, [enterprise_id])
    return {
        "enterprise_id": enterprise_id,
        "tags": tags,
        "rule_set": rule_set.ref() if rule_set is not None else None,
    }


@router.get(
    "/api/enterprises/{enterprise_id}/score",
    response_model=SafetyScore,
    dependencies=[allow(*SITE_READERS)],
)
async def get_score(
    enterprise_id: VisibleEnterprise, request: Request, conn: DbConn
) -> dict[str, Any]:
    """Score, measures reached and their effects, every deduction with its state."""
    result = await score_json(conn, enterprise_id, _today(request))
    if result is None:  # the enterprise exists (VisibleEnterprise): no set scores it
        reason = "no rule set is assigned to this enterprise"
        raise NotFound(f"enterprise {enterprise_id}: {reason}", [FieldError("id", reason)])
    return result
