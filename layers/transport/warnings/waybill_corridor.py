"""``waybill_corridor_deviation``: a vehicle off its waybill's corridor (issue 14 item 3;
docs/transport.md §8).

Source: the Ministry of Transport's rules on road transport of dangerous goods (2019) — the
electronic waybill declares the route; ``waybills.corridor`` is that route buffered by its
``corridor_m`` (or the polygon given). Threshold: an episode counts once its first and last
fix outside are :attr:`TankerRules.corridor_min_s` apart (``GEORISK_TANKER_CORRIDOR_MIN_S``,
2 min — the same minimum as the planned-route ``corridor_deviation`` rule, so one GNSS jump
never raises it).

An episode is a run of consecutive fixes (event time) outside the corridor of the waybill that
was loading or in transit at each fix; the first later fix inside ends it. Details: the
waybill's code, the episode's duration and the largest distance from the corridor.

Why a judge of its own and not a second distance source in the detector's episode machinery
(``detector.py``, the planned-route rule): the detector keeps an open episode per vehicle and
kind in ``vehicle_state`` columns, so another kind means a migration and a wider state row for
every vehicle, and its episodes follow arrival order (a back-filled fix is replayed from the
last stop). This rule needs neither: episodes are recomputed from ``positions`` around the
batch's new fixes (as ``terminal_alarms.py`` does), so a late fix inside the corridor ends or
splits an episode, one outside extends or joins it, and the alerts merge by overlap.

Cost: a batch whose vehicles have no active waybill costs one indexed query; otherwise the
new fixes are tested against their corridor (one GiST-backed ``ST_Covers`` each) and only
vehicles with a fix outside, or an open deviation alert, are read back.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, Final

from psycopg import AsyncConnection
from psycopg.rows import tuple_row

from layers.transport.alerts import AlertChanges, merge
from layers.transport.config import TankerRules
from layers.transport.parking import Candidate
from layers.transport.state import ts_sql, us_sql
from layers.transport.warnings import chain
from layers.transport.warnings.chain import Waybill
from layers.transport.warnings.model import WarningModel

RULE: Final = "waybill_corridor_deviation"
#: How far around the batch episodes are recomputed (a longer run starts at the edge).
LOOKBACK_US: Final = 6 * 3600 * 1_000_000
#: An episode this far (m) outside its corridor is severe.
SEVERE_M: Final = 5000.0

_OUTSIDE: Final = (
    "SELECT DISTINCT f.v FROM unnest(%(v)s::int4[], %(w)s::int4[], %(lon)s::float8[],"
    " %(lat)s::float8[]) AS f(v, w, lon, lat) JOIN waybills w ON w.id = f.w"
    " WHERE NOT ST_Covers(w.corridor, ST_SetSRID(ST_MakePoint(f.lon, f.lat), 4326))"
    " UNION SELECT vehicle_id FROM alerts WHERE vehicle_id = ANY(%(vs)s::int4[])"
    " AND rule = %(rule)s AND active"
)
_FIXES: Final = (
    "SELECT u.w, " + us_sql("p.ts") + ", p.lon, p.lat,"
    " CASE WHEN ST_Covers(w.corridor, g.pt) THEN 0.0"
    " ELSE ST_Distance(w.corridor::geography, g.pt::geography) END"
    " FROM unnest(%(v)s::int4[], %(w)s::int4[], %(t0)s::int8[], %(t1)s::int8[])"
    " AS u(v, w, t0, t1) JOIN waybills w ON w.id = u.w"
    " JOIN positions p ON p.vehicle_id = u.v AND p.ts BETWEEN " + ts_sql("u.t0") + ""
    " AND " + ts_sql("u.t1") + ""
    " CROSS JOIN LATERAL (SELECT ST_SetSRID(ST_MakePoint(p.lon, p.lat), 4326) AS pt) g"
    " ORDER BY u.w, p.ts"
)

Fix = tuple[int, float, float, float]  # t µs, lon, lat, metres outside (0: inside)


def episodes(
    w: Waybill, fixes: Sequence[Fix], new_t0: int, new_t1: int, rules: TankerRules
) -> list[Candidate]:
    """The deviation episodes among one waybill's ``fixes`` (sorted by time) that the new
    fixes in [new_t0, new_t1] may have changed (reaching into that span, counting the fix
    that ended them) and that last at least ``corridor_min_s``."""
    out: list[Candidate] = []
    k, n = 0, len(fixes)
    min_us = int(rules.corridor_min_s * 1e6)
    while k < n:
        if fixes[k][3] <= 0:
            k += 1
            continue
        j = k
        while j + 1 < n and fixes[j + 1][3] > 0:
            j += 1
        ended_by = fixes[j + 1][0] if j + 1 < n else fixes[j][0]
        run = fixes[k : j + 1]
        if fixes[j][0] - fixes[k][0] >= min_us and fixes[k][0] <= new_t1 and ended_by >= new_t0:
            far = max(run, key=lambda f: f[3])
            details = {
                "waybill": w.code,
                "waybill_id": w.id,
                "max_distance_m": round(far[3], 1),
                "duration_s": (fixes[j][0] - fixes[k][0]) / 1e6,
                "fixes": len(run),
            }
            out.append(
                Candidate(
                    w.vehicle_id,
                    RULE,
                    None,
                    fixes[k][0],
                    fixes[j][0],
                    j + 1 == n and w.active_to == chain.NEVER,  # a finished waybill ends it
                    far[1],
                    far[2],
                    "severe" if far[3] >= SEVERE_M else "moderate",
                    details=details,
                )
            )
        k = j + 1
    return out


def _waybill_at(ws: list[Waybill], t: int) -> Waybill | None:
    for w in ws:
        if w.has_corridor and w.active_at(t):
            return w
    return None


async def judge(
    conn: AsyncConnection[Any], stored: Sequence[Sequence[Any]], rules: TankerRules
) -> AlertChanges:
    span = chain.spans(stored)
    if not span:
        return AlertChanges()
    since = min(lo for lo, _ in span.values()) - chain.LOOKBACK_US
    bills = {
        v: [w for w in ws if w.has_corridor]
        for v, ws in (await chain.waybills(conn, sorted(span), since)).items()
    }
    bills = {v: ws for v, ws in bills.items() if ws}
    if not bills:
        return AlertChanges()
    fv, fw, flon, flat = [], [], [], []
    for row in stored:
        v = int(row[0])
        w = _waybill_at(bills.get(v, []), int(row[1]))
        if w is not None:
            fv.append(v)
            fw.append(w.id)
            flon.append(float(row[2]))
            flat.append(float(row[3]))
    cur = conn.cursor(row_factory=tuple_row)
    params = {"v": fv, "w": fw, "lon": flon, "lat": flat, "vs": sorted(bills), "rule": RULE}
    await cur.execute(_OUTSIDE, params)
    flagged = sorted(int(r[0]) for r in await cur.fetchall())
    if not flagged:
        return AlertChanges()
    pv, pw, t0, t1, by_id = [], [], [], [], {}
    for v in flagged:
        lo, hi = span[v][0] - LOOKBACK_US, span[v][1] + LOOKBACK_US
        for w in bills[v]:
            a, b = max(lo, w.active_from), min(hi, w.active_to)
            if a <= b:
                pv.append(v)
                pw.append(w.id)
                t0.append(a)
                t1.append(b)
                by_id[w.id] = w
    await cur.execute(_FIXES, {"v": pv, "w": pw, "t0": t0, "t1": t1})
    fixes: dict[int, list[Fix]] = {}
    for wid, t, lon, lat, d in await cur.fetchall():
        fixes.setdefault(int(wid), []).append((int(t), float(lon), float(lat), float(d)))
    cands: list[Candidate] = []
    for wid, fx in fixes.items():
        w = by_id[wid]
        cands += episodes(w, fx, *span[w.vehicle_id], rules)
    return await merge(conn, cands, [None] * len(cands), rules)


MODEL = WarningModel(
    "waybill_corridor",
    (RULE,),
    "Road transport of dangerous goods rules (Ministry of Transport, 2019): the waybill's "
    "declared route; minimum episode GEORISK_TANKER_CORRIDOR_MIN_S (product default)",
    judge,
)
