"""Settings, one pydantic-settings class per concern, all read from ``GEORISK_*`` variables.

Nothing is read at import time: callers build ``Settings()`` and hand it to ``create_app`` or
the CLI, so tests construct their own without patching globals.
"""

from __future__ import annotations

import ipaddress
from pathlib import Path
from typing import TYPE_CHECKING, Literal

from pydantic import AliasChoices, Field, SecretStr, field_validator, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

if TYPE_CHECKING:
    from layers.core.window import TsWindow
    from layers.demo_city.feed import FeedConfig
    from layers.monitoring.config import MonitoringRules
    from layers.risk.recompute import RecomputeConfig
    from layers.transport.config import TankerRules


class DatabaseSettings(BaseSettings):
    """Where PostGIS is. Without a URL, the private cluster that ``georisk db up`` started."""

    model_config = SettingsConfigDict(
        env_prefix="GEORISK_DB_", extra="ignore", populate_by_name=True
    )

    url: str | None = Field(
        default=None,
        validation_alias=AliasChoices("GEORISK_DATABASE_URL", "DATABASE_URL"),
        description="postgresql:// URL of an existing PostGIS; unset → the local cluster",
    )
    data_dir: Path = Field(
        default=Path(".data"),
        validation_alias=AliasChoices("GEORISK_DATA_DIR"),
        description="home of the private cluster (.data/pg) and of generated demo data",
    )
    name: str = Field(default="georisk", description="database name in the private cluster")
    read_urls: str | None = Field(
        default=None,
        validation_alias=AliasChoices("GEORISK_READ_DATABASE_URL"),
        description="postgresql:// URLs of streaming replicas for tiles and read-only queries, "
        "comma-separated (docs/operations.md); unset → every read on the primary",
    )
    pool_min: int = Field(default=1, ge=1)
    pool_max: int = Field(default=8, ge=1, le=200)
    statement_timeout_ms: int = Field(default=30_000, ge=100)

    def replica_urls(self) -> list[str]:
        return [u.strip() for u in (self.read_urls or "").split(",") if u.strip()]

    def resolved_url(self) -> str:
        """The URL to connect to; explains what to do when there is none."""
        if self.url:
            return self.url
        from geo_api.pg_local import LocalCluster  # the CLI-level bootstrap owns this file

        cluster = LocalCluster(self.data_dir)
        port = cluster.recorded_port()
        if port is None:
            raise RuntimeError(
                "No database configured: set DATABASE_URL to a PostGIS database, "
                "or run `georisk db up` (or `make run`) to start the private cluster."
            )
        return f"postgresql://georisk@127.0.0.1:{port}/{self.name}"


class ServerSettings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="GEORISK_", extra="ignore", populate_by_name=True)

    host: str = "127.0.0.1"
    port: int = Field(default=8000, validation_alias=AliasChoices("PORT", "GEORISK_PORT"))
    workers: int = Field(
        default=1,
        ge=1,
        le=64,
        description="server processes on one port (`georisk serve --workers`); each has its "
        "own caches, connection pool and, on Linux, listening socket (SO_REUSEPORT, "
        "geo_api/serve_workers.py); periodic jobs run in one of them (geo_api/leases.py)",
    )
    max_page_size: int = Field(default=10_000, ge=1, description="largest `limit` accepted")
    default_page_size: int = Field(default=1_000, ge=1)
    max_body_bytes: int = Field(default=64 * 1024 * 1024, ge=1024)
    log_level: str = "info"
    shutdown_grace_s: int = Field(
        default=5, ge=0, description="seconds open connections (SSE) get when the server stops"
    )
    worker_healthcheck_s: int = Field(
        default=60,
        ge=1,
        description="with --workers, seconds a worker may take to answer the supervisor's "
        "health check (building the app on a busy machine takes several; uvicorn's 5 s default "
        "killed starting workers in a loop)",
    )
    hex_refresh_delay_s: float = Field(
        default=1.0, ge=0, description="wait after a colour change before re-rolling hexagons"
    )
    basemap_url: str | None = Field(
        default=None,
        description="XYZ template of an external raster base (Tianditu, an OSM-derived server) "
        "under the map's own base; unset → only the own base from our data (docs/basemap.md)",
    )
    basemap_overlay_url: str | None = Field(
        default=None, description="a second XYZ template drawn over it (Tianditu's annotations)"
    )
    basemap_subdomains: str = Field(
        default="abc", description="values of {s} in the templates (Tianditu: 01234567)"
    )
    basemap_max_zoom: int = Field(
        default=18, ge=0, le=22, description="deepest zoom the external server has tiles for"
    )
    basemap_attribution: str = Field(
        default="", description="credit shown on the map for the external base (its licence)"
    )
    telemetry: bool = Field(
        default=False,
        description="FastAPI's native OpenTelemetry (global providers); off, a request skips "
        "its per-request provider checks (≈ 7 µs, a third of a cached tile)",
    )


