"""Who is calling (issue 8): API keys, signed tokens, the browser's session cookie.

Credentials, in the order they are looked at:

* ``Authorization: Bearer <credential>`` or ``X-API-Key: <key>`` — a key (``grk_…``) or a
  token signed by this server (HS256 JWT, from ``POST /api/auth/token``);
* the ``georisk_session`` cookie — a signed token set by ``POST /api/auth/session`` for the
  web map (EventSource and tile fetches cannot add headers, cookies they send by themselves);
* ``?key=`` on GET tile, TileJSON and style requests — for GIS clients that can only be given
  a URL (``GEORISK_AUTH_QUERY_KEY``).

``GEORISK_AUTH_METHODS`` chooses keys, tokens or both. Key lookups are cached (bounded LRU,
``GEORISK_AUTH_KEY_CACHE_SIZE`` entries for ``GEORISK_AUTH_KEY_CACHE_TTL_S`` seconds), so a
revoked key stops working in other processes within that time; in this one at once.

What each role may do lives in ``layers/access/roles.py``; routes state their roles with
:func:`allow`, and the row-level checks are :mod:`geo_api.scope`.
"""

from __future__ import annotations

import secrets
import time
from collections import OrderedDict
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path
from typing import Annotated, Any

import jwt
from fastapi import Depends, Request
from fastapi.security import APIKeyHeader, HTTPAuthorizationCredentials, HTTPBearer
from psycopg_pool import AsyncConnectionPool

from geo_api.errors import FieldError, Forbidden, Unauthorized
from geo_api.settings import AuthSettings
from layers.access import roles as access
from layers.access.keys import KeyIdentity, looks_like_key, lookup
from layers.access.roles import TileView

SESSION_COOKIE = "georisk_session"
TOKEN_ISSUER = "georisk"


@dataclass(frozen=True)
class Caller:
    name: str
    role: str
    enterprise_id: int | None = None  # enterprise users see only their own data
    districts: frozenset[str] | None = None  # regulators/officers: None = every district
    key_id: int | None = None
    via: str = "key"  # key, token, session or anonymous

    # Cached: a key's Caller is kept by the KeyCache and asked on every tile request.
    @cached_property
    def tile_view(self) -> TileView:
        return access.tile_view(self.role, self.districts, self.enterprise_id)

    def district_list(self) -> list[str] | None:
        """The districts a scoped caller is limited to (None: not limited by district)."""
        return sorted(self.districts) if self.districts is not None else None

    def public(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "role": self.role,
            "enterprise_id": self.enterprise_id,
            "districts": self.district_list(),
            "via": self.via,
        }


def _caller_of(identity: KeyIdentity, via: str = "key") -> Caller:
    return Caller(
        name=identity.name,
        role=identity.role,
        enterprise_id=identity.enterprise_id,
        districts=identity.districts,
        key_id=identity.id,
        via=via,
    )


class KeyCache:
    """A bounded LRU of key → its caller (or None for unknown keys, so guessing keys cannot
    make every request a database query), each entry good for ``ttl_s``."""

    def __init__(self, size: int, ttl_s: float) -> None:
        self.size = size
        self.ttl_s = ttl_s
        self._entries: OrderedDict[str, tuple[float, Caller | None]] = OrderedDict()

    def get(self, key: str) -> tuple[bool, Caller | None]:
        hit = self._entries.get(key)
        if hit is None or hit[0] < time.monotonic():
            self._entries.pop(key, None)
            return False, None
        self._entries.move_to_end(key)
        return True, hit[1]

    def put(self, key: str, caller: Caller | None) -> None:
        if self.size <= 0:
            return
        self._entries[key] = (time.monotonic() + self.ttl_s, caller)
        self._entries.move_to_end(key)
        while len(self._entries) > self.size:
            self._entries.popitem(last=False)

    def forget_key_id(self, key_id: int) -> None:
        for key, (_, caller) in list(self._entries.items()):
            if caller is not None and caller.key_id == key_id:
                del self._entries[key]


def load_token_secret(settings: AuthSettings, data_dir: Path) -> str:
    """The HMAC secret of tokens and sessions: configured, or made once per data directory
    (0600) so a restart keeps sessions valid. Several processes must share one: set it."""
    if settings.token_secret:
        return settings.token_secret.get_secret_value()
    path = data_dir / "auth_secret"
    if path.exists():
        return path.read_text().strip()
    data_dir.mkdir(parents=True, exist_ok=True)
    secret = secrets.token_urlsafe(48)
    path.write_text(secret)
    path.chmod(0o600)
    return secret


