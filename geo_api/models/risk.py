"""Risk answers: an enterprise's colours and reasons, the city summary, the GB 18218 calculator
and the risk units of a site (layers/risk/)."""

from __future__ import annotations

import datetime as dt
from typing import Literal

from pydantic import Field

from geo_api.models.base import Body, Geometry, IsoTime, Number
from layers.core.colors import RatedColor, RiskColor


class RiskReason(Body):
    """One cause behind a colour, as layers/risk/enterprise.py's ``Reason`` stores it.

    Fields in the order jsonb keeps keys (shorter first), so the body stays byte for byte what
    it was before this model."""

    en: str
    zh: str
    code: str = Field(
        description="stable key, e.g. detector_lost_during_alarm, diagnosis_score, risk_unit,"
        " not_assessed"
    )
    color: RatedColor | None = Field(
        description="the colour this reason contributes, if any (grey: not assessed)"
    )
    raises: bool = Field(description="a live condition raising the dynamic colour")


class EnterpriseRisk(Body):
    """``GET /api/enterprises/{id}/risk``: the colours and every reason, worst first."""

    id: int
    name: str
    color: RatedColor | None = Field(
        description="the dynamic colour (what the map shows); grey: not assessed"
    )
    inherent_color: RatedColor | None = Field(description="grey: not assessed")
    dynamic_color: RatedColor | None
    reasons: list[RiskReason]
    updated_at: IsoTime | None


class DistrictCounts(Body):
    district: str | None
    counts: dict[str, int] = Field(
        description="enterprises by dynamic colour ('grey': not assessed), 'unrated' too"
    )
    not_assessed: int = Field(
        description="enterprises not assessed (inherent grey), whatever their dynamic colour"
    )


class RiskSummary(Body):
    """``GET /api/risk/summary``: counts by dynamic colour, overall and per district."""

    enterprises: dict[str, int] = Field(
        description="colour (or 'unrated') → enterprises; 'grey' counts the not assessed"
    )
    not_assessed: int = Field(
        description="enterprises not assessed (inherent grey); a live condition makes one's "
        "dynamic colour yellow, so this may exceed the 'grey' count"
    )
    districts: list[DistrictCounts]
    hazard_sources_by_grade: dict[str, int] = Field(
        description="grade 1–4 → count; 'none': assessed below S = 1; 'not_assessed': S undefined"
    )


class SubstanceContribution(Body):
    name: str
    q: Number = Field(description="design maximum quantity, t")
    Q: Number = Field(description="critical quantity, t")
    beta: Number
    q_over_Q: Number
    Q_from: Literal["given", "table1", "table2"]
    beta_from: Literal["given", "table3", "table4"]
    class_used: str | None = Field(
        default=None,
        description="the hazard class whose Table 2 Q and Table 4 β applied (the lowest Q of "
        "a substance with several classes)",
    )


class Gb18218Assessment(Body):
    """``POST /api/assess/gb18218``: S, α, R, grade and colour; grade and colour are null when
    S < 1 (not a major hazard source)."""

    S: Number
    alpha: Number
    R: Number
    grade: int | None
    color: RiskColor | None
    substances: list[SubstanceContribution]


class RiskUnitRating(Body):
    """A risk unit just stored: its id, colour and LEC D or LS R score (both null when the unit
    is registered but not assessed)."""

    id: int
    color: RiskColor | None
    score: Number | None


class EmergencyContact(Body):
    role: str
    name: str
    phone: str


class EmergencyContacts(Body):
    """An enterprise's emergency contacts, printed on its book's cover."""

    contacts: list[EmergencyContact]


class RiskUnitControl(Body):
    type: Literal["engineering", "management", "training", "ppe", "emergency"]
    measure: str


class RiskUnitProperties(Body):
    id: int
    enterprise_id: int
    name: str
    kind: str
    hazard_source_id: int | None
    method: Literal["LEC", "LS"] | None
    likelihood: Number | None
    exposure: Number | None
    consequence: Number | None
    severity: Number | None
    controls: list[RiskUnitControl]
    color: RiskColor | None
    score: Number | None
    responsible: str | None
    responsible_phone: str | None
    assessed_on: dt.date | None
    review_due: dt.date | None


class RiskUnitFeature(Body):
    """One risk unit as a GeoJSON Feature (its outline on the site plan)."""

    type: Literal["Feature"]
    id: int
    geometry: Geometry | None
    properties: RiskUnitProperties


class RiskUnitCollection(Body):
    """An enterprise's risk register as a GeoJSON FeatureCollection."""

    type: Literal["FeatureCollection"]
    features: list[RiskUnitFeature]
    numberMatched: int
