"""The one family of errors raised on purpose, and the field-error record they carry.

Why here, in the domain: layers/ knows *what* is wrong (no such alert, a step out of order,
a value off the scale, a field to name); only geo_api knows how that is said over HTTP. So a
module here raises one of these classes and geo_api/errors.py maps each class to a status once
(``{exception: status}``): no route translates a domain exception by hand, and the CLI catches
the very same classes. Nothing here imports FastAPI.

Each error has a ``message`` (the body's ``detail``) and ``errors``, the fields at fault and why
(client mistakes name the field and the reason; never database text).

Named subclasses elsewhere (``AlertNotFound``, ``AssessmentError``, ``KeyProblem``…) stay where
their callers catch them; those that were ``ValueError`` or ``LookupError`` before keep that as
a second base, so an ``except ValueError`` written against them still holds.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any


@dataclass
class FieldError:
    """One field at fault and why; ``index`` is the feature / row number in a batch (0-based)."""

    field: str
    reason: str
    index: int | None = None

    def as_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {"field": self.field, "reason": self.reason}
        if self.index is not None:
            out["index"] = self.index
        return out


class DomainError(Exception):
    """Base of every error raised on purpose: a message and the fields at fault."""

    def __init__(self, message: str, errors: list[FieldError] | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.errors: list[FieldError] = errors or []


class NotFound(DomainError):
    """No such object (an unknown id, layer or key)."""


class InvalidInput(DomainError):
    """The request is well formed but its content is impossible (lat 95, self-crossing ring)."""


class InvalidField(InvalidInput):
    """The common case of ``InvalidInput``: one named field and the reason, read as
    ``"field: reason"``. ``field`` and ``reason`` stay attributes for callers that test them."""

    def __init__(self, field: str, reason: str) -> None:
        super().__init__(f"{field}: {reason}", [FieldError(field, reason)])
        self.field = field
        self.reason = reason


class BadRequest(DomainError):
    """A malformed query or body (bad bbox, unparsable JSON)."""


class BadField(BadRequest):
    """A malformed parameter or body member, named: ``"field: reason"`` (a 400)."""

    def __init__(self, field: str, reason: str) -> None:
        super().__init__(f"{field}: {reason}", [FieldError(field, reason)])
        self.field = field
        self.reason = reason


class Unauthorized(DomainError):
    """No credentials, or credentials that are unknown, revoked, expired or badly signed."""


class Forbidden(DomainError):
    """The caller is known but may not do this (another enterprise's data, a writer role)."""


class Conflict(DomainError):
    """The request clashes with what is stored: a duplicate (credit code, plate)."""


class TransitionRefused(Conflict):
    """A lifecycle step the object's current state does not allow (an alert acknowledged
    twice, an alarm disposed before it is acknowledged, a hidden danger skipping rectifying).

    The one name for "transition refused" in every lifecycle (alerts, alarms, hidden dangers).
    ``current`` is the state found (when it has a name), ``wanted`` the step or state asked for.
    """

    def __init__(
        self,
        message: str,
        errors: list[FieldError] | None = None,
        *,
        current: str | None = None,
        wanted: str | None = None,
    ) -> None:
        super().__init__(message, errors)
        self.current = current
        self.wanted = wanted


class PayloadTooLarge(DomainError):
    """A body or batch over the configured limit."""


class Gone(DomainError):
    """The object existed and was retired: kept for history, no longer served or edited."""


class PreconditionFailed(DomainError):
    """``If-Match`` names a version that is not the current one (a lost update refused);
    ``etag`` is the current one, for the answer's ``ETag`` header."""

    def __init__(self, message: str, errors: list[FieldError], etag: str) -> None:
        super().__init__(message, errors)
        self.etag = etag


class PreconditionRequired(DomainError):
    """An edit or delete without ``If-Match``: the client must say which version it saw."""


class HasDependents(Conflict):
    """A delete refused because live objects depend on the row; ``dependents`` lists them
    (``{"kind", "count", "ids"}``, ids bounded) for the answer's body."""

    def __init__(
        self, message: str, errors: list[FieldError], dependents: list[dict[str, Any]]
    ) -> None:
        super().__init__(message, errors)
        self.dependents = dependents


__all__ = [
    "BadField",
    "BadRequest",
    "Conflict",
    "DomainError",
    "FieldError",
    "Forbidden",
    "Gone",
    "HasDependents",
    "InvalidField",
    "InvalidInput",
    "NotFound",
    "PayloadTooLarge",
    "PreconditionFailed",
    "PreconditionRequired",
    "TransitionRefused",
    "Unauthorized",
]
