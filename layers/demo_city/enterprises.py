"""Enterprises (hazmat and other users), their sites, and GB 18218 major hazard sources.

Hazmat enterprises cluster in the chemical parks and along arterials/expressways; other users
(schools, hospitals, labs …) gather around town seats. Hazard sources are axis-aligned
rectangles inside their host's site rectangle, so "population within 500 m outside the plant
boundary" is exact arithmetic on the raster, and α follows from it before the substances are
drawn to land R in the grade the source was assigned.
"""

from __future__ import annotations

import datetime as dt
import math
from dataclasses import dataclass, field

import numpy as np
import shapely

from layers.demo_city.config import HEIGHT_M, WIDTH_M, Counts, to_xy
from layers.demo_city.geography import District, Park, Population, district_of
from layers.demo_city.identity import credit_code, enterprise_name, unique_ints
from layers.demo_city.roads import LOCAL, Network
from layers.demo_city.zones import Clearance
from layers.risk import gb18218
from layers.risk import substances as gb


@dataclass
class Enterprise:
    id: int
    credit_code: str
    name: str
    category: str
    x: float
    y: float
    district: str = ""
    park: str | None = None
    address: str | None = None
    site: tuple[float, float, float, float] | None = None  # metric rect
    licence_expiry: dt.date | None = None
    diagnosis_score: float | None = None


@dataclass
class SubstanceRow:
    name: str
    cas: str
    q: float
    critical_q: float
    beta: float
    hazard_class: str


@dataclass
class HazardSource:
    id: int
    enterprise_id: int
    code: str
    unit_name: str
    unit_kind: str
    rect: tuple[float, float, float, float]
    population_500m: int = 0
    grade: int = 0
    substances: list[SubstanceRow] = field(default_factory=list)


_PARK_MIX = {
    "production": 45,
    "storage": 25,
    "use": 15,
    "trading": 5,
    "disposal": 5,
    "transport": 5,
}
_ROAD_MIX = {
    "trading": 30,
    "use": 25,
    "storage": 15,
    "transport": 15,
    "production": 10,
    "disposal": 5,
}
_OTHER_MIX = {"school": 30, "hospital": 8, "laboratory": 20, "research": 10, "other_user": 32}
_SCORE_BANDS = ((40.0, 59.99), (60.0, 74.99), (75.0, 89.99), (90.0, 99.5))
_SCORE_WEIGHTS = (0.08, 0.22, 0.45, 0.25)


def _draw(rng: np.random.Generator, mix: dict[str, int]) -> str:
    keys = list(mix)
    w = np.array([mix[k] for k in keys], dtype=float)
    return keys[int(rng.choice(len(keys), p=w / w.sum()))]


def make_hazmat(
    rng: np.random.Generator,
    net: Network,
    parks: list[Park],
    districts: list[District],
    counts: Counts,
    day: dt.date,
) -> list[Enterprise]:
    out: list[Enterprise] = []
    park_area = np.array([p.geom.area for p in parks])
    big_roads = np.flatnonzero(net.edge_cls != LOCAL)
    for i in range(counts.hazmat):
        if rng.random() < 0.62:
            p = parks[int(rng.choice(len(parks), p=park_area / park_area.sum()))]
            x0, y0, x1, y1 = p.geom.buffer(-150).bounds
            while True:
                x, y = rng.uniform(x0, x1), rng.uniform(y0, y1)
                if p.geom.buffer(-150).contains(shapely.Point(x, y)):
                    break
            cat, park = _draw(rng, _PARK_MIX), p.name
        else:
            e = int(rng.choice(big_roads))
            u, v = int(net.edge_u[e]), int(net.edge_v[e])
            f = rng.uniform(0.15, 0.85)
            bx = net.node_x[u] + f * (net.node_x[v] - net.node_x[u])
            by = net.node_y[u] + f * (net.node_y[v] - net.node_y[u])
            dx, dy = net.node_x[v] - net.node_x[u], net.node_y[v] - net.node_y[u]
            nrm = math.hypot(dx, dy)
            off = rng.uniform(150, 320) * rng.choice([-1.0, 1.0])
            x, y = bx - dy / nrm * off, by + dx / nrm * off
            cat, park = _draw(rng, _ROAD_MIX), None
        hx, hy = rng.uniform(30, 110), rng.uniform(25, 90)
        ent = Enterprise(
            i + 1, "", "", cat, float(x), float(y), park=park, site=(x - hx, y - hy, x + hx, y + hy)
        )
        if rng.random() < 0.12:
            ent.licence_expiry = day - dt.timedelta(days=int(rng.integers(1, 400)))
        else:
            ent.licence_expiry = day + dt.timedelta(days=int(rng.integers(1, 3 * 365)))
        band = i if i < 4 else int(rng.choice(4, p=_SCORE_WEIGHTS))
        ent.diagnosis_score = round(float(rng.uniform(*_SCORE_BANDS[band])), 2)
        out.append(ent)
    return out


