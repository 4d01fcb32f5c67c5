"""One alert per (vehicle, rule, zone, episode): created once, then updated while the episode
grows and closed (``active = false``) when it ends (docs/domain.md §3).

A candidate matches the existing alert of the same vehicle, rule and zone whose episode
overlaps it in time, so a replay after late fixes (which may move an episode's start by a fix
or two) updates that alert instead of adding a second one. Only real changes bump ``revision``
and are announced with ``NOTIFY georisk_changes`` (layer ``alerts``), inside the writer's
transaction, so listeners hear of an alert once it is committed.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from psycopg import AsyncConnection
from psycopg.rows import tuple_row
from psycopg.types.json import Jsonb

from layers.alerts import webhooks
from layers.core.changes import notify_change
from layers.core.vocab import ILLEGAL_PARKING_RULES
from layers.transport.config import TankerRules
from layers.transport.parking import Candidate
from layers.transport.state import ts_sql

_CANDIDATES = (
    "WITH t AS (SELECT c.*, " + ts_sql("c.s_us") + " AS s_ts, " + ts_sql("c.e_us") + " AS e_ts,"
    " ST_SetSRID(ST_MakePoint(c.lon, c.lat), 4326) AS pt"
    " FROM unnest(%(k)s::int4[], %(v)s::int4[], %(rule)s::text[], %(zone)s::int4[],"
    " %(s)s::int8[], %(e)s::int8[], %(active)s::bool[], %(lon)s::float8[], %(lat)s::float8[],"
    " %(sev)s::text[], %(district)s::text[], %(stop)s::int8[], %(details)s::jsonb[])"
    " AS c(k, vehicle_id, rule, zone_id, s_us, e_us, active, lon, lat, severity, district,"
    " stop_id, details)) "
)

_MATCH = _CANDIDATES + (
    "SELECT DISTINCT ON (t.k) t.k, a.id FROM t JOIN alerts a ON a.vehicle_id = t.vehicle_id"
    " AND a.rule = t.rule AND a.zone_id IS NOT DISTINCT FROM t.zone_id"
    " AND a.episode_start <= t.e_ts AND coalesce(a.episode_end, a.episode_start) >= t.s_ts"
    " ORDER BY t.k, a.episode_start"
)

_UPDATE = _CANDIDATES + (
    "UPDATE alerts a SET episode_start = t.s_ts, episode_end = t.e_ts, active = t.active,"
    " stop_id = t.stop_id, details = a.details || t.details, geom = t.pt,"
    " revision = a.revision + 1, updated_at = now()"
    " FROM t JOIN unnest(%(mk)s::int4[], %(mid)s::int8[]) AS m(k, id) ON m.k = t.k"
    " WHERE a.vehicle_id = t.vehicle_id AND a.id = m.id"
    # A replay recuts the stop (new row, new id): the alert follows it to the new one.
    " AND (a.episode_start, a.episode_end, a.active, a.stop_id)"
    " IS DISTINCT FROM (t.s_ts, t.e_ts, t.active, t.stop_id)"
    " RETURNING a.id"
)

_INSERT = _CANDIDATES + (
    "INSERT INTO alerts (vehicle_id, rule, zone_id, episode_start, episode_end, active, district,"
    " severity, details, geom, enterprise_id, stop_id, ack_deadline, dispose_deadline)"
    " SELECT t.vehicle_id, t.rule, t.zone_id, t.s_ts, t.e_ts, t.active,"
    " coalesce(t.district, d.code, v.district), t.severity, t.details, t.pt, v.enterprise_id,"
    " t.stop_id, now() + %(ack)s * interval '1 second', now() + %(dispose)s * interval '1 second'"
    " FROM t JOIN vehicles v ON v.id = t.vehicle_id"
    " LEFT JOIN LATERAL (SELECT code FROM districts WHERE ST_Intersects(geom, t.pt)"
    " ORDER BY id LIMIT 1) d ON true"
    " WHERE t.k <> ALL(%(mk)s::int4[])"
    " ON CONFLICT ON CONSTRAINT uq_alerts_vehicle_id_rule_zone_id_episode_start DO UPDATE"
    " SET episode_end = EXCLUDED.episode_end, active = EXCLUDED.active,"
    " revision = alerts.revision + 1, updated_at = now()"
    " RETURNING id, rule, enterprise_id, xmax = 0"
)


@dataclass
class AlertChanges:
    created: list[int] = field(default_factory=list)
    updated: list[int] = field(default_factory=list)
    #: Carriers with a new illegal-parking alert: their dynamic colour must be recomputed.
    carriers: set[int] = field(default_factory=set)


def _params(cands: Sequence[Candidate], stop_ids: Sequence[int | None]) -> dict[str, Any]:
    return {
        "k": list(range(len(cands))),
        "v": [c.vehicle_id for c in cands],
        "rule": [c.rule for c in cands],
        "zone": [c.zone_id for c in cands],
        "s": [c.start_us for c in cands],
        "e": [c.end_us for c in cands],
        "active": [c.active for c in cands],
        "lon": [c.lon for c in cands],
        "lat": [c.lat for c in cands],
        "sev": [c.severity for c in cands],
        "district": [c.district for c in cands],
        "stop": list(stop_ids),
        "details": [Jsonb(c.details) for c in cands],
    }


async def merge(
    conn: AsyncConnection[Any],
    cands: Sequence[Candidate],
    stop_ids: Sequence[int | None],
    rules: TankerRules,
    notify: bool = True,
) -> AlertChanges:
    """Create or update the alerts of ``cands`` (``stop_ids[i]`` is candidate i's stop row)."""
    out = AlertChanges()
    if not cands:
        return out
    params = _params(cands, stop_ids)
    cur = conn.cursor(row_factory=tuple_row)
    await cur.execute(_MATCH, params)
    matched = await cur.fetchall()
    params["mk"] = [int(r[0]) for r in matched]
    params["mid"] = [int(r[1]) for r in matched]
    if matched:
        await cur.execute(_UPDATE, params)
        out.updated = [int(r[0]) for r in await cur.fetchall()]
    if len(matched) < len(cands):
        params |= {"ack": rules.ack_deadline_s, "dispose": rules.dispose_deadline_s}
        await cur.execute(_INSERT, params)
        for alert_id, rule, enterprise_id, inserted in await cur.fetchall():
            (out.created if inserted else out.updated).append(int(alert_id))
            if inserted and rule in ILLEGAL_PARKING_RULES and enterprise_id is not None:
                out.carriers.add(int(enterprise_id))
    # Webhooks ride in this transaction: the alerts and their deliveries commit together.
    await webhooks.enqueue(conn, out.created + out.updated)
    if notify:
        await notify_change(conn, "alerts", "alerts", out.created + out.updated)
    return out
