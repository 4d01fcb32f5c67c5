"""Loaded trips inferred from where a vehicle stops (issue 14 item 3; docs/transport.md §8).

A waybill says when a vehicle is loaded; a vehicle without one (or whose waybill was never
activated) is judged loaded from its stops, read for the batch's vehicles only:

* a *site stop* lasts at least :attr:`TankerRules.site_loading_min_s`
  (``GEORISK_TANKER_SITE_LOADING_MIN_S``, 15 min — a tanker is filled in 20–60 min, while a
  delivery at the gate takes less) with its centroid at a hazmat enterprise's site (inside
  its site polygon, or within :attr:`TankerRules.site_radius_m` of its point; the best match:
  covering polygon first, then the nearest point);
* empty → *loaded* at a site stop at a producer's, store's or trader's site
  (:data:`LOADING_CATEGORIES`: where hazmat goods are shipped from);
* loaded → empty at a site stop at another hazmat enterprise's site
  (:data:`UNLOADING_CATEGORIES`, carriers' own yards excluded: parking at the depot is not a
  delivery); a new site stop at the loading site itself ends the trip and starts another
  (the vehicle came back and reloaded);
* the trip *departs* when the loading stop closes;
* a stop in a designated parking lot is never a site stop (a lot is no loading place, and
  most long stops of a fleet are there: skipping them keeps the site lookups cheap).

The machine starts empty :data:`chain.LOOKBACK_US` (24 h) before the batch's first fix: a
loading longer ago is not seen (a hazmat trip in the city takes hours, not days). Whether a
waybill covered the trip is the caller's business (``unwaybilled.py``).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Final

from psycopg import AsyncConnection
from psycopg.rows import tuple_row

from layers.transport.config import TankerRules
from layers.transport.state import ts_sql, us_sql

LOADING_CATEGORIES: Final = ("production", "storage", "trading")
UNLOADING_CATEGORIES: Final = ("production", "storage", "trading", "use", "disposal")


@dataclass(frozen=True)
class SiteStop:
    id: int
    vehicle_id: int
    start_us: int
    end_us: int
    is_open: bool
    lon: float
    lat: float
    enterprise_id: int
    enterprise_name: str
    category: str


@dataclass(frozen=True)
class Trip:
    """A loaded trip: its loading stop and, once it is over, the stop that unloaded it."""

    load: SiteStop
    unload: SiteStop | None

    @property
    def departed(self) -> bool:
        return not self.load.is_open

    @property
    def depart_us(self) -> int:
        return self.load.end_us


def loaded_trips(stops: Sequence[SiteStop]) -> list[Trip]:
    """One vehicle's trips from its site stops (sorted by start), per the module's doc."""
    out: list[Trip] = []
    load: SiteStop | None = None
    for s in stops:
        if load is not None and s.category in UNLOADING_CATEGORIES:
            out.append(Trip(load, s))
            load = None
            if s.enterprise_id != out[-1].load.enterprise_id:
                continue  # delivered elsewhere: empty now
        if load is None and s.category in LOADING_CATEGORIES:
            load = s
    if load is not None:
        out.append(Trip(load, None))
    return out


# The long stops outside lots first (MATERIALIZED), then the site lookup for those few: left to
# itself, the generic plan a prepared statement settles on after a few runs looked up the sites
# of every stop before dropping the lots' (40 ms a batch instead of 3).
_SITE_STOPS: Final = (
    "WITH s AS MATERIALIZED (SELECT s.id, s.vehicle_id, s.start_ts, s.end_ts, s.is_open,"
    " s.geom FROM stops s"
    " WHERE s.vehicle_id = ANY(%(v)s::int4[]) AND s.start_ts >= " + ts_sql("%(since)s") + ""
    " AND s.start_ts <= " + ts_sql("%(until)s") + " AND s.duration_s >= %(min_s)s"
    # A designated lot is no loading place (the engine attributes a stop to its lot first):
    # skipping lots keeps the site lookups to the few stops that can be loadings.
    " AND NOT EXISTS (SELECT 1 FROM zones z WHERE z.id = s.zone_id"
    " AND z.kind = 'designated_parking'))"
    " SELECT s.id, s.vehicle_id, " + us_sql("s.start_ts") + ", " + us_sql("s.end_ts") + ","
    " s.is_open, ST_X(s.geom), ST_Y(s.geom), e.id, e.name, e.category"
    " FROM s CROSS JOIN LATERAL (SELECT e.id, e.name, e.category FROM enterprises e"
    " WHERE e.is_hazmat AND e.retired_at IS NULL AND e.category = ANY(%(cats)s::text[])"
    " AND (ST_Covers(e.site_geom, s.geom)"
    " OR (ST_DWithin(e.geom, s.geom, %(r)s / (111320.0 * cos(radians(ST_Y(s.geom)))))"
    " AND ST_DWithin(e.geom::geography, s.geom::geography, %(r)s)))"
    " ORDER BY coalesce(ST_Covers(e.site_geom, s.geom), false) DESC,"
    " ST_Distance(e.geom::geography, s.geom::geography), e.id LIMIT 1) e"
    " ORDER BY s.vehicle_id, s.start_ts"
)


async def site_stops(
    conn: AsyncConnection[Any],
    vehicles: Sequence[int],
    since_us: int,
    until_us: int,
    rules: TankerRules,
) -> dict[int, list[SiteStop]]:
    """The site stops of ``vehicles`` begun in [since, until], by vehicle, in time order
    (one query: the stops index, then the enterprises' GiST indexes per long stop)."""
    cur = conn.cursor(row_factory=tuple_row)
    params = {
        "v": list(vehicles),
        "since": since_us,
        "until": until_us,
        "min_s": rules.site_loading_min_s,
        "r": rules.site_radius_m,
        "cats": list(UNLOADING_CATEGORIES),
    }
    await cur.execute(_SITE_STOPS, params)
    out: dict[int, list[SiteStop]] = {}
    for r in await cur.fetchall():
        s = SiteStop(int(r[0]), int(r[1]), int(r[2]), int(r[3]), bool(r[4]), *r[5:10])
        out.setdefault(s.vehicle_id, []).append(s)
    return out
