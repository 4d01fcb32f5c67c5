"""Benchmark: monitoring readings ingest with alarm evaluation, and alarm → enterprise colour.

    python -m scripts.bench_readings [--runs 3] [--clients 4] [--batch 5000] [--samples 60]

Uses its own database (``georisk_bench_7`` in the private cluster, dropped and re-created,
seeded with the demo city at scale 1 unless ``--skip-seed``). Each run sends ``--samples``
readings of every monitoring point through a real uvicorn server from concurrent httpx
clients, each owning a share of the points (a gateway shards sensors the same way), in time
order. Values are noisy and normal, except for planted pairs: two points of one hazard source
climb past level 2 together, which turns both red and raises their enterprise's dynamic
colour. Latency: from sending the batch holding the later of the pair's confirming samples
(the N-th above level 2) to the ``enterprises`` NOTIFY naming that enterprise. The stale sweep
is off in the server (readings are replayed into the recent past, so it would grey them).
Prints one table, with peak RSS.
"""

from __future__ import annotations

import argparse
import asyncio
import datetime as dt
import os
import resource
import statistics
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import httpx
import numpy as np
import psycopg

from layers.monitoring.config import MonitoringRules
from layers.monitoring.thresholds import set_points
from scripts.benchkit import (
    Batch,
    NotifyListener,
    bench_url,
    key_headers,
    make_key,
    peak_rss_kb,
    post_all,
)

BENCH_DB = "georisk_bench_7"
STEP_S = 10  # seconds between a point's samples in the replay


def setup(url: str, out: Path) -> float:
    """Drop, migrate and seed the bench database; returns the seed's seconds."""
    from geo_api.migrate import upgrade
    from layers.demo_city import seed_demo_city

    admin, name = url.rsplit("/", 1)
    with psycopg.connect(admin + "/postgres", autocommit=True) as c:
        c.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        c.execute(f'CREATE DATABASE "{name}"')
    upgrade(url)
    t0 = time.perf_counter()
    day = dt.date.today() - dt.timedelta(days=5)
    seed_demo_city(url, scale=1.0, out_dir=out, progress=False, day=day)
    return time.perf_counter() - t0


@dataclass
class Points:
    ids: np.ndarray
    normal: np.ndarray  # a safe centre value per point
    spread: np.ndarray  # noise amplitude per point
    high2: np.ndarray  # level-2 / HH set point (NaN = none)
    source: np.ndarray
    enterprise: np.ndarray


def load_points(url: str) -> Points:
    with psycopg.connect(url) as c:
        rows = c.execute(
            "SELECT mp.id, mp.kind, mp.level1, mp.level2, mp.limit_h, mp.limit_hh, mp.limit_l,"
            " mp.limit_ll, coalesce(mp.hazard_source_id, 0), coalesce(h.enterprise_id, 0)"
            " FROM monitoring_points mp LEFT JOIN hazard_sources h ON h.id = mp.hazard_source_id"
            " ORDER BY mp.id"
        ).fetchall()
    sp = np.array([set_points(*r[1:8]) for r in rows], dtype=np.float64)
    h1, h2, l1 = sp[:, 0], sp[:, 1], sp[:, 2]
    lo = np.where(np.isnan(l1), np.where(np.isnan(h1), 0.0, 0.0), l1)
    hi = np.where(np.isnan(h1), lo + 100.0, h1)
    normal = np.where(np.isnan(l1), np.minimum(hi * 0.2, hi - 1), (lo + hi) / 2)
    spread = np.maximum(np.abs(hi - lo) * 0.05, 0.01)
    return Points(
        np.array([r[0] for r in rows], dtype=np.int64),
        normal,
        spread,
        h2,
        np.array([r[8] for r in rows], dtype=np.int64),
        np.array([r[9] for r in rows], dtype=np.int64),
    )


