"""Benchmark: fixes per second through the JT/T 808 gateway from many terminals, and through
``POST /api/positions`` in the same run.

    python -m scripts.bench_jt808 [--terminals 1000] [--seconds 10] [--runs 3] [--batch 34]
        [--window 4] [--processes 2] [--kind 0704] [--pace 1] [--workers 1] [--env NAME=VALUE …]

Uses its own database (``georisk_bench_jt808`` in the private cluster, dropped and re-created,
migrated, one vehicle per terminal, ``--zones`` zones so the geofence rules have work) and one
``georisk serve`` process with the gateway on a free port, every engine on. Each run:

- gateway: ``--terminals`` terminals, spread over ``--processes`` simulator processes (asyncio,
  frames encoded before the clock starts, so the clients cost little of the 2 cores), register
  and authenticate, then for ``--seconds`` stream fixes — ``--kind 0704``: batches of
  ``--batch`` fixes (blind-area back-fill), ``0200``: one report per frame — with ``--window``
  messages in flight per terminal. Counted: fixes answered 0x8001 result 0 (after the commit),
  per second from the start to the last answer; the ack latency of every message;
- HTTP: ``--clients`` clients post ``--http-batch`` fixes per request for ``--seconds``
  (the shape of ``scripts/bench_ingest.py``), the same kind of fixes on another day.

Prints one table (median and spread over the runs), ack latency p50/p99, the server's peak
RSS and the gateway/HTTP ratio. Under that saturating load an answer's latency is mostly
queueing (fixes offered ÷ fixes/s), so a last run measures it at a live fleet's load:
every terminal one 0x0200 every ``--pace`` s (``--pace 0``: skip it).

``run(url, terminals, seconds, port=…)`` is one run as a function, for other benchmarks
(``scripts/bench_ingest.py``) that run their own server.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import datetime as dt
import functools
import json
import math
import multiprocessing as mp
import random
import statistics
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import psycopg

from geo_api.migrate import upgrade
from layers.transport.jt808 import messages as m
from scripts.benchkit import (
    Batch,
    bench_url,
    free_port,
    key_headers,
    make_key,
    peak_rss_kb,
    post_all,
    recreate_database,
    start_server,
)
from scripts.jt808_sim import Terminal

LON0, LAT0 = 121.30, 29.70
STEP_S = 10  # event seconds between a terminal's fixes
SPEED_KMH = 40.0
#: Fixes prepared per terminal and second: the most a terminal can send (a ceiling far above
#: what the server takes, so no terminal runs dry; the table says so if one did).
PER_TERMINAL_S = 60


@dataclass
class Plan:
    """What one simulator process drives (picklable: it crosses to a spawned process)."""

    host: str
    port: int
    terminals: list[tuple[str, str, float, float]]  # phone, plate, start lon, start lat
    t0_us: int  # event time of every terminal's first fix
    fixes: int  # prepared per terminal
    batch: int
    window: int
    seconds: float
    pace_s: float = 0.0  # > 0: one message per terminal every pace_s (a live fleet's load)


def _frames(plan: Plan, lon: float, lat: float) -> list[tuple[int, bytes, int]]:
    """(message id, body, fixes) of one terminal: fixes every STEP_S driving east."""
    step = SPEED_KMH / 3.6 * STEP_S / (111_320 * math.cos(math.radians(lat)))
    t0 = dt.datetime.fromtimestamp(plan.t0_us / 1e6, dt.UTC)
    bodies = [
        m.encode_location(lon + k * step, lat, SPEED_KMH, 90, t0 + dt.timedelta(seconds=k * STEP_S))
        for k in range(plan.fixes)
    ]
    if plan.batch <= 1:
        return [(m.LOCATION, b, 1) for b in bodies]
    return [
        (
            m.BATCH,
            m.encode_batch(bodies[a : a + plan.batch], m.BACKFILL),
            len(bodies[a : a + plan.batch]),
        )
        for a in range(0, len(bodies), plan.batch)
    ]


async def _drive(plan: Plan, ready: Any, go: Any) -> dict[str, Any]:
    terms: list[Terminal] = []
    work: list[list[tuple[int, bytes, int]]] = []
    connect = asyncio.Semaphore(50)  # a listen backlog is finite: connect in waves

    async def setup(phone: str, plate: str, lon: float, lat: float) -> None:
        async with connect:
            t = Terminal(plan.host, plan.port, phone, plate)
            await t.connect()
            if await t.register() != m.REGISTERED or await t.authenticate() != m.OK:
                raise RuntimeError(f"terminal {phone} ({plate}) could not register")
            terms.append(t)
            work.append(_frames(plan, lon, lat))

    await asyncio.gather(*(setup(*t) for t in plan.terminals))
    ready.set()
    await asyncio.to_thread(go.wait)
    started = time.monotonic()
    stop_at = started + plan.seconds
    acked = [0]
    latencies: list[float] = []
    last = [started]
    dry = [0]

    async def stream(t: Terminal, frames: list[tuple[int, bytes, int]]) -> None:
        room = asyncio.Semaphore(plan.window)

        def answered(fut: asyncio.Future[Any], *, sent: float, n: int) -> None:
            room.release()
            if fut.cancelled() or fut.exception() is not None:
                return
            now = time.monotonic()
            if fut.result().body[-1] == m.OK:  # the general response's result byte
                acked[0] += n
                latencies.append(now - sent)
                last[0] = max(last[0], now)

        if plan.pace_s:  # spread the fleet's reports over the period
            await asyncio.sleep(plan.pace_s * random.random())
        for msg_id, body, n in frames:
            await room.acquire()
            if time.monotonic() >= stop_at:
                room.release()
                break
            fut = t.send(msg_id, body)
            fut.add_done_callback(functools.partial(answered, sent=time.monotonic(), n=n))
            await t.drain()
            if plan.pace_s:
                await asyncio.sleep(plan.pace_s)
        else:
            dry[0] += 1
        for _ in range(plan.window):  # every answer in (or 60 s)
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(room.acquire(), 60)

    await asyncio.gather(*(stream(t, w) for t, w in zip(terms, work, strict=True)))
    for t in terms:
        await t.close()
    return {
        "started": started,
        "last": last[0],
        "acked": acked[0],
        "latencies": latencies,
        "dry": dry[0],
    }


def _process(plan: Plan, ready: Any, go: Any, out: Any) -> None:
    """A simulator process: its terminals' whole run; the result on ``out``."""
    try:
        out.put(asyncio.run(_drive(plan, ready, go)))
    except Exception as exc:  # the parent must not wait forever for a broken child
        ready.set()
        out.put({"error": repr(exc)})


