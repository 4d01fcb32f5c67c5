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
new fixes are tested against their corridor (``ST_Covers`` each) and only vehicles with a fix
outside, or an open deviation alert, are read back — and only ``corridor_min_s`` + 2 min
around the batch: a run that began earlier has an alert already (it lasted the minimum), whose
episode start and farthest point the new run takes over. Distances are measured on the
corridor's local tangent plane (arithmetic, within 0.5 % of the geodesic in a city).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Final

import numpy as np
from psycopg import AsyncConnection
from psycopg.rows import tuple_row

from layers.transport.config import TankerRules
from layers.transport.parking import Candidate
from layers.transport.state import ts_sql, us_sql
from layers.transport.warnings import chain
from layers.transport.warnings.chain import Found, Waybill
from layers.transport.warnings.model import WarningModel

RULE: Final = "waybill_corridor_deviation"
#: Fixes read around a batch: enough to see a run not yet long enough to raise (shorter than
#: ``corridor_min_s``, plus a 2 min silence); a longer run before the window has its alert,
#: which carries the episode's start and farthest point (see :func:`judge`).
MARGIN_US: Final = 120 * 1_000_000
#: An episode this far (m) outside its corridor is severe.
SEVERE_M: Final = 5000.0

_OUTSIDE: Final = (
    "SELECT DISTINCT f.v FROM unnest(%(v)s::int4[], %(w)s::int4[], %(lon)s::float8[],"
    " %(lat)s::float8[]) AS f(v, w, lon, lat) JOIN waybills w ON w.id = f.w"
    " WHERE NOT ST_Covers(w.corridor, ST_SetSRID(ST_MakePoint(f.lon, f.lat), 4326))"
    " UNION SELECT vehicle_id FROM alerts WHERE vehicle_id = ANY(%(vs)s::int4[])"
    " AND rule = %(rule)s AND active"
)
# Metres outside on the corridor's local tangent plane (longitudes scaled by the cosine of
# its latitude, computed once per waybill): arithmetic on a small polygon, within 0.5 % of the
# geodesic at city scale, where a geography distance per fix would cost ten times more.
_FIXES: Final = (
    "WITH c AS (SELECT w.id, w.corridor, cos(radians(ST_Y(ST_Centroid(w.corridor)))) AS k"
    " FROM waybills w WHERE w.id = ANY(%(w)s::int4[])),"
    " f AS (SELECT c.id, c.k, c.corridor, ST_Scale(c.corridor, c.k, 1) AS flat FROM c)"
    " SELECT u.w, " + us_sql("p.ts") + ", p.lon, p.lat,"
    " CASE WHEN ST_Covers(f.corridor, g.pt) THEN 0.0"
    " ELSE 111195.0 * ST_Distance(f.flat, ST_SetSRID(ST_MakePoint(p.lon * f.k, p.lat), 4326))"
    " END"
    " FROM unnest(%(v)s::int4[], %(w)s::int4[], %(t0)s::int8[], %(t1)s::int8[])"
    " AS u(v, w, t0, t1) JOIN f ON f.id = u.w"
    " JOIN positions p ON p.vehicle_id = u.v AND p.ts BETWEEN " + ts_sql("u.t0") + ""
    " AND " + ts_sql("u.t1") + ""
    " CROSS JOIN LATERAL (SELECT ST_SetSRID(ST_MakePoint(p.lon, p.lat), 4326) AS pt) g"
    " ORDER BY u.w, p.ts"
)
_EARLIER: Final = (
    "SELECT vehicle_id, " + us_sql("episode_start") + ", " + us_sql("episode_end") + ","
    " coalesce((details->>'max_distance_m')::float8, 0), ST_X(geom), ST_Y(geom)"
    " FROM alerts WHERE vehicle_id = ANY(%(v)s::int4[]) AND rule = %(rule)s"
    " AND episode_end >= " + ts_sql("%(t)s")
)

Fix = tuple[int, float, float, float]  # t µs, lon, lat, metres outside (0: inside)


@dataclass(frozen=True)
class Earlier:
    """An alert of the rule reaching into the window: the start and the farthest point of an
    episode that began before the fixes read."""

    start_us: int
    end_us: int
    max_m: float
    lon: float
    lat: float


@dataclass(frozen=True)
class Run:
    """An episode found: its first and last fix outside, whether a fix inside ended it, its
    farthest fix and an earlier alert it continues."""

    waybill: Waybill
    start_us: int
    end_us: int
    ended: bool
    far: Fix
    fixes: int
    earlier: Earlier | None = None