def make_others(
    rng: np.random.Generator,
    districts: list[District],
    parks: list[Park],
    clearance: Clearance,
    net: Network,
    counts: Counts,
    first_id: int,
) -> list[Enterprise]:
    """Schools, hospitals, labs … near towns; a third of schools/hospitals right beside a road."""
    out: list[Enterprise] = []
    seats = [tuple(map(float, to_xy(d.seat_lon, d.seat_lat))) for d in districts]
    cats = [_draw(rng, _OTHER_MIX) for _ in range(counts.others)]
    for k, forced in enumerate(("school", "hospital")):
        if forced not in cats:
            cats[k] = forced
    for i, cat in enumerate(cats):
        protected = cat in ("school", "hospital")
        for _ in range(1000):
            if protected and rng.random() < 0.35:
                e = int(rng.integers(len(net.edge_u)))
                u, v = int(net.edge_u[e]), int(net.edge_v[e])
                f = rng.uniform(0.2, 0.8)
                dx, dy = net.node_x[v] - net.node_x[u], net.node_y[v] - net.node_y[u]
                nrm = math.hypot(dx, dy)
                off = rng.uniform(20, 60) * rng.choice([-1.0, 1.0])
                x = net.node_x[u] + f * dx - dy / nrm * off
                y = net.node_y[u] + f * dy + dx / nrm * off
            elif rng.random() < 0.65:
                sx, sy = seats[int(rng.integers(len(seats)))]
                x, y = sx + rng.normal(0, 5000), sy + rng.normal(0, 5000)
            else:
                x, y = rng.uniform(300, WIDTH_M - 300), rng.uniform(300, HEIGHT_M - 300)
            if not (300 < x < WIDTH_M - 300 and 300 < y < HEIGHT_M - 300):
                continue
            if protected and not clearance.ok(shapely.Point(x, y).buffer(200)):
                continue
            if not protected and any(p.geom.contains(shapely.Point(x, y)) for p in parks):
                continue
            break
        out.append(Enterprise(first_id + i, "", "", cat, float(x), float(y)))
    return out


def finish_identity(
    rng: np.random.Generator, ents: list[Enterprise], districts: list[District], net: Network
) -> None:
    """District (by containment), name, address and a unique, valid credit code for each."""
    x = np.array([e.x for e in ents])
    y = np.array([e.y for e in ents])
    codes = district_of(districts, x, y)
    names = {d.code: d.name for d in districts}
    bodies = unique_ints(rng, len(ents), 10**8)
    for e, code, body in zip(ents, codes.tolist(), bodies.tolist(), strict=True):
        e.district = code
        e.name = enterprise_name(rng, e.category, names[code])
        prefix = "12" if e.category in ("school", "hospital", "research") else "91"
        e.credit_code = credit_code(prefix, code, body)
        road = net.edge_name[int(rng.integers(len(net.edge_name)))]
        e.address = f"浙江省宁波市{names[code]}{road}{int(rng.integers(1, 999))}号"


# -- hazard sources -----------------------------------------------------------------------

_GRADE_R = {1: (110.0, 420.0), 2: (55.0, 94.0), 3: (11.5, 46.0), 4: (0.0, 9.2)}
_GRADE_WEIGHTS = (0.10, 0.15, 0.35, 0.40)
_STORAGE_POOL = [s for s in gb.CATALOGUE if s.cas not in ("75-44-5", "74-90-8")]
_PRODUCTION_POOL = list(gb.CATALOGUE)


