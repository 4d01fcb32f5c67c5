"""Electronic waybills beyond the collection (docs/transport.md): the parties' loading and
unloading events, state changes, and a waybill's history.

The list, the item and ``POST /api/waybills`` come from the catalogue (``WAYBILLS`` in
``layers/catalog/declarations.py``); the lifecycle is ``layers/transport/waybills.py``, the
loading party's checks ``layers/transport/qualifications.py``, who may do what
``layers/access/roles.py``.
"""

from __future__ import annotations

import datetime as dt
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Path, Request
from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from geo_api.auth import Caller, CurrentCaller, allow
from geo_api.body import Text, json_response, read_json
from geo_api.db import DbConn, actor_name
from geo_api.errors import FieldError, Forbidden, InvalidInput, invalid_input
from geo_api.models.transport import WaybillEvent, WaybillEvents
from geo_api.settings import Settings
from layers.access import roles as access
from layers.transport.warnings import mixed_loading
from layers.transport.waybills import (
    EVENTS,
    LoadingRefused,
    Step,
    apply_step,
    list_events,
    waybill_parties,
)

router = APIRouter(tags=["waybills"])
WaybillId = Annotated[int, Path(ge=1, le=2**31 - 1, description="the waybill's id")]
#: How far ahead of the server's clock an event may be dated (terminal and server clocks).
FUTURE_SLACK = dt.timedelta(minutes=5)


class _StepBody(BaseModel):
    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)
    at: dt.datetime | None = Field(None, description="when it happened; default now")
    note: Annotated[Text, Field(max_length=2000)] | None = None

    @model_validator(mode="after")
    def _when(self) -> _StepBody:
        if self.at is not None:
            if self.at.tzinfo is None:
                raise ValueError("at: needs a time zone (e.g. 2026-12-05T08:00:00+08:00)")
            if self.at > dt.datetime.now(dt.UTC) + FUTURE_SLACK:
                raise ValueError("at: lies in the future")
        return self


class EventBody(_StepBody):
    kind: Literal["loading", "loaded", "unloading", "unloaded"]
    lon: float | None = Field(None, ge=-180, le=180, description="where (WGS 84)")
    lat: float | None = Field(None, ge=-90, le=90)

    @model_validator(mode="after")
    def _both(self) -> EventBody:
        if (self.lon is None) != (self.lat is None):
            raise ValueError("lon, lat: give both or neither")
        return self


class TransitionBody(_StepBody):
    to: Literal["planned", "loading", "in_transit", "delivered", "cancelled"]


async def _parse(request: Request, model: type[_StepBody]) -> Any:
    settings: Settings = request.app.state.settings
    body = await read_json(request, settings.server.max_body_bytes)
    if not isinstance(body, dict):
        raise InvalidInput("body: expected a JSON object", [FieldError("body", "not an object")])
    try:
        return model.model_validate(body)
    except ValidationError as exc:
        raise invalid_input(exc) from None


def _forbidden(waybill_id: int, caller: Caller, what: str) -> Forbidden:
    reason = f"this {caller.role} key may not {what} waybill {waybill_id}"
    return Forbidden(reason, [FieldError("id", reason)])


def _actor(caller: Caller) -> str:
    return actor_name(caller.name, caller.role, caller.key_id)


async def _step(request: Request, conn: Any, waybill_id: int, step: Step) -> dict[str, Any]:
    settings: Settings = request.app.state.settings
    rules = settings.tanker.rules()
    try:
        event = await apply_step(conn, waybill_id, step, rules)
        if step.to_state in mixed_loading.LOADED:  # the loading a party or officer reported
            await mixed_loading.judge_waybills(conn, [waybill_id], rules)
        return event
    except LoadingRefused:
        # The refusal is part of the record (the later warning model reads it): keep it,
        # though the step itself is refused.
        await conn.commit()
        raise


@router.post(
    "/api/waybills/{waybill_id}/events",
    status_code=201,
    response_model=WaybillEvent,
    dependencies=[allow(access.ADMIN, access.ENTERPRISE)],
    summary="A loading or unloading event, posted by the loading party or the consignee",
)
async def post_event(
    waybill_id: WaybillId, request: Request, conn: DbConn, caller: CurrentCaller
) -> Any:
    row = await waybill_parties(conn, waybill_id)
    body: EventBody = await _parse(request, EventBody)
    _, to_state, party = EVENTS[body.kind]
    if not access.posts_waybill_event(caller.role, caller.enterprise_id, row[party]):
        who = "the loading party" if party == "loading_party_id" else "the consignee"
        raise _forbidden(waybill_id, caller, f"post a {body.kind} event (only {who}) of")
    step = Step(
        kind=body.kind,
        to_state=to_state,
        at=body.at or dt.datetime.now(dt.UTC),
        actor=_actor(caller),
        source="party",
        lon=body.lon,
        lat=body.lat,
        note=body.note,
    )
    return json_response(await _step(request, conn, waybill_id, step), 201)


@router.post(
    "/api/waybills/{waybill_id}/transition",
    response_model=WaybillEvent,
    dependencies=[allow(access.ADMIN, access.REGULATOR, access.ENTERPRISE)],
    summary="Move a waybill to another state (allowed steps only; 409 otherwise)",
)
async def post_transition(
    waybill_id: WaybillId, request: Request, conn: DbConn, caller: CurrentCaller
) -> Any:
    row = await waybill_parties(conn, waybill_id)
    body: TransitionBody = await _parse(request, TransitionBody)
    if not access.moves_waybill(
        caller.role, caller.enterprise_id, caller.districts, row["carrier_id"], row["district"]
    ):
        raise _forbidden(waybill_id, caller, "change the state of")
    step = Step(
        kind="transition",
        to_state=body.to,
        at=body.at or dt.datetime.now(dt.UTC),
        actor=_actor(caller),
        source="api",
        note=body.note,
    )
    return json_response(await _step(request, conn, waybill_id, step))


@router.get(
    "/api/waybills/{waybill_id}/events",
    response_model=WaybillEvents,
    dependencies=[allow(access.ADMIN, access.REGULATOR, access.OFFICER, access.ENTERPRISE)],
    summary="A waybill's history: events, refused loadings with their failed checks, steps",
)
async def get_events(waybill_id: WaybillId, conn: DbConn, caller: CurrentCaller) -> Any:
    row = await waybill_parties(conn, waybill_id)
    parties = (row["carrier_id"], row["shipper_id"], row["loading_party_id"], row["consignee_id"])
    if not access.sees_waybill(
        caller.role, caller.enterprise_id, caller.districts, parties, row["district"]
    ):
        raise _forbidden(waybill_id, caller, "read")
    items = await list_events(conn, waybill_id)
    return json_response({"waybill_id": waybill_id, "items": items, "numberMatched": len(items)})