def runs(
    w: Waybill,
    fixes: Sequence[Fix],
    new_t0: int,
    new_t1: int,
    earlier: Sequence[Earlier] = (),
) -> list[Run]:
    """The runs of consecutive fixes outside among one waybill's ``fixes`` (sorted by time)
    that the new fixes in [new_t0, new_t1] may have changed (reaching into that span,
    counting the fix that ended them). A run starting at the first fix read continues an
    ``earlier`` alert whose episode reaches it."""
    out: list[Run] = []
    k, n = 0, len(fixes)
    while k < n:
        if fixes[k][3] <= 0:
            k += 1
            continue
        j = k
        while j + 1 < n and fixes[j + 1][3] > 0:
            j += 1
        ended_by = fixes[j + 1][0] if j + 1 < n else fixes[j][0]
        if fixes[k][0] <= new_t1 and ended_by >= new_t0:
            before = None
            if k == 0:
                reach = [e for e in earlier if e.start_us < fixes[0][0] <= e.end_us + MARGIN_US]
                before = min(reach, key=lambda e: e.start_us) if reach else None
            far = max(fixes[k : j + 1], key=lambda f: f[3])
            out.append(Run(w, fixes[k][0], fixes[j][0], j + 1 < n, far, j - k + 1, before))
        k = j + 1
    return out


def candidate(run: Run, rules: TankerRules) -> Candidate | None:
    """The alert of a run once it lasts ``corridor_min_s`` (counting the earlier alert it
    continues)."""
    w, start, lon, lat, far_m = run.waybill, run.start_us, run.far[1], run.far[2], run.far[3]
    if run.earlier is not None:
        start = run.earlier.start_us
        if run.earlier.max_m > far_m:
            far_m, lon, lat = run.earlier.max_m, run.earlier.lon, run.earlier.lat
    if run.end_us - start < int(rules.corridor_min_s * 1e6):
        return None
    details = {
        "waybill": w.code,
        "waybill_id": w.id,
        "max_distance_m": round(far_m, 1),
        "duration_s": (run.end_us - start) / 1e6,
    }
    if run.earlier is None:
        details["fixes"] = run.fixes
    active = not run.ended and w.active_to == chain.NEVER  # a finished waybill ends it
    severity = "severe" if far_m >= SEVERE_M else "moderate"
    return Candidate(
        w.vehicle_id, RULE, None, start, run.end_us, active, lon, lat, severity, details=details
    )


async def find(conn: AsyncConnection[Any], batch: chain.Batch, rules: TankerRules) -> Found:
    """The deviation alerts the batch's fixes may have opened, extended or ended."""
    out = Found()
    span = batch.span
    bills = {v: [w for w in ws if w.has_corridor] for v, ws in (await batch.waybills(conn)).items()}
    bills = {v: ws for v, ws in bills.items() if ws}
    if not bills:
        return out
    new = batch.stored
    idx = new.rows_of(sorted(bills))
    fv, ft = new.vehicle_id[idx], new.t[idx]
    fw = np.full(len(idx), -1, dtype=np.int64)  # the waybill each fix is judged against
    for v, ws in bills.items():
        mine = fv == v
        for w in ws:  # the first active one, as a vehicle has one at a time
            fw[mine & (fw < 0) & (ft >= w.active_from) & (ft <= w.active_to)] = w.id
    keep = fw >= 0
    cur = conn.cursor(row_factory=tuple_row)
    params = {
        "v": fv[keep],
        "w": fw[keep],
        "lon": new.lon[idx][keep],
        "lat": new.lat[idx][keep],
        "vs": sorted(bills),
        "rule": RULE,
    }
    await cur.execute(_OUTSIDE, params)
    flagged = sorted(int(r[0]) for r in await cur.fetchall())
    if not flagged:
        return out
    reach = int(rules.corridor_min_s * 1e6) + MARGIN_US
    pv, pw, t0, t1, by_id = [], [], [], [], {}
    for v in flagged:
        lo, hi = span[v][0] - reach, span[v][1] + reach
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
    found: list[Run] = []
    for wid, fx in fixes.items():
        found += runs(by_id[wid], fx, *span[by_id[wid].vehicle_id])
    # A run read from the window's first fix may continue an alert begun before it.
    cut = sorted({r.waybill.vehicle_id for r in found if r.start_us == fixes[r.waybill.id][0][0]})
    if cut:
        await cur.execute(_EARLIER, {"v": cut, "rule": RULE, "t": min(t0) - MARGIN_US})
        earlier: dict[int, list[Earlier]] = {}
        for v, s, e, m, x, y in await cur.fetchall():
            earlier.setdefault(int(v), []).append(Earlier(int(s), int(e), float(m), x, y))
        found = []
        for wid, fx in fixes.items():
            w = by_id[wid]
            found += runs(w, fx, *span[w.vehicle_id], earlier.get(w.vehicle_id, []))
    out.add([c for r in found if (c := candidate(r, rules)) is not None])
    return out


judge = chain.judge_of(find)


MODEL = WarningModel(
    "waybill_corridor",
    (RULE,),
    "Road transport of dangerous goods rules (Ministry of Transport, 2019): the waybill's "
    "declared route; minimum episode GEORISK_TANKER_CORRIDOR_MIN_S (product default)",
    judge,
)
