"""Alert listing and the officer's lifecycle: new → acknowledged → disposed | false_alarm.

Each transition records who (the caller's name) and when, and is a single conditional UPDATE,
so two officers racing on one alert cannot both win; the loser learns the state it found
(``TransitionRefused``, layers/core/errors.py: a 409 naming it).
Overdue alerts escalate one level per missed deadline (acknowledge, then dispose); the
background scheduler (geo_api/escalation.py) calls ``escalate``, never a read. Every change
here bumps the revision and queues its webhooks in the same transaction (layers/alerts/webhooks.py).
"""

from __future__ import annotations

import datetime as dt
import json
from dataclasses import dataclass
from typing import Any

from psycopg import AsyncConnection
from psycopg.rows import tuple_row

from layers.alerts import webhooks
from layers.core.changes import notify_change
from layers.core.errors import FieldError, InvalidField, NotFound, TransitionRefused


class AlertNotFound(NotFound, LookupError):
    """No alert with that id (a 404 naming ``alert_id``)."""

    def __init__(self, alert_id: int) -> None:
        super().__init__(f"alert {alert_id} not found", [FieldError("alert_id", "unknown")])
        self.alert_id = alert_id


def _refused(alert_id: int, status: str, action: str) -> TransitionRefused:
    """The loser of a race, or a step out of order, learns the state it found."""
    return TransitionRefused(
        f"alert {alert_id} is {status}: cannot {action} it",
        [FieldError("status", f"is {status}")],
        current=status,
        wanted=action,
    )


OUTCOMES = ("disposed", "false_alarm")
#: Webhook event name of each transition.
EVENTS = {"acknowledge": "acknowledged", "dispose": "disposed"}

_FEATURE = """
json_build_object(
  'type', 'Feature', 'id', a.id,
  'geometry', ST_AsGeoJSON(a.geom, 7)::json,
  'properties', json_build_object(
    'id', a.id, 'vehicle_id', a.vehicle_id, 'plate', v.plate, 'carrier', v.carrier,
    'enterprise_id', a.enterprise_id, 'rule', a.rule, 'zone_id', a.zone_id,
    'zone_name', z.name, 'zone_kind', z.kind, 'stop_id', a.stop_id,
    'episode_start', a.episode_start, 'episode_end', a.episode_end,
    'duration_s', extract(epoch FROM a.episode_end - a.episode_start), 'active', a.active,
    'status', a.status, 'district', a.district, 'severity', a.severity, 'details', a.details,
    'created_at', a.created_at, 'updated_at', a.updated_at, 'revision', a.revision,
    'acknowledged_at', a.acknowledged_at, 'acknowledged_by', a.acknowledged_by,
    'disposed_at', a.disposed_at, 'disposed_by', a.disposed_by, 'outcome', a.outcome,
    'note', a.note, 'ack_deadline', a.ack_deadline, 'dispose_deadline', a.dispose_deadline,
    'escalation_level', a.escalation_level, 'escalated_at', a.escalated_at,
    'departments', a.departments, 'carrier_notified', a.carrier_notified))
"""
_FROM = (
    " FROM alerts a LEFT JOIN vehicles v ON v.id = a.vehicle_id"
    " LEFT JOIN zones z ON z.id = a.zone_id"
)
_LIST = (
    "SELECT "
    + _FEATURE
    + ", count(*) OVER () "
    + _FROM
    + " WHERE (%(status)s::text IS NULL OR a.status = %(status)s)"
    " AND (%(rule)s::text IS NULL OR a.rule = %(rule)s)"
    " AND (%(districts)s::text[] IS NULL OR a.district = ANY(%(districts)s))"
    " AND (%(vehicle_id)s::int IS NULL OR a.vehicle_id = %(vehicle_id)s)"
    " AND (%(since)s::timestamptz IS NULL OR a.updated_at >= %(since)s)"
    " AND (%(active)s::bool IS NULL OR a.active = %(active)s)"
    " AND (%(department)s::text IS NULL OR a.departments @> ARRAY[%(department)s::text])"
    # A carrier enterprise reads the alerts routed to it (alert_routes.to_carrier)
    " AND (%(carrier_id)s::int IS NULL"
    "      OR (a.enterprise_id = %(carrier_id)s AND a.carrier_notified))"
    " ORDER BY a.created_at DESC, a.id DESC LIMIT %(limit)s OFFSET %(offset)s"
)
_ONE = "SELECT " + _FEATURE + _FROM + " WHERE a.id = %s"
# Only a level that is still lower is raised, so concurrent schedulers never bump a row twice.
_ESCALATE = """
UPDATE alerts SET escalation_level = t.level, escalated_at = now(),
       revision = alerts.revision + 1, updated_at = now()
FROM (SELECT id, CASE WHEN dispose_deadline < now() THEN 2 ELSE 1 END AS level
      FROM alerts
      WHERE (status = 'new' AND ack_deadline < now())
         OR (status IN ('new', 'acknowledged') AND dispose_deadline < now())) t
WHERE alerts.id = t.id AND alerts.escalation_level < t.level
RETURNING alerts.id
"""


