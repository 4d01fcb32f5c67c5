"""Benchmark: what the living demo costs (layers/demo_city/feed.py, geo_api/demo_feed.py).

    python -m scripts.bench_demo_feed [--minutes 3] [--warmup 30] [--env K=V …]

Runs ``georisk serve`` with ``GEORISK_DEMO_FEED_ENABLED=true`` (plus any ``--env``) over the
configured database — the one ``make run`` uses, which must hold the demo city (``georisk seed
--scale 1 --if-empty``); the feed writes into it, as ``make run`` would. After ``--warmup``
seconds it measures for ``--minutes``: CPU of the server process (feed, change bus, tile purge,
hexagon refresher: everything the feed sets off) and of the private cluster's PostgreSQL
processes (psutil), and the rows stored in the window. Prints one table and the server's own
per-minute lines.
"""

from __future__ import annotations

import argparse
import datetime as dt
import os
import signal
import tempfile
import time
from pathlib import Path

import psutil
import psycopg

from geo_api.settings import DatabaseSettings
from scripts.benchkit import free_port, start_server


def _postgres(data_dir: Path) -> list[psutil.Process]:
    """The private cluster's postmaster and its children ([] with DATABASE_URL)."""
    pid_file = data_dir / "pg" / "postmaster.pid"
    if os.environ.get("DATABASE_URL") or not pid_file.exists():
        return []
    master = psutil.Process(int(pid_file.read_text().split()[0]))
    return [master, *master.children(recursive=True)]


def _cpu(procs: list[psutil.Process]) -> float:
    total = 0.0
    for p in procs:
        try:
            t = p.cpu_times()
            total += t.user + t.system
        except psutil.NoSuchProcess:
            pass
    return total


def _count(url: str, since: dt.datetime, until: dt.datetime) -> tuple[int, int, int, int]:
    with psycopg.connect(url) as conn:
        row = conn.execute(
            "SELECT (SELECT count(*) FROM readings WHERE ts > %(a)s AND ts <= %(b)s),"
            " (SELECT count(*) FROM positions WHERE ts > %(a)s AND ts <= %(b)s),"
            " (SELECT count(*) FROM alerts WHERE created_at > %(a)s AND created_at <= %(b)s),"
            " (SELECT count(*) FROM alarms WHERE raised_at > %(a)s AND raised_at <= %(b)s)",
            {"a": since, "b": until},
        ).fetchone()
    assert row is not None
    return int(row[0]), int(row[1]), int(row[2]), int(row[3])


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--minutes", type=float, default=3.0)
    ap.add_argument("--warmup", type=float, default=30.0)
    ap.add_argument("--env", action="append", default=[], help="extra K=V for the server")
    args = ap.parse_args()
    db = DatabaseSettings()
    url = db.resolved_url()
    env = {"GEORISK_DEMO_FEED_ENABLED": "true"}
    env.update(dict(kv.split("=", 1) for kv in args.env))
    log = Path(tempfile.mkdtemp(prefix="bench_demo_feed_")) / "server.log"
    proc = start_server(url, free_port(), log, env)
    try:
        server = psutil.Process(proc.pid)
        pg = _postgres(db.data_dir)
        time.sleep(args.warmup)
        pg = _postgres(db.data_dir) or pg  # backends opened since start
        t0, wall0 = dt.datetime.now(dt.UTC), time.monotonic()
        s0, p0 = _cpu([server]), _cpu(pg)
        time.sleep(args.minutes * 60)
        pg_now = _postgres(db.data_dir)
        s1, p1 = _cpu([server]), _cpu(pg_now)
        wall, t1 = time.monotonic() - wall0, dt.datetime.now(dt.UTC)
    finally:
        os.killpg(proc.pid, signal.SIGTERM)
        proc.wait(timeout=30)
    readings, fixes, alerts, alarms = _count(url, t0, t1)
    per_min = 60 / wall
    print(f"demo feed over {wall:.0f} s (after {args.warmup:.0f} s warm-up) {' '.join(args.env)}")
    print("| measure | per minute | share of one core |")
    print("|---|---|---|")
    print(f"| readings stored | {readings * per_min:,.0f} | |")
    print(f"| fixes stored | {fixes * per_min:,.0f} | |")
    print(f"| alerts / alarms raised | {alerts * per_min:.2f} / {alarms * per_min:.2f} | |")
    print(f"| server process CPU | {(s1 - s0) * per_min:.1f} s | {100 * (s1 - s0) / wall:.1f} % |")
    if pg_now:
        print(f"| PostgreSQL CPU | {(p1 - p0) * per_min:.1f} s | {100 * (p1 - p0) / wall:.1f} % |")
    print("server log:")
    for line in log.read_text().splitlines():
        if "demo feed" in line:
            print("  " + line)


if __name__ == "__main__":
    main()
