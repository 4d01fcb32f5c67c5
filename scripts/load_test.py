"""Load test (issue 8): 100 concurrent tile clients and 20 ingest clients for 60 s against one
``georisk serve`` process, with zero errors and the latency percentiles printed.

    python -m scripts.load_test [--tile-clients 100] [--ingest-clients 20] [--seconds 60]
                                [--db georisk_load] [--keep]

Why: the unit tests prove each request right on its own; this proves the server stays right
under a realistic mixed load — map viewers panning over the city while the vehicle gateways
stream fixes — without pool exhaustion, timeouts or 5xx, and that no acknowledged fix is lost.

How: the script makes its own database (``--db``, dropped first: a template copy of the
scale-1 demo ``georisk``; if someone is connected to it the copy is retried, then a scale-0.3
demo city is seeded instead), migrates it to head, creates an admin API key and a fleet of
new vehicles far from the demo city (126 E, 34 N and east), and starts ``georisk serve`` as a
subprocess with default settings (one process). Then, until ``--seconds`` have passed:

* every tile client (one keep-alive ``httpx.AsyncClient`` each) asks for tiles at z10–z16 over
  the demo city, from a mix of layers and comma lists: mostly a shared set of popular tiles
  (revalidated with ``If-None-Match`` when the client saw them before, as a browser does),
  the rest fresh tiles anywhere a feature is;
* every ingest client streams batches of 50–200 plausible fixes of its own vehicles (driving
  at 30–70 km/h, each vehicle in time order, timestamps in the last few hours) to
  ``POST /api/positions``.

Every response is counted: for tiles any status but 200/204/304, for ingest any status but
200, and any exception or timeout is an error. One table is printed (per kind: requests,
req/s, errors, p50/p90/p99/max latency), with the fixes accepted and the server's peak RSS.
Afterwards SQL checks that the database holds exactly the accepted fixes of the run's
vehicles. Exits non-zero on any error or a mismatch. The server's log is kept in the
temporary directory only while the script runs; its last lines are printed on errors.
"""

from __future__ import annotations

import argparse
import asyncio
import datetime as dt
import math
import os
import random
import subprocess
import sys
import tempfile
import time
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Final
from urllib.parse import urlsplit, urlunsplit

import httpx
import psycopg

from scripts.benchkit import (
    bench_url,
    drop_database,
    free_port,
    key_headers,
    make_key,
    peak_rss_kb,
    start_server,
)
from tiles.tms import tile_range

#: Zoom weights: most map views are at z12–z15 (as scripts/bench_tiles.py).
ZOOM_WEIGHTS: Final = {10: 1, 11: 2, 12: 4, 13: 5, 14: 5, 15: 4, 16: 2}
#: Layers requested, with their weight; comma lists are one request for several layers.
LAYERS: Final = {
    "enterprises": 6,
    "hazard_sources": 3,
    "monitoring_points": 3,
    "pipeline_segments": 3,
    "overlay_zones": 2,
    "zones": 2,
    "districts": 2,
    "tankers": 3,
    "alerts": 2,
    "h3_enterprises": 2,
    "enterprises,hazard_sources": 3,
    "districts,zones,overlay_zones": 2,
    "tankers,alerts": 2,
    "enterprises,monitoring_points,pipeline_segments": 2,
}
#: Tables whose features anchor tiles (tiles where the data is, not over empty fields).
ANCHOR_TABLES: Final = (
    "enterprises",
    "hazard_sources",
    "monitoring_points",
    "pipeline_segments",
    "overlay_zones",
    "zones",
)
DEMO_BOX: Final = (121.2, 29.6, 122.2, 30.2)
POPULAR: Final = 400  # tiles in the shared popular set
POPULAR_SHARE: Final = 0.7  # share of tile requests that go to the popular set
LON0, LAT0 = 126.0, 34.0  # the run's fleet, far from the demo city
STEP_S: Final = 2  # seconds between one vehicle's fixes
TILE_OK: Final = frozenset({200, 204, 304})
ROOT: Final = Path(__file__).resolve().parent.parent


# -- database --------------------------------------------------------------------------------
def _admin(url: str) -> tuple[str, str]:
    parts = urlsplit(url)
    return urlunsplit(parts._replace(path="/postgres")), parts.path.lstrip("/")


