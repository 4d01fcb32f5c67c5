"""One module per resource; ``ROUTERS`` is the list ``create_app`` mounts."""

from fastapi import APIRouter

from geo_api.routes import collections, health, pages, risk, risk_units

ROUTERS: list[APIRouter] = [
    health.router,
    pages.router,
    collections.router,
    risk.router,
    risk_units.router,
]
