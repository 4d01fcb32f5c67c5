"""One module per resource; ``ROUTERS`` is the list ``create_app`` mounts."""

from fastapi import APIRouter

from geo_api.routes import collections, health, hexagons, pages, risk, risk_units, surface

ROUTERS: list[APIRouter] = [
    health.router,
    pages.router,
    collections.router,
    risk.router,
    risk_units.router,
    hexagons.router,
    surface.router,
]
