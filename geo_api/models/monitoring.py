"""Monitoring alarm answers: an alarm as GeoJSON at its point, and the list
(layers/monitoring/alarms.py)."""

from __future__ import annotations

from typing import Literal

from pydantic import Field

from geo_api.models.base import Body, Geometry, IsoTime, Number


class AlarmProperties(Body):
    id: int
    point_id: int
    point_code: str
    point_offline: bool = Field(
        description="the point is silent (stale or flat-lined); an open alarm keeps its colour"
    )
    kind: str
    unit: str | None
    level: int
    color: str
    status: Literal["open", "acknowledged", "disposed", "cleared"]
    raised_at: IsoTime
    ack_deadline: IsoTime | None
    acknowledged_at: IsoTime | None
    disposed_at: IsoTime | None
    cleared_at: IsoTime | None
    peak_value: Number | None
    enterprise_id: int | None
    district: str | None


class AlarmFeature(Body):
    type: Literal["Feature"]
    id: int
    geometry: Geometry | None
    properties: AlarmProperties


class AlarmCollection(Body):
    """``GET /api/alarms``: alarms at their points' positions, newest first."""

    type: Literal["FeatureCollection"]
    features: list[AlarmFeature]