def _vehicles(url: str, n: int) -> list[tuple[int, str]]:
    with psycopg.connect(url) as c:
        rows = c.execute("SELECT id, plate FROM vehicles ORDER BY id LIMIT %s", (n,)).fetchall()
    if len(rows) < n:
        raise RuntimeError(f"{n} terminals need {n} vehicles; the database has {len(rows)}")
    return [(int(v), str(p)) for v, p in rows]


def gateway_load(
    url: str,
    terminals: int,
    seconds: float,
    *,
    port: int,
    host: str = "127.0.0.1",
    day: int = 1,
    batch: int = 34,
    window: int = 4,
    processes: int = 2,
    pace_s: float = 0.0,
) -> dict[str, Any]:
    """The gateway half of ``run``: fixes/s acknowledged and the ack latencies."""
    vehicles = _vehicles(url, terminals)
    now = dt.datetime.now(dt.UTC).replace(microsecond=0)
    # Day ``day`` back from midnight; day 0: the last half hour (later than every other day)
    t0 = now - dt.timedelta(minutes=30)
    if day:
        t0 = (now - dt.timedelta(days=day)).replace(hour=0, minute=0, second=0)
    fixes = math.ceil(seconds * PER_TERMINAL_S / max(batch, 1)) * max(batch, 1)
    # A terminal of vehicle v is phone 136 0000 0000 + v: the same terminal every run.
    spots = [
        (f"{13_600_000_000 + v:012d}", plate, LON0 + 0.002 * (k % 100), LAT0 + 0.002 * (k // 100))
        for k, (v, plate) in enumerate(vehicles)
    ]
    ctx = mp.get_context("spawn")
    readies, go, out = [], ctx.Event(), ctx.Queue()
    procs = []
    for p in range(processes):
        plan = Plan(
            host,
            port,
            spots[p::processes],
            int(t0.timestamp() * 1e6),
            fixes,
            batch,
            window,
            seconds,
            pace_s,
        )
        ready = ctx.Event()
        proc = ctx.Process(target=_process, args=(plan, ready, go, out), daemon=True)
        proc.start()
        readies.append(ready)
        procs.append(proc)
    for ready in readies:
        ready.wait(600)
    go.set()
    parts = [out.get(timeout=seconds + 300) for _ in procs]
    for proc in procs:
        proc.join(30)
    errors = [p["error"] for p in parts if "error" in p]
    if errors:
        raise RuntimeError(f"simulator failed: {errors[0]}")
    wall = max(p["last"] for p in parts) - min(p["started"] for p in parts)
    acked = sum(p["acked"] for p in parts)
    lat = np.array([x for p in parts for x in p["latencies"]]) * 1000
    return {
        "terminals": terminals,
        "kind": "0x0704" if batch > 1 else "0x0200",
        "batch": batch,
        "window": window,
        "acked": acked,
        "wall_s": wall,
        "gateway_fixes_per_s": acked / wall if wall > 0 else 0.0,
        "ack_p50_ms": float(np.percentile(lat, 50)) if len(lat) else math.nan,
        "ack_p99_ms": float(np.percentile(lat, 99)) if len(lat) else math.nan,
        "terminals_dry": sum(p["dry"] for p in parts),
    }


def http_load(
    url: str,
    base: str,
    api_key: str,
    seconds: float,
    *,
    day: int = 1,
    clients: int = 4,
    batch: int = 2000,
    vehicles: int = 1000,
) -> float:
    """Fixes/s through ``POST /api/positions`` for about ``seconds``: ``clients`` clients,
    ``batch`` fixes per request, each client its own share of the vehicles, in time order."""
    vids = [v for v, _ in _vehicles(url, vehicles)]
    t0 = (dt.datetime.now(dt.UTC) - dt.timedelta(days=day)).replace(
        hour=0, minute=0, second=0, microsecond=0
    )
    # Enough fixes for 30,000/s: the clients post them all, the clock tells the rate.
    steps = max(1, math.ceil(30_000 * seconds / len(vids)))
    work: list[list[Batch]] = [[] for _ in range(clients)]
    mine = [vids[c::clients] for c in range(clients)]
    for c, vs in enumerate(mine):
        rows: list[dict[str, Any]] = []
        for k in range(steps):
            ts = (t0 + dt.timedelta(seconds=k * STEP_S)).isoformat()
            for i, v in enumerate(vs):
                lat = LAT0 + 0.002 * (i // 100) + 0.5
                step = SPEED_KMH / 3.6 * STEP_S / (111_320 * math.cos(math.radians(lat)))
                rows.append(
                    {
                        "vehicle_id": v,
                        "ts": ts,
                        "lon": round(LON0 + 0.002 * (i % 100) + k * step, 6),
                        "lat": round(lat, 6),
                        "speed_kmh": SPEED_KMH,
                        "heading": 90,
                    }
                )
        for a in range(0, len(rows), batch):
            work[c].append(Batch(json.dumps(rows[a : a + batch]).encode(), []))
    counts = [0, 0]
    started = time.perf_counter()
    asyncio.run(post_all(base, "/api/positions", work, {}, counts, key_headers(api_key)))
    return counts[0] / (time.perf_counter() - started)


def run(
    url: str,
    terminals: int = 1000,
    seconds: float = 10.0,
    *,
    port: int,
    http_base: str | None = None,
    api_key: str | None = None,
    server_pid: int | None = None,
    day: int = 2,
    batch: int = 34,
    window: int = 4,
    processes: int = 2,
) -> dict[str, Any]:
    """One run against a running server: the gateway on ``port`` (terminals = the first
    ``terminals`` vehicles of the database at ``url``, fixes from midnight ``day`` days back),
    then, when ``http_base`` is given, ``POST /api/positions`` of the same server with fixes
    on day ``day - 1`` (later, so neither path's fixes are late for the engine: ``day`` ≥ 2).
    Answers fixes/s of both and their ratio, ack p50/p99 (ms) and, with ``server_pid``, the
    server's peak RSS (MiB)."""
    out = gateway_load(
        url, terminals, seconds, port=port, day=day, batch=batch, window=window, processes=processes
    )
    if http_base is not None:
        key = api_key or make_key(url, "ingest", "bench jt808")
        out["http_fixes_per_s"] = http_load(
            url, http_base, key, seconds, day=day - 1, vehicles=terminals
        )
        out["ratio"] = out["gateway_fixes_per_s"] / out["http_fixes_per_s"]
    if server_pid is not None:
        out["peak_rss_mib"] = peak_rss_kb(server_pid) / 1024
    return out


def _setup(url: str, n: int, zones: int) -> None:
    recreate_database(url)
    upgrade(url)
    with psycopg.connect(url, autocommit=True) as c:
        c.execute(
            "INSERT INTO vehicles (plate, carrier) SELECT '浙B·J' || lpad(g::text, 5, '0'),"
            " 'bench' FROM generate_series(1, %s) g",
            (n,),
        )
        # Small school zones over the terminals' area: geofence rules judge every fix.
        c.execute(
            "INSERT INTO zones (code, name, kind, geom) SELECT 'BZ' || g, 'bench ' || g,"
            " 'school', ST_Multi(ST_Expand(ST_SetSRID(ST_Point(%s + random() * 0.6,"
            " %s + random() * 0.6), 4326), 0.0005)) FROM generate_series(1, %s) g",
            (LON0, LAT0, zones),
        )
        c.execute("ANALYZE zones")


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    p.add_argument("--terminals", type=int, default=1000)
    p.add_argument("--seconds", type=float, default=10.0)
    p.add_argument("--runs", type=int, default=3)
    p.add_argument("--batch", type=int, default=34, help="fixes per 0x0704 (--kind 0704)")
    p.add_argument("--kind", choices=("0704", "0200"), default="0704")
    p.add_argument("--window", type=int, default=4, help="messages in flight per terminal")
    p.add_argument("--processes", type=int, default=2, help="simulator processes")
    p.add_argument("--zones", type=int, default=10_000)
    p.add_argument(
        "--pace", type=float, default=1.0, help="then: one 0x0200 per terminal every PACE s (0: no)"
    )
    p.add_argument(
        "--workers", type=int, default=1, help="server processes (> 1: they share the port)"
    )
    p.add_argument("--env", nargs="*", default=[], help="server settings, NAME=VALUE")
    args = p.parse_args(argv)

    url = bench_url("georisk_bench_jt808")
    _setup(url, args.terminals, args.zones)
    key = make_key(url, "ingest", "bench jt808")
    http_port, gw_port = free_port(), free_port()
    log = Path(tempfile.gettempdir()) / "bench_jt808_server.log"
    env = {"GEORISK_JT808_PORT": str(gw_port), "GEORISK_DEMO_FEED_ENABLED": "0"}
    if args.workers > 1:  # every process listens: SO_REUSEPORT spreads the terminals
        env["GEORISK_JT808_REUSE_PORT"] = "true"
    env.update(kv.split("=", 1) for kv in args.env)
    server = start_server(url, http_port, log, env, ["--workers", str(args.workers)])
    batch = args.batch if args.kind == "0704" else 1
    results = []
    try:
        deadline = time.monotonic() + 30  # the gateway listens once it holds its lease
        while time.monotonic() < deadline:
            with contextlib.suppress(OSError):
                import socket

                socket.create_connection(("127.0.0.1", gw_port), timeout=1).close()
                break
            time.sleep(0.1)
        for k in range(args.runs):
            r = run(
                url,
                args.terminals,
                args.seconds,
                port=gw_port,
                http_base=f"http://127.0.0.1:{http_port}",
                api_key=key,
                server_pid=server.pid,
                day=2 * (args.runs - k),  # each run later than the one before
                batch=batch,
                window=args.window,
                processes=args.processes,
            )
            results.append(r)
            print(
                f"run {k + 1}: gateway {r['gateway_fixes_per_s']:,.0f} fixes/s"
                f" ({r['acked']:,} in {r['wall_s']:.1f} s, ack p50 {r['ack_p50_ms']:.0f} ms,"
                f" p99 {r['ack_p99_ms']:.0f} ms), HTTP {r['http_fixes_per_s']:,.0f} fixes/s,"
                f" ratio {r['ratio']:.2f}",
                flush=True,
            )
            if r["terminals_dry"]:
                print(f"  {r['terminals_dry']} terminals ran out of fixes: the rate is a floor")
        paced: dict[str, Any] = {}
        if args.pace:  # the answer's latency at a live fleet's load, not at saturation
            paced = gateway_load(
                url,
                args.terminals,
                args.seconds,
                port=gw_port,
                day=0,
                batch=1,
                window=1,
                processes=args.processes,
                pace_s=args.pace,
            )
    finally:
        server.terminate()
        server.wait(timeout=30)

    def med(key: str) -> str:
        values = [r[key] for r in results]
        return f"{statistics.median(values):>12,.0f} {min(values):>10,.0f} {max(values):>10,.0f}"

    what = f"{args.kind}" + (f", {batch} per frame" if batch > 1 else "")
    print()
    print(
        f"{args.terminals} terminals ({what}, {args.window} in flight each), "
        f"{args.seconds:g} s per run, {args.runs} runs, {args.workers} server process(es)"
    )
    print(f"{'measure':<36} {'median':>12} {'min':>10} {'max':>10}")
    print(f"{'gateway fixes/s':<36} {med('gateway_fixes_per_s')}")
    print(f"{'POST /api/positions fixes/s':<36} {med('http_fixes_per_s')}")
    print(f"{'ack latency p50 (ms)':<36} {med('ack_p50_ms')}")
    print(f"{'ack latency p99 (ms)':<36} {med('ack_p99_ms')}")
    print(f"{'ratio gateway / HTTP':<36} {statistics.median(r['ratio'] for r in results):>12.2f}")
    print(f"{'server peak RSS (MiB)':<36} {max(r['peak_rss_mib'] for r in results):>12,.0f}")
    if paced:
        print(
            f"live load: {args.terminals} terminals, one 0x0200 each every {args.pace:g} s"
            f" ({paced['gateway_fixes_per_s']:,.0f} fixes/s): ack p50"
            f" {paced['ack_p50_ms']:.0f} ms, p99 {paced['ack_p99_ms']:.0f} ms"
        )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
