"""An electronic waybill's lifecycle: the allowed steps, the parties' events, the history.

planned → loading → in_transit → delivered; planned or loading → cancelled (a load on the road
is delivered, never cancelled). Nothing else: any other step is a :class:`TransitionRefused`
naming it (a 409). Entering ``loading`` runs the loading party's checks
(``layers/transport/qualifications.py``): a load that fails them is refused with every failure
listed (:class:`LoadingRefused`) and the refusal is recorded as a ``loading_refused`` event.

Events and who posts them (docs/transport.md §3):

==============  =========================  ==================
event           step                       posted by
==============  =========================  ==================
``loading``     planned → loading          the loading party
``loaded``      loading → in_transit       the loading party
``unloading``   in_transit (no change)     the consignee
``unloaded``    in_transit → delivered     the consignee
==============  =========================  ==================

Every step and event is a row of ``waybill_events`` (audited, migration 0017) and a change
notice for the ``waybills`` layer. The same steps are derived from a stop of the vehicle at
the declared site (``layers/transport/site_events.py``, ``source = 'derived'``).
"""

from __future__ import annotations

import datetime as dt
import json
from dataclasses import dataclass
from typing import Any, Final
from zoneinfo import ZoneInfo

from psycopg import AsyncConnection
from psycopg.rows import dict_row

from layers.core.changes import notify_change
from layers.core.errors import FieldError, NotFound, TransitionRefused
from layers.transport.config import TankerRules
from layers.transport.qualifications import Failure, judge, loading_facts
from layers.transport.warnings import loading_checks

#: The allowed steps of the lifecycle.
TRANSITIONS: Final[dict[str, tuple[str, ...]]] = {
    "planned": ("loading", "cancelled"),
    "loading": ("in_transit", "cancelled"),
    "in_transit": ("delivered",),
    "delivered": (),
    "cancelled": (),
}
#: Party event → (the state it needs, the state it leads to, the waybill column naming the
#: enterprise that posts it).
EVENTS: Final[dict[str, tuple[str, str, str]]] = {
    "loading": ("planned", "loading", "loading_party_id"),
    "loaded": ("loading", "in_transit", "loading_party_id"),
    "unloading": ("in_transit", "in_transit", "consignee_id"),
    "unloaded": ("in_transit", "delivered", "consignee_id"),
}
PARTY_EVENTS: Final = tuple(EVENTS)


class LoadingRefused(TransitionRefused):
    """The loading party's checks failed: nothing moves, the refusal is recorded."""

    def __init__(self, waybill_id: int, failures: list[Failure]) -> None:
        reasons = "; ".join(f.reason for f in failures)
        super().__init__(
            f"waybill {waybill_id}: loading refused: {reasons}",
            [FieldError(f.field, f.reason) for f in failures],
            current="planned",
            wanted="loading",
        )
        self.failures = failures


@dataclass(frozen=True)
class Step:
    """One step asked of a waybill: an event kind (or ``transition``) and where it leads."""

    kind: str
    to_state: str
    at: dt.datetime
    actor: str
    source: str  # party, api or derived
    lon: float | None = None
    lat: float | None = None
    note: str | None = None


_WAYBILL_SQL: Final = (
    "SELECT w.id, w.code, w.state, w.carrier_id, w.shipper_id, w.loading_party_id, w.consignee_id,"
    " c.district"
    " FROM waybills w LEFT JOIN enterprises c ON c.id = w.carrier_id WHERE w.id = %s"
)


async def waybill_parties(
    conn: AsyncConnection[Any], waybill_id: int, lock: bool = False
) -> dict[str, Any]:
    """The waybill's state, parties and carrier district (``lock``: for the step to come)."""
    async with conn.cursor(row_factory=dict_row) as cur:
        await cur.execute(_WAYBILL_SQL + (" FOR UPDATE OF w" if lock else ""), (waybill_id,))
        row = await cur.fetchone()
    if row is None:
        raise NotFound(f"waybill {waybill_id} not found", [FieldError("id", "no waybill")])
    return row


