"""Restart PostgreSQL under a serving API and prove it recovers without manual action (issue 8).

    python -m scripts.fault_db_restart [--down 3] [--recover-within 30]

Uses its own database (``georisk_fault_db`` in the private cluster, dropped and re-created,
migrated and seeded with a small demo city), starts ``georisk serve`` on it and checks, with an
admin key: ``/healthz``, ``/api/enterprises``, one enterprises tile, ``POST /api/positions``
and an SSE connection to ``/api/alerts/stream`` (which also sees a planted alert). Then, while a
client keeps requesting every endpoint, the private cluster is stopped (``pg_ctl stop -m fast``:
every backend is terminated, the pool's connections and the LISTEN connections die), kept down
``--down`` seconds and started again. The server is never restarted. Proven afterwards:

- every endpoint answers 2xx again within ``--recover-within`` seconds of the database being up
  (the time is reported);
- while the database was down ``/healthz`` said 503 and the API 503 with
  ``{"detail": "database unavailable; retry shortly"}`` — never a 500;
- every write acknowledged around the restart is stored, and a write after it too;
- the LISTEN workers came back: a new enterprise in a tile cached after the restart shows up in
  that tile (``NOTIFY`` purged it), and a new tanker alert reaches both the SSE stream opened
  before the restart and one opened after it.

Restarting the cluster interrupts every database in it for a few seconds (the others' clients
must reconnect too); the cluster is always started again, also on failure.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import math
import queue
import sys
import tempfile
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import httpx
import mapbox_vector_tile
import psycopg

from geo_api.pg_local import LocalCluster, _run_as_server, pg_bindir
from scripts.benchkit import free_port, recreate_database
from scripts.fault_ingest import start_server

ROOT = Path(__file__).resolve().parent.parent
DB_UNAVAILABLE = "database unavailable; retry shortly"
TILE_Z = 14
#: Where this script's tankers stop (far from the demo city, from fault_ingest's fleet too).
ALERT_LON, ALERT_LAT = 126.5, 34.5


def cluster() -> LocalCluster:
    from geo_api.settings import DatabaseSettings

    data_dir = DatabaseSettings().data_dir
    return LocalCluster(data_dir if data_dir.is_absolute() else ROOT / data_dir)


def start_on_port(pg: LocalCluster, port: int) -> None:
    """``pg_ctl start`` on exactly ``port``. (``LocalCluster.start`` picks another port when a
    plain bind of the old one fails, which it does for a minute after a stop: TIME_WAIT.
    PostgreSQL itself binds with SO_REUSEADDR, and every client knows the old port.)"""
    real = pg.pgdata.resolve()
    log = real.parent / "pg.log" if real != pg.pgdata else pg.log_file
    cmd = [str(pg_bindir() / "pg_ctl"), "start", "-w", "-t", "60", "-D", str(real)]
    cmd += ["-l", str(log), "-o", f"-p {port} -k {real}"]
    result = _run_as_server(cmd, capture_output=True, text=True)
    if result.returncode != 0:
        raise RuntimeError(f"PostgreSQL did not start: {result.stdout}{result.stderr}")


def restart_cluster(down_s: float) -> tuple[float, float]:
    """Stop the private cluster, keep it down ``down_s``, start it on the same port.
    Returns (monotonic time the stop began, monotonic time it was up again)."""
    pg = cluster()
    port = pg.recorded_port()
    if port is None or not pg.running():
        raise RuntimeError("the private cluster is not running")
    t_down = time.monotonic()
    try:
        pg.stop()
        time.sleep(down_s)
    finally:
        if not pg.running():
            start_on_port(pg, port)
    return t_down, time.monotonic()


def tile_of(lon: float, lat: float, z: int) -> tuple[int, int, int]:
    n = 2**z
    x = int((lon + 180) / 360 * n)
    y = int((1 - math.asinh(math.tan(math.radians(lat))) / math.pi) / 2 * n)
    return z, x, y


def tile_names(http: httpx.Client, path: str) -> set[str] | None:
    """The enterprise names in a tile, or None when it did not answer 200."""
    r = http.get(path)
    if r.status_code != 200:
        return None
    if not r.content:
        return set()
    layers = mapbox_vector_tile.decode(r.content)
    return {
        str(f["properties"].get("name"))
        for layer in layers.values()
        for f in layer.get("features", [])
    }


def _fix(vid: int, t: dt.datetime, lon: float, lat: float, speed: float) -> dict[str, Any]:
    return {
        "vehicle_id": vid,
        "ts": t.isoformat(),
        "lon": round(lon, 7),
        "lat": round(lat, 7),
        "speed_kmh": speed,
    }


def visit(vid: int, lon: float, lat: float, start: dt.datetime, stay_s: int) -> list[Any]:
    """Drive in from 2 km west at 40 km/h, stay ``stay_s`` (> 10 min: an illegal stop), leave."""
    out, t = [], start
    m_per_deg = 111_320 * math.cos(math.radians(lat))
    for k in range(6, 0, -1):
        out.append(_fix(vid, t, lon - 333.0 * k / m_per_deg, lat, 40))
        t += dt.timedelta(seconds=30)
    for _ in range(stay_s // 30 + 1):
        out.append(_fix(vid, t, lon, lat, 0))
        t += dt.timedelta(seconds=30)
    for k in range(1, 7):
        out.append(_fix(vid, t, lon + 333.0 * k / m_per_deg, lat, 40))
        t += dt.timedelta(seconds=30)
    return out


class SseReader(threading.Thread):
    """One ``/api/alerts/stream`` connection read in a thread; alert events into a queue."""

    def __init__(self, base: str, headers: dict[str, str]) -> None:
        super().__init__(daemon=True)
        self.base, self.headers = base, headers
        self.events: queue.Queue[dict[str, Any]] = queue.Queue()
        self.connected = threading.Event()
        self.stopping = threading.Event()
        self.status = 0
        self.error: str | None = None

    def run(self) -> None:
        try:
            timeout = httpx.Timeout(10, read=60)
            with (
                httpx.Client(base_url=self.base, timeout=timeout, headers=self.headers) as c,
                c.stream("GET", "/api/alerts/stream") as r,
            ):
                self.status = r.status_code
                self.connected.set()
                event: dict[str, str] = {}
                for line in r.iter_lines():
                    if self.stopping.is_set():
                        return
                    if line == "":
                        if event.get("event") == "alert":
                            self.events.put(json.loads(event["data"]))
                        event = {}
                    elif not line.startswith(":"):
                        name, _, value = line.partition(":")
                        event[name] = value.removeprefix(" ")
        except httpx.HTTPError as exc:
            self.error = f"{type(exc).__name__}: {exc}"
        finally:
            self.connected.set()
        if not self.stopping.is_set():
            self.error = self.error or "the stream ended"

    def wait_for_vehicle(self, vid: int, timeout: float) -> bool:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            try:
                feature = self.events.get(timeout=max(0.01, deadline - time.monotonic()))
            except queue.Empty:
                return False
            if feature.get("properties", {}).get("vehicle_id") == vid:
                return True
        return False


@dataclass
class Sample:
    t: float  # sent
    endpoint: str
    status: int | None  # None: no HTTP answer (timeout, connection error)
    detail: str | None = None
    t_end: float = 0.0  # answered


@dataclass
class Endpoints:
    """What is probed: name → a function doing one request and returning the response."""

    tile_path: str
    probe_vehicle: int
    acked_fixes: list[dict[str, Any]] = field(default_factory=list)
    _t: dt.datetime = field(
        default_factory=lambda: (dt.datetime.now(dt.UTC) - dt.timedelta(hours=3)).replace(
            microsecond=0
        )
    )
    _lock: threading.Lock = field(default_factory=threading.Lock)
    _tiles: int = 0

    def next_fix(self) -> dict[str, Any]:
        with self._lock:
            self._t += dt.timedelta(seconds=5)
            return _fix(self.probe_vehicle, self._t, ALERT_LON - 0.2, ALERT_LAT, 30)

    def _uncached_tile(self, http: httpx.Client) -> httpx.Response:
        """A tile next to the cached one, a new one each time: rendered from the database."""
        with self._lock:
            self._tiles += 1
            k = self._tiles
        z, x, y = (int(v) for v in self.tile_path.removesuffix(".mvt").split("/")[-3:])
        return http.get(f"/tiles/enterprises/{z}/{x + k}/{y + 1}.mvt")

    def calls(self) -> dict[str, Callable[[httpx.Client], httpx.Response]]:
        def positions(http: httpx.Client) -> httpx.Response:
            fix = self.next_fix()
            r = http.post("/api/positions", json=[fix])
            if r.is_success:
                with self._lock:
                    self.acked_fixes.append(fix)
            return r

        return {
            "healthz": lambda http: http.get("/healthz"),
            "enterprises": lambda http: http.get("/api/enterprises", params={"limit": 5}),
            "tile": lambda http: http.get(self.tile_path),
            "tile (uncached)": self._uncached_tile,
            "positions": positions,
            "stream": lambda http: _stream_opens(http),
        }


def _stream_opens(http: httpx.Client) -> httpx.Response:
    """Open the SSE stream, read its first line, close it: the status is the answer."""
    with http.stream("GET", "/api/alerts/stream") as r:
        if r.status_code == 200:
            next(r.iter_lines(), None)
        else:
            r.read()
        return r


def probe(http: httpx.Client, name: str, call: Callable[[httpx.Client], httpx.Response]) -> Sample:
    t = time.monotonic()
    try:
        r = call(http)
    except httpx.HTTPError as exc:
        return Sample(t, name, None, type(exc).__name__, time.monotonic())
    detail = None
    if r.status_code >= 400:
        try:
            detail = str(r.json().get("detail"))
        except ValueError:
            detail = r.text[:200]
    return Sample(t, name, r.status_code, detail, time.monotonic())


def one_round(
    http: httpx.Client, calls: dict[str, Callable[[httpx.Client], httpx.Response]]
) -> list[Sample]:
    return [probe(http, name, call) for name, call in calls.items()]


class Prober:
    """One client per endpoint, each requesting it again and again (every 0.2 s), recording
    every answer: a request waiting on the database does not hold up the other endpoints."""

    def __init__(self, base: str, headers: dict[str, str], endpoints: Endpoints) -> None:
        self.base, self.headers = base, headers
        self.calls = endpoints.calls()
        self.samples: list[Sample] = []
        self.stopping = threading.Event()
        self.threads = [
            threading.Thread(target=self._run, args=(name,), daemon=True) for name in self.calls
        ]

    def _run(self, name: str) -> None:
        with httpx.Client(base_url=self.base, headers=self.headers, timeout=30) as http:
            while not self.stopping.is_set():
                self.samples.append(probe(http, name, self.calls[name]))
                time.sleep(0.2)

    def start(self) -> None:
        for t in self.threads:
            t.start()

    def stop(self) -> None:
        self.stopping.set()
        for t in self.threads:
            t.join(timeout=40)


@dataclass
class Report:
    down_s: float = 0.0
    #: Per endpoint, from the database being up to the prober's first 2xx answer.
    first_2xx_s: dict[str, float | None] = field(default_factory=dict)
    recovered_s: float | None = None  # from the cluster being up to every endpoint 2xx
    samples: int = 0
    during_down: dict[str, dict[str, int]] = field(default_factory=dict)
    server_errors: list[str] = field(default_factory=list)  # 500s and other non-503 5xx
    bad_503_bodies: int = 0
    healthz_503_seen: bool = False
    failing_after_recovery: list[str] = field(default_factory=list)
    acked_fixes: int = 0
    acked_fixes_lost: int = 0
    write_after_restart_stored: bool = False
    tile_purged_s: float | None = None
    sse_old_stream: bool = False
    sse_new_stream: bool = False
    sse_errors: list[str] = field(default_factory=list)
    failures: list[str] = field(default_factory=list)

    def lines(self) -> list[str]:
        down = "; ".join(
            f"{name}: " + ", ".join(f"{k}×{v}" for k, v in sorted(codes.items()))
            for name, codes in sorted(self.during_down.items())
        )
        rec = "never" if self.recovered_s is None else f"{self.recovered_s:.2f} s"
        return [
            f"database down {self.down_s:.1f} s; all endpoints 2xx again {rec} after it was up",
            "first 2xx per endpoint after the database was up: "
            + ", ".join(
                f"{k} {'never' if v is None else f'{v:.2f} s'}"
                for k, v in sorted(self.first_2xx_s.items())
            ),
            f"answers to requests sent while down: {down or 'none'}",
            f"probe samples {self.samples}; 500s/other 5xx {len(self.server_errors)};"
            f" 503 without the JSON body {self.bad_503_bodies};"
            f" healthz 503 seen {self.healthz_503_seen}",
            f"failing after recovery: {len(self.failing_after_recovery)}",
            f"writes acknowledged by the prober {self.acked_fixes}, lost {self.acked_fixes_lost};"
            f" write after the restart stored {self.write_after_restart_stored}",
            "tile purged by NOTIFY after the restart: "
            + (
                "no"
                if self.tile_purged_s is None
                else f"yes, new feature in {self.tile_purged_s:.2f} s"
            ),
            f"new alert on the SSE stream opened before the restart {self.sse_old_stream},"
            f" on one opened after it {self.sse_new_stream}",
        ]


def _count_fixes(url: str, fixes: list[dict[str, Any]]) -> int:
    """How many of ``fixes`` are not stored."""
    if not fixes:
        return 0
    with psycopg.connect(url) as conn:
        row = conn.execute(
            "SELECT count(*) FROM unnest(%s::int4[], %s::timestamptz[]) AS f(vehicle_id, ts)"
            " WHERE NOT EXISTS (SELECT 1 FROM positions p"
            " WHERE p.vehicle_id = f.vehicle_id AND p.ts = f.ts)",
            ([f["vehicle_id"] for f in fixes], [f["ts"] for f in fixes]),
        ).fetchone()
    return int(row[0]) if row else 0


def prepare(url: str, tag: str) -> dict[str, Any]:
    """Three vehicles of our own (probe writes, an alert before and one after the restart)
    and an enterprise to build the tile check around."""
    with psycopg.connect(url, autocommit=True) as conn:
        ids = []
        for name in ("probe", "before", "after"):
            row = conn.execute(
                "INSERT INTO vehicles (plate, carrier) VALUES (%s, '重启测试危运') RETURNING id",
                (f"重启{tag}-{name}",),
            ).fetchone()
            assert row
            ids.append(int(row[0]))
        row = conn.execute(
            "SELECT ST_X(geom), ST_Y(geom) FROM enterprises WHERE district IS NOT NULL"
            " ORDER BY id LIMIT 1"
        ).fetchone()
        if row is None:
            raise RuntimeError("the database holds no enterprise: seed it first")
    return {"probe": ids[0], "before": ids[1], "after": ids[2], "near": (row[0], row[1])}


def check_restart(
    url: str,
    base: str,
    headers: dict[str, str],
    restart: Callable[[], tuple[float, float]],
    *,
    recover_within: float = 30.0,
    tag: str = "",
) -> Report:
    """The whole proof against a running server at ``base`` over database ``url``."""
    rep = Report()
    tag = tag or str(time.monotonic_ns() % 10**9)
    setup = prepare(url, tag)
    lon, lat = setup["near"]
    z, x, y = tile_of(lon, lat, TILE_Z)
    endpoints = Endpoints(f"/tiles/enterprises/{z}/{x}/{y}.mvt", setup["probe"])
    calls = endpoints.calls()
    day = (dt.datetime.now(dt.UTC) - dt.timedelta(hours=2)).replace(second=0, microsecond=0)

    with httpx.Client(base_url=base, headers=headers, timeout=20) as http:
        # 1. Everything works before.
        bad = [s for s in one_round(http, calls) if s.status is None or s.status >= 300]
        if bad:
            rep.failures.append(f"before the restart: {bad}")
            return rep
        old = SseReader(base, headers)
        old.start()
        old.connected.wait(10)
        if old.status != 200:
            rep.failures.append(f"SSE stream did not open before the restart ({old.error})")
            return rep
        r = http.post("/api/positions", json=visit(setup["before"], ALERT_LON, ALERT_LAT, day, 720))
        if not r.is_success or not old.wait_for_vehicle(setup["before"], 10):
            rep.failures.append("an alert before the restart did not reach the stream")
            return rep

        # 2. Restart the database under load.
        prober = Prober(base, headers, endpoints)
        prober.start()
        time.sleep(1.0)
        t_down, t_up = restart()
        rep.down_s = t_up - t_down
        # Recovered: a round of every endpoint, sent after the database was up, all 2xx;
        # the time is from the database being up to that round's last answer.
        deadline = t_up + recover_within
        t_ok: float | None = None
        while time.monotonic() < deadline:
            answers = one_round(http, calls)
            if all(s.status is not None and s.status < 300 for s in answers):
                t_ok = answers[0].t
                rep.recovered_s = max(s.t_end for s in answers) - t_up
                break
            time.sleep(0.1)
        time.sleep(2.0)  # the prober keeps going after recovery: it must stay healthy
        prober.stop()
        for name in calls:
            firsts = [
                s.t_end - t_up
                for s in prober.samples
                if s.endpoint == name and s.t_end >= t_up and s.status and s.status < 300
            ]
            rep.first_2xx_s[name] = min(firsts) if firsts else None

        rep.samples = len(prober.samples)
        for s in prober.samples:
            code = "no answer" if s.status is None else str(s.status)
            if t_down <= s.t < t_up:
                rep.during_down.setdefault(s.endpoint, {}).setdefault(code, 0)
                rep.during_down[s.endpoint][code] += 1
                if s.endpoint == "healthz" and s.status == 503:
                    rep.healthz_503_seen = True
            if s.status is not None and s.status >= 500 and s.status != 503:
                rep.server_errors.append(f"{s.endpoint} {s.status} {s.detail}")
            if s.status == 503 and s.endpoint != "healthz" and s.detail != DB_UNAVAILABLE:
                rep.bad_503_bodies += 1
            if t_ok is not None and s.t >= t_ok and (s.status is None or s.status >= 300):
                rep.failing_after_recovery.append(f"{s.endpoint} {s.status} {s.detail}")
        rep.acked_fixes = len(endpoints.acked_fixes)
        rep.acked_fixes_lost = _count_fixes(url, endpoints.acked_fixes)

        # 3. A write after the restart is stored.
        fix = endpoints.next_fix()
        r = http.post("/api/positions", json=[fix])
        rep.write_after_restart_stored = r.is_success and _count_fixes(url, [fix]) == 0

        # 4. The tile cache listener: cache the tile, add an enterprise in it, see it appear.
        path = endpoints.tile_path
        tile_names(http, path)
        tile_names(http, path)  # now surely cached
        name = f"重启测试企业{tag}"
        feature = {
            "type": "Feature",
            "geometry": {"type": "Point", "coordinates": [lon + 0.0003, lat + 0.0003]},
            "properties": {
                "credit_code": f"91330200RT{int(tag) % 10**8:08d}",
                "name": name,
                "category": "storage",
            },
        }
        r = http.post("/api/enterprises", json=feature)
        if r.status_code != 201:
            rep.failures.append(f"POST /api/enterprises after the restart: {r.status_code}")
        else:
            t0 = time.monotonic()
            while time.monotonic() - t0 < 10:
                if name in (tile_names(http, path) or set()):
                    rep.tile_purged_s = time.monotonic() - t0
                    break
                time.sleep(0.1)

        # 5. The alert stream listener: a new alert reaches the old and a new stream.
        new = SseReader(base, headers)
        new.start()
        new.connected.wait(10)
        after = day + dt.timedelta(minutes=30)
        r = http.post(
            "/api/positions", json=visit(setup["after"], ALERT_LON, ALERT_LAT, after, 720)
        )
        if not r.is_success:
            rep.failures.append(f"POST /api/positions of the alert visit: {r.status_code}")
        rep.sse_new_stream = new.status == 200 and new.wait_for_vehicle(setup["after"], 10)
        rep.sse_old_stream = old.wait_for_vehicle(setup["after"], 10)
        for reader in (old, new):
            reader.stopping.set()
        for reader in (old, new):
            reader.join(timeout=10)  # the next keep-alive comment ends the read
            if reader.error:
                rep.sse_errors.append(reader.error)

    if rep.recovered_s is None:
        rep.failures.append(f"not every endpoint answered 2xx within {recover_within} s")
    if rep.server_errors:
        rep.failures.append(f"5xx other than 503: {rep.server_errors[:5]}")
    if rep.bad_503_bodies:
        rep.failures.append(f"{rep.bad_503_bodies} 503s without the 'database unavailable' body")
    if not rep.healthz_503_seen:
        rep.failures.append("/healthz never said 503 while the database was down")
    if rep.failing_after_recovery:
        rep.failures.append(f"failures after recovery: {rep.failing_after_recovery[:5]}")
    if rep.acked_fixes_lost:
        rep.failures.append(f"{rep.acked_fixes_lost} acknowledged fixes lost")
    if not rep.write_after_restart_stored:
        rep.failures.append("a write after the restart was not stored")
    if rep.tile_purged_s is None:
        rep.failures.append("the tile did not show the new enterprise (no purge)")
    if not (rep.sse_old_stream and rep.sse_new_stream):
        rep.failures.append("the new alert did not reach every SSE stream")
    return rep


def main() -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").split("\n")[0])
    parser.add_argument("--db-name", default="georisk_fault_db")
    parser.add_argument("--scale", type=float, default=0.02, help="demo city seeded first")
    parser.add_argument("--down", type=float, default=3.0, help="seconds the database is down")
    parser.add_argument("--recover-within", type=float, default=30.0)
    parser.add_argument("--skip-seed", action="store_true", help="reuse the database as it is")
    parser.add_argument("--log", type=Path, default=None, help="keep the server log here")
    args = parser.parse_args()
    if not args.db_name.startswith("georisk_fault"):
        parser.error("--db-name must start with georisk_fault (this script drops it)")

    from geo_api.migrate import upgrade
    from geo_api.settings import DatabaseSettings
    from layers.demo_city import seed_demo_city
    from scripts.benchkit import key_headers, make_key

    base_url = urlsplit(DatabaseSettings().resolved_url())
    url = urlunsplit(base_url._replace(path="/" + args.db_name))
    with tempfile.TemporaryDirectory() as tmp:
        if not args.skip_seed:
            print(f"database {args.db_name}: re-creating, migrating, seeding scale {args.scale} …")
            recreate_database(url)
            upgrade(url)
            seed_demo_city(url, scale=args.scale, seed=7, out_dir=Path(tmp), progress=False)
        log = Path(tmp) / "server.log"
        port = free_port()
        # Keep-alives every second: a stopping SSE reader notices quickly.
        proc = start_server(url, port, log, {"GEORISK_ALERT_STREAM_KEEPALIVE_S": "1"})
        try:
            headers = key_headers(make_key(url, role="admin", name="fault"))
            rep = check_restart(
                url,
                f"http://127.0.0.1:{port}",
                headers,
                lambda: restart_cluster(args.down),
                recover_within=args.recover_within,
            )
            alive = proc.poll() is None
        finally:
            proc.terminate()
            proc.wait(timeout=30)
            pg = cluster()
            if not pg.running() and pg.recorded_port():  # never leave the cluster down
                start_on_port(pg, pg.recorded_port() or 0)
        text = log.read_text(errors="replace")
        if args.log:
            args.log.write_text(text)
    tracebacks = text.count("Traceback")
    for line in rep.lines():
        print(line)
    print(f"server process alive throughout {alive}; server log tracebacks {tracebacks}")
    if not alive:
        rep.failures.append("the server process died")
    if rep.failures:
        print("FAILED:")
        for f in rep.failures:
            print(f"  - {f}")
    else:
        print("OK")
    if tracebacks:
        at = text.index("Traceback")
        print("first server traceback:\n" + text[max(0, at - 300) : at + 3000])
    sys.exit(1 if rep.failures else 0)


if __name__ == "__main__":
    main()
