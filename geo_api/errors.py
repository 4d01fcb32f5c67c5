"""The domain's error family (layers/core/errors.py) over HTTP: one ``{exception: status}`` map.

The classes are the domain's own, re-exported here under the names routes already use: a route
raises ``NotFound``, a module of layers/ raises ``AlertNotFound`` (a ``NotFound``), and both
become the same 404 body, so no route translates a domain exception by hand.

Client mistakes become 4xx bodies that name the field and the reason; a database that cannot
be reached (restarting, failing over, pool exhausted) is a 503 with ``Retry-After``; anything
else is logged with its traceback and answered with a generic 500 — never database text.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from typing import Any, Final

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from psycopg import OperationalError
from psycopg_pool import PoolTimeout
from pydantic import BaseModel, ValidationError
from starlette.exceptions import HTTPException as StarletteHTTPException

from geo_api.redaction import redact, redact_value
from geo_api.security_headers import ALWAYS
from layers.core.errors import (
    BadField,
    BadRequest,
    Conflict,
    DomainError,
    FieldError,
    Forbidden,
    Gone,
    HasDependents,
    InvalidField,
    InvalidInput,
    NotFound,
    PayloadTooLarge,
    PreconditionFailed,
    PreconditionRequired,
    TransitionRefused,
    Unauthorized,
)

__all__ = [
    "DB_UNAVAILABLE",
    "ERROR_RESPONSES",
    "MORE_ERRORS",
    "BadField",
    "BadRequest",
    "Conflict",
    "DomainError",
    "ErrorBody",
    "ErrorMap",
    "FieldError",
    "Forbidden",
    "GeoRiskError",
    "Gone",
    "HasDependents",
    "InvalidField",
    "InvalidInput",
    "NotFound",
    "PayloadTooLarge",
    "PreconditionFailed",
    "PreconditionRequired",
    "TooManyRequests",
    "TransitionRefused",
    "Unauthorized",
    "database_unavailable",
    "error_responses",
    "install_error_handlers",
    "invalid_input",
    "problem_response",
    "unavailable_response",
]

log = logging.getLogger("georisk")


#: The family's old base name here; routes and middleware that say it keep working.
GeoRiskError = DomainError


class TooManyRequests(DomainError):
    """Too many failed credentials from one address or with one key prefix (issue 18,
    geo_api/throttle.py): a 429 whose ``Retry-After`` says when to try again. HTTP's, not
    the domain's, so it lives here."""

    def __init__(self, message: str, errors: list[FieldError], retry_after_s: int) -> None:
        super().__init__(message, errors)
        self.retry_after_s = retry_after_s


@dataclass
class ErrorMap:
    """Each class of the domain family → its HTTP status; a subclass takes its nearest
    ancestor's (``AlertNotFound`` → 404, ``AssessmentError`` → 422)."""

    statuses: dict[type[DomainError], int] = field(
        default_factory=lambda: {
            NotFound: 404,
            Unauthorized: 401,
            Forbidden: 403,
            InvalidInput: 422,
            BadRequest: 400,
            Conflict: 409,
            TransitionRefused: 409,
            PayloadTooLarge: 413,
            Gone: 410,
            PreconditionFailed: 412,
            PreconditionRequired: 428,
            TooManyRequests: 429,
        }
    )

    def status_for(self, exc: DomainError) -> int:
        for klass in type(exc).__mro__:
            if klass in self.statuses:
                return self.statuses[klass]
        return 400


def invalid_input(exc: ValidationError, root: str = "body") -> InvalidInput:
    """A pydantic refusal of a parsed body as the 422 naming each field (``root`` when the
    error is about the whole object)."""
    errors = [
        FieldError(".".join(str(p) for p in e["loc"]) or root, e["msg"]) for e in exc.errors()
    ]
    return InvalidInput(f"{errors[0].field}: {errors[0].reason}", errors)


#: The body's ``detail`` while the database cannot be reached.
DB_UNAVAILABLE = "database unavailable; retry shortly"


