"""A batch of fixes from ``POST /api/positions``: filter, store, detect — one transaction.

The tanker kind of the shared ingest pipeline (``layers/core/ingest.py``), which runs the steps:
lock the batch's vehicles' detector state (in id order, so concurrent batches of the same
vehicles queue instead of deadlocking); drop noisy fixes with a reason
(``layers/transport/fix_filters.py``, jumps judged against the vehicle's previous good fix in
event time) into ``position_rejects``; binary COPY of the rest into a temp table and
``INSERT … ON CONFLICT DO NOTHING`` into ``positions`` (idempotent on (vehicle_id, ts): a re-sent
batch reports duplicates and stores nothing); run the engine on the newly stored fixes only,
then the warning models (``layers/transport/warnings/registry.py``: the terminals' alarm bits
and the transport chain's rules).
The caller answers 2xx after the commit, so an acknowledged fix is durable.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

import numpy as np
from numpy.typing import NDArray
from psycopg import AsyncConnection
from psycopg.rows import tuple_row

from layers.core.ingest import IngestKind, IngestResult, Screened, Target, ingest_batch
from layers.core.window import DEFAULT_WINDOW, TsWindow
from layers.risk.hexagons import fix_cells
from layers.transport import fix_filters, state
from layers.transport.config import TankerRules
from layers.transport.engine import process
from layers.transport.parse import Rows, parse_body
from layers.transport.site_events import derive_site_events
from layers.transport.warnings import registry as warnings
from layers.transport.warnings.model import Stored

MESSAGES = {
    fix_filters.INVALID_COORDINATES: "invalid_coordinates: lon/lat out of range or 0, 0",
    fix_filters.INVALID_VALUE: "invalid_value: speed_kmh (0–400) or heading (0–359) out of range",
    fix_filters.FUTURE: "future: ts is later than the server's clock allows",
    fix_filters.JUMP: "jump: implies more than 200 km/h from the vehicle's previous fix",
}

POSITIONS = Target(
    table="positions",
    temp="tmp_fixes",
    columns=(
        ("vehicle_id", "int4"),
        ("ts", "timestamptz"),
        ("lon", "float8"),
        ("lat", "float8"),
        ("speed_kmh", "float4"),
        ("heading", "int2"),
        ("alarm_bits", "int4"),
        ("h3_r8", "int8"),
    ),
    select="vehicle_id, ts, lon, lat, speed_kmh, nullif(heading, -1), alarm_bits, h3_r8",
    returning="vehicle_id, " + state.us_sql("ts") + ", lon, lat, speed_kmh, alarm_bits",
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


async def _last_good(
    conn: AsyncConnection[Any], rows: Rows, loaded: state.Loaded, known: np.ndarray
) -> dict[int, tuple[np.datetime64, float, float]]:
    """Each vehicle's previous good fix for the jump filter: its latest one, or — when the
    batch reaches back before it (late fixes) — the stored fix just before the batch. Only
    ``known`` rows count (a row refused for its ts does not move the reference)."""
    out: dict[int, tuple[np.datetime64, float, float]] = {}
    late_v, late_t = [], []
    for i, v in enumerate(loaded.state.vehicle_id.tolist()):
        mine = rows.t[(rows.vehicle_id == v) & known]
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
        "v": rows.vehicle_id[pick],
        "t": rows.t[pick],
        "lon": rows.lon[pick],
        "lat": rows.lat[pick],
        "s": rows.speed[pick],
        "r": reasons,
    }
    await conn.execute(_REJECTS.encode(), params)


class TankerFixes(IngestKind[Rows, state.Loaded]):
    """Tanker fixes: known vehicles, noise filters, the detector and the geofence rules."""

    target = POSITIONS
    key, noun, plural = "vehicle_id", "vehicle", "fixes"

    def __init__(self, rules: TankerRules, now: dt.datetime | None = None) -> None:
        self.rules = rules
        self.now = now

    def parse(self, body: bytes, content_type: str) -> Rows:
        return parse_body(body, content_type)

    def ids(self, rows: Rows) -> NDArray[np.int64]:
        return rows.vehicle_id

    async def lock(
        self, conn: AsyncConnection[Any], ids: list[int]
    ) -> tuple[state.Loaded, NDArray[Any]]:
        loaded = await state.load(conn, ids)
        return loaded, loaded.state.vehicle_id

    async def screen(
        self, conn: AsyncConnection[Any], rows: Rows, loaded: state.Loaded, known: np.ndarray
    ) -> Screened:
        """Noisy fixes are kept with their reason in ``position_rejects``; repeats of a fix
        within the batch count as duplicates, the others as rejections."""
        now = self.now or dt.datetime.now(dt.UTC)
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
            last_good=await _last_good(conn, rows, loaded, known),
        )
        noisy = np.flatnonzero(known & (codes != fix_filters.OK))
        reasons = [fix_filters.REASONS[int(c)] for c in codes[noisy]]
        await _store_rejects(conn, rows, noisy, reasons)
        out = Screened(codes == fix_filters.OK)
        for j, c in zip(noisy.tolist(), codes[noisy].tolist(), strict=True):
            if c == fix_filters.DUPLICATE:
                out.duplicates += 1
            else:
                out.rejected.append((j, MESSAGES[c]))
        return out

    def columns(self, rows: Rows, good: np.ndarray) -> list[np.ndarray]:
        return [
            rows.vehicle_id[good].astype(np.int32),
            rows.t[good],
            rows.lon[good],
            rows.lat[good],
            rows.speed[good].astype(np.float32),
            np.nan_to_num(rows.heading[good], nan=-1).astype(np.int16),
            rows.alarm_bits[good].astype(np.int32),
            fix_cells(rows.lon[good], rows.lat[good]),
        ]

    async def evaluate(
        self, conn: AsyncConnection[Any], stored: list[Any], loaded: state.Loaded
    ) -> list[int]:
        """The engine over the new fixes; the carriers that got a new illegal-parking alert
        are re-rated (their dynamic colour rises)."""
        fixes = Stored.of_rows(stored)
        alerts = (await process(conn, fixes, self.rules, loaded)).alerts
        # A stop at a waybill's origin or destination is its loading or unloading.
        await derive_site_events(conn, fixes.vehicles, self.rules)
        # The warning models: the terminals' alarm bits and the transport chain's rules.
        await warnings.judge_all(conn, fixes, self.rules)
        return sorted(alerts.carriers)


async def ingest(
    conn: AsyncConnection[Any],
    rows: Rows,
    rules: TankerRules,
    now: dt.datetime | None = None,
    window: TsWindow = DEFAULT_WINDOW,
) -> IngestResult:
    """Store and judge one batch; per-row problems are reported, never raised."""
    return await ingest_batch(conn, TankerFixes(rules, now), rows, window, now)
