"""Fatigue driving (issue 14 item 3; docs/transport.md §8).

SOURCE: 道路交通安全法实施条例 (Road Traffic Safety Law implementing regulations) art. 62 item 7:
no driving for more than 4 h continuously without a rest of at least 20 min
(``continuous_drive_max_s`` = 14,400 s, ``rest_min_s`` = 1,200 s). The daily cap
(``daily_drive_max_s`` = 8 h per local calendar day in ``rules.timezone``) is a PRODUCT DEFAULT:
the regulations set no daily figure for road hazmat drivers; 8 h is two legal stints, what
provincial platforms commonly flag and what JT/T 808 terminals' own "daily driving overtime"
alarm (bit 18) is usually configured to — set it per province.

* ``fatigue_continuous``: one alert per driving stint (driving between two rests, counted as in
  ``driving.py``) whose driving passes the limit. Its episode runs from the moment the limit was
  passed to the stint's last driving moment; it stays active until the rest that closes the
  stint has lasted ``rest_min_s``. Details: driving seconds, stint start, the last rest's end
  (null when no rest is known within the lookback), when the limit was passed.
* ``fatigue_daily``: one alert per vehicle and local day whose driving passes the daily cap;
  episode from the moment it was passed to the day's last driving moment, active while the
  vehicle's latest fix is in that day.

Cost: one indexed query per batch reads the stops of the batch's moving vehicles (and of
those with an active fatigue alert); that bounds each stint's and day's driving from above
(stops are the only pauses it knows, the timeline starts at the lookback's edge). Vehicles whose
bound passes a limit get a second query, one index probe each: their first fix in the window
(a vehicle back after a long silence starts there). Only those still over get a third: their
silences of at least ``rest_min_s`` since then (computed in SQL, a few rows each), which can
only shorten driving.
Late fixes need nothing special: both rules are recomputed from stored stops and fixes, so a
back-filled fix extends a stint, and the merge (one alert per overlapping episode) never
duplicates one.
"""

from __future__ import annotations

from typing import Any

import numpy as np
from psycopg import AsyncConnection
from psycopg.rows import tuple_row

from layers.transport.alerts import AlertChanges, merge
from layers.transport.config import TankerRules
from layers.transport.fix_filters import haversine_m
from layers.transport.parking import Candidate
from layers.transport.state import ts_sql, us_sql
from layers.transport.warnings import driving
from layers.transport.warnings.driving import US, Pause
from layers.transport.warnings.model import Stored, WarningModel, iso_utc

RULES = ("fatigue_continuous", "fatigue_daily")
#: How far back a stint is followed: a stint with no rest in this long is counted from here.
LOOKBACK_US = 12 * 3600 * US

