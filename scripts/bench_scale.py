"""The cost curve as the city grows: the same measurements at scale 1 and scale 4, one table.

    python -m scripts.bench_scale [--scales 1,4] [--seed] [--database-url URL …] [--runs 3]

Each scale has its own database in the private cluster (``georisk_scale1``, ``georisk_scale4``
…), or the one given by ``--database-url`` (one per scale, in order). ``--seed`` drops,
migrates and seeds it first in a subprocess, recording the seed's wall time, its own peak RSS
(as ``/usr/bin/time -v`` reports it) and the cluster's peak PSS in
``.data/bench_scale/scale{N}.json``; later runs without ``--seed`` print those figures again.

Every measurement is the existing bench script's own function (one home each):

- tiles/s cold and warm with 1 and 2 workers — scripts/bench_workers.py ``measure``;
- the same with a read replica — one worker reading from ``georisk db replica up``'s standby;
- ingest fixes/s over HTTP — scripts/bench_ingest.py ``measure_ingest`` on a copy of the
  scale's vehicles and zones (its own database, as bench_ingest does);
- readings/s — scripts/bench_readings.py ``measure_readings`` against the scale's points;
- full recompute — scripts/bench_risk.py ``full_recompute``;
- archive + restore of one UTC day of fixes — scripts/bench_lifecycle.py ``archive_restore``.

Medians of ``--runs`` runs (≥ 3 for the fast rows), peak memory beside each speed, and the
ratio of the last scale to the first per row. A row that cannot be measured prints
"not measured" and why, never a number.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import sys
from pathlib import Path

from layers.demo_city.config import CST
from scripts.benchkit import ROOT, bench_url, recreate_database, run_measured

STATE = ROOT / ".data" / "bench_scale"

#: The fixes' day is five days back (as scripts/bench_ingest.py seeds), so the ingest runs can
#: replay the fleet onto the following days without reaching the future.
SEED_DAYS_AGO = 5
_SEED_CODE = (
    "import datetime as dt, json, sys; from pathlib import Path;"
    " from geo_api.migrate import upgrade; from layers.demo_city import seed_demo_city;"
    " upgrade(sys.argv[1]);"
    " r = seed_demo_city(sys.argv[1], scale=float(sys.argv[2]), out_dir=Path(sys.argv[3]),"
    " day=dt.date.fromisoformat(sys.argv[5]));"
    " Path(sys.argv[4]).write_text(json.dumps({'counts': r.counts, 'phases': r.seconds}))"
)


def scale_name(scale: float) -> str:
    return f"{scale:g}".replace(".", "_")


def out_dir(scale: float) -> Path:
    """Where a scale's seed leaves its population raster and ground truth."""
    return STATE / f"scale{scale_name(scale)}"


def seed_scale(url: str, scale: float) -> dict[str, object]:
    """Drop, migrate and seed ``url`` at ``scale`` in a subprocess; record and answer the
    seconds, the seeding process's peak RSS and PostgreSQL's peak PSS."""
    recreate_database(url)
    out = out_dir(scale)
    out.mkdir(parents=True, exist_ok=True)
    report = out / "seed_report.json"
    day = dt.datetime.now(CST).date() - dt.timedelta(days=SEED_DAYS_AGO)
    seconds, rss_kb, pg_kb = run_measured(
        [sys.executable, "-c", _SEED_CODE, url, str(scale), str(out), str(report), str(day)]
    )
    figures: dict[str, object] = {
        "scale": scale,
        "url": url,
        "day": day.isoformat(),
        "seconds": round(seconds, 1),
        "seed_peak_rss_mib": round(rss_kb / 1024),
        "postgres_peak_pss_mib": round(pg_kb / 1024),
        **json.loads(report.read_text()),
    }
    (STATE / f"scale{scale_name(scale)}.json").write_text(json.dumps(figures, indent=1))
    return figures


def seed_figures(scale: float) -> dict[str, object] | None:
    path = STATE / f"scale{scale_name(scale)}.json"
    return json.loads(path.read_text()) if path.exists() else None


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--scales", default="1,4")
    ap.add_argument("--seed", action="store_true", help="drop, migrate and seed each database")
    ap.add_argument("--only-seed", action="store_true", help="seed, print the figures, stop")
    ap.add_argument("--database-url", action="append", default=[], help="one per scale")
    ap.add_argument("--runs", type=int, default=3)
    args = ap.parse_args(argv)
    scales = [float(s) for s in args.scales.split(",")]
    if args.database_url and len(args.database_url) != len(scales):
        ap.error("give one --database-url per scale, or none")
    urls = args.database_url or [bench_url(f"georisk_scale{scale_name(s)}") for s in scales]
    STATE.mkdir(parents=True, exist_ok=True)
    if args.seed:
        for scale, url in zip(scales, urls, strict=True):
            print(f"seeding scale {scale:g} into {url} …", flush=True)
            print(json.dumps(seed_scale(url, scale), indent=1), flush=True)
    if args.only_seed:
        return 0
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
