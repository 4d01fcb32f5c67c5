"""Positioning gap: a loaded hazmat vehicle that fell silent on the road (issue 14 item 3;
docs/transport.md §8).

SOURCE: 道路危险货物运输管理规定 (Ministry of Transport, 2019) requires hazmat vehicles to carry
a working satellite positioning terminal and carriers to monitor them; JT/T 808 terminals store
fixes while out of coverage and upload them later (0x0704). The threshold is a PRODUCT DEFAULT:
``positioning_gap_max_s`` = 1,200 s (20 min), matching the rest a driver may take, so a silence
longer than that is neither a tunnel nor a traffic jam.

One alert per silence: two consecutive stored fixes of a vehicle more than
``positioning_gap_max_s`` apart while a waybill of it was ``loading`` or ``in_transit`` — when
the silence began, in event time (``chain.py``'s active intervals: a vehicle that reappears
after its waybill was delivered during the silence is judged as it was), unless the vehicle
fell silent (the fix before the silence) inside a designated parking lot or a washing station,
or at its waybill's origin or destination (within ``site_radius_m`` or inside the site
polygon): terminals often power down with the engine, so a parked vehicle's silence starts
where it parked; a silence that starts on the road is what the rule is for. Reported when the
vehicle reappears (the first fix after the silence): episode = the silence, not active (it is
over); details: its length (s), the distance (m) between the fixes before and after, both
fixes, the waybill.

Back-fill: blind-area fixes uploaded later land inside the silence. Silences are recomputed
from ``positions`` around each batch's fixes, so a back-filled silence that still exceeds the
limit updates its alert (shorter length, the merge matches it by overlap); one filled so that
no silence over the limit remains is marked ``filled_by_backfill`` (revision bumped, so CAP,
SSE and webhooks carry the update): the terminal did track the vehicle and an officer sees
the alert explained rather than deleted.

Cost: two indexed queries (the vehicles' waybills active now or lately, their positioning-gap
alerts) per batch; fixes are read only for vehicles with such a waybill or a gap alert in the
batch's span.
"""

from __future__ import annotations

from typing import Any

import numpy as np
from psycopg import AsyncConnection
from psycopg.rows import tuple_row

from layers.alerts import webhooks
from layers.core.changes import notify_change
from layers.transport.alerts import AlertChanges, merge
from layers.transport.config import TankerRules
from layers.transport.fix_filters import haversine_m
from layers.transport.parking import Candidate
from layers.transport.state import ts_sql, us_sql
from layers.transport.warnings import chain
from layers.transport.warnings.model import Stored, WarningModel, iso_utc

RULE = "positioning_gap"
US = 1_000_000
#: How far before and after a batch the neighbouring fixes are looked for (bounds the
#: partitions read): a silence longer than two days is not reported by this rule.
LOOKBACK_US = 48 * 3600 * US

