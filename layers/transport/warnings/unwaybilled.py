"""``moving_without_waybill`` — and, for the same inferred loads, ``loading_check_failed`` on
expired papers and ``no_escort`` (issue 14 item 3; docs/transport.md §8).

Source: the Ministry of Transport's rules on road transport of dangerous goods (2019) — every
hazmat shipment travels under an electronic waybill naming the vehicle, its driver and escort;
the loading party checks the papers before loading. Thresholds are product defaults:
:attr:`TankerRules.unwaybilled_min_s` (``GEORISK_TANKER_UNWAYBILLED_MIN_S``, 5 min) and
:attr:`TankerRules.unwaybilled_min_m` (``GEORISK_TANKER_UNWAYBILLED_MIN_M``, 2 km from the
loading stop) — a tanker shunting inside a plant or to the gate is not yet on the road.

Loaded trips are inferred from stops at hazmat sites (``trips.py``). A trip is *covered* when
a waybill of the vehicle was active (loading or in transit, ``chain.py``) when it departed.
An uncovered trip is one episode, from leaving the loading stop to the unloading stop or to
the moment a waybill of the vehicle was activated, whichever comes first; it raises:

* ``moving_without_waybill`` once the vehicle has moved loaded at least ``unwaybilled_min_s``
  and got at least ``unwaybilled_min_m`` from the loading stop (details: the loading site,
  the farthest distance, the time moving);
* ``no_escort`` for the same episode (no waybill names an escort), unless the vehicle's
  registered class is in ``escort_exempt_classes``;
* ``loading_check_failed`` for the loading stop itself, when the vehicle's or its carrier's
  papers were expired or missing on the loading's local day (``loading_checks.py``).

A stop whose loading the loading party refused (a ``loading_refused`` event during it) is no
loading: the vehicle left empty, and the refusal raised its own alert. A batch whose vehicles
made no long stop at a hazmat site in the last 24 h costs one query.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Final
from zoneinfo import ZoneInfo

from psycopg import AsyncConnection
from psycopg.rows import tuple_row

from layers.transport.config import TankerRules
from layers.transport.parking import Candidate
from layers.transport.state import ts_sql, us_sql
from layers.transport.warnings import chain, escort, loading_checks
from layers.transport.warnings.chain import Found, Waybill
from layers.transport.warnings.loading_checks import VehiclePapers
from layers.transport.warnings.model import WarningModel
from layers.transport.warnings.trips import Trip, loaded_trips, site_stops

RULE: Final = "moving_without_waybill"
#: A closed stop's last fix may lie this far before the batch that closed it.
_CLOSED_SLACK_US: Final = 3600 * 1_000_000

# Distances from the loading stop on the local tangent plane (under 0.5 % off the geodesic
# within a city, and arithmetic only: a trip's fixes are read on every batch while it lasts).
_MOVES: Final = (
    "SELECT u.k, " + us_sql("max(p.ts)") + ","
    " max(111195.0 * sqrt(power((p.lon - u.lon) * cos(radians(u.lat)), 2)"
    " + power(p.lat - u.lat, 2))),"
    " (array_agg(p.lon ORDER BY p.ts DESC))[1], (array_agg(p.lat ORDER BY p.ts DESC))[1]"
    " FROM unnest(%(k)s::int4[], %(v)s::int4[], %(t0)s::int8[], %(t1)s::int8[],"
    " %(lon)s::float8[], %(lat)s::float8[]) AS u(k, v, t0, t1, lon, lat)"
    " JOIN positions p ON p.vehicle_id = u.v AND p.ts > " + ts_sql("u.t0") + ""
    " AND p.ts <= " + ts_sql("u.t1") + " GROUP BY u.k"
)
_PAPERS: Final = (
    "SELECT v.id, v.plate, v.enterprise_id, c.licence_expiry, v.road_permit_no,"
    " v.road_permit_expiry, v.tank_inspection_expiry, v.hazmat_class"
    " FROM vehicles v LEFT JOIN carriers c ON c.enterprise_id = v.enterprise_id"
    " WHERE v.id = ANY(%(v)s::int4[])"
)


_REFUSED: Final = (
    "SELECT w.vehicle_id, " + us_sql("e.at") + " FROM waybills w"
    " JOIN waybill_events e ON e.waybill_id = w.id AND e.kind = 'loading_refused'"
    " WHERE w.vehicle_id = ANY(%(v)s::int4[]) AND e.at >= " + ts_sql("%(since)s")
)


@dataclass(frozen=True)
class Moves:
    """A trip's movement after its loading stop, read from ``positions``."""

    last_us: int
    max_m: float
    lon: float
    lat: float


def covered(trip: Trip, waybills: Sequence[Waybill]) -> bool:
    """Whether a waybill was active when the trip departed (or, still loading, now)."""
    t = trip.depart_us
    return any(w.active_at(t) for w in waybills)


def refused(trip: Trip, refusals: Sequence[int]) -> bool:
    """Whether the loading party refused a loading during the trip's loading stop."""
    return any(trip.load.start_us <= at <= trip.load.end_us for at in refusals)


def episode_end(trip: Trip, waybills: Sequence[Waybill]) -> int | None:
    """When an uncovered trip stops counting: the unloading stop's start or a waybill's
    activation, the earlier; None while neither happened."""
    ends = [w.active_from for w in waybills if w.active_from > trip.depart_us]
    if trip.unload is not None:
        ends.append(trip.unload.start_us)
    return min(ends) if ends else None


