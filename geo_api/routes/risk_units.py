"""An enterprise's risk register: units drawn on its site plan, assessed by LEC or LS.

Every change re-rates the enterprise at once, so its colour and reasons follow its register.
The enterprise's emergency contacts (its book's cover) are kept here too, as one list.
"""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Path, Request, Response
from fastapi.responses import JSONResponse
from pydantic import ValidationError

from geo_api.auth import SITE_READERS, CurrentCaller, allow
from geo_api.body import read_json, read_model
from geo_api.db import DbConn
from geo_api.errors import FieldError, InvalidInput, NotFound, invalid_input
from geo_api.models.base import GeoJSONResponse
from geo_api.models.risk import (
    EmergencyContacts,
    RiskUnitCollection,
    RiskUnitFeature,
    RiskUnitRating,
)
from geo_api.rerate import Rerate
from geo_api.scope import VisibleEnterprise, check_object
from geo_api.settings import Settings
from layers.risk.register import (
    ContactsInput,
    RiskUnitInput,
    assess_unit,
    check_hazard_source,
    delete_unit,
    insert_unit,
    read_contacts,
    store_contacts,
    unit_enterprise,
    unit_feature,
    unit_features,
    unit_geometry,
    update_unit,
)

router = APIRouter(tags=["risk units"])
Conn = DbConn
UnitId = Annotated[int, Path(ge=1, le=2**31 - 1)]


async def _parse_unit(
    request: Request,
) -> tuple[RiskUnitInput, Any, str | None, float | None]:
    settings: Settings = request.app.state.settings
    body = await read_json(request, settings.server.max_body_bytes)
    if not isinstance(body, dict) or body.get("type") != "Feature":
        raise InvalidInput(
            "body: expected a GeoJSON Feature", [FieldError("body", "not a Feature")]
        )
    try:
        unit = RiskUnitInput.model_validate(body.get("properties") or {})
    except ValidationError as exc:
        raise invalid_input(exc, "properties") from None
    geom = unit_geometry(body.get("geometry"))  # a bad ring is an InvalidField: a 422
    score, color = assess_unit(unit)  # UnitAssessmentError is an InvalidInput: a 422
    return unit, geom, color, score


#: Enterprises keep their own register; regulators theirs; officers and tile readers none.
Site = [allow(*SITE_READERS)]


@router.get(
    "/api/enterprises/{enterprise_id}/risk-units",
    response_model=RiskUnitCollection,
    response_class=GeoJSONResponse,
    dependencies=Site,
)
async def list_units(enterprise_id: VisibleEnterprise, conn: Conn) -> Response:
    features = await unit_features(conn, enterprise_id)
    body = {"type": "FeatureCollection", "features": features, "numberMatched": len(features)}
    return JSONResponse(body, media_type="application/geo+json")


@router.post(
    "/api/enterprises/{enterprise_id}/risk-units",
    status_code=201,
    response_model=RiskUnitRating,
    dependencies=Site,
)
async def create_unit(
    enterprise_id: VisibleEnterprise, request: Request, conn: Conn, rerate: Rerate
) -> dict[str, Any]:
    unit, geom, color, score = await _parse_unit(request)
    await check_hazard_source(conn, enterprise_id, unit)
    unit_id = await insert_unit(conn, enterprise_id, unit, geom, color)
    await rerate(conn, [enterprise_id])
    return {"id": unit_id, "color": color, "score": score}


@router.get(
    "/api/risk-units/{unit_id}",
    response_model=RiskUnitFeature,
    response_class=GeoJSONResponse,
    dependencies=Site,
)
async def get_unit(unit_id: UnitId, conn: Conn, caller: CurrentCaller) -> Response:
    await check_object(conn, caller, "risk unit", unit_id)
    feature = await unit_feature(conn, unit_id)
    if feature is None:
        raise NotFound(f"risk unit {unit_id} not found", [FieldError("id", "not found")])
    return JSONResponse(feature, media_type="application/geo+json")


@router.put("/api/risk-units/{unit_id}", response_model=RiskUnitRating, dependencies=Site)
async def replace_unit(
    unit_id: UnitId, request: Request, conn: Conn, caller: CurrentCaller, rerate: Rerate
) -> dict[str, Any]:
    await check_object(conn, caller, "risk unit", unit_id)
    unit, geom, color, score = await _parse_unit(request)
    owner = await unit_enterprise(conn, unit_id)
    if owner is None:
        raise NotFound(f"risk unit {unit_id} not found", [FieldError("id", "not found")])
    await check_hazard_source(conn, owner, unit)
    enterprise_id = await update_unit(conn, unit_id, unit, geom, color)
    if enterprise_id is None:
        raise NotFound(f"risk unit {unit_id} not found", [FieldError("id", "not found")])
    await rerate(conn, [enterprise_id])
    return {"id": unit_id, "color": color, "score": score}


@router.delete("/api/risk-units/{unit_id}", status_code=204, dependencies=Site)
async def remove_unit(
    unit_id: UnitId, conn: Conn, caller: CurrentCaller, rerate: Rerate
) -> Response:
    await check_object(conn, caller, "risk unit", unit_id)
    enterprise_id = await delete_unit(conn, unit_id)
    if enterprise_id is None:
        raise NotFound(f"risk unit {unit_id} not found", [FieldError("id", "not found")])
    await rerate(conn, [enterprise_id])
    return Response(status_code=204)


def _no_enterprise(enterprise_id: int) -> NotFound:
    return NotFound(f"enterprise {enterprise_id} not found", [FieldError("id", "not found")])


@router.get(
    "/api/enterprises/{enterprise_id}/contacts",
    response_model=EmergencyContacts,
    dependencies=Site,
)
async def get_contacts(enterprise_id: VisibleEnterprise, conn: Conn) -> dict[str, Any]:
    contacts = await read_contacts(conn, enterprise_id)
    if contacts is None:
        raise _no_enterprise(enterprise_id)
    return {"contacts": contacts}


@router.put(
    "/api/enterprises/{enterprise_id}/contacts",
    response_model=EmergencyContacts,
    dependencies=Site,
)
async def put_contacts(
    enterprise_id: VisibleEnterprise, request: Request, conn: Conn
) -> dict[str, Any]:
    """Replace the enterprise's emergency contacts (the whole list; ``[]`` clears it)."""
    given = await read_model(request, ContactsInput)
    contacts = await store_contacts(conn, enterprise_id, given.contacts)
    if contacts is None:
        raise _no_enterprise(enterprise_id)
    return {"contacts": contacts}
