"""The figures cities publish about tanker alerts (docs/domain.md §3).

Time to acknowledge = acknowledged_at − created_at; time to dispose = disposed_at − created_at
(from the moment the officer could first see it, including false alarms, which also close an
alert). Disposal rate is given two ways because both are quoted: disposed ÷ closed (how often
a closed alert was real) and disposed ÷ all (the "95–97 % disposed" figure).
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import Any, Final

from psycopg import AsyncConnection
from psycopg.rows import dict_row

#: Group keys: name → SQL expression. Constants only, so the f-string below never sees input.
GROUPS: Final[dict[str, str]] = {
    "overall": "'all'::text",
    "by_district": "coalesce(a.district, '')",
    "by_carrier": "coalesce(v.carrier, e.name, '')",
    "by_rule": "a.rule",
    # One row per department an alert was routed to (migration 0019): a department's figures
    # are those of its own queue.
    "by_department": "dep.name",
}
#: Extra FROM items a grouping needs (constants).
_JOINS: Final[dict[str, str]] = {
    "by_department": " CROSS JOIN LATERAL unnest(a.departments) AS dep(name)",
}

_STATS = """
SELECT {key} AS key,
  count(*) AS total,
  count(*) FILTER (WHERE a.status = 'new') AS new,
  count(*) FILTER (WHERE a.status = 'acknowledged') AS acknowledged,
  count(*) FILTER (WHERE a.status = 'disposed') AS disposed,
  count(*) FILTER (WHERE a.status = 'false_alarm') AS false_alarm,
  percentile_cont(0.5) WITHIN GROUP (ORDER BY extract(epoch FROM a.acknowledged_at - a.created_at))
    FILTER (WHERE a.acknowledged_at IS NOT NULL) AS tta_median_s,
  percentile_cont(0.9) WITHIN GROUP (ORDER BY extract(epoch FROM a.acknowledged_at - a.created_at))
    FILTER (WHERE a.acknowledged_at IS NOT NULL) AS tta_p90_s,
  percentile_cont(0.5) WITHIN GROUP (ORDER BY extract(epoch FROM a.disposed_at - a.created_at))
    FILTER (WHERE a.disposed_at IS NOT NULL) AS ttd_median_s,
  percentile_cont(0.9) WITHIN GROUP (ORDER BY extract(epoch FROM a.disposed_at - a.created_at))
    FILTER (WHERE a.disposed_at IS NOT NULL) AS ttd_p90_s
FROM alerts a
LEFT JOIN vehicles v ON v.id = a.vehicle_id
LEFT JOIN enterprises e ON e.id = a.enterprise_id{joins}
WHERE (%(from)s::timestamptz IS NULL OR a.created_at >= %(from)s)
  AND (%(to)s::timestamptz IS NULL OR a.created_at < %(to)s)
  AND (%(district)s::text[] IS NULL OR a.district = ANY(%(district)s))
  AND (%(rule)s::text IS NULL OR a.rule = %(rule)s)
  AND (%(department)s::text IS NULL OR a.departments @> ARRAY[%(department)s::text])
GROUP BY 1 ORDER BY count(*) DESC, 1
LIMIT %(limit)s
"""


@dataclass(frozen=True)
class StatsQuery:
    start: dt.datetime | None = None
    end: dt.datetime | None = None
    districts: tuple[str, ...] | None = None
    max_groups: int = 1000
    rule: str | None = None
    department: str | None = None


def _shape(row: dict[str, Any]) -> dict[str, Any]:
    closed = int(row["disposed"]) + int(row["false_alarm"])
    total = int(row["total"])
    disposed = int(row["disposed"])

    def secs(v: Any) -> float | None:
        return None if v is None else round(float(v), 1)

    return {
        "total": total,
        "by_status": {s: int(row[s]) for s in ("new", "acknowledged", "disposed", "false_alarm")},
        "time_to_acknowledge_s": {
            "median": secs(row["tta_median_s"]),
            "p90": secs(row["tta_p90_s"]),
        },
        "time_to_dispose_s": {"median": secs(row["ttd_median_s"]), "p90": secs(row["ttd_p90_s"])},
        "disposal_rate_of_closed": round(disposed / closed, 4) if closed else None,
        "disposal_rate_of_all": round(disposed / total, 4) if total else None,
        "closed_rate": round(closed / total, 4) if total else None,
    }


async def alert_stats(conn: AsyncConnection[Any], q: StatsQuery) -> dict[str, Any]:
    """Overall figures, then the same per district and per carrier (largest groups first)."""
    params = {
        "from": q.start,
        "to": q.end,
        "district": list(q.districts) if q.districts else None,
        "limit": q.max_groups,
        "rule": q.rule,
        "department": q.department,
    }
    out: dict[str, Any] = {
        "from": q.start.isoformat() if q.start else None,
        "to": q.end.isoformat() if q.end else None,
        "district": list(q.districts) if q.districts else None,
    }
    cur = conn.cursor(row_factory=dict_row)
    for name, key in GROUPS.items():
        await cur.execute(_STATS.format(key=key, joins=_JOINS.get(name, "")).encode(), params)
        rows = await cur.fetchall()
        if name == "overall":
            out["overall"] = _shape(rows[0]) if rows else _shape(_EMPTY)
        else:
            label = name.removeprefix("by_")
            out[name] = [{label: r["key"] or None, **_shape(r)} for r in rows]
    return out


_EMPTY: Final[dict[str, Any]] = {
    "total": 0,
    "new": 0,
    "acknowledged": 0,
    "disposed": 0,
    "false_alarm": 0,
    "tta_median_s": None,
    "tta_p90_s": None,
    "ttd_median_s": None,
    "ttd_p90_s": None,
}
