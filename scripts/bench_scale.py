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
import asyncio
import datetime as dt
import json
import os
import random
import shutil
import statistics
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

import httpx
import psycopg

from layers.demo_city.config import CST
from scripts.benchkit import (
    ROOT,
    MemorySampler,
    bench_url,
    cluster_pids,
    free_port,
    recreate_database,
    run_measured,
)

STATE = ROOT / ".data" / "bench_scale"
#: Measurement groups, in the order they run (tiles first: the ingest adds zones; the
#: lifecycle before the ingest, so the archived day holds the seed's fixes only).
GROUPS = ("tiles", "recompute", "lifecycle", "readings", "ingest")

#: The fixes' day is five days back, so the ingest runs can replay the fleet onto the
#: following days without reaching the future (scripts/bench_ingest.py seeds 12 days back: its
#: template serves many invocations).
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


# -- one row ------------------------------------------------------------------------------
@dataclass
class Row:
    """One measure at one scale: the median of ``runs`` (None: not measured, ``note`` says
    why), the unit, and peak memory beside it — the measured process's RSS (server: all its
    processes) and the private cluster's PSS meanwhile (MiB)."""

    value: float | None
    unit: str
    runs: list[float] = field(default_factory=list)
    rss_mib: float | None = None
    pg_mib: float | None = None
    note: str = ""


def _median(values: list[float]) -> float | None:
    return statistics.median(values) if values else None


def not_measured(unit: str, why: str) -> Row:
    return Row(None, unit, note=f"not measured: {why}")


#: Row keys in print order, with their labels.
LABELS = {
    "seed": "seed (generate, load, recompute, detect, live layer)",
    "tiles_cold_1": "tiles cold, 1 worker",
    "tiles_cold_2": "tiles cold, 2 workers",
    "tiles_cold_replica": "tiles cold, 1 worker + read replica",
    "tiles_warm_1": "tiles warm, 1 worker",
    "tiles_warm_2": "tiles warm, 2 workers",
    "tiles_warm_replica": "tiles warm, 1 worker + read replica",
    "ingest": "tanker ingest over HTTP (2 workers)",
    "readings": "readings ingest over HTTP (2 workers)",
    "recompute": "full recompute",
    "archive": "archive the seeded day's fixes (2 UTC days)",
    "restore": "restore them",
}


# -- measurements (each the existing bench script's function) -----------------------------
def _with_replica() -> list[int]:
    """The primary's processes and the standby's: a replica run's PostgreSQL memory."""
    return cluster_pids() + cluster_pids(ROOT / ".data" / "replica")


def measure_tiles(
    url: str, runs: int, replica_url: str | None, only: tuple[str, ...] = ("1", "2", "replica")
) -> dict[str, Row]:
    """scripts/bench_workers.py's runs: 1 and 2 workers (order alternating per round), then
    one worker reading from the replica; cold = 600 tiles once (cache off), warm = a popular
    300 requested 6,000 times (cache primed)."""
    from scripts.bench_tiles import tile_list
    from scripts.bench_workers import measure
    from scripts.benchkit import make_key

    key = make_key(url, name="bench_scale")
    popular = tile_list(url, 300, 5)
    rng = random.Random(6)
    tiles = {
        "prime": tile_list(url, 600, 7),
        "cold": tile_list(url, 600, 4),
        "popular": popular,
        "warm": [rng.choice(popular) for _ in range(6000)],
    }
    configs: list[tuple[str, int, dict[str, str] | None]] = [("1", 1, None), ("2", 2, None)]
    if replica_url:
        configs.append(("replica", 1, {"GEORISK_READ_DATABASE_URL": replica_url}))
    configs = [c for c in configs if c[0] in only]
    got: dict[str, list[tuple[float, int, int]]] = {}
    failed: dict[str, list[str]] = {}
    for r in range(runs):
        for mode in ("cold", "warm"):
            order = configs if r % 2 == 0 else configs[::-1]
            for name, workers, env in order:
                try:
                    with MemorySampler(_with_replica if name == "replica" else cluster_pids) as pg:
                        res = measure(url, workers, mode, tiles, key, 16, extra_env=env)
                except RuntimeError as exc:  # a server that did not start: that run is lost
                    failed.setdefault(f"tiles_{mode}_{name}", []).append(str(exc)[:300])
                    print(f"  tiles {mode} {name}: failed: {str(exc)[:300]}", flush=True)
                    continue
                got.setdefault(f"tiles_{mode}_{name}", []).append(
                    (res.rps, res.peak_rss, pg.peak_kb)
                )
                errors = f", {res.errors} errors" if res.errors else ""
                print(f"  tiles {mode} {name}: {res.rps:,.0f} req/s{errors}", flush=True)
    out = {
        k: Row(
            _median([v[0] for v in vals]),
            "req/s",
            [v[0] for v in vals],
            max(v[1] for v in vals) / 2**20,
            max(v[2] for v in vals) / 1024,
        )
        for k, vals in got.items()
    }
    for k, lost in failed.items():
        if k in out:
            out[k].note = f"{len(lost)} of {runs} runs lost: the server did not start"
        else:
            out[k] = not_measured("req/s", f"the server did not start ({lost[0][:120]})")
    if not replica_url and "replica" in only:
        for mode in ("cold", "warm"):
            out[f"tiles_{mode}_replica"] = not_measured("req/s", "no replica (see --replica)")
    return out


