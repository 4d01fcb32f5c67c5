"""Restricted hours: hazmat vehicles inside an area or on a road class while it is closed to
them (issue 14 item 3; docs/transport.md §4, ``restricted_hours``).

SOURCE: the Road Traffic Safety Law art. 48 and the Measures for road hazmat transport (2019)
let a city's public security organ fix where and when hazmat vehicles may travel; cities close
zones (a centre by day) or road classes (some roads at night). The closures are therefore
configuration, not numbers of a standard:

* zones of kind ``hazmat_restricted``: closed during their ``active_hours`` (local time of
  :attr:`TankerRules.timezone`; none = always closed), evaluated by
  :func:`layers.transport.parking.active_at` (the windows of ``active_overlap_s``, vectorised
  over fixes) — parking.py is the one home of active-hours logic;
* road classes: :attr:`TankerRules.restricted_roads`, ``(road_class, "HH:MM-HH:MM")`` pairs
  (env ``GEORISK_TANKER_RESTRICTED_ROADS="local@22:00-06:00"``, parsed and checked by
  :func:`parse_restricted_roads`). A fix is on a road class when a road of it lies within
  :attr:`TankerRules.road_snap_m` and no road of an unrestricted class does (the benefit of the
  doubt ``limits.py`` gives where roads run side by side).

An episode is a run of consecutive fixes (event time) inside one zone, or on one road class,
while it is closed; it raises one alert once the run lasts :attr:`TankerRules.restricted_min_s`
(first to last fix; product default 60 s: long enough that one stray fix on a boundary never
counts). ``active`` while the vehicle's latest fix is still inside and closed. Episodes are
recomputed from ``positions`` around each batch's new fixes (late and back-filled fixes
extend, join or end them); the alerts merge matches them by overlap.

Cost: a batch costs two small queries when nothing applies — the restricted zones' bounding
boxes (the new fixes are tested against them in numpy, and only those inside one are sent to
the exact GiST test) and the vehicles' alerts of this rule the fixes may change. Road
classes cost nothing unless configured; then the new fixes in a class's closed hours are tested
against the roads of the closed classes (one GiST query), and only the vehicles found on them
have their history read.
"""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from functools import partial
from typing import Any

import numpy as np
from numpy.typing import NDArray
from psycopg import AsyncConnection
from psycopg.rows import tuple_row

from layers.core.vocab import ACTIVE_HOURS_PATTERN, ROAD_CLASSES
from layers.transport.alerts import AlertChanges, merge
from layers.transport.config import TankerRules
from layers.transport.parking import Candidate, active_at
from layers.transport.state import ts_sql, us_sql
from layers.transport.warnings.model import Stored, WarningModel

RULE = "restricted_hours"
#: How far before and after a vehicle's new fixes its history is read, widened to the span of
#: any alert of this rule they may change. A run needs no more: one that went on longer before
#: the batch has its alert already (it lasted ``restricted_min_s``), whose start bounds the read.
LOOKBACK_US = 30 * 60 * 1_000_000
ENV = "GEORISK_TANKER_RESTRICTED_ROADS"


def parse_restricted_roads(text: str) -> tuple[tuple[str, str], ...]:
    """``"local@22:00-06:00,arterial@07:00-09:00"`` → ``(("local", "22:00-06:00"), …)``; a
    ``ValueError`` naming the setting and the bad item otherwise."""
    out: list[tuple[str, str]] = []
    for raw in text.split(","):
        item = raw.strip()
        if not item:
            continue
        road_class, sep, hours = (part.strip() for part in item.partition("@"))
        if not sep or road_class not in ROAD_CLASSES:
            raise ValueError(
                f"{ENV}: {item!r} must be ROAD_CLASS@HH:MM-HH:MM with a class of"
                f" {', '.join(ROAD_CLASSES)}"
            )
        if not re.fullmatch(ACTIVE_HOURS_PATTERN.strip("^$"), hours) or "," in hours:
            raise ValueError(f"{ENV}: {item!r}: hours must be one HH:MM-HH:MM window")
        out.append((road_class, hours))
    return tuple(out)


def closed_road_hours(rules: TankerRules) -> dict[str, str]:
    """Road class → its closed windows as one active-hours string (``"22:00-06:00,…"``)."""
    out: dict[str, list[str]] = {}
    for road_class, hours in rules.restricted_roads:
        out.setdefault(road_class, []).append(hours)
    return {k: ",".join(v) for k, v in out.items()}


