"""Tiles/s with one and with two server processes (``georisk serve --workers N``), same run.

    python -m scripts.bench_workers [--database-url URL] [--rounds 3] [--concurrency 16]

Issue 17's target on a two-core machine: two workers serve warm tiles ≥ 1.6× and cold tiles
≥ 1.4× as fast as one. Each round starts ``georisk serve --workers 1`` and ``--workers 2``
(cache off for cold, on for warm), in alternating order so a noisy neighbour hurts both
alike, and measures the same tile lists as scripts/bench_tiles.py: cold — every tile of a
seeded list once; warm — a popular set requested over and over after priming (twice, so both
processes' caches hold it). Prints each round, then medians and the 2-vs-1 ratios, with the
peak resident memory of the whole server (all its processes).

The database must hold the scale-1 demo; nothing is written but one admin API key.
"""

from __future__ import annotations

import argparse
import random
import statistics
import sys

import psycopg

from scripts.bench_tiles import (
    PYTHON,
    ROOT,
    SCALE1_ENTERPRISES,
    Result,
    Server,
    run,
    tile_list,
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


def measure(
    url: str,
    workers: int,
    mode: str,
    tiles: dict[str, list],
    key: str,
    c: int,
    extra_env: dict[str, str] | None = None,
) -> Result:
    server = served_by(url, workers, cache=mode == "warm", key=key, extra_env=extra_env)
    try:
        server.start()
        if mode == "cold":
            run(server, "prime", tiles["prime"], c)  # PostGIS buffers warm, our cache off
            return run(server, "cold", tiles["cold"], c)
        for _ in range(2):  # each process has its own cache: prime until both hold the set
            run(server, "prime", tiles["popular"], c)
        return run(server, "warm", tiles["warm"], c)
    finally:
        server.stop()


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    port = (ROOT / ".data" / "pg.port").read_text().strip() if (ROOT / ".data").exists() else ""
    ap.add_argument("--database-url", default=f"postgresql://georisk@127.0.0.1:{port}/georisk")
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--concurrency", type=int, default=16)
    ap.add_argument("--cold", type=int, default=600)
    ap.add_argument("--popular", type=int, default=300)
    ap.add_argument("--warm", type=int, default=6000)
    ap.add_argument("--seed", type=int, default=4)
    args = ap.parse_args()
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
    print(f"{'round':>5} {'mode':<5} {'workers':>7} {'req/s':>9} {'p50 ms':>7} {'p99 ms':>7}"
          f" {'peak RSS':>9} {'errors':>6}")  # fmt: skip
    for r in range(args.rounds):
        for mode in ("cold", "warm"):
            order = (1, 2) if r % 2 == 0 else (2, 1)
            for workers in order:
                res = measure(args.database_url, workers, mode, tiles, key, args.concurrency)
                by.setdefault((workers, mode), []).append(res)
                print(f"{r + 1:>5} {mode:<5} {workers:>7} {res.rps:>9.1f} {res.pct(0.5):>7.1f}"
                      f" {res.pct(0.99):>7.1f} {res.peak_rss / 2**20:>7.0f} MB"
                      f" {res.errors:>6}", flush=True)  # fmt: skip
    print("\nmedians")
    print(f"{'mode':<5} {'1 worker req/s':>15} {'2 workers req/s':>16} {'× one':>6} {'target':>7}"
          f" {'peak RSS 1/2':>14}")  # fmt: skip
    for mode, target in (("cold", 1.4), ("warm", 1.6)):
        one = statistics.median(x.rps for x in by[(1, mode)])
        two = statistics.median(x.rps for x in by[(2, mode)])
        rss1 = max(x.peak_rss for x in by[(1, mode)]) / 2**20
        rss2 = max(x.peak_rss for x in by[(2, mode)]) / 2**20
        print(f"{mode:<5} {one:>15.1f} {two:>16.1f} {two / one:>6.2f} {target:>7.1f}"
              f" {rss1:>6.0f}/{rss2:<4.0f} MB")  # fmt: skip


if __name__ == "__main__":
    main()
