"""Benchmark: live map updates — from a committed write to map clients holding the new tiles.

    python -m scripts.bench_live [--clients 50] [--changes 60] [--rate 2] [--duration 120]

A real server (``georisk serve``, started by this script on a free port) over a scale-1
database: by default its own, ``georisk_bench_live`` in the private cluster, created, migrated
and seeded at ``--scale`` when it holds no enterprises (``--fresh`` re-creates it); or the one
given by ``--database-url`` (the scale-1 demo, say). It writes into it: hidden dangers,
readings, tanker fixes. The stale sweep is off in the server (the seeded sensors fall silent
once seeding ends, so it would grey the whole city at start and again after each write).

Map clients: ``--clients`` of them, grouped around a few "spots" (random enterprises, five
clients a spot), each viewing a ``--viewport`` of pixels at zoom 14–16 with a random offset.
Every fifth client is a ``tile_reader`` (the published map: enterprises and monitoring
points), the others admins (the regulator's map: enterprises, monitoring points and alerts);
one API key per role. As the page does (web/app.js), a client opens
``GET /api/changes/stream``, takes the ``hello``, then fetches its view with ``?v=<version>``:
one combined request per tile address for the layers it shows, keeping each tile's ETag and
decoded features (mapbox-vector-tile). On ``change`` events for a layer it shows whose bbox
(null: the whole layer) meets its view, it gathers the burst for ``--coalesce-ms`` (100, the
page's) and refetches the tiles of its view the bboxes touch within ``--margin`` tile widths
(1/8, the page's; the tiles' own buffer is 1/64), with the new ``?v=`` and ``If-None-Match``;
a ``reload`` refetches its whole view. Per client, one keep-alive HTTP/1.1 connection for
the stream and five for tiles (a browser's six per host, less the stream's), on asyncio with
a small hand-written client (as in bench_tiles), so the load generator is not the bottleneck
on two cores.

Changes: a writer thread posts ``--changes`` writes at ``--rate`` per second, in turn:
* ``danger`` — a major hidden danger on an enterprise neither red nor raised already (its
  dynamic colour goes up a level: the tile's ``color`` must differ from before);
* ``pair`` — level-2 readings (``debounce_n`` samples) for two points of one hazard source, as
  planted by bench_readings (both points must turn red, their enterprise's colour change
  unless it is red or raised already);
* ``alert`` — 25 fixes 30 s apart of an idle tanker standing still for 12 minutes outside
  every zone, 200–300 m from an enterprise (an ``alerts`` feature of that vehicle must appear).
Each target lies inside the view of at least one client that shows its layer; no enterprise
is used twice. A change's commit time is the earlier of the write's HTTP response and the
first NOTIFY naming one of its rows (benchkit's listener) — both come after the commit, so it
is an upper bound and the latencies are, if anything, short by the listener's delay.

Measured per (change, affected client) — a client one of whose view's tiles holds one of the
change's targets, in a layer it shows — the time from commit until the client holds tiles
showing every such target in its new state, and until the first matching ``change`` event;
tiles refetched per change (also those that came back unchanged: 304 or the same bytes);
events, reloads, reconnects and heartbeats per client; events for layers a client's role may
not see; server peak RSS. After the run the database says which changes took effect; writes
that changed nothing on the map are counted and left out. Target: p99 ≤ 2 s at 50 clients.
Afterwards the hidden dangers are rectified and the pairs read normal again, so the next run
finds the same candidates (the new alerts stay; their tankers are not idle for two hours).
Every loop is bounded (``--duration`` caps the writing, ``--settle`` the wait after it).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import datetime as dt
import gzip
import json
import math
import random
import resource
import statistics
import subprocess
import sys
import threading
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Final

import httpx
import mapbox_vector_tile
import numpy as np
import psycopg

from layers.monitoring.config import MonitoringRules
from layers.monitoring.thresholds import set_points
from scripts.benchkit import (
    ROOT,
    NotifyListener,
    bench_url,
    free_port,
    key_headers,
    make_key,
    peak_rss_kb,
    recreate_database,
    start_server,
)
from tiles.tms import BUFFER, EXTENT, Tile, intersects, tile_range

BENCH_DB: Final = "georisk_bench_live"
TARGET_P99_S: Final = 2.0
ADMIN_LAYERS: Final = ("enterprises", "monitoring_points", "alerts")
READER_LAYERS: Final = ("enterprises", "monitoring_points")  # public tile layers
KINDS: Final = ("danger", "pair", "alert")
CLIENTS_PER_SPOT: Final = 5
TILE_PX: Final = 256
TILE_MARGIN: Final = BUFFER / EXTENT  # a neighbour's features reach this far into a tile
PAGE_MARGIN: Final = 1 / 8  # web/app.js refetches tiles a change touches within this margin
PAGE_COALESCE_S: Final = 0.1  # … and gathers a burst of events for this long first
BROWSER_CONNECTIONS: Final = 5  # HTTP/1.1: six per host, one of them held by the stream
STREAM_PATH: Final = "/api/changes/stream"
Bbox = tuple[float, float, float, float]
Features = dict[str, dict[int, dict[str, Any]]]  # layer → feature id → properties


# -- what is written and what the map must show afterwards ---------------------------------
@dataclass
class Target:
    """One feature a change must alter on the map, at (lon, lat)."""

    layer: str
    lon: float
    lat: float
    fid: int = 0  # feature id (0: a new alert of ``vehicle``)
    before: str | None = None  # colour before: the new one must differ
    want: str | None = None  # colour the feature must take
    vehicle: int = 0  # alerts: a new alert of this vehicle, id above ``min_id``
    min_id: int = 0
    effective: bool = True  # set after the run from the database

    def shown_in(self, features: Features) -> bool:
        rows = features.get(self.layer, {})
        if self.vehicle:
            return any(
                fid > self.min_id and p.get("vehicle_id") == self.vehicle for fid, p in rows.items()
            )
        props = rows.get(self.fid)
        if props is None:
            return False
        return props.get("color") == self.want if self.want else props.get("color") != self.before


@dataclass
class Change:
    k: int
    kind: str
    path: str
    targets: list[Target]
    notify: list[tuple[str, int]]  # (NOTIFY layer, row id) meaning "committed"
    points: list[tuple[int, float, float]] = field(default_factory=list)  # pair: id, high, normal
    vehicle: tuple[int, float, float] = (0, 0.0, 0.0)  # alert: vehicle, lon, lat
    sent: float | None = None
    answered: float | None = None
    status: int = 0
    error: str = ""
    danger_id: int = 0  # the hidden danger created (rectified again afterwards)

    def body(self, rng: random.Random, debounce_n: int, restore: bool = False) -> bytes:
        """The request body, with timestamps of now (readings and fixes must be the newest);
        ``restore``: the readings that bring a pair back to normal."""
        now = dt.datetime.now(dt.UTC)
        if self.kind == "danger":
            return json.dumps({"title": f"bench_live change {self.k}", "is_major": True}).encode()
        if self.kind == "pair":
            rows = [
                {
                    "point_id": pid,
                    "ts": (now - dt.timedelta(seconds=debounce_n - j)).isoformat(),
                    "value": round(
                        normal * (1 + rng.uniform(-0.02, 0.02))
                        if restore
                        else high + rng.uniform(0, 1),
                        4,
                    ),
                }
                for pid, high, normal in self.points
                for j in range(debounce_n)
            ]
            return json.dumps(rows).encode()
        vid, lon, lat = self.vehicle
        fixes = [
            {
                "vehicle_id": vid,
                "ts": (now - dt.timedelta(seconds=750 - 30 * j)).isoformat(timespec="seconds"),
                "lon": round(lon + rng.uniform(-4e-5, 4e-5), 6),
                "lat": round(lat + rng.uniform(-4e-5, 4e-5), 6),
                "speed_kmh": 0.0,
                "heading": 0,
            }
            for j in range(25)
        ]
        return json.dumps(fixes).encode()

    def commit(self, first_notify: dict[tuple[str, int], float]) -> float | None:
        if self.answered is None:
            return None
        seen = [first_notify[n] for n in self.notify if n in first_notify]
        return min([self.answered, *seen])


# -- views ---------------------------------------------------------------------------------
def _world_px(lon: float, lat: float, z: int) -> tuple[float, float]:
    n = TILE_PX * (1 << z)
    r = math.radians(lat)
    return (lon + 180.0) / 360.0 * n, (1 - math.asinh(math.tan(r)) / math.pi) / 2 * n


def _lonlat(px: float, py: float, z: int) -> tuple[float, float]:
    n = TILE_PX * (1 << z)
    return px / n * 360.0 - 180.0, math.degrees(math.atan(math.sinh(math.pi * (1 - 2 * py / n))))


def tile_of(lon: float, lat: float, z: int) -> Tile:
    x, y, _, _ = tile_range((lon, lat, lon, lat), z)
    return Tile(z, x, y)


@dataclass
class View:
    zoom: int
    tiles: list[Tile]  # every tile the viewport touches

    @classmethod
    def around(cls, lon: float, lat: float, z: int, width: int, height: int) -> View:
        cx, cy = _world_px(lon, lat, z)
        x0, x1 = cx - width / 2, cx + width / 2
        y0, y1 = cy - height / 2, cy + height / 2
        tiles = [
            Tile(z, x, y)
            for x in range(int(x0 // TILE_PX), int((x1 - 1) // TILE_PX) + 1)
            for y in range(int(y0 // TILE_PX), int((y1 - 1) // TILE_PX) + 1)
        ]
        return cls(z, tiles)


@dataclass
class Plan:
    views: list[View]
    roles: list[str]
    changes: list[Change]
    # per client: change index → indices of its targets in view (the client is affected)
    expect: list[dict[int, list[int]]]
    # per client: tile → (change index, target index) whose point the tile (with buffer) holds
    watch: list[dict[Tile, list[tuple[int, int]]]]


def layers_of(role: str) -> tuple[str, ...]:
    return ADMIN_LAYERS if role == "admin" else READER_LAYERS


def make_plan(
    url: str, clients: int, changes: int, kinds: list[str], viewport: tuple[int, int], seed: int
) -> Plan:
    """Views around random enterprises, then changes whose targets lie in some of them."""
    rng = random.Random(seed)
    with psycopg.connect(url) as c:
        ents = c.execute(
            "SELECT e.id, ST_X(e.geom), ST_Y(e.geom), coalesce(e.dynamic_color, e.inherent_color),"
            " coalesce(e.dynamic_color, e.inherent_color) IS DISTINCT FROM e.inherent_color"
            " OR EXISTS (SELECT 1 FROM hidden_dangers d WHERE d.enterprise_id = e.id"
            "  AND d.is_major AND d.status <> 'rectified')"
            " FROM enterprises e WHERE e.geom IS NOT NULL ORDER BY e.id"
        ).fetchall()
        pts = c.execute(
            "SELECT mp.id, ST_X(mp.geom), ST_Y(mp.geom), mp.kind, mp.level1, mp.level2,"
            " mp.limit_h, mp.limit_hh, mp.limit_l, mp.limit_ll, mp.hazard_source_id,"
            " h.enterprise_id, mp.live_color, coalesce(s.level, 0)"
            " FROM monitoring_points mp JOIN hazard_sources h ON h.id = mp.hazard_source_id"
            " LEFT JOIN monitoring_state s ON s.point_id = mp.id ORDER BY mp.id"
        ).fetchall()
        idle = [
            int(r[0])
            for r in c.execute(
                "SELECT v.id FROM vehicles v WHERE NOT EXISTS (SELECT 1 FROM positions p"
                " WHERE p.vehicle_id = v.id AND p.ts > now() - interval '2 hours') ORDER BY v.id"
            )
        ]
        max_alert = int(c.execute("SELECT coalesce(max(id), 0) FROM alerts").fetchone()[0])  # type: ignore[index]
    if not ents:
        sys.exit("the database holds no enterprises: seed it (georisk seed --scale 1)")
    where = {int(e[0]): (float(e[1]), float(e[2])) for e in ents}
    # The colour a change must move: none for red ones or those raised already (one raise).
    colour = {int(e[0]): None if e[3] == "red" or e[4] else str(e[3]) for e in ents}

    # Views: clients grouped around spots, each with a random zoom and offset.
    spots = rng.sample(ents, max(1, math.ceil(clients / CLIENTS_PER_SPOT)))
    views, roles = [], []
    width, height = viewport
    for i in range(clients):
        spot = spots[i % len(spots)]
        z = rng.choice((14, 15, 16))
        cx, cy = _world_px(float(spot[1]), float(spot[2]), z)
        cx += rng.uniform(-0.3, 0.3) * width
        cy += rng.uniform(-0.3, 0.3) * height
        views.append(View.around(*_lonlat(cx, cy, z), z, width, height))
        roles.append("tile_reader" if i % CLIENTS_PER_SPOT == CLIENTS_PER_SPOT - 1 else "admin")
    tilesets = [set(v.tiles) for v in views]

    def seen_by(layer: str, lon: float, lat: float) -> int:
        return sum(
            1
            for v, ts, role in zip(views, tilesets, roles, strict=True)
            if layer in layers_of(role) and tile_of(lon, lat, v.zoom) in ts
        )

    # Candidates per kind, each inside at least one view, those in three or more views first
    # (the fan-out to several clients is what is measured), in random order otherwise.
    def by_reach(items: list[Any], reach: Any) -> list[Any]:
        rng.shuffle(items)
        seen = [(min(3, reach(i)), i) for i in items]
        return [i for n, i in sorted(seen, key=lambda ni: -ni[0]) if n]

    dangers = by_reach(
        [e for e, c in colour.items() if c is not None],
        lambda e: seen_by("enterprises", *where[e]),
    )
    sources: dict[int, list[tuple[Any, ...]]] = {}
    for p in pts:
        sources.setdefault(int(p[10]), []).append(p)
    pairs = []
    for members in sources.values():
        hot = [p for p in members if p[12] in ("orange", "red") or p[13] >= 2]
        able = [p for p in members if not np.isnan(set_points(*p[3:10])[1])]
        if hot or len(able) < 2:
            continue
        pairs.append((able[0], able[1]))
    pairs = by_reach(
        pairs, lambda ab: sum(seen_by("monitoring_points", float(p[1]), float(p[2])) for p in ab)
    )
    spots_for_alerts = [e for e in ents if seen_by("alerts", float(e[1]), float(e[2]))]
    rng.shuffle(spots_for_alerts)
    alert_places = _alert_places(url, spots_for_alerts[: changes * 10], rng)
    alert_places = by_reach(alert_places, lambda p: seen_by("alerts", p[1], p[2]))
    rng.shuffle(idle)

    used: set[int] = set()
    out: list[Change] = []
    cursor = {**dict.fromkeys(KINDS, 0), "vehicle": 0}
    active = list(kinds)
    while len(out) < changes and active:
        kind = active[len(out) % len(active)]
        ch = _next_change(
            len(out),
            kind,
            cursor,
            used,
            dangers,
            pairs,
            alert_places,
            idle,
            where,
            colour,
            max_alert,
        )
        if ch is None:
            active.remove(kind)  # no candidate left of this kind
        else:
            out.append(ch)

    expect: list[dict[int, list[int]]] = []
    watch: list[dict[Tile, list[tuple[int, int]]]] = []
    for v, ts, role in zip(views, tilesets, roles, strict=True):
        mine: dict[int, list[int]] = {}
        near: dict[Tile, list[tuple[int, int]]] = {}
        for ch in out:
            for i, t in enumerate(ch.targets):
                if t.layer not in layers_of(role):
                    continue
                if tile_of(t.lon, t.lat, v.zoom) in ts:
                    mine.setdefault(ch.k, []).append(i)
                for tile in v.tiles:
                    w, s, e, n = tile.lonlat_bounds(TILE_MARGIN)
                    if w <= t.lon <= e and s <= t.lat <= n:
                        near.setdefault(tile, []).append((ch.k, i))
        expect.append(mine)
        watch.append(near)
    return Plan(views, roles, out, expect, watch)


def _alert_places(
    url: str, anchors: list[tuple[Any, ...]], rng: random.Random
) -> list[tuple[int, float, float]]:
    """(enterprise, lon, lat) 200–300 m from an enterprise, outside every zone (so a long stop
    there is illegal parking), at least 500 m from each other."""
    cand = []
    for e in anchors:
        angle = rng.uniform(0, 2 * math.pi)
        d = rng.uniform(0.0020, 0.0030)
        lat = float(e[2]) + d * math.sin(angle)
        lon = float(e[1]) + d * math.cos(angle) / math.cos(math.radians(lat))
        cand.append((int(e[0]), lon, lat))
    if not cand:
        return []
    with psycopg.connect(url) as c:
        inside = {
            int(r[0])
            for r in c.execute(
                "SELECT u.i FROM unnest(%s::int4[], %s::float8[], %s::float8[]) AS u(i, lon, lat)"
                " WHERE EXISTS (SELECT 1 FROM zones z"
                "  WHERE ST_DWithin(z.geom, ST_SetSRID(ST_MakePoint(u.lon, u.lat), 4326), 0.0005))",
                (list(range(len(cand))), [p[1] for p in cand], [p[2] for p in cand]),
            )
        }
    out: list[tuple[int, float, float]] = []
    for i, p in enumerate(cand):
        far = all(abs(p[1] - q[1]) + abs(p[2] - q[2]) > 0.005 for q in out)
        if i not in inside and far:
            out.append(p)
    return out


def _next_change(
    k: int,
    kind: str,
    cursor: dict[str, int],
    used: set[int],
    dangers: list[int],
    pairs: list[tuple[tuple[Any, ...], tuple[Any, ...]]],
    alert_places: list[tuple[int, float, float]],
    idle: list[int],
    where: dict[int, tuple[float, float]],
    colour: dict[int, str | None],
    max_alert: int,
) -> Change | None:
    if kind == "danger":
        while cursor[kind] < len(dangers):
            e = dangers[cursor[kind]]
            cursor[kind] += 1
            if e in used:
                continue
            used.add(e)
            lon, lat = where[e]
            target = Target("enterprises", lon, lat, fid=e, before=colour[e])
            path = f"/api/enterprises/{e}/hidden-dangers"
            return Change(k, kind, path, [target], [("enterprises", e)])
        return None
    if kind == "pair":
        while cursor[kind] < len(pairs):
            a, b = pairs[cursor[kind]]
            cursor[kind] += 1
            e = int(a[11])
            if e in used:
                continue
            used.add(e)
            targets = [
                Target("monitoring_points", float(p[1]), float(p[2]), fid=int(p[0]), want="red")
                for p in (a, b)
            ]
            if colour[e] is not None:
                targets.append(Target("enterprises", *where[e], fid=e, before=colour[e]))
            values = [(int(p[0]), *_alarm_and_normal(p[3:10])) for p in (a, b)]
            notify = [("monitoring_points", int(p[0])) for p in (a, b)] + [("enterprises", e)]
            return Change(k, kind, "/api/readings", targets, notify, points=values)
        return None
    while cursor[kind] < len(alert_places) and cursor["vehicle"] < len(idle):
        e, lon, lat = alert_places[cursor[kind]]
        cursor[kind] += 1
        if e in used:
            continue
        used.add(e)
        vid = idle[cursor["vehicle"]]
        cursor["vehicle"] += 1
        target = Target("alerts", lon, lat, vehicle=vid, min_id=max_alert)
        return Change(k, kind, "/api/positions", [target], [], vehicle=(vid, lon, lat))
    return None


def _alarm_and_normal(limits: tuple[Any, ...]) -> tuple[float, float]:
    """A value past level 2, and a normal one (between the low and high level-1 set points)."""
    h1, h2, l1, _ = set_points(*limits)
    hi = h1 if not np.isnan(h1) else h2
    normal = (l1 + hi) / 2 if not np.isnan(l1) else min(hi * 0.2, hi - 1)
    return float(h2) * 1.2 + 1, float(normal)


def check_effects(url: str, changes: list[Change]) -> None:
    """Mark the targets whose rows did not change in the database (not timed), and add the
    new alerts' ids to what their NOTIFY is looked up by."""
    with psycopg.connect(url) as c:
        for ch in changes:
            if ch.answered is None:
                continue
            for t in ch.targets:
                if t.vehicle:
                    row = c.execute(
                        "SELECT min(id) FROM alerts WHERE vehicle_id = %s AND id > %s",
                        (t.vehicle, t.min_id),
                    ).fetchone()
                    t.effective = bool(row and row[0])
                    if row and row[0]:
                        ch.notify.append(("alerts", int(row[0])))
                    continue
                query = (
                    "SELECT coalesce(dynamic_color, inherent_color) FROM enterprises WHERE id = %s"
                    if t.layer == "enterprises"
                    else "SELECT live_color FROM monitoring_points WHERE id = %s"
                )
                row = c.execute(query, (t.fid,)).fetchone()
                now = row[0] if row else None
                t.effective = now == t.want if t.want else now != t.before


