"""Hazmat tankers and 24 h of 30 s GNSS fixes, with planted events and planted noise.

A vehicle's day is a chain of segments — parked in a lot, or driving a road path at a constant
speed — turned into a knot timeline; fixes are sampled from it at 30 s (vectorised). Planted
events are placed where the ground truth can be exact: roadside stops ≥ 130 m (planar) from
every lot and forbidden zone, forbidden-zone stops ≥ 40 m inside the zone and inside its active
hours, overspeed runs long enough for ≥ 2.5 min above the road's limit. Ground-truth times are
read back from the sampled fixes, not from the plan. Each vehicle has its own random stream, so
a vehicle's track does not depend on chunking.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import shapely
from shapely.geometry import LineString, Point

from layers.demo_city.config import Counts, to_lonlat
from layers.demo_city.identity import carrier_names, plates
from layers.demo_city.roads import CLASS_NAMES, EXPRESSWAY, Network
from layers.demo_city.zones import Zone, parking_spot
from layers.risk.substances import CATALOGUE

FIX_INTERVAL_S = 30
DAY_S = 86_400
FIXES_PER_DAY = DAY_S // FIX_INTERVAL_S
ROADSIDE_CLEARANCE_M = 130.0  # ≥ 100 m in the ground-truth promise, plus margin
ZONE_INSET_M = 40.0
CONNECTOR = -1

KINDS = ("illegal_roadside_stop", "forbidden_zone_stop", "overspeed", "short_roadside_stop")
EVENT_RATE = {
    "illegal_roadside_stop": 0.10,
    "forbidden_zone_stop": 0.11,
    "overspeed": 0.10,
    "short_roadside_stop": 0.15,
}
NOISE_RATE = {"jump": 2e-4, "zero": 1e-4, "duplicate": 2e-4, "out_of_order": 5e-4}
NOISE_REASON = {"jump": "jump", "zero": "invalid_coordinates", "duplicate": "duplicate"}

#: (UN number, transport class, capacity range t) of typical Ningbo tanker loads.
_LOADS = [(s.un_number, s.transport_class, (8.0, 30.0)) for s in CATALOGUE if s.un_number]
_LOADS += [
    ("1202", "3", (15.0, 40.0)),
    ("1789", "8", (10.0, 35.0)),
    ("1830", "8", (10.0, 35.0)),
    ("1824", "8", (10.0, 35.0)),
    ("2014", "5.1", (8.0, 25.0)),
    ("1993", "3", (15.0, 40.0)),
]


@dataclass
class Vehicle:
    id: int
    plate: str
    carrier: str
    hazmat_class: str
    un_number: str
    capacity_t: float
    home_lot: int  # index into World.lots
    district: str = ""


def make_fleet(rng: np.random.Generator, counts: Counts, lots: list[Zone]) -> list[Vehicle]:
    ps = plates(rng, counts.vehicles)
    carriers = carrier_names(rng, counts.carriers)
    cweights = rng.pareto(1.2, size=len(carriers)) + 1
    weights = np.array(
        [3.0 if z.lot_kind == "express" else 2.0 if z.lot_kind == "town" else 1.0 for z in lots]
    )
    out = []
    for i in range(counts.vehicles):
        un, cls, (lo, hi) = _LOADS[int(rng.integers(len(_LOADS)))]
        home = int(rng.choice(len(lots), p=weights / weights.sum()))
        out.append(
            Vehicle(
                i + 1,
                ps[i],
                carriers[int(rng.choice(len(carriers), p=cweights / cweights.sum()))],
                str(cls),
                str(un),
                round(float(rng.uniform(lo, hi)), 1),
                home,
                lots[home].district,
            )
        )
    return out


@dataclass
class Hit:
    edge: int
    frac: float  # along edge u → v
    zone: int  # index into World.forbidden
    x: float
    y: float


@dataclass
class World:
    net: Network
    lots: list[Zone]
    forbidden: list[Zone]
    day_start_us: int  # local midnight as Unix µs
    seed: int
    hits: list[Hit] = field(default_factory=list)
    clear_tree: Any = None
    forbidden_tree: Any = None
    park_lots: list[int] = field(default_factory=list)
    #: hazmat_restricted zones: every vehicle's runs inside them while closed are truth.
    restricted: list[Zone] = field(default_factory=list)

    def prepare(self) -> None:
        """Spatial indexes, routing trees of every lot, and where roads pass inside zones."""
        self.clear_tree = shapely.STRtree([z.geom for z in self.lots + self.forbidden])
        self.forbidden_tree = shapely.STRtree([z.geom for z in self.forbidden])
        self.park_lots = [i for i, z in enumerate(self.lots) if z.lot_kind == "park"]
        for z in self.lots:
            self.net.route_tree(z.access_node)
        net = self.net
        lines = [
            LineString([(net.node_x[u], net.node_y[u]), (net.node_x[v], net.node_y[v])])
            for u, v in zip(net.edge_u.tolist(), net.edge_v.tolist(), strict=True)
        ]
        inner = [z.geom.buffer(-ZONE_INSET_M) for z in self.forbidden]
        inner_tree = shapely.STRtree(inner)
        e_idx, z_idx = inner_tree.query(lines, predicate="intersects")
        lots_tree = shapely.STRtree([z.geom for z in self.lots])
        for e, zi in zip(e_idx.tolist(), z_idx.tolist(), strict=True):
            part = lines[e].intersection(inner[zi])
            if part.is_empty or part.length < 1.0:
                continue
            mid = part.interpolate(0.5, normalized=True)
            if len(lots_tree.query(mid, predicate="dwithin", distance=ROADSIDE_CLEARANCE_M)):
                continue
            frac = lines[e].project(mid) / max(lines[e].length, 1e-9)
            self.hits.append(Hit(e, frac, zi, mid.x, mid.y))

    def roadside_clear(self, x: float, y: float) -> bool:
        q = self.clear_tree.query(Point(x, y), predicate="dwithin", distance=ROADSIDE_CLEARANCE_M)
        return len(q) == 0


@dataclass
class Leg:
    """A drive: polyline knots, and per segment its road class (-1 connector) and edge id."""

    xs: np.ndarray
    ys: np.ndarray
    cls: np.ndarray
    edges: np.ndarray


def _leg(
    world: World,
    a: tuple[float, float],
    lot_a: Zone,
    lot_b: Zone,
    b: tuple[float, float],
    via: Hit | None = None,
) -> Leg:
    net = world.net
    if via is None:
        nodes, edges = net.path(lot_a.access_node, lot_b.access_node)
    else:
        u, v = int(net.edge_u[via.edge]), int(net.edge_v[via.edge])
        n1, e1 = net.path(lot_a.access_node, u)
        n2, e2 = net.path(lot_b.access_node, v)
        nodes = n1 + n2[::-1]
        edges = [*e1, via.edge, *e2[::-1]]
    xs = np.concatenate(([a[0]], net.node_x[nodes], [b[0]]))
    ys = np.concatenate(([a[1]], net.node_y[nodes], [b[1]]))
    e_arr = np.array(edges, dtype=np.int64)
    cls = np.concatenate(([CONNECTOR], net.edge_cls[e_arr] if len(e_arr) else [], [CONNECTOR]))
    return Leg(xs, ys, cls.astype(np.int64), np.concatenate(([-1], e_arr, [-1])).astype(np.int64))


@dataclass
class Timeline:
    """Knots (x, y) and per segment (duration s, speed km/h, heading °) of a vehicle's day."""

    xs: list[np.ndarray] = field(default_factory=list)
    ys: list[np.ndarray] = field(default_factory=list)
    dur: list[np.ndarray] = field(default_factory=list)
    speed: list[np.ndarray] = field(default_factory=list)
    t: float = 0.0
    pos: tuple[float, float] = (0.0, 0.0)

    def start(self, x: float, y: float) -> None:
        self.pos = (x, y)
        self.xs.append(np.array([x]))
        self.ys.append(np.array([y]))

    def stay(self, seconds: float) -> tuple[float, float]:
        t0 = self.t
        self.xs.append(np.array([self.pos[0]]))
        self.ys.append(np.array([self.pos[1]]))
        self.dur.append(np.array([seconds]))
        self.speed.append(np.array([0.0]))
        self.t += seconds
        return t0, self.t

    def drive(self, xs: np.ndarray, ys: np.ndarray, speed: np.ndarray) -> np.ndarray:
        """Append a polyline starting at the current position; returns segment start times."""
        seg = np.hypot(np.diff(xs), np.diff(ys))
        dur = seg / (speed / 3.6)
        starts = self.t + np.concatenate(([0.0], np.cumsum(dur)[:-1]))
        self.xs.append(xs[1:])
        self.ys.append(ys[1:])
        self.dur.append(dur)
        self.speed.append(speed)
        self.t += float(dur.sum())
        self.pos = (float(xs[-1]), float(ys[-1]))
        return starts


