"""The living demo (layers/demo_city/feed.py, geo_api/demo_feed.py) against a database of its
own: a small seeded demo city the feed may write into without touching what other tests read.

Every test drives the worker's ``tick(now)`` with an explicit clock — never sleeping — and
checks what the real ingest pipeline stored and judged: readings, fixes, colours, alarms,
alerts, hidden dangers and enterprise colours.
"""

from __future__ import annotations

import asyncio
import datetime as dt
from collections.abc import Awaitable, Callable, Iterator
from pathlib import Path
from typing import Any, TypeVar

import numpy as np
import psycopg
import pytest

from geo_api.db import open_pool
from geo_api.demo_feed import DemoFeed, FeedReport
from geo_api.migrate import upgrade
from geo_api.rerate import Rerater
from geo_api.settings import (
    DatabaseSettings,
    DemoFeedSettings,
    MonitoringSettings,
    RiskSettings,
    Settings,
)
from layers.demo_city import seed_demo_city
from layers.demo_city.feed import FEED_MARK, City, DemoFeedSim, FeedConfig, demo_marker
from layers.monitoring.config import MonitoringRules
from layers.monitoring.live import sweep_stale
from scripts.benchkit import drop_database, recreate_database
from tests.conftest import TEST_SCALE, TEST_SEED, _test_url

T = TypeVar("T")
SECOND = dt.timedelta(seconds=1)


class Clock:
    """Simulated time shared by the module's tests, always moving forward (the feed continues
    from what earlier tests stored)."""

    def __init__(self) -> None:
        self.now = dt.datetime.now(dt.UTC).replace(microsecond=0)

    def take(self, seconds: float) -> dt.datetime:
        """The start of a window of ``seconds`` that no other test uses."""
        start = self.now
        self.now += dt.timedelta(seconds=seconds)
        return start


CLOCK = Clock()


def _url(suffix: str) -> str:
    base = _test_url()
    head, _, name = base.rpartition("/")
    return f"{head}/{name}_{suffix}"


@pytest.fixture(scope="module")
def feed_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("feed")


@pytest.fixture(scope="module")
def feed_url(feed_dir: Path) -> Iterator[str]:
    url = _url("feed")
    recreate_database(url)
    upgrade(url)
    seed_demo_city(url, scale=TEST_SCALE, seed=TEST_SEED, out_dir=feed_dir / "demo", progress=False)
    yield url
    drop_database(url)


def settings_for(
    url: str, data_dir: Path, risk: RiskSettings | None = None, **feed: Any
) -> Settings:
    return Settings(
        db=DatabaseSettings(url=url, data_dir=data_dir, pool_max=4),
        monitoring=MonitoringSettings(sweep_enabled=False),
        risk=risk or RiskSettings(),
        demo_feed=DemoFeedSettings(enabled=True, **feed),
    )


def with_feed(
    url: str,
    data_dir: Path,
    now: dt.datetime,
    body: Callable[[DemoFeed], Awaitable[T]],
    risk: RiskSettings | None = None,
    **feed: Any,
) -> T:
    """Run ``body`` with a loaded feed (its own pool and event loop)."""
    settings = settings_for(url, data_dir, risk, **feed)

    async def run() -> T:
        pool = open_pool(settings.db)
        await pool.open(wait=True, timeout=30)
        try:
            worker = DemoFeed(pool, Rerater(settings), settings)
            assert await worker.load(now) is not None
            return await body(worker)
        finally:
            await pool.close()

    return asyncio.run(run())


