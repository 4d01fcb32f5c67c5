"""Terminal alarms: the JT/T 808 alarm flag bits of stored fixes as alerts of their own kind
(issue 14 item 3; bits per docs/domain.md §3), in the same lifecycle as the engine's alerts.

One alert per (vehicle, alarm, episode): an episode is a run of consecutive fixes (in event
time) with the bit set — the bit set opens it, the first later fix with the bit clear ends it
(``active`` false, ``episode_end`` = the last fix with the bit set). Episodes are recomputed
from ``positions`` around each batch's new fixes, so late and back-filled fixes (0x0704) extend,
join or end episodes like live ones; the alerts merge (``layers/transport/alerts.py``) matches
an episode to its alert by overlap and updates it. The lookback is ``LOOKBACK_US``: a run
longer than that before the batch starts at the lookback's edge.

Only vehicles whose new fixes carry a watched bit, or that have an active terminal alarm (its
clearing fix may be in this batch), are read: a batch without alarms costs one indexed query.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
from psycopg import AsyncConnection
from psycopg.rows import tuple_row

from layers.core.vocab import TERMINAL_ALARM_RULES
from layers.transport.alerts import AlertChanges, merge
from layers.transport.config import TankerRules
from layers.transport.parking import Candidate
from layers.transport.state import ts_sql, us_sql
from layers.transport.warnings.model import Stored, WarningModel


@dataclass(frozen=True)
class Alarm:
    bit: int
    rule: str
    name: str
    severity: str  # CAP severity (layers/alerts/cap.py)


#: The alarm bits that raise alerts: those a regulator acts on (an emergency button pressed,
#: a terminal that judges its vehicle speeding or its driver fatigued, a terminal blinded by a
#: cut antenna or main power).
ALARMS: tuple[Alarm, ...] = (
    Alarm(0, "terminal_emergency", "emergency", "severe"),
    Alarm(1, "terminal_overspeed", "overspeed", "moderate"),
    Alarm(2, "terminal_fatigue", "fatigue", "moderate"),
    Alarm(5, "terminal_antenna_cut", "antenna_cut", "moderate"),
    Alarm(8, "terminal_power_cut", "power_cut", "severe"),
)
assert tuple(a.rule for a in ALARMS) == TERMINAL_ALARM_RULES
WATCHED = sum(1 << a.bit for a in ALARMS)
LOOKBACK_US = 24 * 3600 * 1_000_000

_OPEN = (
    "SELECT DISTINCT vehicle_id FROM alerts WHERE vehicle_id = ANY(%(v)s::int4[])"
    " AND rule = ANY(%(rules)s::text[]) AND active"
)
_FIXES = (
    "SELECT p.vehicle_id, " + us_sql("p.ts") + ", p.lon, p.lat, p.alarm_bits"
    " FROM unnest(%(v)s::int4[], %(t0)s::int8[], %(t1)s::int8[]) AS u(v, t0, t1)"
    " JOIN positions p ON p.vehicle_id = u.v AND p.ts BETWEEN "
    + ts_sql("u.t0")
    + " AND "
    + ts_sql("u.t1")
    + " ORDER BY p.vehicle_id, p.ts"
)

Fix = tuple[int, float, float, int]  # t µs, lon, lat, alarm bits


def episodes(vehicle_id: int, fixes: Sequence[Fix], new_t0: int, new_t1: int) -> list[Candidate]:
    """The alarm episodes among one vehicle's ``fixes`` (sorted by time) that the new fixes in
    [new_t0, new_t1] may have changed: those that reach into that span, counting the fix
    that ended them."""
    out: list[Candidate] = []
    for alarm in ALARMS:
        mask = 1 << alarm.bit
        k, n = 0, len(fixes)
        while k < n:
            if not fixes[k][3] & mask:
                k += 1
                continue
            j = k
            while j + 1 < n and fixes[j + 1][3] & mask:
                j += 1
            ended_by = fixes[j + 1][0] if j + 1 < n else fixes[j][0]
            if fixes[k][0] <= new_t1 and ended_by >= new_t0:
                t, lon, lat, _ = fixes[k]
                out.append(
                    Candidate(
                        vehicle_id,
                        alarm.rule,
                        None,
                        t,
                        fixes[j][0],
                        active=j + 1 == n,
                        lon=lon,
                        lat=lat,
                        severity=alarm.severity,
                        details={"alarm": alarm.name, "bit": alarm.bit, "fixes": j - k + 1},
                    )
                )
            k = j + 1
    return out


async def judge(conn: AsyncConnection[Any], stored: Stored, rules: TankerRules) -> AlertChanges:
    """Open, extend or end the terminal alarm alerts of the newly stored fixes."""
    span = stored.spans
    alarmed = set(np.unique(stored.vehicle_id[(stored.alarm_bits & WATCHED) != 0]).tolist())
    cur = conn.cursor(row_factory=tuple_row)
    await cur.execute(_OPEN, {"v": sorted(span), "rules": list(TERMINAL_ALARM_RULES)})
    vehicles = sorted(alarmed | {int(r[0]) for r in await cur.fetchall()})
    if not vehicles:
        return AlertChanges()
    params = {
        "v": vehicles,
        "t0": [span[v][0] - LOOKBACK_US for v in vehicles],
        "t1": [span[v][1] + LOOKBACK_US for v in vehicles],
    }
    await cur.execute(_FIXES, params)
    by_vehicle: dict[int, list[Fix]] = {}
    for v, t, lon, lat, bits in await cur.fetchall():
        by_vehicle.setdefault(int(v), []).append((int(t), float(lon), float(lat), int(bits)))
    cands = []
    for v, fixes in by_vehicle.items():
        cands += episodes(v, fixes, *span[v])
    return await merge(conn, cands, [None] * len(cands), rules)


MODEL = WarningModel(
    "terminal_alarms",
    TERMINAL_ALARM_RULES,
    "JT/T 808-2019 table 24 (alarm flag bits 0, 1, 2, 5, 8)",
    judge,
)