# -- a minimal keep-alive HTTP/1.1 client ---------------------------------------------------
class Conn:
    """One keep-alive connection to 127.0.0.1; Content-Length or chunked bodies, gunzipped."""

    def __init__(self, port: int, headers: dict[str, str]) -> None:
        self.port = port
        self.extra = "".join(f"{k}: {v}\r\n" for k, v in headers.items())
        self.reader: asyncio.StreamReader | None = None
        self.writer: asyncio.StreamWriter | None = None

    async def open(self, path: str, headers: dict[str, str]) -> tuple[int, dict[str, str]]:
        """Send a GET and read the status line and headers."""
        if self.writer is None:
            self.reader, self.writer = await asyncio.open_connection("127.0.0.1", self.port)
        assert self.reader is not None
        more = "".join(f"{k}: {v}\r\n" for k, v in headers.items())
        self.writer.write(
            f"GET {path} HTTP/1.1\r\nHost: 127.0.0.1\r\n{self.extra}{more}\r\n".encode()
        )
        head = await self.reader.readuntil(b"\r\n\r\n")
        lines = head.decode("latin-1").split("\r\n")
        out = {}
        for line in lines[1:]:
            if ":" in line:
                k, v = line.split(":", 1)
                out[k.strip().lower()] = v.strip()
        return int(lines[0].split()[1]), out

    async def chunks(self, headers: dict[str, str]) -> AsyncIterator[bytes]:
        """The body as it arrives (an async iterator of bytes)."""
        assert self.reader is not None
        if headers.get("transfer-encoding") == "chunked":
            while True:
                n = int((await self.reader.readuntil(b"\r\n")).split(b";")[0].strip(), 16)
                data = await self.reader.readexactly(n + 2)
                if n == 0:
                    return
                yield data[:-2]
        elif "content-length" in headers:
            yield await self.reader.readexactly(int(headers["content-length"]))
        else:  # to the end of the connection
            while data := await self.reader.read(65536):
                yield data

    async def get(self, path: str, headers: dict[str, str]) -> tuple[int, dict[str, str], bytes]:
        for attempt in (0, 1):
            try:
                status, head = await self.open(path, headers)
                body = b""
                if status not in (204, 304):
                    body = b"".join([c async for c in self.chunks(head)])
                if head.get("connection", "").lower() == "close":
                    self.close()
                if head.get("content-encoding") == "gzip":
                    body = gzip.decompress(body)
                return status, head, body
            except (OSError, asyncio.IncompleteReadError):
                self.close()  # a closed keep-alive connection: once more on a new one
                if attempt:
                    raise
        raise AssertionError("unreachable")

    def close(self) -> None:
        if self.writer is not None:
            self.writer.close()
        self.reader = self.writer = None


