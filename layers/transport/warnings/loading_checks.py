"""``loading_check_failed``: a load the loading party's checks fail (issue 14 item 3;
docs/transport.md §8).

Source: the Ministry of Transport's rules on road transport of dangerous goods (2019) — the
loading party checks the vehicle's road transport permit and tank inspection, the driver's and
escort's qualifications and the waybill, and refuses to load when any is missing or expired;
the checks themselves are ``layers/transport/qualifications.py`` (no threshold of its own).

Two ways in, one alert per vehicle and loading stop:

* a refused loading (:func:`refused`): ``waybills.apply_step`` calls it when it records a
  ``loading_refused`` event — from a party's API event or derived from a stop at the origin
  (``site_events.py``) — in the same transaction. The alert stands at the loading place (the
  event's point, else the vehicle's current stop, else the waybill's origin) and lists every
  failure. Its episode is the stop the vehicle is in, so repeated refusals during one stop
  update the same alert instead of adding one;
* a vehicle seen loading without a waybill event (``unwaybilled.py``: a loaded trip inferred
  from a stop at a producer's, store's or trader's site) whose own papers — the carrier's
  licence, the road transport permit, the tank inspection — are expired or missing on the
  loading's local day (:func:`vehicle_failures`).
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import Any, Final

from psycopg import AsyncConnection
from psycopg.rows import tuple_row

from layers.transport.alerts import AlertChanges, merge
from layers.transport.config import TankerRules
from layers.transport.parking import Candidate
from layers.transport.qualifications import Failure, LoadingFacts, judge
from layers.transport.state import us_sql

RULE: Final = "loading_check_failed"
_EPOCH: Final = dt.datetime(1970, 1, 1, tzinfo=dt.UTC)
#: The checks that concern the vehicle and its carrier only (what can be judged without a
#: waybill naming a crew).
VEHICLE_CHECKS: Final = ("carrier_licence", "road_permit", "tank_inspection")

_PLACE: Final = (
    "SELECT w.vehicle_id, ST_X(w.origin_geom), ST_Y(w.origin_geom), s.id, "
    + us_sql("s.start_ts")
    + ", ST_X(s.geom), ST_Y(s.geom)"
    " FROM waybills w LEFT JOIN LATERAL (SELECT id, start_ts, geom FROM stops"
    " WHERE vehicle_id = w.vehicle_id AND start_ts <= %(at)s"
    " AND (is_open OR end_ts >= %(at)s) ORDER BY start_ts DESC LIMIT 1) s ON true"
    " WHERE w.id = %(w)s"
)


@dataclass(frozen=True)
class VehiclePapers:
    """What :func:`vehicle_failures` looks at (None: not on record)."""

    vehicle_id: int
    plate: str
    carrier_id: int | None
    carrier_licence_expiry: dt.date | None
    road_permit_no: str | None
    road_permit_expiry: dt.date | None
    tank_inspection_expiry: dt.date | None


def vehicle_failures(p: VehiclePapers, day: dt.date) -> list[Failure]:
    """The vehicle's and its carrier's expired or missing papers on ``day`` (the loading
    party's checks of :data:`VEHICLE_CHECKS`, judged by ``qualifications.judge``)."""
    facts = LoadingFacts(
        waybill_id=0,
        state="planned",
        carrier_id=p.carrier_id or 0,
        carrier_licence_expiry=p.carrier_licence_expiry,
        vehicle_plate=p.plate,
        vehicle_carrier_id=p.carrier_id or 0,
        road_permit_no=p.road_permit_no,
        road_permit_expiry=p.road_permit_expiry,
        tank_inspection_expiry=p.tank_inspection_expiry,
        driver_certificate_expiry=None,
        escort_id=None,
        escort_certificate_expiry=None,
    )
    return [f for f in judge(facts, day) if f.check in VEHICLE_CHECKS]


def failures_details(failures: list[Failure]) -> dict[str, Any]:
    return {"failures": [f.as_dict() for f in failures], "checks": [f.check for f in failures]}


async def refused(
    conn: AsyncConnection[Any],
    waybill_id: int,
    code: str | None,
    at: dt.datetime,
    lon: float | None,
    lat: float | None,
    source: str,
    failures: list[Failure],
    rules: TankerRules,
) -> AlertChanges:
    """The alert of a refused loading of ``waybill_id`` at ``at`` (see the module's doc)."""
    cur = conn.cursor(row_factory=tuple_row)
    await cur.execute(_PLACE, {"w": waybill_id, "at": at})
    row = await cur.fetchone()
    if row is None:
        return AlertChanges()
    vehicle_id, olon, olat, stop_id, stop_start, slon, slat = row
    at_us = (at - _EPOCH) // dt.timedelta(microseconds=1)
    start = int(stop_start) if stop_id is not None else at_us
    if lon is None or lat is None:
        lon, lat = (slon, slat) if stop_id is not None else (olon, olat)
    details = {
        "waybill": code,
        "waybill_id": waybill_id,
        "refused_at": at.isoformat(),
        "source": source,
        **failures_details(failures),
    }
    cand = Candidate(
        int(vehicle_id), RULE, None, start, max(start, at_us), False, float(lon), float(lat),
        "moderate", details=details,
    )  # fmt: skip
    return await merge(conn, [cand], [stop_id], rules)
