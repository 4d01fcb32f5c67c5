"""Benchmark the H3 rollup of tanker fixes and the served ``/api/h3`` response.

Targets (issue 3): rolling up the ≈ 9.8 M demo fixes at resolution 8 ≤ 2 s cold; a served
rollup ≤ 50 ms. "Cold" = a fresh Python process and connection, no stored cells for the layer
(PostgreSQL's and the OS's caches are as the previous run left them).

    python -m scripts.bench_h3 [--url postgresql://…/georisk_bench_c] [--runs 5] [--requests 50]

Without the demo city's fixes in the database, ≈ 9.8 M synthetic fixes (3,419 tankers, one fix
every 30 s for a day, driving back and forth between two random points of the demo box) are
planted by SQL ``generate_series`` first.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import resource
import statistics
import subprocess
import sys
import threading
import time
from pathlib import Path

import httpx
import psycopg
import uvicorn

from scripts.benchkit import free_port, key_headers, make_key

TARGET_ROLLUP_S = 2.0
TARGET_SERVED_MS = 50.0
DEMO_FIXES = 9_800_000

_PLANT_SQL = """
CREATE TABLE IF NOT EXISTS positions_p2024_05_01 PARTITION OF positions
    FOR VALUES FROM ('2024-05-01 00:00+00') TO ('2024-05-02 00:00+00');
SELECT setseed(0.20221);
CREATE TEMP TABLE trip AS
SELECT v, 121.25 + random() * 0.9 AS x0, 29.65 + random() * 0.5 AS y0,
          121.25 + random() * 0.9 AS x1, 29.65 + random() * 0.5 AS y1
FROM generate_series(1, 3419) v;
INSERT INTO positions (vehicle_id, ts, lon, lat, speed_kmh)
SELECT t.v, '2024-05-01 00:00+00'::timestamptz + make_interval(secs => i * 30),
       t.x0 + (t.x1 - t.x0) * f + (random() - 0.5) * 0.0004,
       t.y0 + (t.y1 - t.y0) * f + (random() - 0.5) * 0.0004, 40
