"""The living demo: sensor readings, tanker fixes and now-and-then incidents for the demo city.

Why: after ``georisk seed`` nothing feeds the map, so a few sampling intervals later the stale
sweep turns every monitoring point grey and every tanker stands still. This module makes what
real sensors and terminals would send; the worker (``geo_api/demo_feed.py``) pushes it through
the same ingest pipeline as ``POST /api/readings`` and ``POST /api/positions`` and re-rates what
changed, so alarms, colours, stops, alerts and change notices come out exactly as for real data.

- **Readings**: every fed point at its own sampling interval (stretched by
  ``reading_interval_scale``, but never so far that the stale sweep would grey it), a slow wave
  plus noise strictly inside the point's normal band — the recipe of the seed's 24 h
  (``layers/demo_city/live.py``), so nothing alarms by itself.
- **Fixes**: every ``fix_interval_s`` per tanker of the fed share, each continuing from its last
  stored fix. Tankers drive the generator's road graph (rebuilt from ``roads``, routed with
  ``layers/demo_city/roads.py``) between designated lots at typical tanker speeds (below the
  80 / 60 km/h hazmat caps) and dwell 15–45 min in each lot.
- **Incidents**, on average one every ``incident_mean_s`` (exponential gaps drawn from the
  seed), each chosen where the map shows it (an enterprise whose dynamic colour is not already
  raised): a *gas alarm pair* (two gas detectors of one hazard source climb past level 2 for
  ``incident_duration_s``: both red, the enterprise raised, then clear), an *illegal roadside
  stop* (a driving tanker parks away from every lot and zone for 1.4–2× the allowed dwell: an
  ``illegal_parking`` alert, its carrier raised) and a *major hidden danger* filed on an
  enterprise (``layers/prevention/dual.py``; raised at once, and rectified by the feed after
  ``danger_lifetime_s`` so the city does not turn red over a day).

Everything random is drawn from ``seed`` (per point, per vehicle, per incident stream), so a run
is deterministic for the seed, the database it starts from and the tick times.
"""

from __future__ import annotations

import datetime as dt
import math
from dataclasses import dataclass, field
from typing import Any, Final

import numpy as np
import shapely
from numpy.typing import NDArray
from psycopg import AsyncConnection
from psycopg.rows import tuple_row
from shapely.geometry.base import BaseGeometry

from layers.demo_city.config import to_lonlat, to_xy
from layers.demo_city.live import DANGER_TITLES
from layers.demo_city.loader import DEMO_SETTING
from layers.demo_city.roads import CLASS_NAMES, EXPRESS_NAMES, LOCAL, ROUTING_SPEED, Network
from layers.monitoring.parse import Rows as ReadingRows
from layers.monitoring.thresholds import set_points
from layers.prevention.dual import (
    HiddenDangerInput,
    HiddenDangerPatch,
    insert_danger,
    update_danger,
)
from layers.prevention.major_dangers import (
    Acceptance,
    RectificationReport,
    accept_rectification,
    report_rectified,
)
from layers.transport.parse import Rows as FixRows

GAS_KINDS: Final = ("gas_flammable", "gas_toxic")
INCIDENT_KINDS: Final = ("gas_alarm_pair", "roadside_stop", "major_danger")
#: Title suffix of the hidden dangers the feed files (it rectifies only its own).
FEED_MARK: Final = "（实时演示）"
#: Readings owed after a pause (a database outage, a stalled loop) are sent, up to this many
#: per point; older ones are skipped, as a sensor gateway with a small buffer would.
MAX_BACKFILL: Final = 12
CONNECTOR_KMH: Final = 20.0  # from a lot's parking spot to its access node and back
LOT_DWELL_S: Final = (15 * 60.0, 45 * 60.0)
GNSS_SIGMA_M: Final = 2.5
#: A roadside stop keeps this far from every lot, protected zone and park (the generator's
#: clearance for planted roadside stops), so its alert is ``illegal_parking`` and nothing else.
ROADSIDE_CLEARANCE_M: Final = 130.0
#: A tanker silent this long outside any lot reports next from a lot at least
#: ``RESUME_AWAY_M`` from its last fix (a fix near that one would make a stop of the whole
#: silence); after a shorter silence it has driven on meanwhile. Both keep the stop detector
#: from seeing a stop that never happened.
RESUME_IN_LOT_AFTER_S: Final = 300.0
RESUME_AWAY_M: Final = 400.0
RESUME_MAX_KMH: Final = 150.0  # the jump filter refuses more than 200 km/h

US: Final = 1_000_000
F64 = NDArray[np.float64]
I64 = NDArray[np.int64]


