"""A batch of readings from ``POST /api/readings``: store, evaluate, recolour — one transaction.

The readings kind of the shared ingest pipeline (``layers/core/ingest.py``), like the tanker
one (layers/transport/ingest.py): daily partitions first, in their own short transactions;
then lock the batch's points' evaluator state in id order (concurrent batches of the same
points queue instead of deadlocking); binary COPY into a temp table and
``INSERT … ON CONFLICT DO NOTHING`` (idempotent on (point_id, ts): a re-sent batch reports
duplicates and changes nothing); evaluate only the newly stored readings newer than each
point's last one (a late reading is stored, not re-judged); save state, alarms and colours and
NOTIFY — all before the commit. The caller re-rates the returned enterprises afterwards.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

import numpy as np
from numpy.typing import NDArray
from psycopg import AsyncConnection
from psycopg.rows import tuple_row

from layers.core.ingest import IngestKind, IngestResult, Target, ingest_batch
from layers.core.window import DEFAULT_WINDOW, TsWindow
from layers.monitoring.config import MonitoringRules
from layers.monitoring.evaluate import Episode, PointState, evaluate
from layers.monitoring.live import recolor_and_notify, ts_sql, us_sql
from layers.monitoring.parse import Rows, parse_body
from layers.monitoring.thresholds import set_points

READINGS = Target(
    table="readings",
    temp="tmp_readings",
    columns=(("point_id", "int4"), ("ts", "timestamptz"), ("value", "float8")),
    returning="point_id, " + us_sql("ts") + ", value",
)
_ENSURE_STATE = (
    "INSERT INTO monitoring_state (point_id) SELECT id FROM monitoring_points"
    " WHERE id = ANY(%(ids)s) ORDER BY id ON CONFLICT DO NOTHING"
)
_LOAD = (
    "SELECT s.point_id, mp.kind, mp.level1, mp.level2, mp.limit_h, mp.limit_hh, mp.limit_l,"
    " mp.limit_ll, s.level, s.pending_level, s.pending_count, "
    + us_sql("s.last_ts")
    + ", s.last_value, s.same_count, s.alarm_id, a.level, a.peak_value"
    " FROM monitoring_state s JOIN monitoring_points mp ON mp.id = s.point_id"
    # The point is in the join: state and alarms are sharded by it (layers/core/distribution.py).
    " LEFT JOIN alarms a ON a.point_id = s.point_id AND a.id = s.alarm_id"
    # A retired point (migration 0012) is unknown: its readings are rejected, not evaluated.
    " WHERE s.point_id = ANY(%(ids)s) AND mp.retired_at IS NULL"
    " ORDER BY s.point_id FOR UPDATE OF s"
)
_SAVE = (
    "UPDATE monitoring_state s SET level = u.l, pending_level = u.pl, pending_count = u.pc,"
    " last_ts = " + ts_sql("u.t") + ", last_value = u.v, same_count = u.sc, alarm_id = u.a,"
    " stale = false, updated_at = now(), "
    " alarm_overdue = coalesce(s.alarm_overdue AND s.alarm_id = u.a, false)"
    " FROM unnest(%(p)s::int4[], %(l)s::int2[], %(pl)s::int2[], %(pc)s::int4[], %(t)s::int8[],"
    " %(v)s::float8[], %(sc)s::int4[], %(a)s::int8[]) AS u(p, l, pl, pc, t, v, sc, a)"
    " WHERE s.point_id = u.p"
)
_RAISE = (
    "INSERT INTO alarms (point_id, level, color, raised_at, ack_deadline, cleared_at, peak_value)"
    " SELECT u.p, u.l, CASE u.l WHEN 2 THEN 'orange' ELSE 'yellow' END, "
    + ts_sql("u.t")
    + ", "
    + ts_sql("u.t")
    + " + %(ack)s * interval '1 second', "
    + ts_sql("u.c")
    + ", u.pk FROM unnest(%(p)s::int4[], %(l)s::int2[], %(t)s::int8[], %(c)s::int8[],"
    " %(pk)s::float8[]) AS u(p, l, t, c, pk) ORDER BY u.p, u.t RETURNING id, point_id, cleared_at"
)
_CONTINUE = (
    "UPDATE alarms a SET level = greatest(a.level, u.l), peak_value = u.pk,"
    " color = CASE WHEN a.color = 'red' THEN 'red' WHEN greatest(a.level, u.l) = 2"
    " THEN 'orange' ELSE a.color END, cleared_at = " + ts_sql("u.c") + ""
    " FROM unnest(%(p)s::int4[], %(a)s::int8[], %(l)s::int2[], %(c)s::int8[], %(pk)s::float8[])"
    " AS u(p, a, l, c, pk) WHERE a.point_id = u.p AND a.id = u.a AND a.cleared_at IS NULL"
    " AND (a.level, a.peak_value, u.c) IS DISTINCT FROM (greatest(a.level, u.l), u.pk, NULL)"
    " RETURNING a.point_id"
)


async def _load(conn: AsyncConnection[Any], ids: list[int]) -> dict[int, PointState]:
    await conn.execute(_ENSURE_STATE.encode(), {"ids": ids})
    cur = conn.cursor(row_factory=tuple_row)
    await cur.execute(_LOAD.encode(), {"ids": ids})
    out: dict[int, PointState] = {}
    for r in await cur.fetchall():
        out[int(r[0])] = PointState(
            point_id=int(r[0]),
            set_points=set_points(r[1], r[2], r[3], r[4], r[5], r[6], r[7]),
            level=int(r[8]),
            pending_level=int(r[9]),
            pending_count=int(r[10]),
            last_t=None if r[11] is None else int(r[11]),
            last_value=r[12],
            same_count=int(r[13]),
            alarm_id=r[14],
            alarm_level=int(r[15] or 0),
            peak=r[16],
        )
    return out


async def _store_episodes(
    conn: AsyncConnection[Any],
    episodes: list[Episode],
    states: dict[int, PointState],
    rules: MonitoringRules,
) -> list[int]:
    """Insert new alarms (noting the open one on its point) and advance continued ones."""
    touched: list[int] = []
    new = [e for e in episodes if e.alarm_id is None]
    if new:
        cur = conn.cursor(row_factory=tuple_row)
        await cur.execute(
            _RAISE.encode(),
            {
                "p": [e.point_id for e in new],
                "l": [e.level for e in new],
                "t": [e.raised_t for e in new],
                "c": [e.cleared_t for e in new],
                "pk": [e.peak for e in new],
                "ack": rules.ack_deadline_s,
            },
        )
        for alarm_id, point_id, cleared in await cur.fetchall():
            touched.append(int(point_id))
            if cleared is None:
                states[int(point_id)].alarm_id = int(alarm_id)
    old = [e for e in episodes if e.alarm_id is not None]
    if old:
        cur = conn.cursor(row_factory=tuple_row)
        await cur.execute(
            _CONTINUE.encode(),
            {
                "p": [e.point_id for e in old],
                "a": [e.alarm_id for e in old],
                "l": [e.level for e in old],
                "c": [e.cleared_t for e in old],
                "pk": [e.peak for e in old],
            },
        )
        touched += [int(r[0]) for r in await cur.fetchall()]
    return touched


async def _save(conn: AsyncConnection[Any], states: list[PointState]) -> None:
    await conn.execute(
        _SAVE.encode(),
        {
            "p": [s.point_id for s in states],
            "l": [s.level for s in states],
            "pl": [s.pending_level for s in states],
            "pc": [s.pending_count for s in states],
            "t": [s.last_t for s in states],
            "v": [s.last_value for s in states],
            "sc": [s.same_count for s in states],
            "a": [s.alarm_id for s in states],
        },
    )


class SensorReadings(IngestKind[Rows, dict[int, PointState]]):
    """Sensor readings: known points, no filter, the alarm evaluator and live colours."""

    target = READINGS
    key, noun, plural = "point_id", "monitoring point", "readings"

    def __init__(self, rules: MonitoringRules) -> None:
        self.rules = rules

    def parse(self, body: bytes, content_type: str) -> Rows:
        return parse_body(body, content_type)

    def ids(self, rows: Rows) -> NDArray[np.int64]:
        return rows.point_id

    async def lock(
        self, conn: AsyncConnection[Any], ids: list[int]
    ) -> tuple[dict[int, PointState], NDArray[Any]]:
        states = await _load(conn, ids)
        return states, np.fromiter(states, dtype=np.int64, count=len(states))

    def columns(self, rows: Rows, good: np.ndarray) -> list[np.ndarray]:
        return [rows.point_id[good].astype(np.int32), rows.t[good], rows.value[good]]

    async def evaluate(
        self, conn: AsyncConnection[Any], stored: list[Any], states: dict[int, PointState]
    ) -> list[int]:
        """Judge only the new readings newer than each point's last one (a late reading is
        stored, not re-judged); save state, alarms and colours and NOTIFY; the enterprises
        whose points changed colour or alarm are re-rated."""
        rules = self.rules
        pid = np.array([r[0] for r in stored], dtype=np.int64)
        t = np.array([r[1] for r in stored], dtype=np.int64)
        v = np.array([r[2] for r in stored], dtype=np.float64)
        last = np.array([states[p].last_t or -(2**62) for p in pid.tolist()], dtype=np.int64)
        fresh = t > last  # late readings are kept but not re-judged
        order = np.lexsort((t[fresh], pid[fresh]))
        pid, t, v = pid[fresh][order], t[fresh][order], v[fresh][order]
        outcome = evaluate(states, pid, t, v, rules.debounce_n, rules.hysteresis)
        alarm_points = await _store_episodes(conn, outcome.episodes, states, rules)
        if outcome.states:
            await _save(conn, outcome.states)
        return await recolor_and_notify(
            conn, [s.point_id for s in outcome.states], alarm_points, rules.flat_line_n
        )


async def ingest(
    conn: AsyncConnection[Any],
    rows: Rows,
    rules: MonitoringRules,
    window: TsWindow = DEFAULT_WINDOW,
    now: dt.datetime | None = None,
) -> IngestResult:
    """Store and judge one batch; per-row problems are reported, never raised."""
    return await ingest_batch(conn, SensorReadings(rules), rows, window, now)
