"""Where a vehicle in transit stops: ``undeclared_stop`` and ``wrong_destination`` (issue 14
item 3; docs/transport.md §8).

Source: the Ministry of Transport's rules on road transport of dangerous goods (2019) — the
electronic waybill declares the origin, the destination and the consignee, and the vehicle
goes from one to the other; the thresholds are product defaults (no rule fixes a number):

* ``undeclared_stop``: a stop of at least :attr:`TankerRules.undeclared_stop_max_s`
  (``GEORISK_TANKER_UNDECLARED_STOP_MAX_S``, 30 min) begun while the vehicle's waybill was
  in transit, neither at its origin nor at its destination, nor in designated parking or at a
  washing station (zones holding the stop's centroid, ``parking.zones_at``). Longer than the
  10 min illegal-parking dwell on purpose: this rule is about the trip's plan, not the kerb.
* ``wrong_destination``: a stop of at least :attr:`TankerRules.wrong_destination_min_s`
  (``GEORISK_TANKER_WRONG_DESTINATION_MIN_S``, 15 min — long enough to unload part of a load)
  at the site of a hazmat enterprise other than the declared destination and consignee (and
  the origin it loaded at).

"At" a site: the stop's centroid within :attr:`TankerRules.site_radius_m` of the declared
point or inside the enterprise's site polygon, as ``site_events.py`` decides loadings. One
alert per stop (the episode is the stop: updated while it lasts, closed when the vehicle
leaves); stops are rewritten by the engine's replay on late fixes, and the alert follows by
overlap. A batch whose vehicles have no waybill in transit costs one indexed query.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Final

import numpy as np
from psycopg import AsyncConnection
from psycopg.rows import tuple_row

from layers.transport.config import TankerRules
from layers.transport.parking import Candidate, ZoneHit, zones_at
from layers.transport.state import ts_sql, us_sql
from layers.transport.warnings import chain
from layers.transport.warnings.chain import Found, Site, Waybill
from layers.transport.warnings.model import WarningModel

RULES: Final = ("undeclared_stop", "wrong_destination")
#: Zone kinds where a vehicle in transit may stop as long as it needs.
ALLOWED_ZONE_KINDS: Final = ("designated_parking", "washing_station")
#: A stop closed by this batch may have its last fix in an earlier one.
_CLOSED_SLACK_US: Final = 3600 * 1_000_000

_STOPS: Final = (
    "SELECT s.id, s.vehicle_id, " + us_sql("s.start_ts") + ", " + us_sql("s.end_ts") + ","
    " s.is_open, ST_X(s.geom), ST_Y(s.geom)"
    " FROM unnest(%(v)s::int4[], %(t0)s::int8[], %(t1)s::int8[], %(lo)s::int8[])"
    " AS u(v, t0, t1, lo)"
    " JOIN stops s ON s.vehicle_id = u.v AND s.start_ts >= " + ts_sql("u.t0") + ""
    " AND s.start_ts <= " + ts_sql("u.t1") + " AND s.duration_s >= %(min_s)s"
    " AND s.end_ts >= " + ts_sql("u.lo") + ""
    " ORDER BY s.vehicle_id, s.start_ts"
)


@dataclass(frozen=True)
class StopAt:
    """A stop with what lies under its centroid."""

    id: int
    vehicle_id: int
    start_us: int
    end_us: int
    is_open: bool
    lon: float
    lat: float
    zones: list[ZoneHit]
    sites: list[Site]


def _at_declared(stop: StopAt, w: Waybill, radius_m: float) -> bool:
    here = (stop.lon, stop.lat)
    for place, eid in ((w.origin, w.origin_id), (w.destination, w.destination_id)):
        if chain.metres(here, place) <= radius_m:
            return True
        if eid is not None and any(s.enterprise_id == eid and s.covered for s in stop.sites):
            return True
    return False


def judge_stop(stop: StopAt, w: Waybill, rules: TankerRules) -> list[Candidate]:
    """The alerts one stop of a vehicle whose waybill ``w`` was in transit raises."""
    if not w.in_transit_at(stop.start_us) or _at_declared(stop, w, rules.site_radius_m):
        return []
    duration = (stop.end_us - stop.start_us) / 1e6
    base = {"waybill": w.code, "waybill_id": w.id, "duration_s": duration}
    out = []

    def cand(rule: str, severity: str, details: dict[str, Any]) -> Candidate:
        return Candidate(
            stop.vehicle_id,
            rule,
            None,
            stop.start_us,
            stop.end_us,
            stop.is_open,
            stop.lon,
            stop.lat,
            severity,
            details=base | details,
        )

    allowed = [z for z in stop.zones if z.kind in ALLOWED_ZONE_KINDS]
    if duration >= rules.undeclared_stop_max_s and not allowed:
        out.append(cand("undeclared_stop", "moderate", {"allowed_s": rules.undeclared_stop_max_s}))
    declared = {w.destination_id, w.consignee_id, w.origin_id}
    found = [s for s in stop.sites if s.enterprise_id not in declared]
    if duration >= rules.wrong_destination_min_s and found:
        site = found[0]
        details = {
            "enterprise_id": site.enterprise_id,
            "enterprise_name": site.name,
            "consignee_id": w.consignee_id,
            "consignee_name": w.consignee_name,
            "destination_id": w.destination_id,
            "hazmat_class": w.hazmat_class,
            "un_number": w.un_number,
        }
        out.append(cand("wrong_destination", "severe", details))
    return out


async def find(conn: AsyncConnection[Any], batch: chain.Batch, rules: TankerRules) -> Found:
    """The stop alerts of a batch's vehicles whose waybill was in transit."""
    out = Found()
    bills = await batch.waybills(conn)
    moving = {v: [w for w in ws if w.transit_from is not None] for v, ws in bills.items()}
    vehicles = sorted(v for v, ws in moving.items() if ws)
    if not vehicles:
        return out
    span = batch.span
    params = {
        "v": vehicles,
        # Stops begun while a waybill was in transit that this batch may have changed.
        "t0": [max(min(w.transit_from or 0 for w in moving[v]), span[v][0] - chain.LOOKBACK_US)
               for v in vehicles],
        "t1": [span[v][1] for v in vehicles],
        "lo": [span[v][0] - _CLOSED_SLACK_US for v in vehicles],
        "min_s": min(rules.undeclared_stop_max_s, rules.wrong_destination_min_s),
    }  # fmt: skip
    cur = conn.cursor(row_factory=tuple_row)
    await cur.execute(_STOPS, params)
    rows = await cur.fetchall()
    if not rows:
        return out
    lon = [float(r[5]) for r in rows]
    lat = [float(r[6]) for r in rows]
    zones = await zones_at(conn, np.array(lon), np.array(lat))
    sites = await chain.sites_at(conn, lon, lat, rules.site_radius_m)
    for k, (r, z, s) in enumerate(zip(rows, zones, sites, strict=True)):
        stop = StopAt(int(r[0]), int(r[1]), int(r[2]), int(r[3]), bool(r[4]), lon[k], lat[k], z, s)
        for w in moving[stop.vehicle_id]:
            out.add(judge_stop(stop, w, rules), stop.id)
    return out


judge = chain.judge_of(find)


MODEL = WarningModel(
    "waybill_stops",
    RULES,
    "Road transport of dangerous goods rules (Ministry of Transport, 2019): the waybill's "
    "declared origin, destination and consignee; durations are product defaults",
    judge,
)
