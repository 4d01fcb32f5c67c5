"""Live colours of monitoring points, the stale sweep, and telling the map what changed.

Colour (docs/domain.md §2.4), judged set-based for the points touched and their siblings (a red
needs a second sensor of the same hazard source):

- a point is **silent** when it is stale (no reading for more than ``stale_intervals`` sampling
  intervals) or flat-lined; a silent point is marked ``offline``;
- **offline never hides an open alarm**: a silent point whose alarm is not cleared keeps the
  colour of its last confirmed level, and still counts as that level for the red pair rule
  (communications often fail with the incident); grey is only for silent points without an
  open alarm;
- red when at confirmed level 2 and another point of the same hazard source is too (live, or
  silent with its alarm open); orange at level 2; yellow at level 1; blue otherwise.

Points that never reported through the evaluator (no ``monitoring_state`` row) keep the colour
they were loaded with. A reading clears ``stale`` and, unless it continues a flat line, the
offline mark.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from typing import Any

from psycopg import AsyncConnection
from psycopg.rows import tuple_row

from layers.core.changes import notify_change
from layers.monitoring.config import MonitoringRules
from layers.risk.recompute import RecomputeConfig, recompute


def us_sql(col: str) -> str:
    """A timestamptz column as int8 µs since the Unix epoch (exact)."""
    return f"(extract(epoch FROM {col}) * 1000000)::int8"


def ts_sql(expr: str) -> str:
    """int8 µs since the Unix epoch as timestamptz (exact, unlike ``to_timestamp``)."""
    return f"('epoch'::timestamptz + ({expr}) * interval '1 microsecond')"


_RECOLOR = """
WITH touched AS (
    SELECT mp.id, coalesce(mp.hazard_source_id, -mp.id) AS source, s.level,
           (s.stale OR s.same_count >= %(flat_n)s) AS silent,
           EXISTS (SELECT 1 FROM alarms a WHERE a.point_id = s.point_id
                   AND a.id = s.alarm_id AND a.cleared_at IS NULL)
             AS alarm_open
    FROM monitoring_points mp JOIN monitoring_state s ON s.point_id = mp.id
    WHERE mp.id = ANY(%(ids)s) OR mp.hazard_source_id IN
          (SELECT hazard_source_id FROM monitoring_points WHERE id = ANY(%(ids)s))
), judged AS (
    -- grey: silent with no open alarm; a silent point with an open alarm keeps its level
    SELECT id, level, silent, silent AND NOT alarm_open AS grey,
           count(*) FILTER (WHERE level = 2 AND (alarm_open OR NOT silent))
             OVER (PARTITION BY source) AS level2
    FROM touched
), coloured AS (
    SELECT id, silent AS offline,
           CASE WHEN grey THEN 'grey' WHEN level = 2 AND level2 >= 2 THEN 'red'
                WHEN level = 2 THEN 'orange' WHEN level = 1 THEN 'yellow' ELSE 'blue' END AS color
    FROM judged
)
UPDATE monitoring_points mp SET live_color = c.color, offline = c.offline
FROM coloured c
WHERE mp.id = c.id AND (mp.live_color, mp.offline) IS DISTINCT FROM (c.color, c.offline)
RETURNING mp.id
"""

#: An open alarm takes the worst colour its point reached (yellow < orange < red).
_ALARM_COLOR = """
UPDATE alarms a SET color = mp.live_color
FROM monitoring_state s JOIN monitoring_points mp ON mp.id = s.point_id
WHERE s.point_id = ANY(%(ids)s) AND a.point_id = s.point_id AND a.id = s.alarm_id
  AND array_position(ARRAY['yellow', 'orange', 'red'], mp.live_color)
      > coalesce(array_position(ARRAY['yellow', 'orange', 'red'], a.color), 0)
RETURNING a.point_id
"""

#: The points a recolour may update (the batch's and their hazard sources' others), locked in
#: id order with the lock an UPDATE of non-key columns takes.
_LOCK_SIBLINGS = """
SELECT mp.id FROM monitoring_points mp
WHERE mp.id = ANY(%(ids)s) OR mp.hazard_source_id IN
      (SELECT hazard_source_id FROM monitoring_points WHERE id = ANY(%(ids)s))
