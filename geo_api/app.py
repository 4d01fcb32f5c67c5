"""``create_app(settings)``: the whole HTTP service, configured only by its argument."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import Depends, FastAPI

from geo_api.alert_stream import AlertBroadcaster
from geo_api.auth import Authenticator, current_caller, load_token_secret
from geo_api.body import BodyLimit
from geo_api.db import open_pool
from geo_api.errors import ERROR_RESPONSES, install_error_handlers
from geo_api.escalation import EscalationScheduler
from geo_api.refresh import HexRefresher
from geo_api.rerate import Rerater
from geo_api.routes import PUBLIC_ROUTERS, ROUTERS
from geo_api.routes.pages import WEB_DIR, WebFiles
from geo_api.routes.tiles import TileFastPath
from geo_api.scoring_task import ScoringScheduler
from geo_api.settings import Settings
from geo_api.webhooks import WebhookWorker
from layers.monitoring.sweep import StaleSweeper
from tiles.service import TileService


def create_app(settings: Settings | None = None) -> FastAPI:
    settings = settings or Settings()
    rerate = Rerater(settings)

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        pool = open_pool(settings.db)
        await pool.open(wait=True, timeout=30)
        app.state.pool = pool
        auth.pool = pool
        refresher = HexRefresher(
            settings.db.resolved_url(), pool, settings.server.hex_refresh_delay_s
        )
        refresher.start()
        app.state.hex_refresher = refresher
        tiles = TileService.from_settings(settings.tiles, pool, settings.db.resolved_url())
        tiles.start()  # LISTEN georisk_changes → purge the tiles that changed
        app.state.tiles = tiles
        webhooks = WebhookWorker(settings.db.resolved_url(), pool, settings.webhook)
        if settings.webhook.enabled:
            webhooks.start()  # the outbox is its state: a restart resumes what is due
        app.state.webhooks = webhooks
        escalation = EscalationScheduler(pool, settings.escalation.interval_s)
        if settings.escalation.enabled:
            escalation.start()
        app.state.escalation = escalation
        mon = settings.monitoring
        sweeper = StaleSweeper(
            pool,
            mon.rules(),
            settings.risk.recompute_config(settings.db.data_dir),
            mon.sweep_interval_s,
        )
        if mon.sweep_enabled:
            sweeper.start()  # silent points send nothing: only a clock turns them grey
        app.state.stale_sweeper = sweeper
        sc = settings.scoring
        scoring = ScoringScheduler(
            pool,
            rerate,
            sc.interval_s,
            sc.timezone,
            sc.initial_delay_s,
        )
        if sc.enabled:
            scoring.start()  # expired licences and overdue alarms deduct on a clock
        app.state.scoring = scoring
        stream = settings.alert_stream
        alert_stream = AlertBroadcaster(
            settings.db.resolved_url(), pool, stream.queue_size, stream.max_subscribers
        )
        alert_stream.start()  # one LISTEN feeding every /api/alerts/stream client
        app.state.alert_stream = alert_stream
        try:
            yield
        finally:
            await alert_stream.stop()  # ends open streams first, so their responses complete
            await scoring.stop()
            await sweeper.stop()
            await escalation.stop()
            await webhooks.stop()
            await tiles.stop()
            await refresher.stop()
            await pool.close()

    app = FastAPI(
        title="GeoRisk",
        version="0.1.0",
        description="Hazardous-chemical risk maps: enterprises, hazard sources, monitoring "
        "points, pipelines, zones and hazmat tankers over PostGIS.",
        lifespan=lifespan,
        telemetry=None
        if settings.server.telemetry
        else {"tracing": False, "metrics": False, "logs": False},
    )
    app.state.settings = settings
    app.state.rerate = rerate  # the ``Rerate`` dependency (geo_api/rerate.py)
    auth = Authenticator(settings.auth, load_token_secret(settings.auth, settings.db.data_dir))
    app.state.auth = auth
    install_error_handlers(app)
    app.add_middleware(TileFastPath)  # cached tiles without FastAPI's per-request overhead
    app.add_middleware(BodyLimit, limit=settings.server.max_body_bytes)  # outermost: first
    for router in PUBLIC_ROUTERS:
        app.include_router(router)
    # Every other route resolves the caller through the one dependency first (cached per
    # request, so the route's ``allow`` and its handler get the same Caller).
    for router in ROUTERS:
        app.include_router(
            router, dependencies=[Depends(current_caller)], responses=ERROR_RESPONSES
        )
    app.mount("/static", WebFiles(directory=WEB_DIR), name="static")
    return app
