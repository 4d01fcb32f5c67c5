"""Benchmark: archive one day of tanker fixes to GeoParquet and restore it, at demo scale.

    python -m scripts.bench_lifecycle [--scale 1.0] [--skip-seed]

Uses its own database (``georisk_bench_lc`` in the private cluster, dropped and re-created and
seeded with the demo city five days ago unless ``--skip-seed``; the seed runs in a subprocess so
this process's peak RSS is the lifecycle's own). Then one maintenance round with a two-day
fixes retention archives the seeded days (the city's local day spans two UTC days), and the
larger one is restored. Prints one table: rows, seconds, rows/s, file size, and peak RSS.
"""

from __future__ import annotations

import argparse
import datetime as dt
import resource
import shutil
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

import psycopg

from layers.core.lifecycle import archive_path, file_rows, maintain, restore_day
from layers.core.window import TsWindow
from scripts.benchkit import bench_url, recreate_database

BENCH_DB = "georisk_bench_lc"
SEED_DAYS_AGO = 5


def seed(url: str, scale: float, out: Path) -> float:
    """Drop, migrate and seed the bench database in a subprocess; answers its seconds."""
    recreate_database(url)
    day = dt.date.today() - dt.timedelta(days=SEED_DAYS_AGO)
    code = (
        "import sys, datetime as dt; from pathlib import Path;"
        " from geo_api.migrate import upgrade; from layers.demo_city import seed_demo_city;"
        " upgrade(sys.argv[1]);"
        " seed_demo_city(sys.argv[1], scale=float(sys.argv[2]), out_dir=Path(sys.argv[3]),"
        " progress=False, day=dt.date.fromisoformat(sys.argv[4]))"
    )
    started = time.perf_counter()
    subprocess.run(
        [sys.executable, "-c", code, url, str(scale), str(out), day.isoformat()], check=True
    )
    return time.perf_counter() - started


@dataclass
class RoundTrip:
    rows: int
    archive_s: float
    restore_s: float
    file_bytes: int


def archive_restore(url: str, archive_dir: Path, days: list[dt.date]) -> RoundTrip:
    """Archive the fixes of the UTC ``days`` (one maintenance round whose retention puts
    exactly them and older days past it), then restore every one of them from its file, so the
    database ends as it began and the round trip can be repeated (scripts/bench_scale.py)."""
    shutil.rmtree(archive_dir, ignore_errors=True)  # an existing file would skip the export
    keep = (dt.datetime.now(dt.UTC).date() - max(days)).days - 1  # the day after stays
    window = TsWindow({"positions": keep, "readings": 400})
    with psycopg.connect(url, autocommit=True) as conn:
        started = time.perf_counter()
        # restored_keep 0: a day restored by an earlier round is archived again.
        report = maintain(conn, window, archive_dir, restored_keep=dt.timedelta(0))
        archive_s = time.perf_counter() - started
        done = {d: n for t, d, n in report.archived if t == "positions" and d in days}
        if sorted(done) != sorted(days):
            raise RuntimeError(f"archived {sorted(done)}, wanted {sorted(days)}: {report}")
        print(f"  archived {sum(done.values()):,} fixes in {archive_s:.1f} s", flush=True)
        started = time.perf_counter()
        restored = sum(restore_day(conn, archive_dir, "positions", d) for d in days)
        restore_s = time.perf_counter() - started
    rows = sum(done.values())
    assert restored == rows
    size = sum(archive_path(archive_dir, "positions", d).stat().st_size for d in days)
    return RoundTrip(rows, archive_s, restore_s, size)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--scale", type=float, default=1.0)
    ap.add_argument("--skip-seed", action="store_true")
    args = ap.parse_args(argv)
    url = bench_url(BENCH_DB)
    with tempfile.TemporaryDirectory(prefix="bench_lc_") as tmp:
        work = Path(tmp)
        if not args.skip_seed:
            print(f"seeding the demo city at scale {args.scale:g} …", flush=True)
            print(f"seeded in {seed(url, args.scale, work / 'demo'):.0f} s", flush=True)
        archive = work / "archive"
        window = TsWindow({"positions": 2, "readings": 400})
        with psycopg.connect(url, autocommit=True) as conn:
            started = time.perf_counter()
            report = maintain(conn, window, archive, max_days=10)
            archive_s = time.perf_counter() - started
            days = [(d, n) for t, d, n in report.archived if t == "positions"]
            if not days:
                print("nothing was archived: seed first (without --skip-seed)")
                return 1
            day, rows = max(days, key=lambda x: x[1])
            path = archive_path(archive, "positions", day)
            size_mb = path.stat().st_size / 1e6
            started = time.perf_counter()
            restored = restore_day(conn, archive, "positions", day)
            restore_s = time.perf_counter() - started
        assert restored == rows == file_rows(path)
        total = sum(n for _, n in days)
        rss_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
        print()
        print(f"| step (scale {args.scale:g}) | rows | s | rows/s | file MB |")
        print("|---|---|---|---|---|")
        print(
            f"| archive {len(days)} UTC days of fixes | {total:,} | {archive_s:.1f} |"
            f" {total / archive_s:,.0f} | |"
        )
        print(
            f"| restore {day} | {restored:,} | {restore_s:.1f} | {restored / restore_s:,.0f} |"
            f" {size_mb:.1f} |"
        )
        print(f"\npeak RSS of the archiving process: {rss_mb:.0f} MB")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
