"""Crash evidence: SIGKILL the server mid-ingest, restart it, and prove by SQL that no
acknowledged fix or reading was lost and no fix, reading, alert or alarm was duplicated
(issue 6 and issue 8, "Checked by").

    python -m scripts.fault_ingest [--vehicles 200] [--points 200] [--hours 4] [--batch-steps 10]

Uses its own database (``georisk_fault_w`` in the private cluster, dropped and re-created,
migrated and seeded with a small demo city), and a fleet of its own far from the demo city
(126.0 E, 34.0 N and east): every vehicle repeats "drive 5 min, park 12.5 min at a roadside",
so each stop is exactly one illegal-parking alert. A client streams the fleet's fixes in time
order (a batch = ``batch_steps`` 30-s steps of every vehicle) to ``POST /api/positions`` of a
``georisk serve`` subprocess, noting which batches got a 2xx. Once ``kill_after`` batches
were acknowledged the server is SIGKILLed while the next request is in flight, restarted, and
the client resends every unacknowledged batch plus every third acknowledged one.

A second client streams sensor readings at the same time (``POST /api/readings``): ``points``
flammable-gas monitoring points of their own (level 1 at 25 % LEL, level 2 at 50 %), sampled
every 30 s with a normal value, except planted episodes — every 20 minutes, at a random phase
per point, 6 samples above level 1 (some above level 2) — so each episode is exactly one alarm
(debounce 3, cleared by the normal samples after it). Both clients wait for each other at the
kill point, so the SIGKILL lands while both have a request in flight; both resend the same way.
All requests carry an admin API key.

Why this proves durability: the API answers only after the batch's transaction (fixes,
detector state, stops, alerts and webhook rows) committed, so an acknowledged batch must be
there after any crash, and a resent one must change nothing. The same holds for a batch of
readings (readings, evaluator state and alarms commit in one transaction).
"""

from __future__ import annotations

import argparse
import datetime as dt
import math
import os
import random
import signal
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import httpx
import psycopg

from scripts import benchkit
from scripts.benchkit import free_port, recreate_database

ROOT = Path(__file__).resolve().parent.parent
LON0, LAT0 = 126.0, 34.0
STEP_S = 30
DRIVE_STEPS, PARK_STEPS = 10, 26  # 5 min at 40 km/h, then 12.5 min parked (> 10 min allowed)
M_PER_DEG_LAT = 110_574.0
#: The monitoring points' own area, far from the demo city and from the fleet.
POINT_LON0, POINT_LAT0 = 127.0, 35.0
LEVEL1, LEVEL2 = 25.0, 50.0  # % LEL
EPISODE_EVERY, EPISODE_STEPS = 40, 6  # a planted alarm every 20 min, 6 samples (3 min) high
CLEAR_STEPS = 3  # normal samples after an episode that clear it (the debounce)


@dataclass
class Fleet:
    """The fixes of the run, as batches in send order, and the alerts the rules must raise."""

    vehicle_ids: list[int]
    batches: list[list[dict[str, Any]]]
    expected_alerts: int
    start: dt.datetime = field(default_factory=lambda: dt.datetime.now(dt.UTC))
    steps: int = 0


@dataclass
class Sensors:
    """The readings of the run, as batches in send order, and the alarm episodes planted."""

    point_ids: list[int]
    batches: list[list[dict[str, Any]]]
    #: (point id, first high sample, first normal sample after it) per planted episode.
    episodes: list[tuple[int, str, str]]