def decode(body: bytes) -> Features:
    if not body:
        return {}
    tile = mapbox_vector_tile.decode(body, default_options={"geojson": False})
    return {
        name: {int(f.get("id") or 0): f.get("properties", {}) for f in layer.get("features", [])}
        for name, layer in tile.items()
    }


# -- a map client --------------------------------------------------------------------------
@dataclass
class Held:
    etag: str = ""
    body: bytes = b""
    features: Features = field(default_factory=dict)


@dataclass
class ClientStats:
    hello: dict[str, Any] = field(default_factory=dict)
    events: int = 0  # change events
    relevant: int = 0  # … for a layer it shows, meeting its view
    hidden: int = 0  # … for a layer it may not request (not in its GET /tiles)
    reloads: int = 0
    pings: int = 0
    reconnects: int = 0
    stream_errors: list[str] = field(default_factory=list)
    fetched: int = 0  # initial tiles
    refetched: int = 0
    unchanged: int = 0  # refetches that came back 304 or with the same bytes
    errors: int = 0  # tile requests not 200/204/304
    event_log: list[tuple[float, str, Bbox | None]] = field(default_factory=list)
    held: dict[tuple[int, int], float] = field(default_factory=dict)  # (change, target) → t


class MapClient:
    def __init__(
        self,
        i: int,
        port: int,
        key: str,
        role: str,
        view: View,
        plan: Plan,
        margin: float = PAGE_MARGIN,
        coalesce_s: float = PAGE_COALESCE_S,
        parallel: int = BROWSER_CONNECTIONS,
    ) -> None:
        self.i = i
        self.port = port
        self.key = key
        self.role = role
        self.view = view
        self.layers = layers_of(role)
        self.path = "/tiles/" + ",".join(self.layers) + "/{z}/{x}/{y}.mvt"
        self.changes = plan.changes
        self.watch = plan.watch[i]
        self.tiles: dict[Tile, Held] = {}
        self.allowed: frozenset[str] | None = None  # tile layers it may request (GET /tiles)
        self.dirty: dict[Tile, int] = {}  # tile → version to ask for
        self.wake = asyncio.Event()
        self.last_id: str | None = None
        self.ready = asyncio.Event()
        self.stats = ClientStats()
        tile_headers = {**key_headers(key), "Accept-Encoding": "gzip"}
        self.conns = [Conn(port, tile_headers) for _ in range(parallel)]
        self.margin = margin
        self.coalesce_s = coalesce_s
        self.bounds = {tile: tile.lonlat_bounds(margin) for tile in view.tiles}
        b = list(self.bounds.values())
        self.area = (
            min(x[0] for x in b),
            min(x[1] for x in b),
            max(x[2] for x in b),
            max(x[3] for x in b),
        )

    async def run(self, stop: asyncio.Event, max_reconnects: int = 20) -> None:
        refetcher = asyncio.create_task(self.refetch_loop())
        try:
            while not stop.is_set() and self.stats.reconnects <= max_reconnects:
                try:
                    await self.stream()
                except (OSError, asyncio.IncompleteReadError, ValueError) as exc:
                    self.stats.stream_errors.append(f"{type(exc).__name__}: {exc}"[:200])
                if stop.is_set():
                    break
                self.stats.reconnects += 1
                await asyncio.sleep(0.5)
        finally:
            refetcher.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await refetcher
            for conn in self.conns:
                conn.close()

    async def stream(self) -> None:
        sse = Conn(self.port, key_headers(self.key))
        headers = {"Accept": "text/event-stream", "Cache-Control": "no-cache"}
        if self.last_id is not None:
            headers["Last-Event-ID"] = self.last_id
        try:
            status, head = await sse.open(STREAM_PATH, headers)
            if status != 200:
                body = b"".join([c async for c in sse.chunks(head)])
                raise ValueError(f"{STREAM_PATH} answered {status}: {body[:200]!r}")
            buf = b""
            event: dict[str, str] = {}
            data: list[str] = []
            async for chunk in sse.chunks(head):
                buf += chunk
                *lines, buf = buf.split(b"\n")
                for raw in lines:
                    line = raw.rstrip(b"\r").decode()
                    if line == "":
                        if data or event:
                            await self.on_event(event.get("event", "message"), "\n".join(data))
                            if "id" in event:
                                self.last_id = event["id"]
                        event, data = {}, []
                    elif line.startswith(":"):
                        self.stats.pings += 1
                    else:
                        name, _, value = line.partition(":")
                        value = value[1:] if value.startswith(" ") else value
                        if name == "data":
                            data.append(value)
                        else:
                            event[name] = value
            raise ValueError("the stream ended")
        finally:
            sse.close()

    async def on_event(self, kind: str, data: str) -> None:
        now = time.perf_counter()
        if kind == "hello":  # after a reconnect, what was missed is replayed (or a reload)
            self.stats.hello = json.loads(data)
            if not self.ready.is_set():
                await self.fetch_view()
                self.ready.set()
        elif kind == "change":
            body = json.loads(data)
            layer = str(body.get("layer"))
            raw = body.get("bbox")
            bbox: Bbox | None = tuple(float(v) for v in raw) if raw else None  # type: ignore[assignment]
            self.stats.events += 1
            self.stats.event_log.append((now, layer, bbox))
            if self.allowed is not None and layer not in self.allowed:
                self.stats.hidden += 1
            if layer not in self.layers:
                return
            if bbox is not None and not intersects(bbox, self.area):
                return
            self.stats.relevant += 1
            version = int(body.get("version", 0))
            for tile, bounds in self.bounds.items():
                if bbox is None or intersects(bbox, bounds):
                    self.dirty[tile] = max(version, self.dirty.get(tile, 0))
            self.wake.set()
        elif kind == "reload":
            self.stats.reloads += 1
            version = int(self.last_id) if self.last_id and self.last_id.isdigit() else 0
            for tile in self.view.tiles:
                self.dirty[tile] = max(version, self.dirty.get(tile, 0))
            self.wake.set()

    async def fetch_view(self) -> None:
        status, _, body = await self.conns[0].get("/tiles", {})
        if status == 200:
            self.allowed = frozenset(layer["name"] for layer in json.loads(body)["layers"])
        version = int(self.stats.hello.get("version", 0))
        await self.fetch_all([(tile, version) for tile in self.view.tiles])
        self.stats.fetched += len(self.view.tiles)

    async def fetch_all(self, work: list[tuple[Tile, int]]) -> None:
        """Tiles over the client's connections at once, as a browser does."""
        queue = iter(work)

        async def worker(conn: Conn) -> None:
            for tile, version in queue:
                try:
                    await self.fetch(conn, tile, version)
                except (OSError, asyncio.IncompleteReadError):
                    self.stats.errors += 1

        await asyncio.gather(*(worker(c) for c in self.conns[: len(work)]))

    async def fetch(self, conn: Conn, tile: Tile, version: int) -> None:
        path = self.path.format(z=tile.z, x=tile.x, y=tile.y) + f"?v={version}"
        held = self.tiles.get(tile)
        headers = {}
        if held is not None and held.etag:
            headers["If-None-Match"] = held.etag
        status, head, body = await conn.get(path, headers)
        got = time.perf_counter()
        if status == 304 and held is not None:
            self.stats.unchanged += 1
            return
        if status not in (200, 204):
            self.stats.errors += 1
            return
        if held is not None and body == held.body:
            self.stats.unchanged += 1
            held.etag = head.get("etag", "")
            return
        new = Held(head.get("etag", ""), body, decode(body))
        self.tiles[tile] = new
        for k, i in self.watch.get(tile, ()):
            ch = self.changes[k]
            if (k, i) in self.stats.held or ch.sent is None:
                continue
            if ch.targets[i].shown_in(new.features):
                self.stats.held[(k, i)] = got

    async def refetch_loop(self) -> None:
        while True:
            await self.wake.wait()
            await asyncio.sleep(self.coalesce_s)  # like the page: a burst, one refetch
            self.wake.clear()
            work = list(self.dirty.items())
            self.dirty.clear()
            self.stats.refetched += len(work)
            await self.fetch_all(work)


