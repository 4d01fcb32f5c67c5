"""``create_app(settings)``: the whole HTTP service, configured only by its argument."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import Depends, FastAPI
from psycopg_pool import AsyncConnectionPool

from geo_api.alert_stream import AlertBroadcaster
from geo_api.auth import Authenticator, current_caller, load_token_secret
from geo_api.body import BodyLimit
from geo_api.bulletin_task import BulletinClock, bulletin_rules
from geo_api.db import open_pool, open_tile_pool
from geo_api.demo_feed import DemoFeed
from geo_api.errors import ERROR_RESPONSES, install_error_handlers
from geo_api.escalation import EscalationScheduler
from geo_api.jt808_gateway import Jt808Gateway
from geo_api.leases import Leased
from geo_api.lifecycle_task import LifecycleScheduler
from geo_api.map_changes import MapChangeFeed
from geo_api.models.openapi import install_contract_openapi
from geo_api.redaction import install_log_redaction
from geo_api.refresh import HexRefresher
from geo_api.reminder_task import ReminderScheduler
from geo_api.replicas import ReadRouter
from geo_api.rerate import Rerater
from geo_api.routes import PUBLIC_ROUTERS, routers
from geo_api.routes.pages import WEB_DIR, WebFiles
from geo_api.routes.tiles import TileFastPath
from geo_api.scoring_task import ScoringScheduler
from geo_api.security_headers import SecurityHeaders
from geo_api.settings import CapSettings, Settings
from geo_api.tile_tokens import TileTokenGate, TileTokens
from geo_api.webhooks import WebhookWorker, guard_of
from geo_api.workers import Slot, Worker, Workers
from layers.alerts.cap_signature import CapSigner
from layers.alerts.targets import TargetGuard
from layers.alerts.webhooks import WEBHOOK_CHANNEL
from layers.catalog import CATALOG, Catalog
from layers.core.changes import ChangeBus
from layers.monitoring.sweep import StaleSweeper
from tiles.service import TileService


def background_workers(
    settings: Settings,
    pool: AsyncConnectionPool,
    tiles: TileService,
    rerate: Rerater,
    catalog: Catalog = CATALOG,
    guard: TargetGuard | None = None,
    reads: ReadRouter | None = None,
) -> Workers:
    """Every background worker of the process in start order (stopped in reverse).

    The change bus comes first — it is listening once started, so nothing that relies on its
    notices runs before — and stops last. The alert stream comes last, so stopping it first
    ends the open SSE responses before the rest goes. Each worker's ``app.state`` name is its
    slot's name; a disabled one is built (routes and tests may read it) but not started.
    """
    bus = ChangeBus(settings.db.resolved_url())
    guard = guard or guard_of(settings.webhook, settings.db.resolved_url())
    if reads is not None:  # first: a tile re-rendered after the purge reads a replica in step
        bus.subscribe("read replicas", reads.on_change, on_reconnect=reads.on_reconnect)
    bus.subscribe("tile cache", tiles.purge.on_change, on_reconnect=tiles.purge.on_reconnect)
    refresher = HexRefresher(pool, settings.server.hex_refresh_delay_s, catalog)
    bus.subscribe("hexagon refresh", refresher.on_change, on_reconnect=refresher.on_reconnect)
    webhooks = WebhookWorker(pool, settings.webhook, guard)
    if settings.webhook.enabled:  # the outbox is its state: a restart resumes what is due
        bus.subscribe(
            "webhook worker",
            webhooks.on_notice,
            channel=WEBHOOK_CHANNEL,
            on_reconnect=webhooks.on_reconnect,
        )
    # After the tile purge: a map told "this changed" refetches tiles that are already gone.
    mc = settings.map_changes
    map_changes = MapChangeFeed(catalog, mc.history, mc.queue_size, mc.max_viewers)
    bus.subscribe("map changes", map_changes.on_change, on_reconnect=map_changes.on_reconnect)
    mon, sc, stream = settings.monitoring, settings.scoring, settings.alert_stream
    pv = settings.prevention
    alert_stream = AlertBroadcaster(pool, stream.queue_size, stream.max_subscribers)
    bus.subscribe("alert stream", alert_stream.on_change, on_reconnect=alert_stream.on_reconnect)

    def once(name: str, worker: Worker) -> Leased:
        """A clock that changes data runs in one process of the deployment at a time."""
        return Leased(name, worker, settings.db.resolved_url(), settings.lease.retry_s)

    return Workers(
        [
            Slot("change_bus", bus),
            # Every process hears every change, but a re-roll rewrites rows all share: run in
            # each, N processes redid the same rollup one after another under the layer's lock
            # (a fifth of the readings ingest's CPU at scale 4 with two workers).
            Slot("hex_refresher", once("hex_refresh", refresher)),
            Slot("webhooks", webhooks, settings.webhook.enabled),
            Slot(
                "escalation",
                once("escalation", EscalationScheduler(pool, settings.escalation.interval_s)),
                settings.escalation.enabled,
            ),
            # Silent points send nothing: only a clock turns them grey.
            Slot(
                "stale_sweeper",
                once(
                    "stale_sweeper",
                    StaleSweeper(pool, mon.rules(), rerate.config(), mon.sweep_interval_s),
                ),
                mon.sweep_enabled,
            ),
            # Expired licences and certificates, undisposed alarms deduct on a clock.
            Slot("scoring", once("scoring", ScoringScheduler(pool, rerate, sc)), sc.enabled),
            # The day's bulletin is issued on a clock (idempotent per day as well).
            Slot(
                "bulletin",
                once(
                    "bulletin",
                    BulletinClock(
                        pool,
                        bulletin_rules(settings),
                        settings.bulletin.issue_at,
                        settings.bulletin.timezone,
                        settings.bulletin.interval_s,
                    ),
                ),
                settings.bulletin.enabled,
            ),
            # Deadlines drawing near produce no event: a clock reminds, once per deadline.
            Slot(
                "reminders",
                once(
                    "reminders",
                    ReminderScheduler(pool, pv.reminder_interval_s, pv.reminder_days, pv.timezone),
                ),
                pv.reminders_enabled,
            ),
            Slot("map_changes", map_changes),  # feeds every /api/changes/stream map
            # Days made ahead, expired days archived to GeoParquet then dropped.
            Slot(
                "lifecycle",
                once("lifecycle", LifecycleScheduler(settings)),
                settings.lifecycle.lifecycle_enabled,
            ),
            Slot(
                "demo_feed",
                once("demo_feed", DemoFeed(pool, rerate, settings)),
                settings.demo_feed.enabled,
            ),
            # Terminals' fixes take the POST /api/positions pipeline (docs/jt808.md). One
            # process of the deployment listens (a lease): several would fight for the port —
            # unless they share it (SO_REUSEPORT), each serving the connections it is given.
            Slot(
                "jt808",
                Jt808Gateway(pool, rerate, settings)
                if settings.jt808.reuse_port
                else once("jt808", Jt808Gateway(pool, rerate, settings)),
                settings.jt808.port is not None,
            ),
            Slot("alert_stream", alert_stream),  # feeds every /api/alerts/stream client
        ]
    )


def cap_signer(settings: CapSettings) -> CapSigner | None:
    """The configured CAP signing key, loaded (and checked) once at start: a bad key stops
    the server with the reason instead of failing on the first CAP request."""
    if settings.key_file is None or settings.cert_file is None:
        return None
    return CapSigner.from_files(settings.key_file, settings.cert_file)


def _database_url(settings: Settings) -> str | None:
    try:
        return settings.db.resolved_url()
    except RuntimeError:  # no database at all: the lifespan says so when it opens the pool
        return None


def create_app(settings: Settings | None = None, catalog: Catalog = CATALOG) -> FastAPI:
    """The service for ``settings``, serving the layers of ``catalog``."""
    settings = settings or Settings()
    install_log_redaction()  # before anything logs: access log, errors, ours (issue 18 §1)
    rerate = Rerater(settings)

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        pool = open_pool(settings.db)
        await pool.open(wait=True, timeout=30)
        app.state.pool = pool
        auth.pool = pool
        replicas = [
            open_pool(settings.db, url, f"georisk-replica-{i}")
            for i, url in enumerate(settings.db.replica_urls())
        ]
        for replica in replicas:  # not waited for: a replica still starting is skipped
            await replica.open(wait=False)
        reads = ReadRouter(pool, replicas)
        app.state.reads = reads
        tile_pool = open_tile_pool(settings.db, settings.tiles)
        await tile_pool.open(wait=True, timeout=30)
        tiles = TileService.from_settings(settings.tiles, reads.reading_from(tile_pool), catalog)
        app.state.tiles = tiles
        workers = background_workers(
            settings, pool, tiles, rerate, catalog, app.state.webhook_guard, reads
        )
        app.state.workers = workers
        for slot in workers:
            setattr(app.state, slot.name, slot.worker)
        try:
            await workers.start()
            yield
        finally:
            await workers.stop()
            for replica in replicas:
                await replica.close()
            await tile_pool.close()
            await pool.close()

    app = FastAPI(
        title="GeoRisk",
        version="0.1.0",
        description="Hazardous-chemical risk maps: enterprises, hazard sources, monitoring "
        "points, pipelines, zones and hazmat tankers over PostGIS.",
        lifespan=lifespan,
        # FastAPI's own /docs and /redoc load from a CDN: ours are vendored (routes/api_docs.py)
        docs_url=None,
        redoc_url=None,
        telemetry=None
        if settings.server.telemetry
        else {"tracing": False, "metrics": False, "logs": False},
    )
    app.state.settings = settings
    app.state.catalog = catalog
    app.state.rerate = rerate  # the ``Rerate`` dependency (geo_api/rerate.py)
    # One guard for the subscription route and the delivery worker (no SSRF, issue 18 §5).
    app.state.webhook_guard = guard_of(settings.webhook, _database_url(settings))
    app.state.cap_signer = cap_signer(settings.cap)  # None: unsigned CAP (issue 18 §6)
    secret = load_token_secret(settings.auth, settings.db.data_dir)
    auth = Authenticator(
        settings.auth,
        secret,
        throttle=settings.throttle,
        proxies=settings.security.proxy_networks,
    )
    app.state.auth = auth
    app.state.tile_tokens = TileTokens(auth.secret, settings.security, auth)
    install_error_handlers(app)
    # Added inner first: a request meets SecurityHeaders, BodyLimit, TileTokenGate (``?t=``
    # becomes the caller), TileFastPath (cached tiles without FastAPI's per-request overhead).
    app.add_middleware(TileFastPath)
    app.add_middleware(TileTokenGate)
    app.add_middleware(BodyLimit, limit=settings.server.max_body_bytes)
    app.add_middleware(
        SecurityHeaders, settings=settings.security, basemap_url=settings.server.basemap_url
    )
    for router in PUBLIC_ROUTERS:
        app.include_router(router)
    # Every other route resolves the caller through the one dependency first (cached per
    # request, so the route's ``allow`` and its handler get the same Caller).
    for router in routers(catalog):
        app.include_router(
            router, dependencies=[Depends(current_caller)], responses=ERROR_RESPONSES
        )
    app.mount("/static", WebFiles(directory=WEB_DIR), name="static")
    install_contract_openapi(app)  # error bodies documented as the JSON they are
    return app


def app_from_environment() -> FastAPI:
    """The app of one ``georisk serve --workers N`` process: settings from ``GEORISK_*``."""
    return create_app(Settings())