def moving_candidates(
    trip: Trip, end: int | None, moves: Moves, hazmat_class: str | None, rules: TankerRules
) -> list[Candidate]:
    """``moving_without_waybill`` and ``no_escort`` for one uncovered, departed trip."""
    moving_s = (moves.last_us - trip.depart_us) / 1e6
    if moving_s < rules.unwaybilled_min_s or moves.max_m < rules.unwaybilled_min_m:
        return []
    load = trip.load
    details = {
        "loading_site": load.enterprise_name,
        "loading_enterprise_id": load.enterprise_id,
        "loading_stop_start": dt.datetime.fromtimestamp(load.start_us / 1e6, dt.UTC).isoformat(),
        "moving_s": moving_s,
        "max_distance_m": round(moves.max_m, 1),
        "waybill": None,
    }
    if trip.unload is not None and end == trip.unload.start_us:
        details["unloading_site"] = trip.unload.enterprise_name
    args = (trip.depart_us, moves.last_us, end is None, moves.lon, moves.lat)
    out = [Candidate(load.vehicle_id, RULE, None, *args, "severe", details=details)]
    if not escort.exempt(hazmat_class, rules):
        lonely = {**details, "escort": None, "reason": "no waybill names an escort"}
        out.append(Candidate(load.vehicle_id, escort.RULE, None, *args, "moderate", details=lonely))
    return out


def papers_candidate(trip: Trip, papers: VehiclePapers, rules: TankerRules) -> Candidate | None:
    """``loading_check_failed`` for an uncovered loading with expired or missing papers."""
    load = trip.load
    day = dt.datetime.fromtimestamp(load.start_us / 1e6, ZoneInfo(rules.timezone)).date()
    failures = loading_checks.vehicle_failures(papers, day)
    if not failures:
        return None
    details = {
        "waybill": None,
        "loading_site": load.enterprise_name,
        "loading_enterprise_id": load.enterprise_id,
        "loading_day": day.isoformat(),
        **loading_checks.failures_details(failures),
    }
    return Candidate(
        load.vehicle_id, loading_checks.RULE, None, load.start_us, load.end_us, load.is_open,
        load.lon, load.lat, "moderate", details=details,
    )  # fmt: skip


async def find(conn: AsyncConnection[Any], batch: chain.Batch, rules: TankerRules) -> Found:
    """The alerts of the uncovered loaded trips a batch may have changed."""
    out = Found()
    span, since = batch.span, batch.since
    if not span:
        return out
    # Stops after the batch count too: a back-filled loading meets its stored unloading.
    until = max(hi for _, hi in span.values()) + chain.LOOKBACK_US
    stops = await site_stops(conn, sorted(span), since, until, rules)
    trips: dict[int, list[Trip]] = {}
    for v, ss in stops.items():
        lo = span[v][0] - _CLOSED_SLACK_US
        # Trips the batch may have changed: still going on, or ended within its reach.
        mine = [
            t
            for t in loaded_trips(ss)
            if t.unload is None or t.unload.end_us >= lo or t.load.end_us >= lo
        ]
        if mine:
            trips[v] = mine
    if not trips:
        return out
    bills = await batch.waybills(conn)
    open_trips = [t for v, ts in trips.items() for t in ts if not covered(t, bills.get(v, []))]
    if not open_trips:
        return out
    cur = conn.cursor(row_factory=tuple_row)
    # A stop whose loading the loading party refused is no loading (its alert is raised by
    # the refusal, loading_checks.refused).
    loaders = sorted({t.load.vehicle_id for t in open_trips})
    await cur.execute(_REFUSED, {"v": loaders, "since": since})
    refusals: dict[int, list[int]] = {}
    for v, at in await cur.fetchall():
        refusals.setdefault(int(v), []).append(int(at))
    open_trips = [t for t in open_trips if not refused(t, refusals.get(t.load.vehicle_id, []))]
    if not open_trips:
        return out
    await cur.execute(_PAPERS, {"v": sorted({t.load.vehicle_id for t in open_trips})})
    papers, classes = {}, {}
    for r in await cur.fetchall():
        papers[int(r[0])] = VehiclePapers(int(r[0]), *r[1:7])
        classes[int(r[0])] = r[7]
    departed: list[tuple[Trip, int | None]] = []
    for t in open_trips:
        v = t.load.vehicle_id
        got = papers_candidate(t, papers[v], rules)
        if got is not None:
            out.add([got], t.load.id)
        if t.departed:
            departed.append((t, episode_end(t, bills.get(v, []))))
    if departed:
        params: dict[str, list[Any]] = {"k": [], "v": [], "t0": [], "t1": [], "lon": [], "lat": []}
        for k, (t, end) in enumerate(departed):
            params["k"].append(k)
            params["v"].append(t.load.vehicle_id)
            params["t0"].append(t.depart_us)
            later = span[t.load.vehicle_id][1] + chain.LOOKBACK_US  # fixes already stored
            params["t1"].append(end if end is not None else later)
            params["lon"].append(t.load.lon)
            params["lat"].append(t.load.lat)
        await cur.execute(_MOVES, params)
        for k, last, far, lon, lat in await cur.fetchall():
            t, end = departed[int(k)]
            moves = Moves(int(last), float(far), float(lon), float(lat))
            out.add(moving_candidates(t, end, moves, classes[t.load.vehicle_id], rules))
    return out


judge = chain.judge_of(find)


MODEL = WarningModel(
    "unwaybilled",
    (RULE, escort.RULE, loading_checks.RULE),
    "Road transport of dangerous goods rules (Ministry of Transport, 2019): a waybill for "
    "every shipment, an escort, the loading party's checks; thresholds product defaults",
    judge,
)