class RiskSettings(BaseSettings):
    """Inputs of the risk engine that differ between deployments (docs/domain.md §2)."""

    model_config = SettingsConfigDict(env_prefix="GEORISK_RISK_", extra="ignore")

    population_raster: Path | None = Field(
        default=None,
        description="GeoTIFF of people per cell for GB 18218 α; unset → the demo city's raster "
        "under GEORISK_DATA_DIR/demo when present, else each source's stored population",
    )
    parking_window_hours: int = Field(default=24, ge=1)
    diagnosis_valid_years: int = Field(
        default=3, ge=1, le=10, description="MEM 2018: a risk diagnosis expires after this"
    )
    expired_diagnosis_raises: bool = Field(
        default=True, description="an expired diagnosis raises the dynamic colour one level"
    )

    def recompute_config(self, data_dir: Path) -> RecomputeConfig:
        from layers.risk.enterprise import LiveRules
        from layers.risk.recompute import RecomputeConfig

        raster = self.population_raster
        if raster is None and (data_dir / "demo" / "population.tif").exists():
            raster = data_dir / "demo" / "population.tif"
        return RecomputeConfig(
            population_raster=raster,
            live_rules=LiveRules(
                parking_window_hours=self.parking_window_hours,
                diagnosis_valid_years=self.diagnosis_valid_years,
                expired_diagnosis_raises=self.expired_diagnosis_raises,
            ),
        )


class SurfaceSettings(BaseSettings):
    """Limits of the raster endpoints (``GEORISK_SURFACE_*``)."""

    model_config = SettingsConfigDict(env_prefix="GEORISK_SURFACE_", extra="ignore")

    max_size: int = Field(default=2048, ge=16, description="largest width or height in pixels")
    default_width: int = Field(default=512, ge=1)


class TilesSettings(BaseSettings):
    """Vector-tile cache and limits (``GEORISK_TILES_*``)."""

    model_config = SettingsConfigDict(env_prefix="GEORISK_TILES_", extra="ignore")

    cache_bytes: int = Field(
        default=256 * 1024 * 1024, ge=0, description="in-process LRU budget (gzip bytes); 0 = off"
    )
    cache_dir: Path | None = Field(
        default=None, description="optional on-disk tier (cleared at start); unset = memory only"
    )
    # 0 = ``no-cache``: browsers and proxies revalidate every tile by ETag (a 304 from the tile
    # cache, no database), so a colour is never older than the last change. A deployment that
    # accepts stale colours for that long may set seconds here.
    static_max_age_s: int = Field(default=0, ge=0, description="Cache-Control of static layers")
    live_max_age_s: int = Field(default=0, ge=0, description="Cache-Control of live layers")
    live_ttl_s: float = Field(
        default=2.0, ge=0, description="server-side lifetime of cached live-layer tiles"
    )
    feature_caps: dict[str, int] = Field(
        default_factory=dict, description='per-layer cap overrides, JSON: {"enterprises": 2000}'
    )
    track_max_hours: float = Field(default=24.0, gt=0, description="longest ?from=&to= window")
    latest_max_age_h: float = Field(
        default=48.0, gt=0, description="oldest fix still shown as a tanker's latest position"
    )
    gzip_level: int = Field(default=5, ge=1, le=9)
    # Renders borrow from a pool of their own (geo_api/db.py ``open_tile_pool``), so cold tiles
    # neither wait for nor take the API's connections. 8: one process served 2,218 cold tiles/s
    # with 8, 2,065 with 4 (scripts/bench_workers.py, two cores; connections open on demand).
    pool_max: int = Field(
        default=8, ge=1, le=200, description="connections for tile renders, per process"
    )
    generic_plans: bool = Field(
        default=True,
        description="renders reuse one plan per layer statement (plan_cache_mode) instead of "
        "planning each tile; off = PostgreSQL chooses per execution",
    )
    # Point clusters (tiles/engine.py ClusterGrid): cell size in pixels of a 256-px tile.
    cluster_px: int = Field(default=16, description="cluster cell near street level, px")
    city_cluster_px: int = Field(
        default=64, description="cluster cell at city zoom (≤ city_cluster_zoom), px"
    )
    city_cluster_zoom: int = Field(default=11, ge=0, le=22)
    # Offline packages (GET /tiles/packages, docs/operations.md "Offline tiles").
    packages_dir: Path | None = Field(
        default=None, description="served PMTiles/MBTiles packages; unset = <data dir>/packages"
    )
    packages_list_max: int = Field(
        default=500, ge=1, le=100_000, description="most packages GET /tiles/packages lists"
    )

    @field_validator("cluster_px", "city_cluster_px")
    @classmethod
    def _cell_px(cls, value: int) -> int:
        from tiles.engine import CELL_PX_CHOICES

        if value not in CELL_PX_CHOICES:
            raise ValueError(f"must be one of {', '.join(map(str, CELL_PX_CHOICES))}")
        return value


