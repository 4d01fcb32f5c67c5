"""Who is calling (issue 8): API keys, signed tokens, the browser's session cookie.

Credentials, in the order they are looked at:

* ``Authorization: Bearer <credential>`` or ``X-API-Key: <key>`` — a key (``grk_…``) or a
  token signed by this server (HS256 JWT, from ``POST /api/auth/token``);
* the ``georisk_session`` cookie — a signed token set by ``POST /api/auth/session`` for the
  web map (EventSource and tile fetches cannot add headers, cookies they send by themselves);
* ``?key=`` on GET tile, TileJSON, style and ``/ogc`` requests — for GIS clients that can
  only be given a URL (``GEORISK_AUTH_QUERY_KEY``).

``GEORISK_AUTH_METHODS`` chooses keys, tokens or both. Key lookups are cached (bounded LRU,
``GEORISK_AUTH_KEY_CACHE_SIZE`` entries for ``GEORISK_AUTH_KEY_CACHE_TTL_S`` ≤ 30 seconds), so a
revoked key stops working in other processes within that time; in this one at once.

Revocation within seconds (issue 18 §4): every token and session names the key it was made
from (``kid``), and each use asks :meth:`Authenticator.key_id_active` — the database, through a
bounded cache of ``GEORISK_AUTH_REVOCATION_TTL_S`` ≤ 30 s — so revoking a key ends its sessions
and tokens in every process within that time. A key's ``name`` is its user: when their last
key is revoked, nothing they were signed in with works anywhere. Tokens without a ``kid`` are
refused (no key can vouch for them).

Unknown keys and failed sign-ins are counted per client address and key prefix by
:mod:`geo_api.throttle`; once locked out, they are answered 429 (valid credentials still pass),
and each lockout is audited once.

What each role may do lives in ``layers/access/roles.py``; routes state their roles with
:func:`allow`, and the row-level checks are :mod:`geo_api.scope`.
"""

from __future__ import annotations

import ipaddress
import logging
import secrets
import time
from collections import OrderedDict
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path
from typing import Annotated, Any, Generic, TypeVar

import jwt
from fastapi import Depends, Request
from fastapi.security import APIKeyHeader, HTTPAuthorizationCredentials, HTTPBearer
from psycopg_pool import AsyncConnectionPool

from geo_api.errors import DomainError, FieldError, Forbidden, TooManyRequests, Unauthorized
from geo_api.settings import AuthSettings, ThrottleSettings
from geo_api.throttle import Lockout, Throttle, retry_after
from layers.access import roles as access
from layers.access.audit import record_lockout
from layers.access.keys import SHOWN_CHARS, KeyIdentity, is_active, looks_like_key, lookup
from layers.access.roles import TileView

SESSION_COOKIE = "georisk_session"
TOKEN_ISSUER = "georisk"
log = logging.getLogger("georisk.auth")
K = TypeVar("K")
V = TypeVar("V")


@dataclass(frozen=True)
class Caller:
    name: str
    role: str
    enterprise_id: int | None = None  # enterprise users see only their own data
    districts: frozenset[str] | None = None  # regulators/officers/ingest: None = every district
    key_id: int | None = None
    via: str = "key"  # key, token, session or anonymous
    carriers: frozenset[str] | None = None  # ingest keys: None = every carrier

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
            "carriers": sorted(self.carriers) if self.carriers is not None else None,
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
        carriers=identity.carriers,
    )


class TtlCache(Generic[K, V]):
    """A bounded LRU whose entries are good for ``ttl_s`` seconds."""

    def __init__(self, size: int, ttl_s: float) -> None:
        self.size = size
        self.ttl_s = ttl_s
        self._entries: OrderedDict[K, tuple[float, V]] = OrderedDict()

    def __len__(self) -> int:
        return len(self._entries)

    def get(self, key: K) -> tuple[bool, V | None]:
        hit = self._entries.get(key)
        if hit is None or hit[0] < time.monotonic():
            self._entries.pop(key, None)
            return False, None
        self._entries.move_to_end(key)
        return True, hit[1]

    def put(self, key: K, value: V) -> None:
        if self.size <= 0:
            return
        self._entries[key] = (time.monotonic() + self.ttl_s, value)
        self._entries.move_to_end(key)
        while len(self._entries) > self.size:
            self._entries.popitem(last=False)

    def pop(self, key: K) -> None:
        self._entries.pop(key, None)

    def values(self) -> list[tuple[K, V]]:
        return [(k, v) for k, (_, v) in self._entries.items()]


