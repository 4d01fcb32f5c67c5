"""Pipelines between park plants: short L-shaped runs inside a park, long ones between parks.

Long pipelines follow the road network (offset 30 m), as real corridors do; together they reach
the target length (≥ 300 km at scale 1).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from shapely import affinity
from shapely.geometry import LineString

from layers.demo_city.enterprises import Enterprise
from layers.demo_city.geography import District, district_of
from layers.demo_city.roads import Network
from layers.demo_city.zones import Zone
from layers.risk.substances import CATALOGUE

_OPERATORS = (
    "中石化宁波工程有限公司",
    "宁波石化管道输送有限公司",
    "浙江浙能天然气管网有限公司",
    "宁波华东管道有限公司",
    "镇海炼化管道储运分公司",
    "宁波大榭石化管廊有限公司",
)
_DIAMETERS = (50, 80, 100, 150, 200, 250, 300, 400, 500, 600, 800)
_PIPED = [s for s in CATALOGUE if s.cas not in ("75-44-5", "74-90-8")]


@dataclass
class Pipeline:
    id: int
    code: str
    name: str
    substance: str
    cas: str
    diameter_mm: float
    pressure_mpa: float
    operator: str
    geom: LineString  # metric plane
    district: str = ""


def make_pipelines(
    rng: np.random.Generator,
    net: Network,
    plants: list[Enterprise],
    park_lots: list[Zone],
    districts: list[District],
    target_km: float,
) -> list[Pipeline]:
    by_park: dict[str, list[Enterprise]] = {}
    for e in plants:
        if e.park:
            by_park.setdefault(e.park, []).append(e)
    parks = sorted(by_park)
    lots_by_park = {p: [z for z in park_lots if z.park == p] for p in parks}
    out: list[Pipeline] = []
    total = 0.0
    while total < target_km * 1000:
        inter = rng.random() < 0.35 and len(parks) > 1 and total > 0
        if inter:
            a, b = rng.choice(len(parks), size=2, replace=False).tolist()
            la, lb = lots_by_park[parks[a]], lots_by_park[parks[b]]
            if not la or not lb:
                continue
            nodes, _ = net.path(la[0].access_node, lb[0].access_node)
            pts = [(net.node_x[n], net.node_y[n]) for n in nodes]
            ea, eb = by_park[parks[a]][0], by_park[parks[b]][0]
            line = LineString([(ea.x, ea.y), *pts, (eb.x, eb.y)])
            line = affinity.translate(line, 30.0, 30.0)
        else:
            park = parks[int(rng.integers(len(parks)))]
            group = by_park[park]
            if len(group) < 2:
                continue
            i, j = rng.choice(len(group), size=2, replace=False).tolist()
            a_, b_ = group[i], group[j]
            if abs(a_.x - b_.x) < 1 and abs(a_.y - b_.y) < 1:
                continue
            line = LineString([(a_.x, a_.y), (b_.x, a_.y), (b_.x, b_.y)])
        simple = line.simplify(0.5)
        if not isinstance(simple, LineString) or simple.length < 50:
            continue
        s = _PIPED[int(rng.integers(len(_PIPED)))]
        pid = len(out) + 1
        kind = "长输" if inter else "园区"
        out.append(
            Pipeline(
                pid,
                f"PL{pid:04d}",
                f"{s.name_zh}{kind}管道{pid}号",
                s.name_zh,
                s.cas,
                float(rng.choice(_DIAMETERS[5:] if inter else _DIAMETERS)),
                round(float(rng.uniform(0.1, 10.0)), 2),
                _OPERATORS[int(rng.integers(len(_OPERATORS)))],
                simple,
            )
        )
        total += simple.length
    mids = [p.geom.interpolate(0.5, normalized=True) for p in out]
    codes = district_of(districts, np.array([m.x for m in mids]), np.array([m.y for m in mids]))
    for p, c in zip(out, codes.tolist(), strict=True):
        p.district = c
    return out
