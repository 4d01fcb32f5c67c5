"""Tiles/s with one and with two server processes (``georisk serve --workers N``), same run.

    python -m scripts.bench_workers [--database-url URL] [--rounds 3] [--concurrency 32]
                                    [--client auto|wrk|python] [--seconds 8]

Issue 17's target on a two-core machine: two workers serve warm tiles ≥ 1.6× and cold tiles
≥ 1.4× as fast as one. Each round starts ``georisk serve --workers 1`` and ``--workers 2``
(cache off for cold, on for warm), in alternating order so a noisy neighbour hurts both
alike, and measures the same tile lists as scripts/bench_tiles.py: cold — every tile of a
seeded list once; warm — a popular set requested over and over after priming (twice, so both
processes' caches hold it). Prints each round, then medians and the 2-vs-1 ratios, with the
peak resident memory of the whole server (all its processes).

The load generator is ``wrk`` when installed (``apt-get install wrk``): it cycles through the
same lists for ``--seconds`` and needs a small part of a core, so the two cores go to the server
and PostgreSQL. Without it, the Python client of bench_tiles.py runs (it needs about a core at
warm rates: two workers then have one core between them). The output names the client. Every
answer is checked (200 with a body, or 204); priming always uses the Python client, once per
tile.

The database must hold the scale-1 demo; nothing is written but one admin API key.
"""

from __future__ import annotations

import argparse
import random
import resource
import statistics
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass

import psutil
import psycopg

from scripts.bench_tiles import (
    PYTHON,
    ROOT,
    SCALE1_ENTERPRISES,
    WRK_SECONDS,
    Client,
    Result,
    Server,
    run,
    tile_list,
    which_client,
)
from scripts.benchkit import free_port, key_headers, make_key


def served_by(
    url: str, workers: int, cache: bool, key: str, extra_env: dict[str, str] | None = None
) -> Server:
    port = free_port()
    env = {
        "GEORISK_DATABASE_URL": url,
        "GEORISK_TILES_CACHE_BYTES": str(512 * 1024 * 1024 if cache else 0),
        "GEORISK_DB_POOL_MAX": "8",
        "GEORISK_LOG_LEVEL": "warning",  # no access log on the hot path
        # The clocks have nothing to do with tiles; off, so every process only serves.
        "GEORISK_ESCALATION_ENABLED": "false",
        "GEORISK_SCORING_ENABLED": "false",
        "GEORISK_MONITORING_SWEEP_ENABLED": "false",
        "GEORISK_WEBHOOK_ENABLED": "false",
        **(extra_env or {}),  # e.g. GEORISK_READ_DATABASE_URL (scripts/bench_scale.py)
    }
    cmd = [PYTHON, "-m", "geo_api.cli", "serve", "--port", str(port), "--workers", str(workers)]
    return Server(
        name=f"{workers} worker{'s' if workers > 1 else ''}",
        cmd=cmd,
        env=env,
        port=port,
        path="/tiles/{table}/{z}/{x}/{y}.mvt",
        health="/healthz",
        headers=key_headers(key),
        start_timeout_s=180.0,  # two workers on a busy two-core machine
    )


@dataclass(frozen=True)
class CpuSplit:
    """Where the CPU went during a run, in cores (CPU seconds per wall second): the server
    (every process of it), this database's PostgreSQL (postmaster and backends), the load
    generator, and everything else on the machine (other users of the shared cores)."""

    server: float
    postgres: float
    client: float
    other: float

    def __str__(self) -> str:
        return (
            f"server {self.server:.2f} + postgres {self.postgres:.2f} + client"
            f" {self.client:.2f} + other {self.other:.2f} cores"
        )


def _tree_cpu(pid: int) -> float:
    """CPU seconds of ``pid`` and its children, the live ones and the reaped ones."""
    try:
        root = psutil.Process(pid)
        procs = [root, *root.children(recursive=True)]
    except psutil.Error:
        return 0.0
    total = 0.0
    for proc in procs:
        try:
            t = proc.cpu_times()
        except psutil.Error:
            continue
        total += t.user + t.system
    t = root.cpu_times()
    return total + t.children_user + t.children_system


def postmaster_pid(url: str) -> int | None:
    """The postmaster serving ``url``, when it runs on this machine (else None)."""
    try:
        with psycopg.connect(url) as conn:
            row = conn.execute("SELECT pg_backend_pid()").fetchone()
        return psutil.Process(row[0]).ppid() if row else None
    except (psycopg.Error, psutil.Error):
        return None


def _busy() -> float:
    t = psutil.cpu_times()
    return t.user + t.nice + t.system + t.irq + t.softirq + t.steal


def _client_cpu(client: str) -> float:
    # wrk is a child this process waits for; the Python client runs in this process.
    who = resource.RUSAGE_CHILDREN if client == "wrk" else resource.RUSAGE_SELF
    r = resource.getrusage(who)
    return r.ru_utime + r.ru_stime


def metered(
    server: Server, pg: int | None, client: str, work: Callable[[], Result]
) -> tuple[Result, CpuSplit]:
    """Run ``work`` and split the machine's CPU time meanwhile."""
    assert server.proc is not None
    before = (
        _tree_cpu(server.proc.pid), _tree_cpu(pg) if pg else 0.0, _client_cpu(client), _busy()
    )  # fmt: skip
    started = time.perf_counter()
    res = work()
    wall = time.perf_counter() - started
    after = (
        _tree_cpu(server.proc.pid), _tree_cpu(pg) if pg else 0.0, _client_cpu(client), _busy()
    )  # fmt: skip
    srv, pgs, cli, busy = (a - b for a, b in zip(after, before, strict=True))
    return res, CpuSplit(
        srv / wall, pgs / wall, cli / wall, max(0.0, busy - srv - pgs - cli) / wall
    )


