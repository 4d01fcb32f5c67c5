"""An enterprise's inherent and dynamic colour, with the ordered reasons behind them.

- Inherent = the worst of: its hazard sources' GB 18218 grade colours, its 100-point diagnosis
  colour (MEM 2018 risk diagnosis guide, 应急〔2018〕19号: < 60 red, 60–< 75 orange, 75–< 90
  yellow, ≥ 90 blue) and its worst risk unit (LEC / LS).
- Not assessed: with no graded hazard source, no diagnosis score and no risk unit there is no
  level to claim, so the inherent colour is **grey**, never blue (blue means "assessed, low",
  docs/domain.md §2.2), with a ``not_assessed`` reason naming each missing input.
- Dynamic = inherent raised one level (capped at red) by any live condition: a detector lost
  (offline) during an open level-2 alarm, an open major hidden danger, a red monitoring point,
  a level-2 alarm unacknowledged past its deadline, a safety score at a measure threshold, or
  an illegal-parking alert of its tankers in the last 24 h. Several conditions still raise one
  level: the colour says "worse than designed", the reasons list every cause.
- A not-assessed enterprise with a live condition: the inherent colour stays grey and the
  dynamic colour is **yellow** — the lowest level (blue) raised once, which is the least any
  enterprise with that live condition can be. Grey would hide a live danger (at city zooms and
  in hexagons grey loses to every colour); anything above yellow would claim more than is known.
  So assessing an enterprise can only keep or raise its dynamic colour, never lower it, and
  the ``not_assessed`` reason stays in the list to say the base is unknown.
- A detector lost during an open level-2 alarm (``detector_lost_during_alarm``) is listed
  first: communications often fail with the incident, so silence is itself the most urgent
  cause; it holds until the alarm is disposed of or cleared, or a reading brings the detector
  back (layers/monitoring/live.py keeps such a point in its alarm colour, marked offline).
- Direct red (MEM 2018 guide): an open finding of a direct-red circumstance
  (``enterprise_findings``, layers/core/vocab.py DIRECT_RED_FINDINGS) makes the enterprise red,
  inherent and dynamic, whatever its score; its reason comes **first**. Closing the finding
  gives the colour back to the other inputs.
- Diagnosis validity: a diagnosis is repeated at least every three years
  (``LiveRules.diagnosis_valid_years``). An expired one still gives its band (it is the last
  known level) but is a live condition — the enterprise is overdue for reassessment — and so
  raises the dynamic colour one level like the others (``expired_diagnosis_raises``). A
  diagnosis without a date is taken as current (no reason).
Reasons are ordered: a direct-red finding first, then live conditions (they explain the
difference), then the inherent contributors worst first. Each has a stable ``code`` for
machines and text in zh and en.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import asdict, dataclass, field
from typing import Any, Final

from layers.core.colors import GREY, RISK_COLORS, RatedColor, RiskColor, worst
from layers.core.vocab import DIRECT_RED_FINDINGS
from layers.risk.gb18218 import GRADE_COLORS

#: (minimum score, colour) checked top-down; below the last band is red.
DIAGNOSIS_BANDS: Final[tuple[tuple[float, RiskColor], ...]] = (
    (90, "blue"),
    (75, "yellow"),
    (60, "orange"),
)
DIAGNOSIS_FLOOR_COLOR: Final[RiskColor] = "red"
#: An enterprise with nothing assessed is grey ("not assessed"), and its reason says why.
NOT_ASSESSED_COLOR: Final[RatedColor] = GREY
#: The dynamic colour of a not-assessed enterprise with a live condition: the lowest level
#: (blue) raised once (see the module docstring).
NOT_ASSESSED_LIVE_COLOR: Final[RiskColor] = "yellow"

COLOR_ZH: Final[dict[str, str]] = {
    "red": "红",
    "orange": "橙",
    "yellow": "黄",
    "blue": "蓝",
    "grey": "灰",
}


@dataclass(frozen=True)
class LiveRules:
    """Thresholds of the live conditions; configurable per deployment."""

    score_measure_threshold: int = 6  # Xiaoshan: key supervision at 6 deducted points
    parking_window_hours: int = 24
    diagnosis_valid_years: int = 3  # MEM 2018 guide: reassessed at least every three years
    expired_diagnosis_raises: bool = True


def diagnosis_expired(diagnosed_on: dt.date | None, today: dt.date, valid_years: int) -> bool:
    """Older than ``valid_years``: on the anniversary itself it is still valid."""
    if diagnosed_on is None:
        return False
    try:
        until = diagnosed_on.replace(year=diagnosed_on.year + valid_years)
    except ValueError:  # 29 February → 28 February
        until = diagnosed_on.replace(year=diagnosed_on.year + valid_years, day=28)
    return today > until


@dataclass(frozen=True)
class EnterpriseFacts:
    """Everything the rating needs, gathered in one set-based query (layers/risk/recompute.py)."""

    enterprise_id: int
    diagnosis_score: float | None = None
    worst_source_grade: int | None = None
    worst_source_code: str | None = None
    worst_source_r: float | None = None
    worst_unit_color: RiskColor | None = None
    worst_unit_name: str | None = None
    hazard_sources: int = 0  # every unit registered, graded or not
    unassessed_sources: int = 0  # units that cannot be assessed (grey): no substances, Q or β
    lost_detectors: int = 0  # offline points with an open, undisposed level-2 alarm
    lost_detector_codes: str | None = None
    open_major_dangers: int = 0
    major_danger_title: str | None = None
    red_points: int = 0
    overdue_level2_alarms: int = 0
    score_points: int = 0
    parking_alerts: int = 0
    open_findings: int = 0  # open direct-red findings (MEM 2018 guide)
    finding_code: str | None = None  # the earliest open one
    finding_evidence: str | None = None
    diagnosed_on: dt.date | None = None
    diagnosis_expired: bool = False


@dataclass(frozen=True)
class Reason:
    code: str
    zh: str
    en: str
    color: RatedColor | None = None  # the colour this reason contributes, if any
    raises: bool = False  # True for live conditions that raise the dynamic colour

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass(frozen=True)
class Rating:
    inherent: RatedColor
    dynamic: RatedColor
    reasons: list[Reason] = field(default_factory=list)


def diagnosis_color(score: float | None) -> RiskColor | None:
    if score is None:
        return None
    for minimum, color in DIAGNOSIS_BANDS:
        if score >= minimum:
            return color
    return DIAGNOSIS_FLOOR_COLOR


def raise_one_level(color: RiskColor) -> RiskColor:
    return RISK_COLORS[max(RISK_COLORS.index(color) - 1, 0)]


def _inherent_reasons(f: EnterpriseFacts) -> list[Reason]:
    reasons: list[Reason] = []
    if f.worst_source_grade is not None:
        color = GRADE_COLORS[f.worst_source_grade]
        r_text = f" (R = {f.worst_source_r:.1f})" if f.worst_source_r is not None else ""
        reasons.append(
            Reason(
                "hazard_source_grade",
                f"{f.worst_source_code or ''} 为"
                f"{_zh_grade(f.worst_source_grade)}重大危险源{r_text}",
                f"major hazard source {f.worst_source_code or ''} is grade "
                f"{f.worst_source_grade}{r_text}",
                color,
            )
        )
    diag = diagnosis_color(f.diagnosis_score)
    if diag is not None:
        reasons.append(
            Reason(
                "diagnosis_score",
                f"安全风险诊断得分 {f.diagnosis_score:g} 分",
                f"risk diagnosis score {f.diagnosis_score:g}/100",
                diag,
            )
        )
    if f.worst_unit_color is not None:
        reasons.append(
            Reason(
                "risk_unit",
                f"风险单元「{f.worst_unit_name or ''}」为{COLOR_ZH[f.worst_unit_color]}色",
                f"risk unit '{f.worst_unit_name or ''}' is {f.worst_unit_color}",
                f.worst_unit_color,
            )
        )
    # Worst first; a stable sort keeps the source → diagnosis → unit order among equals.
    reasons.sort(key=lambda r: RISK_COLORS.index(r.color) if r.color else len(RISK_COLORS))
    return reasons


def _zh_grade(grade: int) -> str:
    return {1: "一级", 2: "二级", 3: "三级", 4: "四级"}[grade]


def _not_assessed(f: EnterpriseFacts) -> Reason:
    """The reason of a grey enterprise, naming every missing input."""
    zh: list[str] = []
    en: list[str] = []
    if f.diagnosis_score is None:
        zh.append("无安全风险诊断得分")
        en.append("no diagnosis score")
    if f.unassessed_sources > 0:
        zh.append(f"{f.unassessed_sources} 个危险源缺少辨识数据未能评估")
        en.append(f"{f.unassessed_sources} hazard source(s) not assessed (substances, Q or β)")
    elif f.hazard_sources > 0:
        zh.append("危险源均未构成重大危险源(S < 1)")
        en.append("no unit is a major hazard source (S < 1)")
    else:
        zh.append("无重大危险源")
        en.append("no major hazard source")
    if f.worst_unit_color is None:
        zh.append("无风险单元")
        en.append("no risk unit")
    return Reason(
        "not_assessed",
        "未评估：" + "，".join(zh),
        "not assessed: " + ", ".join(en),
        NOT_ASSESSED_COLOR,
    )


def _direct_red(f: EnterpriseFacts) -> Reason | None:
    if f.open_findings <= 0:
        return None
    zh_label, en_label = DIRECT_RED_FINDINGS.get(f.finding_code or "", ("", f.finding_code or ""))
    more_zh = f"等 {f.open_findings} 项" if f.open_findings > 1 else ""
    more_en = f" (+{f.open_findings - 1} more)" if f.open_findings > 1 else ""
    evidence = f"：{f.finding_evidence}" if f.finding_evidence else ""
    return Reason(
        "direct_red_finding",
        f"直接判定为红色：{zh_label}{more_zh}{evidence}",
        f"rated red directly: {en_label}{more_en}"
        + (f" — {f.finding_evidence}" if f.finding_evidence else ""),
        "red",
    )


def _expired(f: EnterpriseFacts, rules: LiveRules) -> Reason | None:
    if not f.diagnosis_expired:
        return None
    on = f.diagnosed_on.isoformat() if f.diagnosed_on else "?"
    return Reason(
        "diagnosis_expired",
        f"安全风险诊断已过期({on} 诊断，有效期 {rules.diagnosis_valid_years} 年)",
        f"risk diagnosis expired (diagnosed {on}, valid {rules.diagnosis_valid_years} years)",
        raises=rules.expired_diagnosis_raises,
    )


def _live_reasons(f: EnterpriseFacts, rules: LiveRules) -> list[Reason]:
    live: list[Reason] = []
    if f.lost_detectors > 0:
        codes = f" ({f.lost_detector_codes})" if f.lost_detector_codes else ""
        live.append(
            Reason(
                "detector_lost_during_alarm",
                f"{f.lost_detectors} 个监测点在二级报警未处置期间离线{codes}",
                f"{f.lost_detectors} detector(s) offline during an open level-2 alarm{codes}",
                raises=True,
            )
        )
    if f.open_major_dangers > 0:
        title = f"：{f.major_danger_title}" if f.major_danger_title else ""
        live.append(
            Reason(
                "open_major_hidden_danger",
                f"存在 {f.open_major_dangers} 项未整改重大隐患{title}",
                f"{f.open_major_dangers} open major hidden danger(s)"
                + (f": {f.major_danger_title}" if f.major_danger_title else ""),
                raises=True,
            )
        )
    if f.red_points > 0:
        live.append(
            Reason(
                "red_monitoring_point",
                f"{f.red_points} 个监测点处于红色报警",
                f"{f.red_points} monitoring point(s) red",
                raises=True,
            )
        )
    if f.overdue_level2_alarms > 0:
        live.append(
            Reason(
                "level2_alarm_overdue",
                f"{f.overdue_level2_alarms} 条二级报警超时未确认",
                f"{f.overdue_level2_alarms} level-2 alarm(s) unacknowledged past the deadline",
                raises=True,
            )
        )
    if f.score_points >= rules.score_measure_threshold:
        live.append(
            Reason(
                "safety_score_threshold",
                f"本周期已扣 {f.score_points} 分(≥ {rules.score_measure_threshold} 分措施线)",
                f"{f.score_points} points deducted this cycle "
                f"(measure threshold {rules.score_measure_threshold})",
                raises=True,
            )
        )
    if f.parking_alerts > 0:
        live.append(
            Reason(
                "tanker_illegal_parking",
                f"近 {rules.parking_window_hours} 小时所属车辆违规停车 {f.parking_alerts} 次",
                f"{f.parking_alerts} illegal-parking alert(s) of its tankers in the last "
                f"{rules.parking_window_hours} h",
                raises=True,
            )
        )
    return live


def rate(facts: EnterpriseFacts, rules: LiveRules | None = None) -> Rating:
    """The enterprise's colours and reasons; pure, so recompute and tests share it."""
    rules = rules or LiveRules()
    inherent_reasons = _inherent_reasons(facts)
    live = _live_reasons(facts, rules)
    expired = _expired(facts, rules)
    raising = [r for r in (*live, expired) if r is not None and r.raises]
    shown = [*live, *([expired] if expired else [])]
    source = facts.worst_source_grade
    assessed = worst(
        GRADE_COLORS[source] if source is not None else None,
        diagnosis_color(facts.diagnosis_score),
        facts.worst_unit_color,
    )
    direct = _direct_red(facts)
    if direct is not None:
        # Red whatever the rest says; the rest still explains itself after it.
        rest = inherent_reasons if assessed is not None else [_not_assessed(facts)]
        return Rating("red", "red", [direct, *shown, *rest])
    if assessed is None:
        dynamic: RatedColor = NOT_ASSESSED_LIVE_COLOR if raising else NOT_ASSESSED_COLOR
        return Rating(NOT_ASSESSED_COLOR, dynamic, [*shown, _not_assessed(facts)])
    dynamic = raise_one_level(assessed) if raising else assessed
    return Rating(assessed, dynamic, shown + inherent_reasons)