def plant_pairs(url: str, pts: Points, count: int, runs: int) -> list[list[tuple[int, int, int]]]:
    """Per run, ``count`` (enterprise, point index, point index) pairs with a level-2 set
    point, from enterprises whose dynamic colour is not red, no enterprise used twice."""
    with psycopg.connect(url) as c:
        red = {r[0] for r in c.execute("SELECT id FROM enterprises WHERE dynamic_color = 'red'")}
    seen: set[int] = set()
    pairs: list[tuple[int, int, int]] = []
    by_source: dict[int, list[int]] = {}
    for i in np.flatnonzero(~np.isnan(pts.high2) & (pts.source > 0)).tolist():
        by_source.setdefault(int(pts.source[i]), []).append(i)
    for members in by_source.values():
        e = int(pts.enterprise[members[0]])
        if len(members) >= 2 and e not in red and e not in seen:
            seen.add(e)
            pairs.append((e, members[0], members[1]))
    return [pairs[r * count : (r + 1) * count] for r in range(runs)]


def make_batches(
    pts: Points,
    base: dt.datetime,
    samples: int,
    clients: int,
    size: int,
    pairs: list[tuple[int, int, int]],
    rng: np.random.Generator,
) -> list[list[Batch]]:
    """Per client (point id mod clients), batches of about ``size`` readings in time order."""
    n = len(pts.ids)
    k = np.tile(np.arange(samples), n)
    p = np.repeat(np.arange(n), samples)
    v = pts.normal[p] + rng.uniform(-1, 1, len(p)) * pts.spread[p]
    start = samples // 2
    confirm = start + MonitoringRules().debounce_n - 1
    planted = np.zeros(n, bool)
    for _, a, b in pairs:
        planted[[a, b]] = True
    hot = planted[p] & (k >= start)
    v[hot] = pts.high2[p[hot]] * 1.2 + 1 + rng.uniform(0, 1, int(hot.sum()))
    base_us = int(base.timestamp() * 1e6)
    t = base_us + k.astype(np.int64) * STEP_S * 1_000_000 + p % 1000 * 1000
    ts = np.datetime_as_string(t.astype("datetime64[us]"), unit="ms")
    order = np.lexsort((p, t))
    out: list[list[Batch]] = [[] for _ in range(clients)]
    for c in range(clients):
        idx = order[pts.ids[p[order]] % clients == c]
        for a0 in range(0, len(idx), size):
            part = idx[a0 : a0 + size].tolist()
            rows = [
                f'{{"point_id":{pts.ids[p[i]]},"ts":"{ts[i]}Z","value":{v[i]:.4f}}}' for i in part
            ]
            raises = [int(p[i]) for i in part if planted[p[i]] and k[i] == confirm]
            out[c].append(Batch(("[" + ",".join(rows) + "]").encode(), raises))
    return out


def clear_live_state(url: str, start: dt.datetime) -> None:
    """The seed leaves 24 h of readings up to the moment it ran, and each point's evaluator
    state at its last one; the benchmark replays into that same recent past, so its readings
    would be late — stored but never judged — and nothing would be timed. Start the points
    afresh: drop the seeded readings from ``start`` on and every point's evaluator state."""
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute("DELETE FROM readings WHERE ts >= %s", (start,))
        conn.execute("DELETE FROM monitoring_state")


@dataclass
class ReadingsRun:
    points: int
    rates: list[float]  # readings/s of each run
    latencies: list[float]  # alarm reading → enterprise NOTIFY, seconds
    rss_server_kb: int  # peak RSS of the server, all workers


