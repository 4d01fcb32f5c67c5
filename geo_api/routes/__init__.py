"""One module per resource; ``routers(catalog)`` is the list ``create_app`` mounts."""

from fastapi import APIRouter

from geo_api.routes import (
    alarms,
    alert_feeds,
    alert_routes,
    alerts,
    api_docs,
    audit,
    auth,
    bulletins,
    changes,
    cluster,
    collections,
    diagram,
    findings,
    health,
    hexagons,
    hidden_dangers,
    ogc,
    ogc_features,
    ogc_openapi,
    ogc_tiles,
    pages,
    positions,
    qualifications,
    readings,
    reports,
    risk,
    risk_units,
    rule_sets,
    scores,
    surface,
    tile_packages,
    tiles,
    waybills,
    webhooks,
)
from layers.catalog import Catalog

#: Reachable without credentials: health checks, the page shell (it signs in), the API docs
#: (like /openapi.json), sign-in itself.
PUBLIC_ROUTERS: list[APIRouter] = [
    health.router,
    pages.router,
    api_docs.router,  # /docs and /redoc, from our own files
    auth.public_router,
    diagram.page_router,  # checks the caller itself: without one it redirects to sign in
    alert_feeds.public_router,  # the CAP signing certificate: receivers verify with it
]


def routers(catalog: Catalog) -> list[APIRouter]:
    """Everything else: the caller is resolved first (401 without credentials), then each
    route's ``allow(...)`` names the roles it admits. The collections come from ``catalog``."""
    return [
        *_BEFORE_COLLECTIONS,
        collections.router_for(catalog),
        *_AFTER_COLLECTIONS,
    ]


_BEFORE_COLLECTIONS: list[APIRouter] = [
    auth.router,
    audit.router,
    cluster.router,
    diagram.router,
]
_AFTER_COLLECTIONS: list[APIRouter] = [
    risk.router,
    risk_units.router,
    hexagons.router,
    surface.router,
    tile_packages.router,  # before tiles: /tiles/packages is no layer
    tiles.router,
    ogc.router,
    ogc_openapi.router,
    ogc_features.router,
    ogc_tiles.router,
    changes.router,
    positions.router,
    alert_feeds.router,  # before alerts: /api/alerts/stream is not an {alert_id}
    alerts.router,
    alert_routes.router,
    webhooks.router,
    readings.router,
    alarms.router,
    scores.router,
    rule_sets.router,
    qualifications.router,
    hidden_dangers.router,
    findings.router,
    reports.router,
    waybills.router,  # the collection is catalogued; its events and steps are here
    bulletins.router,
]