@dataclass(frozen=True)
class FeedConfig:
    """What ``DemoFeedSettings`` (geo_api/settings.py) decides; defaults mirror it."""

    seed: int = 20221
    tick_s: float = 5.0
    reading_share: float = 1.0
    reading_interval_scale: float = 1.0
    fleet_share: float = 1.0
    fix_interval_s: float = 30.0
    incident_mean_s: float = 240.0
    incident_duration_s: float = 480.0
    danger_lifetime_s: float = 1800.0
    #: From the monitoring and tanker rules: how silent a point may be before it is grey, and
    #: the dwell beyond which a roadside stop is illegal.
    stale_intervals: float = 3.0
    max_dwell_s: float = 600.0


@dataclass
class Incident:
    """One planted event: what, when (µs), on which objects, and the line the log shows."""

    kind: str
    at_us: int
    text: str
    enterprise_id: int | None = None
    point_ids: list[int] = field(default_factory=list)
    vehicle_id: int | None = None
    danger_id: int | None = None
    until_us: int | None = None
    where: tuple[float, float] | None = None  # lon, lat


def _us(t: dt.datetime) -> int:
    return int(t.timestamp()) * US + t.microsecond


_MARKER_SQL = """
SELECT c FROM pg_db_role_setting s JOIN pg_database d ON d.oid = s.setdatabase,
     unnest(s.setconfig) AS c
WHERE d.datname = current_database() AND s.setrole = 0 AND c LIKE %s
"""


async def demo_marker(conn: AsyncConnection[Any]) -> str | None:
    """What says this database holds the generated demo city, or ``None``.

    The seed leaves a database setting (``layers/demo_city/loader.py``); a city seeded before
    it did, or restored from a dump without it, is recognised by the generator's expressway
    names in ``roads``. A real deployment has neither, and the feed must never write invented
    readings into one.
    """
    cur = conn.cursor(row_factory=tuple_row)
    await cur.execute(_MARKER_SQL.encode(), (DEMO_SETTING + "=%",))
    row = await cur.fetchone()
    if row:
        return f"demo city ({row[0]})"
    await cur.execute(
        "SELECT EXISTS (SELECT 1 FROM roads WHERE name = %s)"
        " AND EXISTS (SELECT 1 FROM enterprises)",
        (EXPRESS_NAMES["ring"],),
    )
    row = await cur.fetchone()
    return "demo city (recognised by its generated road network)" if row and row[0] else None


# -- readings --------------------------------------------------------------------------------
@dataclass
class _Gas:
    """A gas pair incident on one point: from ``start`` to ``end`` (µs) the value climbs over
    ``ramp`` µs to ``target`` (past level 2) and stays there, noisy."""

    start: int
    end: int
    ramp: int
    target: float


class PointFeed:
    """Every monitoring point's next sample time and its normal band."""

    def __init__(self, rows: list[tuple[Any, ...]], config: FeedConfig, now_us: int) -> None:
        n = len(rows)
        self.id = np.array([r[0] for r in rows], dtype=np.int64)
        self.kind = np.array([r[1] for r in rows], dtype=object)
        self.sp = np.array([set_points(*r[1:8]) for r in rows], dtype=np.float64).reshape(-1, 4)
        interval = np.array([r[8] for r in rows], dtype=np.float64)
        self.source = np.array([r[9] for r in rows], dtype=np.int64)
        self.enterprise = np.array([r[10] for r in rows], dtype=np.int64)
        last = np.array([-1 if r[11] is None else r[11] for r in rows], dtype=np.int64)
        rng = np.random.default_rng([config.seed, 31])
        # Stretched, but the newest sample must always be younger than the stale limit even
        # just before the next tick: interval ≤ stale_intervals × own interval − 2 ticks.
        ceiling = np.maximum(interval * config.stale_intervals - 2 * config.tick_s, interval)
        self.interval_us = (
            np.minimum(interval * config.reading_interval_scale, ceiling) * US
        ).astype(np.int64)
        self.fed = rng.random(n) < config.reading_share
        # The first sample falls within the last interval (every fed point reports at the first
        # tick), always after the point's last stored reading so the evaluator judges it.
        first = now_us - (rng.random(n) * self.interval_us).astype(np.int64)
        self.next_us = np.maximum(first, last + self.interval_us)
        h1, l1 = self.sp[:, 0], self.sp[:, 2]
        has_h, has_l = ~np.isnan(h1), ~np.isnan(l1)
        lower = np.where(has_l, l1, 0.0)
        upper = np.where(has_h, h1, np.where(has_l, 2 * np.abs(l1) + 10, 10.0))
        span = upper - lower
        self.gas = has_h & ~has_l & np.isin(self.kind, GAS_KINDS)
        self.mid = np.where(
            self.gas,
            lower + span * rng.uniform(0.05, 0.15, n),
            lower + span * rng.uniform(0.4, 0.6, n),
        )
        self.amp = span * np.where(self.gas, 0.03, 0.06)
        self.lo = np.where(self.gas, np.maximum(lower, 0.0), lower + 0.15 * span)
        self.hi = upper - 0.15 * span
        self.phase = rng.uniform(0, 2 * np.pi, n)
        self.period_s = rng.uniform(1800, 7200, n)
        self.noise = np.random.default_rng([config.seed, 32])
        self.gas_incidents: dict[int, _Gas] = {}  # row → incident

    def __len__(self) -> int:
        return len(self.id)

    def due(self, now_us: int) -> tuple[I64, I64]:
        """Rows and times of the samples due by ``now_us``; advances each point's clock."""
        rows = np.flatnonzero(self.fed & (self.next_us <= now_us))
        if len(rows) == 0:
            return rows, rows
        step = self.interval_us[rows]
        owed = (now_us - self.next_us[rows]) // step + 1
        k = np.minimum(owed, MAX_BACKFILL)
        start = self.next_us[rows] + (owed - k) * step
        row = np.repeat(rows, k)
        j = np.arange(int(k.sum())) - np.repeat(np.cumsum(k) - k, k)
        t = np.repeat(start, k) + j * np.repeat(step, k)
        self.next_us[rows] = start + k * step
        return row, t

    def values(self, row: I64, t: I64) -> F64:
        """Normal values at those samples, with any gas incident laid over them."""
        ts = t / US
        wave = np.sin(2 * np.pi * ts / self.period_s[row] + self.phase[row])
        noise = np.clip(self.noise.standard_normal(len(row)), -2.5, 2.5)
        v = self.mid[row] + self.amp[row] * (0.6 * wave + 0.4 * noise)
        v = np.clip(v, self.lo[row], self.hi[row])
        for r, gas in list(self.gas_incidents.items()):
            pick = np.flatnonzero((row == r) & (t >= gas.start) & (t <= gas.end))
            if len(pick):
                frac = np.clip((t[pick] - gas.start) / gas.ramp, 0.0, 1.0)
                jitter = 1 + 0.02 * np.clip(self.noise.standard_normal(len(pick)), -2, 2)
                v[pick] = v[pick] + (gas.target * jitter - v[pick]) * frac
            if self.next_us[r] > gas.end:
                del self.gas_incidents[r]
        return np.round(v, 3)

    def batch(self, now_us: int) -> ReadingRows | None:
        """The readings due by ``now_us`` as the ingest pipeline's parsed rows."""
        row, t = self.due(now_us)
        if len(row) == 0:
            return None
        order = np.lexsort((t, self.id[row]))
        row, t = row[order], t[order]
        rows = ReadingRows(
            np.arange(len(row), dtype=np.int64), self.id[row], t, self.values(row, t)
        )
        rows.total = len(row)
        return rows


