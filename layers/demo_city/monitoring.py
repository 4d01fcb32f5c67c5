"""Monitoring points on hazard sources and pipelines, with limits that satisfy the schema CHECKs.

Gas detector set points follow GB/T 50493-2019: flammable level 1 ≤ 25 %LEL and level 2
≤ 50 %LEL; toxic level 1 = 100 % OEL and level 2 = 200 % OEL (mg/m³); oxygen 19.5/23.5 %vol.
Temperature, pressure and level carry the unit's own H/HH/L/LL with LL ≤ L < H ≤ HH.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from layers.demo_city.enterprises import HazardSource
from layers.risk.substances import BY_CAS


@dataclass
class MonitoringPoint:
    id: int
    code: str
    kind: str
    unit: str
    x: float
    y: float
    sampling_interval_s: int
    hazard_source_id: int | None = None
    pipeline_id: int | None = None
    substance: str | None = None
    level1: float | None = None
    level2: float | None = None
    limit_h: float | None = None
    limit_hh: float | None = None
    limit_l: float | None = None
    limit_ll: float | None = None


def _limits(rng: np.random.Generator, mp: MonitoringPoint, storage: bool) -> None:
    if mp.kind == "gas_flammable":
        mp.unit, mp.level1, mp.level2 = (
            "%LEL",
            float(rng.choice([20, 25])),
            float(rng.choice([40, 50])),
        )
        mp.sampling_interval_s = int(rng.choice([5, 10]))
    elif mp.kind == "oxygen":
        mp.unit, mp.limit_l, mp.limit_h, mp.sampling_interval_s = "%vol", 19.5, 23.5, 10
    elif mp.kind == "temperature":
        mp.unit = "°C"
        if storage:
            mp.limit_l, mp.limit_ll = 5.0, 0.0
            mp.limit_h = float(rng.choice([38, 40, 45]))
        else:
            mp.limit_h = float(rng.integers(12, 35) * 10)
        mp.limit_hh = mp.limit_h + float(rng.choice([5, 10, 20]))
        mp.sampling_interval_s = int(rng.choice([10, 15, 30]))
    elif mp.kind == "pressure":
        design = float(rng.choice([0.3, 0.6, 1.0, 1.6, 2.5, 4.0, 6.4]))
        mp.unit = "MPa"
        mp.limit_h, mp.limit_hh = round(0.85 * design, 3), round(0.95 * design, 3)
        mp.limit_l = round(0.1 * design, 3)
        mp.sampling_interval_s = int(rng.choice([5, 10, 20]))
    elif mp.kind == "level":
        mp.unit = "%"
        mp.limit_ll, mp.limit_l = float(rng.choice([5, 8])), float(rng.choice([10, 15, 20]))
        mp.limit_h, mp.limit_hh = float(rng.choice([80, 85])), float(rng.choice([90, 95]))
        mp.sampling_interval_s = int(rng.choice([30, 60]))


def make_points(
    rng: np.random.Generator, sources: list[HazardSource], minimum: int
) -> list[MonitoringPoint]:
    """≈ 14 points per source (10–18), topped up to ``minimum`` in total."""
    per = rng.integers(10, 19, size=len(sources))
    while per.sum() < minimum:
        per[int(rng.integers(len(sources)))] += 1
    out: list[MonitoringPoint] = []
    for hs, k in zip(sources, per.tolist(), strict=True):
        flam = [s for s in hs.substances if BY_CAS[s.cas].flammable]
        toxic = [s for s in hs.substances if BY_CAS[s.cas].oel_mg_m3 is not None]
        storage = hs.unit_kind == "storage"
        kinds = ["gas_flammable"] * (5 if flam else 0) + ["gas_toxic"] * (4 if toxic else 0)
        kinds += ["temperature"] * 3 + ["pressure"] * 3 + ["level"] * (3 if storage else 1)
        kinds += ["oxygen"] * (1 if toxic else 0)
        x0, y0, x1, y1 = hs.rect
        for _ in range(k):
            pid = len(out) + 1
            kind = kinds[int(rng.integers(len(kinds)))]
            mp = MonitoringPoint(
                pid,
                f"MP{pid:06d}",
                kind,
                "",
                float(rng.uniform(x0 + 3, x1 - 3)),
                float(rng.uniform(y0 + 3, y1 - 3)),
                10,
                hazard_source_id=hs.id,
            )
            if kind == "gas_toxic":
                s = toxic[int(rng.integers(len(toxic)))]
                oel = BY_CAS[s.cas].oel_mg_m3 or 1.0
                mp.substance, mp.unit, mp.level1, mp.level2 = s.name, "mg/m3", oel, 2 * oel
                mp.sampling_interval_s = int(rng.choice([5, 10]))
            else:
                if kind == "gas_flammable":
                    mp.substance = flam[int(rng.integers(len(flam)))].name
                _limits(rng, mp, storage)
            out.append(mp)
    return out


def pipeline_points(
    rng: np.random.Generator, pipelines: list, first_id: int
) -> list[MonitoringPoint]:
    """Pressure at both ends and a leak detector every ~8 km along each pipeline."""
    out: list[MonitoringPoint] = []
    for pl in pipelines:
        line = pl.geom
        fracs = [0.0, 1.0] + [f for f in np.arange(8000, line.length, 8000) / line.length]
        for j, f in enumerate(fracs):
            pid = first_id + len(out)
            p = line.interpolate(float(f), normalized=True)
            kind = "pressure" if j < 2 else "leak"
            mp = MonitoringPoint(pid, f"MP{pid:06d}", kind, "", p.x, p.y, 10, pipeline_id=pl.id)
            if kind == "pressure":
                mp.unit = "MPa"
                mp.limit_h = round(1.05 * pl.pressure_mpa, 3)
                mp.limit_hh = round(1.10 * pl.pressure_mpa, 3)
                mp.limit_l = round(0.50 * pl.pressure_mpa, 3)
                mp.limit_ll = round(0.30 * pl.pressure_mpa, 3)
                mp.sampling_interval_s = 5
            else:
                mp.substance, mp.unit, mp.level1, mp.level2 = pl.substance, "%LEL", 20.0, 40.0
                mp.sampling_interval_s = 10
            out.append(mp)
    return out