def refuse_step(waybill_id: int, current: str, wanted: str, field: str = "to") -> None:
    """Raise :class:`TransitionRefused` unless ``current → wanted`` is allowed."""
    allowed = TRANSITIONS.get(current, ())
    if wanted in allowed:
        return
    options = ", ".join(allowed) or "none (final state)"
    reason = f"{current} → {wanted} is not allowed; from {current}: {options}"
    raise TransitionRefused(
        f"waybill {waybill_id}: {reason}",
        [FieldError(field, reason)],
        current=current,
        wanted=wanted,
    )


def local_day(at: dt.datetime, timezone: str) -> dt.date:
    return at.astimezone(ZoneInfo(timezone)).date()


async def _record(
    conn: AsyncConnection[Any],
    waybill_id: int,
    step: Step,
    from_state: str,
    to_state: str,
    failures: list[Failure] | None = None,
) -> dict[str, Any]:
    geom = (
        "ST_SetSRID(ST_MakePoint(%(lon)s, %(lat)s), 4326)"
        if step.lon is not None and step.lat is not None
        else "NULL"
    )
    async with conn.cursor(row_factory=dict_row) as cur:
        await cur.execute(
            "INSERT INTO waybill_events (waybill_id, kind, from_state, to_state, at, geom,"
            " source, actor, failures, note) VALUES (%(w)s, %(kind)s, %(from)s, %(to)s, %(at)s,"
            f" {geom}, %(source)s, %(actor)s, %(failures)s::jsonb, %(note)s)"
            " RETURNING id, kind, from_state, to_state, at, source, actor, failures, note,"
            " ST_X(geom) AS lon, ST_Y(geom) AS lat",
            {
                "w": waybill_id,
                "kind": step.kind if not failures else "loading_refused",
                "from": from_state,
                "to": to_state,
                "at": step.at,
                "lon": step.lon,
                "lat": step.lat,
                "source": step.source,
                "actor": step.actor,
                "failures": (
                    json.dumps([f.as_dict() for f in failures]) if failures is not None else None
                ),
                "note": step.note,
            },
        )
        row = await cur.fetchone()
    assert row is not None
    return row


async def apply_step(
    conn: AsyncConnection[Any], waybill_id: int, step: Step, rules: TankerRules
) -> dict[str, Any]:
    """Move a waybill one step (locked first, so two parties cannot race); the event row.

    Entering ``loading`` runs the loading checks on the loading's local day: on failure the
    refusal is recorded, the ``loading_check_failed`` alert raised
    (``warnings/loading_checks.py``) and :class:`LoadingRefused` raised — the caller commits
    before answering, so the record and the alert stay while the step does not happen."""
    row = await waybill_parties(conn, waybill_id, lock=True)
    current = row["state"]
    if step.kind in EVENTS:
        needed = EVENTS[step.kind][0]
        if current != needed:
            reason = f"a {step.kind} event needs a {needed} waybill; this one is {current}"
            raise TransitionRefused(
                f"waybill {waybill_id}: {reason}",
                [FieldError("kind", reason)],
                current=current,
                wanted=step.to_state,
            )
    else:
        refuse_step(waybill_id, current, step.to_state)
    if step.to_state == "loading":
        failures = judge(await loading_facts(conn, waybill_id), local_day(step.at, rules.timezone))
        if failures:
            await _record(conn, waybill_id, step, current, current, failures)
            await loading_checks.refused(
                conn, waybill_id, row["code"], step.at, step.lon, step.lat, step.source,
                failures, rules,
            )  # fmt: skip
            await notify_change(conn, "waybills", "waybills", [waybill_id])
            raise LoadingRefused(waybill_id, failures)
    if step.to_state != current:
        await conn.execute(
            "UPDATE waybills SET state = %s, state_changed_at = %s WHERE id = %s",
            (step.to_state, step.at, waybill_id),
        )
    event = await _record(conn, waybill_id, step, current, step.to_state)
    await notify_change(conn, "waybills", "waybills", [waybill_id])
    return event


async def list_events(conn: AsyncConnection[Any], waybill_id: int) -> list[dict[str, Any]]:
    """A waybill's history, oldest first."""
    async with conn.cursor(row_factory=dict_row) as cur:
        await cur.execute(
            "SELECT id, kind, from_state, to_state, at, source, actor, failures, note,"
            " ST_X(geom) AS lon, ST_Y(geom) AS lat FROM waybill_events"
            " WHERE waybill_id = %s ORDER BY at, id",
            (waybill_id,),
        )
        return await cur.fetchall()
