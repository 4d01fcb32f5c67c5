"""What the waybill warning models read about a batch's vehicles: their waybills' active
intervals and the hazmat sites their stops are at (docs/transport.md §8). Shared reads, no rule.

A waybill is *active* from its first step into ``loading`` or ``in_transit`` until its step
into ``delivered`` or ``cancelled`` (``waybill_events``, event time), so a back-filled fix is
judged against the waybill as it was when the fix was taken, not as it is now. Only waybills
active now or finished within the lookback are read: one indexed query on
``waybills.vehicle_id`` for the batch, the models' cheap gate.

"At a site" is the rule of ``layers/transport/site_events.py``: inside the enterprise's site
polygon, or within :attr:`TankerRules.site_radius_m` of its point.
"""

from __future__ import annotations

import math
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from typing import Any, Final

from psycopg import AsyncConnection
from psycopg.rows import tuple_row

from layers.transport.alerts import AlertChanges, merge
from layers.transport.config import TankerRules
from layers.transport.parking import Candidate
from layers.transport.state import ts_sql, us_sql
from layers.transport.warnings.model import Judge, Stored

#: How far back from a batch's first fix the models look (episodes, trips, finished waybills).
LOOKBACK_US: Final = 24 * 3600 * 1_000_000
#: Stands for "not yet" (an open interval's end) in µs comparisons.
NEVER: Final = 2**62


@dataclass(frozen=True)
class Waybill:
    id: int
    code: str
    vehicle_id: int
    state: str
    escort_id: int | None
    driver_id: int
    hazmat_class: str
    un_number: str
    substance: str
    origin_id: int | None
    destination_id: int | None
    consignee_id: int
    consignee_name: str
    origin: tuple[float, float]
    destination: tuple[float, float]
    has_corridor: bool
    #: µs: first step into loading / in_transit, first into in_transit, first into
    #: delivered / cancelled (NEVER while still active).
    active_from: int
    transit_from: int | None
    active_to: int

    def active_at(self, t: int) -> bool:
        return self.active_from <= t <= self.active_to

    def in_transit_at(self, t: int) -> bool:
        return self.transit_from is not None and self.transit_from <= t <= self.active_to


_WAYBILLS: Final = (
    "SELECT w.id, w.code, w.vehicle_id, w.state, w.escort_id, w.driver_id, w.hazmat_class,"
    " w.un_number, w.substance_name, w.origin_id, w.destination_id, w.consignee_id, c.name,"
    " ST_X(w.origin_geom), ST_Y(w.origin_geom), ST_X(w.destination_geom),"
    " ST_Y(w.destination_geom), w.corridor IS NOT NULL,"
    " " + us_sql("coalesce(a.active_at, w.state_changed_at)") + ","
    # A waybill put in a state without events (an import) counts from its state's change.
    " "
    + us_sql("coalesce(a.transit_at, CASE WHEN w.state = 'in_transit' THEN w.state_changed_at END)")
    + ", "
    + us_sql("a.done_at")
    + ""
    " FROM waybills w JOIN enterprises c ON c.id = w.consignee_id"
    " CROSS JOIN LATERAL (SELECT"
    " min(e.at) FILTER (WHERE e.to_state IN ('loading', 'in_transit')) AS active_at,"
    " min(e.at) FILTER (WHERE e.to_state = 'in_transit') AS transit_at,"
    " min(e.at) FILTER (WHERE e.to_state IN ('delivered', 'cancelled')) AS done_at"
    " FROM waybill_events e WHERE e.waybill_id = w.id AND e.from_state <> e.to_state) a"
    " WHERE w.vehicle_id = ANY(%(v)s::int4[]) AND (w.state IN ('loading', 'in_transit')"
    " OR (w.state IN ('delivered', 'cancelled') AND w.state_changed_at >= "
    + ts_sql("%(since)s")
    + " AND a.active_at IS NOT NULL)) ORDER BY w.vehicle_id, 19"
)


async def waybills(
    conn: AsyncConnection[Any], vehicles: Sequence[int], since_us: int
) -> dict[int, list[Waybill]]:
    """The waybills of ``vehicles`` active now or finished since ``since_us``, by vehicle."""
    out: dict[int, list[Waybill]] = {}
    if not vehicles:
        return out
    cur = conn.cursor(row_factory=tuple_row)
    await cur.execute(_WAYBILLS, {"v": list(vehicles), "since": since_us})
    for r in await cur.fetchall():
        transit = int(r[19]) or None
        done = int(r[20]) or NEVER
        w = Waybill(
            id=int(r[0]),
            code=r[1],
            vehicle_id=int(r[2]),
            state=r[3],
            escort_id=r[4],
            driver_id=int(r[5]),
            hazmat_class=r[6],
            un_number=r[7],
            substance=r[8],
            origin_id=r[9],
            destination_id=r[10],
            consignee_id=int(r[11]),
            consignee_name=r[12],
            origin=(float(r[13]), float(r[14])),
            destination=(float(r[15]), float(r[16])),
            has_corridor=bool(r[17]),
            active_from=int(r[18]),
            transit_from=transit,
            active_to=done,
        )
        out.setdefault(w.vehicle_id, []).append(w)
    return out


