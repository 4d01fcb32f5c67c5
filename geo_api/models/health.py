"""``GET /healthz`` answers: versions when PostGIS answers, a bare 503 when it does not."""

from __future__ import annotations

from typing import Literal

from geo_api.models.base import Body


class Health(Body):
    status: Literal["ok"]
    postgis: str
    postgresql: str
    database: str
    schema_revision: str | None
    version: str


class HealthUnavailable(Body):
    status: Literal["unavailable"]
    detail: str
