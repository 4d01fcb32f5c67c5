"""Illegal parking, judged on a stop's centroid (docs/domain.md §3), never on each noisy fix.

* ``forbidden_zone_parking``: the centroid lies in a school, hospital, residential area or
  drinking-water protection area, and the stop overlaps the zone's ``active_hours`` (local
  time; none = always) for longer than the zone's ``max_dwell_s`` (none = any stop). One alert
  per zone, naming it.
* ``illegal_parking``: otherwise, a stop outside every designated parking zone longer than the
  allowed dwell (default 10 min; the smallest ``max_dwell_s`` of a zone holding the centroid
  overrides it).
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field
from functools import lru_cache
from typing import Any
from zoneinfo import ZoneInfo

import numpy as np
from psycopg import AsyncConnection
from psycopg.rows import tuple_row

from layers.core.vocab import PROTECTED_ZONE_KINDS
from layers.transport.config import TankerRules

_ZONES_SQL = """
SELECT f.i, z.id, z.kind, z.name, z.active_hours, z.max_dwell_s, z.district
FROM unnest(%(i)s::int4[], %(lon)s::float8[], %(lat)s::float8[]) AS f(i, lon, lat)
JOIN zones z ON ST_Intersects(z.geom, ST_SetSRID(ST_MakePoint(f.lon, f.lat), 4326))
  AND z.retired_at IS NULL  -- a retired zone judges no stop (its old alerts keep it)
ORDER BY f.i, z.id
"""


@dataclass
class ZoneHit:
    id: int
    kind: str
    name: str
    active_hours: str | None
    max_dwell_s: int | None
    district: str | None


@dataclass
class Candidate:
    """An alert the rules want to exist (created, or merged into the episode's alert)."""

    vehicle_id: int
    rule: str
    zone_id: int | None
    start_us: int
    end_us: int
    active: bool
    lon: float
    lat: float
    severity: str
    district: str | None = None
    stop: int | None = None  # index into the batch's stops
    details: dict[str, Any] = field(default_factory=dict)


@lru_cache(maxsize=8)
def _tz(name: str) -> ZoneInfo:
    return ZoneInfo(name)


def active_overlap_s(hours: str | None, start_us: int, end_us: int, tz: str) -> float:
    """Seconds of [start, end] inside the ``HH:MM-HH:MM[,…]`` windows (local time of ``tz``;
    a window ending before it starts runs past midnight). No hours = always active."""
    if not hours:
        return (end_us - start_us) / 1e6
    zone = _tz(tz)
    start = dt.datetime.fromtimestamp(start_us / 1e6, dt.UTC)
    end = dt.datetime.fromtimestamp(end_us / 1e6, dt.UTC)
    day = start.astimezone(zone).date() - dt.timedelta(days=1)
    total = 0.0
    while day <= end.astimezone(zone).date():
        midnight = dt.datetime.combine(day, dt.time(), tzinfo=zone)
        for part in hours.split(","):
            a, b = part.split("-")
            lo = midnight + dt.timedelta(hours=int(a[:2]), minutes=int(a[3:]))
            hi = midnight + dt.timedelta(hours=int(b[:2]), minutes=int(b[3:]))
            if hi <= lo:
                hi += dt.timedelta(days=1)
            total += max(0.0, (min(hi, end) - max(lo, start)).total_seconds())
        day += dt.timedelta(days=1)
    return total


def active_at(hours: str | None, t_us: np.ndarray, tz: str) -> np.ndarray:
    """Whether each instant (µs) lies inside the ``HH:MM-HH:MM[,…]`` windows, with the windows'
    meaning of :func:`active_overlap_s` (local time of ``tz``, [start, end), a window ending
    before it starts runs past midnight; no hours = always). Vectorised: the zone's UTC offset
    is taken once per hour of the instants (offsets change on whole hours)."""
    t = np.asarray(t_us, dtype=np.int64)
    if not hours:
        return np.ones(len(t), dtype=bool)
    hour = t // 3_600_000_000
    offset = np.zeros(len(t), dtype=np.int64)
    zone = _tz(tz)
    for h in np.unique(hour):
        at = dt.datetime.fromtimestamp(int(h) * 3600, dt.UTC).astimezone(zone)
        delta = at.utcoffset() or dt.timedelta()
        offset[hour == h] = int(delta.total_seconds())
    sod = (t // 1_000_000 + offset) % 86_400
    out = np.zeros(len(t), dtype=bool)
    for part in hours.split(","):
        a, b = part.split("-")
        lo = int(a[:2]) * 3600 + int(a[3:]) * 60
        hi = int(b[:2]) * 3600 + int(b[3:]) * 60
        out |= ((sod >= lo) & (sod < hi)) if hi > lo else ((sod >= lo) | (sod < hi))
    return out


async def zones_at(
    conn: AsyncConnection[Any], lon: np.ndarray, lat: np.ndarray
) -> list[list[ZoneHit]]:
    """The zones holding each point (GiST on zones.geom; the point is the constant side)."""
    out: list[list[ZoneHit]] = [[] for _ in range(len(lon))]
    if len(lon) == 0:
        return out
    cur = conn.cursor(row_factory=tuple_row)
    params = {
        "i": np.arange(len(lon), dtype=np.int32),
        "lon": np.asarray(lon, dtype=np.float64),
        "lat": np.asarray(lat, dtype=np.float64),
    }
    await cur.execute(_ZONES_SQL, params)
    for i, *rest in await cur.fetchall():
        out[i].append(ZoneHit(*rest))
    return out


def judge_stop(
    i: int,
    vehicle_id: int,
    start_us: int,
    end_us: int,
    is_open: bool,
    lon: float,
    lat: float,
    zones: list[ZoneHit],
    rules: TankerRules,
) -> tuple[int | None, list[Candidate]]:
    """The zone a stop is attributed to and the parking alerts it raises."""
    duration = (end_us - start_us) / 1e6
    lots = [z for z in zones if z.kind == "designated_parking"]
    forbidden = [z for z in zones if z.kind in PROTECTED_ZONE_KINDS]
    out: list[Candidate] = []
    for z in forbidden:
        inside = active_overlap_s(z.active_hours, start_us, end_us, rules.timezone)
        if inside > 0 and inside >= (z.max_dwell_s or 0):
            details = {
                "zone_name": z.name,
                "zone_kind": z.kind,
                "duration_s": duration,
                "active_hours": z.active_hours,
            }
            out.append(
                Candidate(
                    vehicle_id,
                    "forbidden_zone_parking",
                    z.id,
                    start_us,
                    end_us,
                    is_open,
                    lon,
                    lat,
                    "severe",
                    z.district,
                    i,
                    details,
                )
            )
    if not out and not lots:
        dwells = [z.max_dwell_s for z in zones if z.max_dwell_s is not None]
        allowed = float(min(dwells)) if dwells else rules.max_dwell_s
        if duration > allowed:
            details = {"duration_s": duration, "allowed_dwell_s": allowed}
            out.append(
                Candidate(
                    vehicle_id,
                    "illegal_parking",
                    None,
                    start_us,
                    end_us,
                    is_open,
                    lon,
                    lat,
                    "moderate",
                    None,
                    i,
                    details,
                )
            )
    attributed = lots or forbidden or zones
    return (attributed[0].id if attributed else None), out
