"""The daily watch list (每日关注清单): which enterprises a regulator looks at today, and why.

One home for the rules, their thresholds and the district indexes:

Key attention (重点关注) — any of:
- ``K1_dynamic_red``: the enterprise's dynamic colour is red.
- ``K2_open_major_danger``: a major hidden danger found and not rectified by the end of D.
- ``K3_level2_alarm_overdue``: a level-2 alarm not acknowledged (nor cleared) past its deadline.
- ``K4_score_points``: ≥ ``score_points`` (default 6) points deducted in the current cycle, as
  ``layers/prevention/scoring.py`` counts them (each enterprise's rule set, cycle and carry-over).
- ``K5_detector_lost_during_alarm``: a detector is offline while its level-2 alarm is open (not
  disposed of, not cleared) — silence during an alarm is no reason to look away
  (docs/domain.md §2.4); it stays listed for that alarm until the alarm is disposed of or
  cleared, or a reading brings the detector back.
- ``K6_recent_accident``: a production safety accident in the ``accident_days`` (default 365)
  up to D — the place where something already went wrong is watched first.

Suggested attention (提示关注) — enterprises not on the key list with any of:
- ``S1_dynamic_raised``: dynamic colour worse than inherent (a live condition is active), a
  not-assessed (grey) enterprise's coloured dynamic colour included.
- ``S2_overdue_dangers``: hidden dangers past their deadline and not rectified.
- ``S3_low_rectification``: rectification rate below ``low_rectification`` (default 0.8).
- ``S4_recent_penalty``: an administrative penalty decided in the ``penalty_days`` (default
  365) up to D.

District indexes (per district, over its enterprises):
- **enterprise responsibility** = the mean over its enterprises of each enterprise's mean of
  its three rates (layers/prevention/dual.py; rates without a denominator are left out, and so
  is an enterprise with none);
- **territorial control** = the share of its enterprises not on the key-attention list.
Both are ``None`` for a district with no enterprise.

Colours and the offline mark of detectors are the stored current ones (there is no history of
either); every other fact is taken as of the end of D, so a past date replays registers, alarms
and deductions, not colours.

The decision (``classify``) is pure so it is tested without a database; ``daily_list`` only
gathers facts.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field
from typing import Any, Final

from psycopg import AsyncConnection
from psycopg.rows import dict_row

from layers.core.colors import GREY, RISK_COLORS
from layers.prevention.dual import PreventionRates, day_end, enterprise_rates
from layers.prevention.scoring import deducted_points


@dataclass(frozen=True)
class WatchRules:
    """Thresholds of the watch list; configurable per deployment."""

    score_points: int = 6
    low_rectification: float = 0.8
    accident_days: int = 365
    penalty_days: int = 365


@dataclass(frozen=True)
class WatchReason:
    code: str
    text: str

    def as_dict(self) -> dict[str, str]:
        return {"code": self.code, "text": self.text}


@dataclass(frozen=True)
class WatchFacts:
    enterprise_id: int
    name: str
    district: str | None
    inherent_color: str | None
    dynamic_color: str | None
    open_major_dangers: int
    overdue_level2_alarms: int
    score_points: int
    rates: PreventionRates
    lost_detectors: int = 0
    recent_accidents: int = 0
    recent_penalties: int = 0


@dataclass
class WatchEntry:
    enterprise_id: int
    name: str
    district: str | None
    reasons: list[WatchReason] = field(default_factory=list)

    def as_dict(self) -> dict[str, Any]:
        return {
            "enterprise_id": self.enterprise_id,
            "name": self.name,
            "district": self.district,
            "reasons": [r.as_dict() for r in self.reasons],
        }


def _raised(f: WatchFacts) -> bool:
    if f.dynamic_color not in RISK_COLORS:
        return False
    if f.inherent_color == GREY:  # not assessed: only a live condition gives it a colour
        return True
    if f.inherent_color not in RISK_COLORS:
        return False
    return RISK_COLORS.index(f.dynamic_color) < RISK_COLORS.index(f.inherent_color)


def key_reasons(f: WatchFacts, rules: WatchRules) -> list[WatchReason]:
    out: list[WatchReason] = []
    if f.dynamic_color == "red":
        out.append(WatchReason("K1_dynamic_red", "dynamic risk colour is red"))
    if f.open_major_dangers > 0:
        out.append(
            WatchReason(
                "K2_open_major_danger", f"{f.open_major_dangers} open major hidden danger(s)"
            )
        )
    if f.overdue_level2_alarms > 0:
        out.append(
            WatchReason(
                "K3_level2_alarm_overdue",
                f"{f.overdue_level2_alarms} level-2 alarm(s) unacknowledged past the deadline",
            )
        )
    if f.score_points >= rules.score_points:
        out.append(
            WatchReason(
                "K4_score_points",
                f"{f.score_points} points deducted this cycle (≥ {rules.score_points})",
            )
        )
    if f.lost_detectors > 0:
        out.append(
            WatchReason(
                "K5_detector_lost_during_alarm",
                f"{f.lost_detectors} detector(s) offline during an open level-2 alarm",
            )
        )
    if f.recent_accidents > 0:
        out.append(
            WatchReason(
                "K6_recent_accident",
                f"{f.recent_accidents} accident(s) in the last {rules.accident_days} days",
            )
        )
    return out


def suggested_reasons(f: WatchFacts, rules: WatchRules) -> list[WatchReason]:
    out: list[WatchReason] = []
    if _raised(f):
        inherent = "not assessed" if f.inherent_color == GREY else f"inherent {f.inherent_color}"
        out.append(
            WatchReason(
                "S1_dynamic_raised", f"dynamic colour {f.dynamic_color} is above {inherent}"
            )
        )
    if f.rates.overdue_dangers > 0:
        out.append(
            WatchReason(
                "S2_overdue_dangers",
                f"{f.rates.overdue_dangers} hidden danger(s) past their deadline",
            )
        )
    rate = f.rates.rectification.value
    if rate is not None and rate < rules.low_rectification:
        out.append(
            WatchReason(
                "S3_low_rectification",
                f"hidden-danger rectification {rate:.0%} below {rules.low_rectification:.0%}",
            )
        )
    if f.recent_penalties > 0:
        out.append(
            WatchReason(
                "S4_recent_penalty",
                f"{f.recent_penalties} administrative penalty(ies) in the last"
                f" {rules.penalty_days} days",
            )
        )
    return out


@dataclass
class DailyList:
    date: dt.date
    key: list[WatchEntry]
    suggested: list[WatchEntry]
    districts: list[dict[str, Any]]

    def within(self, districts: list[str]) -> DailyList:
        """The same list cut to some districts (a district regulator's view)."""
        keep = set(districts)
        return DailyList(
            self.date,
            [e for e in self.key if e.district in keep],
            [e for e in self.suggested if e.district in keep],
            [d for d in self.districts if d.get("district") in keep],
        )

    def as_dict(self) -> dict[str, Any]:
        return {
            "date": self.date.isoformat(),
            "key_attention": [e.as_dict() for e in self.key],
            "suggested_attention": [e.as_dict() for e in self.suggested],
            "districts": self.districts,
        }

    def csv_rows(self) -> list[list[str]]:
        """One row per (list, enterprise, reason): flat enough for a spreadsheet."""
        rows = [["date", "list", "enterprise_id", "name", "district", "rule", "text"]]
        for label, entries in (("key", self.key), ("suggested", self.suggested)):
            for e in entries:
                for r in e.reasons:
                    rows.append(
                        [
                            self.date.isoformat(),
                            label,
                            str(e.enterprise_id),
                            e.name,
                            e.district or "",
                            r.code,
                            r.text,
                        ]
                    )
        return rows


def classify(
    day: dt.date, facts: list[WatchFacts], rules: WatchRules, districts: list[str]
) -> DailyList:
    key: list[WatchEntry] = []
    suggested: list[WatchEntry] = []
    per_district: dict[str, list[tuple[float | None, bool]]] = {d: [] for d in districts}
    for f in facts:
        reasons = key_reasons(f, rules)
        on_key = bool(reasons)
        if on_key:
            key.append(WatchEntry(f.enterprise_id, f.name, f.district, reasons))
        else:
            soft = suggested_reasons(f, rules)
            if soft:
                suggested.append(WatchEntry(f.enterprise_id, f.name, f.district, soft))
        if f.district is not None:
            per_district.setdefault(f.district, []).append((f.rates.mean_rate(), on_key))
    return DailyList(day, key, suggested, [_indexes(c, m) for c, m in per_district.items()])


def _indexes(code: str, members: list[tuple[float | None, bool]]) -> dict[str, Any]:
    means = [m for m, _ in members if m is not None]
    responsibility = round(sum(means) / len(means), 4) if means else None
    control = round(sum(1 for _, k in members if not k) / len(members), 4) if members else None
    return {
        "district": code,
        "enterprises": len(members),
        "key_attention": sum(1 for _, k in members if k),
        "enterprise_responsibility": responsibility,
        "territorial_control": control,
    }


_FACTS_SQL: Final = """
WITH dangers AS (
    SELECT enterprise_id, count(*) AS n FROM hidden_dangers
    WHERE is_major AND found_at < %(end)s AND (rectified_at IS NULL OR rectified_at >= %(end)s)
    GROUP BY enterprise_id
), alarms_overdue AS (
    SELECT h.enterprise_id, count(*) AS n
    FROM alarms a
    JOIN monitoring_points mp ON mp.id = a.point_id
    JOIN hazard_sources h ON h.id = mp.hazard_source_id
    WHERE a.level = 2 AND a.acknowledged_at IS NULL AND a.cleared_at IS NULL
      AND a.ack_deadline < %(end)s
    GROUP BY h.enterprise_id
), lost AS (
    SELECT h.enterprise_id, count(DISTINCT mp.id) AS n
    FROM alarms a
    JOIN monitoring_points mp ON mp.id = a.point_id
    JOIN hazard_sources h ON h.id = mp.hazard_source_id
    WHERE a.level = 2 AND a.cleared_at IS NULL AND a.disposed_at IS NULL AND mp.offline
      AND a.raised_at < %(end)s
    GROUP BY h.enterprise_id
), accidents_recent AS (
    SELECT enterprise_id, count(*) AS n FROM accidents
    WHERE occurred_on <= %(day)s AND occurred_on > %(day)s - %(accident_days)s
    GROUP BY enterprise_id
), penalties_recent AS (
    SELECT enterprise_id, count(*) AS n FROM penalties
    WHERE decided_on <= %(day)s AND decided_on > %(day)s - %(penalty_days)s
    GROUP BY enterprise_id
)
SELECT e.id, e.name, e.district, e.inherent_color, e.dynamic_color,
       coalesce(dangers.n, 0) AS dangers, coalesce(alarms_overdue.n, 0) AS alarms,
       coalesce(lost.n, 0) AS lost, coalesce(accidents_recent.n, 0) AS accidents,
       coalesce(penalties_recent.n, 0) AS penalties
FROM enterprises e
LEFT JOIN dangers ON dangers.enterprise_id = e.id
LEFT JOIN alarms_overdue ON alarms_overdue.enterprise_id = e.id
LEFT JOIN lost ON lost.enterprise_id = e.id
LEFT JOIN accidents_recent ON accidents_recent.enterprise_id = e.id
LEFT JOIN penalties_recent ON penalties_recent.enterprise_id = e.id
WHERE e.retired_at IS NULL  -- retired (migration 0012): history only, not watched
ORDER BY e.id
"""


async def daily_list(conn: AsyncConnection[Any], day: dt.date, rules: WatchRules) -> DailyList:
    """The watch list as of the end of ``day`` over every enterprise and district."""
    rates = await enterprise_rates(conn, day)
    # Deducted points follow each enterprise's rule set, cycle and carry-over
    # (layers/prevention/scoring.py).
    points = await deducted_points(conn, None, day)
    cur = conn.cursor(row_factory=dict_row)
    await cur.execute(
        _FACTS_SQL,
        {
            "end": day_end(day),
            "day": day,
            "accident_days": rules.accident_days,
            "penalty_days": rules.penalty_days,
        },
    )
    facts = [
        WatchFacts(
            r["id"],
            r["name"],
            r["district"],
            r["inherent_color"],
            r["dynamic_color"],
            r["dangers"],
            r["alarms"],
            points.get(r["id"], 0),
            rates[r["id"]],
            r["lost"],
            r["accidents"],
            r["penalties"],
        )
        for r in await cur.fetchall()
        if r["id"] in rates
    ]
    await cur.execute("SELECT code FROM districts ORDER BY code")
    districts = [r["code"] for r in await cur.fetchall()]
    return classify(day, facts, rules, districts)