def measure(
    url: str,
    workers: int,
    mode: str,
    tiles: dict[str, list],
    key: str,
    c: int,
    extra_env: dict[str, str] | None = None,
    client: Client = "auto",
    seconds: float = WRK_SECONDS,
) -> Result:
    return measure_split(url, workers, mode, tiles, key, c, extra_env, client, seconds)[0]


def measure_split(
    url: str,
    workers: int,
    mode: str,
    tiles: dict[str, list],
    key: str,
    c: int,
    extra_env: dict[str, str] | None = None,
    client: Client = "auto",
    seconds: float = WRK_SECONDS,
) -> tuple[Result, CpuSplit]:
    """:func:`measure`, with the CPU split of the measured run."""
    server = served_by(url, workers, cache=mode == "warm", key=key, extra_env=extra_env)
    used = which_client(client)
    pg = postmaster_pid(url)
    try:
        server.start()
        if mode == "cold":
            run(server, "prime", tiles["prime"], c)  # PostGIS buffers warm, our cache off
            jobs = tiles["cold"]
        else:
            for _ in range(2):  # each process has its own cache: prime until both hold the set
                run(server, "prime", tiles["popular"], c)
            jobs = tiles["warm"]
        return metered(server, pg, used, lambda: run(server, mode, jobs, c, used, seconds))
    finally:
        server.stop()


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    port = (ROOT / ".data" / "pg.port").read_text().strip() if (ROOT / ".data").exists() else ""
    ap.add_argument("--database-url", default=f"postgresql://georisk@127.0.0.1:{port}/georisk")
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--concurrency", type=int, default=32)
    ap.add_argument("--cold", type=int, default=600)
    ap.add_argument("--popular", type=int, default=300)
    ap.add_argument("--warm", type=int, default=6000)
    ap.add_argument("--seed", type=int, default=4)
    ap.add_argument("--client", choices=("auto", "wrk", "python"), default="auto")
    ap.add_argument("--seconds", type=float, default=WRK_SECONDS, help="length of a wrk run")
    ap.add_argument("--modes", default="cold,warm", help="comma list of cold, warm")
    args = ap.parse_args()
    modes = [m for m in ("cold", "warm") if m in args.modes.split(",")]
    client = which_client(args.client)
    with psycopg.connect(args.database_url) as conn:
        row = conn.execute("SELECT count(*) FROM enterprises").fetchone()
    if not row or row[0] != SCALE1_ENTERPRISES:
        sys.exit(f"the database does not hold the scale-1 demo (enterprises = {row and row[0]})")
    key = make_key(args.database_url, name="bench_workers")
    popular = tile_list(args.database_url, args.popular, args.seed + 1)
    rng = random.Random(args.seed + 2)
    tiles = {
        "prime": tile_list(args.database_url, args.cold, args.seed + 3),
        "cold": tile_list(args.database_url, args.cold, args.seed),
        "popular": popular,
        "warm": [rng.choice(popular) for _ in range(args.warm)],
    }
    by: dict[tuple[int, str], list[Result]] = {}
    cpus: dict[tuple[int, str], list[CpuSplit]] = {}
    timing = f"{args.seconds:g} s a run" if client == "wrk" else "each tile of the list once"
    print(f"client {client} ({timing}), {args.concurrency} connections")
    print(f"{'round':>5} {'mode':<5} {'workers':>7} {'req/s':>9} {'p50 ms':>7} {'p99 ms':>7}"
          f" {'peak RSS':>9} {'errors':>6}  CPU (cores): server/postgres/client/other")  # fmt: skip
    for r in range(args.rounds):
        for mode in modes:
            order = (1, 2) if r % 2 == 0 else (2, 1)
            for workers in order:
                res, cpu = measure_split(
                    args.database_url, workers, mode, tiles, key, args.concurrency,
                    client=client, seconds=args.seconds,
                )  # fmt: skip
                cpus.setdefault((workers, mode), []).append(cpu)
                by.setdefault((workers, mode), []).append(res)
                print(f"{r + 1:>5} {mode:<5} {workers:>7} {res.rps:>9.1f} {res.pct(0.5):>7.1f}"
                      f" {res.pct(0.99):>7.1f} {res.peak_rss / 2**20:>7.0f} MB"
                      f" {res.errors:>6}  {cpu.server:.2f}/{cpu.postgres:.2f}/{cpu.client:.2f}"
                      f"/{cpu.other:.2f}", flush=True)  # fmt: skip
    print("\nmedians")
    print(f"{'mode':<5} {'1 worker req/s':>15} {'2 workers req/s':>16} {'× one':>6} {'target':>7}"
          f" {'peak RSS 1/2':>14}")  # fmt: skip
    for mode, target in (("cold", 1.4), ("warm", 1.6)):
        if mode not in modes:
            continue
        one = statistics.median(x.rps for x in by[(1, mode)])
        two = statistics.median(x.rps for x in by[(2, mode)])
        rss1 = max(x.peak_rss for x in by[(1, mode)]) / 2**20
        rss2 = max(x.peak_rss for x in by[(2, mode)]) / 2**20
        print(f"{mode:<5} {one:>15.1f} {two:>16.1f} {two / one:>6.2f} {target:>7.1f}"
              f" {rss1:>6.0f}/{rss2:<4.0f} MB")  # fmt: skip
    print("\nmedian CPU split of the measured runs")
    for (workers, mode), splits in sorted(cpus.items()):
        mid = CpuSplit(*(statistics.median(getattr(c, f) for c in splits) for f in _FIELDS))
        print(f"{mode:<5} {workers} worker{'s' if workers > 1 else ' '}: {mid}")


_FIELDS = ("server", "postgres", "client", "other")


if __name__ == "__main__":
    main()