async def ticks(feed: DemoFeed, start: dt.datetime, seconds: float, step: float) -> FeedReport:
    total = FeedReport()
    for k in range(int(seconds // step) + 1):
        total.add(await feed.tick(start + dt.timedelta(seconds=k * step)))
    return total


def colours(db: psycopg.Connection, enterprise_id: int) -> tuple[str, str, list[str]]:
    row = db.execute(
        "SELECT inherent_color, dynamic_color, risk_reasons FROM enterprises WHERE id = %s",
        (enterprise_id,),
    ).fetchone()
    assert row is not None
    return row[0], row[1], [r["code"] for r in row[2] if r.get("raises")]


RAISED = {"blue": "yellow", "yellow": "orange", "orange": "red", "red": "red"}


@pytest.fixture()
def fdb(feed_url: str) -> Iterator[psycopg.Connection]:
    with psycopg.connect(feed_url, autocommit=True) as conn:
        yield conn


# -- settings and the marker ------------------------------------------------------------------
def test_settings_keep_the_feed_off_unless_asked(monkeypatch: pytest.MonkeyPatch) -> None:
    for var in ("GEORISK_DEMO_FEED_ENABLED", "GEORISK_DEMO_FEED_INCIDENT_MEAN_S"):
        monkeypatch.delenv(var, raising=False)
    assert Settings().demo_feed.enabled is False
    monkeypatch.setenv("GEORISK_DEMO_FEED_ENABLED", "1")  # what `make run` sets
    monkeypatch.setenv("GEORISK_DEMO_FEED_INCIDENT_MEAN_S", "90")
    feed = Settings().demo_feed
    assert feed.enabled is True
    config = feed.config(MonitoringSettings(stale_intervals=4), Settings().tanker)
    assert (config.incident_mean_s, config.stale_intervals, config.max_dwell_s) == (90, 4, 600)
    monkeypatch.setenv("GEORISK_DEMO_FEED_ENABLED", "0")  # make run DEMO_FEED=0
    assert Settings().demo_feed.enabled is False


def test_feed_refuses_a_database_without_the_demo_city(feed_url: str, tmp_path: Path) -> None:
    empty = _url("feed_empty")
    recreate_database(empty)
    try:
        upgrade(empty)
        settings = settings_for(empty, tmp_path)

        async def run() -> tuple[str | None, Any, int]:
            pool = open_pool(settings.db)
            await pool.open(wait=True, timeout=30)
            try:
                worker = DemoFeed(pool, Rerater(settings), settings)
                async with pool.connection() as conn:
                    marker = await demo_marker(conn)
                return marker, await worker.load(), worker.running
            finally:
                await pool.close()

        marker, sim, running = asyncio.run(run())
        assert (marker, sim, running) == (None, None, False)
    finally:
        drop_database(empty)

    async def seeded() -> str | None:
        async with await psycopg.AsyncConnection.connect(feed_url) as conn:
            return await demo_marker(conn)

    assert f"seed={TEST_SEED} scale={TEST_SCALE:g}" in (asyncio.run(seeded()) or "")
    # A city seeded before the marker existed is known by the generator's roads.
    name = feed_url.rsplit("/", 1)[1]
    with psycopg.connect(feed_url, autocommit=True) as conn:
        conn.execute(f'ALTER DATABASE "{name}" RESET georisk.demo_city')
        try:
            assert "generated road network" in (asyncio.run(seeded()) or "")
            conn.execute("UPDATE roads SET name = 'elsewhere'")
            assert asyncio.run(seeded()) is None
        finally:
            conn.execute(f"ALTER DATABASE \"{name}\" SET georisk.demo_city = 'seed={TEST_SEED}'")


# -- readings and fixes -----------------------------------------------------------------------
def test_ticks_store_readings_at_each_points_interval_and_fixes_every_30_s(
    feed_url: str, feed_dir: Path, fdb: psycopg.Connection
) -> None:
    start = CLOCK.take(70)
    alarms_before = fdb.execute("SELECT count(*) FROM alarms").fetchone()
    fdb.execute(
        "CREATE TEMP TABLE last_before AS SELECT point_id, last_ts, level FROM monitoring_state"
    )

    async def body(feed: DemoFeed) -> FeedReport:
        return await ticks(feed, start, 60, 5)

    report = with_feed(feed_url, feed_dir, start, body, incident_mean_s=0)
    assert report.rejected == 0 and report.incidents == []
    window = {"a": start - 60 * SECOND, "b": start + 60 * SECOND}
    rows = fdb.execute(  # what the feed stored: every reading after each point's last one
        "SELECT mp.id, mp.sampling_interval_s, count(r.ts), min(r.ts), max(r.ts), b.last_ts"
        " FROM monitoring_points mp JOIN last_before b ON b.point_id = mp.id"
        " LEFT JOIN readings r ON r.point_id = mp.id AND r.ts > b.last_ts"
        " GROUP BY mp.id, b.last_ts ORDER BY mp.id",
    ).fetchall()
    assert sum(r[2] for r in rows) == report.readings
    for pid, interval, n, first, last, previous in rows:
        # every point at its own interval, the first sample within one interval of the start
        # (or one interval after the point's previous reading, if that is later)
        step = interval * SECOND
        if previous + step > start + 60 * SECOND:  # its previous reading is recent: not due yet
            assert n == 0, pid
            continue
        assert first is not None and start - step < first <= max(start, previous + step), pid
        assert n == (last - first).total_seconds() // interval + 1, pid  # no gap, no extra
        assert last > start + (60 - interval) * SECOND - SECOND, pid
    # normal values: nothing alarms; every point not in alarm before is blue (the seed's
    # planted alarms clear after three normal samples: a minute or more for slow points)
    assert fdb.execute("SELECT count(*) FROM alarms").fetchone() == alarms_before
    calm = fdb.execute(
        "SELECT mp.live_color, count(*) FROM monitoring_points mp"
        " JOIN last_before b ON b.point_id = mp.id WHERE b.level = 0 GROUP BY 1"
    ).fetchall()
    assert len(calm) == 1 and calm[0][0] == "blue" and calm[0][1] >= len(rows) - 10

    fixes = fdb.execute(
        "SELECT vehicle_id, array_agg(extract(epoch FROM ts)::float8 ORDER BY ts),"
        " max(speed_kmh) FROM positions WHERE ts > %(a)s AND ts <= %(b)s GROUP BY 1",
        window,
    ).fetchall()
    # The whole fleet reports, but for the vehicles under a waybill on the road (their day
    # follows a corridor the feed does not simulate).
    vehicles = fdb.execute(
        "SELECT count(*) FROM vehicles v WHERE NOT EXISTS (SELECT 1 FROM waybills w"
        " WHERE w.vehicle_id = v.id AND w.state IN ('loading', 'in_transit'))"
    ).fetchone()
    assert vehicles is not None and len(fixes) == vehicles[0] > 0
    assert sum(len(f[1]) for f in fixes) == report.fixes
    for _vid, times, top in fixes:
        assert len(times) >= 2 and set(np.diff(times).round(3).tolist()) <= {30.0}
        assert top < 80
    # moving tankers are on the road network (GNSS noise of a few metres)
    off_road = fdb.execute(
        "SELECT count(*) FROM positions p WHERE p.ts > %(a)s AND p.ts <= %(b)s"
        " AND p.speed_kmh > 25 AND NOT EXISTS (SELECT 1 FROM roads r WHERE ST_DWithin("
        " r.geom::geography, ST_SetSRID(ST_MakePoint(p.lon, p.lat), 4326)::geography, 20))",
        window,
    ).fetchone()
    assert off_road == (0,)


def test_points_that_report_do_not_go_grey(
    feed_url: str, feed_dir: Path, fdb: psycopg.Connection
) -> None:
    CLOCK.take(600)  # ten silent minutes: every point is overdue
    start = CLOCK.take(40)
    rules = MonitoringRules()
    config = Rerater(settings_for(feed_url, feed_dir)).config()

    async def sweep(at: dt.datetime) -> list[int]:
        async with await psycopg.AsyncConnection.connect(feed_url) as conn:
            return await sweep_stale(conn, rules, config, at)

    went_grey = asyncio.run(sweep(start))
    n_points = fdb.execute("SELECT count(*) FROM monitoring_points").fetchone()
    assert n_points is not None and len(went_grey) == n_points[0]  # the control: all silent
    before = dict(fdb.execute("SELECT point_id, last_ts FROM monitoring_state").fetchall())

    async def body(feed: DemoFeed) -> FeedReport:
        return await ticks(feed, start, 30, 5)

    with_feed(feed_url, feed_dir, start, body, incident_mean_s=0)
    after = fdb.execute("SELECT point_id, last_ts, stale FROM monitoring_state").fetchall()
    assert all(last > before[pid] and not stale for pid, last, stale in after)
    assert asyncio.run(sweep(start + 31 * SECOND)) == []
    grey = fdb.execute("SELECT count(*) FROM monitoring_points WHERE live_color = 'grey'")
    assert grey.fetchone() == (0,)


def test_a_restart_neither_jumps_nor_makes_stops(
    feed_url: str, feed_dir: Path, fdb: psycopg.Connection
) -> None:
    """Tankers on the road when the feed stops drive on through a short silence (a fix near the
    last one would make a stop of the whole silence); none is refused as a jump."""
    start = CLOCK.take(3600)
    first_run = 1800
    silence = 200  # longer than the 180 s that make a stop

    async def before(feed: DemoFeed) -> list[int]:
        await ticks(feed, start, first_run, 30)
        end = (start + first_run * SECOND).timestamp()
        # On the road when the feed stops and still on it when it resumes (one that reaches
        # its lot during the silence rightly moves less than the threshold).
        fleet = feed.sim.fleet.tankers if feed.sim else []
        return [v.id for v in fleet if v.driving_at(end) and v.driving_at(end + silence)]

    driving = with_feed(feed_url, feed_dir, start, before, incident_mean_s=0)
    assert driving, "no tanker on the road when the feed stopped"
    again = start + (first_run + silence) * SECOND

    async def after(feed: DemoFeed) -> FeedReport:
        return await ticks(feed, again, 600, 30)

    report = with_feed(feed_url, feed_dir, again, after, incident_mean_s=0)
    assert report.rejected == 0
    gaps = fdb.execute(
        "SELECT vehicle_id, ST_Distance(ST_SetSRID(ST_MakePoint(a.lon, a.lat), 4326)::geography,"
        " ST_SetSRID(ST_MakePoint(b.lon, b.lat), 4326)::geography)"
        " FROM unnest(%(v)s::int4[]) AS u(vehicle_id)"
        " CROSS JOIN LATERAL (SELECT lon, lat FROM positions p WHERE p.vehicle_id = u.vehicle_id"
        "   AND p.ts <= %(stop)s ORDER BY ts DESC LIMIT 1) a"
        " CROSS JOIN LATERAL (SELECT lon, lat FROM positions p WHERE p.vehicle_id = u.vehicle_id"
        "   AND p.ts > %(stop)s ORDER BY ts LIMIT 1) b",
        {"v": driving, "stop": start + first_run * SECOND},
    ).fetchall()
    assert len(gaps) == len(driving)
    assert all(metres > 250 for _, metres in gaps), gaps  # it drove on meanwhile
    roadside = fdb.execute(
        "SELECT count(*) FROM stops WHERE start_ts >= %s AND zone_id IS NULL", (start,)
    ).fetchone()
    alerts = fdb.execute(
        "SELECT count(*) FROM alerts WHERE episode_start >= %s", (start,)
    ).fetchone()
    assert (roadside, alerts) == ((0,), (0,))


# -- incidents --------------------------------------------------------------------------------
def test_gas_alarm_pair_turns_two_points_red_and_raises_the_enterprise(
    feed_url: str, feed_dir: Path, fdb: psycopg.Connection
) -> None:
    duration = 240
    start = CLOCK.take(duration + 90)

    async def body(feed: DemoFeed) -> tuple[Any, Any, Any]:
        incident = await feed.plant("gas_alarm_pair", start)
        assert incident is not None and incident.enterprise_id is not None
        before = colours(fdb, incident.enterprise_id)
        await ticks(feed, start, 120, 5)
        during = colours(fdb, incident.enterprise_id), _points(fdb, incident.point_ids)
        await ticks(feed, start + 125 * SECOND, duration - 125 + 80, 5)
        after = colours(fdb, incident.enterprise_id), _points(fdb, incident.point_ids)
        return incident, before, (during, after)

    incident, before, (during, after) = with_feed(
        feed_url, feed_dir, start, body, incident_mean_s=0, incident_duration_s=duration
    )
    inherent, dynamic, _ = before
    assert dynamic == inherent != "red"  # chosen where the map shows the change
    (_, d_dyn, d_codes), d_points = during
    assert d_dyn == RAISED[inherent] and "red_monitoring_point" in d_codes
    ids = sorted(incident.point_ids)
    assert d_points == [(ids[0], "red", 2, True), (ids[1], "red", 2, True)]
    # the incident ends: values return to normal, the alarms clear, the colour comes back
    (_, a_dyn, _), a_points = after
    assert a_dyn == inherent
    assert [p[1:] for p in a_points] == [("blue", 2, False), ("blue", 2, False)]


def _points(db: psycopg.Connection, ids: list[int]) -> list[tuple[int, str, int, bool]]:
    """(id, colour, level of its latest alarm, whether that alarm is open) per point."""
    return [
        (int(r[0]), r[1], int(r[2]), bool(r[3]))
        for r in db.execute(
            "SELECT mp.id, mp.live_color, a.level, a.cleared_at IS NULL FROM monitoring_points mp"
            " JOIN LATERAL (SELECT level, cleared_at FROM alarms WHERE point_id = mp.id"
            " ORDER BY raised_at DESC LIMIT 1) a ON true WHERE mp.id = ANY(%s) ORDER BY mp.id",
            (ids,),
        ).fetchall()
    ]


def test_roadside_stop_raises_an_illegal_parking_alert(
    feed_url: str, feed_dir: Path, fdb: psycopg.Connection
) -> None:
    span = 3 * 3600
    start = CLOCK.take(span)
    # Parking alerts count for an hour here, so the seed's (yesterday's) no longer raise the
    # carriers and the feed's own shows on its carrier's colour.
    risk = RiskSettings(parking_window_hours=1)

    async def body(feed: DemoFeed) -> tuple[Any, Any, dt.datetime]:
        async with feed.pool.connection() as conn:
            await feed.rerate(conn, None)
        now = start
        incident = None
        while incident is None:  # until a tanker is on the road
            await feed.tick(now)
            incident = await feed.plant("roadside_stop", now)
            now += 30 * SECOND
            assert now < start + span * SECOND / 2, "no tanker ever drove"
        assert incident.enterprise_id is not None
        before = colours(fdb, incident.enterprise_id)
        await ticks(feed, now, 2400, 30)
        return incident, before, now

    incident, before, planted = with_feed(feed_url, feed_dir, start, body, risk, incident_mean_s=0)
    alerts = fdb.execute(
        "SELECT rule, (details->>'allowed_dwell_s')::float8, (details->>'duration_s')::float8,"
        " zone_id, ST_Distance(geom::geography, ST_SetSRID(ST_MakePoint(%s, %s), 4326)::geography)"
        " FROM alerts WHERE vehicle_id = %s AND episode_start >= %s",
        (*incident.where, incident.vehicle_id, planted - 30 * SECOND),
    ).fetchall()
    assert len(alerts) == 1
    rule, allowed, duration, zone, metres = alerts[0]
    assert (rule, allowed, zone) == ("illegal_parking", 600.0, None)
    assert 840 - 60 <= duration <= 1200 + 60  # 1.4–2× the allowed dwell, within a fix or two
    assert metres < 20  # where the incident said (GNSS noise of a few metres)
    inherent, dynamic, _ = before
    assert dynamic == inherent != "red"  # a calm carrier was chosen …
    _, raised, codes = colours(fdb, incident.enterprise_id)
    assert raised == RAISED[inherent] and "tanker_illegal_parking" in codes  # … and rises
    # no other alert came out of the feed's driving (stops only in lots, speeds within limits,
    # and no vehicle under a waybill on the road: the feed leaves those to their recorded day)
    others = fdb.execute(
        "SELECT count(*) FROM alerts WHERE episode_start >= %s AND vehicle_id <> %s",
        (start, incident.vehicle_id),
    ).fetchone()
    assert others == (0,)


def test_major_danger_raises_at_once_and_is_rectified_by_the_feed(
    feed_url: str, feed_dir: Path, fdb: psycopg.Connection
) -> None:
    life = 600
    start = CLOCK.take(life + 10)

    async def body(feed: DemoFeed) -> tuple[Any, ...]:
        incident = await feed.plant("major_danger", start)
        assert incident is not None and incident.enterprise_id is not None
        raised = colours(fdb, incident.enterprise_id)
        danger = lambda: fdb.execute(  # noqa: E731
            "SELECT title, is_major, status, enterprise_id FROM hidden_dangers WHERE id = %s",
            (incident.danger_id,),
        ).fetchone()
        filed = danger()
        await feed.tick(start + (life / 2 + 1) * SECOND)
        halfway = danger()
        await feed.tick(start + (life + 1) * SECOND)
        return incident, raised, filed, halfway, danger(), colours(fdb, incident.enterprise_id)

    incident, raised, filed, halfway, done, after = with_feed(
        feed_url, feed_dir, start, body, incident_mean_s=0, danger_lifetime_s=life
    )
    inherent, dynamic, codes = raised
    assert inherent != "red" and dynamic == RAISED[inherent]
    assert any("danger" in c for c in codes)
    assert filed[0].endswith(FEED_MARK)
    assert filed[1:] == (True, "found", incident.enterprise_id)
    assert halfway[2] == "rectifying" and done[2] == "rectified"
    assert after[1] == inherent


def test_incidents_come_on_a_seeded_clock(
    feed_url: str, feed_dir: Path, fdb: psycopg.Connection
) -> None:
    """On average one per ``incident_mean_s``, of every kind."""
    start = CLOCK.take(3600)

    async def body(feed: DemoFeed) -> list[tuple[str, int]]:
        report = await ticks(feed, start, 3540, 30)
        return [(i.kind, i.at_us) for i in report.incidents]

    planted = with_feed(feed_url, feed_dir, start, body, incident_mean_s=300)
    kinds = [k for k, _ in planted]
    assert 5 <= len(kinds) <= 24  # a Poisson count with mean 12 (this seed: see below)
    assert set(kinds) == {"gas_alarm_pair", "roadside_stop", "major_danger"}


def test_generation_is_deterministic_for_a_seed(feed_url: str) -> None:
    async def city() -> City:
        async with await psycopg.AsyncConnection.connect(feed_url) as conn:
            return await City.load(conn)

    c = asyncio.run(city())
    now = CLOCK.now + dt.timedelta(days=1)

    def run(seed: int) -> tuple[Any, ...]:
        sim = DemoFeedSim.build(c, FeedConfig(seed=seed), now)
        out: list[Any] = [sim.next_incident_us]
        for k in range(0, 120, 5):
            r = sim.readings(now + k * SECOND)
            f = sim.fixes(now + k * SECOND)
            out += [
                r.value.tolist() if r else None,
                (f.lon.tolist(), f.speed.tolist()) if f else None,
            ]
        return tuple(out)

    assert run(1) == run(1)
    assert run(1) != run(2)