@dataclass(frozen=True)
class AlertQuery:
    status: str | None = None
    rule: str | None = None
    districts: list[str] | None = None  # None: every district
    vehicle_id: int | None = None
    since: dt.datetime | None = None
    active: bool | None = None
    limit: int = 1000
    offset: int = 0
    department: str | None = None  # a department's queue (docs/api.md, alert routing)
    carrier_id: int | None = None  # a carrier enterprise's own routed alerts


async def escalate(conn: AsyncConnection[Any]) -> list[int]:
    """Raise the escalation level of overdue alerts; queues and announces the ones that changed."""
    cur = conn.cursor(row_factory=tuple_row)
    await cur.execute(_ESCALATE)
    ids = [int(r[0]) for r in await cur.fetchall()]
    await webhooks.enqueue(conn, ids, "alert.escalated")
    await notify_change(conn, "alerts", "alerts", ids)
    return ids


async def list_alerts(conn: AsyncConnection[Any], q: AlertQuery) -> tuple[list[Any], int]:
    """Features (newest first) and the number matched."""
    cur = conn.cursor(row_factory=tuple_row)
    await cur.execute(_LIST.encode(), q.__dict__)
    rows = await cur.fetchall()
    return [r[0] for r in rows], (int(rows[0][1]) if rows else 0)


async def get_alert(conn: AsyncConnection[Any], alert_id: int) -> dict[str, Any]:
    cur = conn.cursor(row_factory=tuple_row)
    await cur.execute(_ONE.encode(), (alert_id,))
    row = await cur.fetchone()
    if row is None:
        raise AlertNotFound(alert_id)
    feature: dict[str, Any] = row[0] if isinstance(row[0], dict) else json.loads(row[0])
    return feature


async def _transition(
    conn: AsyncConnection[Any], alert_id: int, action: str, query: str, params: dict[str, Any]
) -> dict[str, Any]:
    cur = conn.cursor(row_factory=tuple_row)
    await cur.execute(query.encode(), {**params, "id": alert_id})
    if await cur.fetchone() is None:
        await cur.execute("SELECT status FROM alerts WHERE id = %s", (alert_id,))
        row = await cur.fetchone()
        if row is None:
            raise AlertNotFound(alert_id)
        raise _refused(alert_id, str(row[0]), action)
    await webhooks.enqueue(conn, [alert_id], f"alert.{EVENTS[action]}")
    await notify_change(conn, "alerts", "alerts", [alert_id])
    return await get_alert(conn, alert_id)


async def acknowledge(conn: AsyncConnection[Any], alert_id: int, who: str) -> dict[str, Any]:
    """new → acknowledged."""
    query = (
        "UPDATE alerts SET status = 'acknowledged', acknowledged_at = now(),"
        " acknowledged_by = %(who)s, revision = revision + 1, updated_at = now()"
        " WHERE id = %(id)s AND status = 'new' RETURNING id"
    )
    return await _transition(conn, alert_id, "acknowledge", query, {"who": who})


async def dispose(
    conn: AsyncConnection[Any], alert_id: int, who: str, outcome: str, note: str | None
) -> dict[str, Any]:
    """acknowledged → disposed | false_alarm, with the officer's note."""
    if outcome not in OUTCOMES:
        raise InvalidField("outcome", f"must be one of {', '.join(OUTCOMES)}")
    query = (
        "UPDATE alerts SET status = %(outcome)s, outcome = %(outcome)s, note = %(note)s,"
        " disposed_at = now(), disposed_by = %(who)s, revision = revision + 1,"
        " updated_at = now() WHERE id = %(id)s AND status = 'acknowledged' RETURNING id"
    )
    params = {"who": who, "outcome": outcome, "note": note}
    return await _transition(conn, alert_id, "dispose", query, params)
