"""Short-lived signed tile tokens (issue 18 §1): tile URLs carry one of these, never a key.

A tile URL ends up in places nobody controls — proxy and server logs, browser history, a GIS
project file, a Referer header — so TileJSON, the style and the web map put ``?t=<token>`` into
it instead of the long-lived API key. A token:

* stands for the caller's **view**: role, districts or enterprise (so the tile cache, keyed by
  that view, still never mixes callers) and the key id ``kid`` (revocation ends it);
* names the **layers** it may fetch (a TileJSON's, or every layer the role may read);
* lives ``GEORISK_SECURITY_TILE_TOKEN_TTL_S`` (default 10 min): clients ask for a new one
  before it ends (``GET /tiles/token``, or the TileJSON again);
* is accepted on tile requests (``/tiles/{layers}/{z}/{x}/{y}.mvt``) **only** — a leaked one
  reads tiles for minutes and nothing else, and cannot buy itself a successor;
* is an HS256 JWT under a key derived from the token secret for this purpose alone, with its
  own audience, so it is never a bearer or session token, nor they a tile token.

:class:`TileTokenGate` (an ASGI middleware in front of the tile fast path) turns ``?t=`` into
the request's caller, so the route and the fast path check the role's layers and build the
view exactly as for any other credential. Expired, forged or revoked → 401 naming ``t``;
a layer outside the token → 403 naming ``layer``.
"""

from __future__ import annotations

import hashlib
import hmac
import re
import time
from collections import OrderedDict
from collections.abc import Iterable
from dataclasses import dataclass
from functools import lru_cache
from typing import Any, Final
from urllib.parse import unquote, urlencode

import jwt
from starlette.requests import Request
from starlette.types import ASGIApp, Receive, Scope, Send

from geo_api.auth import TOKEN_ISSUER, Authenticator, Caller
from geo_api.errors import FieldError, Forbidden, Unauthorized, problem_response
from geo_api.settings import SecuritySettings
from layers.access import roles as access
from layers.catalog import Catalog
from tiles.engine import UnknownTileLayer, parse_layers

AUDIENCE: Final = "georisk:tiles"
PARAM: Final = "t"
#: Query parameters that are credentials: never copied from a request into a URL we hand out.
CREDENTIAL_PARAMS: Final = frozenset({"key", PARAM})
_DERIVATION: Final = b"georisk tile tokens v1"


@dataclass(frozen=True)
class TileGrant:
    """What a valid token allows: the caller it stands for and the layers it names."""

    caller: Caller
    layers: frozenset[str]
    expires_at: int


def _refused(reason: str) -> Unauthorized:
    return Unauthorized(f"{PARAM}: {reason}", [FieldError(PARAM, reason)])


class TileTokens:
    """Issues and verifies tile tokens; verified ones are kept (bounded LRU) because a map
    sends the same token with every tile."""

    def __init__(self, secret: str, settings: SecuritySettings, auth: Authenticator) -> None:
        self._key = hmac.new(secret.encode(), _DERIVATION, hashlib.sha256).hexdigest()
        self.ttl_s = settings.tile_token_ttl_s
        self.cache_size = settings.tile_token_cache_size
        self.auth = auth
        self._verified: OrderedDict[str, TileGrant] = OrderedDict()

    def issue(
        self,
        caller: Caller,
        layers: Iterable[str],
        now: float | None = None,
        ttl_s: float | None = None,
    ) -> tuple[str, int]:
        """A token for ``caller`` limited to ``layers``, and when it expires (epoch seconds)."""
        issued = int(time.time() if now is None else now)
        expires = issued + int(self.ttl_s if ttl_s is None else ttl_s)
        claims: dict[str, Any] = {
            "iss": TOKEN_ISSUER,
            "aud": AUDIENCE,
            "sub": caller.name,
            "role": caller.role,
            "lyr": sorted(set(layers)),
            "iat": issued,
            "exp": expires,
        }
        if caller.enterprise_id is not None:
            claims["ent"] = caller.enterprise_id
        if caller.districts is not None:
            claims["dst"] = sorted(caller.districts)
        if caller.key_id is not None:
            claims["kid"] = caller.key_id
        return jwt.encode(claims, self._key, algorithm="HS256"), expires

    async def verify(self, token: str) -> TileGrant:
        grant = self._verified.get(token)
        if grant is None:
            grant = self._decode(token)
            if self.cache_size > 0:
                self._verified[token] = grant
                while len(self._verified) > self.cache_size:
                    self._verified.popitem(last=False)
        else:
            self._verified.move_to_end(token)
        if grant.expires_at <= time.time():
            self._verified.pop(token, None)
            raise _refused("expired; fetch the TileJSON or GET /tiles/token again")
        key_id = grant.caller.key_id
        if key_id is not None and not await self.auth.key_id_active(key_id):
            self._verified.pop(token, None)
            raise _refused("its key has been revoked")
        return grant

    def _decode(self, token: str) -> TileGrant:
        try:
            claims = jwt.decode(
                token,
                self._key,
                algorithms=["HS256"],
                audience=AUDIENCE,
                issuer=TOKEN_ISSUER,
                options={"require": ["exp", "iat", "aud", "sub", "role", "lyr"]},
            )
        except jwt.ExpiredSignatureError:
            raise _refused("expired; fetch the TileJSON or GET /tiles/token again") from None
        except jwt.PyJWTError:
            raise _refused("not a tile token signed by this server") from None
        role, enterprise_id = claims["role"], claims.get("ent")
        districts, layers, key_id = claims.get("dst"), claims["lyr"], claims.get("kid")
        if (
            role not in access.ROLES
            or (role == access.ENTERPRISE) != isinstance(enterprise_id, int)
            or not _strings(layers)
            or (districts is not None and not _strings(districts))
            or (key_id is not None and not isinstance(key_id, int))
        ):
            raise _refused("malformed claims")
        caller = Caller(
            name=str(claims["sub"]),
            role=role,
            enterprise_id=enterprise_id,
            districts=frozenset(districts) if districts is not None else None,
            key_id=key_id,
            via="tile_token",
        )
        return TileGrant(caller, frozenset(layers), int(claims["exp"]))