# The gap alerts of the batch's vehicles in the batch's span (a back-fill may fill them).
_ALERTS = (
    "WITH u AS (SELECT * FROM unnest(%(v)s::int4[], %(t0)s::int8[], %(t1)s::int8[])"
    " AS u(v, t0, t1))"
    " SELECT a.vehicle_id, a.id, " + us_sql("a.episode_start") + ","
    " " + us_sql("a.episode_end") + " FROM alerts a JOIN u"
    " ON a.vehicle_id = u.v AND a.rule = %(rule)s"
    " AND a.episode_start <= " + ts_sql("u.t1") + " AND a.episode_end >= " + ts_sql("u.t0") + ""
    " AND NOT coalesce((a.details->>'filled_by_backfill')::bool, false)"
)
# The fixes in each span plus the one before and after it (after: only for a batch of late
# fixes, known from the vehicle's latest fix); the silences over the limit.
_GAPS = (
    "WITH u AS (SELECT * FROM unnest(%(v)s::int4[], %(t0)s::int8[], %(t1)s::int8[])"
    " AS u(v, t0, t1)), f AS ("
    "SELECT u.v, p.ts, p.lon, p.lat FROM u JOIN positions p ON p.vehicle_id = u.v"
    " AND p.ts BETWEEN " + ts_sql("u.t0") + " AND " + ts_sql("u.t1") + ""
    " UNION ALL SELECT u.v, b.ts, b.lon, b.lat FROM u CROSS JOIN LATERAL (SELECT ts, lon, lat"
    " FROM positions WHERE vehicle_id = u.v AND ts < " + ts_sql("u.t0") + ""
    " AND ts >= " + ts_sql("(u.t0 - %(look)s)") + " ORDER BY ts DESC LIMIT 1) b"
    " UNION ALL SELECT u.v, a.ts, a.lon, a.lat FROM u JOIN vehicle_state vs ON vs.vehicle_id = u.v"
    " CROSS JOIN LATERAL (SELECT ts, lon, lat FROM positions WHERE vehicle_id = u.v"
    " AND vs.last_ts > " + ts_sql("u.t1") + " AND ts > " + ts_sql("u.t1") + ""
    " AND ts <= " + ts_sql("(u.t1 + %(look)s)") + " ORDER BY ts LIMIT 1) a)"
    " SELECT v, " + us_sql("pts") + ", " + us_sql("ts") + ", plon, plat, lon, lat FROM ("
    "SELECT v, ts, lon, lat, lag(ts) OVER w AS pts, lag(lon) OVER w AS plon,"
    " lag(lat) OVER w AS plat FROM f WINDOW w AS (PARTITION BY v ORDER BY ts)) g"
    " WHERE ts - pts > %(gap)s * interval '1 second'"
)
# Which silences began at a place where a vehicle may stand with its terminal off.
_EXEMPT = (
    "SELECT g.i FROM unnest(%(i)s::int4[], %(w)s::int4[], %(lon)s::float8[], %(lat)s::float8[])"
    " AS g(i, w, lon, lat) JOIN waybills wb ON wb.id = g.w"
    " CROSS JOIN LATERAL (SELECT ST_SetSRID(ST_MakePoint(g.lon, g.lat), 4326) AS pt) p"
    " LEFT JOIN enterprises o ON o.id = wb.origin_id"
    " LEFT JOIN enterprises d ON d.id = wb.destination_id"
    " WHERE EXISTS (SELECT 1 FROM zones z WHERE ST_Intersects(z.geom, p.pt)"
    " AND z.kind IN ('designated_parking', 'washing_station') AND z.retired_at IS NULL)"
    " OR ST_DWithin(wb.origin_geom::geography, p.pt::geography, %(radius)s)"
    " OR ST_DWithin(wb.destination_geom::geography, p.pt::geography, %(radius)s)"
    " OR ST_Covers(o.site_geom, p.pt) OR ST_Covers(d.site_geom, p.pt)"
)
_FILLED = (
    "UPDATE alerts SET details = details || jsonb_build_object('filled_by_backfill', true,"
    " 'filled_at', now()), revision = revision + 1, updated_at = now()"
    " WHERE id = ANY(%(ids)s::int8[]) RETURNING id"
)

Gap = tuple[int, int, int, float, float, float, float]  # vehicle, t before, t after, lon/lat ×2


def gap_details(gap: Gap, distance_m: float, waybill: tuple[int, str, str]) -> dict[str, Any]:
    """What an officer needs: how long, how far, between which fixes, under which waybill."""
    _, a, b, plon, plat, lon, lat = gap
    return {
        "gap_s": round((b - a) / US),
        "distance_m": round(distance_m),
        "last_fix_before": {"ts": iso_utc(a), "lon": plon, "lat": plat},
        "first_fix_after": {"ts": iso_utc(b), "lon": lon, "lat": lat},
        "waybill_id": waybill[0],
        "waybill_code": waybill[1],
        "waybill_state": waybill[2],
        "filled_by_backfill": False,
    }


def loaded_by(bills: list[chain.Waybill], t_us: int) -> tuple[int, str, str] | None:
    """The waybill loading or in transit at ``t_us`` (event time) as (id, code, state then)."""
    for w in bills:
        if w.active_at(t_us):
            return w.id, w.code, "in_transit" if w.in_transit_at(t_us) else "loading"
    return None