ORDER BY mp.id FOR NO KEY UPDATE
"""

_ENTERPRISES = """
SELECT DISTINCT h.enterprise_id FROM monitoring_points mp
JOIN hazard_sources h ON h.id = mp.hazard_source_id WHERE mp.id = ANY(%(ids)s)
"""


async def _ids(conn: AsyncConnection[Any], query: str, params: dict[str, Any]) -> list[int]:
    cur = conn.cursor(row_factory=tuple_row)
    await cur.execute(query.encode(), params)
    return [int(r[0]) for r in await cur.fetchall()]


async def recolor_and_notify(
    conn: AsyncConnection[Any], point_ids: Sequence[int], alarm_points: Sequence[int], flat_n: int
) -> list[int]:
    """Recolour ``point_ids`` (and siblings), NOTIFY ``monitoring_points`` / ``alarms`` (the
    alarms' payload carries their points' ids, which is where the map draws them), and return
    the enterprises to re-rate. Runs inside the caller's transaction."""
    if not point_ids and not alarm_points:
        return []
    # The recolour also updates sibling points, which another batch may be recolouring: take
    # their row locks in id order first, so two such batches queue instead of deadlocking.
    await _ids(conn, _LOCK_SIBLINGS, {"ids": list(point_ids)})
    changed = await _ids(conn, _RECOLOR, {"ids": list(point_ids), "flat_n": flat_n})
    recoloured_alarms = await _ids(conn, _ALARM_COLOR, {"ids": list(point_ids)})
    alarm_ids = sorted(set(alarm_points) | set(recoloured_alarms))
    await notify_change(conn, "monitoring_points", "monitoring_points", changed)
    await notify_change(conn, "alarms", "monitoring_points", alarm_ids)
    return await _ids(conn, _ENTERPRISES, {"ids": sorted(set(changed) | set(alarm_ids))})


_STALE = """
UPDATE monitoring_state s SET stale = true, updated_at = %(now)s
FROM monitoring_points mp
WHERE mp.id = s.point_id AND NOT s.stale AND s.last_ts IS NOT NULL AND mp.retired_at IS NULL
  AND s.last_ts < %(now)s - mp.sampling_interval_s * %(k)s * interval '1 second'
RETURNING s.point_id
"""


#: Open level-2 alarms that just passed their ack deadline: the enterprise's dynamic colour
#: rises (layers/risk/recompute.py counts them), and only a clock can notice. Marked once per alarm.
_OVERDUE = """
UPDATE monitoring_state s SET alarm_overdue = true
FROM alarms a
WHERE a.point_id = s.point_id AND a.id = s.alarm_id AND NOT s.alarm_overdue
  AND a.level = 2
  AND a.acknowledged_at IS NULL AND a.cleared_at IS NULL AND a.ack_deadline < %(now)s
RETURNING s.point_id
"""


async def sweep_stale(
    conn: AsyncConnection[Any],
    rules: MonitoringRules,
    config: RecomputeConfig,
    now: dt.datetime | None = None,
) -> list[int]:
    """Mark points silent for more than ``stale_intervals`` sampling intervals offline (grey
    unless an alarm is open), and notice level-2 alarms that passed their ack deadline
    unacknowledged.

    Idempotent (a point already stale, an alarm already noticed, is skipped); a new reading
    clears ``stale``. Returns the points that went stale; the enterprises of both kinds are
    re-rated after the commit.
    """
    now = now or dt.datetime.now(dt.UTC)
    async with conn.transaction():
        stale = await _ids(conn, _STALE, {"now": now, "k": rules.stale_intervals})
        overdue = await _ids(conn, _OVERDUE, {"now": now})
        enterprises = await recolor_and_notify(conn, stale, overdue, rules.flat_line_n)
    if enterprises:
        await recompute(conn, config, enterprises)
    return stale