class TankerSettings(BaseSettings):
    """Tanker stop and geofence rules (``GEORISK_TANKER_*``); defaults from docs/domain.md §3.

    Zones override per zone: ``max_dwell_s`` (allowed dwell) and ``speed_limit_kmh``.
    """

    model_config = SettingsConfigDict(env_prefix="GEORISK_TANKER_", extra="ignore")

    stop_radius_m: float = Field(default=200.0, ge=30, description="stop radius (≥ 2× GNSS)")
    stop_min_s: float = Field(default=180.0, ge=30, description="window that makes a stop")
    max_dwell_s: float = Field(default=600.0, ge=0, description="allowed dwell outside lots")
    expressway_kmh: float = Field(default=80.0, gt=0, le=200)
    other_road_kmh: float = Field(default=60.0, gt=0, le=200)
    road_snap_m: float = Field(default=30.0, gt=0, le=500)
    overspeed_min_s: float = Field(default=60.0, ge=0, description="shortest overspeed episode")
    corridor_min_s: float = Field(default=120.0, ge=0, description="shortest corridor deviation")
    timezone: str = Field(default="Asia/Shanghai", description="zone of active_hours")
    ack_deadline_s: float = Field(default=1800.0, gt=0)
    dispose_deadline_s: float = Field(default=14400.0, gt=0)
    max_batch: int = Field(default=50_000, ge=1, description="most fixes per POST")
    site_radius_m: float = Field(
        default=300.0, ge=30, le=5000, description="a stop this near a waybill's site loads there"
    )
    site_window_s: float = Field(
        default=43200.0, gt=0, description="a site stop counts this near the planned times"
    )
    # The warning models (issue 14 item 3; layers/transport/config.py explains each).
    site_loading_min_s: float = Field(default=900.0, gt=0, description="site stop = loading")
    unwaybilled_min_s: float = Field(default=300.0, ge=0)
    unwaybilled_min_m: float = Field(default=2000.0, ge=0)
    escort_exempt_classes: tuple[str, ...] = Field(default=(), description="classes without escort")
    undeclared_stop_max_s: float = Field(default=1800.0, gt=0)
    wrong_destination_min_s: float = Field(default=900.0, gt=0)
    continuous_drive_max_s: float = Field(default=14400.0, gt=0, description="4 h by law")
    rest_min_s: float = Field(default=1200.0, gt=0, description="20 min by law")
    daily_drive_max_s: float = Field(default=28800.0, gt=0)
    positioning_gap_max_s: float = Field(default=1200.0, gt=0)
    restricted_roads: str = Field(
        default="",
        description="road classes closed by hours: 'local@22:00-06:00,arterial@07:00-09:00'",
    )
    restricted_min_s: float = Field(default=60.0, ge=0)

    @field_validator("restricted_roads")
    @classmethod
    def _restricted_roads(cls, value: str) -> str:
        # Checked at startup, naming GEORISK_TANKER_RESTRICTED_ROADS and the bad item.
        from layers.transport.warnings.restricted_hours import parse_restricted_roads

        parse_restricted_roads(value)
        return value

    def rules(self) -> TankerRules:
        from layers.transport.config import TankerRules
        from layers.transport.warnings.restricted_hours import parse_restricted_roads

        return TankerRules(
            stop_radius_m=self.stop_radius_m,
            stop_min_s=self.stop_min_s,
            max_dwell_s=self.max_dwell_s,
            expressway_kmh=self.expressway_kmh,
            other_road_kmh=self.other_road_kmh,
            road_snap_m=self.road_snap_m,
            overspeed_min_s=self.overspeed_min_s,
            corridor_min_s=self.corridor_min_s,
            timezone=self.timezone,
            ack_deadline_s=self.ack_deadline_s,
            dispose_deadline_s=self.dispose_deadline_s,
            site_radius_m=self.site_radius_m,
            site_window_s=self.site_window_s,
            site_loading_min_s=self.site_loading_min_s,
            unwaybilled_min_s=self.unwaybilled_min_s,
            unwaybilled_min_m=self.unwaybilled_min_m,
            escort_exempt_classes=tuple(self.escort_exempt_classes),
            undeclared_stop_max_s=self.undeclared_stop_max_s,
            wrong_destination_min_s=self.wrong_destination_min_s,
            continuous_drive_max_s=self.continuous_drive_max_s,
            rest_min_s=self.rest_min_s,
            daily_drive_max_s=self.daily_drive_max_s,
            positioning_gap_max_s=self.positioning_gap_max_s,
            restricted_roads=parse_restricted_roads(self.restricted_roads),
            restricted_min_s=self.restricted_min_s,
        )


class MapChangeSettings(BaseSettings):
    """The live map's change feed (``GEORISK_MAP_CHANGES_*``, geo_api/map_changes.py): bounded
    history for resuming, bounded queues per open map (a lagging map is told to reload)."""

    model_config = SettingsConfigDict(env_prefix="GEORISK_MAP_CHANGES_", extra="ignore")

    history: int = Field(default=2048, ge=0, le=1_000_000, description="changes kept for resume")
    queue_size: int = Field(default=256, ge=1, le=100_000, description="changes per open map")
    keepalive_s: float = Field(default=15.0, gt=0, le=300, description="heartbeat interval")
    max_viewers: int = Field(default=1000, ge=1, description="open map streams per process")