def measure_readings(
    url: str,
    *,
    runs: int = 3,
    clients: int = 4,
    batch: int = 5000,
    samples: int = 60,
    pairs: int = 20,
    workers: int = 2,
    port: int = 8770,
) -> ReadingsRun:
    """``runs`` replays of ``samples`` readings of every point of the seeded city at ``url``
    through a real server (scripts/bench_scale.py calls it too)."""
    pts = load_points(url)
    plan = plant_pairs(url, pts, pairs, runs)
    rng = np.random.default_rng(7)
    headers = key_headers(make_key(url, name="bench_readings"))
    env = {
        **os.environ,
        "GEORISK_DATABASE_URL": url,
        "GEORISK_DB_POOL_MAX": "8",
        "GEORISK_MONITORING_SWEEP_ENABLED": "false",
    }
    cmd = [sys.executable, "-m", "uvicorn", "geo_api.app:create_app", "--factory"]
    cmd += ["--port", str(port), "--workers", str(workers), "--log-level", "warning"]
    server = subprocess.Popen(cmd, env=env)
    base = f"http://127.0.0.1:{port}"
    span = dt.timedelta(seconds=samples * STEP_S + 60)
    start = dt.datetime.now(dt.UTC).replace(microsecond=0) - span * (runs + 1)
    clear_live_state(url, start)
    rates: list[float] = []
    lat: list[float] = []
    try:
        for _ in range(150):
            try:
                if httpx.get(base + "/healthz", timeout=1).status_code == 200:
                    break
            except httpx.HTTPError:
                time.sleep(0.2)
        for run in range(runs):
            planted = plan[run]
            work = make_batches(pts, start + span * run, samples, clients, batch, planted, rng)
            listener = NotifyListener(url, "enterprises")
            listener.start()
            listener.ready.wait(10)
            sent: dict[int, float] = {}
            counts = [0, 0]
            t0 = time.perf_counter()
            asyncio.run(post_all(base, "/api/readings", work, sent, counts, headers))
            elapsed = time.perf_counter() - t0
            time.sleep(2.5)
            listener.stop.set()
            listener.join()
            rates.append(counts[0] / elapsed)
            timed = 0
            for e, a, b in planted:
                if a in sent and b in sent and e in listener.first:
                    lat.append(listener.first[e] - max(sent[a], sent[b]))
                    timed += 1
            print(
                f"run {run + 1}: {counts[0]:,} readings in {elapsed:.1f} s = {rates[-1]:,.0f}/s"
                f" (not stored: {counts[1]}), {timed}/{len(planted)} planted pairs timed"
            )
        rss_server = peak_rss_kb(server.pid)
    finally:
        server.terminate()
        server.wait(30)
    return ReadingsRun(len(pts.ids), rates, lat, rss_server)


def main() -> None:
    ap = argparse.ArgumentParser(description=(__doc__ or "").split("\n")[0])
    ap.add_argument("--runs", type=int, default=3)
    ap.add_argument("--clients", type=int, default=4)
    ap.add_argument("--batch", type=int, default=5000)
    ap.add_argument("--samples", type=int, default=60, help="readings per point per run")
    ap.add_argument("--pairs", type=int, default=20, help="planted red pairs per run")
    ap.add_argument("--workers", type=int, default=2)
    ap.add_argument("--port", type=int, default=8770)
    ap.add_argument("--skip-seed", action="store_true", help="reuse the seeded bench database")
    ap.add_argument("--db", default=BENCH_DB, help="database to (re)create in the private cluster")
    ap.add_argument("--out", type=Path, default=Path(".data") / "bench7", help="demo files")
    args = ap.parse_args()
    url = bench_url(args.db)
    seed_s = float("nan") if args.skip_seed else setup(url, args.out)
    res = measure_readings(
        url,
        runs=args.runs,
        clients=args.clients,
        batch=args.batch,
        samples=args.samples,
        pairs=args.pairs,
        workers=args.workers,
        port=args.port,
    )
    rates, lat, rss_server = res.rates, res.latencies, res.rss_server_kb
    p99 = float(np.percentile(lat, 99)) if lat else float("nan")
    rss_self = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    rows = [
        ("seed scale 1", f"{seed_s:.1f} s", ""),
        ("monitoring points", f"{res.points:,}", ""),
        (
            f"ingest readings/s, median of {args.runs}",
            f"{statistics.median(rates):,.0f}",
            "≥ 20,000",
        ),
        ("  runs", ", ".join(f"{r:,.0f}" for r in rates), ""),
        ("alarm reading → enterprise NOTIFY p99", f"{p99 * 1000:.0f} ms (n={len(lat)})", "≤ 2 s"),
        ("  median", f"{statistics.median(lat) * 1000:.0f} ms" if lat else "-", ""),
        ("peak RSS server (all workers)", f"{rss_server / 1024:.0f} MiB", ""),
        ("peak RSS bench client", f"{rss_self / 1024:.0f} MiB", ""),
    ]
    print(f"\n{'measure':<40} {'value':<30} target")
    for name, value, target in rows:
        print(f"{name:<40} {value:<30} {target}")


if __name__ == "__main__":
    main()
