"""Alert reads for the live feed and the evidence view (no HTTP here).

The feed sends each alert exactly as ``GET /api/alerts/{id}`` shows it, so these queries reuse
the lifecycle module's Feature expression instead of keeping a second copy of its shape.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import json
from collections.abc import Sequence
from pathlib import Path
from typing import Any, Final

from psycopg import AsyncConnection
from psycopg.rows import tuple_row

from layers.alerts.lifecycle import _FEATURE, _FROM, AlertNotFound
from layers.core.lifecycle import archived_track
from layers.core.partitions import partition_name

#: Track shown around an episode, before its start and after its end (docs/domain.md §3 evidence).
EVIDENCE_MARGIN: Final = dt.timedelta(minutes=15)
#: Longest episode whose whole track is returned; a longer one is cut to this after its start.
EVIDENCE_MAX_SPAN: Final = dt.timedelta(hours=24)

_BY_IDS = "SELECT " + _FEATURE + ", a.updated_at" + _FROM + " WHERE a.id = ANY(%s) ORDER BY a.id"
_SINCE = (
    "SELECT " + _FEATURE + ", a.updated_at" + _FROM + " WHERE a.updated_at >= %(since)s"
    " ORDER BY a.updated_at, a.id LIMIT %(limit)s"
)
# Newest change first: a poller reads from the top until it meets an entry it has.
_LATEST = (
    "SELECT " + _FEATURE + _FROM + " WHERE (%(districts)s::text[] IS NULL"
    " OR a.district = ANY(%(districts)s)) ORDER BY a.updated_at DESC, a.id DESC LIMIT %(limit)s"
)
_MARK = "SELECT updated_at, created_at, revision FROM alerts WHERE id = %s"


def _feature(value: Any) -> dict[str, Any]:
    out: dict[str, Any] = value if isinstance(value, dict) else json.loads(value)
    return out


async def alerts_by_ids(conn: AsyncConnection[Any], ids: Sequence[int]) -> list[dict[str, Any]]:
    """The alerts as Features, in one round trip (a NOTIFY names up to 500 of them)."""
    if not ids:
        return []
    cur = conn.cursor(row_factory=tuple_row)
    await cur.execute(_BY_IDS.encode(), (list(ids),))
    return [_feature(r[0]) for r in await cur.fetchall()]


async def alerts_changed_since(
    conn: AsyncConnection[Any], since: dt.datetime, limit: int
) -> list[dict[str, Any]]:
    """Alerts updated at or after ``since``, oldest change first, at most ``limit``."""
    cur = conn.cursor(row_factory=tuple_row)
    await cur.execute(_SINCE.encode(), {"since": since, "limit": limit})
    return [_feature(r[0]) for r in await cur.fetchall()]


async def latest_alerts(
    conn: AsyncConnection[Any], districts: Sequence[str] | None, limit: int
) -> list[dict[str, Any]]:
    """The ``limit`` most recently changed alerts of ``districts`` (None: all), newest first."""
    cur = conn.cursor(row_factory=tuple_row)
    params = {"districts": list(districts) if districts is not None else None, "limit": limit}
    await cur.execute(_LATEST.encode(), params)
    return [_feature(r[0]) for r in await cur.fetchall()]


async def district_exists(conn: AsyncConnection[Any], code: str) -> bool:
    cur = conn.cursor(row_factory=tuple_row)
    await cur.execute("SELECT 1 FROM districts WHERE code = %s", (code,))
    return await cur.fetchone() is not None


async def replay_start(conn: AsyncConnection[Any], alert_id: int, revision: int) -> dt.datetime:
    """Where to resume after a client last saw ``alert_id`` at ``revision``.

    Only the alert's current revision has a known time; when it moved on, the client missed
    that change too, so resume from the alert's creation (over-replaying is harmless: events
    carry ``id:revision`` and clients drop ones they have).
    """
    cur = conn.cursor(row_factory=tuple_row)
    await cur.execute(_MARK, (alert_id,))
    row = await cur.fetchone()
    if row is None:
        raise AlertNotFound(alert_id)
    updated, created, current = row
    start: dt.datetime = updated if int(current) <= revision else created
    return start


_EVIDENCE = """
WITH a AS (
  SELECT a.id, a.vehicle_id, a.rule, a.zone_id, a.stop_id, a.episode_start, a.episode_end,
         coalesce(a.episode_end, now()) AS until
  FROM alerts a WHERE a.id = %(id)s
), w AS (
  SELECT a.*, a.episode_start - %(margin)s AS t0,
         least(a.until, a.episode_start + %(span)s) + %(margin)s AS t1
  FROM a
), p AS (
  -- the time window bounds the partitioned table, so only the days concerned are scanned
  SELECT p.ts, p.lon, p.lat, p.speed_kmh FROM w JOIN positions p
    ON p.vehicle_id = w.vehicle_id AND p.ts BETWEEN w.t0 AND w.t1
)
SELECT
  (SELECT row_to_json(w) FROM w),
  (SELECT json_build_object(
      'coordinates', coalesce(json_agg(json_build_array(round(lon::numeric, 7),
                                   round(lat::numeric, 7)) ORDER BY ts), '[]'::json),
      'times', coalesce(json_agg(ts ORDER BY ts), '[]'::json),
      'speeds', coalesce(json_agg(speed_kmh ORDER BY ts), '[]'::json)) FROM p),
  (SELECT json_build_object(
      'type', 'Feature', 'id', s.id, 'geometry', ST_AsGeoJSON(s.geom, 7)::json,
      'properties', json_build_object('kind', 'stop', 'id', s.id, 'start', s.start_ts,
        'end', s.end_ts, 'duration_s', s.duration_s, 'fix_count', s.fix_count,
        'is_open', s.is_open, 'zone_id', s.zone_id))
   FROM stops s JOIN w ON s.vehicle_id = w.vehicle_id AND s.id = w.stop_id),
  (SELECT json_build_object(
      'type', 'Feature', 'id', z.id,
      -- a one-part zone is shown as the Polygon it is
      'geometry', ST_AsGeoJSON(CASE WHEN ST_NumGeometries(z.geom) = 1
                                    THEN ST_GeometryN(z.geom, 1) ELSE z.geom END, 7)::json,
      'properties', json_build_object('kind', 'zone', 'id', z.id, 'name', z.name,
        'zone_kind', z.kind, 'district', z.district, 'max_dwell_s', z.max_dwell_s,
        'active_hours', z.active_hours, 'retired_at', z.retired_at))
   FROM zones z JOIN w ON z.id = w.zone_id)
