"""Benchmark the risk engine: full recompute and one enterprise's change → colour + NOTIFY.

Usage:  python -m scripts.bench_risk [--url URL] [--runs 5] [--changes 50]
Without --url it uses the configured database (the demo city from `make run`). The script
prints one table with medians, p99 and peak RSS, and the ratio to the issue's targets
(full recompute ≤ 10 s at scale 1; one enterprise ≤ 200 ms). It never modifies data beyond
inserting and removing one hidden danger per change round.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import resource
import statistics
import time

import psycopg

from geo_api.settings import Settings
from layers.core.changes import CHANGE_CHANNEL
from layers.risk.recompute import RecomputeConfig, recompute

#: Issue targets: ≤ 10 s at scale 1 (≈ 7,000 enterprises), ≤ 60 s at scale 7.4 (≈ 52,000).
FULL_TARGET_S = 10.0
FULL_TARGET_LARGE_S = 60.0
LARGE_CITY = 20_000
ONE_TARGET_S = 0.200


def _peak_rss_mib() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


async def full_recompute(url: str, config: RecomputeConfig, runs: int) -> list[float]:
    """Seconds of ``runs`` full recomputes (scripts/bench_scale.py calls it too)."""
    times = []
    async with await psycopg.AsyncConnection.connect(url) as conn:
        await conn.execute("UPDATE enterprises SET dynamic_color = NULL")  # force a real write
        await conn.commit()
        for _ in range(runs):
            started = time.perf_counter()
            await recompute(conn, config, None)
            times.append(time.perf_counter() - started)
    return times


async def _one(url: str, config: RecomputeConfig, rounds: int) -> list[float]:
    """Insert an open major hidden danger, recompute that enterprise, wait for its NOTIFY."""
    times = []
    listener = await psycopg.AsyncConnection.connect(url, autocommit=True)
    await listener.execute(f"LISTEN {CHANGE_CHANNEL}")
    async with await psycopg.AsyncConnection.connect(url) as conn:
        # Enterprises a new major hidden danger really raises (not red, no live condition yet):
        # an unchanged colour sends no NOTIFY by design.
        cur = await conn.execute(
            "SELECT id FROM enterprises WHERE is_hazmat AND inherent_color <> 'red'"
            " AND dynamic_color = inherent_color ORDER BY id LIMIT %s",
            (rounds,),
        )
        ids = [r[0] for r in await cur.fetchall()]
        await conn.commit()
        notifies = listener.notifies()
        for enterprise_id in ids:
            started = time.perf_counter()
            await conn.execute(
                "INSERT INTO hidden_dangers (enterprise_id, title, is_major, status, found_at)"
                " VALUES (%s, 'bench', true, 'found', now())",
                (enterprise_id,),
            )
            await recompute(conn, config, [enterprise_id])
            await conn.commit()  # NOTIFY is delivered at commit, as after an API request
            while True:
                note = await asyncio.wait_for(anext(notifies), timeout=10)
                payload = json.loads(note.payload)
                if payload["layer"] == "enterprises" and enterprise_id in payload.get("ids", []):
                    break
            times.append(time.perf_counter() - started)
        await conn.execute("DELETE FROM hidden_dangers WHERE title = 'bench'")
        await conn.commit()
        await recompute(conn, config, ids)
    await listener.close()
    return times


def _p99(values: list[float]) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(0.99 * (len(ordered) - 1)))]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--url")
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--changes", type=int, default=50)
    args = parser.parse_args()
    settings = Settings()
    url = args.url or settings.db.resolved_url()
    config = settings.risk.recompute_config(settings.db.data_dir)
    with psycopg.connect(url) as conn:
        counts = conn.execute(
            "SELECT (SELECT count(*) FROM enterprises), (SELECT count(*) FROM hazard_sources)"
        ).fetchone()
    assert counts is not None
    print(f"database: {counts[0]} enterprises, {counts[1]} hazard sources")
    full_target = FULL_TARGET_LARGE_S if counts[0] >= LARGE_CITY else FULL_TARGET_S
    full = asyncio.run(full_recompute(url, config, args.runs))
    one = asyncio.run(_one(url, config, args.changes))
    rows = [
        ("full recompute", statistics.median(full), max(full), full_target),
        ("one enterprise → NOTIFY", statistics.median(one), _p99(one), ONE_TARGET_S),
    ]
    print(f"{'case':<26}{'median s':>10}{'p99/max s':>11}{'target s':>10}{'median/target':>15}")
    for name, median, worst_case, target in rows:
        print(
            f"{name:<26}{median:>10.3f}{worst_case:>11.3f}{target:>10.3f}{median / target:>15.2f}"
        )
    print(f"peak RSS of this process: {_peak_rss_mib():.0f} MiB")


if __name__ == "__main__":
    main()
