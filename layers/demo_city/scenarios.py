"""Planted transport-chain scenarios (issue 14 item 6): every warning model's violation and its
legal twin, on dedicated vehicles of the seeded fleet, with the waybills that make them true.

Each rule of ``vocab.WARNING_MODEL_RULES`` gets ``per_rule(scale)`` planted vehicles and as many
twins (the legal variant the issue names). A scenario vehicle's day is scripted here (roads and
speeds as ``tracks.py`` drives them) instead of drawn; its waybills are written by
``chain.py`` as ``planned`` (the loading, loaded, unloading and unloaded steps are then derived
from its stops at the declared sites when the seed runs the engine, as live) — except the
no-escort waybills, which an import put straight into ``in_transit`` (the loading checks would
refuse a waybill without an escort). A waybill's corridor is the planned road path buffered
by ``chain.CORRIDOR_M``, so a vehicle on its route is inside it.

What keeps scenarios from tripping other models (listed in truth when they must):
- vehicles live in "clean" lots ≥ :data:`CLEAN_M` from every hazmat enterprise (a long stop
  near a plant reads as a loading for a vehicle without waybill, or a wrong destination);
- stops at declared sites last :data:`SITE_STOP_S` (< the 10 min illegal-parking dwell);
- a stop longer than 10 min outside lots (the unwaybilled loading, the undeclared stop, the wrong
  destination) is also an ``illegal_roadside_stop`` event of the existing truth;
- fatigue and restriction vehicles drive empty without waybill, resting only in clean lots;
- what any vehicle does of its own is computed, not assumed away: every run inside a closed
  restricted zone (:func:`restricted_runs`) and every long stint or driving day
  (:func:`fatigue_runs`) is an event, or an edge where models may fairly read it either way.
Truth times are read back from the sampled fixes, as ``tracks.py`` does. The seed judges a
vehicle's whole day in one batch after its waybills' steps are derived, so a model that reads a
waybill's current state sees the day's final one: the positioning-gap and mixed-loading cases
keep their waybill in transit overnight (parked in a lot) so either reading holds; the others
assume a model judges a fix against the waybill active at the fix's time.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any, Final

import numpy as np
import shapely
from shapely.geometry import LineString, Point

from layers.core.vocab import WARNING_MODEL_RULES
from layers.demo_city.config import to_lonlat
from layers.demo_city.tracks import (
    CONNECTOR,
    DAY_S,
    Sampled,
    Timeline,
    Vehicle,
    World,
    _cruise,
    _window,
    sample,
)
from layers.demo_city.zones import Zone, parking_spot

#: Metres either side of a waybill's planned path (chain.CORRIDOR_M; kept equal by a test).
CORRIDOR_M: Final = 1000.0
#: Planted vehicles per rule at scale 1 (and as many twins); at least one each.
PER_RULE_AT_1: Final = 8
#: A clean lot or stop point is this far from every hazmat enterprise's site (metres).
CLEAN_M: Final = 600.0
#: Loading / unloading at a declared site: long enough to be a stop, short of illegal parking
#: even with the slow approach the detector counts into the stop (≈ +3 min).
SITE_STOP_S: Final = 5 * 60.0
#: Long stops of the planted cases (all over the thresholds of layers/transport/config.py).
UNWAYBILLED_STOP_S: Final = 17 * 60.0  # ≥ site_loading_min_s 900 s
UNDECLARED_STOP_S: Final = 36 * 60.0  # ≥ undeclared_stop_max_s 1800 s
WRONG_SITE_STOP_S: Final = 21 * 60.0  # ≥ wrong_destination_min_s 900 s
LOT_REST_S: Final = 26 * 60.0  # ≥ rest_min_s 1200 s with margin for stop detection
GAP_S: Final = 26 * 60.0  # ≥ positioning_gap_max_s 1200 s
WASH_S: Final = 22 * 60.0
#: Loads: (UN, class, name). Class 3 and 5.1 are incompatible in every segregation table
#: (a flammable liquid after an oxidiser); 3 after 3 is the same class.
FLAMMABLE: Final = ("1203", "3", "汽油")
FLAMMABLE_2: Final = ("1993", "3", "易燃液体，未另作规定的")
OXIDISER: Final = ("2014", "5.1", "过氧化氢水溶液")


def per_rule(scale: float) -> int:
    return max(1, round(PER_RULE_AT_1 * scale))


@dataclass
class Site:
    """A hazmat enterprise a scenario loads, unloads or stops at (metric plane)."""

    id: int
    category: str
    name: str
    x: float
    y: float
    node: int


@dataclass
class PlannedWaybill:
    code: str
    vehicle: int
    origin: Site
    destination: Site
    load: tuple[str, str, str]  # UN, class, name
    escort: bool
    state: str  # 'planned' (steps derived from stops) or 'in_transit' (imported)
    route: list[tuple[float, float]]  # metric knots of the planned road path
    depart_s: float  # planned departure / arrival, local-day seconds
    arrive_s: float
    loaded: tuple[float, float] | None = None  # party loading / loaded times ('in_transit')


@dataclass
class Mark:
    """A truth entry before sampling: rule, planned span and what it expects."""

    rule: str
    kind: str  # 'stop' (the fixes at a stay), 'span' (fixes in [t0, t1]), 'gap'
    t0: float
    t1: float
    x: float
    y: float
    details: dict[str, Any] = field(default_factory=dict)


@dataclass
class Plan:
    vehicle: int
    rule: str
    twin: bool
    story: str
    tl: Timeline = field(default_factory=Timeline)
    node: int = -1
    marks: list[Mark] = field(default_factory=list)
    gaps: list[tuple[float, float]] = field(default_factory=list)
    waybills: list[PlannedWaybill] = field(default_factory=list)
    #: Papers the chain must leave expired (the loading check that fails), else all valid.
    expired: str | None = None
    has_waybill: bool = False


class Planner:
    """Scripts scenario days over the world's roads (one generator for all, deterministic)."""

    def __init__(
        self,
        world: World,
        sites: list[Site],
        washing: list[Zone],
        rng: np.random.Generator,
        day_code: str,
        hazmat_xy: np.ndarray,
    ) -> None:
        self.w, self.rng, self.day_code = world, rng, day_code
        net = world.net
        self.main = net.nodes_in_main()
        # Every hazmat enterprise (not only the pool) keeps homes, rests and stops "clean".
        pts = hazmat_xy if len(hazmat_xy) else np.array([(s.x, s.y) for s in sites])
        self.site_tree = shapely.STRtree([Point(float(x), float(y)) for x, y in pts])
        self.clean = [
            i
            for i, z in enumerate(world.lots)
            if not len(self.site_tree.query(z.geom, predicate="dwithin", distance=CLEAN_M))
        ]
        if len(self.clean) < 3:
            raise RuntimeError("the demo city has fewer than 3 lots clear of hazmat sites")
        self.sites = sites
        self.washing = washing
        self.n_codes = 0

    # -- primitives ------------------------------------------------------------------------
    def _go(
        self, p: Plan, x: float, y: float, node: int, factor: float
    ) -> list[tuple[float, float]]:
        """Drive from the current position via the fastest road path to ``node`` then (x, y)."""
        net = self.w.net
        nodes, edges = net.path(p.node, node)
        xs = np.concatenate(([p.tl.pos[0]], net.node_x[nodes], [x]))
        ys = np.concatenate(([p.tl.pos[1]], net.node_y[nodes], [y]))
        e = np.array(edges, dtype=np.int64)
        cls = np.concatenate(([CONNECTOR], net.edge_cls[e] if len(e) else [], [CONNECTOR]))
        keep = np.concatenate(([True], np.hypot(np.diff(xs), np.diff(ys)) > 0.5))
        xs, ys = xs[keep], ys[keep]
        cls = cls.astype(np.int64)[keep[1:]]
        if len(xs) >= 2:
            p.tl.drive(xs, ys, _cruise(self.rng, cls, factor))
        p.node = node
        return list(zip(xs.tolist(), ys.tolist(), strict=True))

    def _lot(self, exclude: set[int] = frozenset()) -> int:  # type: ignore[assignment]
        pool = [i for i in self.clean if i not in exclude] or self.clean
        return pool[int(self.rng.integers(len(pool)))]

    def _to_lot(
        self, p: Plan, lot_i: int, factor: float
    ) -> tuple[list[tuple[float, float]], tuple[float, float]]:
        lot = self.w.lots[lot_i]
        spot = parking_spot(self.rng, lot)
        return self._go(p, *spot, lot.access_node, factor), spot

    def _sites(self, k: int) -> list[Site]:
        idx = self.rng.choice(len(self.sites), size=k, replace=False)
        return [self.sites[int(i)] for i in idx]

    def _code(self) -> str:
        self.n_codes += 1
        return f"YS{self.day_code}{self.n_codes:04d}"  # YS…: not the chain's YD… series

    def nearest_lot(self, x: float, y: float) -> int:
        """The clean lot nearest to (x, y): homes and rests close to the work keep a
        delivery day's stints short (no fatigue of its own)."""
        c = [self.w.lots[i].geom.centroid for i in self.clean]
        return self.clean[int(np.argmin([(q.x - x) ** 2 + (q.y - y) ** 2 for q in c]))]

    def _start(self, p: Plan, depart_h: tuple[float, float], near: Site | None = None) -> float:
        home = self._lot() if near is None else self.nearest_lot(near.x, near.y)
        lot = self.w.lots[home]
        spot = parking_spot(self.rng, lot)
        p.tl.start(*spot)
        p.node = lot.access_node
        p.tl.stay(float(self.rng.uniform(*depart_h)) * 3600)
        return float(self.rng.uniform(0.92, 1.05))

    def clear_stop(self, x: float, y: float) -> bool:
        """A roadside point ≥ 130 m from lots and zones and ≥ :data:`CLEAN_M` from plants."""
        if not self.w.roadside_clear(x, y):
            return False
        near = self.site_tree.query(Point(x, y), predicate="dwithin", distance=CLEAN_M)
        return not len(near)

    def _waybill(
        self,
        p: Plan,
        a: Site,
        b: Site,
        route: list[tuple[float, float]],
        depart: float,
        arrive: float,
        load: tuple[str, str, str] = FLAMMABLE,
        escort: bool = True,
        state: str = "planned",
        loaded: tuple[float, float] | None = None,
    ) -> PlannedWaybill:
        wb = PlannedWaybill(
            self._code(), p.vehicle, a, b, load, escort, state, route, depart, arrive + 600, loaded
        )
        p.waybills.append(wb)
        p.has_waybill = True
        return wb

    def _site_stop(
        self, p: Plan, s: Site, factor: float, seconds: float = SITE_STOP_S
    ) -> tuple[list[tuple[float, float]], float, float]:
        route = self._go(p, s.x, s.y, s.node, factor)
        t0, t1 = p.tl.stay(seconds)
        return route, t0, t1

    def _finish(self, p: Plan, factor: float) -> None:
        """Drive to the nearest clean lot and stay there until past midnight."""
        if p.tl.t >= DAY_S:
            return  # parked for the night already
        self._to_lot(p, self.nearest_lot(*p.tl.pos), factor)
        p.tl.stay(max(60.0, DAY_S + 120 - p.tl.t))

    def _delivery(
        self, p: Plan, a: Site, b: Site, factor: float, via: list[tuple[str, Any]] | None = None,
        overnight: bool = False, **kw: Any,
    ) -> tuple[PlannedWaybill, tuple[float, float], float, list[tuple[float, float]]]:  # fmt: skip
        """Load at ``a``, drive (through ``via`` legs: another plant's site, a lot with a stay,
        a road node, a road node with an undeclared stop) to ``b``, unload; the waybill's route
        is the driven path unless a caller replaces it. Returns (waybill, the stay at a, reached
        b, path)."""
        _, la0, la1 = self._site_stop(p, a, factor)
        path: list[tuple[float, float]] = [(a.x, a.y)]
        for what, arg in via or []:
            if what == "site":
                path += self._go(p, arg.x, arg.y, arg.node, factor)[1:]
                t0, t1 = p.tl.stay(WRONG_SITE_STOP_S)
                found = {"found_enterprise_id": arg.id, "found_enterprise": arg.name,
                         "declared_consignee_id": b.id}  # fmt: skip
                p.marks.append(Mark("wrong_destination", "stop", t0, t1, arg.x, arg.y, found))
                p.marks.append(Mark("illegal_parking", "stop", t0, t1, arg.x, arg.y))
            elif what == "lot":
                leg, _ = self._to_lot(p, arg[0], factor)
                path += leg[1:]
                p.tl.stay(arg[1])
            elif what in ("node", "stopnode"):
                nx, ny = float(self.w.net.node_x[arg]), float(self.w.net.node_y[arg])
                path += self._go(p, nx, ny, arg, factor)[1:]
                if what == "stopnode":
                    t0, t1 = p.tl.stay(UNDECLARED_STOP_S)
                    p.marks.append(Mark("undeclared_stop", "stop", t0, t1, nx, ny))
                    p.marks.append(Mark("illegal_parking", "stop", t0, t1, nx, ny))
        if overnight:
            # Still on its way at the day's end: parked for the night in a lot near the
            # consignee, the rest of the planned path not yet driven. The waybill stays in
            # transit, however a model reads "in transit" (its state now, or its steps' times).
            leg, _ = self._to_lot(p, self.nearest_lot(b.x, b.y), factor)
            path += leg[1:] + self.path_xy_from(p.node, b)
            tb0, _ = p.tl.stay(max(60.0, DAY_S + 120 - p.tl.t))
        else:
            path += self._go(p, b.x, b.y, b.node, factor)[1:]
            tb0, _ = p.tl.stay(SITE_STOP_S)
        wb = self._waybill(p, a, b, path, la0, tb0, **kw)
        if wb.state == "in_transit":
            wb.loaded = (la0, la1)
        return wb, (la0, la1), tb0, path

    # -- helpers for recipes ---------------------------------------------------------------
    def far_pair(self, min_m: float) -> tuple[Site, Site]:
        for _ in range(200):
            a, b = self._sites(2)
            if math.hypot(a.x - b.x, a.y - b.y) >= min_m:
                return a, b
        return tuple(self._sites(2))  # type: ignore[return-value]

    def path_xy_from(self, node: int, b: Site) -> list[tuple[float, float]]:
        """The road path not driven yet, from ``node`` to ``b`` (a waybill's planned rest)."""
        nodes, _ = self.w.net.path(node, b.node)
        net = self.w.net
        return [
            *zip(net.node_x[nodes].tolist(), net.node_y[nodes].tolist(), strict=True),
            (b.x, b.y),
        ]

    def path_xy(self, a: Site, b: Site) -> list[tuple[float, float]]:
        nodes, _ = self.w.net.path(a.node, b.node)
        net = self.w.net
        return [
            (a.x, a.y),
            *zip(net.node_x[nodes].tolist(), net.node_y[nodes].tolist(), strict=True),
            (b.x, b.y),
        ]

    def drive_for(self, p: Plan, seconds: float, factor: float) -> tuple[float, float]:
        """Drive without stopping for about ``seconds`` and park in a clean lot: through lot
        access nodes, the last leg chosen by its routing time to fit what is left (the lots'
        routing trees are built already). Returns the parking spot."""
        t_end = p.tl.t + seconds
        net, lots = self.w.net, self.w.lots
        while True:
            left = t_end - p.tl.t
            eta, _, _ = net.route_tree(p.node)
            secs = np.array([eta[lots[i].access_node] / factor for i in self.clean])
            secs[[lots[i].access_node == p.node for i in self.clean]] = np.inf
            if left < 3600 or not (secs < left - 1800).any():
                last = self.clean[int(np.abs(secs - left).argmin())]
                spot = parking_spot(self.rng, lots[last])
                self._go(p, *spot, lots[last].access_node, factor)
                return spot
            pool = np.flatnonzero((secs > 0.25 * left) & (secs < left - 1800))
            if not len(pool):
                pool = np.flatnonzero(secs < left - 1800)
            n = lots[self.clean[int(pool[int(self.rng.integers(len(pool)))])]].access_node
            self._go(p, float(net.node_x[n]), float(net.node_y[n]), n, factor)