def database_unavailable(exc: BaseException) -> bool:
    """Is ``exc`` the database being out of reach, not a problem of this one query?

    No SQLSTATE: the client lost or could not open the connection. Class 08: connection
    exception; 57P: the server is shutting down or starting up; 53: too many connections."""
    if isinstance(exc, PoolTimeout):
        return True
    if not isinstance(exc, OperationalError):
        return False
    state = exc.sqlstate
    return state is None or state.startswith(("08", "57P", "53"))


#: Transient contention, not a client mistake and not an outage: the statement ran out of time
#: (57014, statement_timeout), a lock was not granted in time (55P03), or the transaction lost
#: a serialization race or a deadlock (40001, 40P01). The transaction rolled back, nothing was
#: written: the client retries (503 with Retry-After), as for an outage.
_BUSY_STATES: Final = ("57014", "55P03", "40001", "40P01")


def database_busy(exc: BaseException) -> bool:
    """Whether ``exc`` is the database too busy to finish this request in time."""
    return isinstance(exc, OperationalError) and exc.sqlstate in _BUSY_STATES


class ErrorItem(BaseModel):
    field: str
    reason: str
    index: int | None = None


class ErrorBody(BaseModel):
    """Every 4xx/5xx answer: what went wrong, then each field and why."""

    detail: str
    errors: list[ErrorItem]


def _documented(description: str) -> dict[str, Any]:
    return {"model": ErrorBody, "description": description}


#: The error answers every protected route may give, for the OpenAPI document.
ERROR_RESPONSES: dict[int | str, dict[str, Any]] = {
    400: _documented("malformed query or body (the field is named)"),
    401: _documented("no valid credentials (key, token or session)"),
    403: _documented("the caller's role or scope does not cover this"),
    404: _documented("no such object"),
    413: _documented("body larger than GEORISK_MAX_BODY_BYTES"),
    422: _documented("impossible content (the field and the reason are named)"),
    429: _documented(
        "too many failed keys or sign-ins from this address or with this key; "
        "Retry-After says when to try again (valid credentials are never refused)"
    ),
    503: _documented("database unavailable; retry shortly"),
}

#: Answers only some routes give, named in their decorators (``responses=``).
MORE_ERRORS: dict[int | str, dict[str, Any]] = {
    409: _documented("conflicts with what is stored (a duplicate key, a refused transition)"),
    416: _documented("a Range past the end of the file"),
}


def error_responses(*statuses: int) -> dict[int | str, dict[str, Any]]:
    """The documented error answers ``statuses`` (for a route's ``responses=``): public routes
    name theirs, protected routes add what ERROR_RESPONSES lacks (409, 416)."""
    known = {**ERROR_RESPONSES, **MORE_ERRORS}
    return {status: known[status] for status in statuses}


def _body(message: str, errors: list[dict[str, Any]]) -> dict[str, Any]:
    # A body may quote what the client sent (a field name, a value): never a credential back.
    return {
        "detail": redact(message),
        "errors": [{k: redact_value(v) for k, v in e.items()} for e in errors],
    }


def unavailable_response() -> JSONResponse:
    """The 503 of a database outage (also sent by the tile fast path, outside the routes)."""
    return JSONResponse(
        _body(DB_UNAVAILABLE, [{"field": "database", "reason": "unavailable"}]),
        status_code=503,
        headers={"Retry-After": "2"},
    )


def busy_response() -> JSONResponse:
    """The 503 of a request the database could not finish in time (nothing was written)."""
    return JSONResponse(
        _body(
            "the database is busy: nothing was changed; retry shortly",
            [{"field": "database", "reason": "busy"}],
        ),
        status_code=503,
        headers={"Retry-After": "2"},
    )


_MAPPING = ErrorMap()
#: What a framework refusal is about: 400 is a body FastAPI could not parse as JSON.
_HTTP_FIELDS = {400: "body", 404: "path", 405: "method"}