@dataclass(frozen=True)
class RestrictedZone:
    id: int
    name: str
    active_hours: str | None
    district: str | None


@dataclass(frozen=True)
class Fix:
    t: int  # µs
    lon: float
    lat: float
    zones: tuple[int, ...]  # restricted zones holding the fix and closed at its time
    road_class: str | None  # a road class the fix is on while it is closed (module's doc)
    road_name: str | None


@dataclass(frozen=True)
class Known:
    """An alert of this rule the batch may change: its vehicle, zone (None: a road class's)
    and episode span."""

    vehicle_id: int
    zone_id: int | None
    start: int
    end: int


def _iso(t_us: int) -> str:
    return dt.datetime.fromtimestamp(t_us / 1e6, dt.UTC).isoformat()


def _runs(fixes: Sequence[Fix], inside: Callable[[Fix], bool]) -> list[tuple[int, int]]:
    """``(first, last)`` indices of the runs of consecutive fixes for which ``inside`` holds."""
    out, k, n = [], 0, len(fixes)
    while k < n:
        if not inside(fixes[k]):
            k += 1
            continue
        j = k
        while j + 1 < n and inside(fixes[j + 1]):
            j += 1
        out.append((k, j))
        k = j + 1
    return out


def _in_zone(zone_id: int, fix: Fix) -> bool:
    return zone_id in fix.zones


def _on_road(road_class: str | None, fix: Fix) -> bool:
    return fix.road_class == road_class


def episodes(
    vehicle_id: int,
    fixes: Sequence[Fix],
    new_t0: int,
    new_t1: int,
    zones: dict[int, RestrictedZone],
    road_hours: dict[str, str],
    min_s: float,
    earlier: dict[int | None, int] | None = None,
) -> list[Candidate]:
    """The restricted-hours episodes among one vehicle's ``fixes`` (sorted by time; each
    already marked with the zones / road class closed to it at its time) that reach into the
    new fixes' span [new_t0, new_t1], counting the fix that ended them, and last at least
    ``min_s`` (first to last fix of the run). ``earlier``: per zone (None: road classes), the
    start of an alert whose episode holds the first fix read — a run from that fix goes on
    from there (the read does not reach back to it)."""
    out: list[Candidate] = []
    keys: list[tuple[int | None, str | None]] = [(z, None) for z in sorted(zones)]
    keys += [(None, c) for c in sorted(road_hours)]
    for zone_id, road_class in keys:
        if zone_id is not None:
            runs = _runs(fixes, partial(_in_zone, zone_id))
            hours = zones[zone_id].active_hours
        else:
            runs = _runs(fixes, partial(_on_road, road_class))
            hours = road_hours[str(road_class)]
        for k, j in runs:
            first, last = fixes[k], fixes[j]
            start = first.t
            if k == 0 and earlier and zone_id in earlier:
                start = min(start, earlier[zone_id])
            ended = j + 1 < len(fixes)
            ended_by = fixes[j + 1].t if ended else last.t
            inside_s = (last.t - start) / 1e6
            if first.t > new_t1 or ended_by < new_t0 or inside_s < min_s or last.t == start:
                continue
            details: dict[str, Any] = {
                "entered_at": _iso(start),
                "ended_at": _iso(ended_by) if ended else None,
                "inside_s": inside_s,
                "closed_hours": hours,
            }
            district = None
            if zone_id is not None:
                zone = zones[zone_id]
                details |= {"restriction": "zone", "zone_name": zone.name}
                district = zone.district
            else:
                names = [f.road_name for f in fixes[k : j + 1] if f.road_name]
                details |= {
                    "restriction": "road_class",
                    "road_class": road_class,
                    "road_name": max(sorted(set(names)), key=names.count) if names else None,
                }
            out.append(
                Candidate(
                    vehicle_id,
                    RULE,
                    zone_id,
                    start,
                    last.t,
                    active=not ended,
                    lon=first.lon,
                    lat=first.lat,
                    severity="moderate",
                    district=district,
                    details=details,
                )
            )
    return out


