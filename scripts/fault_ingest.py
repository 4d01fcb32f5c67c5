"""Crash evidence: SIGKILL the server mid-ingest, restart it, and prove by SQL that no
acknowledged fix was lost and no fix or alert was duplicated (issue 6, "Checked by").

    python -m scripts.fault_ingest [--vehicles 200] [--hours 4] [--batch-steps 10]

Uses its own database (``georisk_fault_w`` in the private cluster, dropped and re-created,
migrated and seeded with a small demo city), and a fleet of its own far from the demo city
(126.0 E, 34.0 N and east): every vehicle repeats "drive 5 min, park 12.5 min at a roadside",
so each stop is exactly one illegal-parking alert. A client streams the fleet's fixes in time
order (a batch = ``batch_steps`` 30-s steps of every vehicle) to ``POST /api/positions`` of a
``georisk serve`` subprocess, noting which batches got a 2xx. Once ``kill_after`` batches
were acknowledged the server is SIGKILLed while the next request is in flight, restarted, and
the client resends every unacknowledged batch plus every third acknowledged one.

Why this proves durability: the API answers only after the batch's transaction (fixes,
detector state, stops, alerts and webhook rows) committed, so an acknowledged batch must be
there after any crash, and a resent one must change nothing.
"""

from __future__ import annotations

import argparse
import datetime as dt
import math
import os
import random
import signal
import socket
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

ROOT = Path(__file__).resolve().parent.parent
LON0, LAT0 = 126.0, 34.0
STEP_S = 30
DRIVE_STEPS, PARK_STEPS = 10, 26  # 5 min at 40 km/h, then 12.5 min parked (> 10 min allowed)
M_PER_DEG_LAT = 110_574.0