# -- the writer ----------------------------------------------------------------------------
class Writer(threading.Thread):
    """Posts the changes at a steady rate from a thread of its own (its clock is not held up by
    the clients' event loop); records when each was sent and answered."""

    def __init__(
        self, base: str, key: str, changes: list[Change], rate: float, duration: float
    ) -> None:
        super().__init__(daemon=True)
        self.base = base
        self.key = key
        self.changes = changes
        self.rate = rate
        self.duration = duration
        self.stop = threading.Event()
        self.rng = random.Random(11)
        self.debounce_n = MonitoringRules().debounce_n

    def run(self) -> None:
        headers = {**key_headers(self.key), "content-type": "application/json"}
        with httpx.Client(base_url=self.base, headers=headers, timeout=30) as http:
            t0 = time.perf_counter()
            for n, ch in enumerate(self.changes):
                wait = t0 + n / self.rate - time.perf_counter()
                if wait > 0 and self.stop.wait(wait):
                    return
                if self.stop.is_set() or time.perf_counter() - t0 > self.duration:
                    return
                body = ch.body(self.rng, self.debounce_n)
                ch.sent = time.perf_counter()
                try:
                    r = http.post(ch.path, content=body)
                except httpx.HTTPError as exc:
                    ch.error = f"{type(exc).__name__}: {exc}"
                    continue
                ch.answered = time.perf_counter()
                ch.status = r.status_code
                if r.status_code >= 300:
                    ch.error = r.text[:300]
                    ch.answered = None
                elif ch.kind == "danger":
                    ch.danger_id = int(r.json()["id"])

    def restore(self) -> int:
        """Undo the colours written, so the next run finds the same candidates: rectify the
        hidden dangers, bring the pairs back to normal (the new alerts stay). Returns the
        writes that failed."""
        failed = 0
        headers = {**key_headers(self.key), "content-type": "application/json"}
        with httpx.Client(base_url=self.base, headers=headers, timeout=30) as http:
            for ch in self.changes:
                if ch.answered is None:
                    continue
                try:
                    if ch.kind == "danger" and ch.danger_id:
                        for status in ("rectifying", "rectified"):
                            r = http.patch(
                                f"/api/hidden-dangers/{ch.danger_id}", json={"status": status}
                            )
                            failed += r.status_code >= 300
                    elif ch.kind == "pair":
                        body = ch.body(self.rng, self.debounce_n, restore=True)
                        failed += http.post(ch.path, content=body).status_code >= 300
                except httpx.HTTPError:
                    failed += 1
        return failed


