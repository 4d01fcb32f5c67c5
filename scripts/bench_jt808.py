"""Benchmark: fixes per second through the JT/T 808 gateway vs ``POST /api/positions``.

    python -m scripts.bench_jt808 [--terminals 20] [--fixes 100] [--runs 3] [--batch 34]

Uses its own database (``georisk_bench_jt808`` in the private cluster, dropped and re-created,
migrated, one vehicle per terminal) and one ``georisk serve`` process with the gateway on a
free port. Every run sends new fixes (a day of its own) for all vehicles, four ways:

- ``0x0200``: each terminal sends one location report at a time and waits for its answer
  (which comes after the commit), all terminals at once;
- ``0x0704``: each terminal sends batches of ``--batch`` fixes (blind-area back-fill);
- ``POST 1``: one HTTP client per vehicle, one fix per request (the HTTP twin of 0x0200);
- ``POST n``: the same with ``--batch`` fixes per request (the twin of 0x0704).

Prints one table (median and spread of fixes/s over the runs) and the server's peak RSS.
"""

from __future__ import annotations

import argparse
import asyncio
import datetime as dt
import statistics
import tempfile
import time
from collections.abc import Callable, Coroutine
from pathlib import Path
from typing import Any

import httpx
import psycopg

from geo_api.migrate import upgrade
from layers.transport.jt808 import messages as m
from scripts.benchkit import (
    bench_url,
    free_port,
    key_headers,
    make_key,
    peak_rss_kb,
    recreate_database,
    start_server,
)
from scripts.jt808_sim import Fix, Terminal, path

START = (121.40, 29.80)


def _setup(url: str, n: int) -> list[int]:
    recreate_database(url)
    upgrade(url)
    with psycopg.connect(url, autocommit=True) as c:
        return [
            int(row[0])
            for row in c.execute(
                "INSERT INTO vehicles (plate, carrier) SELECT '浙B·J' || lpad(g::text, 4, '0'),"
                " 'bench' FROM generate_series(1, %s) g RETURNING id",
                (n,),
            ).fetchall()
        ]


def _fixes(k: int, day: int, n: int) -> list[Fix]:
    """Vehicle k's ``n`` fixes on day ``day`` (days back from now, so never in the future)."""
    t0 = (dt.datetime.now(dt.UTC) - dt.timedelta(days=day)).replace(hour=0, minute=0, second=0)
    return path((START[0], START[1] + 0.01 * k), t0, n, 30, 40)


async def _gateway(port: int, plates: list[str], work: list[list[Fix]], batch: int) -> int:
    async def one(k: int) -> int:
        phone = f"{13_700_000_000 + k:012d}"
        async with Terminal("127.0.0.1", port, phone, plates[k]) as t:
            if await t.register() != m.REGISTERED or await t.authenticate() != m.OK:
                raise RuntimeError(f"terminal {k} could not register")
            answered = 0  # fixes of the messages answered 0 (stored)
            if batch <= 1:
                for fix in work[k]:
                    answered += await t.report(fix) == m.OK
            else:
                for a in range(0, len(work[k]), batch):
                    chunk = work[k][a : a + batch]
                    answered += len(chunk) * (await t.backfill(chunk) == m.OK)
            return answered

    return sum(await asyncio.gather(*(one(k) for k in range(len(plates)))))


async def _http(
    base: str, headers: dict[str, str], vids: list[int], work: list[list[Fix]], batch: int
) -> int:
    async def one(k: int) -> int:
        stored = 0
        async with httpx.AsyncClient(base_url=base, headers=headers, timeout=120) as http:
            for a in range(0, len(work[k]), batch):
                body = [
                    {
                        "vehicle_id": vids[k],
                        "ts": f.when.isoformat(),
                        "lon": round(f.lon, 6),
                        "lat": round(f.lat, 6),
                        "speed_kmh": f.speed_kmh,
                        "heading": f.direction,
                    }
                    for f in work[k][a : a + batch]
                ]
                r = await http.post("/api/positions", json=body)
                r.raise_for_status()
                stored += r.json()["accepted"]
        return stored

    return sum(await asyncio.gather(*(one(k) for k in range(len(vids)))))


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    p.add_argument("--terminals", type=int, default=20)
    p.add_argument("--fixes", type=int, default=100, help="fixes per terminal per way and run")
    p.add_argument("--runs", type=int, default=3)
    p.add_argument("--batch", type=int, default=34, help="fixes per 0x0704 / per POST")
    args = p.parse_args(argv)

    url = bench_url("georisk_bench_jt808")
    vids = _setup(url, args.terminals)
    with psycopg.connect(url) as c:
        plates = [r[0] for r in c.execute("SELECT plate FROM vehicles ORDER BY id").fetchall()]
    headers = key_headers(make_key(url, "ingest", "bench jt808"))
    http_port, gw_port = free_port(), free_port()
    log = Path(tempfile.gettempdir()) / "bench_jt808_server.log"
    env = {"GEORISK_JT808_PORT": str(gw_port), "GEORISK_DEMO_FEED_ENABLED": "0"}
    server = start_server(url, http_port, log, env)
    base = f"http://127.0.0.1:{http_port}"
    n = args.terminals * args.fixes
    ways: dict[str, Callable[[list[list[Fix]]], Coroutine[Any, Any, int]]] = {
        "0x0200, answer awaited": lambda w: _gateway(gw_port, plates, w, 1),
        f"0x0704, {args.batch} per batch": lambda w: _gateway(gw_port, plates, w, args.batch),
        "POST /api/positions, 1 per request": lambda w: _http(base, headers, vids, w, 1),
        f"POST /api/positions, {args.batch} per request": lambda w: _http(
            base, headers, vids, w, args.batch
        ),
    }
    rates: dict[str, list[float]] = {name: [] for name in ways}
    try:
        day = 1
        for run in range(args.runs):
            for name, way in ways.items():
                work = [_fixes(k, day, args.fixes) for k in range(args.terminals)]
                day += 1
                started = time.perf_counter()
                stored = asyncio.run(way(work))
                wall = time.perf_counter() - started
                if stored != n:
                    raise RuntimeError(f"{name}: stored {stored} of {n} fixes")
                rates[name].append(n / wall)
                print(f"run {run + 1} {name}: {n} fixes in {wall:.2f} s", flush=True)
        rss = peak_rss_kb(server.pid)
    finally:
        server.terminate()
        server.wait(timeout=30)
    print()
    print(f"{args.terminals} terminals/clients × {args.fixes} fixes, {args.runs} runs")
    print(f"{'path':<40} {'median fixes/s':>15} {'min':>8} {'max':>8}")
    for name, values in rates.items():
        med = statistics.median(values)
        print(f"{name:<40} {med:>15.0f} {min(values):>8.0f} {max(values):>8.0f}")
    print(f"server peak RSS: {rss / 1024:.0f} MiB")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