class KeyCache:
    """Key → its caller, and the unknown keys (so guessing keys cannot make every request a
    database query). Two bounded LRUs of ``size`` each: a flood of wrong keys never evicts
    the known ones."""

    def __init__(self, size: int, ttl_s: float) -> None:
        self.known: TtlCache[str, Caller] = TtlCache(size, ttl_s)
        self.unknown: TtlCache[str, bool] = TtlCache(size, ttl_s)

    def get(self, key: str) -> tuple[bool, Caller | None]:
        found, caller = self.known.get(key)
        if found:
            return True, caller
        return self.unknown.get(key)[0], None

    def put(self, key: str, caller: Caller | None) -> None:
        if caller is None:
            self.unknown.put(key, True)
        else:
            self.known.put(key, caller)

    def forget_key_id(self, key_id: int) -> None:
        for key, caller in self.known.values():
            if caller.key_id == key_id:
                self.known.pop(key)


class BadKey(Unauthorized):
    """An unknown, revoked or expired key: a failure the throttle counts against the client
    address and ``prefix`` (the key's first characters, as listings show them)."""

    def __init__(self, field: str, reason: str, prefix: str) -> None:
        super().__init__(f"{field}: {reason}", [FieldError(field, reason)])
        self.prefix = prefix


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

    def __init__(
        self,
        settings: AuthSettings,
        secret: str,
        pool: Any = None,
        throttle: ThrottleSettings | None = None,
        proxies: tuple[ipaddress.IPv4Network | ipaddress.IPv6Network, ...] = (),
    ) -> None:
        self.settings = settings
        self.secret = secret
        self.pool: AsyncConnectionPool[Any] | None = pool
        self.keys = KeyCache(settings.key_cache_size, settings.key_cache_ttl_s)
        #: key id → still active? (tokens and sessions ask on every use)
        self.active: TtlCache[int, bool] = TtlCache(
            settings.revocation_cache_size, settings.revocation_ttl_s
        )
        self.throttle = Throttle(throttle or ThrottleSettings(), proxies)
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
        if caller.carriers is not None:
            claims["car"] = sorted(caller.carriers)
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
        carriers = claims.get("car")
        if carriers is not None and not (
            isinstance(carriers, list) and all(isinstance(c, str) for c in carriers)
        ):
            raise _refused("token", "car must be a list of carriers")
        key_id = claims.get("kid")
        if not isinstance(key_id, int) or isinstance(key_id, bool):
            raise _refused("token", "names no key (kid); sign in or ask for a token again")
        return Caller(
            name=str(claims["sub"]),
            role=role,
            enterprise_id=enterprise_id,
            districts=frozenset(districts) if districts is not None else None,
            key_id=key_id,
            via=via,
            carriers=frozenset(carriers) if carriers is not None else None,
        )

    async def _live_token_caller(self, token: str, via: str) -> Caller:
        caller = self._token_caller(token, via)
        assert caller.key_id is not None  # _token_caller refuses tokens without one
        if not await self.key_id_active(caller.key_id):
            field = "session" if via == "session" else "token"
            raise _refused(field, "its key has been revoked or has expired; sign in again")
        return caller

    # --- revocation ---------------------------------------------------------------------
    async def key_id_active(self, key_id: int) -> bool:
        """Is key ``key_id`` still neither revoked nor expired? Read from the database, the
        answer reused for at most ``GEORISK_AUTH_REVOCATION_TTL_S`` (≤ 30 s), so a revocation
        by any process is seen here within that time. Tokens, sessions and tile tokens ask."""
        found, active = self.active.get(key_id)
        if found:
            return bool(active)
        if self.pool is None:
            return False
        async with self.pool.connection() as conn:
            active = await is_active(conn, key_id)
        self.active.put(key_id, active)
        return active

    def revoked(self, key_id: int) -> None:
        """This process revoked ``key_id``: refuse it, its sessions and tokens at once."""
        self.keys.forget_key_id(key_id)
        self.active.put(key_id, False)

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
            raise BadKey("credentials", "unknown, revoked or expired key", key[:SHOWN_CHARS])
        return caller

    # --- throttling ---------------------------------------------------------------------
    async def failed(
        self, request: Request, exc: DomainError, prefix: str | None = None
    ) -> DomainError:
        """Count a failed credential of ``request``; the error to answer: ``exc`` itself, or
        a 429 naming the same field once the address or ``prefix`` is locked out."""
        if not self.throttle.enabled:
            return exc
        wait, lockouts = self.throttle.failed(self.throttle.client_address(request), prefix)
        for lockout in lockouts:
            await self._audit(lockout, request.url.path)
        if wait <= 0:
            return exc
        field = exc.errors[0].field if exc.errors else "credentials"
        seconds = retry_after(wait)
        reason = (
            f"too many failed attempts from this address or with this key; retry in {seconds} s"
        )
        return TooManyRequests(f"{field}: {reason}", [FieldError(field, reason)], seconds)

    async def _audit(self, lockout: Lockout, path: str) -> None:
        actor = f"{lockout.subject}:{lockout.value}"
        log.warning(
            "locked out %s for %.0f s after %d failed credentials within %.0f s (on %s)",
            actor,
            lockout.lockout_s,
            lockout.failures,
            lockout.window_s,
            path,
        )
        if self.pool is None:
            return
        details = {
            "subject": lockout.subject,
            "value": lockout.value,
            "failures": lockout.failures,
            "window_s": lockout.window_s,
            "lockout_s": lockout.lockout_s,
            "path": path,
        }
        try:
            async with self.pool.connection() as conn:
                await record_lockout(conn, actor, details)
        except Exception as exc:  # the lockout holds without its audit row; never a 500
            log.warning("could not audit the lockout of %s: %s", actor, type(exc).__name__)

    async def authenticate(self, request: Request) -> Caller:
        """:meth:`resolve`, with unknown keys counted by the throttle (429 once locked out)."""
        try:
            return await self.resolve(request)
        except BadKey as exc:
            raise await self.failed(request, exc, exc.prefix) from None

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
            return await self._live_token_caller(
                credential, "session" if via == "session" else "token"
            )
        raise _refused("credentials", "signed tokens are switched off (GEORISK_AUTH_METHODS)")


def _refused(field: str, reason: str) -> Unauthorized:
    return Unauthorized(f"{field}: {reason}", [FieldError(field, reason)])


_READ_ONLY_QUERY_KEY = ("/tiles", "/styles/", "/ogc")


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
    """The caller of this request (401 without valid credentials, 429 when locked out).

    Both outcomes are kept on the request, so the tile fast path and the route it falls back
    to resolve (and count a failure) once."""
    cached = getattr(request.state, "caller", None)
    if isinstance(cached, Caller):
        return cached
    refusal = getattr(request.state, "refusal", None)
    if isinstance(refusal, DomainError):
        raise refusal
    auth: Authenticator = request.app.state.auth
    try:
        caller = await auth.authenticate(request)
    except DomainError as exc:
        request.state.refusal = exc
        raise
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


#: Every role that reads the map (all but ingest machines).
ANYONE = access.MAP_ROLES
#: Every role at all: knowing who you are and exchanging a key for a token.
ANY_KEY = access.ROLES
STAFF = (access.ADMIN, access.REGULATOR)
SITE_READERS = (access.ADMIN, access.REGULATOR, access.ENTERPRISE)
TRANSPORT = (access.ADMIN, access.REGULATOR, access.OFFICER)
