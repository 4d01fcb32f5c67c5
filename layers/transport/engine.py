"""One batch of stored fixes through the detector and the rules, inside the caller's
transaction (fixes, stops, alerts and detector state commit together or not at all).

Late fixes (event time at or before the vehicle's latest processed fix, e.g. blind-area
back-fill): the vehicle's detector is re-run from the start of its latest stop that began at or
before the earliest late fix — the detector's state is exactly "no cluster" at a stop's first
fix, so the replay reproduces what an in-order delivery would have given — or, when it had no
stop, from 6 h before it. Its stops from that point are rewritten; alerts are matched by
overlapping episode (layers/transport/alerts.py), so a replay never duplicates one.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np
from numpy.typing import NDArray
from psycopg import AsyncConnection
from psycopg.rows import tuple_row

from layers.transport import detector, limits, parking, state
from layers.transport.alerts import AlertChanges, merge
from layers.transport.config import TankerRules
from layers.transport.parking import Candidate

#: Replay horizon for a vehicle with no stop before its earliest late fix.
REPLAY_WITHOUT_STOP_US = 6 * 3600 * 1_000_000


@dataclass
class NewFixes:
    """Fixes just stored (any order); times are µs since the Unix epoch."""

    vehicle_id: NDArray[np.int64]
    t: NDArray[np.int64]
    lon: NDArray[np.float64]
    lat: NDArray[np.float64]
    speed: NDArray[np.float64]


@dataclass
class EngineReport:
    fixes: int = 0
    stops: int = 0
    replayed: list[int] = field(default_factory=list)
    alerts: AlertChanges = field(default_factory=AlertChanges)


_RESTART_SQL = (
    "SELECT u.v, coalesce((SELECT " + state.us_sql("max(s.start_ts)") + " FROM stops s"
    " WHERE s.vehicle_id = u.v AND s.start_ts <= " + state.ts_sql("u.t") + "), 0)"
    " FROM unnest(%(v)s::int4[], %(t)s::int8[]) AS u(v, t)"
)
# Alerts keep their row when the stops they cite are recut; the link is cleared here, not by an
# ON DELETE SET NULL, which Citus refuses on a key holding the shard key (migration 0021).
_UNLINK_STOPS_SQL = (
    "UPDATE alerts a SET stop_id = NULL FROM stops s, unnest(%(v)s::int4[], %(t)s::int8[])"
    " AS u(v, t) WHERE s.vehicle_id = u.v AND s.start_ts >= "
    + state.ts_sql("u.t")
    + " AND a.vehicle_id = s.vehicle_id AND a.stop_id = s.id"
)
_DELETE_STOPS_SQL = (
    "DELETE FROM stops s USING unnest(%(v)s::int4[], %(t)s::int8[]) AS u(v, t)"
    " WHERE s.vehicle_id = u.v AND s.start_ts >= " + state.ts_sql("u.t")
)
_HISTORY_SQL = (
    "SELECT p.vehicle_id, " + state.us_sql("p.ts") + ", p.lon, p.lat, p.speed_kmh"
    " FROM unnest(%(v)s::int4[], %(t)s::int8[]) AS u(v, t)"
    " JOIN positions p ON p.vehicle_id = u.v AND p.ts >= "
    + state.ts_sql("u.t")
    + " ORDER BY p.vehicle_id, p.ts"
)
_STOPS_SQL = (
    "INSERT INTO stops (vehicle_id, start_ts, end_ts, fix_count, geom, duration_s, is_open,"
    " zone_id) SELECT u.v, " + state.ts_sql("u.s") + ", " + state.ts_sql("u.e") + ", u.n,"
    " ST_SetSRID(ST_MakePoint(u.lon, u.lat), 4326), (u.e - u.s) / 1e6, u.open, u.zone"
    " FROM unnest(%(v)s::int4[], %(s)s::int8[], %(e)s::int8[], %(n)s::int4[],"
    " %(lon)s::float8[], %(lat)s::float8[], %(open)s::bool[], %(zone)s::int4[])"
    " AS u(v, s, e, n, lon, lat, open, zone)"
    " ON CONFLICT (vehicle_id, start_ts) DO UPDATE SET end_ts = EXCLUDED.end_ts,"
    " fix_count = EXCLUDED.fix_count, geom = EXCLUDED.geom, duration_s = EXCLUDED.duration_s,"
    " is_open = EXCLUDED.is_open, zone_id = EXCLUDED.zone_id"
    " RETURNING id, vehicle_id, " + state.us_sql("start_ts")
)


async def _rows(conn: AsyncConnection[Any], query: str, params: dict[str, Any]) -> list[Any]:
    cur = conn.cursor(row_factory=tuple_row)
    await cur.execute(query.encode(), params)
    return await cur.fetchall() if cur.description else []


async def _replay_late(
    conn: AsyncConnection[Any], new: NewFixes, loaded: state.Loaded, report: EngineReport
) -> NewFixes:
    """Split off late vehicles, rewind them and return the fixes the detector must see."""
    slot = {int(v): i for i, v in enumerate(loaded.state.vehicle_id.tolist())}
    vids = np.unique(new.vehicle_id)
    order = np.lexsort((new.t, new.vehicle_id))
    v_sorted = new.vehicle_id[order]
    starts = np.flatnonzero(np.concatenate(([True], v_sorted[1:] != v_sorted[:-1])))
    first = new.t[order][starts]
    last_known = np.array([loaded.last_t[slot[int(v)]] for v in vids], dtype=np.int64)
    late = (last_known > 0) & (first <= last_known)
    if not late.any():
        return new
    late_v, late_t = vids[late], first[late]
    params = {"v": late_v.tolist(), "t": late_t.tolist()}
    restart = dict(await _rows(conn, _RESTART_SQL, params))
    at = [
        restart[int(v)] or int(t) - REPLAY_WITHOUT_STOP_US
        for v, t in zip(late_v, late_t, strict=True)
    ]
    params["t"] = at
    await _rows(conn, _UNLINK_STOPS_SQL, params)
    await _rows(conn, _DELETE_STOPS_SQL, params)
    hist = await _rows(conn, _HISTORY_SQL, params)
    state.reset(loaded, np.array([slot[int(v)] for v in late_v], dtype=np.int64))
    report.replayed = late_v.tolist()
    keep = ~np.isin(new.vehicle_id, late_v)
    h = np.array(hist, dtype=np.float64).reshape(-1, 5)
    return NewFixes(
        np.concatenate([new.vehicle_id[keep], h[:, 0].astype(np.int64)]),
        np.concatenate([new.t[keep], np.array([r[1] for r in hist], dtype=np.int64)]),
        np.concatenate([new.lon[keep], h[:, 2]]),
        np.concatenate([new.lat[keep], h[:, 3]]),
        np.concatenate([new.speed[keep], h[:, 4]]),
    )


def _episode_candidates(eps: detector.Episodes) -> list[Candidate]:
    out: list[Candidate] = []
    for kind, rule in detector.EPISODE_RULES.items():
        a = eps.rows[kind].arrays()
        if not len(a["vehicle_id"]):
            continue
        peak, lim = np.concatenate(eps.peak[kind]), np.concatenate(eps.limit[kind])
        for i in range(len(a["vehicle_id"])):
            s, e = int(a["start"][i]), int(a["end"][i])
            unit = "kmh" if kind == "over" else "m"
            details = {
                f"peak_{unit}": round(float(peak[i]), 1),
                f"limit_{unit}": round(float(lim[i]), 1),
                "duration_s": (e - s) / 1e6,
            }
            severe = peak[i] > lim[i] * 1.2
            out.append(
                Candidate(
                    int(a["vehicle_id"][i]),
                    rule,
                    None,
                    s,
                    e,
                    bool(a["open"][i]),
                    float(a["lon"][i]),
                    float(a["lat"][i]),
                    "severe" if severe else "moderate",
                    None,
                    None,
                    details,
                )
            )
    return out


async def _stops_and_candidates(
    conn: AsyncConnection[Any], stops: dict[str, np.ndarray], rules: TankerRules
) -> tuple[list[Candidate], list[int | None], int]:
    n = len(stops["vehicle_id"])
    if n == 0:
        return [], [], 0
    hits = await parking.zones_at(conn, stops["lon"], stops["lat"])
    zone_ids: list[int | None] = []
    cands: list[Candidate] = []
    for i in range(n):
        zid, c = parking.judge_stop(
            i,
            int(stops["vehicle_id"][i]),
            int(stops["start"][i]),
            int(stops["end"][i]),
            bool(stops["open"][i]),
            float(stops["lon"][i]),
            float(stops["lat"][i]),
            hits[i],
            rules,
        )
        zone_ids.append(zid)
        cands += c
    params = {
        "v": stops["vehicle_id"].astype(np.int64),
        "s": stops["start"].astype(np.int64),
        "e": stops["end"].astype(np.int64),
        "n": stops["n"].astype(np.int64),
        "lon": stops["lon"].astype(np.float64),
        "lat": stops["lat"].astype(np.float64),
        "open": stops["open"].astype(bool),
        "zone": zone_ids,
    }
    ids = {(int(v), int(s)): int(i) for i, v, s in await _rows(conn, _STOPS_SQL, params)}
    stop_ids = [
        ids.get((c.vehicle_id, int(stops["start"][c.stop]))) if c.stop is not None else None
        for c in cands
    ]
    return cands, stop_ids, n


async def process(
    conn: AsyncConnection[Any],
    new: NewFixes,
    rules: TankerRules,
    loaded: state.Loaded | None = None,
    notify: bool = True,
) -> EngineReport:
    """Run the detector and the rules over ``new`` (already stored) and save the state."""
    report = EngineReport(fixes=len(new.t))
    if len(new.t) == 0:
        return report
    if loaded is None:
        loaded = await state.load(conn, np.unique(new.vehicle_id).tolist())
    fx = await _replay_late(conn, new, loaded, report)
    order = np.lexsort((fx.t, fx.vehicle_id))
    fx = NewFixes(fx.vehicle_id[order], fx.t[order], fx.lon[order], fx.lat[order], fx.speed[order])
    speed_lim = await limits.speed_limits(conn, fx.lon, fx.lat, fx.speed, rules)
    dist, width = await limits.route_distances(conn, fx.vehicle_id, fx.t, fx.lon, fx.lat)
    fixes = detector.Fixes(
        fx.vehicle_id,
        fx.t,
        fx.lon,
        fx.lat,
        {"over": fx.speed, "dev": dist},
        {"over": speed_lim, "dev": width},
    )
    stops, eps = detector.run(fixes, loaded.state, rules)
    cands, stop_ids, report.stops = await _stops_and_candidates(conn, stops.arrays(), rules)
    cands += _episode_candidates(eps)
    stop_ids += [None] * (len(cands) - len(stop_ids))
    report.alerts = await merge(conn, cands, stop_ids, rules, notify)
    _advance_last(loaded, fx)
    await state.save(conn, loaded)
    return report


def _advance_last(loaded: state.Loaded, fx: NewFixes) -> None:
    """Remember each vehicle's latest fix (for lateness and the jump filter)."""
    v = fx.vehicle_id
    ends = np.flatnonzero(np.concatenate((v[1:] != v[:-1], [True])))
    slot = {int(x): i for i, x in enumerate(loaded.state.vehicle_id.tolist())}
    for j in ends.tolist():
        i = slot[int(v[j])]
        if fx.t[j] > loaded.last_t[i]:
            loaded.last_t[i], loaded.last_lon[i], loaded.last_lat[i] = fx.t[j], fx.lon[j], fx.lat[j]
