"""Benchmark GeoRisk's tiles against tipg on the same database, tables, tiles and concurrency.

    python -m scripts.bench_tiles [--database-url URL] [--concurrency 16] [--cold 600]

Both servers run as single uvicorn processes started by this script. One seeded random list of
tiles at z10–z16 over the demo city, weighted towards z12–z15, each tile naming one of the
tables both servers serve. Modes:
* cold — GeoRisk with its cache off; every tile requested once, by both servers;
* warm — a few hundred popular tiles requested over and over (GeoRisk's cache primed once).
tipg has no tile cache, so its warm run measures the same popular list straight from PostGIS.

The database must hold the scale-1 demo (7,046 enterprises); nothing is written to it but
one admin API key (issue 8: GeoRisk answers 401 without one; tipg needs none), unless
``--key`` gives an existing key.
The load generator is ``wrk`` (Debian package ``wrk``; scripts/wrk_tiles.lua cycles through the
same tile list for ``--seconds``), which needs a small part of a core, so on a two-core machine
what is measured is the server. Without ``wrk`` (or with ``--client python``) a small keep-alive
HTTP/1.1 client on asyncio requests each tile of the list once; it needs about a core itself at
warm-tile rates. The table says which client ran. Either checks the answers: a status other than
200/204, or a 200 without a body, is an error.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import random
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Final, Literal

import psutil
import psycopg

from scripts.benchkit import free_port, key_headers, make_key
from tiles.tms import tile_range

ROOT = Path(__file__).resolve().parents[1]
PYTHON = sys.executable
WRK_SCRIPT: Final = ROOT / "scripts" / "wrk_tiles.lua"
#: How long one wrk run lasts (the Python client instead requests each tile of a list once).
WRK_SECONDS: Final = 8.0
Client = Literal["auto", "wrk", "python"]
SCALE1_ENTERPRISES: Final = 7046
#: Zoom weights: most map views are at z12–z15.
ZOOM_WEIGHTS: Final = {10: 1, 11: 2, 12: 4, 13: 5, 14: 5, 15: 4, 16: 2}
#: Tables served by both; tipg gets the plain columns our layer serves (``properties=``),
#: so both send comparable tiles.
TABLES: Final = {
    "enterprises": "id,name,category,district,inherent_color,dynamic_color",
    "hazard_sources": "id,enterprise_id,code,unit_name,grade,color",
    "pipeline_segments": "id,pipeline_id,seq,color",
    "overlay_zones": "id,color",
    "zones": "id,name,kind,district,max_dwell_s",
}


@dataclass(frozen=True)
class Job:
    table: str
    z: int
    x: int
    y: int


def tile_list(url: str, n: int, seed: int) -> list[Job]:
    """``n`` tiles where the data is: a random feature of a random table, at a weighted zoom."""
    rng = random.Random(seed)
    with psycopg.connect(url) as conn:
        anchors = {
            table: conn.execute(
                f"SELECT ST_X(c), ST_Y(c) FROM (SELECT ST_PointOnSurface(geom) AS c"
                f" FROM {table}) s ORDER BY 1, 2"
            ).fetchall()
            for table in TABLES
        }
    zooms = list(ZOOM_WEIGHTS)
    weights = list(ZOOM_WEIGHTS.values())
    jobs = []
    for _ in range(n):
        table = rng.choice(list(TABLES))
        lon, lat = rng.choice(anchors[table])
        lon += rng.uniform(-0.01, 0.01)
        lat += rng.uniform(-0.01, 0.01)
        z = rng.choices(zooms, weights)[0]
        x, y, _, _ = tile_range((lon, lat, lon, lat), z)
        jobs.append(Job(table, z, x, y))
    return jobs


# -- servers --------------------------------------------------------------------------------
@dataclass
class Server:
    name: str
    cmd: list[str]
    env: dict[str, str]
    port: int
    path: str  # format with table, z, x, y
    health: str
    headers: dict[str, str] = field(default_factory=dict)  # sent with every tile request
    start_timeout_s: float = 60.0  # more on a loaded machine (several workers, a busy CPU)
    proc: subprocess.Popen[bytes] | None = None
    peak_rss: int = 0
    _watch: threading.Thread | None = None
    _stop: threading.Event = field(default_factory=threading.Event)
    _err: IO[bytes] = field(default_factory=tempfile.TemporaryFile)

    def start(self) -> None:
        # stderr into a file (``_err``), not a pipe nobody reads: a server that logs more than
        # the pipe holds (64 KiB: two workers' warnings on a loaded machine) would block on it.
        self.proc = subprocess.Popen(
            self.cmd,
            cwd=ROOT,
            env={**os.environ, **self.env},
            stdout=subprocess.DEVNULL,
            stderr=self._err,
            start_new_session=True,
        )
        deadline = time.monotonic() + self.start_timeout_s
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"{self.name} exited: {self._stderr()}")
            try:
                with socket.create_connection(("127.0.0.1", self.port), timeout=1) as s:
                    s.sendall(f"GET {self.health} HTTP/1.0\r\n\r\n".encode())
                    if s.recv(12).startswith(b"HTTP/1.1 200"):
                        break
            except OSError:
                pass
            time.sleep(0.2)
        else:
            raise RuntimeError(f"{self.name} did not start: {self._stderr()}")
        self._watch = threading.Thread(target=self._rss, daemon=True)
        self._watch.start()

    def _stderr(self) -> str:
        self._err.seek(0)
        return self._err.read().decode(errors="replace")[-2000:]

    def _rss(self) -> None:
        assert self.proc is not None
        proc = psutil.Process(self.proc.pid)
        while not self._stop.is_set():
            try:
                rss = proc.memory_info().rss + sum(
                    c.memory_info().rss for c in proc.children(recursive=True)
                )
                self.peak_rss = max(self.peak_rss, rss)
            except psutil.Error:
                return
            time.sleep(0.1)

    def stop(self) -> None:
        self._stop.set()
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout=15)
            except subprocess.TimeoutExpired:
                self.proc.kill()

    def url(self, job: Job) -> str:
        props = TABLES[job.table]
        return self.path.format(table=job.table, z=job.z, x=job.x, y=job.y, props=props)


_OURS_CODE = (
    "import uvicorn; from geo_api.app import create_app; from geo_api.settings import Settings;"
    " uvicorn.run(create_app(Settings()), host='127.0.0.1', port={port}, log_level='warning',"
    " access_log=False)"
)


def georisk_server(url: str, cache: bool, key: str) -> Server:
    port = free_port()
    env = {
        "GEORISK_DATABASE_URL": url,
        "GEORISK_TILES_CACHE_BYTES": str(512 * 1024 * 1024 if cache else 0),
        "GEORISK_DB_POOL_MAX": "8",
    }
    return Server(
        name="georisk",
        cmd=[PYTHON, "-c", _OURS_CODE.format(port=port)],
        env=env,
        port=port,
        path="/tiles/{table}/{z}/{x}/{y}.mvt",
        health="/healthz",
        headers=key_headers(key),
    )


def tipg_server(url: str) -> Server:
    port = free_port()
    tables = ",".join(f'"public.{t}"' for t in TABLES)
    env = {
        "DATABASE_URL": url,
        "TIPG_DB_SCHEMAS": '["public"]',
        "TIPG_DB_TABLES": f"[{tables}]",
        "TIPG_DB_MAX_CONN_SIZE": "8",
        "TIPG_DB_MIN_CONN_SIZE": "1",
        "TIPG_DEBUG": "false",
    }
    cmd = [PYTHON, "-m", "uvicorn", "tipg.main:app", "--host", "127.0.0.1", "--port", str(port)]
    return Server(
        name="tipg",
        cmd=[*cmd, "--log-level", "warning", "--no-access-log"],
        env=env,
        port=port,
        path="/collections/public.{table}/tiles/WebMercatorQuad/{z}/{x}/{y}?properties={props}",
        health="/collections",
    )


# -- client --------------------------------------------------------------------------------
class Conn:
    """One keep-alive HTTP/1.1 connection; reads Content-Length or chunked bodies."""

    def __init__(self, port: int, headers: dict[str, str] | None = None) -> None:
        self.port = port
        self.extra = "".join(f"{k}: {v}\r\n" for k, v in (headers or {}).items())
        self.reader: asyncio.StreamReader | None = None
        self.writer: asyncio.StreamWriter | None = None

    async def get(self, path: str) -> tuple[int, int]:
        if self.writer is None:
            self.reader, self.writer = await asyncio.open_connection("127.0.0.1", self.port)
        assert self.reader is not None
        self.writer.write(
            f"GET {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nAccept-Encoding: gzip\r\n"
            f"{self.extra}\r\n".encode()
        )
        head = await self.reader.readuntil(b"\r\n\r\n")
        lines = head.decode("latin-1").split("\r\n")
        status = int(lines[0].split()[1])
        headers = {}
        for line in lines[1:]:
            if ":" in line:
                k, v = line.split(":", 1)
                headers[k.strip().lower()] = v.strip()
        size = 0
        if headers.get("transfer-encoding") == "chunked":
            while True:
                n = int((await self.reader.readuntil(b"\r\n")).strip(), 16)
                await self.reader.readexactly(n + 2)
                size += n
                if n == 0:
                    break
        elif status not in (204, 304):
            size = int(headers.get("content-length", "0"))
            await self.reader.readexactly(size)
        if headers.get("connection", "").lower() == "close":
            self.writer.close()
            self.writer = None
        return status, size


@dataclass
class Result:
    server: str
    mode: str
    n: int
    seconds: float
    latencies: list[float]
    errors: int
    peak_rss: int
    client: str = "python"
    #: wrk reports percentiles, not every latency: quantile → seconds.
    quantiles: dict[float, float] = field(default_factory=dict)

    @property
    def rps(self) -> float:
        return self.n / self.seconds

    def pct(self, q: float) -> float:
        if q in self.quantiles:
            return self.quantiles[q] * 1000
        if not self.latencies:
            return float("nan")
        ordered = sorted(self.latencies)
        return ordered[min(len(ordered) - 1, int(q * len(ordered)))] * 1000


async def _run(
    server: Server, paths: list[str], concurrency: int
) -> tuple[float, list[float], int]:
    queue = iter(paths)
    latencies: list[float] = []
    errors = 0

    async def worker() -> None:
        nonlocal errors
        conn = Conn(server.port, server.headers)
        for path in queue:
            started = time.perf_counter()
            status, size = await conn.get(path)
            latencies.append(time.perf_counter() - started)
            if status not in (200, 204) or (status == 200 and size == 0):
                errors += 1

    started = time.perf_counter()
    await asyncio.gather(*(worker() for _ in range(concurrency)))
    return time.perf_counter() - started, latencies, errors


def which_client(client: Client = "auto") -> Literal["wrk", "python"]:
    """``wrk`` when asked for or, for ``auto``, when installed; else the Python client."""
    if client == "python":
        return "python"
    if shutil.which("wrk") is None:
        if client == "wrk":
            sys.exit("wrk is not installed (apt-get install wrk), or use --client python")
        return "python"
    return "wrk"


def run(
    server: Server,
    mode: str,
    jobs: list[Job],
    concurrency: int,
    client: Client = "python",
    seconds: float = WRK_SECONDS,
) -> Result:
    """Request ``jobs`` from ``server``: once each with the Python client, or round and round
    for ``seconds`` with wrk (``client``: see :func:`which_client`)."""
    paths = [server.url(j) for j in jobs]
    if which_client(client) == "wrk":
        return _run_wrk(server, mode, paths, concurrency, seconds)
    took, latencies, errors = asyncio.run(_run(server, paths, concurrency))
    return Result(server.name, mode, len(paths), took, latencies, errors, server.peak_rss)


def _run_wrk(
    server: Server, mode: str, paths: list[str], concurrency: int, seconds: float
) -> Result:
    # One thread: the connections are multiplexed by epoll, and a second thread would only
    # take CPU from the server on a two-core machine.
    with tempfile.NamedTemporaryFile("w", suffix=".paths", delete=False) as f:
        f.write("\n".join(paths) + "\n")
    try:
        cmd = ["wrk", "-t1", f"-c{concurrency}", f"-d{seconds:g}s", "--timeout", "30s"]
        target = [f"http://127.0.0.1:{server.port}", "--", f.name]
        out = subprocess.run(
            [*cmd, "-s", str(WRK_SCRIPT), *target, server.headers.get("X-API-Key", "")],
            capture_output=True,
            text=True,
            check=True,
        ).stdout
    finally:
        os.unlink(f.name)
    line = next((x for x in out.splitlines() if x.startswith("WRK_RESULT ")), None)
    if line is None:
        raise RuntimeError(f"wrk printed no result: {out[-2000:]}")
    got = json.loads(line.removeprefix("WRK_RESULT "))
    errors = got["bad_status"] + got["empty"] + got["socket_errors"]
    return Result(
        server.name,
        mode,
        got["requests"],
        got["duration_us"] / 1e6,
        [],
        errors,
        server.peak_rss,
        client="wrk",
        quantiles={0.5: got["p50_us"] / 1e6, 0.99: got["p99_us"] / 1e6},
    )


def table(results: list[Result]) -> str:
    base = {r.mode: r.rps for r in results if r.server == "tipg"}
    lines = [
        f"{'server':<8} {'mode':<5} {'requests':>8} {'req/s':>9} {'p50 ms':>8} {'p99 ms':>8}"
        f" {'× tipg':>7} {'peak RSS':>9} {'errors':>6}",
    ]
    for r in results:
        ratio = r.rps / base[r.mode] if r.mode in base else float("nan")
        lines.append(
            f"{r.server:<8} {r.mode:<5} {r.n:>8} {r.rps:>9.1f} {r.pct(0.5):>8.1f}"
            f" {r.pct(0.99):>8.1f} {ratio:>7.2f} {r.peak_rss / 2**20:>7.0f} MB {r.errors:>6}"
        )
    return "\n".join(lines)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    port = (ROOT / ".data" / "pg.port").read_text().strip() if (ROOT / ".data").exists() else ""
    ap.add_argument("--database-url", default=f"postgresql://georisk@127.0.0.1:{port}/georisk")
    ap.add_argument("--concurrency", type=int, default=16)
    ap.add_argument("--cold", type=int, default=600, help="tiles in the cold list")
    ap.add_argument("--popular", type=int, default=300, help="tiles in the warm set")
    ap.add_argument("--warm", type=int, default=6000, help="requests in the warm run")
    ap.add_argument("--seed", type=int, default=4)
    ap.add_argument("--key", help="a GeoRisk API key (default: a new admin key in the database)")
    ap.add_argument("--client", choices=("auto", "wrk", "python"), default="auto")
    ap.add_argument("--seconds", type=float, default=WRK_SECONDS, help="length of a wrk run")
    args = ap.parse_args()
    client = which_client(args.client)

    with psycopg.connect(args.database_url) as conn:
        row = conn.execute("SELECT count(*) FROM enterprises").fetchone()
    if not row or row[0] != SCALE1_ENTERPRISES:
        sys.exit(f"the database does not hold the scale-1 demo (enterprises = {row and row[0]})")
    key = args.key or make_key(args.database_url, name="bench_tiles")
    cold = tile_list(args.database_url, args.cold, args.seed)
    popular = tile_list(args.database_url, args.popular, args.seed + 1)
    rng = random.Random(args.seed + 2)
    warm = [rng.choice(popular) for _ in range(args.warm)]
    print(f"{len(cold)} cold tiles, {len(popular)} popular tiles × {len(warm)} warm requests, "
          f"concurrency {args.concurrency}, client {client}")  # fmt: skip

    results: list[Result] = []
    servers = [
        georisk_server(args.database_url, cache=False, key=key),
        tipg_server(args.database_url),
    ]
    try:
        for s in servers:
            s.start()
        run(servers[0], "prime", cold, args.concurrency)  # PostGIS's own buffers, for both
        for s in reversed(servers):
            results.append(run(s, "cold", cold, args.concurrency, client, args.seconds))
        results.append(run(servers[1], "warm", warm, args.concurrency, client, args.seconds))
    finally:
        for s in servers:
            s.stop()
    cached = georisk_server(args.database_url, cache=True, key=key)
    try:
        cached.start()
        run(cached, "prime", popular, args.concurrency)
        results.append(run(cached, "warm", warm, args.concurrency, client, args.seconds))
    finally:
        cached.stop()
    order = {("tipg", "cold"): 0, ("georisk", "cold"): 1, ("tipg", "warm"): 2}
    results.sort(key=lambda r: order.get((r.server, r.mode), 3))
    print(table(results))


if __name__ == "__main__":
    main()
