"""A batch of fixes from ``POST /api/positions``: filter, store, detect — one transaction.

Order inside the transaction: lock the batch's vehicles' detector state (in id order, so
concurrent batches of the same vehicles queue instead of deadlocking); drop noisy fixes with a
reason (``layers/transport/fix_filters.py``, jumps judged against the vehicle's previous good fix in
event time) into ``position_rejects``; binary COPY of the rest into a temp table and
``INSERT … ON CONFLICT DO NOTHING`` into ``positions`` (idempotent on (vehicle_id, ts): a re-sent
batch reports duplicates and stores nothing); run the engine on the newly stored fixes only.
The caller answers 2xx after the commit, so an acknowledged fix is durable.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from psycopg import AsyncConnection
from psycopg.rows import tuple_row

from layers.core import pgcopy
from layers.core.partitions import ensure_partitions_async
from layers.risk.hexagons import fix_cells
from layers.transport import fix_filters, state
from layers.transport.alerts import AlertChanges
from layers.transport.config import TankerRules
from layers.transport.engine import NewFixes, process
from layers.transport.parse import Rows

MESSAGES = {
    fix_filters.INVALID_COORDINATES: "invalid_coordinates: lon/lat out of range or 0, 0",
    fix_filters.INVALID_VALUE: "invalid_value: speed_kmh (0–400) or heading (0–359) out of range",
    fix_filters.FUTURE: "future: ts is later than the server's clock allows",
    fix_filters.JUMP: "jump: implies more than 200 km/h from the vehicle's previous fix",
}

_TMP = (
    "CREATE TEMP TABLE IF NOT EXISTS tmp_fixes (vehicle_id int4, ts timestamptz, lon float8,"
    " lat float8, speed_kmh float4, heading int2, alarm_bits int4, h3_r8 int8)"
    " ON COMMIT DELETE ROWS"
)
_INSERT = (
    "INSERT INTO positions (vehicle_id, ts, lon, lat, speed_kmh, heading, alarm_bits, h3_r8)"
    " SELECT vehicle_id, ts, lon, lat, speed_kmh, nullif(heading, -1), alarm_bits, h3_r8"
    " FROM tmp_fixes ON CONFLICT DO NOTHING"
    " RETURNING vehicle_id, " + state.us_sql("ts") + ", lon, lat, speed_kmh"
)
_PREVIOUS = (
    "SELECT u.v, " + state.us_sql("p.ts") + ", p.lon, p.lat"
    " FROM unnest(%(v)s::int4[], %(t)s::int8[]) AS u(v, t) CROSS JOIN LATERAL"
    " (SELECT ts, lon, lat FROM positions WHERE vehicle_id = u.v AND ts < "
    + state.ts_sql("u.t")
    + " ORDER BY ts DESC LIMIT 1) p"
)
_REJECTS = (
    "INSERT INTO position_rejects (vehicle_id, ts, lon, lat, speed_kmh, reason)"
    " SELECT u.v, " + state.ts_sql("u.t") + ", u.lon, u.lat, u.s, u.r FROM unnest(%(v)s::int4[],"
    " %(t)s::int8[], %(lon)s::float8[], %(lat)s::float8[], %(s)s::float8[], %(r)s::text[])"
    " AS u(v, t, lon, lat, s, r)"
)

#: Daily partitions known to exist in this process (creating one is DDL: do it rarely).


@dataclass
class IngestResult:
    accepted: int = 0
    duplicates: int = 0
    rejected: list[dict[str, Any]] = field(default_factory=list)
    alerts: AlertChanges = field(default_factory=AlertChanges)


async def _last_good(
    conn: AsyncConnection[Any], rows: Rows, loaded: state.Loaded
) -> dict[int, tuple[np.datetime64, float, float]]:
    """Each vehicle's previous good fix for the jump filter: its latest one, or — when the
    batch reaches back before it (late fixes) — the stored fix just before the batch."""
    out: dict[int, tuple[np.datetime64, float, float]] = {}
    late_v, late_t = [], []
    for i, v in enumerate(loaded.state.vehicle_id.tolist()):
        mine = rows.t[rows.vehicle_id == v]
        if not len(mine) or loaded.last_t[i] == 0:
            continue
        if mine.min() > loaded.last_t[i]:
            out[v] = (
                np.datetime64(int(loaded.last_t[i]), "us"),
                float(loaded.last_lon[i]),
                float(loaded.last_lat[i]),
            )
        else:
            late_v.append(v)
            late_t.append(int(mine.min()))
    if late_v:
        cur = conn.cursor(row_factory=tuple_row)
        await cur.execute(_PREVIOUS.encode(), {"v": late_v, "t": late_t})
        for v, t, lon, lat in await cur.fetchall():
            out[int(v)] = (np.datetime64(int(t), "us"), float(lon), float(lat))
    return out


async def _store_rejects(
    conn: AsyncConnection[Any], rows: Rows, pick: np.ndarray, reasons: list[str]
) -> None:
    if len(pick) == 0:
        return
    params = {
        "v": rows.vehicle_id[pick].tolist(),
        "t": rows.t[pick].tolist(),
        "lon": rows.lon[pick].tolist(),
        "lat": rows.lat[pick].tolist(),
        "s": rows.speed[pick].tolist(),
        "r": reasons,
    }
    await conn.execute(_REJECTS.encode(), params)


async def _copy_and_insert(conn: AsyncConnection[Any], rows: Rows, good: np.ndarray) -> list[Any]:
    await conn.execute(_TMP)
    block = pgcopy.encode(
        [
            ("int4", rows.vehicle_id[good].astype(np.int32)),
            ("timestamptz", rows.t[good]),
            ("float8", rows.lon[good]),
            ("float8", rows.lat[good]),
            ("float4", rows.speed[good].astype(np.float32)),
            ("int2", np.nan_to_num(rows.heading[good], nan=-1).astype(np.int16)),
            ("int4", rows.alarm_bits[good].astype(np.int32)),
            ("int8", fix_cells(rows.lon[good], rows.lat[good])),
        ]
    )
    cur = conn.cursor(row_factory=tuple_row)
    async with cur.copy("COPY tmp_fixes FROM STDIN (FORMAT BINARY)") as copy:
        await copy.write(block)
    await cur.execute(_INSERT.encode())
    return await cur.fetchall()


async def ingest(
    conn: AsyncConnection[Any], rows: Rows, rules: TankerRules, now: dt.datetime | None = None
) -> IngestResult:
    """Store and judge one batch; per-row problems are reported, never raised."""
    out = IngestResult(rejected=[{"index": i, "error": e} for i, e in rows.errors])
    if len(rows.t) == 0:
        return out
    await ensure_partitions_async(conn, "positions", rows.t)
    now = now or dt.datetime.now(dt.UTC)
    async with conn.transaction():
        loaded = await state.load(conn, np.unique(rows.vehicle_id).tolist())
        known = np.isin(rows.vehicle_id, loaded.state.vehicle_id)
        for j in np.flatnonzero(~known).tolist():
            msg = f"vehicle_id: unknown vehicle {int(rows.vehicle_id[j])}"
            out.rejected.append({"index": int(rows.index[j]), "error": msg})
        codes = np.full(len(rows.t), 255, dtype=np.uint8)
        k = np.flatnonzero(known)
        codes[k] = fix_filters.classify_fixes(
            rows.vehicle_id[k],
            rows.t[k].astype("datetime64[us]"),
            rows.lon[k],
            rows.lat[k],
            now=np.datetime64(now.replace(tzinfo=None), "us"),
            speed_kmh=rows.speed[k],
            heading=np.nan_to_num(rows.heading[k], nan=0.0),
            last_good=await _last_good(conn, rows, loaded),
        )
        noisy = np.flatnonzero(known & (codes != fix_filters.OK))
        reasons = [fix_filters.REASONS[int(c)] for c in codes[noisy]]
        await _store_rejects(conn, rows, noisy, reasons)
        for j, c in zip(noisy.tolist(), codes[noisy].tolist(), strict=True):
            if c == fix_filters.DUPLICATE:
                out.duplicates += 1
            else:
                out.rejected.append({"index": int(rows.index[j]), "error": MESSAGES[c]})
        good = codes == fix_filters.OK
        stored = await _copy_and_insert(conn, rows, good) if good.any() else []
        out.accepted = len(stored)
        out.duplicates += int(good.sum()) - len(stored)
        if stored:
            arr = np.array([(r[0], r[2], r[3], r[4]) for r in stored], dtype=np.float64)
            new = NewFixes(
                arr[:, 0].astype(np.int64),
                np.array([r[1] for r in stored], dtype=np.int64),
                arr[:, 1],
                arr[:, 2],
                arr[:, 3],
            )
            out.alerts = (await process(conn, new, rules, loaded)).alerts
    out.rejected.sort(key=lambda r: r["index"])
    return out
