"""Benchmark: sustained tanker ingest through the HTTP API, alert latency, detection quality.

    python -m scripts.bench_ingest [--scale 1] [--runs 3] [--clients 4] [--batch 2000]

Uses its own database (``georisk_bench_6`` in the private cluster), cloned from a seeded
template (``georisk_bench_6_seed``: the demo city, whose seed already ran the detector — that
gives precision/recall vs its ground truth — plus extra zones up to ≥ 10,000 so every rule is
judged against them). ``--skip-seed`` reuses the template, so every invocation replays onto the
same state. Then each run replays one more day of the fleet (the seeded day shifted by k days,
so every fix is new) through a real uvicorn server, from concurrent httpx clients, each owning
a share of the vehicles (a gateway shards terminals by vehicle; batches of one vehicle never
cross clients). Latency: a listener on ``georisk_changes`` timestamps every alert NOTIFY; the
fix completing an illegal stop is the first fix past the allowed dwell, and the clock starts
when its batch is sent. A client on ``GET /api/alerts/stream`` timestamps the same alerts as
they reach it, so both the NOTIFY and the SSE delivery are timed. Prints one table, with peak
RSS.

Every warning model of the transport chain (``vocab.WARNING_MODEL_RULES``) gets one row: its
precision and recall against the seed's planted scenarios (``chain_scenarios`` in the ground
truth; the seed's detection runs the registered models), or "no model" while its rule is not
in ``layers/transport/warnings/registry.MODELS``.
"""

from __future__ import annotations

import argparse
import asyncio
import datetime as dt
import json
import os
import resource
import statistics
import threading
import time
from pathlib import Path
from typing import Any

import httpx
import numpy as np
import psycopg

from layers.core.vocab import WARNING_MODEL_RULES
from layers.demo_city.truth import ChainScore, Score, score_chain
from layers.transport.warnings import registry
from scripts.benchkit import (
    Batch,
    NotifyListener,
    bench_url,
    key_headers,
    make_key,
    peak_rss_kb,
    post_all,
)

KINDS = {
    "illegal_roadside_stop": "illegal_parking",
    "forbidden_zone_stop": "forbidden_zone_parking",
    "overspeed": "overspeed",
}
TOLERANCE = dt.timedelta(seconds=60)


def score(conn: psycopg.Connection, truth: dict[str, Any]) -> dict[str, Score]:
    """Precision and recall of alerts per planted kind: an alert matches an event of the same
    vehicle whose time span it overlaps (± 60 s) and, for forbidden zones, names its zone.
    Only the seeded fleet's alerts on the seeded day count (other rows may share the DB)."""
    from layers.demo_city.config import Counts

    fleet = Counts.for_scale(float(truth["scale"])).vehicles
    day0 = dt.datetime.fromisoformat(truth["day"] + "T00:00:00+08:00")
    rows = conn.execute(
        "SELECT id, vehicle_id, rule, zone_id, episode_start, episode_end FROM alerts"
        " WHERE vehicle_id <= %s AND episode_start >= %s AND episode_start < %s",
        (fleet, day0 - dt.timedelta(hours=1), day0 + dt.timedelta(days=1, hours=1)),
    ).fetchall()
    out: dict[str, Score] = {}
    for kind, rule in KINDS.items():
        events = [e for e in truth["events"] if e["kind"] == kind]
        by_vehicle: dict[int, list[tuple[Any, ...]]] = {}
        for a in rows:
            if a[2] == rule:
                by_vehicle.setdefault(a[1], []).append(a)

        def match(e: dict[str, Any], a: tuple[Any, ...], kind: str = kind) -> bool:
            s, t = dt.datetime.fromisoformat(e["start"]), dt.datetime.fromisoformat(e["end"])
            in_time = a[4] <= t + TOLERANCE and (a[5] or a[4]) >= s - TOLERANCE
            return in_time and (kind != "forbidden_zone_stop" or a[3] in e["zone_ids"])

        sc = Score(events=len(events), alerts=sum(len(v) for v in by_vehicle.values()))
        for e in events:
            if any(match(e, a) for a in by_vehicle.get(e["vehicle_id"], [])):
                sc.hits += 1
            else:
                sc.missed.append(e)
        by_event: dict[int, list[dict[str, Any]]] = {}
        for e in events:
            by_event.setdefault(e["vehicle_id"], []).append(e)
        for v, alerts in by_vehicle.items():
            for a in alerts:
                if any(match(e, a) for e in by_event.get(v, [])):
                    sc.good += 1
                else:
                    sc.false.append(a)
        out[kind] = sc
    return out