class AlertStreamSettings(BaseSettings):
    """The live alert feed (``GEORISK_ALERT_STREAM_*``): bounded so one slow client costs
    at most ``queue_size`` events of memory and never delays the others."""

    model_config = SettingsConfigDict(env_prefix="GEORISK_ALERT_STREAM_", extra="ignore")

    queue_size: int = Field(default=256, ge=1, le=100_000, description="events per subscriber")
    keepalive_s: float = Field(default=15.0, gt=0, le=300, description="comment interval")
    replay_max: int = Field(default=1000, ge=0, le=100_000, description="most replayed events")
    replay_max_age_h: float = Field(default=24.0, gt=0, description="oldest replayed change")
    max_subscribers: int = Field(default=1000, ge=1, description="open streams per process")


class WebhookSettings(BaseSettings):
    """Alert webhook delivery (``GEORISK_WEBHOOK_*``): timeouts, back-off and its cap."""

    model_config = SettingsConfigDict(env_prefix="GEORISK_WEBHOOK_", extra="ignore")

    enabled: bool = Field(default=True, description="run the delivery worker in this process")
    timeout_s: float = Field(default=10.0, gt=0, le=120, description="per-POST HTTP timeout")
    max_attempts: int = Field(default=12, ge=1, le=100, description="give up after this many")
    backoff_base_s: float = Field(default=5.0, gt=0, description="wait after the 1st failure")
    backoff_factor: float = Field(default=2.0, ge=1.0)
    backoff_max_s: float = Field(default=3600.0, gt=0, description="longest wait between tries")
    jitter: float = Field(default=0.5, ge=0, le=1, description="share of a wait randomised")
    poll_interval_s: float = Field(
        default=5.0, gt=0, description="look for due rows at least this often (NOTIFY wakes too)"
    )
    batch_size: int = Field(default=50, ge=1, le=1000, description="rows claimed at a time")
    lease_margin_s: float = Field(
        default=30.0, gt=0, description="a claimed row is due again after timeout + this"
    )
    # Issue 18 §5 (layers/alerts/targets.py): loopback, private, link-local and the database's
    # own address are refused unless listed here, e.g. "10.20.0.0/16,hooks.intranet.example".
    allow: str = Field(
        default="",
        description="comma list of CIDRs or exact host names webhooks may reach although "
        "they are loopback, private or link-local; the database's own address:port never",
    )
    resolve_timeout_s: float = Field(
        default=5.0, gt=0, le=60, description="longest DNS lookup of a webhook host"
    )
    # Issue 16 §5: deliveries carry Standard Webhooks headers (webhook-id, -timestamp,
    # -signature); our older X-GeoRisk-Signature/-Timestamp pair is added while this is on, so
    # receivers written against it keep working until they move to a stock verifier.
    legacy_signature: bool = Field(
        default=True, description="also send the pre-Standard-Webhooks X-GeoRisk-Signature"
    )

    @field_validator("allow")
    @classmethod
    def _allow_entries(cls, v: str) -> str:
        from layers.alerts.targets import parse_allow_list

        parse_allow_list(v.split(","))  # ValueError names the bad entry
        return v

    @property
    def allow_list(self) -> list[str]:
        return [x.strip() for x in self.allow.split(",") if x.strip()]


class CapSettings(BaseSettings):
    """CAP messages (``GEORISK_CAP_*``): who sends them (issue 16 §5), their signing (issue 18
    §6; layers/alerts/cap_signature.py) and the Atom feed's size.

    Both files set: every ``/api/alerts/{id}.cap`` carries an enveloped XML signature and
    ``/api/cap/certificate.pem`` serves the certificate. Neither: unsigned CAP, and the
    certificate route answers 404. ``georisk cap keygen`` makes a self-signed pair.
    The sender defaults are the values CAP messages carried before they were settings."""

    model_config = SettingsConfigDict(env_prefix="GEORISK_CAP_", extra="ignore")

    key_file: Path | None = Field(default=None, description="PEM RSA private key (unencrypted)")
    cert_file: Path | None = Field(default=None, description="PEM X.509 certificate of the key")
    sender: str = Field(
        default="georisk@hazmat-regulator.gov.cn",
        min_length=1,
        max_length=200,
        pattern=r"^[^\s,&<]+$",  # CAP 1.2: no spaces, commas or ampersands
        description="CAP <sender>: this system's unique id, e.g. an e-mail-like name",
    )
    sender_name_zh: str = Field(
        default="危险化学品风险监测预警平台",
        min_length=1,
        max_length=200,
        description="<senderName> of the zh-CN <info>",
    )
    sender_name_en: str = Field(
        default="Hazardous Chemicals Risk Monitoring Platform",
        min_length=1,
        max_length=200,
        description="<senderName> of the en-US <info>",
    )
    web_url: str | None = Field(
        default=None,
        max_length=2000,
        description="<web> link of each <info>, a URL template with {alert_id}, e.g. "
        "https://georisk.example.gov.cn/?alert={alert_id}; unset: no <web>",
    )
    feed_limit: int = Field(
        default=50, ge=1, le=10_000, description="entries of the Atom feed when no limit is asked"
    )
    feed_max: int = Field(
        default=500, ge=1, le=10_000, description="most entries one Atom feed request may ask for"
    )

    @field_validator("web_url")
    @classmethod
    def _web_template(cls, v: str | None) -> str | None:
        if not v:
            return None
        if not v.startswith(("http://", "https://")):
            raise ValueError("must be an http:// or https:// URL")
        try:
            v.format(alert_id=1)
        except (KeyError, IndexError, ValueError) as exc:
            raise ValueError(f"only {{alert_id}} may be substituted ({exc})") from None
        return v

    @model_validator(mode="after")
    def _both_or_neither(self) -> CapSettings:
        if (self.key_file is None) != (self.cert_file is None):
            raise ValueError("GEORISK_CAP_KEY_FILE and GEORISK_CAP_CERT_FILE go together")
        return self