# -- the run -------------------------------------------------------------------------------
def prepare_database(url: str, scale: float, fresh: bool, out: Path) -> None:
    """Migrate the bench database and, unless it holds enterprises already, create and seed it
    first. Both run in processes of their own: their memory is not the client's."""
    exists = False
    with contextlib.suppress(psycopg.OperationalError), psycopg.connect(url) as c:
        row = c.execute("SELECT to_regclass('enterprises') IS NOT NULL").fetchone()
        exists = bool(row and row[0]) and bool(
            c.execute("SELECT EXISTS (SELECT 1 FROM enterprises)").fetchone()[0]  # type: ignore[index]
        )
    if fresh or not exists:
        recreate_database(url)
    migrate = "import sys; from geo_api.migrate import upgrade; upgrade(sys.argv[1])"
    subprocess.run([sys.executable, "-c", migrate, url], cwd=ROOT, check=True)
    if exists and not fresh:
        return
    seed = (
        "import sys; from pathlib import Path; from layers.demo_city import seed_demo_city;"
        " seed_demo_city(sys.argv[1], scale=float(sys.argv[2]), out_dir=Path(sys.argv[3]),"
        " progress=False)"
    )
    t0 = time.perf_counter()
    subprocess.run([sys.executable, "-c", seed, url, str(scale), str(out)], cwd=ROOT, check=True)
    print(f"seeded {url.rsplit('/', 1)[1]} at scale {scale:g} in {time.perf_counter() - t0:.0f} s")