FROM trip t CROSS JOIN generate_series(0, 2865) i
CROSS JOIN LATERAL (SELECT 1 - abs(1 - ((i * 4.0 / 2866) % 2)) AS f) w
ON CONFLICT DO NOTHING;
ANALYZE positions;
"""


def default_url() -> str:
    port = (Path(".data") / "pg.port").read_text().strip()
    return f"postgresql://georisk@127.0.0.1:{port}/georisk_bench_c"


def peak_rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # Linux reports KiB


def ensure_fixes(url: str) -> int:
    """Migrate the bench database and plant the synthetic fixes when it has too few."""
    from geo_api.migrate import upgrade

    upgrade(url)
    with psycopg.connect(url, autocommit=True) as conn:
        row = conn.execute("SELECT count(*) FROM positions").fetchone()
        if row and row[0] >= 0.9 * DEMO_FIXES:
            return int(row[0])
        print("planting ≈ 9.8 M synthetic fixes (about a minute) …", flush=True)
        for statement in _PLANT_SQL.split(";\n"):
            if statement.strip():
                conn.execute(statement)  # module constant
        row = conn.execute("SELECT count(*) FROM positions").fetchone()
        return int(row[0]) if row else 0


def one_cold_rollup(url: str, res: int) -> None:
    """Child process: drop the stored cells, roll up once, print seconds and peak RSS."""
    from layers.risk.hexagons import rollup

    async def go() -> dict[str, float]:
        async with await psycopg.AsyncConnection.connect(url, autocommit=True) as conn:
            await conn.execute("DELETE FROM h3_cells WHERE layer = 'fixes' AND res = %s", (res,))
            started = time.perf_counter()
            cells = await rollup(conn, "fixes", [res])
            return {"seconds": time.perf_counter() - started, "cells": cells}

    result = asyncio.run(go())
    print(json.dumps({**result, "rss_mb": peak_rss_mb()}))


def cold_rollups(url: str, res: int, runs: int) -> list[dict[str, float]]:
    out = []
    for _ in range(runs):
        proc = subprocess.run(
            [sys.executable, "-m", "scripts.bench_h3", "--url", url, "--child-rollup", str(res)],
            check=True,
            capture_output=True,
            text=True,
        )
        out.append(json.loads(proc.stdout.strip().splitlines()[-1]))
    return out


def served(
    url: str, res: int, requests: int, bbox: str | None, key: str
) -> tuple[list[float], int, int]:
    """Median/p99 inputs: milliseconds per request over real HTTP, plus features and bytes;
    every request carries the API key ``key`` (issue 8)."""
    from geo_api.app import create_app
    from geo_api.routes import hexagons as hexagon_routes
    from geo_api.settings import DatabaseSettings, ServerSettings, Settings

    app = create_app(Settings(db=DatabaseSettings(url=url, pool_max=4), server=ServerSettings()))
    if not any(getattr(r, "path", "") == "/api/h3/{layer}" for r in app.routes):
        app.include_router(hexagon_routes.router)
    port = free_port()
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning"))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    while not server.started:
        time.sleep(0.05)
    params = {"res": str(res), **({"bbox": bbox} if bbox else {})}
    times: list[float] = []
    try:
        base = f"http://127.0.0.1:{port}"
        with httpx.Client(base_url=base, headers=key_headers(key), timeout=60) as http:
            first = http.get("/api/h3/fixes", params=params)  # computes on demand if needed
            first.raise_for_status()
            features = len(first.json()["features"])
            for _ in range(requests):
                started = time.perf_counter()
                resp = http.get("/api/h3/fixes", params=params)
                resp.raise_for_status()
                times.append((time.perf_counter() - started) * 1000)
    finally:
        server.should_exit = True
        thread.join(timeout=10)
    return times, features, len(first.content)


def p99(values: list[float]) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(0.99 * (len(ordered) - 1)))]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--url", default=None, help="bench database (default georisk_bench_c)")
    parser.add_argument("--res", type=int, default=8)
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--requests", type=int, default=50)
    parser.add_argument("--child-rollup", type=int, default=None, help=argparse.SUPPRESS)
    args = parser.parse_args()
    url = args.url or default_url()
    if args.child_rollup is not None:
        one_cold_rollup(url, args.child_rollup)
        return
    fixes = ensure_fixes(url)
    runs = cold_rollups(url, args.res, args.runs)
    roll_s = statistics.median(r["seconds"] for r in runs)
    roll_rss = max(r["rss_mb"] for r in runs)
    cells = int(runs[0]["cells"])
    key = make_key(url, name="bench_h3")
    city, n_city, b_city = served(url, args.res, args.requests, None, key)
    window = "121.50,29.85,121.70,30.00"  # a district-sized view
    part, n_part, b_part = served(url, args.res, args.requests, window, key)
    rss = peak_rss_mb()
    print(f"\nfixes: {fixes:,}; cells at res {args.res}: {cells:,}; cpus: {os.cpu_count()}")
    print(f"{'measure':<44} {'median':>9} {'p99':>9} {'target':>8} {'ratio':>6} {'peak RSS':>9}")
    print(
        f"{f'rollup fixes res {args.res}, cold ({args.runs} runs)':<44}"
        f" {roll_s:>8.2f}s {max(r['seconds'] for r in runs):>8.2f}s"
        f" {TARGET_ROLLUP_S:>7.1f}s {roll_s / TARGET_ROLLUP_S:>6.2f} {roll_rss:>7.0f}MB"
    )
    for label, times, n, size in (
        (f"GET /api/h3/fixes res {args.res}, whole city", city, n_city, b_city),
        (f"GET /api/h3/fixes res {args.res}, bbox {window}", part, n_part, b_part),
    ):
        med = statistics.median(times)
        print(
            f"{label:<44} {med:>7.1f}ms {p99(times):>7.1f}ms {TARGET_SERVED_MS:>6.0f}ms"
            f" {med / TARGET_SERVED_MS:>6.2f} {rss:>7.0f}MB   ({n:,} cells, {size / 1e6:.1f} MB)"
        )
    print("(max over runs in the p99 column for the rollup; server RSS is the bench process)")


if __name__ == "__main__":
    main()
