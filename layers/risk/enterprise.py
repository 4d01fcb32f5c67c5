"""An enterprise's inherent and dynamic colour, with the ordered reasons behind them.

- Inherent = the worst of: its hazard sources' GB 18218 grade colours, its 100-point diagnosis
  colour (MEM 2018 risk diagnosis guide, 应急〔2018〕19号: < 60 red, 60–< 75 orange, 75–< 90
  yellow, ≥ 90 blue) and its worst risk unit (LEC / LS).
- Dynamic = inherent raised one level (capped at red) by any live condition: an open major
  hidden danger, a red monitoring point, a level-2 alarm unacknowledged past its deadline, a
  safety score at a measure threshold, or an illegal-parking alert of its tankers in the last
  24 h. Several conditions still raise one level: the colour says "worse than designed",
  the reasons list every cause.
Reasons are ordered: live conditions first (they explain the difference), then the inherent
contributors worst first. Each has a stable ``code`` for machines and text in zh and en.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any, Final

from layers.core.colors import RISK_COLORS, RiskColor, worst
from layers.risk.gb18218 import GRADE_COLORS

#: (minimum score, colour) checked top-down; below the last band is red.
DIAGNOSIS_BANDS: Final[tuple[tuple[float, RiskColor], ...]] = (
    (90, "blue"),
    (75, "yellow"),
    (60, "orange"),
)
DIAGNOSIS_FLOOR_COLOR: Final[RiskColor] = "red"
#: An enterprise with nothing assessed yet is shown blue, and its reason says why.
UNASSESSED_COLOR: Final[RiskColor] = "blue"

COLOR_ZH: Final[dict[str, str]] = {"red": "红", "orange": "橙", "yellow": "黄", "blue": "蓝"}


@dataclass(frozen=True)
class LiveRules:
    """Thresholds of the live conditions; configurable per deployment."""

    score_measure_threshold: int = 6  # Xiaoshan: key supervision at 6 deducted points
    parking_window_hours: int = 24


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
    open_major_dangers: int = 0
    major_danger_title: str | None = None
    red_points: int = 0
    overdue_level2_alarms: int = 0
    score_points: int = 0
    parking_alerts: int = 0


@dataclass(frozen=True)
class Reason:
    code: str
    zh: str
    en: str
    color: RiskColor | None = None  # the colour this reason contributes, if any
    raises: bool = False  # True for live conditions that raise the dynamic colour

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass(frozen=True)
class Rating:
    inherent: RiskColor
    dynamic: RiskColor
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


def _live_reasons(f: EnterpriseFacts, rules: LiveRules) -> list[Reason]:
    live: list[Reason] = []
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
    inherent = worst(*(r.color for r in inherent_reasons))
    if inherent is None:
        inherent = UNASSESSED_COLOR
        inherent_reasons = [
            Reason(
                "not_assessed",
                "无重大危险源、诊断或风险单元数据",
                "no hazard source, diagnosis or risk unit assessed yet",
                UNASSESSED_COLOR,
            )
        ]
    live = _live_reasons(facts, rules)
    dynamic = raise_one_level(inherent) if live else inherent
    return Rating(inherent, dynamic, live + inherent_reasons)