async def run_clients(
    port: int,
    keys: list[str],
    plan: Plan,
    writer: Writer,
    settle: float,
    margin: float,
    coalesce_s: float,
    ready_timeout: float = 120.0,
) -> tuple[list[MapClient], float]:
    stop = asyncio.Event()
    clients = [
        MapClient(i, port, keys[i], plan.roles[i], plan.views[i], plan, margin, coalesce_s)
        for i in range(len(keys))
    ]
    tasks = [asyncio.create_task(c.run(stop)) for c in clients]
    t0 = time.perf_counter()
    # Until every client holds its view, or gave up (no stream), or the time is up.
    while time.perf_counter() - t0 < ready_timeout and not all(
        c.ready.is_set() or t.done() for c, t in zip(clients, tasks, strict=True)
    ):
        await asyncio.sleep(0.05)
    ready_s = time.perf_counter() - t0
    ready = sum(c.ready.is_set() for c in clients)
    tiles = sum(c.stats.fetched for c in clients)
    print(f"{ready}/{len(clients)} clients ready, {tiles} tiles fetched in {ready_s:.1f} s")
    if ready:
        await asyncio.sleep(1.0)  # let the first fetches' cache fill settle
        writer.start()
        while writer.is_alive():
            await asyncio.sleep(0.2)
        await asyncio.sleep(settle)
    stop.set()
    for t in tasks:
        t.cancel()
    await asyncio.gather(*tasks, return_exceptions=True)
    return clients, ready_s