@dataclass
class Event:
    kind: str
    t0: float  # planned local-day seconds
    t1: float
    x: float
    y: float
    zone: int | None = None  # index into lots (lot_stop) or forbidden
    limit: float | None = None
    road_class: str | None = None
    purpose: str | None = None


def _cruise(rng: np.random.Generator, cls: np.ndarray, factor: float) -> np.ndarray:
    base = np.array([71.0, 48.0, 35.0, 12.0])[cls]  # cls -1 picks index 3 (connector)
    v = base * factor + rng.uniform(-3, 3, size=len(cls))
    cap = np.where(cls == EXPRESSWAY, 78.0, np.where(cls < 0, 15.0, 57.0))
    return np.clip(v, 8.0, cap)


def _split_at(
    leg_xs: np.ndarray, leg_ys: np.ndarray, speed: np.ndarray, seg: int, x: float, y: float
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Cut the polyline at a point on segment ``seg``: (xs, ys, speed) before and after it."""
    xa = np.concatenate((leg_xs[: seg + 1], [x]))
    ya = np.concatenate((leg_ys[: seg + 1], [y]))
    xb = np.concatenate(([x], leg_xs[seg + 1 :]))
    yb = np.concatenate(([y], leg_ys[seg + 1 :]))
    return xa, ya, speed[: seg + 1], xb, yb, speed[seg:]


class VehicleDay:
    """Plans one vehicle's day; ``build`` returns the timeline and planted events."""

    def __init__(self, world: World, veh: Vehicle, rng: np.random.Generator) -> None:
        self.world, self.veh, self.rng = world, veh, rng

    def build(self, wanted: list[str], idle: bool = False) -> tuple[Timeline, list[Event]]:
        w, rng = self.world, self.rng
        home = w.lots[self.veh.home_lot]
        spot = parking_spot(rng, home)
        tl = Timeline()
        tl.start(*spot)
        events: list[Event] = []
        if (rng.random() < 0.10 or idle) and not wanted:
            tl.stay(DAY_S + 120)
            events.append(
                Event("lot_stop", 0, DAY_S, *spot, zone=self.veh.home_lot, purpose="idle")
            )
            return tl, events
        factor = float(rng.uniform(0.9, 1.08))
        depart = float(rng.uniform(5.0, 9.5) * 3600)
        tl.stay(depart)
        events.append(Event("lot_stop", 0, depart, *spot, zone=self.veh.home_lot, purpose="night"))
        trips = 2 if rng.random() < 0.4 else 1
        stops: list[tuple[int, str]] = []
        for _ in range(trips):
            load = w.park_lots[int(rng.integers(len(w.park_lots)))] if w.park_lots else 0
            unload = int(rng.integers(len(w.lots)))
            stops += [(load, "loading"), (unload, "unloading")]
        stops.append((self.veh.home_lot, "home"))
        # Which leg carries which planted event (distinct legs, random order).
        leg_of: dict[int, str] = {}
        order = rng.permutation(len(stops)).tolist()
        for kind, leg in zip(wanted, order, strict=False):
            leg_of[leg] = kind
        cur_lot, cur_spot = self.veh.home_lot, spot
        for li, (lot_i, purpose) in enumerate(stops):
            if lot_i == cur_lot:
                continue
            lot = w.lots[lot_i]
            dest = parking_spot(rng, lot)
            planted = leg_of.get(li)
            via = self._pick_hit(tl.t, cur_lot) if planted == "forbidden_zone_stop" else None
            leg = _leg(w, cur_spot, w.lots[cur_lot], lot, dest, via)
            speed = _cruise(rng, leg.cls, factor)
            events += self._drive(tl, leg, speed, planted, via)
            dwell = float(rng.uniform(20, 60) * 60) if purpose != "home" else DAY_S * 2
            t0, t1 = tl.stay(dwell)
            events.append(Event("lot_stop", t0, min(t1, DAY_S), *dest, zone=lot_i, purpose=purpose))
            cur_lot, cur_spot = lot_i, dest
        if tl.t < DAY_S + 60:
            tl.stay(DAY_S + 60 - tl.t)
        return tl, events

    def _pick_hit(self, t_now: float, from_lot: int) -> Hit | None:
        w, rng = self.world, self.rng
        if not w.hits:
            return None
        dist, _, _ = w.net.route_tree(w.lots[from_lot].access_node)
        for _ in range(40):
            h = w.hits[int(rng.integers(len(w.hits)))]
            zone = w.forbidden[h.zone]
            if zone.active_hours:
                eta = t_now + float(dist[int(w.net.edge_u[h.edge])]) * 1.1
                if not (8 * 3600 <= eta <= 16.5 * 3600):
                    continue
            return h
        return None

    def _drive(
        self, tl: Timeline, leg: Leg, speed: np.ndarray, kind: str | None, via: Hit | None
    ) -> list[Event]:
        rng, w = self.rng, self.world
        road = np.flatnonzero(leg.cls >= 0)
        if kind in ("illegal_roadside_stop", "short_roadside_stop") and len(road) >= 6:
            for _ in range(30):
                seg = int(road[int(rng.integers(2, len(road) - 2))])
                f = float(rng.uniform(0.2, 0.8))
                x = leg.xs[seg] + f * (leg.xs[seg + 1] - leg.xs[seg])
                y = leg.ys[seg] + f * (leg.ys[seg + 1] - leg.ys[seg])
                if w.roadside_clear(x, y):
                    minutes = (
                        rng.uniform(13, 40)
                        if kind == "illegal_roadside_stop"
                        else rng.uniform(4, 8)
                    )
                    return [self._stop_at(tl, leg, speed, seg, x, y, minutes * 60, kind, None)]
        if kind == "forbidden_zone_stop" and via is not None:
            seg = int(np.flatnonzero(leg.edges == via.edge)[0])
            return [
                self._stop_at(
                    tl, leg, speed, seg, via.x, via.y, rng.uniform(6, 20) * 60, kind, via.zone
                )
            ]
        if kind == "overspeed":
            ev = self._overspeed(leg, speed)
            starts = tl.drive(leg.xs, leg.ys, speed)
            if ev is not None:
                a, b, limit, _ = ev
                end = starts[b - 1] + float(
                    np.hypot(leg.xs[b] - leg.xs[b - 1], leg.ys[b] - leg.ys[b - 1])
                ) / (speed[b - 1] / 3.6)
                # Report the middle of the episode's middle segment and that segment's class
                # (a 60 km/h episode may span arterial and local roads).
                mid = (a + b - 1) // 2
                mx = float(leg.xs[mid] + leg.xs[mid + 1]) / 2
                my = float(leg.ys[mid] + leg.ys[mid + 1]) / 2
                return [
                    Event(
                        "overspeed",
                        float(starts[a]),
                        float(end),
                        mx,
                        my,
                        limit=limit,
                        road_class=CLASS_NAMES[int(leg.cls[mid])],
                    )
                ]
            return []
        tl.drive(leg.xs, leg.ys, speed)
        return []

    def _stop_at(
        self,
        tl: Timeline,
        leg: Leg,
        speed: np.ndarray,
        seg: int,
        x: float,
        y: float,
        seconds: float,
        kind: str,
        zone: int | None,
    ) -> Event:
        xa, ya, sa, xb, yb, sb = _split_at(leg.xs, leg.ys, speed, seg, x, y)
        tl.drive(xa, ya, sa)
        t0, t1 = tl.stay(seconds)
        tl.drive(xb, yb, sb)
        return Event(kind, t0, t1, x, y, zone=zone)

    def _overspeed(self, leg: Leg, speed: np.ndarray) -> tuple[int, int, float, int] | None:
        """Raise speed on a run of same-limit segments long enough for ≥ 2.5 min over."""
        rng = self.rng
        seg_len = np.hypot(np.diff(leg.xs), np.diff(leg.ys))
        limit = np.where(leg.cls == EXPRESSWAY, 80.0, 60.0)
        runs: list[tuple[int, int]] = []
        i = 1
        while i < len(leg.cls) - 1:
            j = i
            while j + 1 < len(leg.cls) - 1 and limit[j + 1] == limit[i]:
                j += 1
            runs.append((i, j + 1))
            i = j + 1
        rng.shuffle(runs)
        for a, b in runs:
            lim = float(limit[a])
            if lim == 60.0:
                # Keep one normal segment between the episode and an expressway (where 70 km/h
                # is legal), so the episode's first and last fixes are unambiguous.
                a += int(leg.cls[a - 1] == EXPRESSWAY)
                b -= int(b < len(leg.cls) and leg.cls[b] == EXPRESSWAY)
                if b <= a:
                    continue
            v = float(rng.uniform(90, 100) if lim == 80 else rng.uniform(70, 80))
            need = v / 3.6 * 240.0
            if seg_len[a:b].sum() < need:
                continue
            end = a
            covered = 0.0
            while covered < need:
                covered += seg_len[end]
                end += 1
            speed[a:end] = v + rng.uniform(-1.5, 1.5, size=end - a)
            return a, end, lim, int(leg.cls[a])
        return None


@dataclass
class Sampled:
    ts_s: np.ndarray  # local-day seconds of each fix
    x: np.ndarray
    y: np.ndarray
    speed: np.ndarray
    heading: np.ndarray


def sample(tl: Timeline, phase: int, rng: np.random.Generator) -> Sampled:
    xs = np.concatenate(tl.xs)
    ys = np.concatenate(tl.ys)
    dur = np.concatenate(tl.dur)
    spd = np.concatenate(tl.speed)
    knots_t = np.concatenate(([0.0], np.cumsum(dur)))
    dx, dy = np.diff(xs), np.diff(ys)
    head = np.degrees(np.arctan2(dx, dy)) % 360.0
    moving = spd > 0
    # Parked segments keep the heading the vehicle arrived with.
    idx = np.where(moving, np.arange(len(spd)), 0)
    np.maximum.accumulate(idx, out=idx)
    first = float(rng.uniform(0, 360))
    head = np.where(moving[idx], head[idx], first)
    t = phase + FIX_INTERVAL_S * np.arange(FIXES_PER_DAY, dtype=np.float64)
    seg = np.clip(np.searchsorted(knots_t, t, side="right") - 1, 0, len(dur) - 1)
    frac = np.clip((t - knots_t[seg]) / np.maximum(dur[seg], 1e-9), 0.0, 1.0)
    x = xs[seg] + frac * dx[seg] + rng.normal(0, 2.5, len(t))
    y = ys[seg] + frac * dy[seg] + rng.normal(0, 2.5, len(t))
    s = spd[seg]
    jit = s + rng.normal(0, 0.6, len(t))
    for thr in (60.0, 80.0):  # jitter never carries a speed across a limit
        jit = np.where(s < thr, np.minimum(jit, thr - 0.5), np.maximum(jit, thr + 0.5))
    s = np.where(s > 0, np.maximum(jit, 1.0), 0.0)
    return Sampled(t, x, y, s, np.rint(head[seg]).astype(np.int64) % 360)


@dataclass
class ChunkOut:
    vehicle_id: np.ndarray
    ts_us: np.ndarray
    lon: np.ndarray
    lat: np.ndarray
    speed: np.ndarray
    heading: np.ndarray
    events: list[dict[str, Any]]
    noise: list[dict[str, Any]]


def _window(ts: np.ndarray, t0: float, t1: float) -> np.ndarray:
    return np.flatnonzero((ts >= t0 - 1e-6) & (ts <= t1 + 1e-6))


def simulate(
    world: World,
    veh: Vehicle,
    forced: str | None,
    idle: bool = False,
    keep: list[Timeline] | None = None,
) -> tuple[Sampled, list[dict[str, Any]], np.ndarray]:
    """Sample one vehicle's day; returns fixes, ground-truth events and a noise-protected mask.
    An ``idle`` vehicle (no waybill that day: no load to haul) stays in its home lot."""
    rng = np.random.default_rng([world.seed, 7001, veh.id])
    wanted = [k for k in KINDS if rng.random() < EVENT_RATE[k]]
    if idle and not forced:
        wanted = []
    if forced and forced not in wanted:
        wanted.append(forced)
    rng.shuffle(wanted)
    phase = int(rng.integers(0, FIX_INTERVAL_S))
    for _attempt in range(6):
        tl, events = VehicleDay(world, veh, rng).build(wanted, idle and not forced)
        s = sample(tl, phase, rng)
        truth, ok = _truth(world, veh, s, events)
        if ok:
            break
        wanted = wanted[: max(0, len(wanted) - 1)] if _attempt >= 3 else wanted
    if keep is not None:
        keep.append(tl)  # the caller reads driving stints from the plan (fatigue truth)
    protected = np.zeros(FIXES_PER_DAY, dtype=bool)
    protected[:4] = True
    for ev in events:
        if ev.kind != "lot_stop":
            w = _window(s.ts_s, ev.t0 - 180, ev.t1 + 180)
            protected[w] = True
    return s, truth, protected


def _truth(
    world: World, veh: Vehicle, s: Sampled, events: list[Event]
) -> tuple[list[dict[str, Any]], bool]:
    out: list[dict[str, Any]] = []
    for ev in events:
        if ev.kind != "lot_stop" and ev.t1 > DAY_S - 900:
            return [], False
        if ev.kind == "overspeed":
            w = _window(s.ts_s, ev.t0, ev.t1)
            over = w[s.speed[w] > (ev.limit or 0)]
            if len(over) < 2 or s.ts_s[over[-1]] - s.ts_s[over[0]] < 150:
                return [], False
            if len(over) != over[-1] - over[0] + 1:
                return [], False
            i0, i1 = int(over[0]), int(over[-1])
            rec: dict[str, Any] = {
                "road_class": ev.road_class,
                "limit_kmh": ev.limit,
                "max_speed_kmh": round(float(s.speed[over].max()), 1),
            }
        else:
            w = _window(s.ts_s, ev.t0, min(ev.t1, DAY_S))
            if len(w) == 0:
                if ev.kind == "lot_stop":
                    continue
                return [], False
            i0, i1 = int(w[0]), int(w[-1])
            rec = {}
            dur = s.ts_s[i1] - s.ts_s[i0]
            if ev.kind == "illegal_roadside_stop" and dur <= 660:
                return [], False
            if ev.kind == "short_roadside_stop" and dur >= 540:
                return [], False
            if ev.kind == "forbidden_zone_stop":
                zone = world.forbidden[ev.zone or 0]
                if dur < 300 or not _within_hours(zone.active_hours, s.ts_s[i0], s.ts_s[i1]):
                    return [], False
                inside = world.forbidden_tree.query(Point(ev.x, ev.y), predicate="within")
                rec = {
                    "zone_id": zone.id,
                    "zone_kind": zone.kind,
                    "zone_ids": sorted(world.forbidden[int(k)].id for k in inside),
                }
            if ev.kind == "lot_stop":
                lot = world.lots[ev.zone or 0]
                rec = {"zone_id": lot.id, "zone_kind": lot.kind, "purpose": ev.purpose}
        lon, lat = to_lonlat(ev.x, ev.y)
        out.append(
            {
                "vehicle_id": veh.id,
                "plate": veh.plate,
                "kind": ev.kind,
                "start": float(s.ts_s[i0]),
                "end": float(s.ts_s[i1]),
                "lon": round(float(lon), 6),
                "lat": round(float(lat), 6),
                **rec,
            }
        )
    return out, True


def _within_hours(hours: str | None, t0: float, t1: float) -> bool:
    if not hours:
        return True
    for part in hours.split(","):
        a, b = part.split("-")
        lo = int(a[:2]) * 3600 + int(a[3:]) * 60
        hi = int(b[:2]) * 3600 + int(b[3:]) * 60
        if lo + 120 <= t0 and t1 <= hi - 120:
            return True
    return False


def add_noise(
    rng: np.random.Generator,
    vid: int,
    s: Sampled,
    lon: np.ndarray,
    lat: np.ndarray,
    protected: np.ndarray,
    force_each: bool,
) -> tuple[np.ndarray, list[dict[str, Any]]]:
    """Corrupt fixes in place and return the delivery order plus the noise ground truth."""
    n = len(lon)
    free = np.flatnonzero(~protected)
    counts = {k: int(rng.poisson(r * n)) for k, r in NOISE_RATE.items()}
    if force_each:
        counts = {k: max(1, c) for k, c in counts.items()}
    total = min(sum(counts.values()), len(free))
    picks = rng.choice(free, size=total, replace=False)
    key = np.arange(n, dtype=np.float64)
    extra: list[int] = []
    extra_key: list[float] = []
    noise: list[dict[str, Any]] = []
    pos = 0
    for kind, c in counts.items():
        for i in picks[pos : pos + c].tolist():
            entry: dict[str, Any] = {"vehicle_id": vid, "ts": float(s.ts_s[i]), "kind": kind}
            if kind == "jump":
                d, th = rng.uniform(5000, 50000), rng.uniform(0, 2 * math.pi)
                lon[i], lat[i] = to_lonlat(s.x[i] + d * math.sin(th), s.y[i] + d * math.cos(th))
                lon[i], lat[i] = round(float(lon[i]), 6), round(float(lat[i]), 6)
                entry["reason"] = NOISE_REASON[kind]
            elif kind == "zero":
                lon[i] = lat[i] = 0.0
                entry["reason"] = NOISE_REASON[kind]
            elif kind == "duplicate":
                extra.append(i)
                extra_key.append(min(n - 1, i + int(rng.integers(1, 20))) + 0.25)
                entry["reason"] = NOISE_REASON[kind]
            else:
                after = min(n - 1, i + int(rng.integers(10, 120)))
                key[i] = after + 0.5
                entry["delivered_after_ts"] = float(s.ts_s[after])
            noise.append(entry)
        pos += c
    order = np.argsort(np.concatenate((key, np.array(extra_key))), kind="stable")
    src = np.concatenate((np.arange(n), np.array(extra, dtype=np.int64)))
    return src[order], noise