# -- tankers ---------------------------------------------------------------------------------
@dataclass
class Lot:
    id: int
    geom: BaseGeometry  # metric plane
    access_node: int
    in_park: bool


@dataclass
class Tanker:
    """One vehicle's plan as a knot timeline: position (x, y) at time ``kt`` (s), linear in
    between; a stay is two knots at one place. ``lot`` is where the plan ends."""

    id: int
    enterprise_id: int | None
    rng: np.random.Generator
    kt: F64
    kx: F64
    ky: F64
    lot: int
    next_fix_s: float
    factor: float
    heading: int = 0
    trips: int = 0

    def driving_at(self, t: float) -> bool:
        i = int(np.searchsorted(self.kt, t, side="right")) - 1
        return 0 <= i < len(self.kt) - 1 and (
            self.kx[i] != self.kx[i + 1] or self.ky[i] != self.ky[i + 1]
        )

    def at(self, t: float) -> tuple[float, float, float, int]:
        """Position, speed (km/h) and heading at ``t``."""
        kt = self.kt
        i = min(max(int(np.searchsorted(kt, t, side="right")) - 1, 0), len(kt) - 2)
        dur = kt[i + 1] - kt[i]
        f = min(max((t - kt[i]) / dur, 0.0), 1.0) if dur > 0 else 1.0
        dx, dy = self.kx[i + 1] - self.kx[i], self.ky[i + 1] - self.ky[i]
        x, y = self.kx[i] + f * dx, self.ky[i] + f * dy
        moving = dur > 0 and (dx != 0 or dy != 0) and kt[i] <= t < kt[i + 1]
        speed = math.hypot(dx, dy) / dur * 3.6 if moving else 0.0
        if moving:
            self.heading = round(math.degrees(math.atan2(dx, dy))) % 360
        return x, y, speed, self.heading

    def trim(self, t: float) -> None:
        """Forget the knots before the segment holding ``t``."""
        i = int(np.searchsorted(self.kt, t, side="right")) - 1
        if i > 0:
            self.kt, self.kx, self.ky = self.kt[i:], self.kx[i:], self.ky[i:]


