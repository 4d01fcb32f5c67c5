"""The detector state in ``vehicle_state``: loaded (and row-locked) at the start of a batch,
saved in the same transaction as the batch's fixes, so a crash or restart resumes exactly.

Times travel as int64 microseconds since the Unix epoch (``_US`` / ``_TS`` convert exactly in
SQL; a float epoch would lose microseconds).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
from numpy.typing import NDArray
from psycopg import AsyncConnection
from psycopg.rows import tuple_row

from layers.transport.detector import EPISODE_RULES, DetectorState, EpisodeState


def us_sql(col: str) -> str:
    """SQL for a timestamptz column as exact µs since the epoch (0 when NULL)."""
    return f"coalesce((extract(epoch FROM {col}) * 1000000)::int8, 0)"


def ts_sql(param: str) -> str:
    """SQL for µs since the epoch (0 = NULL) as timestamptz."""
    return f"'epoch'::timestamptz + nullif({param}, 0) * interval '1 microsecond'"


_EP_COLS = ("start_ts", "last_ts", "peak", "limit", "lon", "lat")
_LOAD_SQL = (
    "SELECT vehicle_id, state = 'stopped', anchor_ts IS NOT NULL, "
    + ", ".join(
        [
            us_sql("since"),
            us_sql("anchor_ts"),
            "anchor_lon",
            "anchor_lat",
            "cluster_n",
            "cluster_sum_lon",
            "cluster_sum_lat",
            us_sql("cluster_last_ts"),
            us_sql("last_ts"),
            "last_lon",
            "last_lat",
        ]
        + [
            us_sql(f"{k}_{c}") if c.endswith("ts") else f"{k}_{c}"
            for k in EPISODE_RULES
            for c in _EP_COLS
        ]
    )
    # A retired vehicle (migration 0012) is unknown to the engine: its fixes are rejected.
    + " FROM vehicle_state WHERE vehicle_id = ANY(%(v)s) AND NOT EXISTS (SELECT 1 FROM"
    " vehicles v WHERE v.id = vehicle_id AND v.retired_at IS NOT NULL)"
    " ORDER BY vehicle_id FOR UPDATE"
)


@dataclass
class Loaded:
    """States of the known vehicles of a batch and each one's latest stored fix."""

    state: DetectorState
    last_t: NDArray[np.int64]
    last_lon: NDArray[np.float64]
    last_lat: NDArray[np.float64]


def _col(rows: list[Any], j: int, dtype: Any) -> np.ndarray:
    return np.array([np.nan if r[j] is None and dtype is float else r[j] for r in rows], dtype)


async def load(conn: AsyncConnection[Any], vehicle_ids: list[int]) -> Loaded:
    """Lock and read the state of the vehicles among ``vehicle_ids`` that exist (in id order,
    so concurrent batches never deadlock); unknown ids are simply absent."""
    cur = conn.cursor(row_factory=tuple_row)
    await cur.execute(
        "INSERT INTO vehicle_state (vehicle_id) SELECT id FROM vehicles WHERE id = ANY(%(v)s)"
        " ORDER BY id ON CONFLICT DO NOTHING",
        {"v": vehicle_ids},
    )
    await cur.execute(_LOAD_SQL, {"v": vehicle_ids})
    rows = await cur.fetchall()
    f, i = float, np.int64
    st = DetectorState(
        _col(rows, 0, i),
        _col(rows, 2, bool),
        _col(rows, 1, bool),
        _col(rows, 3, i),
        _col(rows, 4, i),
        _col(rows, 5, f),
        _col(rows, 6, f),
        _col(rows, 7, i),
        _col(rows, 8, f),
        _col(rows, 9, f),
        _col(rows, 10, i),
    )
    j = 14
    for kind in EPISODE_RULES:
        start = _col(rows, j, i)
        st.episodes[kind] = EpisodeState(
            start > 0,
            start,
            _col(rows, j + 1, i),
            _col(rows, j + 2, f),
            _col(rows, j + 3, f),
            _col(rows, j + 4, f),
            _col(rows, j + 5, f),
        )
        j += len(_EP_COLS)
    st.sum_lon = np.nan_to_num(st.sum_lon)
    st.sum_lat = np.nan_to_num(st.sum_lat)
    return Loaded(st, _col(rows, 11, i), _col(rows, 12, f), _col(rows, 13, f))