def measure_ingest(
    url: str, runs: int, vehicles: int, hours: float, figures: dict[str, object]
) -> Row:
    """scripts/bench_ingest.py's replay (its functions; its ``main`` is one piece): the first
    ``vehicles`` tankers' fixes of ``hours`` from 06:00 of the seeded day, shifted by whole
    days past the last stored fix so every fix is new, from 4 clients in batches of 2,000,
    through ``georisk serve --workers 2`` with ≥ 10,000 zones."""
    from scripts.bench_ingest import add_zones, batches, load_fixes
    from scripts.benchkit import (
        free_port,
        key_headers,
        make_key,
        peak_rss_kb,
        post_all,
    )

    add_zones(url, 10_000)
    day0 = dt.datetime.fromisoformat(f"{figures['day']}T06:00:00+08:00")
    fx = load_fixes(url, vehicles, day0, hours)
    with psycopg.connect(url) as c:
        row = c.execute("SELECT max(ts) FROM positions").fetchone()
    last = row[0] if row else day0
    days_after = (last.date() - day0.date()).days + 1
    if day0 + dt.timedelta(days=days_after + runs - 1, hours=hours) > dt.datetime.now(dt.UTC):
        return not_measured("fixes/s", "replayed days would reach the future: seed again")
    headers = key_headers(make_key(url, name="bench_scale_ingest"))
    port = free_port()
    env = {**os.environ, "GEORISK_DATABASE_URL": url, "GEORISK_DB_POOL_MAX": "8"}
    # uvicorn straight, as scripts/bench_ingest.py runs it: on the loaded machine of the
    # figures in docs/benchmarks.md, ``georisk serve --workers 2`` never answered /healthz.
    cmd = [sys.executable, "-m", "uvicorn", "geo_api.app:create_app", "--factory"]
    cmd += ["--port", str(port), "--workers", "2", "--log-level", "warning"]
    rates: list[float] = []
    with MemorySampler() as pg:
        server = subprocess.Popen(cmd, env=env, cwd=ROOT, start_new_session=True)
        try:
            wait_healthy(f"http://127.0.0.1:{port}", 300)
            for run in range(runs):
                shift = (days_after + run) * 86_400_000_000
                work = batches(fx, shift, 4, 2000, {})
                counts = [0, 0]
                started = time.perf_counter()
                asyncio.run(
                    post_all(
                        f"http://127.0.0.1:{port}", "/api/positions", work, {}, counts, headers
                    )
                )
                rates.append(counts[0] / (time.perf_counter() - started))
                print(f"  ingest run {run + 1}: {counts[0]:,} fixes, {rates[-1]:,.0f}/s"
                      f" (not stored: {counts[1]})", flush=True)  # fmt: skip
            rss = peak_rss_kb(server.pid)
        finally:
            server.terminate()
            server.wait(60)
    return Row(_median(rates), "fixes/s", rates, rss / 1024, pg.peak_kb / 1024,
               f"{len(fx):,} fixes a run")  # fmt: skip


def wait_healthy(base: str, timeout_s: float) -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        try:
            if httpx.get(base + "/healthz", timeout=5).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.5)
    raise RuntimeError(f"{base} did not answer /healthz within {timeout_s:g} s")


def measure_readings(url: str, runs: int, samples: int) -> Row:
    """scripts/bench_readings.py's ``measure_readings``: ``samples`` readings of every
    monitoring point of the city a run, with alarm evaluation, 4 clients, 2 workers."""
    from scripts import bench_readings

    try:
        with MemorySampler() as pg:
            res = bench_readings.measure_readings(url, runs=runs, samples=samples, port=free_port())
    except httpx.HTTPStatusError as exc:  # the server's answer is the finding: say it
        return not_measured("readings/s", f"the server answered {exc.response.status_code}")
    return Row(_median(res.rates), "readings/s", res.rates, res.rss_server_kb / 1024,
               pg.peak_kb / 1024, f"{res.points:,} points × {samples} a run")  # fmt: skip