def chain_quality(conn: psycopg.Connection, truth: dict[str, Any]) -> dict[str, ChainScore | None]:
    """Per warning-model rule: its score against the planted chain scenarios, or None when no
    registered model raises that rule (nothing to score, and not a pass)."""
    from layers.demo_city.config import Counts

    fleet = Counts.for_scale(float(truth["scale"])).vehicles
    day0 = dt.datetime.fromisoformat(truth["day"] + "T00:00:00+08:00")
    rows = conn.execute(
        "SELECT id, vehicle_id, rule, zone_id, episode_start, episode_end FROM alerts"
        " WHERE vehicle_id <= %s AND rule = ANY(%s) AND episode_start >= %s"
        " AND episode_start < %s",
        (
            fleet,
            list(WARNING_MODEL_RULES),
            day0 - dt.timedelta(hours=1),
            day0 + dt.timedelta(days=1, hours=1),
        ),
    ).fetchall()
    registered = {r for m in registry.MODELS for r in m.rules}
    scores = score_chain(rows, truth, [r for r in WARNING_MODEL_RULES if r in registered])
    return {r: scores.get(r) for r in WARNING_MODEL_RULES}


def chain_rows(
    quality: dict[str, ChainScore | None], truth: dict[str, Any]
) -> list[tuple[str, str, str]]:
    planted = truth.get("chain_scenarios", {}).get("event_counts", {})
    out = []
    for rule, sc in quality.items():
        if sc is None:
            value = f"no model ({planted.get(rule, 0)} planted)"
        else:
            value = f"{sc.precision:.3f} / {sc.recall:.3f} ({sc.events} planted"
            value += f", {sc.twins_alerted} twins alerted)" if sc.twins_alerted else ")"
        out.append((f"{rule} precision / recall", value, "≥ 0.98"))
    return out


# -- set-up --------------------------------------------------------------------------------
BENCH_DB = "georisk_bench_6"
_REC = np.dtype(
    [("v", ">i4"), ("t", ">i8"), ("lon", ">f8"), ("lat", ">f8"), ("s", ">f4"), ("h", ">i2")]
)


SEED_DAYS_AGO = 12  # room for replays of the following days, all in the past


def setup(url: str, scale: float, out: Path, zones: int) -> float:
    """Drop, migrate and seed the template database (``SEED_DAYS_AGO`` days ago, so replays
    stay in the past); then add small protected zones until there are ``zones``. Returns the
    seed's seconds."""
    from geo_api.migrate import upgrade
    from layers.demo_city import seed_demo_city

    _recreate(url)
    upgrade(url)
    t0 = time.perf_counter()
    day = dt.date.today() - dt.timedelta(days=SEED_DAYS_AGO)
    seed_demo_city(url, scale=scale, out_dir=out, progress=False, day=day)
    seconds = time.perf_counter() - t0
    add_zones(url, zones)
    with psycopg.connect(url, autocommit=True) as c:
        c.execute("VACUUM ANALYZE")
    return seconds


def _recreate(url: str, template: str | None = None) -> None:
    admin, name = url.rsplit("/", 1)
    with psycopg.connect(admin + "/postgres", autocommit=True) as c:
        c.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        c.execute(f'CREATE DATABASE "{name}"' + (f' TEMPLATE "{template}"' if template else ""))


def clone(template_url: str, url: str) -> None:
    """A fresh copy of the seeded template, so each invocation starts from the same state."""
    _recreate(url, template_url.rsplit("/", 1)[1])


def add_zones(url: str, zones: int) -> None:
    """Top the zones up to ``zones`` with small protected zones spread over the city."""
    with psycopg.connect(url, autocommit=True) as c:
        c.execute(
            "INSERT INTO zones (code, name, kind, active_hours, geom)"
            " SELECT 'BENCH-' || g, '基准测试区' || g,"
            " (ARRAY['school', 'hospital', 'residential'])[g %% 3 + 1],"
            " CASE WHEN g %% 3 = 0 THEN '07:00-18:00' END,"
            " ST_Multi(ST_Expand(ST_SetSRID("
            "   ST_Point(121.2 + random(), 29.6 + random() * 0.6), 4326), 0.0004))"
            " FROM generate_series(1, greatest(0, %s - (SELECT count(*) FROM zones))) g",
            (zones,),
        )
        c.execute("ANALYZE zones")


def load_fixes(url: str, vehicles: int, start: dt.datetime, hours: float) -> np.ndarray:
    with psycopg.connect(url) as c:
        row = c.execute(
            "SELECT string_agg(int4send(vehicle_id) || int8send((extract(epoch FROM ts)"
            " * 1000000)::int8) || float8send(lon) || float8send(lat) || float4send(speed_kmh)"
            ""
            " || int2send(coalesce(heading, 0::int2)), ''::bytea ORDER BY ts, vehicle_id)"
            " FROM positions WHERE vehicle_id <= %s AND ts >= %s AND ts < %s",
            (vehicles, start, start + dt.timedelta(hours=hours)),
            binary=True,
        ).fetchone()
    return np.frombuffer((row[0] if row else None) or b"", dtype=_REC)