"""


async def _add_archived(
    conn: AsyncConnection[Any], archive_dir: Path, window: dict[str, Any], track: dict[str, Any]
) -> None:
    """Merge the archived days' fixes of the window into ``track`` (time order)."""
    t0 = dt.datetime.fromisoformat(window["t0"])
    t1 = dt.datetime.fromisoformat(window["t1"])
    days = [
        t0.astimezone(dt.UTC).date() + dt.timedelta(days=i)
        for i in range((t1.astimezone(dt.UTC).date() - t0.astimezone(dt.UTC).date()).days + 1)
    ]
    cur = conn.cursor(row_factory=tuple_row)
    await cur.execute(
        "SELECT d FROM unnest(%s::date[], %s::text[]) AS u(d, name)"
        " WHERE to_regclass(name) IS NULL",
        (days, [partition_name("positions", d) for d in days]),
    )
    gone = [r[0] for r in await cur.fetchall()]
    if not gone:
        return
    rows = await asyncio.to_thread(
        archived_track, archive_dir, gone, int(window["vehicle_id"]), t0, t1
    )
    if not rows:
        return
    merged = sorted(
        [
            (dt.datetime.fromisoformat(t), c, s)
            for t, c, s in zip(track["times"], track["coordinates"], track["speeds"], strict=True)
        ]
        + [(ts, [round(lon, 7), round(lat, 7)], speed) for ts, lon, lat, speed in rows],
        key=lambda r: r[0],
    )
    track["times"] = [t.isoformat() for t, _, _ in merged]
    track["coordinates"] = [c for _, c, _ in merged]
    track["speeds"] = [s for _, _, s in merged]


async def evidence(
    conn: AsyncConnection[Any], alert_id: int, archive_dir: Path | None = None
) -> dict[str, Any]:
    """GeoJSON FeatureCollection: the track around the episode, the stop, the zone.

    The track is one LineString with a ``times`` array (one ISO time per vertex), the shape
    ``GET /api/vehicles/{id}/track`` uses, so the map draws both the same way. Days of the
    window whose partition was archived and dropped are read from their GeoParquet file in
    ``archive_dir`` (layers/core/lifecycle.py): an alert keeps its evidence after retention.
    """
    cur = conn.cursor(row_factory=tuple_row)
    params = {"id": alert_id, "margin": EVIDENCE_MARGIN, "span": EVIDENCE_MAX_SPAN}
    await cur.execute(_EVIDENCE.encode(), params)
    row = await cur.fetchone()
    if row is None or row[0] is None:
        raise AlertNotFound(alert_id)
    window, track, stop, zone = (_feature(v) if v is not None else None for v in row)
    assert window is not None and track is not None
    if archive_dir is not None:
        await _add_archived(conn, archive_dir, window, track)
    features: list[dict[str, Any]] = []
    coords = track["coordinates"]
    if coords:
        features.append(
            {
                "type": "Feature",
                "geometry": {
                    "type": "LineString" if len(coords) > 1 else "Point",
                    "coordinates": coords if len(coords) > 1 else coords[0],
                },
                "properties": {
                    "kind": "track",
                    "vehicle_id": window["vehicle_id"],
                    "times": track["times"],
                    "speeds_kmh": track["speeds"],
                    "from": window["t0"],
                    "to": window["t1"],
                },
            }
        )
    features += [f for f in (stop, zone) if f is not None]
    return {
        "type": "FeatureCollection",
        "alert_id": alert_id,
        "rule": window["rule"],
        "episode_start": window["episode_start"],
        "episode_end": window["episode_end"],
        "features": features,
    }