_CHILD = (
    "import asyncio, datetime as dt, json, sys; from pathlib import Path;"
    " from layers.risk.recompute import RecomputeConfig;"
    " from scripts.bench_risk import full_recompute;"
    " from scripts.bench_lifecycle import archive_restore;"
    " a = json.loads(sys.argv[1]);"
    " r = (asyncio.run(full_recompute(a['url'], RecomputeConfig(population_raster="
    "Path(a['raster'])), a['runs'])) if a['what'] == 'recompute' else"
    " [vars(archive_restore(a['url'], Path(a['archive']),"
    " [dt.date.fromisoformat(d) for d in a['days']])) for _ in range(a['runs'])]);"
    " Path(a['out']).write_text(json.dumps(r))"
)


def _child(args: dict[str, object]) -> tuple[object, float, float]:
    """Run a recompute or lifecycle measurement in a process of its own, so its peak RSS is
    its own: (its JSON answer, peak RSS MiB, cluster peak PSS MiB)."""
    out = STATE / f"child_{args['what']}.json"
    _, rss_kb, pg_kb = run_measured(
        [sys.executable, "-c", _CHILD, json.dumps({**args, "out": str(out)})]
    )
    return json.loads(out.read_text()), rss_kb / 1024, pg_kb / 1024


def measure_recompute(url: str, scale: float, runs: int) -> Row:
    """scripts/bench_risk.py's ``full_recompute`` with the scale's population raster."""
    raster = out_dir(scale) / "population.tif"
    times, rss, pg = _child({"what": "recompute", "url": url, "raster": str(raster), "runs": runs})
    assert isinstance(times, list)
    return Row(_median(times), "s", times, rss, pg)


def seeded_utc_days(url: str, figures: dict[str, object]) -> list[dt.date]:
    """The UTC days the seeded local day's fixes fall in (two: Asia/Shanghai is UTC+8)."""
    day = dt.date.fromisoformat(str(figures["day"]))
    start = dt.datetime.combine(day, dt.time(), tzinfo=CST).astimezone(dt.UTC)
    return sorted({start.date(), (start + dt.timedelta(days=1, seconds=-1)).date()})


def measure_lifecycle(url: str, figures: dict[str, object], runs: int) -> tuple[Row, Row]:
    """scripts/bench_lifecycle.py's ``archive_restore`` of the seeded day, ``runs`` times."""
    days = [d.isoformat() for d in seeded_utc_days(url, figures)]
    trips, rss, pg = _child(
        {
            "what": "lifecycle",
            "url": url,
            "archive": str(STATE / "archive"),
            "days": days,
            "runs": runs,
        }
    )
    assert isinstance(trips, list)
    rows, size = trips[0]["rows"], trips[0]["file_bytes"] / 1e6
    archive = [t["archive_s"] for t in trips]
    restore = [t["restore_s"] for t in trips]
    note = f"{rows:,} rows, {size:,.0f} MB GeoParquet"
    return (
        Row(_median(archive), "s", archive, rss, pg, note),
        Row(_median(restore), "s", restore, rss, pg, note),
    )


def seed_row(figures: dict[str, object] | None) -> Row:
    if not figures:
        return not_measured("s", "database given, not seeded by this script (--seed)")
    counts = figures.get("counts", {})
    assert isinstance(counts, dict)
    return Row(
        float(str(figures["seconds"])),
        "s",
        [float(str(figures["seconds"]))],
        float(str(figures["seed_peak_rss_mib"])),
        float(str(figures["postgres_peak_pss_mib"])),
        f"{counts.get('vehicles', 0):,} tankers, {counts.get('positions', 0):,} fixes",
    )


# -- the table ------------------------------------------------------------------------------
def _fmt(row: Row | None) -> str:
    if row is None:
        return "—"
    if row.value is None:
        return row.note
    v = f"{row.value:,.1f}" if row.unit == "s" else f"{row.value:,.0f}"
    mem = ""
    if row.rss_mib is not None:
        mem = f" ({row.rss_mib:,.0f} MiB"
        mem += f"; PG {row.pg_mib:,.0f} MiB)" if row.pg_mib is not None else ")"
    return f"{v} {row.unit}{mem}"