def _strings(value: Any) -> bool:
    return isinstance(value, list) and all(isinstance(v, str) for v in value)


def tile_query(request: Request, caller: Caller, layers: Iterable[str]) -> str:
    """The query string for tile URLs handed to ``caller``: the request's own parameters
    (e.g. a track's ``from``/``to``) without credentials, plus a fresh token — none for the
    anonymous public map, whose URLs need no credential."""
    params = [(k, v) for k, v in request.query_params.multi_items() if k not in CREDENTIAL_PARAMS]
    if caller.via != "anonymous":
        tokens: TileTokens = request.app.state.tile_tokens
        params.append((PARAM, tokens.issue(caller, layers)[0]))
    return urlencode(params)


_TILE_PATH = re.compile(r"^/tiles/([^/]+)/[0-9]+/[0-9]+/[0-9]+\.mvt$")


class TileTokenGate:
    """ASGI middleware: a tile request with ``?t=`` is authenticated by its token alone (it
    wins over a cookie the browser sends along). Anywhere else ``t`` is no credential."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if (
            scope["type"] != "http"
            or b"t=" not in scope["query_string"]
            or not scope["path"].startswith("/tiles/")
        ):
            await self.app(scope, receive, send)
            return
        match = _TILE_PATH.match(scope["path"])
        token = _token(scope["query_string"]) if match else None
        app = scope.get("app")
        if token is None or app is None or not hasattr(app.state, "tile_tokens"):
            await self.app(scope, receive, send)
            return
        assert match is not None
        tokens: TileTokens = app.state.tile_tokens
        try:
            grant = await tokens.verify(token)
            _check_layers(match[1], grant, app.state.catalog)
        except (Unauthorized, Forbidden) as exc:
            await problem_response(exc)(scope, receive, send)
            return
        # current_caller (geo_api/auth.py) returns the request's cached caller: this one.
        scope.setdefault("state", {})["caller"] = grant.caller
        await self.app(scope, receive, send)


_TOKEN_PARAM = re.compile(rb"(?:^|&)t=([^&]*)")


def _token(query: bytes) -> str | None:
    found = _TOKEN_PARAM.search(query)
    return unquote(found[1].decode("latin-1")) if found else None


@lru_cache(maxsize=1024)
def _outside(text: str, granted: frozenset[str], catalog: Catalog) -> tuple[str, ...]:
    """The layers of a tile path that a token does not name (cached: a map asks for the same
    combination with every tile)."""
    try:
        names = [layer.name for layer in parse_layers(text, catalog.tiles)]
    except UnknownTileLayer:
        return ()  # the route answers 404 naming the layer
    return tuple(name for name in names if name not in granted)


def _check_layers(text: str, grant: TileGrant, catalog: Catalog) -> None:
    outside = _outside(text, grant.layers, catalog)
    if outside:
        reason = "not covered by this tile token"
        raise Forbidden(
            f"layer: {', '.join(outside)} {reason}",
            [FieldError("layer", f"{name}: {reason}") for name in outside],
        )
