"""Access answers: API keys (layers/access/keys.py; a new key is shown once), the caller, the
session and bearer tokens (geo_api/auth.py), and the audit log (layers/access/audit.py)."""

from __future__ import annotations

from typing import Any, Literal

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


class CallerInfo(Body):
    """``GET /api/auth/whoami``: the caller as the server sees them."""

    name: str
    role: str
    enterprise_id: int | None
    districts: list[str] | None
    carriers: list[str] | None
    via: str = Field(description="key, token, session or anonymous")


class SessionState(Body):
    """``GET /api/auth/session``: ``signed_in`` and, when true, the caller (``CallerInfo``'s
    fields); when false, ``reason``."""

    signed_in: bool
    reason: str | None = Field(default=None, description="why not, when not signed in")
    name: str | None = None
    role: str | None = None
    enterprise_id: int | None = None
    districts: list[str] | None = None
    carriers: list[str] | None = None
    via: str | None = None


class BearerToken(Body):
    """``POST /api/auth/token``: a signed token standing for the caller."""

    access_token: str
    token_type: Literal["Bearer"]
    expires_in: int = Field(description="seconds")


class AuditEntry(Body):
    id: int
    at: IsoTime
    actor: str | None
    action: str
    entity: str
    entity_id: int | None
    before: dict[str, Any] | None = Field(description="the row before (null for an insert)")
    after: dict[str, Any] | None = Field(description="the row after (null for a delete)")


class AuditLog(Body):
    """``GET /api/audit``: a page of the audit log, newest first."""

    numberMatched: int
    numberReturned: int
    entries: list[AuditEntry]