def table(scales: list[float], results: dict[float, dict[str, Row]]) -> str:
    first, last = scales[0], scales[-1]
    head = ["measure", *(f"scale {s:g}" for s in scales)]
    if len(scales) > 1:
        head.append(f"scale {last:g} / scale {first:g}")
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for key, label in LABELS.items():
        cells = [label, *(_fmt(results[s].get(key)) for s in scales)]
        if len(scales) > 1:
            a, b = results[first].get(key), results[last].get(key)
            x = a.value if a else None
            y = b.value if b else None
            cells.append(f"{y / x:.2f}" if x and y is not None else "—")
        lines.append("| " + " | ".join(cells) + " |")
    notes = [
        f"- scale {s:g}, {LABELS[k]}: {r.note}"
        for s in scales
        for k, r in results[s].items()
        if r.note and r.value is not None
    ]
    return "\n".join(lines + (["", *notes] if notes else []))


def load_results(scale: float) -> dict[str, Row]:
    path = STATE / f"results_scale{scale_name(scale)}.json"
    if not path.exists():
        return {}
    return {k: Row(**v) for k, v in json.loads(path.read_text()).items()}


def save_results(scale: float, rows: dict[str, Row]) -> None:
    path = STATE / f"results_scale{scale_name(scale)}.json"
    path.write_text(json.dumps({k: vars(r) for k, r in rows.items()}, indent=1))


def replica_for(url: str) -> str | None:
    """``georisk db replica up`` (a hot standby of the whole private cluster), when the disk
    has room for a second copy; answers the standby's URL of the same database."""
    from geo_api.pg_local import LocalReplica

    data = ROOT / ".data"
    replica = LocalReplica(data)
    if not replica.initialised():
        used = sum(f.stat().st_size for f in (data / "pg").resolve().rglob("*") if f.is_file())
        free = shutil.disk_usage(data).free
        if free < used + 10 * 2**30:
            print(f"no replica: {free / 2**30:.0f} GiB free for a {used / 2**30:.0f} GiB copy")
            return None
    replica.up()
    return replica.url(url.rsplit("/", 1)[1])


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--scales", default="1,4")
    ap.add_argument("--seed", action="store_true", help="drop, migrate and seed each database")
    ap.add_argument("--only-seed", action="store_true", help="seed, print the figures, stop")
    ap.add_argument("--database-url", action="append", default=[], help="one per scale")
    ap.add_argument("--runs", type=int, default=3)
    ap.add_argument("--lifecycle-runs", type=int, default=3, help="archive + restore rounds")
    ap.add_argument("--only", help=f"comma-separated subset of {','.join(GROUPS)}")
    ap.add_argument("--replica", action=argparse.BooleanOptionalAction, default=True)
    ap.add_argument("--tile-configs", default="1,2,replica", help="server set-ups for tiles")
    ap.add_argument("--vehicles", type=int, default=2400, help="tankers replayed (ingest)")
    ap.add_argument("--hours", type=float, default=2.0, help="hours of their fixes a run")
    ap.add_argument("--samples", type=int, default=30, help="readings a point a run")
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
    only = set(args.only.split(",")) if args.only else set(GROUPS)
    for scale, url in zip(scales, urls, strict=True):
        figures = seed_figures(scale)
        rows = load_results(scale)
        rows["seed"] = seed_row(figures)
        print(f"\nscale {scale:g}: {url}", flush=True)
        if "tiles" in only:
            configs = tuple(args.tile_configs.split(","))
            replica = replica_for(url) if args.replica and "replica" in configs else None
            rows.update(measure_tiles(url, args.runs, replica, configs))
            save_results(scale, rows)
        if "recompute" in only:
            rows["recompute"] = measure_recompute(url, scale, args.runs)
            print(f"  recompute: {_fmt(rows['recompute'])}", flush=True)
            save_results(scale, rows)
        if "lifecycle" in only:
            if figures:
                rows["archive"], rows["restore"] = measure_lifecycle(
                    url, figures, args.lifecycle_runs
                )
            else:
                rows["archive"] = rows["restore"] = not_measured("s", "seeded day unknown")
            print(f"  archive: {_fmt(rows['archive'])}, restore: {_fmt(rows['restore'])}")
            save_results(scale, rows)
        if "readings" in only:
            rows["readings"] = measure_readings(url, args.runs, args.samples)
            save_results(scale, rows)
        if "ingest" in only:
            if figures:
                rows["ingest"] = measure_ingest(url, args.runs, args.vehicles, args.hours, figures)
            else:
                rows["ingest"] = not_measured("fixes/s", "seeded day unknown")
            save_results(scale, rows)
    results = {s: load_results(s) for s in scales}
    for s in scales:
        results[s]["seed"] = seed_row(seed_figures(s))
    print()
    print(table(scales, results))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
