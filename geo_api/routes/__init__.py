"""One module per resource; ``ROUTERS`` is the list ``create_app`` mounts."""

from fastapi import APIRouter

from geo_api.routes import (
    alerts,
    collections,
    health,
    hexagons,
    pages,
    positions,
    risk,
    risk_units,
    surface,
    tiles,
)

ROUTERS: list[APIRouter] = [
    health.router,
    pages.router,
    collections.router,
    risk.router,
    risk_units.router,
    hexagons.router,
    surface.router,
    tiles.router,
    positions.router,
    alerts.router,
]