@dataclass(frozen=True)
class Site:
    """A hazmat enterprise a point is at: ``covered`` by its site polygon, else ``distance_m``
    from its point (within the radius)."""

    enterprise_id: int
    name: str
    category: str
    covered: bool
    distance_m: float


# The degree pre-filter lets the GiST index on enterprises.geom work (as in limits.py); the
# geography test is then exact. Covering polygons first, then the nearest point.
_SITES: Final = """
SELECT f.i, e.id, e.name, e.category, coalesce(ST_Covers(e.site_geom, p.g), false) AS covered,
       ST_Distance(e.geom::geography, p.g::geography)
FROM unnest(%(i)s::int4[], %(lon)s::float8[], %(lat)s::float8[]) AS f(i, lon, lat)
CROSS JOIN LATERAL (SELECT ST_SetSRID(ST_MakePoint(f.lon, f.lat), 4326) AS g) p
JOIN enterprises e ON e.is_hazmat AND e.retired_at IS NULL AND (
    ST_Covers(e.site_geom, p.g)
    OR (ST_DWithin(e.geom, p.g, %(r)s / (111320.0 * cos(radians(f.lat))))
        AND ST_DWithin(e.geom::geography, p.g::geography, %(r)s)))
ORDER BY f.i, covered DESC, 6, e.id
"""


async def sites_at(
    conn: AsyncConnection[Any], lon: Sequence[float], lat: Sequence[float], radius_m: float
) -> list[list[Site]]:
    """The hazmat enterprises each point is at, best match first."""
    out: list[list[Site]] = [[] for _ in lon]
    if not lon:
        return out
    cur = conn.cursor(row_factory=tuple_row)
    params = {"i": list(range(len(lon))), "lon": list(lon), "lat": list(lat), "r": radius_m}
    await cur.execute(_SITES, params)
    for i, eid, name, category, covered, dist in await cur.fetchall():
        out[i].append(Site(int(eid), name, category, bool(covered), float(dist)))
    return out


def metres(a: tuple[float, float], b: tuple[float, float]) -> float:
    """Great-circle distance between two lon/lat points (the fix filters' sphere)."""
    lon1, lat1, lon2, lat2 = map(math.radians, (*a, *b))
    h = (
        math.sin((lat2 - lat1) / 2) ** 2
        + math.cos(lat1) * math.cos(lat2) * math.sin((lon2 - lon1) / 2) ** 2
    )
    return 2 * 6_371_008.8 * math.asin(math.sqrt(min(1.0, h)))


@dataclass
class Batch:
    """One batch of stored fixes as the waybill models see it: each vehicle's span, the
    lookback's start, and its vehicles' waybills read once for all the models."""

    stored: Stored
    span: dict[int, tuple[int, int]]
    since: int
    _waybills: dict[int, list[Waybill]] | None = None

    @classmethod
    def of(cls, stored: Stored) -> Batch:
        span = stored.spans
        return cls(stored, span, min((lo for lo, _ in span.values()), default=0) - LOOKBACK_US)

    async def waybills(self, conn: AsyncConnection[Any]) -> dict[int, list[Waybill]]:
        """The vehicles' waybills (``waybills()``), read on first use."""
        if self._waybills is None:
            self._waybills = await waybills(conn, sorted(self.span), self.since)
        return self._waybills


@dataclass
class Found:
    """The alerts a model wants, with the stop behind each (None: not a stop's)."""

    cands: list[Candidate] = field(default_factory=list)
    stop_ids: list[int | None] = field(default_factory=list)

    def add(self, cands: Sequence[Candidate], stop_id: int | None = None) -> None:
        self.cands += cands
        self.stop_ids += [stop_id] * len(cands)

    def extend(self, other: Found) -> None:
        self.cands += other.cands
        self.stop_ids += other.stop_ids


async def merge_found(conn: AsyncConnection[Any], found: Found, rules: TankerRules) -> AlertChanges:
    return await merge(conn, found.cands, found.stop_ids, rules)


#: A waybill model's finder: the candidates of one batch, not yet merged.
Find = Callable[[AsyncConnection[Any], Batch, TankerRules], Awaitable[Found]]


def judge_of(find: Find) -> Judge:
    """A model's judge alone (without the others of ``waybill_models``): find, then merge."""

    async def judge(conn: AsyncConnection[Any], stored: Stored, rules: TankerRules) -> AlertChanges:
        return await merge_found(conn, await find(conn, Batch.of(stored), rules), rules)

    return judge
