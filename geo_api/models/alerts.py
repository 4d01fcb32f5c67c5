"""Tanker alert answers: an alert as GeoJSON, the list in both forms, the statistics
(layers/alerts/lifecycle.py, layers/alerts/stats.py)."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import Field

from geo_api.models.base import Body, Geometry, IsoTime, Number

AlertStatus = Literal["new", "acknowledged", "disposed", "false_alarm"]


class AlertProperties(Body):
    id: int
    vehicle_id: int | None
    plate: str | None
    carrier: str | None
    enterprise_id: int | None
    rule: str
    zone_id: int | None
    zone_name: str | None
    zone_kind: str | None
    stop_id: int | None
    episode_start: IsoTime
    episode_end: IsoTime | None
    duration_s: Number | None
    active: bool
    status: AlertStatus
    district: str | None
    severity: str
    details: dict[str, Any]
    created_at: IsoTime
    updated_at: IsoTime
    revision: int = Field(description="bumped by every change; SSE ids are id:revision")
    acknowledged_at: IsoTime | None
    acknowledged_by: str | None
    disposed_at: IsoTime | None
    disposed_by: str | None
    outcome: Literal["disposed", "false_alarm"] | None
    note: str | None
    ack_deadline: IsoTime | None
    dispose_deadline: IsoTime | None
    escalation_level: int
    escalated_at: IsoTime | None
    departments: list[str] = Field(description="the departments it was routed to")
    carrier_notified: bool = Field(description="routed to the carrier enterprise as well")


class AlertFeature(Body):
    """One alert as a GeoJSON Feature at the stop or the fix that raised it."""

    type: Literal["Feature"]
    id: int
    geometry: Geometry | None
    properties: AlertProperties


class AlertCollection(Body):
    """``GET /api/alerts``: alerts as a GeoJSON FeatureCollection, newest first."""

    type: Literal["FeatureCollection"]
    numberMatched: int
    numberReturned: int
    features: list[AlertFeature]


class AlertList(Body):
    """``GET /api/alerts?f=json``: the alerts' properties as plain JSON."""

    alerts: list[AlertProperties]
    numberMatched: int


class StatusCounts(Body):
    new: int
    acknowledged: int
    disposed: int
    false_alarm: int


class Durations(Body):
    median: Number | None
    p90: Number | None


class AlertFigures(Body):
    total: int
    by_status: StatusCounts
    time_to_acknowledge_s: Durations
    time_to_dispose_s: Durations
    disposal_rate_of_closed: Number | None
    disposal_rate_of_all: Number | None
    closed_rate: Number | None


class DistrictAlertFigures(AlertFigures):
    district: str | None


class CarrierAlertFigures(AlertFigures):
    carrier: str | None


class RuleAlertFigures(AlertFigures):
    rule: str | None


class DepartmentAlertFigures(AlertFigures):
    department: str | None


class AlertStats(Body):
    """``GET /api/alerts/stats``: overall figures, then per district, carrier, warning type
    (rule) and department (an alert routed to two departments counts for each)."""

    from_: IsoTime | None = Field(alias="from")
    to: IsoTime | None
    district: list[str] | None
    overall: AlertFigures
    by_district: list[DistrictAlertFigures]
    by_carrier: list[CarrierAlertFigures]
    by_rule: list[RuleAlertFigures]
    by_department: list[DepartmentAlertFigures]


class AlertRoute(Body):
    """Where a warning type goes (``alert_routes``, migration 0019)."""

    rule: str
    departments: list[str]
    to_carrier: bool
    ack_s: Number | None = Field(description="null: the engine's default deadline")
    dispose_s: Number | None
    updated_at: IsoTime


class AlertRouteList(Body):
    items: list[AlertRoute]


class WebhookSubscription(Body):
    id: int
    url: str
    districts: list[str] | None
    rules: list[str] | None
    active: bool
    created_at: IsoTime


class NewWebhookSubscription(WebhookSubscription):
    """``POST /api/webhooks``: the subscription and its signing secret, shown only here."""

    secret: str = Field(description="whsec_<base64>: the key of every webhook-signature")


class WebhookList(Body):
    """``GET /api/webhooks``: active subscriptions, without their secrets."""

    webhooks: list[WebhookSubscription]


class Delivery(Body):
    id: int
    alert_id: int
    revision: int
    event: str
    attempts: int
    next_attempt_at: IsoTime | None
    delivered_at: IsoTime | None
    last_error: str | None
    created_at: IsoTime


class DeliveryList(Body):
    """``GET /api/webhooks/{id}/deliveries``: newest first."""

    deliveries: list[Delivery]