# The restricted zones' bounding boxes: the new fixes are tested against them in numpy first,
# so only the few fixes inside one go to the database (most batches send none).
_BOXES = (
    "SELECT ST_XMin(geom), ST_YMin(geom), ST_XMax(geom), ST_YMax(geom) FROM zones"
    " WHERE kind = 'hazmat_restricted' AND retired_at IS NULL"
)

# The new fixes inside a restricted zone (those inside a zone's box; GiST on zones.geom) and
# the alerts of this rule the batch may change: open ones (their leaving fix may be here) and
# those whose episode the new fixes reach into (a back-filled fix may extend or split it).
# Rows: vehicle, fix time, zone, its hours, alert start, alert end, whether the row is an alert.
_WATCH = (
    "WITH u AS (SELECT * FROM unnest(%(v)s::int4[], %(t0)s::int8[], %(t1)s::int8[])"
    " AS u(v, t0, t1))"
    " SELECT f.v, f.t, z.id, z.active_hours, NULL::int8, NULL::int8, false AS alert"
    " FROM zones z, unnest(%(fv)s::int4[], %(ft)s::int8[], %(flon)s::float8[], %(flat)s::float8[])"
    " AS f(v, t, lon, lat) WHERE z.kind = 'hazmat_restricted' AND z.retired_at IS NULL"
    " AND ST_Intersects(z.geom, ST_SetSRID(ST_MakePoint(f.lon, f.lat), 4326))"
    " UNION ALL SELECT a.vehicle_id, NULL, a.zone_id, NULL, "
    + us_sql("a.episode_start")
    + ", "
    + us_sql("coalesce(a.episode_end, a.episode_start)")
    + ", true FROM u JOIN alerts a ON a.vehicle_id = u.v AND a.rule = %(rule)s"
    " AND (a.active OR (a.episode_start <= "
    + ts_sql("u.t1")
    + " AND a.episode_end >= "
    + ts_sql("u.t0")
    + "))"
)

# The watched vehicles' fixes around the batch, each with the restricted zones holding it and,
# where the vehicle's road classes are judged, the nearest road within the snap distance and
# whether a road of an unrestricted class lies within it too.
_FIXES = (
    "SELECT p.vehicle_id, " + us_sql("p.ts") + ", p.lon, p.lat, zz.ids, rr.cls, rr.name, rr.open"
    " FROM unnest(%(v)s::int4[], %(t0)s::int8[], %(t1)s::int8[], %(roads)s::bool[])"
    " AS u(v, t0, t1, roads)"
    " JOIN positions p ON p.vehicle_id = u.v AND p.ts BETWEEN "
    + ts_sql("u.t0")
    + " AND "
    + ts_sql("u.t1")
    + " CROSS JOIN LATERAL (SELECT ST_SetSRID(ST_MakePoint(p.lon, p.lat), 4326) AS g) pt"
    " LEFT JOIN LATERAL (SELECT array_agg(z.id ORDER BY z.id) AS ids FROM zones z"
    " WHERE z.kind = 'hazmat_restricted' AND z.retired_at IS NULL"
    " AND ST_Intersects(z.geom, pt.g)) zz ON true"
    " LEFT JOIN LATERAL (SELECT (array_agg(r.road_class ORDER BY d.m))[1] AS cls,"
    " (array_agg(r.name ORDER BY d.m))[1] AS name,"
    " bool_or(r.road_class <> ALL(%(closed)s::text[])) AS open"
    " FROM roads r CROSS JOIN LATERAL (SELECT ST_Distance(r.geom::geography, pt.g::geography)"
    " AS m) d WHERE u.roads"
    " AND ST_DWithin(r.geom, pt.g, %(snap)s / (111320.0 * cos(radians(p.lat))))"
    " AND ST_DWithin(r.geom::geography, pt.g::geography, %(snap)s)) rr ON true"
    " ORDER BY p.vehicle_id, p.ts"
)

_ZONES = (
    "SELECT id, name, active_hours, district FROM zones WHERE id = ANY(%(ids)s::int4[]) ORDER BY id"
)


#: Above this many restricted zones the box pre-test (fixes × zones comparisons) would cost
#: more than it saves: every fix goes to the GiST test instead. Cities close a handful of
#: areas; the demo has two.
MAX_BOXES = 256