async def judge(conn: AsyncConnection[Any], stored: Stored, rules: TankerRules) -> AlertChanges:
    """The silences around this batch's fixes that began while the vehicle was loaded."""
    span = stored.spans
    if not span:
        return AlertChanges()
    vs = sorted(span)
    since = min(lo for lo, _ in span.values()) - LOOKBACK_US
    bills = await chain.waybills(conn, vs, since)
    params: dict[str, Any] = {
        "v": vs,
        "t0": [span[v][0] for v in vs],
        "t1": [span[v][1] for v in vs],
        "rule": RULE,
    }
    cur = conn.cursor(row_factory=tuple_row)
    await cur.execute(_ALERTS, params)
    alerts: list[tuple[int, int, int, int]] = []  # id, vehicle, episode start, end
    for v, alert_id, s, e in await cur.fetchall():
        alerts.append((int(alert_id), int(v), int(s), int(e)))
    watched = sorted(set(bills) | {a[1] for a in alerts})
    if not watched:
        return AlertChanges()
    params = {
        "v": watched,
        "t0": [span[v][0] for v in watched],
        "t1": [span[v][1] for v in watched],
        "look": LOOKBACK_US,
        "gap": rules.positioning_gap_max_s,
    }
    await cur.execute(_GAPS, params)
    gaps: list[Gap] = [
        (int(r[0]), int(r[1]), int(r[2]), *(float(x) for x in r[3:7]))  # type: ignore[misc]
        for r in await cur.fetchall()
    ]
    out = AlertChanges()
    loaded: list[tuple[Gap, tuple[int, str, str]]] = []  # with the waybill when it began
    for g in gaps:
        w = loaded_by(bills.get(g[0], []), g[1])
        if w is not None:
            loaded.append((g, w))
    exempt = await _exempt(conn, [g for g, _ in loaded], [w[0] for _, w in loaded], rules)
    judged = [g for i, g in enumerate(loaded) if i not in exempt]
    if judged:
        a = np.array([g[3:7] for g, _ in judged], dtype=np.float64)
        dist = haversine_m(a[:, 0], a[:, 1], a[:, 2], a[:, 3]).tolist()
        # Reported where it reappeared; the silence is over, so the episode is not active.
        cands = [
            Candidate(g[0], RULE, None, g[1], g[2], False, g[5], g[6], "moderate")
            for g, _ in judged
        ]
        for c, (g, w), d in zip(cands, judged, dist, strict=True):
            c.details = gap_details(g, d, w)
        out = await merge(conn, cands, [None] * len(cands), rules)
    await _mark_filled(conn, alerts, gaps, out)
    return out


async def _exempt(
    conn: AsyncConnection[Any], gaps: list[Gap], waybill_ids: list[int], rules: TankerRules
) -> set[int]:
    """Indices of ``gaps`` that began in a lot, a washing station or at the sites of their
    waybill (``waybill_ids``, one per gap)."""
    if not gaps:
        return set()
    params = {
        "i": list(range(len(gaps))),
        "w": waybill_ids,
        "lon": [g[3] for g in gaps],
        "lat": [g[4] for g in gaps],
        "radius": rules.site_radius_m,
    }
    cur = conn.cursor(row_factory=tuple_row)
    await cur.execute(_EXEMPT, params)
    return {int(r[0]) for r in await cur.fetchall()}


async def _mark_filled(
    conn: AsyncConnection[Any],
    alerts: list[tuple[int, int, int, int]],
    gaps: list[Gap],
    out: AlertChanges,
) -> None:
    """Gap alerts in the batch's span that no silence over the limit overlaps any more: the
    back-filled fixes filled them."""
    filled = [
        alert_id
        for alert_id, v, s, e in alerts
        if not any(g[0] == v and g[1] <= e and g[2] >= s for g in gaps)
    ]
    if not filled:
        return
    cur = conn.cursor(row_factory=tuple_row)
    await cur.execute(_FILLED, {"ids": filled})
    ids = [int(r[0]) for r in await cur.fetchall()]
    # The same announcements as the merge: webhooks in this transaction, then the change bus.
    await webhooks.enqueue(conn, ids)
    await notify_change(conn, "alerts", "alerts", ids)
    out.updated += ids


MODEL = WarningModel(
    "positioning_gap",
    (RULE,),
    "道路危险货物运输管理规定 (2019): positioning terminals monitored; JT/T 808 0x0704"
    " blind-area upload; threshold: product default (20 min)",
    judge,
)
