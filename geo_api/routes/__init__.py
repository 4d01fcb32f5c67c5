"""One module per resource; ``ROUTERS`` is the list ``create_app`` mounts."""

from fastapi import APIRouter

from geo_api.routes import (
    alarms,
    alert_feeds,
    alerts,
    audit,
    auth,
    collections,
    diagram,
    health,
    hexagons,
    hidden_dangers,
    pages,
    positions,
    readings,
    reports,
    risk,
    risk_units,
    scores,
    surface,
    tiles,
    webhooks,
)

#: Reachable without credentials: health checks, the page shell (it signs in), sign-in itself.
PUBLIC_ROUTERS: list[APIRouter] = [
    health.router,
    pages.router,
    auth.public_router,
    diagram.page_router,  # checks the caller itself: without one it redirects to sign in
]

#: Everything else: the caller is resolved first (401 without credentials), then each route's
#: ``allow(...)`` names the roles it admits.
ROUTERS: list[APIRouter] = [
    auth.router,
    audit.router,
    diagram.router,
    collections.router,
    risk.router,
    risk_units.router,
    hexagons.router,
    surface.router,
    tiles.router,
    positions.router,
    alert_feeds.router,  # before alerts: /api/alerts/stream is not an {alert_id}
    alerts.router,
    webhooks.router,
    readings.router,
    alarms.router,
    scores.router,
    hidden_dangers.router,
    reports.router,
]