async def _in_boxes(conn: AsyncConnection[Any], stored: Stored) -> NDArray[np.bool_]:
    """Which new fixes lie in a restricted zone's bounding box (the cheap pre-test)."""
    cur = conn.cursor(row_factory=tuple_row)
    await cur.execute(_BOXES)
    boxes = np.array(await cur.fetchall(), dtype=np.float64).reshape(-1, 4)
    if not len(boxes) or not len(stored):
        return np.zeros(len(stored), dtype=bool)
    if len(boxes) > MAX_BOXES:
        return np.ones(len(stored), dtype=bool)
    lon, lat = stored.lon[:, None], stored.lat[:, None]
    x0, y0, x1, y1 = boxes.T
    inside: NDArray[np.bool_] = (lon >= x0) & (lon <= x1) & (lat >= y0) & (lat <= y1)
    return np.asarray(inside.any(axis=1), dtype=bool)


# The new fixes that fall in some road class's closed hours, against the roads of those
# classes within the snap distance (GiST on roads.geom through the degree pre-filter).
_ON_ROADS = (
    "SELECT DISTINCT f.v FROM unnest(%(v)s::int4[], %(lon)s::float8[], %(lat)s::float8[],"
    " %(cls)s::text[]) AS f(v, lon, lat, cls)"
    " CROSS JOIN LATERAL (SELECT ST_SetSRID(ST_MakePoint(f.lon, f.lat), 4326) AS g) pt"
    " WHERE EXISTS (SELECT 1 FROM roads r"
    " WHERE r.road_class = ANY(string_to_array(f.cls, ','))"
    " AND ST_DWithin(r.geom, pt.g, %(snap)s / (111320.0 * cos(radians(f.lat))))"
    " AND ST_DWithin(r.geom::geography, pt.g::geography, %(snap)s))"
)


async def _on_closed_roads(
    conn: AsyncConnection[Any], stored: Stored, rules: TankerRules
) -> set[int]:
    """The vehicles with a new fix near a road of a class closed at the fix's time."""
    road_hours = closed_road_hours(rules)
    if not road_hours:
        return set()
    closed = [active_at(h, stored.t, rules.timezone) for h in road_hours.values()]
    pick = np.flatnonzero(np.logical_or.reduce(closed))
    if not len(pick):
        return set()
    classes = list(road_hours)
    shut = [
        ",".join(c for c, mask in zip(classes, closed, strict=True) if mask[i])
        for i in pick.tolist()
    ]
    rows = {"v": stored.vehicle_id[pick], "lon": stored.lon[pick], "lat": stored.lat[pick]}
    cur = conn.cursor(row_factory=tuple_row)
    await cur.execute(_ON_ROADS, {**rows, "cls": shut, "snap": rules.road_snap_m})
    return {int(r[0]) for r in await cur.fetchall()}


async def _watched(
    conn: AsyncConnection[Any], stored: Stored, rules: TankerRules
) -> tuple[dict[int, tuple[int, int]], set[int], list[Known]]:
    """The vehicles to judge, each with the span of its history to read, and those of them
    whose road classes are judged: a new fix in a restricted zone while it is closed, or on a
    road class in its closed hours, or an alert of this rule the new fixes may change."""
    spans = stored.spans
    vs = sorted(spans)
    boxed = await _in_boxes(conn, stored)
    params: dict[str, Any] = {
        "v": vs,
        "t0": [spans[v][0] for v in vs],
        "t1": [spans[v][1] for v in vs],
        "fv": stored.vehicle_id[boxed],
        "ft": stored.t[boxed],
        "flon": stored.lon[boxed],
        "flat": stored.lat[boxed],
        "rule": RULE,
    }
    cur = conn.cursor(row_factory=tuple_row)
    await cur.execute(_WATCH, params)
    span: dict[int, tuple[int, int]] = {}
    on_roads: set[int] = set()
    back = max(LOOKBACK_US, int(2e6 * rules.restricted_min_s))

    known: list[Known] = []
    rows = await cur.fetchall()
    # Reads start ``back`` before the new fixes — or, for a vehicle whose open episode ended at
    # or before them (live data), at that episode's last fix: the run goes on from there and
    # ``episodes`` keeps its start, so a vehicle parked inside for hours costs the same each
    # batch. A back-filled fix reaching into an episode reads to ``back`` past its end.
    since: dict[int, int] = {}
    for v, _, zone_id, _, start, end, alert in rows:
        if not alert:
            continue
        v, start, end = int(v), int(start), int(end)
        known.append(Known(v, None if zone_id is None else int(zone_id), start, end))
        if zone_id is None:
            on_roads.add(v)
        t0, t1 = spans[v]
        lo, hi = span.get(v, (t0 - back, t1 + back))
        if end <= t0:
            since[v] = min(since.get(v, end), end)
        span[v] = (lo, max(hi, end + back))

    def watch(v: int) -> None:
        span.setdefault(v, (spans[v][0] - back, spans[v][1] + back))

    hits: dict[str | None, list[tuple[int, int]]] = {}
    for v, t, _, hours, *_, alert in rows:
        if not alert:
            hits.setdefault(hours, []).append((int(v), int(t)))
    for hours, found in hits.items():  # inside, but closed at that time?
        closed = active_at(hours, np.array([t for _, t in found]), rules.timezone)
        for (v, _), shut in zip(found, closed, strict=True):
            if shut:
                watch(v)
    on_roads |= await _on_closed_roads(conn, stored, rules)
    for v in on_roads:
        watch(v)
    for v, end in since.items():
        lo, hi = span[v]
        if not any(a.vehicle_id == v and a.end > spans[v][0] for a in known):
            span[v] = (end, hi)
    return span, on_roads, known