def pct(values: list[float], q: float) -> float:
    return float(np.percentile(values, q)) if values else float("nan")


def ms(v: float) -> str:
    return "-" if math.isnan(v) else f"{v * 1000:,.0f} ms"


def main() -> None:
    ap = argparse.ArgumentParser(description=(__doc__ or "").split("\n")[0])
    ap.add_argument("--clients", type=int, default=50, help="map clients (≥ 50 for the target)")
    ap.add_argument("--changes", type=int, default=60, help="writes, in turn by --kinds")
    ap.add_argument("--rate", type=float, default=2.0, help="writes per second")
    ap.add_argument("--duration", type=float, default=120.0, help="cap on the writing, seconds")
    ap.add_argument("--settle", type=float, default=5.0, help="wait after the last write, s")
    ap.add_argument("--kinds", default=",".join(KINDS), help="danger,pair,alert (in turn)")
    ap.add_argument("--viewport", default="1280x800", help="a client's view in pixels")
    ap.add_argument(
        "--margin",
        type=float,
        default=PAGE_MARGIN,
        help="refetch tiles a change's bbox touches within this many tile widths (the page's"
        f" {PAGE_MARGIN:g}; the tiles' own buffer is {TILE_MARGIN:g})",
    )
    ap.add_argument(
        "--coalesce-ms",
        type=float,
        default=PAGE_COALESCE_S * 1000,
        help="gather a burst of events this long before refetching (as the page does)",
    )
    ap.add_argument("--database-url", help="use this database (default: own, in the cluster)")
    ap.add_argument("--db", default=BENCH_DB, help="own database to use or create")
    ap.add_argument("--scale", type=float, default=1.0, help="seed scale of the own database")
    ap.add_argument("--fresh", action="store_true", help="re-create and re-seed the own database")
    ap.add_argument("--port", type=int, default=0, help="server port (default: a free one)")
    ap.add_argument("--seed", type=int, default=13)
    ap.add_argument("--server-env", action="append", default=[], help="KEY=VALUE for the server")
    ap.add_argument("--out", type=Path, default=Path(".data") / "bench_live", help="demo files")
    args = ap.parse_args()
    kinds = [k for k in args.kinds.split(",") if k]
    if not kinds or set(kinds) - set(KINDS):
        sys.exit(f"--kinds: pick from {', '.join(KINDS)}")
    width, height = (int(v) for v in args.viewport.lower().split("x"))

    url = args.database_url or bench_url(args.db)
    if not args.database_url:
        prepare_database(url, args.scale, args.fresh, args.out)
    plan = make_plan(url, args.clients, args.changes, kinds, (width, height), args.seed)
    by_kind = {k: sum(ch.kind == k for ch in plan.changes) for k in KINDS}
    print(
        f"{args.clients} clients, {sum(len(v.tiles) for v in plan.views)} view tiles;"
        f" {len(plan.changes)} changes planned"
        f" ({', '.join(f'{n} {k}' for k, n in by_kind.items())})"
    )
    # A key per role (what a viewer hears depends on its role and area, not on the key).
    role_keys = {
        role: make_key(url, role=role, name=f"bench_live {role}")
        for role in ("admin", "tile_reader")
    }
    keys = [role_keys[role] for role in plan.roles]
    port = args.port or free_port()
    env = {"GEORISK_MONITORING_SWEEP_ENABLED": "false", "GEORISK_LOG_LEVEL": "warning"}
    env.update(dict(kv.split("=", 1) for kv in args.server_env))
    log = ROOT / ".data" / "bench_live_server.log"
    log.parent.mkdir(exist_ok=True)
    listeners = [
        NotifyListener(url, layer) for layer in ("enterprises", "monitoring_points", "alerts")
    ]
    for li in listeners:
        li.start()
        li.ready.wait(10)
    server = start_server(url, port, log, env)
    base = f"http://127.0.0.1:{port}"
    writer = Writer(base, role_keys["admin"], plan.changes, args.rate, args.duration)
    try:
        clients, ready_s = asyncio.run(
            run_clients(port, keys, plan, writer, args.settle, args.margin, args.coalesce_ms / 1000)
        )
        rss_server = peak_rss_kb(server.pid)
        check_effects(url, plan.changes)  # before the colours are put back
        if writer.ident is not None:
            failed = writer.restore()
            print(f"colours restored for the next run ({failed} writes failed)")
    finally:
        writer.stop.set()
        server.terminate()
        try:
            server.wait(30)
        except subprocess.TimeoutExpired:
            server.kill()
        for li in listeners:
            li.stop.set()
    for li in listeners:
        li.join(5)
    first = {(li.layer, i): t for li in listeners for i, t in li.first.items()}
    report(args, plan, clients, first, ready_s, rss_server)


