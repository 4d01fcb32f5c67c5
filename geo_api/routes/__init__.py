"""One module per resource; ``ROUTERS`` is the list ``create_app`` mounts."""

from fastapi import APIRouter

from geo_api.routes import (
    alarms,
    alert_feeds,
    alerts,
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

ROUTERS: list[APIRouter] = [
    health.router,
    pages.router,
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
