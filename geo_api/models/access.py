"""API key answers (layers/access/keys.py): the listing, and a new key shown once."""

from __future__ import annotations

from pydantic import Field

from geo_api.models.base import Body, IsoTime


class ApiKey(Body):
    """A key as listed: its prefix, role and state, never the key."""

    id: int
    name: str
    role: str
    enterprise_id: int | None
    districts: list[str] | None
    carriers: list[str] | None = Field(
        default=None, description="ingest keys: the carriers whose tankers they post"
    )
    prefix: str = Field(description="the first characters, to tell keys apart")
    created_at: IsoTime
    expires_at: IsoTime | None
    revoked_at: IsoTime | None
    active: bool


class NewApiKey(ApiKey):
    """``POST /api/keys``: the key itself, shown only in this answer."""

    key: str


class KeyList(Body):
    """``GET /api/keys``."""

    keys: list[ApiKey]