@dataclass
class Fleet:
    """The fixes of the run, as batches in send order, and the alerts the rules must raise."""

    vehicle_ids: list[int]
    batches: list[list[dict[str, Any]]]
    expected_alerts: int


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

    def line(self) -> str:
        return (
            f"lost {self.lost}, duplicated fixes {self.duplicated_fixes},"
            f" duplicated alerts {self.duplicated_alerts}"
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
    return Fleet(ids, batches, expected_alerts=vehicles * cycles)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def start_server(url: str, port: int, log: Path) -> subprocess.Popen[bytes]:
    """``georisk serve`` as its own process (SIGKILL must not touch us), ready when /healthz is."""
    env = {
        **os.environ,
        "GEORISK_DATABASE_URL": url,
        "GEORISK_LOG_LEVEL": "warning",
        "GEORISK_WEBHOOK_POLL_INTERVAL_S": "1",
    }
    with log.open("ab") as out:
        proc = subprocess.Popen(
            [sys.executable, "-m", "geo_api.cli", "serve", "--port", str(port)],
            cwd=ROOT,
            env=env,
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"server exited with {proc.returncode}; see {log}")
        try:
            if httpx.get(f"http://127.0.0.1:{port}/healthz", timeout=2).status_code == 200:
                return proc
        except httpx.HTTPError:
            pass
        time.sleep(0.2)
    proc.kill()
    raise RuntimeError(f"server did not start; see {log}")


def _send(http: httpx.Client, batch: list[dict[str, Any]]) -> bool:
    try:
        return http.post("/api/positions", json=batch).is_success
    except httpx.HTTPError:
        return False


def stream_and_kill(
    base: str, fleet: Fleet, proc: subprocess.Popen[bytes], kill_after: int, rnd: random.Random
) -> Outcome:
    """Send batches in order until the server dies; it is SIGKILLed after ``kill_after`` acks,
    somewhere between 10 % and 110 % of a typical request's time into the next one, so the
    crash may land while parsing, in the rules, at the commit, or just after it."""
    out = Outcome()
    sending = threading.Event()
    state = {"current": -1}
    took: list[float] = []

    def sender() -> None:
        with httpx.Client(base_url=base, timeout=60) as http:
            for k, batch in enumerate(fleet.batches):
                state["current"] = k
                if k == kill_after:
                    sending.set()
                t0 = time.monotonic()
                if not _send(http, batch):
                    return
                took.append(time.monotonic() - t0)
                out.acked.add(k)

    thread = threading.Thread(target=sender, daemon=True)
    thread.start()
    if not sending.wait(timeout=600):
        raise RuntimeError("the client never reached the kill point")
    typical = sorted(took)[len(took) // 2]
    time.sleep(rnd.uniform(0.1, 1.1) * typical)
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    thread.join(timeout=60)
    out.in_flight = state["current"] if state["current"] not in out.acked else None
    return out


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


def run(
    url: str,
    *,
    vehicles: int,
    hours: float,
    batch_steps: int,
    kill_after: int,
    seed: int,
    log: Path,
) -> Outcome:
    """Fleet → stream → SIGKILL → restart → resend → SQL proof, on database ``url``."""
    rnd = random.Random(seed)
    with psycopg.connect(url, autocommit=True) as conn:
        fleet = make_fleet(conn, f"{seed}-{os.getpid()}", vehicles, hours, batch_steps)
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
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    out = stream_and_kill(base, fleet, start_server(url, port, log), kill_after, rnd)
    with psycopg.connect(url, autocommit=True) as conn:
        if out.in_flight is not None:
            missing = count_missing(conn, [fleet.batches[out.in_flight]])
            out.in_flight_committed = missing == 0
    proc = start_server(url, port, log)
    try:
        acked = sorted(out.acked)
        resend = [k for k in range(len(fleet.batches)) if k not in out.acked] + acked[::3]
        with httpx.Client(base_url=base, timeout=120) as http:
            for k in resend:
                if not _send(http, fleet.batches[k]):
                    raise RuntimeError(f"batch {k} failed after the restart")
        out.resent = len(resend)
    finally:
        proc.terminate()
        proc.wait(timeout=30)
    out.acked_before_kill = len(out.acked)
    out.acked |= set(resend)  # every resend got a 2xx (or we raised above)
    with psycopg.connect(url, autocommit=True) as conn:
        verify(conn, fleet, out)
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


def recreate_database(url: str) -> None:
    """Drop and create the database named in ``url`` (this script's own, never another)."""
    parts = urlsplit(url)
    name = parts.path.lstrip("/")
    admin = urlunsplit(parts._replace(path="/postgres"))
    with psycopg.connect(admin, autocommit=True) as conn:
        conn.execute(
            "SELECT pg_terminate_backend(pid) FROM pg_stat_activity"
            " WHERE datname = %s AND pid <> pg_backend_pid()",
            (name,),
        )
        conn.execute(f'DROP DATABASE IF EXISTS "{name}"')
        conn.execute(f'CREATE DATABASE "{name}"')


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--db-name", default="georisk_fault_w")
    parser.add_argument("--scale", type=float, default=0.01, help="demo city seeded first")
    parser.add_argument("--vehicles", type=int, default=200)
    parser.add_argument("--hours", type=float, default=4.0)
    parser.add_argument("--batch-steps", type=int, default=10, help="30-s steps per batch")
    parser.add_argument("--kill-after", type=int, default=None, help="default: half the batches")
    parser.add_argument("--seed", type=int, default=6)
    args = parser.parse_args()

    from geo_api.migrate import upgrade
    from geo_api.settings import DatabaseSettings
    from scripts.demo_city import seed_demo_city

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
        )
        errors = [ln for ln in log.read_text(errors="replace").splitlines() if "Traceback" in ln]
    fate = {None: "none in flight", True: "committed", False: "not committed"}
    print(
        f"vehicles {args.vehicles}, batches {len(out.acked)}, acknowledged before the kill"
        f" {out.acked_before_kill}, SIGKILL during batch {out.in_flight}"
        f" ({fate[out.in_flight_committed]} before the kill), resent {out.resent} batches,"
        f" {time.monotonic() - t0:.1f} s"
    )
    print(
        f"fixes acknowledged {out.fixes_acked}; alerts {out.alerts}"
        f" (planted stops {out.expected_alerts}), without their webhook row"
        f" {out.alerts_without_webhook}; server tracebacks {len(errors)}"
    )
    print(out.line())
    bad = out.lost + out.duplicated_fixes + out.duplicated_alerts + out.alerts_without_webhook
    sys.exit(1 if bad or out.alerts != out.expected_alerts else 0)


if __name__ == "__main__":
    main()