# The batch's vehicles that moved or have an active fatigue alert (a rest may close it), with
# their latest fix, the stops since the window's start and the last one that began before it
# (a night's stop that began yesterday is today's rest); the (vehicle_id, start_ts) indexes of
# alerts and stops serve every lookup.
_STOPS = (
    "SELECT u.v, " + us_sql("vs.last_ts") + ", vs.last_lon, vs.last_lat,"
    " " + us_sql("s.start_ts") + ", " + us_sql("coalesce(s.end_ts, s.start_ts)") + ","
    " ST_X(s.geom), ST_Y(s.geom)"
    " FROM unnest(%(v)s::int4[], %(w)s::int8[], %(moved)s::bool[]) AS u(v, w, moved)"
    " JOIN vehicle_state vs ON vs.vehicle_id = u.v"
    " LEFT JOIN LATERAL ("
    "(SELECT start_ts, end_ts, geom FROM stops WHERE vehicle_id = u.v AND start_ts >= "
    + ts_sql("u.w")
    + ") UNION ALL (SELECT start_ts, end_ts, geom FROM stops WHERE vehicle_id = u.v"
    " AND start_ts < " + ts_sql("u.w") + " ORDER BY start_ts DESC LIMIT 1)) s ON true"
    " WHERE u.moved OR EXISTS (SELECT 1 FROM alerts a WHERE a.vehicle_id = u.v"
    " AND a.rule = ANY(%(rules)s::text[]) AND a.active)"
)
# Each vehicle's first fix in the window (one index probe each).
_FIRST = (
    "SELECT u.v, " + us_sql("f.ts") + " FROM unnest(%(v)s::int4[], %(w)s::int8[]) AS u(v, w)"
    " CROSS JOIN LATERAL (SELECT ts FROM positions WHERE vehicle_id = u.v AND ts >= "
    + ts_sql("u.w")
    + " ORDER BY ts LIMIT 1) f"
)
# Each vehicle's first fix in the window and its silences of at least rest_min_s.
_SILENCES = (
    "SELECT v, " + us_sql("pts") + ", " + us_sql("ts") + ", plon, plat, lon, lat FROM ("
    "SELECT p.vehicle_id AS v, p.ts, p.lon, p.lat, lag(p.ts) OVER w AS pts,"
    " lag(p.lon) OVER w AS plon, lag(p.lat) OVER w AS plat"
    " FROM unnest(%(v)s::int4[], %(w)s::int8[]) AS u(v, w)"
    " JOIN positions p ON p.vehicle_id = u.v AND p.ts >= " + ts_sql("u.w") + ""
    " WINDOW w AS (PARTITION BY p.vehicle_id ORDER BY p.ts)) q"
    " WHERE pts IS NULL OR ts - pts >= %(rest)s * interval '1 second'"
)


class Timeline:
    """One vehicle's known pauses between ``t0`` and its latest fix ``t1``."""

    def __init__(self, t0: int, t1: int, lon: float, lat: float) -> None:
        self.t0, self.t1, self.lon, self.lat = t0, t1, lon, lat
        self.pauses: list[Pause] = []

    def judge(
        self, vehicle_id: int, since: int, rules: TankerRules
    ) -> tuple[list[Candidate], bool]:
        """The candidates for stints and days reaching ``since`` or later, and whether any
        passes its limit (on the stops-only bound, that decides the second query)."""
        pauses = driving.merge_pauses(self.pauses)
        limit = int(rules.continuous_drive_max_s * US)
        rest = int(rules.rest_min_s * US)
        out: list[Candidate] = []
        for s in driving.stints(self.t0, self.t1, pauses, rest, limit):
            if s.exceeded_at is None or s.rest_end < since:
                continue
            iso = iso_utc
            details = {
                "driving_s": round(s.driving_us / US),
                "limit_s": rules.continuous_drive_max_s,
                "rest_min_s": rules.rest_min_s,
                "stint_start": iso(s.start),
                "last_rest_end": iso(s.start) if s.after_rest else None,
                "exceeded_at": iso(s.exceeded_at),
                "rested_at": iso(s.end) if s.closed else None,
            }
            # Where it rested, or (still driving) where it is now.
            lon = s.lon if s.lon is not None else self.lon
            lat = s.lat if s.lat is not None else self.lat
            out.append(
                Candidate(
                    vehicle_id,
                    "fatigue_continuous",
                    None,
                    s.exceeded_at,
                    s.last_driving,
                    not s.closed,
                    lon,
                    lat,
                    "moderate",
                    details=details,
                )
            )
        daily = int(rules.daily_drive_max_s * US)
        for d in driving.days(self.t0, self.t1, pauses, rules.timezone, daily):
            if d.exceeded_at is None or d.end <= since:
                continue
            details = {
                "day": d.day.isoformat(),
                "timezone": rules.timezone,
                "driving_s": round(d.driving_us / US),
                "limit_s": rules.daily_drive_max_s,
                "exceeded_at": iso_utc(d.exceeded_at),
            }
            out.append(
                Candidate(
                    vehicle_id,
                    "fatigue_daily",
                    None,
                    d.exceeded_at,
                    d.last_driving,
                    self.t1 < d.end,
                    self.lon,
                    self.lat,
                    "moderate",
                    details=details,
                )
            )
        return out, bool(out)