def prepare_database(url: str, template: str, out_dir: Path) -> str:
    """(Re)create ``url``'s database from ``template`` (retried while the template has other
    sessions), else seed a small demo city; migrate to head. Returns what was done."""
    from geo_api.migrate import upgrade

    admin, name = _admin(url)
    if not name.startswith("georisk_load"):
        sys.exit(f"refusing to (re)create {name!r}: the load test's databases are georisk_load*")
    how = ""
    with psycopg.connect(admin, autocommit=True) as c:
        c.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        for attempt in range(6):  # about 20 s
            try:
                c.execute(f'CREATE DATABASE "{name}" TEMPLATE "{template}"')
                how = f"template copy of {template}"
                break
            except psycopg.errors.ObjectInUse:
                time.sleep(1 + attempt / 2)
        else:
            c.execute(f'CREATE DATABASE "{name}"')
    upgrade(url)
    if not how:
        from layers.demo_city import seed_demo_city

        print(f"{template} stays in use: seeding a scale-0.3 demo city instead …", flush=True)
        seed_demo_city(url, scale=0.3, seed=7, out_dir=out_dir, progress=False)
        how = "seeded demo city, scale 0.3"
    return how


def make_fleet(url: str, clients: int, per_client: int) -> list[list[int]]:
    """New vehicles for the run, ``per_client`` for each ingest client."""
    tag = f"{os.getpid()}-{int(time.time())}"
    with psycopg.connect(url, autocommit=True) as c:
        rows = c.execute(
            "INSERT INTO vehicles (plate, carrier)"
            " SELECT '压测' || %s || '-' || g, '压测危运' FROM generate_series(1, %s) g"
            " RETURNING id",
            (tag, clients * per_client),
        ).fetchall()
    ids = sorted(int(r[0]) for r in rows)
    return [ids[i * per_client : (i + 1) * per_client] for i in range(clients)]


def anchors(url: str) -> list[tuple[float, float]]:
    """A point on every feature of the anchor tables (within the demo box)."""
    out: list[tuple[float, float]] = []
    with psycopg.connect(url) as c:
        for table in ANCHOR_TABLES:
            rows = c.execute(
                f"SELECT ST_X(p), ST_Y(p) FROM (SELECT ST_PointOnSurface(geom) AS p"
                f" FROM {table} WHERE geom IS NOT NULL) s"
            ).fetchall()
            out += [(float(x), float(y)) for x, y in rows]
    return out or [(121.7, 29.9)]


def stored_fixes(url: str, fleet: list[list[int]]) -> int:
    ids = [v for vs in fleet for v in vs]
    with psycopg.connect(url) as c:
        row = c.execute(
            "SELECT count(*) FROM positions WHERE vehicle_id = ANY(%s)", (ids,)
        ).fetchone()
    return int(row[0]) if row else 0


# -- workload --------------------------------------------------------------------------------
class TilePicker:
    """Tile paths: a shared popular set most of the time, else a fresh tile near a feature."""

    def __init__(self, points: list[tuple[float, float]], layers: dict[str, int], seed: int):
        self.points = points
        self.layers = list(layers)
        self.layer_w = list(layers.values())
        self.rng = random.Random(seed)
        self.popular = [self._fresh(self.rng) for _ in range(POPULAR)]
        # Popularity is skewed: a few tiles (the city centre at the start view) are hot.
        self.popular_w = [1 / (i + 1) ** 0.8 for i in range(POPULAR)]

    def _fresh(self, rng: random.Random) -> str:
        layer = rng.choices(self.layers, self.layer_w)[0]
        z = rng.choices(list(ZOOM_WEIGHTS), list(ZOOM_WEIGHTS.values()))[0]
        if rng.random() < 0.85:
            lon, lat = rng.choice(self.points)
            lon += rng.uniform(-0.01, 0.01)
            lat += rng.uniform(-0.01, 0.01)
        else:
            lon = rng.uniform(DEMO_BOX[0], DEMO_BOX[2])
            lat = rng.uniform(DEMO_BOX[1], DEMO_BOX[3])
        x, y, _, _ = tile_range((lon, lat, lon, lat), z)
        return f"/tiles/{layer}/{z}/{x}/{y}.mvt"

    def pick(self, rng: random.Random) -> tuple[str, bool]:
        if rng.random() < POPULAR_SHARE:
            return rng.choices(self.popular, self.popular_w)[0], True
        return self._fresh(rng), False