def batches(
    fx: np.ndarray, shift_us: int, clients: int, size: int, completing: dict[tuple[int, int], int]
) -> list[list[Batch]]:
    """Per client (vehicle id mod clients), time-ordered batches of about ``size`` fixes."""
    out: list[list[Batch]] = [[] for _ in range(clients)]
    t = fx["t"].astype(np.int64) + shift_us
    ts = np.datetime_as_string(t.astype("datetime64[us]"), unit="s")
    for c in range(clients):
        idx = np.flatnonzero(fx["v"] % clients == c)
        for a in range(0, len(idx), size):
            part = idx[a : a + size]
            rows = [
                f'{{"vehicle_id":{int(fx["v"][i])},"ts":"{ts[i]}Z","lon":{fx["lon"][i]:.6f},'
                f'"lat":{fx["lat"][i]:.6f},"speed_kmh":{fx["s"][i]:.1f},"heading":{int(fx["h"][i])}}}'
                for i in part.tolist()
            ]
            keys = [(int(fx["v"][i]), int(fx["t"][i])) for i in part.tolist()]
            done = [completing[k] for k in keys if k in completing]
            out[c].append(Batch(("[" + ",".join(rows) + "]").encode(), done))
    return out


# -- one run -------------------------------------------------------------------------------
class SseListener(threading.Thread):
    """A live-map client on ``/api/alerts/stream``: first arrival time of each alert id."""

    def __init__(self, base: str, headers: dict[str, str]) -> None:
        super().__init__(daemon=True)
        self.base = base
        self.headers = headers
        self.first: dict[int, float] = {}
        self.stop = threading.Event()
        self.ready = threading.Event()

    def run(self) -> None:
        params = {"rule": "illegal_parking"}
        with (
            httpx.Client(
                base_url=self.base, headers=self.headers, timeout=httpx.Timeout(10, read=30)
            ) as http,
            http.stream("GET", "/api/alerts/stream", params=params) as r,
        ):
            self.ready.set()
            for line in r.iter_lines():  # keep-alives (1 s here) let the loop see ``stop``
                if self.stop.is_set():
                    return
                if line.startswith("id: "):
                    self.first.setdefault(int(line[4:].split(":")[0]), time.perf_counter())


