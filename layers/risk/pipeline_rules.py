"""How a pipeline segment is coloured — the rule table, one home (defaults, replaceable
through ``PipelineRules``). Storage (cutting and writing) is ``layers/risk/pipelines.py``.

- **Likelihood** L (1–5) of a *harmful* release on the segment = pressure class + small-bore
  step + substance step, clamped to 1–5.
  - Pressure class (layers/risk/consequence.py ``PRESSURE_EDGES_MPA``, upper edges inclusive):
    ≤ 0.4 MPa → 1 (GB 50028-2006 medium/low), ≤ 1.6 → 2 (sub-high), ≤ 4.0 → 3 (high),
    ≤ 10 → 4 (transmission; TSG D0001-2009 makes flammable media at ≥ 4.0 MPa GC1),
    above → 5 (TSG D0001: any fluid at ≥ 10 MPa is GC1). Stress and the driving force of a
    leak both rise with pressure.
  - Small bore: + 1 below 127 mm (5 in). EGIG's incident reports find the failure frequency
    highest in the smallest diameter class and falling with diameter (thin walls, external
    interference).
  - Substance (layers/risk/substances.py by CAS, else name keywords, else the worst): toxic + 1 (a
    toxic release harms without ignition, while a flammable one needs an ignition source —
    ignition probabilities of pipeline releases are well below 1), flammable 0, neither − 1.
- **Severity** S (1–5) = substance hazard (toxic 3, flammable 2, neither 1) + the most
  sensitive protected target within the segment's yellow consequence zone (school or
  hospital + 3, residential + 2, water source + 1, none 0), clamped to 1–5. The order follows
  GB 36894-2018 «危险化学品生产装置和储存设施风险基准»: schools and hospitals are *highly
  sensitive* targets and take the strictest individual-risk criterion (3×10⁻⁷/yr new,
  3×10⁻⁶/yr in service); residential areas are *general* targets graded by headcount into
  classes 1–3 whose criteria relax to 1×10⁻⁵ / 3×10⁻⁵; drinking-water sources are not a
  population target of GB 36894 at all (they are protected by the Water Pollution Prevention
  Law), so they rank below homes but above open land. The yellow zone (2 kW/m², pain within
  60 s) is the outer limit of harm; blue is only an awareness ring.
- **Colour** = the LS matrix of layers/risk/units.py (R = L × S: ≥ 20 red, ≥ 9 orange,
  ≥ 4 yellow, else blue).
- **Live override**: an open alarm (not cleared) or a red live colour on a pressure, leak, flow
  or gas-detector point of the pipeline forces every segment of that pipeline red — the line
  is operated as one pressure system, and all four kinds signal loss of containment.

Each segment stores likelihood, severity, sensitive_target (zone kind), colour and ordered
reasons (live causes first, then the matrix, then its inputs), each ``{code, zh, en}``.

A segment is never grey ("not assessed"): every input is always there — substance, diameter
and pressure are NOT NULL on ``pipelines`` (CHECKed ranges), an unrecognised substance is
rated as toxic and flammable (the strictest, and its reason says so), and "no protected target
within the zone" is a finding, not a missing input.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Final

from layers.core.colors import RiskColor
from layers.risk.consequence import (
    PRESSURE_EDGES_MPA,
    SubstanceHazard,
    band_index,
    substance_hazard,
)
from layers.risk.units import LsThresholds, ls

COLOR_ZH: Final[dict[str, str]] = {"red": "红", "orange": "橙", "yellow": "黄", "blue": "蓝"}
TARGET_ZH: Final[dict[str, str]] = {
    "school": "学校",
    "hospital": "医院",
    "residential": "居民区",
    "water_source": "饮用水水源地",
}
PRESSURE_CLASS_NAMES: Final[tuple[tuple[str, str], ...]] = (
    ("中压及以下", "medium or low pressure"),
    ("次高压", "sub-high pressure"),
    ("高压", "high pressure"),
    ("输送高压", "transmission pressure"),
    ("超高压", "very high pressure"),
)


@dataclass(frozen=True)
class PipelineRules:
    """Every threshold of the rule table above; a deployment may replace any of them."""

    #: Likelihood by pressure band (index into consequence.PRESSURE_EDGES_MPA, top band last).
    pressure_likelihood: tuple[int, ...] = (1, 2, 3, 4, 5)
    small_bore_below_mm: float = 127.0
    small_bore_step: int = 1
    toxic_likelihood_step: int = 1
    inert_likelihood_step: int = -1
    severity_toxic: int = 3
    severity_flammable: int = 2
    severity_inert: int = 1
    #: Protected-zone kind → severity step, and the sensitivity order (most sensitive first).
    target_severity: dict[str, int] = field(
        default_factory=lambda: {"school": 3, "hospital": 3, "residential": 2, "water_source": 1}
    )
    #: The consequence zone searched for protected targets.
    target_zone_color: RiskColor = "yellow"
    #: Monitoring-point kinds whose open alarm or red live colour forces the pipeline red.
    live_kinds: tuple[str, ...] = ("pressure", "leak", "flow", "gas_flammable", "gas_toxic")
    ls_thresholds: LsThresholds = field(default_factory=LsThresholds)


DEFAULT_RULES: Final = PipelineRules()


@dataclass(frozen=True)
class SegmentFacts:
    """Everything one segment's rating needs, gathered by ``_FACTS_SQL``."""

    segment_id: int
    substance: str
    cas: str | None
    diameter_mm: float
    pressure_mpa: float
    target_kind: str | None = None
    target_name: str | None = None
    target_distance_m: float | None = None
    search_radius_m: float = 0.0
    open_alarms: int = 0
    alarm_point: str | None = None
    red_points: int = 0
    red_point: str | None = None