def make_hazard_sources(
    rng: np.random.Generator, hazmat: list[Enterprise], pop: Population, counts: Counts
) -> list[HazardSource]:
    """Pick hosts (production/storage/use, parks first), carve units, draw substances per grade."""
    eligible = [e for e in hazmat if e.category in ("production", "storage", "use")]
    eligible.sort(key=lambda e: (e.park is None, e.id))
    weights = np.array([3.0 if e.park else 1.0 for e in eligible])
    n = counts.hazard_sources
    n_hosts = min(len(eligible), max(1, round(n / 1.4)))
    hosts_idx = rng.choice(len(eligible), size=n_hosts, replace=False, p=weights / weights.sum())
    hosts = [eligible[i] for i in sorted(hosts_idx.tolist())]
    per_host = np.ones(n_hosts, dtype=int)
    for _ in range(n - n_hosts):
        per_host[int(rng.integers(n_hosts))] += 1
    per_host = np.minimum(per_host, 4)
    while per_host.sum() < n:  # hosts full: spill onto the least-loaded
        per_host[int(per_host.argmin())] += 1
    grades = [(k % 4) + 1 if k < 4 else int(rng.choice(4, p=_GRADE_WEIGHTS)) + 1 for k in range(n)]
    out: list[HazardSource] = []
    for host, k in zip(hosts, per_host.tolist(), strict=True):
        # Enlarge the host's site so it can hold k units side by side.
        hx, hy = rng.uniform(90, 120) * k**0.5 + 40, rng.uniform(80, 140)
        host.site = (host.x - hx, host.y - hy, host.x + hx, host.y + hy)
        if host.category == "use" and rng.random() < 0.5:
            host.category = "production"
        sx0, sy0, sx1, sy1 = host.site
        cell = (sx1 - sx0) / k
        for j in range(k):
            hid = len(out) + 1
            x0 = sx0 + j * cell + 12
            x1 = sx0 + (j + 1) * cell - 12
            y0 = sy0 + rng.uniform(10, 30)
            y1 = sy1 - rng.uniform(10, 30)
            kind = (
                "storage" if (host.category == "storage" or rng.random() < 0.45) else "production"
            )
            hs = HazardSource(hid, host.id, f"HS{hid:05d}", "", kind, (x0, y0, x1, y1))
            hs.population_500m = pop.sum_near_rect(hs.rect, host.site, 500.0)
            hs.grade = grades[hid - 1]
            hs.substances = _draw_substances(rng, hs)
            lead = hs.substances[0].name
            hs.unit_name = f"{lead}储罐区" if kind == "storage" else f"{lead}生产装置"
            out.append(hs)
    return out


def _draw_substances(rng: np.random.Generator, hs: HazardSource) -> list[SubstanceRow]:
    """Substances with q chosen so that S ≥ 1 and R falls well inside the assigned grade."""
    alpha = gb18218.alpha_for(hs.population_500m)
    pool = _STORAGE_POOL if hs.unit_kind == "storage" else _PRODUCTION_POOL
    lo, hi = _GRADE_R[hs.grade]
    for _ in range(5000):
        k = int(rng.integers(1, 5))
        picks = [pool[i] for i in rng.choice(len(pool), size=k, replace=False).tolist()]
        betas = np.array([s.beta for s in picks])
        r_lo = max(lo, 1.1 * alpha * float(betas.min())) if hs.grade == 4 else lo
        if r_lo >= hi:
            continue
        r = math.exp(rng.uniform(math.log(r_lo), math.log(hi)))
        w = rng.dirichlet(np.ones(k))
        ratios = w * r / (alpha * betas)  # q/Q per substance
        rows = [
            SubstanceRow(
                s.name_zh,
                s.cas,
                max(0.001, round(float(x * s.critical_q_t), 3)),
                s.critical_q_t,
                s.beta,
                s.hazard_class,
            )
            for s, x in zip(picks, ratios, strict=True)
        ]
        result = gb18218.assess(
            hs.population_500m,
            [
                gb18218.Substance(x.name, x.q, x.critical_q, x.beta, x.hazard_class, x.cas)
                for x in rows
            ],
        )
        if result.S >= 1.02 and result.grade == hs.grade and _clear_of_edges(result.R):
            return rows
    raise RuntimeError(f"could not draw substances for grade {hs.grade} at α={alpha}")


def _clear_of_edges(r: float) -> bool:
    """Keep R ≥ 3 % away from every grade threshold so rounding never flips a grade."""
    return all(abs(r - t) / t > 0.03 for t, _ in gb18218.GRADE_BANDS)
