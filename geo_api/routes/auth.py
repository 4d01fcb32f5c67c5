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
"""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Path, Request
from fastapi.responses import JSONResponse, Response
from pydantic import BaseModel, Field

from geo_api.auth import (
    ANYONE,
    SESSION_COOKIE,
    Authenticator,
    CurrentCaller,
    allow,
    current_caller,
)
from geo_api.body import Moment, Text, json_response
from geo_api.db import DbConn
from geo_api.errors import FieldError, Forbidden, InvalidInput, NotFound, Unauthorized
from geo_api.models.access import KeyList, NewApiKey
from layers.access import keys as api_keys
from layers.core.vocab import ROLES

router = APIRouter(tags=["auth"])
public_router = APIRouter(tags=["auth"])  # reachable without credentials
KeyId = Annotated[int, Path(ge=1, le=2**31 - 1)]


def _auth(request: Request) -> Authenticator:
    auth: Authenticator = request.app.state.auth
    return auth


@router.get("/api/auth/whoami", dependencies=[allow(*ANYONE)])
async def whoami(caller: CurrentCaller) -> JSONResponse:
    """Name, role, enterprise and districts of the caller, and how they signed in."""
    return JSONResponse(caller.public())


@router.post("/api/auth/token", dependencies=[allow(*ANYONE)])
async def token(request: Request, caller: CurrentCaller) -> JSONResponse:
    """A signed bearer token standing for the caller, valid ``GEORISK_AUTH_TOKEN_TTL_S``."""
    auth = _auth(request)
    if "token" not in auth.methods:
        raise Forbidden(
            "token: signed tokens are switched off (GEORISK_AUTH_METHODS)",
            [FieldError("token", "switched off")],
        )
    ttl = auth.settings.token_ttl_s
    return JSONResponse(
        {"access_token": auth.issue_token(caller, ttl), "token_type": "Bearer", "expires_in": ttl}
    )


class SignIn(BaseModel):
    key: str = Field(min_length=1, max_length=200, description="an API key (grk_…)")


@public_router.get("/api/auth/session")
async def session_state(request: Request) -> JSONResponse:
    """The caller if the request carries valid credentials, else ``{"signed_in": false}``."""
    try:
        caller = await current_caller(request)
    except Unauthorized as exc:
        return JSONResponse({"signed_in": False, "reason": exc.message})
    return JSONResponse({"signed_in": True, **caller.public()})


@public_router.post("/api/auth/session")
async def sign_in(request: Request, body: SignIn) -> JSONResponse:
    """Check a key and set the session cookie the web map uses from then on."""
    auth = _auth(request)
    if not api_keys.looks_like_key(body.key.strip()):
        raise InvalidInput("key: not an API key (grk_…)", [FieldError("key", "not an API key")])
    caller = await auth.key_caller(body.key.strip())
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
    name: Text = Field(min_length=1, max_length=200, description="whose key, e.g. a person")
    role: Text = Field(description=f"one of {', '.join(ROLES)}")
    enterprise_id: int | None = Field(default=None, ge=1, le=2**31 - 1)
    districts: list[Annotated[Text, Field(min_length=1, max_length=50)]] | None = Field(
        default=None, max_length=100, description="regulators and officers; unset = all"
    )
    expires_at: Moment | None = None


@router.post("/api/keys", status_code=201, response_model=NewApiKey, dependencies=[allow("admin")])
async def create_key(conn: DbConn, body: NewKey) -> JSONResponse:
    """Make a key; the answer holds the key, shown only here."""
    # KeyProblem (an unknown district, a missing enterprise) is an InvalidInput: a 422.
    row, key = await api_keys.create_key(
        conn, body.name, body.role, body.enterprise_id, body.districts, body.expires_at
    )
    return json_response({**row, "key": key}, status_code=201)


@router.get("/api/keys", response_model=KeyList, dependencies=[allow("admin")])
async def list_keys(conn: DbConn) -> JSONResponse:
    """Every key with its prefix, role and state; never the key."""
    return json_response({"keys": await api_keys.list_keys(conn)})


@router.delete("/api/keys/{key_id}", status_code=204, dependencies=[allow("admin")])
async def revoke_key(request: Request, conn: DbConn, key_id: KeyId) -> Response:
    """Revoke a key: refused at once here, elsewhere within GEORISK_AUTH_KEY_CACHE_TTL_S."""
    if not await api_keys.revoke(conn, key_id):
        raise NotFound(f"no active key {key_id}", [FieldError("key_id", "no such active key")])
    _auth(request).keys.forget_key_id(key_id)
    return Response(status_code=204)