@dataclass(frozen=True)
class SegmentRating:
    likelihood: int
    severity: int
    sensitive_target: str | None
    color: RiskColor
    reasons: list[dict[str, str]]


def _reason(code: str, zh: str, en: str) -> dict[str, str]:
    return {"code": code, "zh": zh, "en": en}


def _clamp(value: int) -> int:
    return max(1, min(5, value))


def _substance_text(flags: SubstanceHazard) -> tuple[str, str]:
    if flags.basis == "default":
        return "介质未识别，按有毒易燃从严", "unknown substance, treated as toxic and flammable"
    parts = [p for p, on in (("有毒", flags.toxic), ("易燃", flags.flammable)) if on]
    en = [p for p, on in (("toxic", flags.toxic), ("flammable", flags.flammable)) if on]
    return ("、".join(parts) or "不燃无毒"), (" and ".join(en) or "neither toxic nor flammable")


def likelihood_of(
    pressure_mpa: float, diameter_mm: float, flags: SubstanceHazard, rules: PipelineRules
) -> tuple[int, list[dict[str, str]]]:
    band = band_index(pressure_mpa, PRESSURE_EDGES_MPA)
    value = rules.pressure_likelihood[band]
    zh, en = PRESSURE_CLASS_NAMES[band]
    reasons = [
        _reason(
            "pressure_class",
            f"设计压力 {pressure_mpa:g} MPa（{zh}）：可能性基数 {value}",
            f"design pressure {pressure_mpa:g} MPa ({en}): base likelihood {value}",
        )
    ]
    if diameter_mm < rules.small_bore_below_mm:
        value += rules.small_bore_step
        reasons.append(
            _reason(
                "small_bore",
                f"管径 {diameter_mm:g} mm 小于 {rules.small_bore_below_mm:g} mm，失效频率较高",
                f"diameter {diameter_mm:g} mm below {rules.small_bore_below_mm:g} mm: higher "
                "failure frequency",
            )
        )
    if flags.toxic:
        value += rules.toxic_likelihood_step
        reasons.append(
            _reason(
                "toxic_release",
                f"有毒介质泄漏无需点火即可致害：可能性 {rules.toxic_likelihood_step:+d}",
                "a toxic release harms without ignition: likelihood "
                f"{rules.toxic_likelihood_step:+d}",
            )
        )
    elif not flags.flammable:
        value += rules.inert_likelihood_step
        reasons.append(
            _reason(
                "inert_fluid",
                f"介质不燃无毒，仅有压力能量：可能性 {rules.inert_likelihood_step:+d}",
                "neither flammable nor toxic, only pressure energy: likelihood "
                f"{rules.inert_likelihood_step:+d}",
            )
        )
    return _clamp(value), reasons


def severity_of(
    flags: SubstanceHazard, target_kind: str | None, rules: PipelineRules
) -> tuple[int, int]:
    """``(severity, substance part)``; the target part comes from ``rules.target_severity``."""
    if flags.toxic:
        base = rules.severity_toxic
    elif flags.flammable:
        base = rules.severity_flammable
    else:
        base = rules.severity_inert
    step = rules.target_severity.get(target_kind, 0) if target_kind else 0
    return _clamp(base + step), base


def rate_segment(facts: SegmentFacts, rules: PipelineRules = DEFAULT_RULES) -> SegmentRating:
    """Likelihood, severity, colour and reasons of one segment (pure; no database)."""
    flags = substance_hazard(facts.substance, facts.cas)
    likelihood, input_reasons = likelihood_of(facts.pressure_mpa, facts.diameter_mm, flags, rules)
    severity, base = severity_of(flags, facts.target_kind, rules)
    r_value, color = ls(likelihood, severity, rules.ls_thresholds)
    sub_zh, sub_en = _substance_text(flags)
    input_reasons.append(
        _reason(
            "substance",
            f"介质 {facts.substance}：{sub_zh}（严重性基数 {base}）",
            f"substance {facts.substance}: {sub_en} (base severity {base})",
        )
    )
    radius = f"{facts.search_radius_m:g}"
    if facts.target_kind:
        kind_zh = TARGET_ZH.get(facts.target_kind, facts.target_kind)
        input_reasons.append(
            _reason(
                "sensitive_target",
                f"后果区（{radius} m）内最敏感目标：{kind_zh}「{facts.target_name or ''}」，"
                f"距 {facts.target_distance_m or 0:.0f} m",
                f"most sensitive target within the {radius} m zone: "
                f"{facts.target_kind.replace('_', ' ')} '{facts.target_name or ''}', "
                f"{facts.target_distance_m or 0:.0f} m away",
            )
        )
    else:
        input_reasons.append(
            _reason(
                "no_sensitive_target",
                f"后果区（{radius} m）内无防护目标",
                f"no protected target within the {radius} m zone",
            )
        )
    live: list[dict[str, str]] = []
    if facts.open_alarms:
        live.append(
            _reason(
                "live_alarm",
                f"管道存在 {facts.open_alarms} 条未解除报警（监测点 {facts.alarm_point}）",
                f"{facts.open_alarms} open alarm(s) on the pipeline (point {facts.alarm_point})",
            )
        )
    if facts.red_points:
        live.append(
            _reason(
                "live_point_red",
                f"管道监测点 {facts.red_point} 实时状态为红色",
                f"pipeline monitoring point {facts.red_point} is live red",
            )
        )
    matrix = _reason(
        "ls_matrix",
        f"风险矩阵 L×S = {likelihood}×{severity} = {r_value}：{COLOR_ZH[color]}",
        f"LS matrix L×S = {likelihood}×{severity} = {r_value}: {color}",
    )
    final: RiskColor = "red" if live else color
    return SegmentRating(
        likelihood, severity, facts.target_kind, final, [*live, matrix, *input_reasons]
    )
