"""The living demo's worker: keeps the seeded demo city alive with readings, fixes and incidents.

Why here and not over HTTP: the feed must behave exactly like real data, so it writes through
the very steps ``POST /api/readings`` and ``POST /api/positions`` take — the shared ingest
pipeline (``layers/core/ingest.py``) with the ``SensorReadings`` and ``TankerFixes`` kinds, then
the app's ``Rerater`` for the enterprises the batch names — without a loopback HTTP hop or an
API key of its own. What it generates is ``layers/demo_city/feed.py``.

Every ``tick_s`` one tick: plant the incident that is due (if any) and move the feed's own
hidden dangers on, then ingest the readings and the fixes due by now, each in a transaction of
its own named ``demo-feed`` in the audit log. One summary line per ``log_interval_s``: rows
written, incidents, and the CPU the process used. It refuses (one warning, no writes) a
database without the demo marker. Run it in one process only.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import logging
import time
from dataclasses import dataclass, field

from psycopg import OperationalError
from psycopg_pool import AsyncConnectionPool, PoolTimeout

from geo_api.db import set_actor
from geo_api.rerate import Rerater
from geo_api.settings import Settings
from layers.core.ingest import IngestKind, IngestResult, R, S, ingest_batch
from layers.core.periodic import cancel_task
from layers.demo_city.feed import City, DemoFeedSim, Incident, demo_marker
from layers.monitoring.ingest import SensorReadings
from layers.transport.ingest import TankerFixes

log = logging.getLogger("georisk.demo_feed")
ACTOR = "demo-feed"


@dataclass
class FeedReport:
    """What ticks wrote: rows stored, rows the pipeline refused, incidents planted."""

    readings: int = 0
    fixes: int = 0
    rejected: int = 0
    incidents: list[Incident] = field(default_factory=list)
    enterprises: set[int] = field(default_factory=set)  # re-rated

    def add(self, other: FeedReport) -> None:
        self.readings += other.readings
        self.fixes += other.fixes
        self.rejected += other.rejected
        self.incidents += other.incidents
        self.enterprises |= other.enterprises


class DemoFeed:
    """The feed as a background worker (``geo_api/workers.py``); ``tick(now)`` is one round,
    callable with any clock (the tests drive it without sleeping)."""

    def __init__(self, pool: AsyncConnectionPool, rerate: Rerater, settings: Settings) -> None:
        self.pool = pool
        self.rerate = rerate
        self.settings = settings.demo_feed
        self.config = self.settings.config(settings.monitoring, settings.tanker)
        self.readings_kind = SensorReadings(settings.monitoring.rules())
        self.tanker_rules = settings.tanker.rules()
        self.window = settings.lifecycle.window()
        self.sim: DemoFeedSim | None = None
        self.marker: str | None = None
        self.generate_cpu_s = 0.0  # thread CPU spent generating rows (the feed's own share)
        self._task: asyncio.Task[None] | None = None

    async def load(self, now: dt.datetime | None = None) -> DemoFeedSim | None:
        """Read the city and build the simulator; ``None`` (and a warning) when the database
        holds no demo city."""
        now = now or dt.datetime.now(dt.UTC)
        async with self.pool.connection() as conn:
            self.marker = await demo_marker(conn)
            if self.marker is None:
                log.warning(
                    "demo feed refused: this database holds no demo city (no georisk.demo_city "
                    "marker, no generated roads), so it writes nothing"
                )
                return None
            city = await City.load(conn)
        # A routing tree per lot (≈ 0.3 s of CPU at scale 1): off the event loop.
        self.sim = await asyncio.to_thread(DemoFeedSim.build, city, self.config, now)
        log.info(
            "demo feed on (%s): %d monitoring points, %d tankers, an incident every %.0f s "
            "on average",
            self.marker,
            int(self.sim.points.fed.sum()),
            len(self.sim.fleet.tankers),
            self.config.incident_mean_s,
        )
        return self.sim

    async def plant(self, kind: str, now: dt.datetime) -> Incident | None:
        """Plant one incident of ``kind`` at once (tests, demonstrations)."""
        assert self.sim is not None, "load() first"
        async with self.pool.connection() as conn:
            await set_actor(conn, ACTOR)
            incident = await self.sim.plant(conn, kind, now)
            if incident is not None and incident.kind == "major_danger" and incident.enterprise_id:
                await self.rerate(conn, [incident.enterprise_id])
        if incident is not None:
            log.info("demo feed incident: %s", incident.text)
        return incident

    async def tick(self, now: dt.datetime) -> FeedReport:
        """One round at ``now``: incidents, then the readings and fixes due by ``now``."""
        sim = self.sim
        assert sim is not None, "load() first"
        out = FeedReport()
        async with self.pool.connection() as conn:
            await set_actor(conn, ACTOR)
            out.incidents = await sim.incidents_due(conn, now)
            touched = {i.enterprise_id for i in out.incidents if i.kind == "major_danger"}
            touched |= set(await sim.advance_dangers(conn, now))
            ids = sorted(e for e in touched if e)
            if ids:  # an open major danger raises the dynamic colour at once
                await self.rerate(conn, ids)
                out.enterprises |= set(ids)
        for incident in out.incidents:
            log.info("demo feed incident: %s", incident.text)
        started = time.thread_time()
        readings = sim.readings(now)
        self.generate_cpu_s += time.thread_time() - started
        if readings is not None:
            result = await self._ingest(self.readings_kind, readings, now)
            out.readings, out.rejected = result.accepted, len(result.rejected)
            out.enterprises |= set(result.enterprises)
        started = time.thread_time()
        fixes = sim.fixes(now)
        self.generate_cpu_s += time.thread_time() - started
        if fixes is not None:
            result = await self._ingest(TankerFixes(self.tanker_rules, now), fixes, now)
            out.fixes, out.rejected = result.accepted, out.rejected + len(result.rejected)
            out.enterprises |= set(result.enterprises)
        return out

    async def _ingest(self, kind: IngestKind[R, S], rows: R, now: dt.datetime) -> IngestResult:
        """One batch the way the HTTP route runs it (geo_api/ingest.py): the pipeline on one
        connection, then the enterprises it names re-rated, then the commit. The ts window is
        judged at the tick's ``now``, the clock the feed's rows are made by (as the tanker
        kind's future filter is)."""
        async with self.pool.connection() as conn:
            await set_actor(conn, ACTOR)
            result = await ingest_batch(conn, kind, rows, self.window, now)
            if result.enterprises:
                await self.rerate(conn, result.enterprises)
        return result

    async def _run(self) -> None:
        tick_s, every = self.settings.tick_s, self.settings.log_interval_s
        while self.sim is None:
            try:
                if await self.load() is None:
                    return
            except (OperationalError, PoolTimeout) as exc:
                log.warning("demo feed waits for the database (%s)", exc)
                await asyncio.sleep(tick_s)
            except Exception:
                log.exception("demo feed could not start")
                return
        loop = asyncio.get_running_loop()
        window = FeedReport()
        since, cpu0, gen0 = loop.time(), time.process_time(), self.generate_cpu_s
        while True:
            due = loop.time() + tick_s
            try:
                window.add(await self.tick(dt.datetime.now(dt.UTC)))
            except (OperationalError, PoolTimeout) as exc:
                log.warning("demo feed tick skipped: database unavailable (%s)", exc)
            except Exception:
                log.exception("demo feed tick failed")
            if loop.time() - since >= every:
                wall, cpu = loop.time() - since, time.process_time() - cpu0
                log.info(
                    "demo feed: %s readings, %s fixes, %d rejected, %d incidents in %.0f s; "
                    "process CPU %.1f s (%.1f %% of one core), generating %.2f s",
                    f"{window.readings:,}",
                    f"{window.fixes:,}",
                    window.rejected,
                    len(window.incidents),
                    wall,
                    cpu,
                    100 * cpu / wall,
                    self.generate_cpu_s - gen0,
                )
                window = FeedReport()
                since, cpu0, gen0 = loop.time(), time.process_time(), self.generate_cpu_s
            await asyncio.sleep(max(0.0, due - loop.time()))

    async def start(self) -> None:
        if not log.hasHandlers():  # `georisk serve` configures only uvicorn's own loggers
            handler = logging.StreamHandler()
            handler.setFormatter(logging.Formatter("%(levelname)s:     %(message)s"))
            log.addHandler(handler)
        if log.level == logging.NOTSET:
            log.setLevel(logging.INFO)  # the per-minute line is what the operator asked for
        self._task = asyncio.create_task(self._run())

    async def stop(self) -> None:
        await cancel_task(self._task)
        self._task = None

    @property
    def running(self) -> bool:
        return self._task is not None and not self._task.done()
