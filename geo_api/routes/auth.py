"""Sign-in, tokens and keys (issue 8).

* ``GET /api/auth/whoami`` — the caller as the server sees them;
* ``POST /api/auth/token`` — a short-lived signed token for the caller (exchange a key once,
  then send the token; nothing is looked up per request);
* ``GET /api/auth/session`` — who is signed in, ``{"signed_in": false}`` when nobody is (200
  either way: the page asks before it has anyone to ask as);
* ``POST /api/auth/session`` ``{"key"}`` / ``DELETE /api/auth/session`` — the web map's
  sign-in: an HttpOnly, SameSite=Strict cookie holding a signed token;
* ``POST/GET /api/keys``, ``DELETE /api/keys/{id}`` — administrators manage keys (the key
  itself is shown once, when it is made).

Failed sign-ins count against the client address (and the key's prefix) like unknown keys
anywhere (geo_api/throttle.py): once locked out, the answer is 429 with Retry-After.
"""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Path, Request
from fastapi.responses import JSONResponse, Response
from pydantic import BaseModel, Field

from geo_api.auth import (
    ANY_KEY,
    SESSION_COOKIE,
    Authenticator,
    BadKey,
    CurrentCaller,
    allow,
    current_caller,
)
from geo_api.body import Moment, Text, json_response
from geo_api.db import DbConn
from geo_api.errors import (
    FieldError,
    Forbidden,
    InvalidInput,
    NotFound,
    Unauthorized,
    error_responses,
)
from geo_api.models.access import BearerToken, CallerInfo, KeyList, NewApiKey, SessionState
from layers.access import keys as api_keys
from layers.access import roles as access
from layers.core.vocab import ROLES

router = APIRouter(tags=["auth"])
public_router = APIRouter(tags=["auth"])  # reachable without credentials
KeyId = Annotated[int, Path(ge=1, le=2**31 - 1)]


def _auth(request: Request) -> Authenticator:
    auth: Authenticator = request.app.state.auth
    return auth


@router.get("/api/auth/whoami", response_model=CallerInfo, dependencies=[allow(*ANY_KEY)])
async def whoami(caller: CurrentCaller) -> JSONResponse:
    """Name, role, enterprise and districts of the caller, and how they signed in."""
    return JSONResponse(caller.public())


@router.post("/api/auth/token", response_model=BearerToken, dependencies=[allow(*ANY_KEY)])
async def token(request: Request, caller: CurrentCaller) -> JSONResponse:
    """A signed bearer token standing for the caller, valid ``GEORISK_AUTH_TOKEN_TTL_S``; it
    names the caller's key (``kid``) and ends when that key is revoked."""
    auth = _auth(request)
    if "token" not in auth.methods:
        raise Forbidden(
            "token: signed tokens are switched off (GEORISK_AUTH_METHODS)",
            [FieldError("token", "switched off")],
        )
    if caller.key_id is None:  # anonymous: no key could ever revoke it
        reason = "only a caller with a key can have a token"
        raise Forbidden(f"token: {reason}", [FieldError("token", reason)])
    ttl = auth.settings.token_ttl_s
    return JSONResponse(
        {"access_token": auth.issue_token(caller, ttl), "token_type": "Bearer", "expires_in": ttl}
    )


class SignIn(BaseModel):
    key: str = Field(min_length=1, max_length=200, description="an API key (grk_…)")


@public_router.get(
    "/api/auth/session", response_model=SessionState, responses=error_responses(429, 503)
)
async def session_state(request: Request) -> JSONResponse:
    """The caller if the request carries valid credentials, else ``{"signed_in": false}``."""
    try:
        caller = await current_caller(request)
    except Unauthorized as exc:
        return JSONResponse({"signed_in": False, "reason": exc.message})
    return JSONResponse({"signed_in": True, **caller.public()})


@public_router.post(
    "/api/auth/session",
    response_model=CallerInfo,
    responses=error_responses(400, 401, 403, 413, 422, 429, 503),
)
async def sign_in(request: Request, body: SignIn) -> JSONResponse:
    """Check a key and set the session cookie the web map uses from then on (429 after too
    many failed sign-ins from one address; ingest keys are machines' and cannot sign in)."""
    auth = _auth(request)
    key = body.key.strip()
    if not api_keys.looks_like_key(key):
        not_key = InvalidInput("key: not an API key (grk_…)", [FieldError("key", "not an API key")])
        raise await auth.failed(request, not_key)
    try:
        caller = await auth.key_caller(key)
    except BadKey as exc:  # named after the body's field
        refused = BadKey("key", exc.errors[0].reason, exc.prefix)
        raise await auth.failed(request, refused, exc.prefix) from None
    if caller.role not in access.MAP_ROLES:
        reason = f"{caller.role} keys are for machines and cannot sign in to the map"
        raise Forbidden(f"role: {reason}", [FieldError("role", reason)])
    ttl = auth.settings.session_ttl_s
    response = JSONResponse({**caller.public(), "via": "session"})
    response.set_cookie(
        SESSION_COOKIE,
        auth.issue_token(caller, ttl),
        max_age=ttl,
        httponly=True,
        samesite="strict",  # never sent by another site's page: no cross-site request forgery
        secure=auth.settings.cookie_secure,
        path="/",
    )
    return response


@public_router.delete("/api/auth/session", status_code=204)
async def sign_out() -> Response:
    response = Response(status_code=204)
    response.delete_cookie(SESSION_COOKIE, path="/")
    return response


class NewKey(BaseModel):
    name: Text = Field(
        min_length=1, max_length=200, description="whose key (its user), e.g. a person"
    )
    role: Text = Field(description=f"one of {', '.join(ROLES)}")
    enterprise_id: int | None = Field(default=None, ge=1, le=2**31 - 1)
    districts: list[Annotated[Text, Field(min_length=1, max_length=50)]] | None = Field(
        default=None, max_length=100, description="regulators, officers, ingest; unset = all"
    )
    carriers: list[Annotated[Text, Field(min_length=1, max_length=200)]] | None = Field(
        default=None,
        max_length=100,
        description="ingest keys: the carriers (vehicles.carrier) whose tankers it may post",
    )
    expires_at: Moment | None = None


@router.post("/api/keys", status_code=201, response_model=NewApiKey, dependencies=[allow("admin")])
async def create_key(conn: DbConn, body: NewKey) -> JSONResponse:
    """Make a key; the answer holds the key, shown only here."""
    # KeyProblem (an unknown district, a missing enterprise) is an InvalidInput: a 422.
    row, key = await api_keys.create_key(
        conn,
        body.name,
        body.role,
        body.enterprise_id,
        body.districts,
        body.expires_at,
        body.carriers,
    )
    return json_response({**row, "key": key}, status_code=201)


@router.get("/api/keys", response_model=KeyList, dependencies=[allow("admin")])
async def list_keys(conn: DbConn) -> JSONResponse:
    """Every key with its prefix, role and state; never the key."""
    return json_response({"keys": await api_keys.list_keys(conn)})


@router.delete("/api/keys/{key_id}", status_code=204, dependencies=[allow("admin")])
async def revoke_key(request: Request, conn: DbConn, key_id: KeyId) -> Response:
    """Revoke a key, its sessions and tokens: refused at once here, in other processes within
    GEORISK_AUTH_KEY_CACHE_TTL_S (the key) and GEORISK_AUTH_REVOCATION_TTL_S (sessions and
    tokens), both at most 30 s."""
    if not await api_keys.revoke(conn, key_id):
        raise NotFound(f"no active key {key_id}", [FieldError("key_id", "no such active key")])
    _auth(request).revoked(key_id)
    return Response(status_code=204)
