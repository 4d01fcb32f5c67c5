"""Tanker and sensor answers: a batch's ingest result (layers/core/ingest.py), a vehicle's track
(layers/transport/track.py) and an alert's evidence (layers/alerts/feeds.py)."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import Field

from geo_api.models.base import Body, Geometry, IsoTime


class RowRejection(Body):
    index: int = Field(description="the row's position in the batch (0-based)")
    error: str = Field(description="the field and the reason")


class IngestResult(Body):
    """``POST /api/positions`` and ``POST /api/readings``: what the batch did, row by row."""

    accepted: int
    duplicates: int = Field(description="rows already stored (idempotent on object and ts)")
    rejected: list[RowRejection]


class TrackFeature(Body):
    """The track (``kind: track``: one LineString, ``times`` and ``speeds_kmh`` parallel to
    its vertices), a stop (``kind: stop``) or a zone (``kind: zone``)."""

    type: Literal["Feature"]
    id: int | None = None
    geometry: Geometry
    properties: dict[str, Any]


class Track(Body):
    """``GET /api/vehicles/{id}/track``: the window's track and its stops."""

    type: Literal["FeatureCollection"]
    features: list[TrackFeature]


class Evidence(Body):
    """``GET /api/alerts/{id}/evidence``: the track around the episode, its stop and zone."""

    type: Literal["FeatureCollection"]
    alert_id: int
    rule: str
    episode_start: IsoTime
    episode_end: IsoTime | None
    features: list[TrackFeature]


class LoadingFailure(Body):
    """One failed loading check (layers/transport/qualifications.py)."""

    check: str
    field: str
    reason: str


class WaybillEvent(Body):
    """One step of a waybill's history: a party's event, a transition, a refused loading."""

    id: int
    kind: str = Field(
        description="loading, loaded, unloading, unloaded, transition, loading_refused"
    )
    from_state: str
    to_state: str
    at: IsoTime
    source: str = Field(description="party, api or derived (from a stop at the declared site)")
    actor: str | None
    failures: list[LoadingFailure] | None = Field(description="a refused loading's failed checks")
    note: str | None
    lon: float | None
    lat: float | None


class WaybillEvents(Body):
    """``GET /api/waybills/{id}/events``: the history, oldest first."""

    waybill_id: int
    items: list[WaybillEvent]
    numberMatched: int