class EscalationSettings(BaseSettings):
    """The overdue-alert scheduler (``GEORISK_ESCALATION_*``); deadlines are TankerSettings'."""

    model_config = SettingsConfigDict(env_prefix="GEORISK_ESCALATION_", extra="ignore")

    enabled: bool = Field(default=True, description="run the scheduler in this process")
    interval_s: float = Field(default=30.0, gt=0, description="how often overdue alerts are found")


class MonitoringSettings(BaseSettings):
    """Live monitoring evaluation (docs/domain.md §2.4); no national figure exists for these."""

    model_config = SettingsConfigDict(env_prefix="GEORISK_MONITORING_", extra="ignore")

    debounce_n: int = Field(default=3, ge=1, le=1000, description="samples before a change")
    hysteresis: float = Field(
        default=0.10, ge=0, lt=1, description="clear only past set point ∓ this share of it"
    )
    flat_line_n: int = Field(default=60, ge=2, description="identical samples that mean grey")
    stale_intervals: float = Field(default=3.0, gt=0, description="silent sampling intervals")
    ack_deadline_s: float = Field(default=900.0, gt=0, description="time to acknowledge")
    sweep_interval_s: float = Field(
        default=1.0, gt=0, description="stale / overdue sweep period (clock-driven changes)"
    )
    sweep_enabled: bool = Field(default=True, description="run the stale sweep in this process")
    max_batch: int = Field(default=200_000, ge=1, description="most readings per POST")

    def rules(self) -> MonitoringRules:
        from layers.monitoring.config import MonitoringRules

        return MonitoringRules(
            debounce_n=self.debounce_n,
            hysteresis=self.hysteresis,
            flat_line_n=self.flat_line_n,
            stale_intervals=self.stale_intervals,
            ack_deadline_s=self.ack_deadline_s,
        )


class LeaseSettings(BaseSettings):
    """Cluster-wide leases (geo_api/leases.py): which process runs each periodic job."""

    model_config = SettingsConfigDict(env_prefix="GEORISK_LEASE_", extra="ignore")

    retry_s: float = Field(
        default=2.0,
        gt=0,
        le=60,
        description="how often a process without a job's lease tries to take it, and the "
        "holder checks it still has it: a dead holder's jobs move within about this long",
    )


class ScoringSettings(BaseSettings):
    """The automatic safety-score deductions (``GEORISK_SCORING_*``, docs/domain.md §4)."""

    model_config = SettingsConfigDict(env_prefix="GEORISK_SCORING_", extra="ignore")

    enabled: bool = Field(default=True, description="run the daily deductions in this process")
    interval_s: float = Field(default=86_400.0, gt=0, description="seconds between runs")
    initial_delay_s: float = Field(
        default=300.0, ge=0, description="wait after start-up before the first run"
    )
    timezone: str = Field(default="Asia/Shanghai", description="zone whose date is 'today'")
    warn_days: int = Field(
        default=30, ge=0, le=366, description="warn this many days before a licence expires"
    )
    alarm_dispose_hours: float = Field(
        default=4.0,
        gt=0,
        le=24 * 30,
        description="an alarm not disposed of this long after it was raised is deducted "
        "(no national figure: the alerts' default disposal deadline)",
    )


class BulletinSettings(BaseSettings):
    """The daily bulletin (layers/prevention/bulletin.py): when it is issued, its thresholds."""

    model_config = SettingsConfigDict(env_prefix="GEORISK_BULLETIN_", extra="ignore")

    enabled: bool = Field(default=True, description="issue each day's bulletin on a clock")
    issue_at: str = Field(
        default="08:00",
        pattern=r"^([01][0-9]|2[0-3]):[0-5][0-9]$",
        description="local time (HH:MM) from which the day's bulletin is issued",
    )
    timezone: str = Field(default="Asia/Shanghai", description="zone whose date is 'today'")
    interval_s: float = Field(default=600.0, gt=0, description="how often the clock looks")
    accident_days: int = Field(default=365, ge=1, le=3650, description="K6 look-back")
    penalty_days: int = Field(default=365, ge=1, le=3650, description="S4 look-back")
    window_days: int = Field(default=7, ge=1, le=366, description="department index window")
    act_within_days: int = Field(
        default=3, ge=0, le=60, description="an action counts for the index within this"
    )