def _latencies(
    url: str,
    first: dict[int, float],
    sent: dict[int, float],
    stops: list[tuple[int, int]],
    shift_us: int,
) -> list[float]:
    """Seconds from sending the completing fix to the first sight (``first``: NOTIFY or SSE)
    of that stop's alert."""
    out = []
    with psycopg.connect(url) as c:
        for k, (vid, start_us) in enumerate(stops):
            if k not in sent:
                continue
            start = dt.datetime.fromtimestamp((start_us + shift_us) / 1e6, dt.UTC)
            row = c.execute(
                "SELECT id FROM alerts WHERE vehicle_id = %s AND rule = 'illegal_parking'"
                " AND episode_start BETWEEN %s AND %s ORDER BY id LIMIT 1",
                (vid, start - dt.timedelta(seconds=90), start + dt.timedelta(seconds=90)),
            ).fetchone()
            if row and int(row[0]) in first:
                out.append(first[int(row[0])] - sent[k])
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--scale", type=float, default=1.0)
    ap.add_argument("--runs", type=int, default=3)
    ap.add_argument("--clients", type=int, default=4)
    ap.add_argument("--batch", type=int, default=2000)
    ap.add_argument("--vehicles", type=int, default=1200)
    ap.add_argument("--hours", type=float, default=8.0)
    ap.add_argument("--workers", type=int, default=2)
    ap.add_argument("--zones", type=int, default=10_000)
    ap.add_argument("--skip-seed", action="store_true", help="reuse the seeded template database")
    ap.add_argument("--db", default=BENCH_DB, help="database to (re)create in the private cluster")
    ap.add_argument("--out", type=Path, default=Path(".data") / "bench6", help="demo files")
    args = ap.parse_args()
    import subprocess
    import sys

    url, out = bench_url(args.db), args.out
    template = bench_url(args.db + "_seed")
    seed_s = float("nan") if args.skip_seed else setup(template, args.scale, out, args.zones)
    add_zones(template, args.zones)
    clone(template, url)
    truth = json.loads((out / "ground_truth.json").read_text())
    with psycopg.connect(url) as c:
        quality = score(c, truth)
        chain = chain_quality(c, truth)
        n_zones = c.execute("SELECT count(*) FROM zones").fetchone()[0]  # type: ignore[index]
        last = c.execute("SELECT max(ts) FROM positions").fetchone()[0]  # type: ignore[index]
    day0 = dt.datetime.fromisoformat(truth["day"] + "T06:00:00+08:00")
    fx = load_fixes(url, args.vehicles, day0, args.hours)
    # The fix completing each illegal stop: the first one more than 600 s after its start.
    stops: list[tuple[int, int]] = []
    completing: dict[tuple[int, int], int] = {}
    for e in truth["events"]:
        if e["kind"] == "illegal_roadside_stop" and e["vehicle_id"] <= args.vehicles:
            s = int(dt.datetime.fromisoformat(e["start"]).timestamp() * 1e6)
            mine = fx["t"][(fx["v"] == e["vehicle_id"]) & (fx["t"] > s + 600_000_000)]
            if len(mine) and mine.min() < s + 660_000_000:
                completing[(e["vehicle_id"], int(mine.min()))] = len(stops)
                stops.append((e["vehicle_id"], s))
    headers = key_headers(make_key(url, name="bench_ingest"))
    port = 8760
    env = {
        **os.environ,
        "GEORISK_DATABASE_URL": url,
        "GEORISK_DB_POOL_MAX": "8",
        "GEORISK_ALERT_STREAM_KEEPALIVE_S": "1",
        "GEORISK_ALERT_STREAM_QUEUE_SIZE": "10000",  # the bench client must not lag
    }
    server = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "uvicorn",
            "geo_api.app:create_app",
            "--factory",
            "--port",
            str(port),
            "--workers",
            str(args.workers),
            "--log-level",
            "warning",
        ],
        env=env,
    )
    base = f"http://127.0.0.1:{port}"
    rates, lat_all, sse_all = [], [], []
    try:
        for _ in range(100):
            try:
                if httpx.get(base + "/healthz", timeout=1).status_code == 200:
                    break
            except httpx.HTTPError:
                time.sleep(0.2)
        days_after = (last.date() - day0.date()).days + 1
        for run in range(args.runs):
            shift = (days_after + run) * 86_400_000_000
            work = batches(fx, shift, args.clients, args.batch, completing)
            listener = NotifyListener(url, "alerts")
            listener.start()
            listener.ready.wait(10)
            sse = SseListener(base, headers)
            sse.start()
            sse.ready.wait(10)
            sent: dict[int, float] = {}
            counts = [0, 0]
            t0 = time.perf_counter()

            asyncio.run(post_all(base, "/api/positions", work, sent, counts, headers))
            elapsed = time.perf_counter() - t0
            time.sleep(0.5)
            listener.stop.set()
            sse.stop.set()
            listener.join()
            sse.join(5)
            rates.append(counts[0] / elapsed)
            lat = _latencies(url, listener.first, sent, stops, shift)
            lat_all += lat
            sse_all += _latencies(url, sse.first, sent, stops, shift)
            print(
                f"run {run + 1}: {counts[0]:,} fixes in {elapsed:.1f} s = {rates[-1]:,.0f}/s "
                f"(not stored: {counts[1]}), {len(lat)} illegal stops timed"
            )
        rss_server = peak_rss_kb(server.pid)
    finally:
        server.terminate()
        server.wait(30)
    p99 = float(np.percentile(lat_all, 99)) if lat_all else float("nan")
    sse99 = float(np.percentile(sse_all, 99)) if sse_all else float("nan")
    rss_self = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    rows = [
        (f"seed scale {args.scale:g} (incl. detection)", f"{seed_s:.1f} s", "≤ 300 s"),
        ("zones judged against", f"{n_zones:,}", "≥ 10,000"),
        (f"ingest fixes/s, median of {args.runs}", f"{statistics.median(rates):,.0f}", "≥ 30,000"),
        ("  runs", ", ".join(f"{r:,.0f}" for r in rates), ""),
        ("completing fix → alert NOTIFY p99", f"{p99 * 1000:.0f} ms (n={len(lat_all)})", "≤ 1 s"),
        ("  median", f"{statistics.median(lat_all) * 1000:.0f} ms" if lat_all else "-", ""),
        ("completing fix → alert on SSE p99", f"{sse99 * 1000:.0f} ms (n={len(sse_all)})", "≤ 1 s"),
        ("  median", f"{statistics.median(sse_all) * 1000:.0f} ms" if sse_all else "-", ""),
    ]
    for kind, sc in quality.items():
        rows.append(
            (
                f"{kind} precision / recall",
                f"{sc.precision:.3f} / {sc.recall:.3f} ({sc.events} planted)",
                "≥ 0.98",
            )
        )
    rows += chain_rows(chain, truth)
    rows.append(("peak RSS server (all workers)", f"{rss_server / 1024:.0f} MiB", ""))
    rows.append(("peak RSS bench client", f"{rss_self / 1024:.0f} MiB", ""))
    print(f"\n{'measure':<48} {'value':<36} target")
    for name, value, target in rows:
        print(f"{name:<48} {value:<36} {target}")


if __name__ == "__main__":
    main()
