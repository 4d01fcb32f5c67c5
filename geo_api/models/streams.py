"""Server-Sent Events answers (``text/event-stream``): what one event of each stream holds.

An OpenAPI 3.1 ``schema`` under ``text/event-stream`` describes each event of the stream, not
the stream as a whole (the reading OpenAPI 3.2 makes explicit with ``itemSchema``, and the one
schemathesis checks with): the WHATWG fields ``event``, ``data``, ``id``, ``retry``. ``data`` is
JSON text; what it holds per event type is in each model's description.
"""

from __future__ import annotations

from typing import Literal

from fastapi.responses import JSONResponse
from pydantic import Field

from geo_api.models.base import Body


class EventStreamResponse(JSONResponse):
    """``text/event-stream``, for the documentation only: named as a stream route's
    ``response_class`` so /openapi.json lists the event model under the stream's media type
    (FastAPI documents a ``response_model`` only for JSONResponse classes, as with
    ``GeoJSONResponse``). Never sent: the handlers answer with their own StreamingResponse."""

    media_type = "text/event-stream"


class MapChangeEvent(Body):
    """``GET /api/changes/stream``: ``hello`` once (``{"version", "layers"}``); ``change``
    with ``id: <version>`` (``{"version", "layer", "bbox", "ts"}``); ``reload``
    (``{"reason"}``): refetch the whole view."""

    event: Literal["hello", "change", "reload"] | None = None
    data: str | None = Field(default=None, description="JSON text")
    id: str | None = Field(default=None, description="the change version")
    retry: int | None = Field(default=None, description="ms before reconnecting")


class AlertEvent(Body):
    """``GET /api/alerts/stream``: ``alert`` with ``id: <alert id>:<revision>`` and the alert
    as a GeoJSON Feature; ``lagged`` (``{"dropped": n}``) when the client fell behind."""

    event: Literal["alert", "lagged"] | None = None
    data: str | None = Field(default=None, description="JSON text")
    id: str | None = Field(default=None, description="<alert id>:<revision>")
    retry: int | None = Field(default=None, description="ms before reconnecting")
