"""Prevention answers: the 12-point safety score and its deductions, the hidden-danger register
and the daily watch list (layers/prevention/)."""

from __future__ import annotations

from pydantic import Field

from geo_api.models.base import Body, IsoDate, IsoTime, Number
from layers.prevention.dual import HiddenDangerStatus


class Bilingual(Body):
    zh: str
    en: str


class RuleSetRef(Body):
    code: str
    name: Bilingual
    version: int | None = Field(default=None, description="the set's version now in force")
    is_sample: bool = Field(
        default=False, description="a SAMPLE set (not the official list): say so where shown"
    )


class ScoreMeasure(Body):
    """The measure a total has reached (e.g. a warning talk at 6 points)."""

    at: int = Field(description="points deducted from which it applies")
    code: str
    text: Bilingual


class MeasureEffects(Body):
    """What a measure does: raise the dynamic colour, key list, inspections, flags."""

    colour_raise: int = Field(description="levels the dynamic colour rises")
    key_list: bool = Field(description="on the key-supervision list")
    inspection_every_days: int | None = Field(description="inspect at least this often")
    interview: bool
    enforcement: bool


class ReachedMeasure(ScoreMeasure):
    effects: MeasureEffects


class ScoreEvent(Body):
    """One deduction of the history, newest first."""

    id: int
    item_code: str
    item_text: Bilingual | None
    points: int
    source: str = Field(description="inspection (by hand) or auto")
    occurred_at: IsoTime
    note: str | None
    rectified: bool = Field(description="its rectification was accepted (state accepted)")
    counts: bool = Field(description="whether it counts in the current cycle")
    state: str = Field(description="open, reported, accepted, rejected or voided")
    rule_set: str | None = None
    rule_set_version: int | None = Field(default=None, description="made under this version")


class SafetyScore(Body):
    """``GET /api/enterprises/{id}/score``: the cycle's deductions, what remains, the measures
    reached and their combined effects."""

    enterprise_id: int
    rule_set: RuleSetRef
    is_sample: bool = Field(description="scored by a SAMPLE set, not an official list")
    cycle_start: IsoDate
    cycle_end: IsoDate
    deducted: int
    remaining: int
    earned_back: int = Field(description="approved earn-back counted this cycle (capped)")
    measure: ScoreMeasure | None = Field(description="the highest measure reached")
    measures: list[ReachedMeasure] = Field(description="every measure reached, lowest first")
    effects: MeasureEffects = Field(description="the measures' effects combined")
    history: list[ScoreEvent]


class Deduction(Body):
    """``POST /api/enterprises/{id}/deductions``: the stored event; points are the rule set's."""

    id: int
    rule_set: str
    rule_set_version: int | None = None
    item_code: str
    points: int
    state: str = "open"


class HiddenDanger(Body):
    """One entry of the hidden-danger register (found → rectifying → rectified); a major one
    passes through ``rectification_reported`` and closes only with a regulator's acceptance."""

    id: int
    enterprise_id: int
    title: str
    is_major: bool
    major_criterion: str | None = Field(
        default=None, description="item of the 2017 major-hidden-danger criteria (MHD01…MHD20)"
    )
    status: HiddenDangerStatus
    found_at: IsoTime
    deadline: IsoDate | None
    rectified_at: IsoTime | None
    reported_at: IsoTime | None = None
    reported_by: str | None = None
    report_evidence: str | None = None
    report_evidence_url: str | None = None
    accepted_at: IsoTime | None = None
    accepted_by: str | None = None
    acceptance_note: str | None = None
    rejected_at: IsoTime | None = None
    rejected_by: str | None = None
    rejection_reason: str | None = None
    reminded_for: IsoDate | None = Field(
        default=None, description="the deadline a reminder was sent for"
    )
    reminded_at: IsoTime | None = None


class HiddenDangerList(Body):
    items: list[HiddenDanger]
    numberMatched: int


class WatchReason(Body):
    code: str = Field(description="K1…K4 (key attention) or S1…S3 (suggested)")
    text: str


class WatchEntry(Body):
    enterprise_id: int
    name: str
    district: str | None
    reasons: list[WatchReason]


class DistrictIndexes(Body):
    district: str
    enterprises: int
    key_attention: int
    enterprise_responsibility: Number | None
    territorial_control: Number | None


class WatchList(Body):
    """``GET /api/reports/daily``: the enterprises to look at on a date, and why."""

    date: IsoDate
    key_attention: list[WatchEntry]
    suggested_attention: list[WatchEntry]
    districts: list[DistrictIndexes]


class Rate(Body):
    done: int
    of: int
    rate: Number | None = Field(description="done / of; null when there is nothing to do")


class RectificationRate(Rate):
    overdue: int = Field(description="hidden dangers past their deadline")


class PreventionRates(Body):
    risk_analysis_completion: Rate
    inspection_task_completion: Rate
    hidden_danger_rectification: RectificationRate


class EnterprisePrevention(PreventionRates):
    """``GET /api/enterprises/{id}/prevention``: the dual-prevention rates on a date."""

    enterprise_id: int
    date: IsoDate


class DistrictPrevention(PreventionRates):
    """``GET /api/districts/{code}/prevention``: the rates of a district's enterprises."""

    district: str
    date: IsoDate
    enterprises: int
