"""Loading and unloading derived from where a vehicle stops (issue 14 item 2; docs/transport.md
§3): a stop at the waybill's declared origin is its loading, at its destination its unloading.

After each batch of fixes (inside the ingest transaction, ``layers/transport/ingest.py``), the
stops of the batch's vehicles are matched against their waybills, one query for the batch:

- a stop at the origin of a ``planned`` waybill → ``loading`` at the stop's start (the loading
  checks run as for a party's event: a failure is a recorded ``loading_refused``, once per
  stop); once the vehicle leaves (the stop closes) → ``loaded`` at the stop's end;
- a stop at the destination of an ``in_transit`` waybill → ``unloading`` at its start (once);
  once it closes → ``unloaded`` at its end.

"At the site": the stop's centroid within :attr:`TankerRules.site_radius_m` of the declared
point, or inside the enterprise's site polygon. Only stops that begin within
:attr:`TankerRules.site_window_s` of the planned times count (a vehicle at its shipper's gate
two days early is not loading this waybill). Derived events carry ``source = 'derived'``; a
party's own event for the same step is never doubled, because a step the waybill has already
taken is not derived again.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field
from typing import Any, Final

from psycopg import AsyncConnection
from psycopg.rows import dict_row

from layers.core.errors import TransitionRefused
from layers.transport.config import TankerRules
from layers.transport.waybills import LoadingRefused, Step, apply_step

ACTOR: Final = "system:stop-at-site"

_CANDIDATES_SQL: Final = """
SELECT w.id AS waybill_id, w.state, site.kind AS site, s.start_ts, s.end_ts, s.is_open,
       ST_X(s.geom) AS lon, ST_Y(s.geom) AS lat
FROM waybills w
JOIN stops s ON s.vehicle_id = w.vehicle_id
 AND s.start_ts >= w.planned_departure - make_interval(secs => %(window_s)s)
 AND s.start_ts <= w.planned_arrival + make_interval(secs => %(window_s)s)
CROSS JOIN LATERAL (VALUES ('origin', w.origin_geom, w.origin_id, 'planned loading'),
                           ('destination', w.destination_geom, w.destination_id, 'in_transit'))
    AS site(kind, geom, enterprise_id, states)
LEFT JOIN enterprises e ON e.id = site.enterprise_id
WHERE w.vehicle_id = ANY(%(v)s)
  AND w.state IN ('planned', 'loading', 'in_transit')
  AND w.state = ANY(string_to_array(site.states, ' '))
  AND (ST_DWithin(s.geom::geography, site.geom::geography, %(radius)s)
       OR (e.site_geom IS NOT NULL AND ST_Covers(e.site_geom, s.geom)))
ORDER BY w.id, s.start_ts
"""
_RECORDED_SQL: Final = (
    "SELECT 1 FROM waybill_events WHERE waybill_id = %s AND kind = %s AND at = %s LIMIT 1"
)


@dataclass
class SiteEvents:
    """What one pass derived: event kinds by waybill, refused loadings."""

    steps: list[tuple[int, str]] = field(default_factory=list)
    refused: list[int] = field(default_factory=list)


async def _recorded(conn: AsyncConnection[Any], waybill_id: int, kind: str, at: Any) -> bool:
    cur = await conn.execute(_RECORDED_SQL, (waybill_id, kind, at))
    return await cur.fetchone() is not None


async def derive_site_events(
    conn: AsyncConnection[Any], vehicle_ids: list[int], rules: TankerRules
) -> SiteEvents:
    """Derive the loading / unloading steps the stops of ``vehicle_ids`` imply."""
    out = SiteEvents()
    if not vehicle_ids:
        return out
    async with conn.cursor(row_factory=dict_row) as cur:
        await cur.execute(
            _CANDIDATES_SQL,
            {"v": vehicle_ids, "window_s": rules.site_window_s, "radius": rules.site_radius_m},
        )
        candidates = await cur.fetchall()
    state: dict[int, str] = {}
    for c in candidates:
        wid = c["waybill_id"]
        current = state.setdefault(wid, c["state"])
        wanted: list[tuple[str, str, dt.datetime]] = []
        if c["site"] == "origin" and current == "planned":
            if await _recorded(conn, wid, "loading_refused", c["start_ts"]):
                continue  # this stop's loading was refused already
            wanted.append(("loading", "loading", c["start_ts"]))
        if c["site"] == "origin" and current in ("planned", "loading") and not c["is_open"]:
            wanted.append(("loaded", "in_transit", c["end_ts"]))
        if c["site"] == "destination" and current == "in_transit":
            if not await _recorded(conn, wid, "unloading", c["start_ts"]):
                wanted.append(("unloading", "in_transit", c["start_ts"]))
            if not c["is_open"]:
                wanted.append(("unloaded", "delivered", c["end_ts"]))
        for kind, to_state, at in wanted:
            step = Step(kind, to_state, at, ACTOR, "derived", c["lon"], c["lat"])
            try:
                await apply_step(conn, wid, step, rules)
            except LoadingRefused:
                out.refused.append(wid)  # recorded by apply_step; the load stays planned
                break
            except TransitionRefused:
                break  # a party moved it meanwhile: what it reported stands
            out.steps.append((wid, kind))
            state[wid] = to_state
    return out