@dataclass
class Vehicle:
    id: int
    lon: float
    lat: float
    heading: float
    speed: float
    ts: dt.datetime

    def step(self, rng: random.Random) -> dict[str, object]:
        """Drive ``STEP_S`` seconds on (gentle turns, 30–70 km/h) and answer the new fix."""
        self.heading = (self.heading + rng.uniform(-8, 8)) % 360
        self.speed = min(70.0, max(30.0, self.speed + rng.uniform(-3, 3)))
        metres = self.speed / 3.6 * STEP_S
        rad = math.radians(self.heading)
        self.lat += metres * math.cos(rad) / 110_574.0
        self.lon += metres * math.sin(rad) / (111_320.0 * math.cos(math.radians(self.lat)))
        self.ts += dt.timedelta(seconds=STEP_S)
        return {
            "vehicle_id": self.id,
            "ts": self.ts.isoformat().replace("+00:00", "Z"),
            "lon": round(self.lon, 6),
            "lat": round(self.lat, 6),
            "speed_kmh": round(self.speed, 1),
            "heading": int(self.heading),
        }


@dataclass
class Stats:
    latencies: list[float] = field(default_factory=list)
    statuses: Counter[str] = field(default_factory=Counter)
    errors: int = 0
    accepted: int = 0
    duplicates: int = 0
    rejected: int = 0
    fixes_sent: int = 0

    def pct(self, q: float) -> float:
        if not self.latencies:
            return float("nan")
        ordered = sorted(self.latencies)
        return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))] * 1000


async def tile_client(
    base: str, headers: dict[str, str], picker: TilePicker, seed: int, until: float, st: Stats
) -> None:
    rng = random.Random(seed)
    etags: dict[str, str] = {}
    async with httpx.AsyncClient(
        base_url=base, headers={**headers, "Accept-Encoding": "gzip"}, timeout=60
    ) as http:
        while time.monotonic() < until:
            path, popular = picker.pick(rng)
            extra = {"If-None-Match": etags[path]} if popular and path in etags else {}
            t0 = time.perf_counter()
            try:
                r = await http.get(path, headers=extra)
                await r.aread()
            except Exception as exc:  # every failure is counted, none stops us
                st.latencies.append(time.perf_counter() - t0)
                st.statuses[type(exc).__name__] += 1
                st.errors += 1
                continue
            st.latencies.append(time.perf_counter() - t0)
            st.statuses[str(r.status_code)] += 1
            if r.status_code not in TILE_OK:
                st.errors += 1
            elif r.status_code == 200 and "etag" in r.headers:
                etags[path] = r.headers["etag"]


