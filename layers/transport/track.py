"""A vehicle's track as GeoJSON, for the map and for alert evidence.

One ``LineString`` feature whose ``properties.times`` (ISO 8601, UTC) and ``speeds_kmh`` run
parallel to its vertices (the common "timestamps beside coordinates" convention read by
MapLibre/Leaflet playback plugins), plus one ``Point`` feature per stop in the window.
"""

from __future__ import annotations

import datetime as dt
import json
from typing import Any

from psycopg import AsyncConnection
from psycopg.rows import tuple_row

#: Longest window one request may ask for (a day of 30 s fixes is 2,880 vertices).
MAX_WINDOW = dt.timedelta(days=7)

_FIXES = (
    "SELECT ts, lon, lat, speed_kmh FROM positions WHERE vehicle_id = %s AND ts >= %s"
    " AND ts <= %s ORDER BY ts"
)
_STOPS = (
    "SELECT id, start_ts, end_ts, duration_s, fix_count, is_open, zone_id, ST_AsGeoJSON(geom)"
    " FROM stops WHERE vehicle_id = %s AND start_ts <= %s AND end_ts >= %s ORDER BY start_ts"
)


async def track(
    conn: AsyncConnection[Any], vehicle_id: int, start: dt.datetime, end: dt.datetime
) -> dict[str, Any]:
    cur = conn.cursor(row_factory=tuple_row)
    await cur.execute(_FIXES, (vehicle_id, start, end))
    fixes = await cur.fetchall()
    await cur.execute(_STOPS, (vehicle_id, end, start))
    stops = await cur.fetchall()
    features: list[dict[str, Any]] = []
    if fixes:
        coords = [[float(r[1]), float(r[2])] for r in fixes]
        geom = {
            "type": "LineString" if len(coords) > 1 else "Point",
            "coordinates": coords if len(coords) > 1 else coords[0],
        }
        features.append(
            {
                "type": "Feature",
                "geometry": geom,
                "properties": {
                    "kind": "track",
                    "vehicle_id": vehicle_id,
                    "count": len(fixes),
                    "times": [r[0].astimezone(dt.UTC).isoformat() for r in fixes],
                    "speeds_kmh": [round(float(r[3]), 1) for r in fixes],
                },
            }
        )
    for sid, s0, s1, dur, n, is_open, zone, gj in stops:
        features.append(
            {
                "type": "Feature",
                "id": sid,
                "geometry": json.loads(gj),
                "properties": {
                    "kind": "stop",
                    "start": s0.isoformat(),
                    "end": s1.isoformat(),
                    "duration_s": dur,
                    "fix_count": n,
                    "open": is_open,
                    "zone_id": zone,
                },
            }
        )
    return {"type": "FeatureCollection", "features": features}