def _nulls(column: str) -> str:
    """A float column sent with NaN for NULL (numpy arrays have no NULL), back to NULL."""
    return f"nullif({column}, 'NaN')"


async def save(conn: AsyncConnection[Any], loaded: Loaded) -> None:
    """Write every vehicle's state back (one statement)."""
    s = loaded.state
    if len(s.vehicle_id) == 0:
        return
    params: dict[str, Any] = {
        "v": s.vehicle_id,
        "state": np.where(
            s.stopped, "stopped", np.where(s.has_anchor, "moving", "unknown")
        ).tolist(),
        "since": s.since,
        "at": np.where(s.has_anchor, s.anchor_t, 0),
        "ax": s.anchor_lon,
        "ay": s.anchor_lat,
        "n": s.n,
        "sx": s.sum_lon,
        "sy": s.sum_lat,
        "ct": s.last_t,
        "lt": loaded.last_t,
        "lx": loaded.last_lon,
        "ly": loaded.last_lat,
    }
    sets, cols = [], []
    for kind, ep in s.episodes.items():
        params[f"{kind}_s"] = np.where(ep.active, ep.start, 0)
        params[f"{kind}_l"] = np.where(ep.active, ep.last, 0)
        for c in ("peak", "limit", "lon", "lat"):
            params[f"{kind}_{c}"] = np.where(ep.active, getattr(ep, c), np.nan)
        cols += [f"%({kind}_s)s::int8[]", f"%({kind}_l)s::int8[]"]
        cols += [f"%({kind}_{c})s::float8[]" for c in ("peak", "limit", "lon", "lat")]
        sets += [
            f"{kind}_start_ts = {ts_sql(f'u.{kind}_s')}",
            f"{kind}_last_ts = {ts_sql(f'u.{kind}_l')}",
        ]
        sets += [f"{kind}_{c} = {_nulls(f'u.{kind}_{c}')}" for c in ("peak", "limit", "lon", "lat")]
    names = ["v", "state", "since", "at", "ax", "ay", "n", "sx", "sy", "ct", "lt", "lx", "ly"]
    names += [f"{k}_{c}" for k in s.episodes for c in ("s", "l", "peak", "limit", "lon", "lat")]
    types = [
        "int4",
        "text",
        "int8",
        "int8",
        "float8",
        "float8",
        "int4",
        "float8",
        "float8",
        "int8",
        "int8",
        "float8",
        "float8",
    ]
    arrays = [f"%({n})s::{t}[]" for n, t in zip(names, types, strict=False)] + cols
    query = (
        "UPDATE vehicle_state s SET state = u.state, since = "
        + ts_sql("u.since")
        + ", anchor_ts = "
        + ts_sql("u.at")
        + f", anchor_lon = {_nulls('u.ax')}, anchor_lat = {_nulls('u.ay')},"
        " cluster_n = u.n, cluster_sum_lon = u.sx, cluster_sum_lat = u.sy,"
        " cluster_last_ts = "
        + ts_sql("u.ct")
        + ", last_ts = "
        + ts_sql("u.lt")
        + f", last_lon = {_nulls('u.lx')}, last_lat = {_nulls('u.ly')}, updated_at = now(), "
        + ", ".join(sets)
        + " FROM unnest("
        + ", ".join(arrays)
        + ") AS u("
        + ", ".join(names)
        + ")"
        " WHERE s.vehicle_id = u.v"
    )
    await conn.execute(query.encode(), params)


def reset(loaded: Loaded, rows: NDArray[np.int64]) -> None:
    """Forget the detector state of ``rows`` (before replaying their history)."""
    fresh = DetectorState.empty(loaded.state.vehicle_id[rows])
    s = loaded.state
    for name in (
        "has_anchor",
        "stopped",
        "since",
        "anchor_t",
        "anchor_lon",
        "anchor_lat",
        "n",
        "sum_lon",
        "sum_lat",
        "last_t",
    ):
        getattr(s, name)[rows] = getattr(fresh, name)
    for kind, ep in s.episodes.items():
        for name in ("active", "start", "last", "peak", "limit", "lon", "lat"):
            getattr(ep, name)[rows] = getattr(fresh.episodes[kind], name)
