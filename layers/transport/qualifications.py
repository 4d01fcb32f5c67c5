"""The loading party's checks before a hazmat load (issue 14; docs/transport.md §4).

Source: the Ministry of Transport's rules on road transport of dangerous goods (2019) — before
loading, the loading party checks the vehicle's road transport permit and tank inspection, the
driver's and the escort's qualification certificates and the waybill, and refuses to load when
any is missing or expired (docs/domain.md §3.1). We also check the carrier's road transport
licence, which the permit depends on.

:func:`judge` is the rule, pure: facts about one waybill on one day → every failure with its
reason (not just the first), so a refused loading names all of them. :func:`loading_facts`
reads those facts for a waybill. The loading event (``layers/transport/waybills.py``) uses both;
the later "loading with an expired or missing qualification / without a waybill" warning model
reuses :func:`judge` on the facts of a vehicle seen loading.

A document is valid through its expiry date (expired from the day after), judged on the local
calendar day of the loading (``Asia/Shanghai`` by default).
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import Any, Final

from psycopg import AsyncConnection
from psycopg.rows import dict_row

#: The checks, in the order a refusal lists them: the check's name → the field it concerns.
CHECKS: Final = {
    "waybill": "waybill",
    "waybill_state": "state",
    "carrier_licence": "carrier.licence_expiry",
    "vehicle_carrier": "vehicle.carrier_id",
    "road_permit": "vehicle.road_permit_expiry",
    "tank_inspection": "vehicle.tank_inspection_expiry",
    "driver_qualification": "driver.certificate_expiry",
    "escort": "escort_id",
    "escort_qualification": "escort.certificate_expiry",
}


@dataclass(frozen=True)
class Failure:
    """One failed check: its name (a key of :data:`CHECKS`), the field at fault and why."""

    check: str
    field: str
    reason: str

    def as_dict(self) -> dict[str, str]:
        return {"check": self.check, "field": self.field, "reason": self.reason}


@dataclass(frozen=True)
class LoadingFacts:
    """What the checks look at for one waybill (None: not on record)."""

    waybill_id: int
    state: str
    carrier_id: int
    carrier_licence_expiry: dt.date | None
    vehicle_plate: str
    vehicle_carrier_id: int | None
    road_permit_no: str | None
    road_permit_expiry: dt.date | None
    tank_inspection_expiry: dt.date | None
    driver_certificate_expiry: dt.date | None
    escort_id: int | None
    escort_certificate_expiry: dt.date | None


def _document(
    check: str, what: str, expiry: dt.date | None, day: dt.date, number: str | None = ""
) -> Failure | None:
    if expiry is None or number is None:
        return Failure(check, CHECKS[check], f"{what}: missing")
    if expiry < day:
        return Failure(check, CHECKS[check], f"{what}: expired on {expiry.isoformat()}")
    return None


def judge(facts: LoadingFacts | None, day: dt.date) -> list[Failure]:
    """Every reason the loading party must refuse this load on ``day`` (empty: load)."""
    if facts is None:
        return [Failure("waybill", CHECKS["waybill"], "no electronic waybill for this load")]
    out: list[Failure] = []
    if facts.state != "planned":
        reason = f"the waybill is {facts.state}, not planned"
        out.append(Failure("waybill_state", CHECKS["waybill_state"], reason))
    found = [
        _document(
            "carrier_licence", "carrier's road transport licence", facts.carrier_licence_expiry, day
        ),
    ]
    if facts.vehicle_carrier_id != facts.carrier_id:
        reason = f"vehicle {facts.vehicle_plate} is not registered to carrier {facts.carrier_id}"
        out.append(Failure("vehicle_carrier", CHECKS["vehicle_carrier"], reason))
    found += [
        _document(
            "road_permit",
            f"road transport permit of {facts.vehicle_plate}",
            facts.road_permit_expiry,
            day,
            facts.road_permit_no,
        ),
        _document(
            "tank_inspection",
            f"tank inspection of {facts.vehicle_plate}",
            facts.tank_inspection_expiry,
            day,
        ),
        _document(
            "driver_qualification",
            "driver's qualification certificate",
            facts.driver_certificate_expiry,
            day,
        ),
    ]
    out += [f for f in found if f is not None]
    if facts.escort_id is None:
        out.append(Failure("escort", CHECKS["escort"], "no escort named on the waybill"))
    else:
        escort = _document(
            "escort_qualification",
            "escort's qualification certificate",
            facts.escort_certificate_expiry,
            day,
        )
        if escort is not None:
            out.append(escort)
    order = list(CHECKS)
    return sorted(out, key=lambda f: order.index(f.check))


_FACTS_SQL: Final = """
SELECT w.id AS waybill_id, w.state, w.carrier_id, c.licence_expiry AS carrier_licence_expiry,
       v.plate AS vehicle_plate, v.enterprise_id AS vehicle_carrier_id, v.road_permit_no,
       v.road_permit_expiry, v.tank_inspection_expiry,
       d.certificate_expiry AS driver_certificate_expiry,
       w.escort_id, es.certificate_expiry AS escort_certificate_expiry
FROM waybills w
JOIN vehicles v ON v.id = w.vehicle_id
JOIN crew_members d ON d.id = w.driver_id
LEFT JOIN crew_members es ON es.id = w.escort_id
LEFT JOIN carriers c ON c.enterprise_id = w.carrier_id
WHERE w.id = %s
"""


async def loading_facts(conn: AsyncConnection[Any], waybill_id: int) -> LoadingFacts | None:
    """The facts :func:`judge` needs about one waybill (None: no such waybill)."""
    async with conn.cursor(row_factory=dict_row) as cur:
        await cur.execute(_FACTS_SQL, (waybill_id,))
        row = await cur.fetchone()
    return None if row is None else LoadingFacts(**row)
