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


class ScoreMeasure(Body):
    """The measure a total has reached (e.g. a warning talk at 6 points)."""

    at: int = Field(description="points deducted from which it applies")
    code: str
    text: Bilingual


class ScoreEvent(Body):
    """One deduction of the history, newest first."""

    id: int
    item_code: str
    item_text: Bilingual | None
    points: int
    source: str = Field(description="inspection (by hand) or auto")
    occurred_at: IsoTime
    note: str | None
    rectified: bool
    counts: bool = Field(description="whether it counts in the current cycle")


class SafetyScore(Body):
    """``GET /api/enterprises/{id}/score``: the cycle's deductions, what remains, the measure."""

    enterprise_id: int
    rule_set: RuleSetRef
    cycle_start: IsoDate
    cycle_end: IsoDate
    deducted: int
    remaining: int
    measure: ScoreMeasure | None
    history: list[ScoreEvent]


class Deduction(Body):
    """``POST /api/enterprises/{id}/deductions``: the stored event; points are the rule set's."""

    id: int
    rule_set: str
    item_code: str
    points: int


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