def _recipe(pl: Planner, p: Plan, k: int) -> None:
    """Script plan ``p`` (its rule, twin or not; ``k`` numbers twins of a rule)."""
    r, twin = p.rule, p.twin
    if r in ("fatigue_continuous", "fatigue_daily"):
        f = pl._start(p, (4.0, 5.0) if r == "fatigue_daily" else (6.0, 8.0))
        t_start = p.tl.t
        if r == "fatigue_continuous":
            stints = [2.1 * 3600, 2.15 * 3600] if twin else [4.4 * 3600]
        else:
            stints = [2.35 * 3600] * 3 if twin else [3.0 * 3600] * 3
        for i, want in enumerate(stints):
            spot = pl.drive_for(p, want, f)
            if i < len(stints) - 1:
                p.tl.stay(LOT_REST_S)
        t_end = p.tl.t
        driving = {"driving_s_planned": round(t_end - t_start - (len(stints) - 1) * LOT_REST_S)}
        p.marks.append(Mark(r, "span", t_start, t_end, *spot, driving))
        p.tl.stay(max(60.0, DAY_S + 120 - p.tl.t))
        return
    if r == "restricted_hours":
        day_zone = next((z for z in pl.w.restricted if "07:00" in (z.active_hours or "")), None)
        f = pl._start(p, (19.6, 20.0) if twin else (8.0, 10.0))
        if day_zone is not None:
            inner = day_zone.geom.buffer(-250)
            nodes = pl.main[
                shapely.contains_xy(inner, pl.w.net.node_x[pl.main], pl.w.net.node_y[pl.main])
            ]
            if len(nodes):
                n = int(nodes[int(pl.rng.integers(len(nodes)))])
                t0 = p.tl.t
                pl._go(p, float(pl.w.net.node_x[n]), float(pl.w.net.node_y[n]), n, f)
                _, spot = pl._to_lot(p, pl._lot(), f)
                zone = {"zone_id": day_zone.id, "hours": day_zone.active_hours}
                p.marks.append(Mark(r, "span", t0, p.tl.t, *spot, zone))
        p.tl.stay(max(60.0, DAY_S + 120 - p.tl.t))
        return
    if r == "moving_without_waybill" and not twin:
        a, b = pl.far_pair(6000)
        f = pl._start(p, (5.0, 7.5), near=a)
        _, a0, a1 = pl._site_stop(p, a, f, UNWAYBILLED_STOP_S)
        pl._go(p, b.x, b.y, b.node, f)
        b0, b1 = p.tl.stay(UNWAYBILLED_STOP_S)
        trip = {"loaded_at_enterprise_id": a.id, "unloaded_at_enterprise_id": b.id}
        p.marks += [
            Mark(r, "span", a1, b0, a.x, a.y, trip),
            Mark("no_escort", "span", a1, b0, a.x, a.y, {**trip, "waybill": None}),
            Mark("illegal_parking", "stop", a0, a1, a.x, a.y),
            Mark("illegal_parking", "stop", b0, b1, b.x, b.y),
        ]
    elif r == "loading_check_failed" and not twin:
        a, b = pl.far_pair(6000)
        f = pl._start(p, (5.0, 7.5), near=a)
        _, a0, a1 = pl._site_stop(p, a, f)
        wb = pl._waybill(p, a, b, pl.path_xy(a, b), a0, a0 + 5400)
        p.expired = "tank_inspection"
        p.marks.append(
            Mark(r, "stop", a0, a1, a.x, a.y, {"failures": ["tank_inspection"], "waybill": wb.code})
        )
    elif r == "no_escort":
        a, b = pl.far_pair(6000)
        f = pl._start(p, (5.0, 7.5), near=a)
        wb, (la0, la1), tb0, _ = pl._delivery(p, a, b, f, escort=twin, state="in_transit")
        p.marks.append(Mark(r, "span", la1, tb0, a.x, a.y, {"waybill": wb.code}))
    elif r == "waybill_corridor_deviation" and not twin:
        a, b = pl.far_pair(12000)
        f = pl._start(p, (5.0, 7.5), near=a)
        planned = pl.path_xy(a, b)
        line = LineString(planned)
        net = pl.w.net
        d = shapely.distance(line, shapely.points(net.node_x[pl.main], net.node_y[pl.main]))
        cand = pl.main[(d > 3500) & (d < 7000)]
        detour = int(cand[int(pl.rng.integers(len(cand)))]) if len(cand) else None
        wb, (la0, la1), tb0, _ = pl._delivery(
            p, a, b, f, via=[("node", detour)] if detour else None
        )
        wb.route = planned
        p.marks.append(Mark(r, "outside", la1, tb0, a.x, a.y, {"waybill": wb.code}))
    elif r == "undeclared_stop" and not twin:
        a, b = pl.far_pair(12000)
        f = pl._start(p, (5.0, 7.5), near=a)
        nodes, _ = pl.w.net.path(a.node, b.node)
        net = pl.w.net
        ok = [n for n in nodes[2:-2] if pl.clear_stop(float(net.node_x[n]), float(net.node_y[n]))]
        via = [("stopnode", ok[len(ok) // 2])] if ok else None
        wb, _, _, _ = pl._delivery(p, a, b, f, via=via)
        for m in p.marks:
            m.details["waybill"] = wb.code
    elif r == "wrong_destination" and not twin:
        a, b = pl.far_pair(8000)
        f = pl._start(p, (5.0, 7.5), near=a)
        c = next(s for s in pl._sites(4) if s.id not in (a.id, b.id))
        wb, _, _, _ = pl._delivery(p, a, b, f, via=[("site", c)])
        for m in p.marks:
            m.details["waybill"] = wb.code
    elif r == "positioning_gap":
        a, b = pl.far_pair(30000)
        f = pl._start(p, (5.0, 7.5), near=a)
        if twin:
            lot = pl._lot()
            wb, (la0, la1), tb0, _ = pl._delivery(
                p, a, b, f, via=[("lot", (lot, LOT_REST_S + GAP_S))]
            )
            # The silence falls inside the lot stay: find it back from the timeline.
            stay_t0 = next(t for t in _stay_starts(p.tl) if la1 < t < tb0)
            g0 = stay_t0 + 240
        else:
            wb, (la0, la1), tb0, _ = pl._delivery(p, a, b, f, overnight=True)
            # A third of the way to the night's lot: silent while driving loaded.
            g0 = la1 + max(300.0, (tb0 - la1 - GAP_S) / 3)
        p.gaps.append((g0, g0 + GAP_S))
        p.marks.append(Mark(r, "gap", g0, g0 + GAP_S, a.x, a.y, {"waybill": wb.code}))
    elif r == "mixed_loading":
        o1, d1 = pl.far_pair(6000)
        f = pl._start(p, (5.0, 7.5), near=o1)
        w1, _, _, _ = pl._delivery(p, o1, d1, f, load=FLAMMABLE)
        same = twin and k % 2 == 0
        if twin and not same and pl.washing:
            wz = pl.washing[int(pl.rng.integers(len(pl.washing)))]
            pl._go(p, *parking_spot(pl.rng, wz), wz.access_node, f)
            w0, w1_ = p.tl.stay(WASH_S)
            p.marks.append(
                Mark(
                    "washing_stop",
                    "stop",
                    w0,
                    w1_,
                    wz.geom.centroid.x,
                    wz.geom.centroid.y,
                    {"zone_id": wz.id},
                )
            )
        o2, d2 = pl.far_pair(6000)
        # A rest between the two deliveries keeps the day's stints under 4 h.
        pl._to_lot(p, pl.nearest_lot(o2.x, o2.y), f)
        p.tl.stay(LOT_REST_S)
        second = FLAMMABLE_2 if same else OXIDISER
        w2, (l0, l1), _, _ = pl._delivery(p, o2, d2, f, load=second, overnight=True)
        details: dict[str, Any] = {
            "previous_class": FLAMMABLE[1],
            "previous_un": FLAMMABLE[0],
            "new_class": second[1],
            "new_un": second[0],
            "previous_waybill": w1.code,
            "waybill": w2.code,
        }
        p.marks.append(Mark(r, "stop", l0, l1, o2.x, o2.y, details))
    else:
        # The legal twin of a waybill rule: a loaded vehicle with a valid waybill, on its
        # corridor, stopping only at its origin, its destination (and a lot).
        a, b = pl.far_pair(8000)
        f = pl._start(p, (5.0, 7.5), near=a)
        rest = [("lot", (pl._lot(), 40 * 60.0))] if r == "undeclared_stop" else None
        wb, (la0, la1), tb0, _ = pl._delivery(p, a, b, f, via=rest)
        p.marks.append(Mark(r, "span", la0, tb0 + SITE_STOP_S, a.x, a.y, {"waybill": wb.code}))
    pl._finish(p, f)


def _stay_starts(tl: Timeline) -> list[float]:
    t, out = 0.0, []
    for d, v in zip(tl.dur, tl.speed, strict=True):
        if len(v) == 1 and v[0] == 0.0:
            out.append(t)
        t += float(d.sum())
    return out


def plan_all(
    world: World,
    fleet: list[Vehicle],
    sites: list[Site],
    washing: list[Zone],
    scale: float,
    first_free: int,
    day_code: str,
    hazmat_xy: np.ndarray,
) -> dict[int, Plan]:
    """The scenario plans, keyed by vehicle id: the fleet's last vehicles (ids above
    ``first_free`` only), rule by rule, planted then twins (mixed loading: two twins each)."""
    n = per_rule(scale)
    wanted: list[tuple[str, bool, int]] = []
    for r in WARNING_MODEL_RULES:
        wanted += [(r, False, i) for i in range(n)]
        wanted += [(r, True, i) for i in range(2 * n if r == "mixed_loading" else n)]
    ids = [v.id for v in fleet if v.id > first_free][::-1]
    if len(ids) < len(wanted):
        raise RuntimeError(
            f"{len(wanted)} scenario vehicles wanted, {len(ids)} free: raise the scale"
        )
    pl = Planner(
        world, sites, washing, np.random.default_rng([world.seed, 7301]), day_code, hazmat_xy
    )
    out: dict[int, Plan] = {}
    for vid, (rule, twin, k) in zip(ids, wanted, strict=False):
        for _attempt in range(8):
            p = Plan(vid, rule, twin, _STORIES.get((rule, twin), rule))
            saved = pl.n_codes
            _recipe(pl, p, k)
            ends = [m.t1 for m in p.marks]
            # Every mark must end well inside the day (its fixes exist); restriction plans may
            # carry no mark when no road crosses the closed area.
            fits = all(e < DAY_S - 1800 for e in ends)
            if fits and (p.marks or rule == "restricted_hours"):
                break
            pl.n_codes = saved
        out[vid] = p
    return out


_STORIES: Final = {
    (
        "moving_without_waybill",
        False,
    ): "loads 17 min at a hazmat plant, drives to another with no waybill",
    ("moving_without_waybill", True): "the same trip with a valid waybill on its corridor",
    (
        "loading_check_failed",
        False,
    ): "tank inspection expired: the loading party refuses at the origin",
    ("loading_check_failed", True): "papers valid: loaded, delivered on the corridor",
    ("no_escort", False): "waybill in transit with no escort named",
    ("no_escort", True): "the same trip with an escort",
    ("waybill_corridor_deviation", False): "detours 3.5–7 km off the waybill's corridor",
    ("waybill_corridor_deviation", True): "stays on the corridor",
    ("undeclared_stop", False): "stops 36 min at the roadside while in transit",
    ("undeclared_stop", True): "stops 40 min in a designated lot on its route",
    ("wrong_destination", False): "stops 21 min at another hazmat plant before the consignee",
    ("wrong_destination", True): "stops only at the declared consignee",
    ("fatigue_continuous", False): "drives about 4 h 24 min without a rest",
    ("fatigue_continuous", True): "drives about 4 h 10 min with a 26 min rest in a lot midway",
    ("fatigue_daily", False): "three stints of about 3 h (9 h in the day), 26 min rests",
    ("fatigue_daily", True): "three stints of about 2 h 20 (7 h in the day)",
    ("restricted_hours", False): "crosses the city centre closed 07:00-19:00 in the morning",
    ("restricted_hours", True): "crosses it after 19:30, once open",
    (
        "positioning_gap",
        False,
    ): "silent 26 min while driving loaded, parked for the night in transit",
    ("positioning_gap", True): "silent 26 min while parked in a designated lot",
    ("mixed_loading", False): "unloads class 3, loads class 5.1 with no washing stop (on board)",
    ("mixed_loading", True): "reloads class 3 after class 3, or washes the tank between 3 and 5.1",
}


def _restricted_closed(hours: str, t: np.ndarray) -> np.ndarray:
    """Local-day seconds inside the ``HH:MM-HH:MM[,…]`` windows (spans past midnight wrap)."""
    out = np.zeros(len(t), dtype=bool)
    tod = np.mod(t, DAY_S)
    for part in hours.split(","):
        a, b = part.split("-")
        lo = int(a[:2]) * 3600 + int(a[3:]) * 60
        hi = int(b[:2]) * 3600 + int(b[3:]) * 60
        out |= (tod >= lo) & (tod < hi) if lo < hi else (tod >= lo) | (tod < hi)
    return out


#: A restricted run shorter than this (first to last fix) is an edge: whether a model counts
#: it depends on how it measures ``restricted_min_s`` (60 s) — scored neither way.
RESTRICTED_CLEAR_S: Final = 120.0


def restricted_runs(
    zones: list[Zone], veh: int, s: Sampled
) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """Every stretch of consecutive fixes inside a hazmat_restricted zone while it is closed:
    (events ≥ :data:`RESTRICTED_CLEAR_S`, shorter edge runs). Computed for every vehicle, so
    the background fleet's crossings are in the truth too."""
    events: list[dict[str, Any]] = []
    edges: list[dict[str, Any]] = []
    for z in zones:
        inside = shapely.contains_xy(z.geom, s.x, s.y) & _restricted_closed(
            z.active_hours or "00:00-24:00", s.ts_s
        )
        if not inside.any():
            continue
        d = np.diff(np.concatenate(([0], inside.astype(np.int8), [0])))
        for a, b in zip(
            np.flatnonzero(d == 1).tolist(), (np.flatnonzero(d == -1) - 1).tolist(), strict=True
        ):
            dur = float(s.ts_s[b] - s.ts_s[a])
            mid = (a + b) // 2
            lon, lat = to_lonlat(s.x[mid], s.y[mid])
            rec = {
                "rule": "restricted_hours",
                "vehicle_id": veh,
                "start": float(s.ts_s[a]),
                "end": float(s.ts_s[b]),
                "lon": round(float(lon), 6),
                "lat": round(float(lat), 6),
                "zone_id": z.id,
                "details": {"zone_name": z.name, "active_hours": z.active_hours, "seconds": dur},
            }
            (events if dur >= RESTRICTED_CLEAR_S else edges).append(rec)
    return events, edges


#: Stays at least this long are rests for any reading of rest_min_s (1200 s) after stop
#: detection; shorter ones down to :data:`MAYBE_REST_S` may or may not be.
SURE_REST_S: Final = 1500.0
MAYBE_REST_S: Final = 900.0
#: Margins around the fatigue limits: clearly over is an event, near is an edge.
FATIGUE_MARGIN_S: Final = 600.0
FATIGUE_NEAR_S: Final = 900.0


def fatigue_runs(
    veh: int, tl: Timeline, s: Sampled, rules: tuple[float, float] = (4 * 3600.0, 8 * 3600.0)
) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """Continuous-driving stints and the day's driving of a planned day, as (events, edges).

    Stints run between rests; the lower reading counts only moving time between any stay that
    may be a rest, the upper reading elapsed time between sure rests. An event needs the lower
    reading over the limit by :data:`FATIGUE_MARGIN_S`; an edge is an upper reading within
    :data:`FATIGUE_NEAR_S` of it (or over) that is not an event."""
    cont_max, daily_max = rules
    dur = np.concatenate(tl.dur)
    spd = np.concatenate(tl.speed)
    t0 = np.concatenate(([0.0], np.cumsum(dur)[:-1]))
    t1 = t0 + dur
    inside = t0 < DAY_S
    dur, spd, t0, t1 = dur[inside], spd[inside], t0[inside], np.minimum(t1[inside], DAY_S)
    moving = spd > 0
    events: list[dict[str, Any]] = []
    edges: list[dict[str, Any]] = []

    def rec(rule: str, a: float, b: float, **details: Any) -> dict[str, Any]:
        i = _window(s.ts_s, a, b)
        j0, j1 = (int(i[0]), int(i[-1])) if len(i) else (0, 0)
        lon, lat = to_lonlat(s.x[j1], s.y[j1])
        return {
            "rule": rule,
            "vehicle_id": veh,
            "start": float(s.ts_s[j0]),
            "end": float(s.ts_s[j1]),
            "lon": round(float(lon), 6),
            "lat": round(float(lat), 6),
            "details": details,
        }

    def stints(min_rest: float) -> list[tuple[float, float, float]]:
        """(start, end, moving seconds) between stays of at least ``min_rest``."""
        out: list[tuple[float, float, float]] = []
        start: float | None = None
        mov = 0.0
        for k in range(len(dur)):
            if moving[k]:
                start = float(t0[k]) if start is None else start
                mov += float(t1[k] - t0[k])
            elif dur[k] >= min_rest and start is not None:
                out.append((start, float(t0[k]), mov))
                start, mov = None, 0.0
        if start is not None:
            out.append((start, float(min(t1[-1], DAY_S)), mov))
        return out

    low = stints(MAYBE_REST_S)
    for a, b, _ in stints(SURE_REST_S):
        lower = max((m for x, y, m in low if x < b and y > a), default=0.0)
        if lower > cont_max + FATIGUE_MARGIN_S:
            events.append(rec("fatigue_continuous", a, b, driving_s=round(lower)))
        elif b - a > cont_max - FATIGUE_NEAR_S:
            edges.append(rec("fatigue_continuous", a, b, elapsed_s=round(b - a)))
    driving = float(np.sum((t1 - t0)[moving]))
    short = ~moving & (dur < SURE_REST_S) & (t0 > 0)
    upper = driving + float(np.sum((t1 - t0)[short]))
    if moving.any():
        first, last = float(t0[moving][0]), float(t1[moving][-1])
        if driving > daily_max + FATIGUE_MARGIN_S:
            events.append(rec("fatigue_daily", first, last, driving_s=round(driving)))
        elif upper > daily_max - FATIGUE_NEAR_S:
            edges.append(rec("fatigue_daily", first, last, driving_s=round(driving)))
    return events, edges


def mark_truth(p: Plan, s: Sampled) -> list[dict[str, Any]]:
    """The plan's marks as truth entries, times read back from the sampled fixes."""
    out: list[dict[str, Any]] = []
    for m in p.marks:
        if m.kind == "outside":
            route = next(w.route for w in p.waybills if w.code == m.details["waybill"])
            w = _window(s.ts_s, m.t0, m.t1)
            d = shapely.distance(LineString(route), shapely.points(s.x[w], s.y[w]))
            out_w = w[d > CORRIDOR_M]
            if len(out_w) < 2:
                raise RuntimeError(f"corridor scenario of vehicle {p.vehicle} never left it")
            i0, i1 = int(out_w[0]), int(out_w[-1])
            details = {**m.details, "max_distance_m": round(float(d.max()))}
        elif m.kind == "gap":
            before = np.flatnonzero(s.ts_s < m.t0)
            after = np.flatnonzero(s.ts_s > m.t1)
            i0, i1 = int(before[-1]), int(after[0])
            dist = float(math.hypot(s.x[i1] - s.x[i0], s.y[i1] - s.y[i0]))
            details = {
                **m.details,
                "gap_s": float(s.ts_s[i1] - s.ts_s[i0]),
                "distance_m": round(dist),
            }
        else:
            w = _window(s.ts_s, m.t0, m.t1)
            if len(w) == 0:
                raise RuntimeError(f"scenario {p.rule} of vehicle {p.vehicle}: no fixes at {m}")
            i0, i1 = int(w[0]), int(w[-1])
            details = dict(m.details)
        lon, lat = to_lonlat(m.x, m.y)
        out.append(
            {
                "rule": m.rule,
                "vehicle_id": p.vehicle,
                "twin": p.twin,
                "story": p.story,
                "start": float(s.ts_s[i0]),
                "end": float(s.ts_s[i1]),
                "lon": round(float(lon), 6),
                "lat": round(float(lat), 6),
                "waybills": [w.code for w in p.waybills],
                "details": details,
            }
        )
    return out


def drop_gaps(p: Plan, s: Sampled) -> Sampled:
    """Remove the fixes of the plan's silences (the terminal was blind)."""
    if not p.gaps:
        return s
    keep = np.ones(len(s.ts_s), dtype=bool)
    for g0, g1 in p.gaps:
        keep &= ~((s.ts_s >= g0) & (s.ts_s <= g1))
    return Sampled(s.ts_s[keep], s.x[keep], s.y[keep], s.speed[keep], s.heading[keep])


def simulate_plan(world: World, veh: Vehicle, p: Plan) -> Sampled:
    rng = np.random.default_rng([world.seed, 7201, veh.id])
    phase = int(rng.integers(0, 30))
    return drop_gaps(p, sample(p.tl, phase, rng))


#: Categories a scenario loads at or delivers to (a shipper and consignee on every list).
SITE_CATEGORIES: Final = ("production", "storage")
POOL_SIZE: Final = 60


def site_pool(world: World, enterprises: list[Any], rng: np.random.Generator) -> list[Site]:
    """Up to :data:`POOL_SIZE` production/storage sites a tanker can stop at unambiguously:
    clear of lots and forbidden zones (a long stop there is plain illegal parking), within
    400 m of a road node (a bounded pool also bounds the routing trees built)."""
    net = world.net
    main = net.nodes_in_main()
    mx, my = net.node_x[main], net.node_y[main]
    out: list[Site] = []
    cands = [e for e in enterprises if e.category in SITE_CATEGORIES]
    for k in rng.permutation(len(cands)).tolist():
        e = cands[k]
        if not world.roadside_clear(e.x, e.y):
            continue
        d = np.hypot(mx - e.x, my - e.y)
        j = int(d.argmin())
        if d[j] > 400:
            continue
        out.append(Site(e.id, e.category, e.name, float(e.x), float(e.y), int(main[j])))
        if len(out) == POOL_SIZE:
            break
    return out


#: Share of the other vehicles with no waybill that day (chain.WAYBILL_SHARE's complement):
#: with no load to haul they stay in their home lot, so moving without a waybill is only
#: what is planted.
IDLE_SHARE: Final = 0.25


@dataclass
class ChainPlan:
    """The scenario plans and idle vehicles of one seed, and the truth they collect."""

    plans: dict[int, Plan]
    idle: set[int]
    per_rule: int
    washing: list[Zone]
    restricted_zones: list[Zone]
    #: Producers', stores' and traders' points (a stay near one may read as a loading).
    plants: Any = None
    events: list[dict[str, Any]] = field(default_factory=list)
    must_not: list[dict[str, Any]] = field(default_factory=list)
    edges: list[dict[str, Any]] = field(default_factory=list)
    washing_stops: list[dict[str, Any]] = field(default_factory=list)
    truth: dict[str, Any] = field(default_factory=dict)

    def simulate(
        self, world: World, veh: Vehicle
    ) -> tuple[Sampled, list[dict[str, Any]], np.ndarray]:
        """A scenario vehicle's fixes, its entries of the existing truth (illegal roadside
        stops) and the noise-protected mask (every planted window)."""
        p = self.plans[veh.id]
        s = simulate_plan(world, veh, p)
        existing: list[dict[str, Any]] = []
        for e in mark_truth(p, s):
            rule = e["rule"]
            if rule == "illegal_parking":
                existing.append(
                    {"vehicle_id": veh.id, "plate": veh.plate, "kind": "illegal_roadside_stop",
                     "start": e["start"], "end": e["end"], "lon": e["lon"], "lat": e["lat"]}
                )  # fmt: skip
            elif rule == "washing_stop":
                self.washing_stops.append(e)
            elif p.twin:
                self.must_not.append(e)
            elif rule != "restricted_hours":  # planted crossings come from restricted_runs
                self.events.append(e)
        if p.rule not in ("fatigue_continuous", "fatigue_daily"):
            # A day of deliveries with only short site stops can be fatigue of its own.
            self.fatigue(veh.id, p.tl, s)
        protected = np.zeros(len(s.ts_s), dtype=bool)
        protected[:4] = True
        for m in p.marks:
            protected |= (s.ts_s >= m.t0 - 300) & (s.ts_s <= m.t1 + 300)
        for g0, g1 in p.gaps:
            protected |= (s.ts_s >= g0 - 300) & (s.ts_s <= g1 + 300)
        return s, existing, protected

    def restricted(self, world: World, veh: Vehicle, s: Sampled, protected: np.ndarray) -> None:
        """Every vehicle's runs in closed restricted zones go into the truth (protected from
        noise, so a jump does not cut a run)."""
        ev, edges = restricted_runs(world.restricted, veh.id, s)
        p = self.plans.get(veh.id)
        for e in ev + edges:
            protected |= (s.ts_s >= e["start"] - 120) & (s.ts_s <= e["end"] + 120)
            e["twin"] = False
            e["story"] = p.story if p and p.rule == "restricted_hours" else "incidental"
        self.events += ev
        self.edges += edges

    def fatigue(self, veh: int, tl: Timeline, s: Sampled) -> None:
        """A background vehicle's own fatigue, from its planned day: its long legs are real
        fatigue (truth events), and where the models' readings may differ (whether a stay of
        15–25 min is a rest, whether short stops count as driving) an edge scored neither way.
        """
        events, edges = fatigue_runs(veh, tl, s)
        for e in events + edges:
            e["twin"], e["story"] = False, "incidental"
        self.events += events
        self.edges += edges

    def unwaybilled_edges(self, world: World, veh: int, tl: Timeline, s: Sampled) -> None:
        """A background vehicle (waybills on other days only) that stays ≥ 10 min off a lot
        near a producer, store or trader — a planted roadside stop beside a plant — may read as
        a loading with no active waybill: from there to the day's end, moving without a waybill
        (and no escort) is an edge, scored neither way (docs/transport.md, Demo scenarios)."""
        if self.plants is None or veh in self.idle:
            return
        dur = np.concatenate(tl.dur)
        spd = np.concatenate(tl.speed)
        xs = np.concatenate(tl.xs)
        t0 = np.concatenate(([0.0], np.cumsum(dur)[:-1]))
        for k in np.flatnonzero((spd == 0) & (dur >= 600) & (t0 > 0) & (t0 < DAY_S)).tolist():
            x, y = float(xs[k]), float(np.concatenate(tl.ys)[k])
            if any(z.geom.contains(Point(x, y)) for z in world.lots):
                continue  # in a lot: not read as a loading place
            if not len(self.plants.query(Point(x, y), predicate="dwithin", distance=450.0)):
                continue
            i = _window(s.ts_s, float(t0[k] + dur[k]), DAY_S)
            if not len(i):
                continue
            for rule in ("moving_without_waybill", "no_escort"):
                self.edges.append(
                    {"rule": rule, "vehicle_id": veh, "start": float(s.ts_s[i[0]]),
                     "end": float(s.ts_s[i[-1]]), "twin": False, "story": "incidental",
                     "details": {"stay_s": float(dur[k])}}
                )  # fmt: skip
            return

    def finish_truth(self, day_start_us: int) -> None:
        from layers.demo_city.truth import iso

        for e in self.events + self.must_not + self.edges + self.washing_stops:
            e["start"] = iso(day_start_us, e["start"])
            e["end"] = iso(day_start_us, e["end"])
        counts: dict[str, int] = {}
        for e in self.events:
            counts[e["rule"]] = counts.get(e["rule"], 0) + 1
        self.truth = {
            "assumption": "the seed judges each vehicle's day in one batch after its waybills' "
            "steps: the positioning-gap and mixed-loading cases keep their waybill in transit "
            "overnight so either reading of 'in transit' holds; the others assume a model "
            "judges a fix against the waybill active at the fix's time; edges (restricted runs "
            "under 120 s, fatigue near its limits) are scored neither way",
            "per_rule": self.per_rule,
            "event_counts": dict(sorted(counts.items())),
            "events": self.events,
            "must_not": self.must_not,
            "edges": self.edges,
            "washing_stops": self.washing_stops,
            "vehicles": {
                str(v): {
                    "rule": p.rule,
                    "twin": p.twin,
                    "story": p.story,
                    "waybills": [w.code for w in p.waybills],
                }
                for v, p in sorted(self.plans.items())
            },
            "idle_without_waybill": sorted(self.idle),
            "washing_stations": [z.id for z in self.washing],
            "restricted_zones": [
                {"id": z.id, "name": z.name, "active_hours": z.active_hours}
                for z in self.restricted_zones
            ],
        }


def make_chain_plan(
    world: World,
    fleet: list[Vehicle],
    hazmat: list[Any],
    washing: list[Zone],
    scale: float,
    day: Any,
    first_free: int,
    unlinked: set[int] = frozenset(),  # type: ignore[assignment]
) -> ChainPlan:
    """Plan the scenarios and choose the idle vehicles (deterministic for the world's seed)."""
    rng = np.random.default_rng([world.seed, 7302])
    sites = site_pool(world, hazmat, rng)
    hazmat_xy = np.array([(e.x, e.y) for e in hazmat], dtype=np.float64)
    linked = [v for v in fleet if v.id not in unlinked]  # scenarios need a carrier
    plans = plan_all(world, linked, sites, washing, scale, first_free, f"{day:%Y%m%d}", hazmat_xy)
    irng = np.random.default_rng([world.seed, 7401])
    draws = irng.random(len(fleet))
    idle = {
        v.id
        for v, r in zip(fleet, draws.tolist(), strict=True)
        if v.id > first_free and v.id not in plans and (r < IDLE_SHARE or v.id in unlinked)
    }
    plants = [Point(e.x, e.y) for e in hazmat if e.category in ("production", "storage", "trading")]
    return ChainPlan(
        plans, idle, per_rule(scale), washing, world.restricted, shapely.STRtree(plants)
    )