class PreventionSettings(BaseSettings):
    """Dual-prevention clocks (``GEORISK_PREVENTION_*``, docs/domain.md §5): reminders before
    hidden-danger rectification deadlines."""

    model_config = SettingsConfigDict(env_prefix="GEORISK_PREVENTION_", extra="ignore")

    reminders_enabled: bool = Field(default=True, description="run the reminders here")
    reminder_days: int = Field(
        default=3, ge=0, le=365, description="remind this many days before a deadline"
    )
    reminder_interval_s: float = Field(default=3600.0, gt=0, description="seconds between runs")
    timezone: str = Field(default="Asia/Shanghai", description="zone whose date is 'today'")


class DemoFeedSettings(BaseSettings):
    """The living demo (``GEORISK_DEMO_FEED_*``, layers/demo_city/feed.py): readings, tanker
    fixes and incidents for the seeded demo city, through the real ingest pipeline. Off unless
    asked (``make run`` asks); it refuses a database without the demo marker."""

    model_config = SettingsConfigDict(env_prefix="GEORISK_DEMO_FEED_", extra="ignore")

    enabled: bool = Field(default=False, description="run the feed in this process")
    seed: int = Field(default=20221, description="every random draw of the feed derives from it")
    tick_s: float = Field(
        default=5.0,
        ge=1,
        le=10,
        description="how often due rows are sent; beyond ~5 s points sampled every 5 s may "
        "flicker grey between ticks",
    )
    reading_share: float = Field(
        default=1.0, gt=0, le=1, description="share of monitoring points fed (others go grey)"
    )
    reading_interval_scale: float = Field(
        default=1.0,
        ge=1,
        le=10,
        description="stretch each point's sampling interval by this (fewer rows); capped so no "
        "fed point ever goes stale",
    )
    fleet_share: float = Field(default=1.0, ge=0, le=1, description="share of tankers driving")
    fix_interval_s: float = Field(default=30.0, ge=5, le=300, description="seconds between fixes")
    incident_mean_s: float = Field(
        default=240.0, ge=0, description="mean seconds between incidents; 0 = none"
    )
    incident_duration_s: float = Field(
        default=480.0, ge=60, le=3600, description="how long a gas alarm pair stays past level 2"
    )
    danger_lifetime_s: float = Field(
        default=1800.0, ge=60, description="the feed rectifies its own major dangers after this"
    )
    log_interval_s: float = Field(default=60.0, gt=0, description="one summary line this often")

    def config(self, monitoring: MonitoringSettings, tanker: TankerSettings) -> FeedConfig:
        from layers.demo_city.feed import FeedConfig

        return FeedConfig(
            seed=self.seed,
            tick_s=self.tick_s,
            reading_share=self.reading_share,
            reading_interval_scale=self.reading_interval_scale,
            fleet_share=self.fleet_share,
            fix_interval_s=self.fix_interval_s,
            incident_mean_s=self.incident_mean_s,
            incident_duration_s=self.incident_duration_s,
            danger_lifetime_s=self.danger_lifetime_s,
            stale_intervals=monitoring.stale_intervals,
            max_dwell_s=tanker.max_dwell_s,
        )


class Jt808Settings(BaseSettings):
    """The JT/T 808 terminal gateway (``GEORISK_JT808_*``, geo_api/jt808_gateway.py,
    docs/jt808.md): off unless a port is set (``make run`` sets 7808). Every buffer is bounded:
    connections, frame size, bad frames per connection, fixes waiting for a commit."""

    model_config = SettingsConfigDict(env_prefix="GEORISK_JT808_", extra="ignore")

    port: int | None = Field(
        default=None, ge=0, le=65535, description="TCP port for terminals; unset → no gateway"
    )
    host: str = Field(default="127.0.0.1", description="address to listen on (0.0.0.0: all)")
    max_connections: int = Field(default=20_000, ge=1, le=200_000, description="open terminals")
    idle_timeout_s: float = Field(
        default=180.0,
        ge=5,
        le=3600,
        description="close a connection silent this long (3 × the terminals' heartbeat interval)",
    )
    max_frame_bytes: int = Field(
        default=2100,
        ge=64,
        le=65_536,
        description="largest escaped frame; the longest legal one (1023-byte body) is ~2090",
    )
    max_bad_frames: int = Field(
        default=100, ge=1, le=100_000, description="malformed frames before a connection is closed"
    )
    batch_size: int = Field(
        default=2000, ge=1, le=50_000, description="most fixes per ingest transaction"
    )
    flush_interval_s: float = Field(
        default=0.2, ge=0.01, le=5, description="longest a fix waits for its batch to start"
    )
    max_pending: int = Field(
        default=20_000,
        ge=1,
        le=1_000_000,
        description="fixes waiting for a commit; beyond it connections stop reading (backpressure)",
    )
    reuse_port: bool = Field(
        default=False,
        description="every process of `georisk serve --workers N` listens on the port "
        "(SO_REUSEPORT: the kernel spreads terminals' connections over them); off: one process "
        "of the deployment listens, under a lease",
    )
    commits: int = Field(
        default=2,
        ge=1,
        le=16,
        description="batches stored at once, each on its own pooled connection (overlaps the "
        "database's work on one with decoding the next)",
    )


