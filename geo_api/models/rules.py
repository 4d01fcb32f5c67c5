"""Safety-score rule sets and what their lifecycle routes answer (docs/rules.md): the sets
(geo_api/routes/rule_sets.py), a deduction's steps, earn-backs and tags (scores.py), licences
and certificates (qualifications.py). The score itself and a new deduction: ``prevention``.

The shapes are the dicts of layers/prevention/ (``RuleSet.as_dict``, ``deductions.step``,
``qualifications._json``): every key they always send is required here.
"""

from __future__ import annotations

import datetime as dt
from typing import Annotated, Literal

from pydantic import Field, PlainSerializer, WithJsonSchema

from geo_api.models.base import Body, IsoDate, IsoTime
from geo_api.models.prevention import Bilingual, MeasureEffects, RuleSetRef, ScoreMeasure
from layers.prevention.qualifications import CertificateRole, LicenceKind

#: A ``timestamptz`` a handler returns as a ``datetime``: sent as ``isoformat()`` (what the
#: route sent before it had a model: ``+00:00``, not pydantic's ``Z``).
RowTime = Annotated[
    dt.datetime,
    PlainSerializer(lambda v: v.isoformat(), return_type=str),
    WithJsonSchema({"type": "string", "format": "date-time"}),
]
DeductionState = Literal["open", "reported", "accepted", "rejected", "voided"]


# -- rule sets ------------------------------------------------------------------------------
class RuleItem(Body):
    """One item a regulator may deduct for (or a trigger deducts automatically)."""

    code: str
    text: Bilingual
    points: int
    category: str
    tier: str
    trigger: str = Field(description="none (by hand) or the automatic trigger")
    cap_per_cycle: int | None = Field(description="at most this many points a cycle")


class RuleMeasure(ScoreMeasure):
    """A measure of the set: from ``at`` points deducted, these effects."""

    effects: MeasureEffects


class RuleCycle(Body):
    start_month: int
    start_day: int
    carry_over: str


class RuleEarnBack(Body):
    allowed: bool
    cap: int = Field(description="points that may be earned back a cycle")


class RuleSetHead(Body):
    """What every answer about a set says of it (not its items)."""

    code: str
    version: int
    name: Bilingual
    is_sample: bool = Field(description="a SAMPLE set (not the official list): say so")
    title: Bilingual
    source_note: str | None
    cycle: RuleCycle
    earn_back: RuleEarnBack
    measures: list[RuleMeasure] = Field(description="by threshold, lowest first")
    created_at: IsoTime | None
    created_by: str | None


class RuleSet(RuleSetHead):
    """``GET /api/rule-sets/{code}`` and ``POST /api/rule-sets``: one version, its items."""

    items: list[RuleItem]


class RuleAssignment(Body):
    """Enterprises the set scores: every criterion given must hold (null: any)."""

    category: str | None
    district: str | None
    tag: str | None
    priority: int


class RuleSetSummary(RuleSetHead):
    """A set's latest version in the list: items counted, not listed."""

    items_count: int
    versions: list[int] = Field(description="every stored version, oldest first")
    assignments: list[RuleAssignment]


class RuleSetList(Body):
    """``GET /api/rule-sets``."""

    rule_sets: list[RuleSetSummary]


# -- a deduction's lifecycle, earn-backs, tags --------------------------------------------
class DeductionStep(Body):
    """A deduction after a step (reported, accepted, rejected, voided)."""

    id: int
    enterprise_id: int
    item_code: str
    points: int
    state: DeductionState


class EarnBack(Body):
    """A request to earn points back, requested, then approved or rejected."""

    id: int
    enterprise_id: int
    points: int
    reason: Literal["training", "improvement"]
    state: Literal["requested", "approved", "rejected"]
    occurred_at: RowTime


class EnterpriseTags(Body):
    """``PUT /api/enterprises/{id}/tags``: the tags kept and the set now scoring it."""

    enterprise_id: int
    tags: list[str] = Field(description="sorted, without duplicates")
    rule_set: RuleSetRef | None = Field(description="null: no set is assigned")


# -- licences and certificates ----------------------------------------------------------
class Validity(Body):
    """What a licence and a certificate share: the dates and how long is left."""

    id: int
    enterprise_id: int
    number: str | None
    issued_on: IsoDate | None
    valid_until: IsoDate = Field(description="the last valid day")
    created_at: IsoTime
    updated_at: IsoTime
    days_left: int = Field(description="days until valid_until; negative once expired")
    status: Literal["valid", "expiring", "expired"] = Field(
        description="expiring within GEORISK_SCORING_WARN_DAYS"
    )


class Licence(Validity):
    kind: LicenceKind


class Certificate(Validity):
    holder: str
    role: CertificateRole
    operation: str | None = Field(description="the special operation (welding…)")


class LicenceList(Body):
    licences: list[Licence] = Field(description="soonest to expire first")


class CertificateList(Body):
    certificates: list[Certificate] = Field(description="soonest to expire first")
