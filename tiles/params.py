"""What a tile request needs besides its address: the time window of the layers that have time
(``?from=&to=`` for tracks, ``?at=`` for latest positions) and the city's extent that TileJSON,
OGC collections and tileset metadata announce. Shared by ``/tiles`` and ``/ogc`` (one home).
"""

from __future__ import annotations

import datetime as dt
from typing import Any

from psycopg.rows import tuple_row

from layers.core.errors import FieldError, InvalidInput
from tiles.engine import TimeParams


def _utc(value: dt.datetime) -> dt.datetime:
    return value if value.tzinfo else value.replace(tzinfo=dt.UTC)


def time_params(
    track_max_hours: float,
    latest_max_age_h: float,
    t_from: dt.datetime | None = None,
    t_to: dt.datetime | None = None,
    at: dt.datetime | None = None,
) -> tuple[TimeParams, TimeParams]:
    """(track window, latest-position window): the window defaults to the last hour and may
    span at most ``track_max_hours``; a latest position is at most ``latest_max_age_h`` older
    than ``at`` (default now). A window that ends before it starts is a 422 naming ``from``."""
    now = dt.datetime.now(dt.UTC)
    end = _utc(t_to) if t_to else now
    start = _utc(t_from) if t_from else end - dt.timedelta(hours=1)
    if start >= end:
        raise InvalidInput("from: must be before to", [FieldError("from", "must be before to")])
    if end - start > dt.timedelta(hours=track_max_hours):
        reason = f"the window may span at most {track_max_hours:g} hours"
        raise InvalidInput(f"to: {reason}", [FieldError("to", reason)])
    window = TimeParams(start, end, f"from={t_from}&to={t_to}" if t_from or t_to else "")
    moment = _utc(at) if at else now
    since = moment - dt.timedelta(hours=latest_max_age_h)
    return window, TimeParams(since, moment, f"at={at}" if at else "")


async def city_bounds(conn: Any) -> tuple[float, float, float, float] | None:
    """The districts' extent (lon/lat), None while no district is loaded."""
    cur = conn.cursor(row_factory=tuple_row)
    await cur.execute(
        "SELECT ST_XMin(e), ST_YMin(e), ST_XMax(e), ST_YMax(e)"
        " FROM (SELECT ST_Extent(geom)::geometry AS e FROM districts) d"
    )
    row = await cur.fetchone()
    if not row or row[0] is None:
        return None
    return (float(row[0]), float(row[1]), float(row[2]), float(row[3]))