def report(
    args: argparse.Namespace,
    plan: Plan,
    clients: list[MapClient],
    first: dict[tuple[str, int], float],
    ready_s: float,
    rss_server: int,
) -> None:
    written = [ch for ch in plan.changes if ch.answered is not None]
    failed = [ch for ch in plan.changes if ch.sent is not None and ch.answered is None]
    effective = [ch for ch in written if any(t.effective for t in ch.targets)]
    held_lat: list[float] = []
    held_by_kind: dict[str, list[float]] = {k: [] for k in KINDS}
    event_lat: list[float] = []
    missed: list[str] = []
    affected_per_change: dict[int, int] = {}
    for c, expect in zip(clients, plan.expect, strict=True):
        if not c.ready.is_set():
            continue
        for k, idx in expect.items():
            ch = plan.changes[k]
            commit = ch.commit(first)
            mine = [i for i in idx if ch.targets[i].effective]
            if commit is None or ch.sent is None or not mine:
                continue
            affected_per_change[k] = affected_per_change.get(k, 0) + 1
            times = [c.stats.held.get((k, i)) for i in mine]
            if any(t is None for t in times):
                lost = [ch.targets[i] for i in mine if (k, i) not in c.stats.held]
                missed.append(
                    f"change {k} ({ch.kind}) client {c.i} ({c.role}, z{c.view.zoom}): "
                    + ", ".join(f"{t.layer} {t.fid or f'vehicle {t.vehicle}'}" for t in lost)
                )
            else:
                held_lat.append(max(t for t in times if t is not None) - commit)
                held_by_kind[ch.kind].append(held_lat[-1])
            seen = [
                t
                for t, layer, bbox in c.stats.event_log
                if t >= ch.sent
                and any(
                    layer == ch.targets[i].layer
                    and (bbox is None or intersects(bbox, _near(ch.targets[i])))
                    for i in mine
                )
            ]
            if seen:
                event_lat.append(min(seen) - commit)
    n_eff = max(1, len(effective))
    stats = [c.stats for c in clients]
    refetched = sum(s.refetched for s in stats)
    unchanged = sum(s.unchanged for s in stats)
    events = [s.events for s in stats]
    relevant = [s.relevant for s in stats]
    writes = [ch.answered - ch.sent for ch in written if ch.answered and ch.sent]
    p99 = pct(held_lat, 99)
    ratio = p99 / TARGET_P99_S if held_lat else float("nan")
    errors = [e for s in stats for e in s.stream_errors]
    affected = list(affected_per_change.values())
    kinds = ", ".join(
        f"{sum(ch.kind == k for ch in effective)} {k}"
        for k in KINDS
        if any(ch.kind == k for ch in plan.changes)
    )
    rss_self = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    rows = [
        (
            "map clients (admin / tile reader)",
            f"{sum(c.ready.is_set() for c in clients)} ready of {len(clients)}"
            f" ({plan.roles.count('admin')} / {plan.roles.count('tile_reader')})",
            "≥ 50",
        ),
        (
            "tiles per view (median), first view",
            f"{statistics.median(len(v.tiles) for v in plan.views):.0f},"
            f" all ready in {ready_s:.1f} s",
            "",
        ),
        (
            "changes written / took effect",
            f"{len(written)} / {len(effective)} ({kinds}) at {args.rate:g}/s",
            "",
        ),
        ("  write errors", f"{len(failed)}" + (f": {failed[0].error[:60]}" if failed else ""), "0"),
        ("  write → response p50 / p99", f"{ms(pct(writes, 50))} / {ms(pct(writes, 99))}", ""),
        (
            "affected clients per change, median (max)",
            f"{statistics.median(affected):.0f} ({max(affected)})" if affected else "-",
            "",
        ),
        (
            "commit → client holds new tiles p99",
            f"{ms(p99)} (n={len(held_lat)})",
            f"≤ {TARGET_P99_S:g} s",
        ),
        ("  p50", ms(pct(held_lat, 50)), ""),
        (
            "  p99 by kind: " + " / ".join(k for k in KINDS if held_by_kind[k]),
            " / ".join(ms(pct(v, 99)) for v in held_by_kind.values() if v),
            "",
        ),
        ("  p99 / target", f"{ratio:.2f}", "≤ 1"),
        ("  affected (change, client) never held", f"{len(missed)}", "0"),
        (
            "commit → change event at client p50 / p99",
            f"{ms(pct(event_lat, 50))} / {ms(pct(event_lat, 99))} (n={len(event_lat)})",
            "",
        ),
        (
            "tiles refetched per change (in all)",
            f"{refetched / n_eff:.1f} ({refetched})",
            "",
        ),
        ("  unchanged (304 or the same bytes)", f"{unchanged}", ""),
        (
            "  per affected client and change",
            f"{refetched / max(1, len(held_lat) + len(missed)):.2f}",
            "",
        ),
        (
            "change events per client, median (min–max)",
            f"{statistics.median(events):.0f} ({min(events)}–{max(events)})" if events else "-",
            "",
        ),
        (
            "  for a shown layer in view, median",
            f"{statistics.median(relevant):.0f}" if relevant else "-",
            "",
        ),
        ("  for layers the role may not see", f"{sum(s.hidden for s in stats)}", "0"),
        (
            "reloads / reconnects / heartbeats",
            f"{sum(s.reloads for s in stats)} / {sum(s.reconnects for s in stats)}"
            f" / {sum(s.pings for s in stats)}",
            "",
        ),
        ("tile request errors", f"{sum(s.errors for s in stats)}", "0"),
        ("peak RSS server", f"{rss_server / 1024:.0f} MiB", ""),
        ("peak RSS bench client", f"{rss_self / 1024:.0f} MiB", ""),
    ]
    print(f"\n{'measure':<44} {'value':<44} target")
    for name, value, target in rows:
        print(f"{name:<44} {value:<44} {target}")
    if errors:
        print(f"\nstream errors ({len(errors)}), first: {errors[0]}")
    if missed:
        print(f"\nnever held ({len(missed)}), first ones:", *missed[:5], sep="\n  ")


def _near(t: Target, d: float = 0.001) -> Bbox:
    """About 100 m around a target (an alert lies at its stop's centroid, not the fix)."""
    return t.lon - d, t.lat - d, t.lon + d, t.lat + d


if __name__ == "__main__":
    main()
