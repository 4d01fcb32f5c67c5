"""Sizes, the bounding box and the local metric plane every generator works in.

Everything is generated in metres on an equirectangular plane around 29.9° N (error < 0.3 %
across the box, far below the 100 m margins the ground truth relies on) and converted to WGS 84
only when rows are written, so distances and buffers are plain planar arithmetic.
"""

from __future__ import annotations

import datetime as dt
import math
from dataclasses import dataclass

import numpy as np

LON0, LAT0, LON1, LAT1 = 121.2, 29.6, 122.2, 30.2
_PHI = math.radians(29.9)
#: Metres per degree at the box's mid latitude (WGS 84 ellipsoid series).
M_PER_DEG_LON = 111_412.84 * math.cos(_PHI) - 93.5 * math.cos(3 * _PHI)
M_PER_DEG_LAT = 111_132.92 - 559.82 * math.cos(2 * _PHI) + 1.175 * math.cos(4 * _PHI)
WIDTH_M = (LON1 - LON0) * M_PER_DEG_LON
HEIGHT_M = (LAT1 - LAT0) * M_PER_DEG_LAT

#: China Standard Time has had no daylight saving since 1991, so a fixed offset is exact.
CST = dt.timezone(dt.timedelta(hours=8), "Asia/Shanghai")


def to_lonlat(x: np.ndarray | float, y: np.ndarray | float) -> tuple[np.ndarray, np.ndarray]:
    return (
        LON0 + np.asarray(x, dtype=np.float64) / M_PER_DEG_LON,
        LAT0 + np.asarray(y, dtype=np.float64) / M_PER_DEG_LAT,
    )


def to_xy(lon: np.ndarray | float, lat: np.ndarray | float) -> tuple[np.ndarray, np.ndarray]:
    return (
        (np.asarray(lon, dtype=np.float64) - LON0) * M_PER_DEG_LON,
        (np.asarray(lat, dtype=np.float64) - LAT0) * M_PER_DEG_LAT,
    )


def _n(base: float, scale: float, minimum: int) -> int:
    return max(minimum, round(base * scale))


@dataclass(frozen=True)
class Counts:
    """How many of each thing at a scale; minimums keep every kind present at tiny scales."""

    scale: float
    hazmat: int
    others: int
    hazard_sources: int
    monitoring_min: int
    pipeline_km: float
    vehicles: int
    carriers: int
    lots_express: int
    lots_town: int
    lots_per_park: int
    residential: int
    water_sources: int

    @classmethod
    def for_scale(cls, scale: float) -> Counts:
        hazard_sources = _n(371, scale, 4)
        return cls(
            scale=scale,
            hazmat=_n(2936, scale, 24),
            others=_n(4110, scale, 25),
            hazard_sources=hazard_sources,
            monitoring_min=max(math.ceil(5196 * scale), 6 * hazard_sources),
            pipeline_km=max(300.0 * scale, 15.0),
            vehicles=_n(3419, scale, 12),
            carriers=_n(120, scale, 4),
            lots_express=_n(25, scale, 2),
            lots_town=_n(20, scale, 2),
            lots_per_park=max(1, min(3, round(3 * scale**0.5 * 2))),
            residential=_n(150, scale, 2),
            water_sources=_n(6, scale, 1),
        )