def problem_response(exc: DomainError) -> JSONResponse:
    """The answer to a domain error — from a route, or from a middleware outside them."""
    # RFC 9110: a 401 says how to authenticate; RFC 6585: a 429 may say when to retry.
    headers: dict[str, str] | None = None
    if isinstance(exc, Unauthorized):
        headers = {"WWW-Authenticate": 'Bearer realm="georisk"'}
    elif isinstance(exc, TooManyRequests):
        headers = {"Retry-After": str(exc.retry_after_s)}
    elif isinstance(exc, PreconditionFailed):
        headers = {"ETag": exc.etag}  # RFC 9110 §13.1.1: the version the client must start from
    body = _body(exc.message, [e.as_dict() for e in exc.errors])
    if isinstance(exc, HasDependents):
        body["dependents"] = exc.dependents
    return JSONResponse(body, status_code=_MAPPING.status_for(exc), headers=headers)


def install_error_handlers(app: FastAPI) -> None:
    async def on_domain(_: Request, exc: Exception) -> JSONResponse:
        assert isinstance(exc, DomainError)
        return problem_response(exc)

    async def on_validation(_: Request, exc: Exception) -> JSONResponse:
        assert isinstance(exc, RequestValidationError)
        errors = [
            {"field": ".".join(str(p) for p in e["loc"]), "reason": e["msg"]} for e in exc.errors()
        ]
        first = errors[0] if errors else {"field": "request", "reason": "invalid"}
        return JSONResponse(_body(f"{first['field']}: {first['reason']}", errors), status_code=422)

    async def on_http(_: Request, exc: Exception) -> JSONResponse:
        # Starlette's and FastAPI's own refusals (a body that is not JSON, an unknown path, a
        # method the path lacks) in the house problem body like every other error.
        assert isinstance(exc, StarletteHTTPException)
        field = _HTTP_FIELDS.get(exc.status_code, "request")
        reason = str(exc.detail)
        return JSONResponse(
            _body(f"{field}: {reason}", [{"field": field, "reason": reason}]),
            status_code=exc.status_code,
            headers=exc.headers,
        )

    async def on_database_down(request: Request, exc: Exception) -> JSONResponse:
        # Lost connection, refused connection, server shutting down, no pooled connection in
        # time: transient, the client should retry. One log line, no traceback, no db text.
        # A statement timeout, a lock not granted in time, a lost serialization race: the
        # database is busy, not down — still transient, still a 503 (nothing was written).
        if database_busy(exc):
            log.warning(
                "database busy on %s %s: %s (%s)",
                request.method,
                request.url.path,
                type(exc).__name__,
                getattr(exc, "sqlstate", None),
            )
            return busy_response()
        if not database_unavailable(exc):
            return await on_unexpected(request, exc)
        log.warning(
            "database unavailable on %s %s: %s",
            request.method,
            request.url.path,
            type(exc).__name__,
        )
        return unavailable_response()

    async def on_unexpected(request: Request, exc: Exception) -> JSONResponse:
        # Raised outside the routes (a middleware such as the tile fast path), a database
        # outage only reaches this last-resort handler: still a 503, not a 500. Starlette
        # answers it from outside every middleware, so the headers SecurityHeaders would add
        # are set here.
        if database_unavailable(exc) or database_busy(exc):
            response = await on_database_down(request, exc)
        else:
            log.exception(
                "unhandled error on %s %s", request.method, request.url.path, exc_info=exc
            )
            response = JSONResponse(_body("internal error; it has been logged", []), 500)
        for name, value in ALWAYS:
            response.headers[name.decode()] = value.decode()
        return response

    app.add_exception_handler(DomainError, on_domain)
    app.add_exception_handler(RequestValidationError, on_validation)
    app.add_exception_handler(StarletteHTTPException, on_http)
    # PoolTimeout is an OperationalError subclass; both are named for the reader.
    app.add_exception_handler(OperationalError, on_database_down)
    app.add_exception_handler(PoolTimeout, on_database_down)
    app.add_exception_handler(Exception, on_unexpected)