async def judge(conn: AsyncConnection[Any], stored: Stored, rules: TankerRules) -> AlertChanges:
    """Continuous and daily driving of the vehicles that moved in this batch."""
    span = stored.spans
    moved = stored.per_vehicle(stored.speed > 0, np.logical_or)
    if not span:
        return AlertChanges()
    vehicles = sorted(span)
    window = {
        v: min(span[v][0] - LOOKBACK_US, driving.local_midnight(span[v][0], rules.timezone))
        for v in vehicles
    }
    params = {
        "v": vehicles,
        "w": [window[v] for v in vehicles],
        "moved": [moved[v] for v in vehicles],
        "rules": list(RULES),
    }
    cur = conn.cursor(row_factory=tuple_row)
    await cur.execute(_STOPS, params)
    lines: dict[int, Timeline] = {}
    for v, last, lon, lat, s, e, slon, slat in await cur.fetchall():
        line = lines.get(int(v))
        if line is None:
            line = lines[int(v)] = Timeline(window[int(v)], int(last), float(lon), float(lat))
        if s:
            line.pauses.append(Pause(int(s), int(e), float(slon), float(slat)))
    # The stops-only bound: vehicles under every limit need nothing more. Then the same bound
    # from each one's first fix in the window (a vehicle back after a long silence).
    exact = [v for v, line in lines.items() if line.judge(v, span[v][0], rules)[1]]
    if not exact:
        return AlertChanges()
    await cur.execute(_FIRST, {"v": exact, "w": [lines[v].t0 for v in exact]})
    for v, first in await cur.fetchall():
        lines[int(v)].t0 = max(lines[int(v)].t0, int(first))
    exact = [v for v in exact if lines[v].judge(v, span[v][0], rules)[1]]
    if not exact:
        return AlertChanges()
    await _add_silences(conn, [lines[v] for v in exact], exact, rules)
    cands: list[Candidate] = []
    for v in exact:
        cands += lines[v].judge(v, span[v][0], rules)[0]
    return await merge(conn, cands, [None] * len(cands), rules)


async def _add_silences(
    conn: AsyncConnection[Any], lines: list[Timeline], vehicles: list[int], rules: TankerRules
) -> None:
    """Start each timeline at its first fix in the window and add the silences that could
    hide a rest as pauses."""
    cur = conn.cursor(row_factory=tuple_row)
    params = {"v": vehicles, "w": [line.t0 for line in lines], "rest": rules.rest_min_s}
    await cur.execute(_SILENCES, params)
    rows = await cur.fetchall()
    by_v = dict(zip(vehicles, lines, strict=True))
    gaps = [r for r in rows if r[1]]
    for v, prev, t, *_ in rows:
        if not prev:  # the first fix in the window: nothing is known before it
            by_v[int(v)].t0 = max(by_v[int(v)].t0, int(t))
    if not gaps:
        return
    a = np.array([r[3:7] for r in gaps], dtype=np.float64)
    dist = haversine_m(a[:, 0], a[:, 1], a[:, 2], a[:, 3])
    for r, d in zip(gaps, dist.tolist(), strict=True):
        v, prev, t, plon, plat = int(r[0]), int(r[1]), int(r[2]), float(r[3]), float(r[4])
        if driving.could_rest((t - prev) / US, d, rules.rest_min_s, rules.expressway_kmh):
            by_v[v].pauses.append(Pause(prev, t, plon, plat))


MODEL = WarningModel(
    "fatigue",
    RULES,
    "道路交通安全法实施条例 art. 62 item 7 (≤ 4 h continuous driving, rest ≥ 20 min);"
    " daily cap: product default (8 h per local day)",
    judge,
)