async def ingest_client(
    base: str, headers: dict[str, str], vehicle_ids: list[int], seed: int, until: float, st: Stats
) -> None:
    rng = random.Random(seed)
    start = dt.datetime.now(dt.UTC).replace(microsecond=0) - dt.timedelta(hours=3)
    fleet = [
        Vehicle(
            v,
            LON0 + (v % 40) * 0.05 + rng.uniform(0, 0.02),
            LAT0 + (v // 40 % 40) * 0.05 + rng.uniform(0, 0.02),
            rng.uniform(0, 360),
            rng.uniform(30, 70),
            start + dt.timedelta(milliseconds=rng.randrange(0, 1000)),
        )
        for v in vehicle_ids
    ]
    turn = 0
    async with httpx.AsyncClient(base_url=base, headers=headers, timeout=60) as http:
        while time.monotonic() < until:
            size = rng.randint(50, 200)
            batch = []
            for _ in range(size):  # round robin: every vehicle's fixes stay in time order
                batch.append(fleet[turn % len(fleet)].step(rng))
                turn += 1
            t0 = time.perf_counter()
            try:
                r = await http.post("/api/positions", json=batch)
                body = r.json() if r.status_code == 200 else None
            except Exception as exc:
                st.latencies.append(time.perf_counter() - t0)
                st.statuses[type(exc).__name__] += 1
                st.errors += 1
                continue
            st.latencies.append(time.perf_counter() - t0)
            st.statuses[str(r.status_code)] += 1
            st.fixes_sent += size
            if body is None:
                st.errors += 1
                continue
            st.accepted += int(body["accepted"])
            st.duplicates += int(body["duplicates"])
            st.rejected += len(body["rejected"])


async def drive(
    base: str,
    headers: dict[str, str],
    picker: TilePicker,
    fleet: list[list[int]],
    tile_clients: int,
    seconds: float,
) -> tuple[Stats, Stats, float]:
    tiles, ingest = Stats(), Stats()
    t0 = time.monotonic()
    until = t0 + seconds
    await asyncio.gather(
        *(tile_client(base, headers, picker, 1000 + i, until, tiles) for i in range(tile_clients)),
        *(ingest_client(base, headers, vs, 2000 + i, until, ingest) for i, vs in enumerate(fleet)),
    )
    return tiles, ingest, time.monotonic() - t0


# -- report ----------------------------------------------------------------------------------
def table(rows: list[tuple[str, Stats]], elapsed: float) -> str:
    lines = [
        f"{'kind':<7} {'requests':>9} {'req/s':>8} {'errors':>7} {'p50 ms':>8} {'p90 ms':>8}"
        f" {'p99 ms':>8} {'max ms':>8}  statuses"
    ]
    for name, st in rows:
        statuses = ", ".join(f"{k}: {v}" for k, v in sorted(st.statuses.items()))
        lines.append(
            f"{name:<7} {len(st.latencies):>9} {len(st.latencies) / elapsed:>8.1f}"
            f" {st.errors:>7} {st.pct(0.5):>8.1f} {st.pct(0.9):>8.1f} {st.pct(0.99):>8.1f}"
            f" {st.pct(1.0):>8.1f}  {statuses}"
        )
    return "\n".join(lines)


def main() -> None:
    ap = argparse.ArgumentParser(description=(__doc__ or "").split("\n")[0])
    ap.add_argument("--tile-clients", type=int, default=100)
    ap.add_argument("--ingest-clients", type=int, default=20)
    ap.add_argument("--vehicles-per-client", type=int, default=25)
    ap.add_argument("--seconds", type=float, default=60.0)
    ap.add_argument("--db", default="georisk_load", help="database of the run (georisk_load*)")
    ap.add_argument("--template", default="georisk", help="database copied for the run")
    ap.add_argument("--seed", type=int, default=8)
    ap.add_argument("--keep", action="store_true", help="keep the database after the run")
    args = ap.parse_args()

    url = bench_url(args.db)
    with tempfile.TemporaryDirectory() as tmp:
        t0 = time.perf_counter()
        how = prepare_database(url, args.template, Path(tmp) / "demo")
        print(f"database {args.db}: {how}, migrated ({time.perf_counter() - t0:.1f} s)")
        proc: subprocess.Popen[bytes] | None = None
        log = Path(tmp) / "server.log"
        try:
            key = make_key(url, role="admin", name="load test")
            headers = key_headers(key)
            fleet = make_fleet(url, args.ingest_clients, args.vehicles_per_client)
            points = anchors(url)
            port = free_port()
            base = f"http://127.0.0.1:{port}"
            proc = start_server(url, port, log)
            served = {
                layer["name"]
                for layer in httpx.get(base + "/tiles", headers=headers, timeout=30)
                .raise_for_status()
                .json()["layers"]
            }
            layers = {k: w for k, w in LAYERS.items() if set(k.split(",")) <= served}
            if missing := sorted(set(LAYERS) - set(layers)):
                print(f"not served, left out: {', '.join(missing)}")
            picker = TilePicker(points, layers, args.seed)
            print(
                f"server pid {proc.pid} on {base}; {args.tile_clients} tile clients"
                f" ({len(layers)} layer choices, {POPULAR} popular tiles),"
                f" {args.ingest_clients} ingest clients × {args.vehicles_per_client} vehicles,"
                f" {args.seconds:g} s …",
                flush=True,
            )
            tiles, ingest, elapsed = asyncio.run(
                drive(base, headers, picker, fleet, args.tile_clients, args.seconds)
            )
            rss = peak_rss_kb(proc.pid)
            alive = proc.poll() is None
        finally:
            if proc is not None and proc.poll() is None:
                proc.terminate()
                try:
                    proc.wait(timeout=30)
                except subprocess.TimeoutExpired:
                    proc.kill()
                    proc.wait()
        stored = stored_fixes(url, fleet)
        server_log = log.read_text(errors="replace").splitlines() if log.exists() else []
        if not args.keep:
            drop_database(url)

    print()
    print(table([("tiles", tiles), ("ingest", ingest)], elapsed))
    print(
        f"\nrun {elapsed:.1f} s; fixes sent {ingest.fixes_sent:,}, accepted {ingest.accepted:,}"
        f" ({ingest.accepted / elapsed:,.0f}/s), duplicates {ingest.duplicates},"
        f" rejected {ingest.rejected}; in the database {stored:,}"
        f" ({'nothing lost' if stored == ingest.accepted else 'MISMATCH'})"
    )
    print(f"server peak RSS {rss / 1024:.0f} MiB; server alive at the end: {alive}")
    tracebacks = sum("Traceback" in line for line in server_log)
    other = [ln for ln in server_log if 'HTTP/1.1" ' not in ln]  # all but the access log
    print(f"server log: {len(server_log)} lines, {len(other)} not access lines,"
          f" {tracebacks} tracebacks")  # fmt: skip
    bad = tiles.errors + ingest.errors
    if bad or tracebacks:
        print("\n".join(other[-60:]))
    if bad or stored != ingest.accepted or not alive:
        sys.exit(1)


if __name__ == "__main__":
    main()
