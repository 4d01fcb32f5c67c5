"""``no_escort``: a hazmat load on the road without an escort (issue 14 item 3;
docs/transport.md §8).

Source: the Ministry of Transport's rules on road transport of dangerous goods (2019) — a road
hazmat vehicle carries an escort (押运员) besides the driver. Exempt classes:
:attr:`TankerRules.escort_exempt_classes` (``GEORISK_TANKER_ESCORT_EXEMPT_CLASSES``, none by
default); a class listed exempts its divisions too (``"2"`` exempts ``"2.2"``).

This module judges waybills: one alert per waybill trip whose waybill names no escort, from
the moment it went into transit until it is delivered (the episode's end stays at its start
while the trip goes on, so the alert is written once, not on every batch, and closed once on
delivery). A loaded vehicle with no waybill at all has no escort on record either:
``unwaybilled.py`` raises this rule for its trips. A batch whose vehicles have no waybill in
transit costs one indexed query.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, Final

from psycopg import AsyncConnection

from layers.transport.config import TankerRules
from layers.transport.parking import Candidate
from layers.transport.warnings import chain
from layers.transport.warnings.chain import Found, Waybill
from layers.transport.warnings.model import WarningModel

RULE: Final = "no_escort"


def exempt(hazmat_class: str | None, rules: TankerRules) -> bool:
    """Whether a load of this class may travel without an escort."""
    if hazmat_class is None:
        return False
    return any(
        hazmat_class == c or hazmat_class.startswith(c + ".") for c in rules.escort_exempt_classes
    )


def judge_trip(
    w: Waybill, fixes: Sequence[tuple[int, float, float]], rules: TankerRules
) -> Candidate | None:
    """The alert of a waybill's trip, given the batch's fixes of its vehicle (t µs, lon,
    lat, any order); None when it has an escort, is exempt, or no fix falls in its transit."""
    if w.escort_id is not None or w.transit_from is None or exempt(w.hazmat_class, rules):
        return None
    done = w.active_to != chain.NEVER
    # Fixes after the delivery still close the trip's alert (delivered through the API).
    inside = [f for f in fixes if w.in_transit_at(f[0])] or (list(fixes) if done else [])
    if not inside:
        return None
    _, lon, lat = min(inside)
    details = {
        "waybill": w.code,
        "waybill_id": w.id,
        "hazmat_class": w.hazmat_class,
        "un_number": w.un_number,
        "substance": w.substance,
        "driver_id": w.driver_id,
        "escort": None,
    }
    end = w.active_to if done else w.transit_from
    return Candidate(
        w.vehicle_id, RULE, None, w.transit_from, end, not done, lon, lat, "moderate",
        details=details,
    )  # fmt: skip


async def find(conn: AsyncConnection[Any], batch: chain.Batch, rules: TankerRules) -> Found:
    """The no-escort alerts of a batch's waybill trips."""
    out = Found()
    bills = await batch.waybills(conn)
    lonely = {v: [w for w in ws if w.escort_id is None] for v, ws in bills.items()}
    if not any(lonely.values()):
        return out
    fixes: dict[int, list[tuple[int, float, float]]] = {}
    fx = batch.stored
    idx = fx.rows_of([v for v, ws in lonely.items() if ws])
    for v, t, lon, lat in zip(
        fx.vehicle_id[idx].tolist(), fx.t[idx].tolist(), fx.lon[idx].tolist(),
        fx.lat[idx].tolist(), strict=True,
    ):  # fmt: skip
        fixes.setdefault(v, []).append((t, lon, lat))
    for v, ws in lonely.items():
        for w in ws:
            c = judge_trip(w, fixes.get(v, []), rules)
            if c is not None:
                out.add([c])
    return out


judge = chain.judge_of(find)


MODEL = WarningModel(
    "escort",
    (RULE,),
    "Road transport of dangerous goods rules (Ministry of Transport, 2019): an escort on "
    "every road hazmat vehicle; exempt classes GEORISK_TANKER_ESCORT_EXEMPT_CLASSES",
    judge,
)