class AuthSettings(BaseSettings):
    """Who may call (``GEORISK_AUTH_*``, issue 8; see geo_api/auth.py)."""

    model_config = SettingsConfigDict(env_prefix="GEORISK_AUTH_", extra="ignore")

    methods: str = Field(
        default="key,token",
        description="accepted credentials: 'key', 'token' or 'key,token' (the browser's "
        "session cookie is a token the server signs, and works either way)",
    )
    token_secret: SecretStr | None = Field(
        default=None,
        min_length=32,  # RFC 7518 §3.2: an HS256 key of at least 256 bits
        description="HMAC secret of tokens and session cookies; unset → made once and kept in "
        "<data dir>/auth_secret. Processes behind one load balancer must share it",
    )
    token_ttl_s: int = Field(default=3600, ge=60, le=7 * 86_400)
    session_ttl_s: int = Field(default=8 * 3600, ge=60, le=30 * 86_400)
    key_cache_size: int = Field(default=4096, ge=0, le=1_000_000)
    # At most 30 s (issue 18): a key revoked in one process stops working in every other one
    # within this time.
    key_cache_ttl_s: float = Field(default=30.0, ge=0, le=30)
    revocation_ttl_s: float = Field(
        default=10.0,
        ge=0,
        le=30,
        description="how long a token's or session's 'is my key (kid) still active' answer is "
        "reused; a revoked key's sessions and tokens end within this time in every process",
    )
    revocation_cache_size: int = Field(default=4096, ge=0, le=1_000_000)
    anonymous_role: Literal["", "tile_reader"] = Field(
        default="",
        description="'tile_reader' publishes the redacted tile map without a key; '' → 401",
    )
    query_key: bool = Field(
        default=True, description="accept ?key= on GET tile, TileJSON and style requests"
    )
    cookie_secure: bool = Field(default=False, description="mark the session cookie Secure")

    @field_validator("methods")
    @classmethod
    def _known_methods(cls, v: str) -> str:
        chosen = {m.strip() for m in v.split(",") if m.strip()}
        if not chosen or not chosen <= {"key", "token"}:
            raise ValueError("must be 'key', 'token' or 'key,token'")
        return ",".join(sorted(chosen))

    @property
    def method_set(self) -> frozenset[str]:
        return frozenset(self.methods.split(","))


class SecuritySettings(BaseSettings):
    """Credentials out of URLs and logs, browser headers (``GEORISK_SECURITY_*``, issue 18;
    docs/operations.md "Behind a reverse proxy")."""

    model_config = SettingsConfigDict(env_prefix="GEORISK_SECURITY_", extra="ignore")

    tile_token_ttl_s: int = Field(
        default=600,
        ge=5,
        le=86_400,
        description="lifetime of the signed tile tokens (?t=) that TileJSON, the style and the "
        "web map put into tile URLs instead of a key; clients fetch a new one before it ends",
    )
    tile_token_cache_size: int = Field(
        default=1024,
        ge=0,
        le=100_000,
        description="verified tile tokens kept (a map sends one token with every tile)",
    )
    tls: bool = Field(
        default=False,
        description="the service is only reached over HTTPS (directly or through a TLS proxy): "
        "always send HSTS and mark cookies Secure. Without it, requests whose scheme is https "
        "(uvicorn's proxy headers from GEORISK_SECURITY_TRUSTED_PROXIES) get both",
    )
    trusted_proxies: str = Field(
        default="127.0.0.1",
        description="proxy addresses or networks whose X-Forwarded-Proto/-For are believed "
        "(comma list, '*' for any): `georisk serve` passes it to uvicorn as forwarded_allow_ips "
        "and the sign-in throttle reads the client address through them",
    )

    @field_validator("trusted_proxies")
    @classmethod
    def _networks(cls, v: str) -> str:
        for part in v.split(","):
            if part.strip() and part.strip() != "*":
                ipaddress.ip_network(part.strip(), strict=False)  # ValueError names the entry
        return v

    @property
    def proxy_networks(self) -> tuple[ipaddress.IPv4Network | ipaddress.IPv6Network, ...]:
        """The trusted proxies as networks ('*' = every address, IPv4 and IPv6)."""
        parts = [p.strip() for p in self.trusted_proxies.split(",") if p.strip()]
        if "*" in parts:
            return (ipaddress.ip_network("0.0.0.0/0"), ipaddress.ip_network("::/0"))
        return tuple(ipaddress.ip_network(p, strict=False) for p in parts)

    hsts_max_age_s: int = Field(default=31_536_000, ge=0, le=2 * 31_536_000)
    hsts_include_subdomains: bool = False
    csp_img_src: str = Field(
        default="",
        description="extra image sources of the pages (space list); the base map's origin "
        "(GEORISK_BASEMAP_URL) is added by itself",
    )
    csp_connect_src: str = Field(
        default="", description="extra fetch/EventSource sources of the pages (space list)"
    )