@dataclass
class Outcome:
    #: Batches that got a 2xx at any time; "lost" counts their fixes that are not stored.
    acked: set[int] = field(default_factory=set)
    acked_before_kill: int = 0
    in_flight: int | None = None
    in_flight_committed: bool | None = None
    resent: int = 0
    lost: int = 0
    duplicated_fixes: int = 0
    duplicated_alerts: int = 0
    alerts: int = 0
    #: Alerts whose current revision has no outbox row: the two must commit together.
    alerts_without_webhook: int = 0
    expected_alerts: int = 0
    fixes_acked: int = 0
    # -- the readings client (all zero when it does not run) --
    readings_batches: set[int] = field(default_factory=set)
    readings_batches_before_kill: int = 0
    readings_in_flight: int | None = None
    readings_in_flight_committed: bool | None = None
    readings_resent: int = 0
    readings_acked: int = 0
    readings_lost: int = 0
    duplicated_readings: int = 0
    #: Readings sent that are not stored (after the resends every one must be).
    readings_missing: int = 0
    alarms: int = 0
    expected_alarms: int = 0
    #: Alarms beyond the first in a planted episode, plus alarms outside every episode.
    duplicated_alarms: int = 0
    #: Planted episodes that raised no alarm.
    missing_alarms: int = 0
    #: Which client had a request in flight when the SIGKILL landed.
    busy_at_kill: dict[str, bool] = field(default_factory=dict)

    def line(self) -> str:
        return (
            f"lost {self.lost}, duplicated fixes {self.duplicated_fixes},"
            f" duplicated alerts {self.duplicated_alerts}; readings lost {self.readings_lost},"
            f" duplicated readings {self.duplicated_readings},"
            f" duplicated alarms {self.duplicated_alarms}, missing alarms {self.missing_alarms}"
        )

    def report(self) -> list[str]:
        return [
            f"fixes: acknowledged {self.fixes_acked}, lost {self.lost},"
            f" duplicated {self.duplicated_fixes}",
            f"alerts: expected {self.expected_alerts}, found {self.alerts},"
            f" duplicated {self.duplicated_alerts}, without their webhook row"
            f" {self.alerts_without_webhook}",
            f"readings: acknowledged {self.readings_acked}, lost {self.readings_lost},"
            f" duplicated {self.duplicated_readings}, not stored after the resends"
            f" {self.readings_missing}",
            f"alarms: expected {self.expected_alarms}, found {self.alarms},"
            f" duplicated {self.duplicated_alarms}, missing {self.missing_alarms}",
        ]

    def failed(self) -> bool:
        bad = self.lost + self.duplicated_fixes + self.duplicated_alerts
        bad += self.alerts_without_webhook + self.readings_lost + self.duplicated_readings
        bad += self.readings_missing + self.duplicated_alarms + self.missing_alarms
        return (
            bool(bad) or self.alerts != self.expected_alerts or self.alarms != self.expected_alarms
        )


