"""Parking lots, protected (forbidden) zones and chemical parks.

Lots are placed first; every forbidden zone keeps ≥ 250 m away from every lot, so a stop is
never ambiguous between "legal in a lot" and "inside a forbidden zone". A share of schools and
hospitals sit right beside roads so tankers pass (and, when planted, stop in) them.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import shapely
from shapely import affinity
from shapely.geometry import MultiPoint, Point, Polygon, box

from layers.demo_city.config import Counts, to_xy
from layers.demo_city.geography import District, Park, district_of
from layers.demo_city.roads import ARTERIAL, EXPRESSWAY, Network

LOT_CLEARANCE_M = 250.0


@dataclass
class Zone:
    id: int
    code: str
    name: str
    kind: str
    geom: Polygon  # metric plane
    district: str = ""
    active_hours: str | None = None
    max_dwell_s: int | None = None
    population: int | None = None
    # Lots only: the road node a vehicle enters from, and where in the lot trucks park.
    access_node: int = -1
    lot_kind: str = ""
    park: str | None = None


def _node_degree_ok(net: Network, n: int) -> bool:
    return len(net.adj[n]) >= 2


def make_lots(
    rng: np.random.Generator, net: Network, parks: list[Park], counts: Counts, first_id: int
) -> list[Zone]:
    nodes = net.nodes_in_main()
    nodes = np.array([n for n in nodes.tolist() if _node_degree_ok(net, n)])
    nx_, ny_ = net.node_x[nodes], net.node_y[nodes]
    in_park = np.zeros(len(nodes), dtype=bool)
    for p in parks:
        in_park |= shapely.contains_xy(p.geom, nx_, ny_)
    edge_cls_at: dict[int, set[int]] = {}
    for e, (u, v) in enumerate(zip(net.edge_u.tolist(), net.edge_v.tolist(), strict=True)):
        c = int(net.edge_cls[e])
        edge_cls_at.setdefault(u, set()).add(c)
        edge_cls_at.setdefault(v, set()).add(c)
    express_nodes = np.array([n for n in nodes.tolist() if EXPRESSWAY in edge_cls_at.get(n, ())])
    ex, ey = net.node_x[express_nodes], net.node_y[express_nodes]

    lots: list[Zone] = []
    taken: list[tuple[float, float]] = []

    def place(candidates: np.ndarray, k: int, lot_kind: str, park: Park | None) -> None:
        order = rng.permutation(candidates)
        placed = 0
        for n in order.tolist():
            if placed == k:
                break
            x, y = float(net.node_x[n]), float(net.node_y[n])
            if any((x - a) ** 2 + (y - b) ** 2 < 600.0**2 for a, b in taken):
                continue
            sx, sy = rng.choice([-1.0, 1.0]), rng.choice([-1.0, 1.0])
            cx, cy = x + sx * 100.0, y + sy * 80.0
            geom = box(cx - 60, cy - 40, cx + 60, cy + 40)
            if park is not None and not park.geom.contains(geom):
                continue
            taken.append((x, y))
            placed += 1
            idx = len(lots) + first_id
            name = (
                (park.name + f"危化品车辆专用停车场{placed}号")
                if park
                else (f"危险货物运输车辆专用停车场{idx:03d}")
            )
            lots.append(
                Zone(
                    idx,
                    f"ZN-PK-{idx:04d}",
                    name,
                    "designated_parking",
                    geom,
                    access_node=n,
                    lot_kind=lot_kind,
                    park=park.name if park else None,
                )
            )

    for p in parks:
        inner = p.geom.buffer(-250)
        cand = nodes[shapely.contains_xy(inner, nx_, ny_)]
        place(cand, counts.lots_per_park, "park", p)
    # Near expressways: arterial nodes within 1.5 km of an expressway node, outside parks.
    d_exp = np.full(len(nodes), np.inf)
    for k in range(0, len(ex), 64):
        block = np.hypot(nx_[:, None] - ex[None, k : k + 64], ny_[:, None] - ey[None, k : k + 64])
        d_exp = np.minimum(d_exp, block.min(axis=1))
    arterial = np.array([ARTERIAL in edge_cls_at.get(n, ()) for n in nodes.tolist()])
    place(nodes[(d_exp < 1500) & arterial & ~in_park], counts.lots_express, "express", None)
    return lots


def add_town_lots(
    rng: np.random.Generator,
    net: Network,
    lots: list[Zone],
    districts: list[District],
    parks: list[Park],
    counts: Counts,
) -> None:
    nodes = np.array([n for n in net.nodes_in_main().tolist() if _node_degree_ok(net, n)])
    x, y = net.node_x[nodes], net.node_y[nodes]
    seats = np.array([to_xy(d.seat_lon, d.seat_lat) for d in districts], dtype=float)
    near = np.hypot(x[:, None] - seats[None, :, 0], y[:, None] - seats[None, :, 1]).min(axis=1)
    ok = (near > 1500) & (near < 7000)
    for p in parks:
        ok &= ~shapely.contains_xy(p.geom.buffer(500), x, y)
    placed = 0
    for n in rng.permutation(nodes[ok]).tolist():
        if placed == counts.lots_town:
            break
        nxp, nyp = float(net.node_x[n]), float(net.node_y[n])
        if any(
            (nxp - float(net.node_x[lot.access_node])) ** 2
            + (nyp - float(net.node_y[lot.access_node])) ** 2
            < 1500.0**2
            for lot in lots
        ):
            continue
        sx, sy = rng.choice([-1.0, 1.0]), rng.choice([-1.0, 1.0])
        cx, cy = nxp + sx * 100.0, nyp + sy * 80.0
        idx = lots[-1].id + 1 if lots else 1
        lots.append(
            Zone(
                idx,
                f"ZN-PK-{idx:04d}",
                f"危险货物运输车辆专用停车场{idx:03d}",
                "designated_parking",
                box(cx - 60, cy - 40, cx + 60, cy + 40),
                access_node=n,
                lot_kind="town",
            )
        )
        placed += 1


class Clearance:
    """Rejects candidate shapes too close to lots or inside parks (spatial index over both)."""

    def __init__(self, lots: list[Zone], parks: list[Park]) -> None:
        self.lot_geoms = [z.geom for z in lots]
        self.lot_tree = shapely.STRtree(self.lot_geoms)
        self.parks = [p.geom for p in parks]

    def ok(self, geom: Polygon) -> bool:
        if len(self.lot_tree.query(geom, predicate="dwithin", distance=LOT_CLEARANCE_M)):
            return False
        return not any(p.intersects(geom) for p in self.parks)


def _rot_rect(cx: float, cy: float, hx: float, hy: float, angle: float) -> Polygon:
    return affinity.rotate(box(cx - hx, cy - hy, cx + hx, cy + hy), angle, origin=(cx, cy))


_ESTATES = (
    "东湖花园",
    "春江花城",
    "江南一品",
    "明湖苑",
    "月湖家园",
    "新城锦苑",
    "书香门第",
    "海景华庭",
    "翠柏里",
    "天一家园",
)
_RESERVOIRS = (
    "皎口水库",
    "横山水库",
    "亭下水库",
    "周公宅水库",
    "溪下水库",
    "三溪浦水库",
    "梅湖水库",
    "四明湖水库",
    "白溪水库",
    "东钱湖",
)


def make_area_zones(
    rng: np.random.Generator,
    districts: list[District],
    clearance: Clearance,
    counts: Counts,
    first_id: int,
) -> list[Zone]:
    """Residential areas around town seats and water-source protection areas in the hills."""
    out: list[Zone] = []
    nid = first_id
    seats: list[tuple[District, float, float]] = []
    for d in districts:
        x, y = to_xy(d.seat_lon, d.seat_lat)
        seats.append((d, float(x), float(y)))
    tries = 0
    while sum(z.kind == "residential" for z in out) < counts.residential and tries < 100_000:
        tries += 1
        d, sx, sy = seats[int(rng.integers(len(seats)))]
        cx, cy = sx + rng.normal(0, 3500), sy + rng.normal(0, 3500)
        geom = _rot_rect(cx, cy, rng.uniform(200, 600), rng.uniform(150, 450), rng.uniform(0, 90))
        if not clearance.ok(geom) or not d.geom.buffer(-200).contains(geom):
            continue
        area_km2 = geom.area / 1e6
        out.append(
            Zone(
                nid,
                f"ZN-RES-{nid:04d}",
                f"{d.name}{_ESTATES[nid % len(_ESTATES)]}居住区",
                "residential",
                geom,
                population=int(area_km2 * 15000),
            )
        )
        nid += 1
    k = 0
    while sum(z.kind == "water_source" for z in out) < counts.water_sources and tries < 200_000:
        tries += 1
        cx, cy = map(float, to_xy(rng.uniform(121.25, 121.55), rng.uniform(29.63, 29.78)))
        pts = np.column_stack((cx + rng.normal(0, 700, 8), cy + rng.normal(0, 450, 8)))
        geom = MultiPoint([tuple(p) for p in pts]).convex_hull.buffer(250, quad_segs=4)
        if not clearance.ok(geom) or any(z.geom.intersects(geom) for z in out):
            continue
        name = _RESERVOIRS[k % len(_RESERVOIRS)] + ("" if k < len(_RESERVOIRS) else f"{k}")
        out.append(Zone(nid, f"ZN-WS-{nid:04d}", f"{name}饮用水水源保护区", "water_source", geom))
        nid += 1
        k += 1
    return out


def site_zone(rng: np.random.Generator, kind: str, x: float, y: float, zid: int, name: str) -> Zone:
    """The forbidden zone around a school or hospital (a campus-sized rotated rectangle)."""
    if kind == "school":
        hx, hy, hours, tag = rng.uniform(90, 170), rng.uniform(70, 140), "07:00-18:00", "SCH"
    else:
        hx, hy, hours, tag = rng.uniform(70, 140), rng.uniform(60, 120), None, "HOS"
    geom = _rot_rect(x, y, hx, hy, rng.uniform(0, 90))
    return Zone(zid, f"ZN-{tag}-{zid:04d}", name, kind, geom, active_hours=hours)


def park_zones(parks: list[Park], first_id: int) -> list[Zone]:
    return [
        Zone(first_id + i, f"ZN-CP-{first_id + i:04d}", p.name, "chemical_park", p.geom)
        for i, p in enumerate(parks)
    ]


def assign_districts(zones: list[Zone], districts: list[District]) -> None:
    c = shapely.centroid([z.geom for z in zones])
    codes = district_of(districts, shapely.get_x(c), shapely.get_y(c))
    for z, code in zip(zones, codes.tolist(), strict=True):
        z.district = code


def parking_spot(rng: np.random.Generator, lot: Zone) -> tuple[float, float]:
    x0, y0, x1, y1 = lot.geom.bounds
    return float(rng.uniform(x0 + 15, x1 - 15)), float(rng.uniform(y0 + 15, y1 - 15))


def point_clear_of(geoms_tree: shapely.STRtree, x: float, y: float, distance: float) -> bool:
    return len(geoms_tree.query(Point(x, y), predicate="dwithin", distance=distance)) == 0


#: Tank-washing stations allow a long stay: cleaning a tank takes up to an hour, and a stop
#: there must not read as illegal parking (``max_dwell_s`` overrides the 10 min default).
WASHING_DWELL_S = 3600
#: Hazmat-restricted areas (issue 14 item 3): (district index, half sizes m, local closed hours,
#: name). The busiest seat is closed by day, a second town at night.
_RESTRICTED = (
    (0, (1600.0, 1200.0), "07:00-19:00", "中心城区危险货物运输车辆日间限行区"),
    (1, (1100.0, 900.0), "22:00-06:00", "城镇夜间危险货物运输车辆限行区"),
)


def washing_stations(
    rng: np.random.Generator,
    net: Network,
    parks: list[Park],
    clearance: Clearance,
    avoid: list[Polygon],
    first_id: int,
) -> list[Zone]:
    """A washing station beside a road node just outside each chemical park (where tanks
    leave their loads), clear of lots and forbidden zones."""
    out: list[Zone] = []
    nodes = net.nodes_in_main()
    nx_, ny_ = net.node_x[nodes], net.node_y[nodes]
    avoid_tree = shapely.STRtree(avoid)
    for p in parks:
        ring = p.geom.buffer(1500).difference(p.geom.buffer(300))
        cand = nodes[shapely.contains_xy(ring, nx_, ny_)]
        for n in rng.permutation(cand).tolist():
            x, y = float(net.node_x[n]) + 90.0, float(net.node_y[n]) + 70.0
            geom = box(x - 45, y - 35, x + 45, y + 35)
            if not clearance.ok(geom) or len(
                avoid_tree.query(geom, predicate="dwithin", distance=LOT_CLEARANCE_M)
            ):
                continue
            zid = first_id + len(out)
            out.append(
                Zone(
                    zid,
                    f"ZN-WASH-{zid:04d}",
                    f"{p.name}危险货物运输车辆罐体清洗站",
                    "washing_station",
                    geom,
                    max_dwell_s=WASHING_DWELL_S,
                    access_node=n,
                    park=p.name,
                )
            )
            break
    return out


def restricted_zones(districts: list[District], lots: list[Zone], first_id: int) -> list[Zone]:
    """Areas closed to hazmat vehicles by hours around district seats, kept ≥ 250 m from every
    lot (a tanker parked overnight in a lot must not sit inside a closed area)."""
    tree = shapely.STRtree([z.geom for z in lots])
    out: list[Zone] = []
    for k, (di, (hx, hy), hours, name) in enumerate(_RESTRICTED):
        d = districts[di % len(districts)]
        sx, sy = map(float, to_xy(d.seat_lon, d.seat_lat))
        for shrink in (1.0, 0.8, 0.6, 0.45, 0.3):
            for dx, dy in ((0, 0), (800, 0), (-800, 0), (0, 800), (0, -800)):
                cx, cy = sx + dx, sy + dy
                geom = box(cx - hx * shrink, cy - hy * shrink, cx + hx * shrink, cy + hy * shrink)
                if not len(tree.query(geom, predicate="dwithin", distance=LOT_CLEARANCE_M)):
                    break
            else:
                continue
            break
        else:
            continue
        zid = first_id + k
        code, full = f"ZN-HR-{zid:04d}", f"{d.name}{name}"
        out.append(Zone(zid, code, full, "hazmat_restricted", geom, active_hours=hours))
    return out