class Authenticator:
    """Turns a request's credentials into a :class:`Caller`; one per app."""

    def __init__(self, settings: AuthSettings, secret: str, pool: Any = None) -> None:
        self.settings = settings
        self.secret = secret
        self.pool: AsyncConnectionPool[Any] | None = pool
        self.keys = KeyCache(settings.key_cache_size, settings.key_cache_ttl_s)
        self.methods = settings.method_set  # once, not per request

    # --- tokens -------------------------------------------------------------------------
    def issue_token(self, caller: Caller, ttl_s: float) -> str:
        now = int(time.time())
        claims: dict[str, Any] = {
            "iss": TOKEN_ISSUER,
            "sub": caller.name,
            "role": caller.role,
            "iat": now,
            "exp": now + int(ttl_s),
        }
        if caller.enterprise_id is not None:
            claims["ent"] = caller.enterprise_id
        if caller.districts is not None:
            claims["dst"] = sorted(caller.districts)
        if caller.key_id is not None:
            claims["kid"] = caller.key_id
        return jwt.encode(claims, self.secret, algorithm="HS256")

    def _token_caller(self, token: str, via: str) -> Caller:
        try:
            claims = jwt.decode(
                token,
                self.secret,
                algorithms=["HS256"],
                issuer=TOKEN_ISSUER,
                options={"require": ["exp", "iat", "sub", "role"]},
            )
        except jwt.ExpiredSignatureError:
            raise _refused("token", "expired; ask for a new one") from None
        except jwt.PyJWTError:
            raise _refused("token", "not a token signed by this server") from None
        role = claims.get("role")
        if role not in access.ROLES:
            raise _refused("token", "names no known role")
        enterprise_id = claims.get("ent")
        if (role == access.ENTERPRISE) != isinstance(enterprise_id, int):
            raise _refused("token", "an enterprise token names one enterprise (ent), others none")
        districts = claims.get("dst")
        if districts is not None and not (
            isinstance(districts, list) and all(isinstance(d, str) for d in districts)
        ):
            raise _refused("token", "dst must be a list of district codes")
        key_id = claims.get("kid")
        return Caller(
            name=str(claims["sub"]),
            role=role,
            enterprise_id=enterprise_id,
            districts=frozenset(districts) if districts is not None else None,
            key_id=key_id if isinstance(key_id, int) else None,
            via=via,
        )

    # --- keys ---------------------------------------------------------------------------
    async def key_caller(self, key: str) -> Caller:
        if "key" not in self.methods:
            raise _refused("credentials", "API keys are switched off (GEORISK_AUTH_METHODS)")
        known, caller = self.keys.get(key)
        if not known:
            if self.pool is None:
                raise _refused("credentials", "keys cannot be checked yet")
            async with self.pool.connection() as conn:
                identity = await lookup(conn, key)
            caller = _caller_of(identity) if identity is not None else None
            self.keys.put(key, caller)
        if caller is None:
            raise _refused("credentials", "unknown, revoked or expired key")
        return caller

    # --- requests -----------------------------------------------------------------------
    async def resolve(self, request: Request) -> Caller:
        credential, via = _credential(request, self.settings.query_key)
        if credential is None:
            anonymous = self.settings.anonymous_role
            if anonymous:
                return Caller(name="anonymous", role=anonymous, via="anonymous")
            raise _refused(
                "credentials",
                "missing: send 'Authorization: Bearer <key or token>' or 'X-API-Key: <key>'",
            )
        if looks_like_key(credential):
            return await self.key_caller(credential)
        if via == "session" or "token" in self.methods:
            return self._token_caller(credential, "session" if via == "session" else "token")
        raise _refused("credentials", "signed tokens are switched off (GEORISK_AUTH_METHODS)")


def _refused(field: str, reason: str) -> Unauthorized:
    return Unauthorized(f"{field}: {reason}", [FieldError(field, reason)])


_READ_ONLY_QUERY_KEY = ("/tiles", "/styles/")


def _credential(request: Request, query_key: bool) -> tuple[str | None, str]:
    header = request.headers.get("authorization")
    if header:
        scheme, _, value = header.partition(" ")
        if scheme.lower() != "bearer" or not value.strip():
            raise _refused("Authorization", "use 'Bearer <key or token>'")
        return value.strip(), "header"
    api_key = request.headers.get("x-api-key")
    if api_key:
        return api_key.strip(), "header"
    cookie = request.cookies.get(SESSION_COOKIE)
    if cookie:
        return cookie, "session"
    if query_key and request.method in ("GET", "HEAD"):
        in_query = request.query_params.get("key")
        if in_query and request.url.path.startswith(_READ_ONLY_QUERY_KEY):
            return in_query, "query"
    return None, ""


# OpenAPI: declared so /docs has an "Authorize" button and clients see how to authenticate;
# auto_error=False because the Authenticator gives the errors (and reads cookies too).
_bearer = HTTPBearer(auto_error=False, description="an API key (grk_…) or a signed token")
_api_key = APIKeyHeader(name="X-API-Key", auto_error=False, description="an API key (grk_…)")


async def current_caller(
    request: Request,
    _b: Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)] = None,
    _k: Annotated[str | None, Depends(_api_key)] = None,
) -> Caller:
    """The caller of this request (401 without valid credentials)."""
    cached = getattr(request.state, "caller", None)
    if isinstance(cached, Caller):
        return cached
    auth: Authenticator = request.app.state.auth
    caller = await auth.resolve(request)
    request.state.caller = caller
    return caller


CurrentCaller = Annotated[Caller, Depends(current_caller)]


def allow(*roles: str) -> Any:
    """A route dependency admitting only ``roles`` (403 naming the role otherwise). Every
    route but the public ones declares one; a test walks the app to make sure."""
    unknown = set(roles) - set(access.ROLES)
    if unknown:
        raise ValueError(f"unknown roles {unknown}")

    async def check(caller: CurrentCaller) -> Caller:
        if caller.role not in roles:
            raise Forbidden(
                f"role: {caller.role} may not do this (allowed: {', '.join(roles)})",
                [FieldError("role", f"{caller.role} is not one of {', '.join(roles)}")],
            )
        return caller

    check.allowed_roles = roles  # type: ignore[attr-defined]
    return Depends(check)


ANYONE = access.ROLES
STAFF = (access.ADMIN, access.REGULATOR)
SITE_READERS = (access.ADMIN, access.REGULATOR, access.ENTERPRISE)
TRANSPORT = (access.ADMIN, access.REGULATOR, access.OFFICER)
