"""Per-fix limits for the episode rules: the speed limit where a fix is, and the distance to
the vehicle's planned route.

Speed (docs/domain.md §3): hazmat tankers ≤ 80 km/h on expressways, ≤ 60 km/h elsewhere. A road's
own lower posted limit wins over the class cap, and a zone's ``speed_limit_kmh`` wins over both
(it is the local rule, e.g. 30 km/h in a chemical park). A fix takes the most permissive road
within ``road_snap_m``: where an expressway runs beside a local road the tanker gets the benefit
of the doubt instead of a false alarm. Only fixes faster than the lowest limit anywhere are
looked up at all, which skips most of a day's fixes (parked or slow).

Both lookups read reference tables only (roads, zones, the vehicle's own routes), never other
vehicles' rows, so the hot path stays distributable by vehicle (docs/architecture.md §5).
"""

from __future__ import annotations

import datetime as dt
from typing import Any

import numpy as np
from numpy.typing import NDArray
from psycopg import AsyncConnection
from psycopg.rows import tuple_row

from layers.transport.config import TankerRules

_FLOOR_SQL = """
SELECT least(%(other)s::float8, %(exp)s::float8,
             (SELECT min(speed_limit_kmh) FROM roads),
             (SELECT min(speed_limit_kmh) FROM zones WHERE retired_at IS NULL))
"""

# The degree pre-filter (distance / metres per degree of longitude) lets the GiST index on
# roads.geom work; the geography test is then exact.
_LIMITS_SQL = """
SELECT f.i, least(coalesce(z.lim, 'infinity'), coalesce(r.lim, %(other)s))
FROM unnest(%(i)s::int4[], %(lon)s::float8[], %(lat)s::float8[]) AS f(i, lon, lat)
CROSS JOIN LATERAL (SELECT ST_SetSRID(ST_MakePoint(f.lon, f.lat), 4326) AS g) p
LEFT JOIN LATERAL (
    SELECT min(zz.speed_limit_kmh) AS lim FROM zones zz
    WHERE ST_Intersects(zz.geom, p.g) AND zz.speed_limit_kmh IS NOT NULL AND zz.retired_at IS NULL
) z ON true
LEFT JOIN LATERAL (
    SELECT max(least(coalesce(rr.speed_limit_kmh, 'infinity'),
                     CASE WHEN rr.road_class = 'expressway' THEN %(exp)s ELSE %(other)s END)) AS lim
    FROM roads rr
    WHERE ST_DWithin(rr.geom, p.g, %(snap)s / (111320.0 * cos(radians(f.lat))))
      AND ST_DWithin(rr.geom::geography, p.g::geography, %(snap)s)
) r ON true
"""

_ROUTE_SQL = """
SELECT f.i, min(ST_Distance(r.geom::geography,
                            ST_SetSRID(ST_MakePoint(f.lon, f.lat), 4326)::geography)),
       min(r.corridor_m)
FROM unnest(%(i)s::int4[], %(v)s::int4[], %(t)s::timestamptz[], %(lon)s::float8[],
            %(lat)s::float8[]) AS f(i, v, t, lon, lat)
JOIN vehicle_routes r ON r.vehicle_id = f.v AND f.t >= r.valid_from AND f.t < r.valid_to
GROUP BY f.i
"""


async def _rows(conn: AsyncConnection[Any], query: str, params: dict[str, Any]) -> list[Any]:
    cur = conn.cursor(row_factory=tuple_row)
    await cur.execute(query, params)
    return await cur.fetchall()


async def speed_limits(
    conn: AsyncConnection[Any],
    lon: NDArray[np.float64],
    lat: NDArray[np.float64],
    speed: NDArray[np.float64],
    rules: TankerRules,
) -> NDArray[np.float64]:
    """The limit (km/h) at each fix faster than the lowest limit anywhere; NaN elsewhere."""
    out = np.full(len(lon), np.nan)
    if len(lon) == 0:
        return out
    base = {"other": rules.other_road_kmh, "exp": rules.expressway_kmh}
    floor = (await _rows(conn, _FLOOR_SQL, base))[0][0]
    pick = np.flatnonzero(speed > float(floor))
    if len(pick) == 0:
        return out
    params = {
        **base,
        "snap": rules.road_snap_m,
        "i": pick.astype(np.int32),
        "lon": lon[pick].astype(np.float64),
        "lat": lat[pick].astype(np.float64),
    }
    for i, lim in await _rows(conn, _LIMITS_SQL, params):
        out[i] = lim
    return out


async def route_distances(
    conn: AsyncConnection[Any],
    vehicle_id: NDArray[np.int64],
    t_us: NDArray[np.int64],
    lon: NDArray[np.float64],
    lat: NDArray[np.float64],
) -> tuple[NDArray[np.float64], NDArray[np.float64]]:
    """Distance (m) from each fix to its vehicle's planned route valid at that time, and the
    corridor width; NaN where no route applies (so no corridor rule)."""
    dist, width = np.full(len(lon), np.nan), np.full(len(lon), np.nan)
    if len(lon) == 0:
        return dist, width
    routed = await _rows(
        conn,
        "SELECT DISTINCT vehicle_id FROM vehicle_routes WHERE vehicle_id = ANY(%(v)s)",
        {"v": np.unique(vehicle_id).astype(np.int32).tolist()},
    )
    if not routed:
        return dist, width
    pick = np.flatnonzero(np.isin(vehicle_id, [r[0] for r in routed]))
    ts = t_us[pick].astype("datetime64[us]").astype(object)
    params = {
        "i": pick.astype(np.int32),
        "v": vehicle_id[pick].astype(np.int32),
        "t": [x.replace(tzinfo=dt.UTC) for x in ts],
        "lon": lon[pick].astype(np.float64),
        "lat": lat[pick].astype(np.float64),
    }
    for i, d, w in await _rows(conn, _ROUTE_SQL, params):
        dist[i], width[i] = d, w
    return dist, width