def make_fleet(
    conn: psycopg.Connection, tag: str, vehicles: int, hours: float, batch_steps: int
) -> Fleet:
    """Insert ``vehicles`` tankers and build their fixes, ending with every vehicle driving."""
    ids = []
    for i in range(vehicles):
        row = conn.execute(
            "INSERT INTO vehicles (plate, carrier) VALUES (%s, '故障测试危运') RETURNING id",
            (f"故障{tag}-{i}",),
        ).fetchone()
        assert row
        ids.append(int(row[0]))
    cycle = DRIVE_STEPS + PARK_STEPS
    cycles = max(1, int(hours * 3600 / STEP_S) // cycle)
    steps = cycles * cycle + DRIVE_STEPS  # drive off the last stop so every stop closes
    start = (dt.datetime.now(dt.UTC) - dt.timedelta(hours=hours + 1)).replace(microsecond=0)
    per_step_m = 40 / 3.6 * STEP_S
    tracks: list[list[dict[str, Any]]] = []
    for i, vid in enumerate(ids):
        lat = LAT0 + (i % 100) * 0.01 + (i // 100) * 0.005  # ≥ 550 m apart: no shared stops
        lon, m_per_deg = LON0, 111_320 * math.cos(math.radians(lat))
        track = []
        for s in range(steps):
            moving = s % cycle < DRIVE_STEPS
            if moving:
                lon += per_step_m / m_per_deg
            t = start + dt.timedelta(seconds=s * STEP_S)
            track.append(
                {
                    "vehicle_id": vid,
                    "ts": t.isoformat(),
                    "lon": round(lon, 7),
                    "lat": round(lat, 7),
                    "speed_kmh": 40.0 if moving else 0.0,
                }
            )
        tracks.append(track)
    batches = [
        [fix for track in tracks for fix in track[a : a + batch_steps]]
        for a in range(0, steps, batch_steps)
    ]
    return Fleet(ids, batches, expected_alerts=vehicles * cycles, start=start, steps=steps)


def make_sensors(
    conn: psycopg.Connection,
    tag: str,
    points: int,
    start: dt.datetime,
    steps: int,
    batch_steps: int,
    rnd: random.Random,
) -> Sensors:
    """Insert one enterprise, hazard source and ``points`` gas points; build their readings
    over the fleet's ``steps`` (same clock, same batching) with planted alarm episodes."""
    code = f"91330200FT{rnd.randrange(10**8):08d}"
    row = conn.execute(
        "INSERT INTO enterprises (credit_code, name, category, is_hazmat, geom) VALUES"
        " (%s, %s, 'storage', true, ST_SetSRID(ST_Point(%s, %s), 4326)) RETURNING id",
        (code, f"故障测试储罐{tag}", POINT_LON0, POINT_LAT0),
    ).fetchone()
    assert row
    src = conn.execute(
        "INSERT INTO hazard_sources (enterprise_id, code, unit_name, unit_kind, geom)"
        " SELECT id, 'FLT-HS', 'LPG tanks', 'storage',"
        " ST_Multi(ST_Buffer(geom::geography, 40)::geometry) FROM enterprises"
        " WHERE id = %s RETURNING id",
        (row[0],),
    ).fetchone()
    assert src
    ids: list[int] = []
    for i in range(points):
        r = conn.execute(
            "INSERT INTO monitoring_points (code, hazard_source_id, kind, unit, level1, level2,"
            " sampling_interval_s, geom) VALUES (%s, %s, 'gas_flammable', '%%LEL', %s, %s,"
            " 86400, ST_SetSRID(ST_Point(%s, %s), 4326)) RETURNING id",
            (
                f"FLT{tag}-{i}",
                src[0],
                LEVEL1,
                LEVEL2,
                POINT_LON0 + (i % 50) * 0.001,
                POINT_LAT0 + (i // 50) * 0.001,
            ),
        ).fetchone()
        assert r
        ids.append(int(r[0]))

    def ts(s: int) -> str:
        return (start + dt.timedelta(seconds=s * STEP_S)).isoformat()

    series: list[list[dict[str, Any]]] = []
    episodes: list[tuple[int, str, str]] = []
    for pid in ids:
        high: dict[int, float] = {}
        # Phases differ per point, so episodes straddle batch boundaries: the debounce state
        # carried from one batch to the next must survive the crash too.
        e = rnd.randrange(CLEAR_STEPS, EPISODE_EVERY)
        while e + EPISODE_STEPS + CLEAR_STEPS <= steps:
            level2 = rnd.random() < 0.3
            for j in range(EPISODE_STEPS):
                top = LEVEL2 if level2 and 1 <= j < EPISODE_STEPS - 1 else LEVEL1
                high[e + j] = round(top + rnd.uniform(3.0, 15.0), 3)
            episodes.append((pid, ts(e), ts(e + EPISODE_STEPS)))
            e += EPISODE_EVERY
        series.append(
            [
                {"point_id": pid, "ts": ts(s), "value": high.get(s, round(rnd.uniform(2, 12), 3))}
                for s in range(steps)
            ]
        )
    batches = [
        [r for track in series for r in track[a : a + batch_steps]]
        for a in range(0, steps, batch_steps)
    ]
    return Sensors(ids, batches, episodes)


def start_server(
    url: str, port: int, log: Path, extra_env: dict[str, str] | None = None
) -> subprocess.Popen[bytes]:
    """The shared ``georisk serve`` subprocess, with the sweep off: readings are replayed into
    the recent past and the clock-driven sweep would grey them."""
    env = {
        "GEORISK_LOG_LEVEL": "warning",
        "GEORISK_WEBHOOK_POLL_INTERVAL_S": "1",
        "GEORISK_MONITORING_SWEEP_ENABLED": "false",
        **(extra_env or {}),
    }
    return benchkit.start_server(url, port, log, env)


#: The last refusal seen by ``_send`` (status and body), for the error message.
LAST_REFUSAL: list[str] = []


def _send(http: httpx.Client, batch: list[dict[str, Any]], path: str = "/api/positions") -> bool:
    try:
        r = http.post(path, json=batch)
    except httpx.HTTPError:
        return False
    if not r.is_success:
        LAST_REFUSAL[:] = [f"{path} {r.status_code} {r.text[:300]}"]
    elif path == "/api/readings" and r.json().get("rejected"):
        LAST_REFUSAL[:] = [f"{path} rejected {r.json()['rejected'][:3]}"]
        return False
    return r.is_success


@dataclass
class Stream:
    """One client: its path, its batches, the batch it sends at the kill point, and its acks."""

    name: str
    path: str
    batches: list[list[dict[str, Any]]]
    kill_at: int
    acked: set[int] = field(default_factory=set)
    current: int = -1
    busy: bool = False
    took: list[float] = field(default_factory=list)


def stream_and_kill(
    base: str,
    streams: list[Stream],
    proc: subprocess.Popen[bytes],
    rnd: random.Random,
    headers: dict[str, str],
) -> dict[str, bool]:
    """Every client sends its batches in order until the server dies. The clients meet at their
    kill points (a barrier), so all of them have a request in flight; the server is SIGKILLed
    between 10 % and 110 % of the first client's typical request time later, so the crash may
    land while parsing, in the rules, at the commit, or just after it. Returns which clients
    had a request in flight at the kill."""
    barrier = threading.Barrier(len(streams) + 1)

    def sender(st: Stream) -> None:
        with httpx.Client(base_url=base, timeout=60, headers=headers) as http:
            for k, batch in enumerate(st.batches):
                if k == st.kill_at:
                    try:
                        barrier.wait(timeout=600)
                    except threading.BrokenBarrierError:
                        return
                st.current, st.busy = k, True
                t0 = time.monotonic()
                ok = _send(http, batch, st.path)
                st.busy = False
                if not ok:
                    if k < st.kill_at:
                        barrier.abort()
                    return
                st.took.append(time.monotonic() - t0)
                st.acked.add(k)

    threads = [threading.Thread(target=sender, args=(st,), daemon=True) for st in streams]
    for thread in threads:
        thread.start()
    try:
        barrier.wait(timeout=600)
    except threading.BrokenBarrierError:
        raise RuntimeError(f"a client failed before the kill point: {LAST_REFUSAL}") from None
    typical = sorted(streams[0].took)[len(streams[0].took) // 2]
    time.sleep(rnd.uniform(0.1, 1.1) * typical)
    busy = {st.name: st.busy for st in streams}
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    for thread in threads:
        thread.join(timeout=60)
    return busy


def _fix_keys(batches: list[list[dict[str, Any]]]) -> tuple[list[int], list[str]]:
    return [f["vehicle_id"] for b in batches for f in b], [f["ts"] for b in batches for f in b]


def count_missing(conn: psycopg.Connection, batches: list[list[dict[str, Any]]]) -> int:
    vids, tss = _fix_keys(batches)
    row = conn.execute(
        "SELECT count(*) FROM unnest(%s::int4[], %s::timestamptz[]) AS f(vehicle_id, ts)"
        " WHERE NOT EXISTS (SELECT 1 FROM positions p"
        " WHERE p.vehicle_id = f.vehicle_id AND p.ts = f.ts)",
        (vids, tss),
    ).fetchone()
    return int(row[0]) if row else 0


def count_missing_readings(conn: psycopg.Connection, batches: list[list[dict[str, Any]]]) -> int:
    pids = [r["point_id"] for b in batches for r in b]
    tss = [r["ts"] for b in batches for r in b]
    row = conn.execute(
        "SELECT count(*) FROM unnest(%s::int4[], %s::timestamptz[]) AS f(point_id, ts)"
        " WHERE NOT EXISTS (SELECT 1 FROM readings r"
        " WHERE r.point_id = f.point_id AND r.ts = f.ts)",
        (pids, tss),
    ).fetchone()
    return int(row[0]) if row else 0


def verify(conn: psycopg.Connection, fleet: Fleet, out: Outcome) -> None:
    """The three numbers, by SQL over what the database holds now."""
    ids = fleet.vehicle_ids
    out.fixes_acked = sum(len(fleet.batches[k]) for k in out.acked)
    out.lost = count_missing(conn, [fleet.batches[k] for k in sorted(out.acked)])
    row = conn.execute(
        "SELECT count(*) - count(DISTINCT (vehicle_id, ts)) FROM positions"
        " WHERE vehicle_id = ANY(%s)",
        (ids,),
    ).fetchone()
    out.duplicated_fixes = int(row[0]) if row else 0
    # One alert per (vehicle, rule, zone, episode): any two whose episodes overlap are one
    # episode counted twice.
    row = conn.execute(
        "SELECT count(*) FROM alerts a JOIN alerts b ON a.vehicle_id = b.vehicle_id"
        " AND a.rule = b.rule AND a.zone_id IS NOT DISTINCT FROM b.zone_id AND a.id < b.id"
        " AND a.episode_start <= coalesce(b.episode_end, b.episode_start)"
        " AND b.episode_start <= coalesce(a.episode_end, a.episode_start)"
        " WHERE a.vehicle_id = ANY(%s)",
        (ids,),
    ).fetchone()
    out.duplicated_alerts = int(row[0]) if row else 0
    row = conn.execute("SELECT count(*) FROM alerts WHERE vehicle_id = ANY(%s)", (ids,)).fetchone()
    out.alerts = int(row[0]) if row else 0
    out.expected_alerts = fleet.expected_alerts


def verify_readings(conn: psycopg.Connection, sensors: Sensors, out: Outcome) -> None:
    """Readings lost / doubled and alarms per planted episode, by SQL."""
    ids = sensors.point_ids
    acked = [sensors.batches[k] for k in sorted(out.readings_batches)]
    out.readings_acked = sum(len(b) for b in acked)
    out.readings_lost = count_missing_readings(conn, acked)
    out.readings_missing = count_missing_readings(conn, sensors.batches)
    row = conn.execute(
        "SELECT count(*) - count(DISTINCT (point_id, ts)) FROM readings WHERE point_id = ANY(%s)",
        (ids,),
    ).fetchone()
    out.duplicated_readings = int(row[0]) if row else 0
    row = conn.execute("SELECT count(*) FROM alarms WHERE point_id = ANY(%s)", (ids,)).fetchone()
    out.alarms = int(row[0]) if row else 0
    out.expected_alarms = len(sensors.episodes)
    # Alarms raised inside each planted episode (the high samples): exactly one each.
    row = conn.execute(
        "WITH e AS (SELECT * FROM unnest(%s::int4[], %s::timestamptz[], %s::timestamptz[])"
        " AS e(point_id, t0, t1)), n AS (SELECT e.point_id, e.t0, count(a.id) AS n FROM e"
        " LEFT JOIN alarms a ON a.point_id = e.point_id AND a.raised_at >= e.t0"
        " AND a.raised_at < e.t1 GROUP BY e.point_id, e.t0)"
        " SELECT coalesce(sum(greatest(n - 1, 0)), 0), count(*) FILTER (WHERE n = 0),"
        " coalesce(sum(n), 0) FROM n",
        (
            [e[0] for e in sensors.episodes],
            [e[1] for e in sensors.episodes],
            [e[2] for e in sensors.episodes],
        ),
    ).fetchone()
    assert row
    in_episodes = int(row[2])
    # Doubles inside an episode, plus any alarm raised outside every planted episode.
    out.duplicated_alarms = int(row[0]) + (out.alarms - in_episodes)
    out.missing_alarms = int(row[1])


def run(
    url: str,
    *,
    vehicles: int,
    hours: float,
    batch_steps: int,
    kill_after: int,
    seed: int,
    log: Path,
    points: int = 0,
) -> Outcome:
    """Fleet (+ sensors) → stream → SIGKILL → restart → resend → SQL proof, on ``url``."""
    from scripts.benchkit import key_headers, make_key

    rnd = random.Random(seed)
    tag = f"{seed}-{os.getpid()}-{time.monotonic_ns() % 100_000}"
    with psycopg.connect(url, autocommit=True) as conn:
        fleet = make_fleet(conn, tag, vehicles, hours, batch_steps)
        sensors = (
            make_sensors(conn, tag, points, fleet.start, fleet.steps, batch_steps, rnd)
            if points
            else None
        )
        # A subscriber that is never up: its rows stay queued, so every revision is countable.
        row = conn.execute(
            "INSERT INTO webhook_subscriptions (url, secret) VALUES (%s, 'fault-ingest-secret-0')"
            " RETURNING id",
            (f"http://127.0.0.1:{free_port()}/down",),
        ).fetchone()
        assert row
        sub_id = int(row[0])
    if not 0 < kill_after < len(fleet.batches) - 1:
        raise ValueError(f"kill_after must be within 1..{len(fleet.batches) - 2}")
    headers = key_headers(make_key(url, role="admin", name="fault"))
    streams = [Stream("fixes", "/api/positions", fleet.batches, kill_after)]
    if sensors is not None:
        streams.append(Stream("readings", "/api/readings", sensors.batches, kill_after))
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    out = Outcome()
    out.busy_at_kill = stream_and_kill(base, streams, start_server(url, port, log), rnd, headers)
    fixes = streams[0]
    out.acked = set(fixes.acked)
    out.in_flight = fixes.current if fixes.current not in fixes.acked else None
    with psycopg.connect(url, autocommit=True) as conn:
        if out.in_flight is not None:
            missing = count_missing(conn, [fleet.batches[out.in_flight]])
            out.in_flight_committed = missing == 0
        if sensors is not None:
            rd = streams[1]
            out.readings_batches = set(rd.acked)
            out.readings_in_flight = rd.current if rd.current not in rd.acked else None
            if out.readings_in_flight is not None:
                missing = count_missing_readings(conn, [sensors.batches[out.readings_in_flight]])
                out.readings_in_flight_committed = missing == 0
    proc = start_server(url, port, log)
    resends: dict[str, list[int]] = {}
    try:
        with httpx.Client(base_url=base, timeout=120, headers=headers) as http:
            for st in streams:
                acked = sorted(st.acked)
                resend = [k for k in range(len(st.batches)) if k not in st.acked] + acked[::3]
                for k in resend:
                    if not _send(http, st.batches[k], st.path):
                        raise RuntimeError(
                            f"{st.name} batch {k} failed after the restart: {LAST_REFUSAL}"
                        )
                resends[st.name] = resend
    finally:
        proc.terminate()
        proc.wait(timeout=30)
    out.acked_before_kill = len(out.acked)
    out.resent = len(resends["fixes"])
    out.acked |= set(resends["fixes"])  # every resend got a 2xx (or we raised above)
    if sensors is not None:
        out.readings_batches_before_kill = len(out.readings_batches)
        out.readings_resent = len(resends["readings"])
        out.readings_batches |= set(resends["readings"])
    with psycopg.connect(url, autocommit=True) as conn:
        verify(conn, fleet, out)
        if sensors is not None:
            verify_readings(conn, sensors, out)
        row = conn.execute(
            "SELECT count(*) FROM alerts a WHERE a.vehicle_id = ANY(%s) AND NOT EXISTS"
            " (SELECT 1 FROM webhook_outbox o WHERE o.subscription_id = %s"
            " AND o.alert_id = a.id AND o.revision = a.revision)",
            (fleet.vehicle_ids, sub_id),
        ).fetchone()
        out.alerts_without_webhook = int(row[0]) if row else 0
        conn.execute("UPDATE webhook_subscriptions SET active = false WHERE id = %s", (sub_id,))
        conn.execute(
            "UPDATE webhook_outbox SET next_attempt_at = NULL WHERE subscription_id = %s",
            (sub_id,),
        )
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--db-name", default="georisk_fault_w")
    parser.add_argument("--scale", type=float, default=0.01, help="demo city seeded first")
    parser.add_argument("--vehicles", type=int, default=200)
    parser.add_argument("--points", type=int, default=200, help="monitoring points; 0: no readings")
    parser.add_argument("--hours", type=float, default=4.0)
    parser.add_argument("--batch-steps", type=int, default=10, help="30-s steps per batch")
    parser.add_argument("--kill-after", type=int, default=None, help="default: half the batches")
    parser.add_argument("--seed", type=int, default=6)
    args = parser.parse_args()

    from geo_api.migrate import upgrade
    from geo_api.settings import DatabaseSettings
    from layers.demo_city import seed_demo_city

    base = urlsplit(DatabaseSettings().resolved_url())
    url = urlunsplit(base._replace(path="/" + args.db_name))
    print(f"database {args.db_name}: re-creating, migrating, seeding scale {args.scale} …")
    recreate_database(url)
    upgrade(url)
    with tempfile.TemporaryDirectory() as tmp:
        seed_demo_city(url, scale=args.scale, seed=args.seed, out_dir=Path(tmp), progress=False)
        steps = int(args.hours * 3600 / STEP_S)
        kill_after = args.kill_after or max(1, steps // args.batch_steps // 2)
        log = Path(tmp) / "server.log"
        t0 = time.monotonic()
        out = run(
            url,
            vehicles=args.vehicles,
            hours=args.hours,
            batch_steps=args.batch_steps,
            kill_after=kill_after,
            seed=args.seed,
            log=log,
            points=args.points,
        )
        errors = [ln for ln in log.read_text(errors="replace").splitlines() if "Traceback" in ln]
    fate = {None: "none in flight", True: "committed", False: "not committed"}
    busy = ", ".join(
        f"{k} {'in flight' if v else 'between requests'}" for k, v in out.busy_at_kill.items()
    )
    print(
        f"vehicles {args.vehicles}, points {args.points}, kill after batch {kill_after}"
        f" ({busy} at the kill), {time.monotonic() - t0:.1f} s"
    )
    print(
        f"fixes: {len(out.acked)} batches, acknowledged before the kill {out.acked_before_kill},"
        f" SIGKILL during batch {out.in_flight} ({fate[out.in_flight_committed]} before the"
        f" kill), resent {out.resent} batches"
    )
    if args.points:
        print(
            f"readings: {len(out.readings_batches)} batches, acknowledged before the kill"
            f" {out.readings_batches_before_kill}, SIGKILL during batch {out.readings_in_flight}"
            f" ({fate[out.readings_in_flight_committed]} before the kill),"
            f" resent {out.readings_resent} batches"
        )
    for line in out.report():
        print(line)
    print(f"server tracebacks {len(errors)}")
    print("OK" if not out.failed() else "FAILED: " + out.line())
    sys.exit(1 if out.failed() else 0)


if __name__ == "__main__":
    main()