class Fleet:
    """The fed tankers, the road graph they drive and the lots they drive between."""

    def __init__(
        self,
        net: Network,
        lots: list[Lot],
        clearance: list[BaseGeometry],
        tankers: list[Tanker],
        config: FeedConfig,
    ) -> None:
        self.net = net
        self.lots = lots
        self.config = config
        self.tankers = tankers
        self.by_id = {v.id: v for v in tankers}
        self.lot_tree = shapely.STRtree([lot.geom for lot in lots])
        self.clear_tree = shapely.STRtree([lot.geom for lot in lots] + clearance)
        self.main_nodes = net.nodes_in_main()
        self.park_lots = [i for i, lot in enumerate(lots) if lot.in_park]

    def prepare(self) -> None:
        """Routing trees of every lot (Dijkstra once each; CPU-bound, run it off the loop)."""
        for lot in self.lots:
            self.net.route_tree(lot.access_node)

    def nearest_node(self, x: float, y: float) -> int:
        nodes = self.main_nodes
        d = (self.net.node_x[nodes] - x) ** 2 + (self.net.node_y[nodes] - y) ** 2
        return int(nodes[int(np.argmin(d))])

    def lot_at(self, x: float, y: float) -> int | None:
        hit = self.lot_tree.query(shapely.Point(x, y), predicate="intersects")
        return int(hit[0]) if len(hit) else None

    def lots_by_distance(self, x: float, y: float) -> list[int]:
        d = shapely.distance(np.asarray([lot.geom for lot in self.lots]), shapely.Point(x, y))
        return [int(i) for i in np.argsort(d, kind="stable")]

    def spot(self, rng: np.random.Generator, lot: int) -> tuple[float, float]:
        x0, y0, x1, y1 = self.lots[lot].geom.bounds
        inset = min(15.0, (x1 - x0) / 4, (y1 - y0) / 4)
        return float(rng.uniform(x0 + inset, x1 - inset)), float(
            rng.uniform(y0 + inset, y1 - inset)
        )

    def plan_trip(self, v: Tanker) -> None:
        """Append the next trip to ``v``'s plan: from where it ends to a spot in another lot
        (a park lot — loading — every other trip when there are any), then a dwell there."""
        rng, net = v.rng, self.net
        t0, x0, y0 = float(v.kt[-1]), float(v.kx[-1]), float(v.ky[-1])
        choices = self.park_lots if (v.trips % 2 == 0 and self.park_lots) else range(len(self.lots))
        options = [i for i in choices if i != v.lot] or [
            i for i in range(len(self.lots)) if i != v.lot
        ]
        dest = int(options[int(rng.integers(len(options)))]) if options else v.lot
        origin = self.lots[v.lot].access_node if v.lot >= 0 else self.nearest_node(x0, y0)
        nodes, edges = net.path(origin, self.lots[dest].access_node)
        sx, sy = self.spot(rng, dest)
        xs = np.concatenate(([x0], net.node_x[nodes], [sx]))
        ys = np.concatenate(([y0], net.node_y[nodes], [sy]))
        kmh = np.concatenate(
            (
                [CONNECTOR_KMH if v.lot >= 0 else ROUTING_SPEED[LOCAL] * v.factor],
                np.take(ROUTING_SPEED, net.edge_cls[np.asarray(edges, dtype=np.int64)]) * v.factor,
                [CONNECTOR_KMH],
            )
        )
        seg = np.hypot(np.diff(xs), np.diff(ys))
        keep = seg > 0.5
        dur = seg[keep] / (kmh[keep] / 3.6)
        kt = t0 + np.cumsum(dur)
        dwell = float(rng.uniform(*LOT_DWELL_S))
        v.kt = np.concatenate((v.kt, kt, [kt[-1] + dwell] if len(kt) else [t0 + dwell]))
        v.kx = np.concatenate((v.kx, xs[1:][keep], [sx]))
        v.ky = np.concatenate((v.ky, ys[1:][keep], [sy]))
        v.lot = dest
        v.trips += 1

    def batch(self, now_us: int) -> FixRows | None:
        """The fixes due by ``now_us`` (one per tanker every ``fix_interval_s``)."""
        now_s = now_us / US
        step = self.config.fix_interval_s
        vid: list[int] = []
        ts: list[int] = []
        xs: list[float] = []
        ys: list[float] = []
        spd: list[float] = []
        hd: list[int] = []
        for v in self.tankers:
            if v.next_fix_s > now_s:
                continue
            owed = int((now_s - v.next_fix_s) // step) + 1
            if owed > MAX_BACKFILL:
                v.next_fix_s += (owed - MAX_BACKFILL) * step
            while v.next_fix_s <= now_s:
                t = v.next_fix_s
                while v.kt[-1] <= t:
                    self.plan_trip(v)
                x, y, speed, heading = v.at(t)
                vid.append(v.id)
                ts.append(round(t * US))
                xs.append(x)
                ys.append(y)
                spd.append(speed)
                hd.append(heading)
                v.next_fix_s = t + step
            v.trim(v.next_fix_s - step)
        if not vid:
            return None
        n = len(vid)
        rng = np.random.default_rng([self.config.seed, 41, now_us])
        lon, lat = to_lonlat(
            np.array(xs) + rng.normal(0, GNSS_SIGMA_M, n),
            np.array(ys) + rng.normal(0, GNSS_SIGMA_M, n),
        )
        s = np.array(spd)
        s = np.where(s > 0, np.maximum(s + rng.normal(0, 0.6, n), 1.0), 0.0)
        return FixRows(
            np.arange(n, dtype=np.int64),
            np.array(vid, dtype=np.int64),
            np.array(ts, dtype=np.int64),
            np.round(lon, 6),
            np.round(lat, 6),
            np.round(s, 1),
            np.array(hd, dtype=np.float64),
            np.zeros(n, dtype=np.int64),
            total=n,
        )

    def roadside_spot(self, v: Tanker, now_s: float) -> tuple[int, float, float, float] | None:
        """Where ``v``, driving, may stop by the roadside: the first road segment it starts a
        minute or more from now with a place away from every lot and zone (segment, time,
        x, y)."""
        kt, kx, ky = v.kt, v.kx, v.ky
        moving = np.flatnonzero(
            (np.hypot(np.diff(kx), np.diff(ky)) > 50) & (kt[:-1] >= now_s + 60)
        )[:-1]  # not the connector into the lot
        for i in moving.tolist():  # the first clear place: the map shows it soon
            f = float(v.rng.uniform(0.2, 0.8))
            x = float(kx[i] + f * (kx[i + 1] - kx[i]))
            y = float(ky[i] + f * (ky[i + 1] - ky[i]))
            near = self.clear_tree.query(
                shapely.Point(x, y), predicate="dwithin", distance=ROADSIDE_CLEARANCE_M
            )
            if len(near) == 0:
                return i, float(kt[i] + f * (kt[i + 1] - kt[i])), x, y
        return None

    def stop_by_roadside(
        self, v: Tanker, now_s: float, seconds: float
    ) -> tuple[float, float] | None:
        """Insert a roadside stop of ``seconds`` into ``v``'s plan; where, or ``None``."""
        found = self.roadside_spot(v, now_s)
        if found is None:
            return None
        i, t, x, y = found
        v.kt = np.concatenate((v.kt[: i + 1], [t, t + seconds], v.kt[i + 1 :] + seconds))
        v.kx = np.concatenate((v.kx[: i + 1], [x, x], v.kx[i + 1 :]))
        v.ky = np.concatenate((v.ky[: i + 1], [y, y], v.ky[i + 1 :]))
        return x, y


def _network(rows: list[tuple[Any, ...]]) -> Network:
    """The road graph from ``roads`` (each row one edge between its end points)."""
    ends = np.array([(r[2], r[3], r[4], r[5]) for r in rows], dtype=np.float64).reshape(-1, 4)
    pts = np.round(np.concatenate((ends[:, :2], ends[:, 2:])), 7)
    uniq, inverse = np.unique(pts, axis=0, return_inverse=True)
    inverse = inverse.reshape(-1)
    m = len(rows)
    eu, ev = inverse[:m].astype(np.int64), inverse[m:].astype(np.int64)
    node_x, node_y = to_xy(uniq[:, 0], uniq[:, 1])
    cls = np.array([CLASS_NAMES.index(r[1]) for r in rows], dtype=np.int8)
    length = np.hypot(node_x[ev] - node_x[eu], node_y[ev] - node_y[eu])
    adj: list[list[tuple[int, int]]] = [[] for _ in range(len(uniq))]
    for e, (u, v) in enumerate(zip(eu.tolist(), ev.tolist(), strict=True)):
        if u != v:
            adj[u].append((v, e))
            adj[v].append((u, e))
    return Network(node_x, node_y, eu, ev, cls, length, [r[6] or "" for r in rows], adj)


def _metric(wkb: bytes) -> BaseGeometry:
    def project(coords: np.ndarray) -> np.ndarray:
        x, y = to_xy(coords[:, 0], coords[:, 1])
        return np.column_stack((x, y))

    return shapely.transform(shapely.from_wkb(wkb), project)


# -- the simulator ----------------------------------------------------------------------------
_POINTS_SQL = """
SELECT mp.id, mp.kind, mp.level1, mp.level2, mp.limit_h, mp.limit_hh, mp.limit_l, mp.limit_ll,
       mp.sampling_interval_s, coalesce(mp.hazard_source_id, 0), coalesce(h.enterprise_id, 0),
       (extract(epoch FROM s.last_ts) * 1000000)::int8
FROM monitoring_points mp
LEFT JOIN hazard_sources h ON h.id = mp.hazard_source_id
LEFT JOIN monitoring_state s ON s.point_id = mp.id
ORDER BY mp.id
"""
_ROADS_SQL = """
SELECT id, road_class, ST_X(ST_StartPoint(geom)), ST_Y(ST_StartPoint(geom)),
       ST_X(ST_EndPoint(geom)), ST_Y(ST_EndPoint(geom)), name
FROM roads ORDER BY id
"""
_LOTS_SQL = """
SELECT z.id, ST_AsBinary(z.geom), EXISTS (SELECT 1 FROM zones p WHERE p.kind = 'chemical_park'
       AND ST_Intersects(p.geom, z.geom))
FROM zones z WHERE z.kind = 'designated_parking' ORDER BY z.id
"""
_CLEARANCE_SQL = "SELECT ST_AsBinary(geom) FROM zones WHERE kind <> 'designated_parking'"
_VEHICLES_SQL = """
SELECT v.id, v.enterprise_id, (extract(epoch FROM s.last_ts) * 1000000)::int8, s.last_lon,
       s.last_lat
FROM vehicles v LEFT JOIN vehicle_state s ON s.vehicle_id = v.id
-- The feed drives between lots; a vehicle under a waybill on the road follows its corridor
-- to its consignee, which the feed does not simulate (the waybill models would rightly flag
-- its drives as deviations), so it is left to its recorded day.
WHERE v.retired_at IS NULL AND NOT EXISTS (SELECT 1 FROM waybills w
    WHERE w.vehicle_id = v.id AND w.state IN ('loading', 'in_transit'))
ORDER BY v.id
"""
_CALM_ENTERPRISES_SQL = """
SELECT id FROM enterprises WHERE id = ANY(%s) AND inherent_color IS NOT NULL
  AND inherent_color <> 'red' AND dynamic_color IS NOT DISTINCT FROM inherent_color
ORDER BY id
"""
_OWN_DANGERS_SQL = """
SELECT id, enterprise_id, status FROM hidden_dangers
WHERE title LIKE %(mark)s AND status <> 'rectified'
  AND ((status = 'found' AND found_at <= %(half)s)
       OR (status = 'rectifying' AND found_at <= %(full)s))
ORDER BY id
"""


async def _rows(conn: AsyncConnection[Any], sql: str, params: Any = None) -> list[tuple[Any, ...]]:
    cur = conn.cursor(row_factory=tuple_row)
    await cur.execute(sql.encode(), params)
    return await cur.fetchall()


@dataclass
class City:
    """What the feed reads of the city once, at start."""

    points: list[tuple[Any, ...]]
    roads: list[tuple[Any, ...]]
    lots: list[tuple[Any, ...]]
    clearance: list[tuple[Any, ...]]
    vehicles: list[tuple[Any, ...]]

    @classmethod
    async def load(cls, conn: AsyncConnection[Any]) -> City:
        return cls(
            await _rows(conn, _POINTS_SQL),
            await _rows(conn, _ROADS_SQL),
            await _rows(conn, _LOTS_SQL),
            await _rows(conn, _CLEARANCE_SQL),
            await _rows(conn, _VEHICLES_SQL),
        )


class DemoFeedSim:
    """The whole feed: points, fleet and the incident clock. ``City.load`` reads the city,
    ``build`` makes the simulator (off the event loop); then every tick the worker asks for
    ``incidents_due``, ``readings`` and ``fixes``, ingests them, and ``advance_dangers``."""

    def __init__(self, points: PointFeed, fleet: Fleet, config: FeedConfig, now_us: int) -> None:
        self.points = points
        self.fleet = fleet
        self.config = config
        # Two streams: when and what (the schedule, the same for a seed whatever the database
        # holds) and where (picks among the candidates the database offers).
        self.schedule_rng = np.random.default_rng([config.seed, 51])
        self.incident_rng = np.random.default_rng([config.seed, 52])
        self.next_incident_us = now_us + self._gap_us()
        self.incidents: list[Incident] = []

    @classmethod
    def build(cls, city: City, config: FeedConfig, now: dt.datetime) -> DemoFeedSim:
        """The simulator over ``city`` from ``now`` on. CPU-bound (a routing tree per lot):
        the worker runs it in a thread, off the event loop."""
        now_us = _us(now)
        points = PointFeed(city.points, config, now_us)
        net = _network(city.roads)
        if not city.lots or not len(net.edge_u):
            raise RuntimeError("the demo feed needs roads and designated parking lots")
        geoms = [_metric(r[1]) for r in city.lots]
        probe = Fleet(net, [], [], [], config)
        lots = [
            Lot(int(r[0]), g, probe.nearest_node(g.centroid.x, g.centroid.y), bool(r[2]))
            for r, g in zip(city.lots, geoms, strict=True)
        ]
        fleet = Fleet(net, lots, [_metric(r[0]) for r in city.clearance], [], config)
        fleet.prepare()
        share = np.random.default_rng([config.seed, 40]).random(len(city.vehicles))
        for row, draw in zip(city.vehicles, share.tolist(), strict=True):
            if draw < config.fleet_share:
                fleet.tankers.append(_resume(fleet, row, config, now_us))
        fleet.by_id = {v.id: v for v in fleet.tankers}
        return cls(points, fleet, config, now_us)

    def _gap_us(self) -> int:
        if self.config.incident_mean_s <= 0:
            return 2**62
        return int(self.schedule_rng.exponential(self.config.incident_mean_s) * US)

    # -- readings and fixes --------------------------------------------------------------------
    def readings(self, now: dt.datetime) -> ReadingRows | None:
        return self.points.batch(_us(now))

    def fixes(self, now: dt.datetime) -> FixRows | None:
        return self.fleet.batch(_us(now))

    # -- incidents -----------------------------------------------------------------------------
    async def incidents_due(self, conn: AsyncConnection[Any], now: dt.datetime) -> list[Incident]:
        """Plant the incident whose time has come, if any (its kind drawn from the seed; a kind
        with no place to happen gives way to the next)."""
        now_us = _us(now)
        out: list[Incident] = []
        if self.next_incident_us <= now_us:  # one per tick; after a pause the clock restarts
            self.next_incident_us = now_us + self._gap_us()
            first = int(self.schedule_rng.integers(len(INCIDENT_KINDS)))
            for k in range(len(INCIDENT_KINDS)):
                kind = INCIDENT_KINDS[(first + k) % len(INCIDENT_KINDS)]
                incident = await self.plant(conn, kind, now)
                if incident is not None:
                    out.append(incident)
                    break
        return out

    async def plant(
        self, conn: AsyncConnection[Any], kind: str, now: dt.datetime
    ) -> Incident | None:
        """Plant one incident of ``kind`` now; ``None`` when there is nowhere to plant it."""
        if kind == "gas_alarm_pair":
            incident = await self._gas_pair(conn, now)
        elif kind == "roadside_stop":
            incident = await self._roadside_stop(conn, now)
        elif kind == "major_danger":
            incident = await self._major_danger(conn, now)
        else:
            raise ValueError(f"unknown incident kind {kind!r}; one of {INCIDENT_KINDS}")
        if incident is not None:
            self.incidents.append(incident)
        return incident

    async def _calm(self, conn: AsyncConnection[Any], ids: list[int]) -> list[int]:
        """Those of ``ids`` whose dynamic colour an incident would visibly raise."""
        return [int(r[0]) for r in await _rows(conn, _CALM_ENTERPRISES_SQL, (ids,))]

    def _pick(self, options: list[int]) -> int:
        return int(options[int(self.incident_rng.integers(len(options)))])

    async def _gas_pair(self, conn: AsyncConnection[Any], now: dt.datetime) -> Incident | None:
        p = self.points
        busy = {int(p.source[r]) for r in p.gas_incidents}
        eligible = p.gas & ~np.isnan(p.sp[:, 1]) & (p.source > 0) & (p.enterprise > 0)
        sources, counts = np.unique(p.source[eligible], return_counts=True)
        pairs = [int(s) for s in sources[counts >= 2].tolist() if int(s) not in busy]
        if not pairs:
            return None
        owner = {int(p.source[r]): int(p.enterprise[r]) for r in np.flatnonzero(eligible)}
        calm = set(await self._calm(conn, sorted({owner[s] for s in pairs})))
        source = self._pick([s for s in pairs if owner[s] in calm] or pairs)
        rows = np.flatnonzero(eligible & (p.source == source))
        chosen = sorted(self.incident_rng.choice(rows, 2, replace=False).tolist())
        start = _us(now)
        duration = int(self.config.incident_duration_s * US)
        for r in chosen:
            target = float(p.sp[r, 1] * self.incident_rng.uniform(1.05, 1.15))
            p.gas_incidents[r] = _Gas(start, start + duration, max(duration // 8, 1), target)
            p.fed[r] = True  # an incident's points report even outside the fed share
            p.next_us[r] = min(p.next_us[r], start + p.interval_us[r])
        ids = [int(p.id[r]) for r in chosen]
        enterprise = owner[source]
        return Incident(
            "gas_alarm_pair",
            start,
            f"gas alarm pair: points {ids[0]} and {ids[1]} of hazard source {source} "
            f"(enterprise {enterprise}) climb past level 2 for "
            f"{self.config.incident_duration_s / 60:.0f} min",
            enterprise_id=enterprise,
            point_ids=ids,
            until_us=start + duration,
        )

    async def _roadside_stop(self, conn: AsyncConnection[Any], now: dt.datetime) -> Incident | None:
        now_s = _us(now) / US
        fleet = self.fleet
        driving = [v for v in fleet.tankers if v.driving_at(now_s) and v.kt[-1] - now_s > 300]
        if not driving:
            return None
        carriers = sorted({v.enterprise_id for v in driving if v.enterprise_id})
        calm = set(await self._calm(conn, carriers))
        preferred = [v.id for v in driving if v.enterprise_id in calm]
        pool = preferred or [v.id for v in driving]
        seconds = self.config.max_dwell_s * float(self.incident_rng.uniform(1.4, 2.0))
        for _ in range(min(8, len(pool))):
            v = fleet.by_id[self._pick(pool)]
            where = fleet.stop_by_roadside(v, now_s, seconds)
            if where is None:
                continue
            lon, lat = to_lonlat(*where)
            return Incident(
                "roadside_stop",
                _us(now),
                f"illegal roadside stop: tanker {v.id} (carrier {v.enterprise_id}) will park at "
                f"{float(lon):.5f}, {float(lat):.5f} for {seconds / 60:.0f} min",
                enterprise_id=v.enterprise_id,
                vehicle_id=v.id,
                where=(float(lon), float(lat)),
            )
        return None

    async def _major_danger(self, conn: AsyncConnection[Any], now: dt.datetime) -> Incident | None:
        rows = await _rows(
            conn,
            "SELECT id FROM enterprises WHERE is_hazmat AND inherent_color IS NOT NULL"
            " AND inherent_color <> 'red' AND dynamic_color IS NOT DISTINCT FROM inherent_color"
            " ORDER BY id",
        )
        if not rows:
            return None
        enterprise = self._pick([int(r[0]) for r in rows])
        title = DANGER_TITLES[int(self.incident_rng.integers(len(DANGER_TITLES)))] + FEED_MARK
        danger = HiddenDangerInput(
            title=title,
            is_major=True,
            found_at=now,
            deadline=(now + dt.timedelta(days=15)).date(),
        )
        row = await insert_danger(conn, enterprise, danger)
        return Incident(
            "major_danger",
            _us(now),
            f"major hidden danger {row['id']} filed on enterprise {enterprise}: {title}",
            enterprise_id=enterprise,
            danger_id=int(row["id"]),
        )

    async def advance_dangers(self, conn: AsyncConnection[Any], now: dt.datetime) -> list[int]:
        """Move the feed's own major dangers on: rectifying at half their lifetime; at its end
        the enterprise reports them rectified and a (simulated) regulator accepts — a major
        danger closes only by acceptance (docs/domain.md §5). Answers the enterprises to
        re-rate."""
        life = dt.timedelta(seconds=self.config.danger_lifetime_s)
        params = {"mark": "%" + FEED_MARK, "half": now - life / 2, "full": now - life}
        touched: list[int] = []
        for danger_id, enterprise, status in await _rows(conn, _OWN_DANGERS_SQL, params):
            if status == "found":
                await update_danger(conn, int(danger_id), HiddenDangerPatch(status="rectifying"))
            else:
                report = RectificationReport(evidence="整改完成，附现场照片（演示）")
                await report_rectified(conn, int(danger_id), report, "demo feed")
                note = Acceptance(note="复查合格（演示）")
                await accept_rectification(conn, int(danger_id), note, "demo feed regulator")
            touched.append(int(enterprise))
        return sorted(set(touched))


def _resume(fleet: Fleet, row: tuple[Any, ...], config: FeedConfig, now_us: int) -> Tanker:
    """A tanker continuing from its last stored fix. In a lot it stays for the rest of a dwell.
    Out of one after a short silence, it drove on from there during the silence (its plan
    starts at that fix). After a long silence it reports from the nearest lot it could have
    reached that is away from its last fix; without one, it drove on too."""
    vid, enterprise, last_us, lon, lat = row
    rng = np.random.default_rng([config.seed, 42, int(vid)])
    now_s = now_us / US
    factor = float(rng.uniform(0.9, 1.08))
    phase = float(rng.uniform(0, config.fix_interval_s))
    first_fix = now_s - config.fix_interval_s + phase
    start = min(first_fix, now_s) - 1.0
    if lon is None or lat is None or last_us is None:
        lot = int(rng.integers(len(fleet.lots)))
        x, y = fleet.spot(rng, lot)
    else:
        first_fix = max(first_fix, last_us / US + config.fix_interval_s)
        xa, ya = to_xy(float(lon), float(lat))
        x, y = float(xa), float(ya)
        found = fleet.lot_at(x, y)
        silence = max(now_s - last_us / US, 1.0)
        lot = -1 if found is None else found
        if found is None and silence >= RESUME_IN_LOT_AFTER_S:
            for near in fleet.lots_by_distance(x, y):
                sx, sy = fleet.spot(rng, near)
                d = math.hypot(sx - x, sy - y)
                if d / silence * 3.6 >= RESUME_MAX_KMH:
                    break
                if d >= RESUME_AWAY_M:
                    lot, x, y = near, sx, sy
                    break
        if lot < 0:
            start = last_us / US
    v = Tanker(
        int(vid),
        None if enterprise is None else int(enterprise),
        rng,
        np.array([start]),
        np.array([x]),
        np.array([y]),
        lot,
        first_fix,
        factor,
        heading=int(rng.integers(360)),
    )
    if lot >= 0:  # the rest of a dwell, so the fleet does not leave all at once
        wait = float(rng.uniform(0, LOT_DWELL_S[1]))
        v.kt = np.array([start, start + wait])
        v.kx = np.array([x, x])
        v.ky = np.array([y, y])
    else:
        fleet.plan_trip(v)
    return v