async def judge(conn: AsyncConnection[Any], stored: Stored, rules: TankerRules) -> AlertChanges:
    """Open, extend or end the restricted-hours alerts the newly stored fixes touch."""
    spans = stored.spans
    if not spans:
        return AlertChanges()
    read, on_roads, known = await _watched(conn, stored, rules)
    if not read:
        return AlertChanges()
    road_hours = closed_road_hours(rules)
    order = sorted(read)
    cur = conn.cursor(row_factory=tuple_row)
    await cur.execute(
        _FIXES,
        {
            "v": order,
            "t0": [read[v][0] for v in order],
            "t1": [read[v][1] for v in order],
            "roads": [v in on_roads for v in order],
            "closed": sorted(road_hours),
            "snap": rules.road_snap_m,
        },
    )
    rows = await cur.fetchall()
    zone_ids = sorted({int(z) for r in rows for z in (r[4] or ())})
    zones: dict[int, RestrictedZone] = {}
    if zone_ids:
        await cur.execute(_ZONES, {"ids": zone_ids})
        zones = {int(r[0]): RestrictedZone(int(r[0]), *r[1:]) for r in await cur.fetchall()}
    # Closed or open at each fix's time: once per distinct hours string, vectorised.
    t = np.array([int(r[1]) for r in rows], dtype=np.int64)
    closed_at: dict[str | None, np.ndarray] = {}
    for hours in {z.active_hours for z in zones.values()} | set(road_hours.values()):
        closed_at[hours] = active_at(hours, t, rules.timezone)
    by_vehicle: dict[int, list[Fix]] = {}
    for i, (v, ts, lon, lat, ids, cls, name, open_near) in enumerate(rows):
        shut = tuple(int(z) for z in ids or () if closed_at[zones[int(z)].active_hours][i])
        on = cls in road_hours and not open_near and closed_at[road_hours[cls]][i]
        fix = Fix(int(ts), float(lon), float(lat), shut, cls if on else None, name)
        by_vehicle.setdefault(int(v), []).append(fix)
    cands: list[Candidate] = []
    for v, fixes in by_vehicle.items():
        mine = {z: zones[z] for f in fixes for z in f.zones}
        roads = road_hours if v in on_roads else {}
        t0, t1 = spans[v]
        earlier = {
            a.zone_id: a.start for a in known if a.vehicle_id == v and a.start < fixes[0].t <= a.end
        }
        cands += episodes(v, fixes, t0, t1, mine, roads, rules.restricted_min_s, earlier)
    return await merge(conn, cands, [None] * len(cands), rules)


MODEL = WarningModel(
    "restricted_hours",
    (RULE,),
    "Road Traffic Safety Law art. 48 and the 2019 road hazmat transport measures: city"
    " closures by zone (hazmat_restricted zones' active_hours) and road class"
    " (GEORISK_TANKER_RESTRICTED_ROADS)",
    judge,
)