class ThrottleSettings(BaseSettings):
    """Failed sign-ins and unknown keys (``GEORISK_THROTTLE_*``, issue 18; geo_api/throttle.py).

    ``max_failures`` failures within ``window_s`` from one client address, or with one key
    prefix, lock that address or prefix out for ``lockout_s``: its failures are answered 429
    with Retry-After (valid credentials still pass). Memory: ``max_entries`` addresses and as
    many prefixes, least recently failed forgotten first."""

    model_config = SettingsConfigDict(env_prefix="GEORISK_THROTTLE_", extra="ignore")

    enabled: bool = True
    max_failures: int = Field(default=10, ge=1, le=10_000)
    window_s: float = Field(default=60.0, gt=0, le=86_400)
    lockout_s: float = Field(default=60.0, gt=0, le=86_400)
    max_entries: int = Field(default=10_000, ge=1, le=1_000_000)


class OgcSettings(BaseSettings):
    """OGC API – Features paging (``/ogc/collections/{id}/items``): OGC clients page with
    ``limit`` and follow ``next`` links, so a small default keeps a first look cheap."""

    model_config = SettingsConfigDict(env_prefix="GEORISK_OGC_", extra="ignore")
    default_limit: int = Field(default=100, ge=1, description="`limit` when none is given")
    max_limit: int = Field(default=10_000, ge=1, description="largest `limit` accepted")


class LifecycleSettings(BaseSettings):
    """Time-series lifecycle (issue 17 item 3; docs/operations.md "Time-series lifecycle"):
    how long fixes and readings stay live, how far ahead of the clock a row may be, and the
    maintenance job that makes partitions ahead and archives expired days to GeoParquet."""

    model_config = SettingsConfigDict(env_prefix="GEORISK_", extra="ignore")

    retention_fixes_days: int = Field(
        default=180, ge=1, le=36_500, description="days tanker fixes stay in the database"
    )
    retention_readings_days: int = Field(
        default=400, ge=1, le=36_500, description="days sensor readings stay in the database"
    )
    ts_max_future_skew_s: float = Field(
        default=300.0, ge=0, le=86_400, description="how far ahead of the server clock a ts may be"
    )
    archive_dir: Path | None = Field(
        default=None, description="GeoParquet archive of expired days; unset = <data dir>/archive"
    )
    lifecycle_enabled: bool = Field(
        default=True, description="run partition maintenance in this process"
    )
    lifecycle_interval_s: float = Field(
        default=3600.0, gt=0, description="seconds between maintenance rounds"
    )
    lifecycle_initial_delay_s: float = Field(
        default=60.0, ge=0, description="wait after start-up before the first round"
    )
    lifecycle_max_days_per_run: int = Field(
        default=7, ge=1, le=1000, description="most expired days archived per round (bounded)"
    )
    lifecycle_restored_keep_days: int = Field(
        default=7, ge=0, le=3650, description="days a restored day stays before it is dropped"
    )

    def window(self) -> TsWindow:
        from layers.core.window import TsWindow

        return TsWindow(
            {"positions": self.retention_fixes_days, "readings": self.retention_readings_days},
            self.ts_max_future_skew_s,
        )

    def resolved_archive_dir(self, data_dir: Path) -> Path:
        return self.archive_dir if self.archive_dir is not None else data_dir / "archive"


class Settings(BaseSettings):
    """Everything the app needs, grouped by concern."""

    model_config = SettingsConfigDict(env_prefix="GEORISK_", extra="ignore", populate_by_name=True)

    db: DatabaseSettings = Field(default_factory=DatabaseSettings)
    server: ServerSettings = Field(default_factory=ServerSettings)
    risk: RiskSettings = Field(default_factory=RiskSettings)
    surface: SurfaceSettings = Field(default_factory=SurfaceSettings)
    tanker: TankerSettings = Field(default_factory=TankerSettings)
    tiles: TilesSettings = Field(default_factory=TilesSettings)
    alert_stream: AlertStreamSettings = Field(default_factory=AlertStreamSettings)
    map_changes: MapChangeSettings = Field(default_factory=MapChangeSettings)
    webhook: WebhookSettings = Field(default_factory=WebhookSettings)
    cap: CapSettings = Field(default_factory=CapSettings)
    escalation: EscalationSettings = Field(default_factory=EscalationSettings)
    monitoring: MonitoringSettings = Field(default_factory=MonitoringSettings)
    scoring: ScoringSettings = Field(default_factory=ScoringSettings)
    lease: LeaseSettings = Field(default_factory=LeaseSettings)
    prevention: PreventionSettings = Field(default_factory=PreventionSettings)
    auth: AuthSettings = Field(default_factory=AuthSettings)
    throttle: ThrottleSettings = Field(default_factory=ThrottleSettings)
    demo_feed: DemoFeedSettings = Field(default_factory=DemoFeedSettings)
    jt808: Jt808Settings = Field(default_factory=Jt808Settings)
    bulletin: BulletinSettings = Field(default_factory=BulletinSettings)
    security: SecuritySettings = Field(default_factory=SecuritySettings)
    ogc: OgcSettings = Field(default_factory=OgcSettings)
    lifecycle: LifecycleSettings = Field(default_factory=LifecycleSettings)
