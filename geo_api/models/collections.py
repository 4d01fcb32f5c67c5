"""Answers of the collections' edits (``PATCH`` and ``DELETE /api/<collection>/{id}``)."""

from __future__ import annotations

from typing import Literal

from pydantic import Field

from geo_api.models.base import Body


class EditOutcome(Body):
    """``PATCH``: the item's new version; ``etag`` is also the answer's ``ETag`` header, the
    ``If-Match`` of the next edit."""

    id: int
    version: int = Field(description="the row version after this edit")
    etag: str = Field(description='the new strong ETag, e.g. "4"')


class DeleteOutcome(Body):
    """``DELETE`` of a row that history names (alerts, alarms, readings, stops, fixes,
    deductions): retired — gone from lists, maps and rules, kept as evidence; its item answers
    410 from now on. A row nothing names is deleted outright: 204, no body."""

    id: int
    outcome: Literal["retired"]
