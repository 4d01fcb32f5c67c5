"""Row-level checks: may this caller see this enterprise, alert, alarm, unit, district?

The rules are ``layers/access/roles.py``'s; this module fetches what they need (an object's
enterprise and district) and turns "no" into the HTTP answers: 404 when the object does not
exist at all, 403 when it exists and is someone else's.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Annotated, Any, Final

from fastapi import Depends, Path
from psycopg import AsyncConnection

from geo_api.auth import Caller, CurrentCaller
from geo_api.db import DbConn
from geo_api.errors import FieldError, Forbidden, NotFound
from layers.access import roles as access

#: Object kind → SQL giving (enterprise id, district) of one object by id.
_OWNER_SQL: Final = {
    "enterprise": "SELECT e.id, e.district FROM enterprises e WHERE e.id = %s",
    "risk unit": "SELECT e.id, e.district FROM risk_units u"
    " JOIN enterprises e ON e.id = u.enterprise_id WHERE u.id = %s",
    "hidden danger": "SELECT e.id, e.district FROM hidden_dangers d"
    " JOIN enterprises e ON e.id = d.enterprise_id WHERE d.id = %s",
    "inspection task": "SELECT e.id, e.district FROM inspection_tasks t"
    " JOIN enterprises e ON e.id = t.enterprise_id WHERE t.id = %s",
    "alarm": "SELECT h.enterprise_id, coalesce(e.district, pl.district) FROM alarms a"
    " JOIN monitoring_points mp ON mp.id = a.point_id"
    " LEFT JOIN hazard_sources h ON h.id = mp.hazard_source_id"
    " LEFT JOIN enterprises e ON e.id = h.enterprise_id"
    " LEFT JOIN pipelines pl ON pl.id = mp.pipeline_id WHERE a.id = %s",
    # An alert's "enterprise" is its carrier, when the route tells the carrier (migration 0019).
    "alert": "SELECT CASE WHEN a.carrier_notified THEN a.enterprise_id END, a.district"
    " FROM alerts a WHERE a.id = %s",
    "vehicle": "SELECT v.enterprise_id, v.district FROM vehicles v WHERE v.id = %s",
}


#: Batch key column → SQL giving (id, district, carrier) of the batch's existing objects, for
#: an ingest key's scope: a vehicle's registered district and carrier; a monitoring point's
#: district is its enterprise's, or its pipeline's.
_INGEST_SQL: Final = {
    "vehicle_id": "SELECT v.id, v.district, v.carrier FROM vehicles v WHERE v.id = ANY(%s)",
    "point_id": "SELECT mp.id, coalesce(e.district, pl.district), NULL FROM monitoring_points mp"
    " LEFT JOIN hazard_sources h ON h.id = mp.hazard_source_id"
    " LEFT JOIN enterprises e ON e.id = h.enterprise_id"
    " LEFT JOIN pipelines pl ON pl.id = mp.pipeline_id WHERE mp.id = ANY(%s)",
}


async def check_ingest_scope(
    conn: AsyncConnection[Any],
    caller: Caller,
    key: str,
    noun: str,
    ids: Sequence[int],
    index: Sequence[int],
) -> None:
    """An ingest key posts rows of its own districts' and carriers' objects only: a 403 for the
    whole batch (nothing of it is stored) naming the first row outside them — its ``key``
    column and its ``index`` in the body. Unknown ids are left to the pipeline's per-row
    rejection ("unknown vehicle 7"), as for any other caller."""
    if caller.role != access.INGEST or (caller.districts is None and caller.carriers is None):
        return
    cur = await conn.execute(_INGEST_SQL[key], (sorted(set(ids)),))
    outside = set()
    for object_id, district, carrier in await cur.fetchall():
        if key == "vehicle_id":
            ok = access.ingests_fix(caller.districts, caller.carriers, district, carrier)
        else:
            ok = access.ingests_reading(caller.districts, caller.carriers, district)
        if not ok:
            outside.add(object_id)
    if not outside:
        return
    first = next(i for i, object_id in enumerate(ids) if object_id in outside)
    row = int(index[first])
    reason = f"row {row}: {noun} {ids[first]} is outside this ingest key's districts or carriers"
    raise Forbidden(f"{key}: {reason}", [FieldError(key, reason, index=row)])


def _forbidden(noun: str, object_id: int | str, caller: Caller) -> Forbidden:
    reason = f"belongs to no enterprise or district of this {caller.role} key"
    return Forbidden(f"{noun} {object_id}: {reason}", [FieldError("id", reason)])


async def check_object(
    conn: AsyncConnection[Any], caller: Caller, noun: str, object_id: int
) -> int | None:
    """404 / 403 as the rules say; the object's enterprise id otherwise."""
    cur = await conn.execute(_OWNER_SQL[noun], (object_id,))
    row = await cur.fetchone()
    if row is None:
        raise NotFound(f"{noun} {object_id} not found", [FieldError("id", f"no {noun}")])
    enterprise_id, district = row
    if noun == "alert" and caller.role == access.ENTERPRISE:
        allowed = enterprise_id is not None and enterprise_id == caller.enterprise_id
    elif noun in ("alert", "vehicle"):
        allowed = access.sees_transport(caller.role, caller.districts, district)
    else:
        allowed = access.sees_site(
            caller.role, caller.enterprise_id, caller.districts, enterprise_id, district
        )
    if not allowed:
        raise _forbidden(noun, object_id, caller)
    return int(enterprise_id) if enterprise_id is not None else None


async def visible_enterprise(
    enterprise_id: Annotated[int, Path(ge=1, le=2**31 - 1)], conn: DbConn, caller: CurrentCaller
) -> int:
    """Dependency for ``/api/enterprises/{enterprise_id}/…``: the id, once it is the caller's."""
    await check_object(conn, caller, "enterprise", enterprise_id)
    return enterprise_id


VisibleEnterprise = Annotated[int, Depends(visible_enterprise)]


def district_filter(caller: Caller, asked: Iterable[str] | None) -> list[str] | None:
    """The districts a listing may show: those asked for, within the caller's own (403 for one
    outside them); nothing asked → all of the caller's (None: no district restriction)."""
    own = caller.districts if caller.role in access.DISTRICT_ROLES else None
    wanted = sorted(set(asked)) if asked else None
    if wanted is None:
        return sorted(own) if own is not None else None
    outside = [d for d in wanted if own is not None and d not in own]
    if outside:
        reason = f"{', '.join(outside)} is outside this key's districts"
        raise Forbidden(f"district: {reason}", [FieldError("district", reason)])
    return wanted


def enterprise_filter(caller: Caller, asked: int | None) -> int | None:
    """An enterprise user lists only their own enterprise's objects."""
    if caller.role != access.ENTERPRISE:
        return asked
    if asked is not None and asked != caller.enterprise_id:
        raise _forbidden("enterprise", asked, caller)
    return caller.enterprise_id
