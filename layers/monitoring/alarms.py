"""Monitoring alarms out: the list as GeoJSON and the operator's steps of the lifecycle.

raised (by the evaluator) → acknowledged → disposed (by an operator, in that order) → cleared
(by the evaluator, when readings return below the hysteresis band). The status shown is the
furthest step reached; clearing may come before acknowledgement (a short excursion).
Each alarm says whether its point is offline (``point_offline``): an open alarm on a silent
detector keeps its colour, and the operator must know nobody is measuring any more.
"""

from __future__ import annotations

import datetime as dt
import json
from dataclasses import dataclass
from typing import Any, Final

from psycopg import AsyncConnection
from psycopg.rows import dict_row

from layers.core.errors import FieldError, TransitionRefused
from layers.monitoring.live import recolor_and_notify

STATUSES: Final = ("open", "acknowledged", "disposed", "cleared")

_STATUS_SQL = (
    "CASE WHEN a.cleared_at IS NOT NULL THEN 'cleared' WHEN a.disposed_at IS NOT NULL"
    " THEN 'disposed' WHEN a.acknowledged_at IS NOT NULL THEN 'acknowledged' ELSE 'open' END"
)

_SELECT = (
    "SELECT a.id, a.point_id, mp.code AS point_code, mp.offline AS point_offline, mp.kind,"
    " mp.unit, a.level, a.color, "
    + _STATUS_SQL
    + " AS status, a.raised_at, a.ack_deadline, a.acknowledged_at, a.disposed_at, a.cleared_at,"
    " a.peak_value, h.enterprise_id, coalesce(e.district, pl.district) AS district,"
    " ST_AsGeoJSON(mp.geom, 7) AS geometry"
    " FROM alarms a JOIN monitoring_points mp ON mp.id = a.point_id"
    " LEFT JOIN hazard_sources h ON h.id = mp.hazard_source_id"
    " LEFT JOIN enterprises e ON e.id = h.enterprise_id"
    " LEFT JOIN pipelines pl ON pl.id = mp.pipeline_id"
)


@dataclass(frozen=True)
class AlarmFilter:
    status: str | None = None
    level: int | None = None
    enterprise_id: int | None = None
    districts: list[str] | None = None  # None: every district
    since: dt.datetime | None = None
    limit: int = 1000


def _feature(row: dict[str, Any]) -> dict[str, Any]:
    geometry = json.loads(row.pop("geometry"))
    props = {k: (v.isoformat() if isinstance(v, dt.datetime) else v) for k, v in row.items()}
    return {"type": "Feature", "id": row["id"], "geometry": geometry, "properties": props}


async def list_alarms(conn: AsyncConnection[Any], f: AlarmFilter) -> dict[str, Any]:
    """Newest first; every filter is a bound parameter (NULL = not filtering)."""
    cur = conn.cursor(row_factory=dict_row)
    await cur.execute(
        (
            _SELECT + " WHERE (%(status)s::text IS NULL OR " + _STATUS_SQL + " = %(status)s)"
            " AND (%(level)s::int IS NULL OR a.level = %(level)s)"
            " AND (%(ent)s::int IS NULL OR h.enterprise_id = %(ent)s)"
            " AND (%(districts)s::text[] IS NULL"
            " OR coalesce(e.district, pl.district) = ANY(%(districts)s))"
            " AND (%(since)s::timestamptz IS NULL OR a.raised_at >= %(since)s)"
            " ORDER BY a.raised_at DESC, a.id DESC LIMIT %(limit)s"
        ).encode(),
        {
            "status": f.status,
            "level": f.level,
            "ent": f.enterprise_id,
            "districts": f.districts,
            "since": f.since,
            "limit": f.limit,
        },
    )
    features = [_feature(r) for r in await cur.fetchall()]
    return {"type": "FeatureCollection", "features": features}


async def get_alarm(conn: AsyncConnection[Any], alarm_id: int) -> dict[str, Any] | None:
    cur = conn.cursor(row_factory=dict_row)
    await cur.execute((_SELECT + " WHERE a.id = %s").encode(), (alarm_id,))
    row = await cur.fetchone()
    return None if row is None else _feature(row)


async def advance(
    conn: AsyncConnection[Any], alarm_id: int, step: str, flat_n: int
) -> tuple[dict[str, Any] | None, list[int]]:
    """Acknowledge or dispose (idempotent: a repeated step keeps its first time).

    Returns the alarm and the enterprises to re-rate (an acknowledged level-2 alarm no longer
    counts as overdue). Raises ``TransitionRefused`` for a dispose before acknowledgement.
    """
    column = {"ack": "acknowledged_at", "dispose": "disposed_at"}[step]
    async with conn.transaction():
        cur = conn.cursor(row_factory=dict_row)
        await cur.execute(
            "SELECT point_id, acknowledged_at FROM alarms WHERE id = %s FOR UPDATE", (alarm_id,)
        )
        row = await cur.fetchone()
        if row is None:
            return None, []
        if step == "dispose" and row["acknowledged_at"] is None:
            reason = "an alarm is acknowledged before it is disposed"
            raise TransitionRefused(reason, [FieldError("alarm_id", reason)], wanted=step)
        await conn.execute(
            f"UPDATE alarms SET {column} = coalesce({column}, now()) WHERE id = %s".encode(),
            (alarm_id,),
        )
        enterprises = await recolor_and_notify(conn, [], [row["point_id"]], flat_n)
    return await get_alarm(conn, alarm_id), enterprises
