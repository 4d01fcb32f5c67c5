"""``/api/alert-routes``: where each warning type goes and its deadlines (layers/alerts/routing.py).

Everyone who handles alerts may read the table; only an administrator changes it. A change
applies to alerts raised afterwards.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

from fastapi import APIRouter, Path, Request

from geo_api.auth import TRANSPORT, allow
from geo_api.body import read_model
from geo_api.db import DbConn
from geo_api.models.alerts import AlertRoute, AlertRouteList
from layers.alerts import routing
from layers.core.vocab import ALERT_RULES

router = APIRouter(tags=["alerts"])
Rule = Annotated[Literal[ALERT_RULES], Path(description="an alert rule")]  # type: ignore[valid-type]


@router.get("/api/alert-routes", response_model=AlertRouteList, dependencies=[allow(*TRANSPORT)])
async def alert_routes(conn: DbConn) -> dict[str, Any]:
    """Every warning type's departments, whether the carrier is told, and its deadlines
    (``null``: the engine's default, GEORISK_TANKER_ACK_DEADLINE_S / _DISPOSE_DEADLINE_S)."""
    return {"items": await routing.list_routes(conn)}


@router.put("/api/alert-routes/{rule}", response_model=AlertRoute, dependencies=[allow("admin")])
async def set_alert_route(rule: Rule, request: Request, conn: DbConn) -> dict[str, Any]:
    """Replace a warning type's route; alerts raised from now on follow it (audited)."""
    route = await read_model(request, routing.RouteInput)
    return await routing.set_route(conn, rule, route)
