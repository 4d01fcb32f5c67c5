"""Browser security headers on every response (issue 18 §1, §2) — one ASGI middleware.

Every response: ``X-Content-Type-Options: nosniff`` (a JSON or tile body is never run as a
script or page), ``Referrer-Policy: no-referrer`` (no URL of ours, token or not, leaves through
``Referer``), ``X-Frame-Options: DENY`` (the older browsers' ``frame-ancestors 'none'``).
Over TLS — ``GEORISK_SECURITY_TLS``, or a request whose scheme is https because uvicorn
believed a trusted proxy's ``X-Forwarded-Proto`` — also ``Strict-Transport-Security`` and the
``Secure`` flag on every cookie set.

HTML gets a Content-Security-Policy, unless its route chose one (the diagram's offline export
does):

* the pages (``PAGE_POLICY``): scripts, styles, fonts, fetches and EventSource from this
  origin only; images from here, ``data:`` (the favicon, Leaflet's CSS icons) and the base
  map's origin; no plugins, no ``<base>``, no framing. No ``'unsafe-inline'`` and no
  ``'unsafe-eval'`` at all: the pages' scripts are files, the vendored Leaflet, VectorGrid and
  Geoman never evaluate strings, Leaflet positions with CSSOM (``element.style``, which CSP
  allows), and colours in generated HTML are classes, not ``style=`` attributes — a
  ``style="…"`` in an HTML string would be refused (and show as a console error in the tests);
* Swagger UI and ReDoc (``/docs``, ``/redoc``, FastAPI's pages, which load from the
  jsDelivr CDN): a policy of their own allowing that CDN, their one inline start-up script by
  its SHA-256 (computed from the page itself, so a FastAPI upgrade cannot silently break it),
  and inline styles, which ReDoc needs; nothing of ours renders user data there.
"""

from __future__ import annotations

import base64
import hashlib
import re
from collections.abc import Iterable
from typing import Any, Final
from urllib.parse import urlsplit

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from geo_api.settings import SecuritySettings

ALWAYS: Final = (
    (b"x-content-type-options", b"nosniff"),
    (b"referrer-policy", b"no-referrer"),
    (b"x-frame-options", b"DENY"),
)
CSP: Final = b"content-security-policy"

DOCS_CDN: Final = "https://cdn.jsdelivr.net"
_INLINE_SCRIPT = re.compile(rb"<script(?![^>]*\bsrc=)[^>]*>(.*?)</script>", re.S | re.I)


def page_policy(img_src: Iterable[str] = (), connect_src: Iterable[str] = ()) -> str:
    img = " ".join(["'self'", "data:", *img_src])
    connect = " ".join(["'self'", *connect_src])
    return (
        "default-src 'self'; script-src 'self'; style-src 'self'; "
        f"img-src {img}; font-src 'self'; connect-src {connect}; "
        "object-src 'none'; base-uri 'none'; form-action 'self'; frame-ancestors 'none'"
    )


def docs_policy(script_hashes: Iterable[str]) -> str:
    scripts = " ".join([DOCS_CDN, *(f"'sha256-{h}'" for h in script_hashes)])
    return (
        f"default-src 'none'; script-src {scripts}; "
        f"style-src {DOCS_CDN} https://fonts.googleapis.com 'unsafe-inline'; "
        "font-src https://fonts.gstatic.com; "
        f"img-src 'self' data: {DOCS_CDN} https://fastapi.tiangolo.com https://cdn.redoc.ly; "
        "connect-src 'self'; worker-src blob:; "
        "object-src 'none'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'"
    )


#: The diagram's offline HTML export: a self-contained file (inline Leaflet, inline script
#: and styles, no network). Opened from here it runs sandboxed at an opaque origin: its
#: script draws the map and can reach nothing — no cookie, no API, no other page.
EXPORT_POLICY: Final = (
    "default-src 'none'; script-src 'unsafe-inline'; style-src 'unsafe-inline'; "
    "img-src data:; sandbox allow-scripts; frame-ancestors 'none'"
)


def source_of(template: str | None) -> str | None:
    """The CSP source of a tile URL template (``https://t{s}.example.cn/…`` →
    ``https://*.example.cn``), or None."""
    if not template:
        return None
    parts = urlsplit(template)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        return None
    labels = parts.netloc.rsplit("@", 1)[-1].split(".")
    if "{" in labels[0]:
        labels[0] = "*"  # a subdomain placeholder: CSP wildcards only the leftmost label
    return f"{parts.scheme}://{'.'.join(labels)}"


def script_hashes(body: bytes) -> list[str]:
    """The SHA-256 (base64) of every inline script of an HTML body, for ``script-src``."""
    return [
        base64.b64encode(hashlib.sha256(m.group(1)).digest()).decode()
        for m in _INLINE_SCRIPT.finditer(body)
    ]


class SecurityHeaders:
    """The middleware; outermost, so every answer — tiles of the fast path, 413s — has them."""

    def __init__(
        self,
        app: ASGIApp,
        settings: SecuritySettings,
        basemap_url: str | None = None,
        docs_paths: Iterable[str] = (),
    ) -> None:
        self.app = app
        self.always_tls = settings.tls
        img = [s for s in (source_of(basemap_url), *settings.csp_img_src.split()) if s]
        self.page_policy = page_policy(img, settings.csp_connect_src.split()).encode()
        hsts = f"max-age={settings.hsts_max_age_s}"
        if settings.hsts_include_subdomains:
            hsts += "; includeSubDomains"
        self.hsts = (b"strict-transport-security", hsts.encode())
        self.docs_paths = frozenset(docs_paths)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        tls = self.always_tls or scope.get("scheme") == "https"
        if scope["path"] in self.docs_paths:
            await self._docs(scope, receive, send, tls)
            return

        async def send_with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                message["headers"] = self._headers(message, tls, self.page_policy)
            await send(message)

        await self.app(scope, receive, send_with_headers)

    def _headers(self, message: Message, tls: bool, policy: bytes) -> list[tuple[bytes, bytes]]:
        headers: list[tuple[bytes, bytes]] = list(message.get("headers", ()))
        html = has_csp = False
        for i, (name, value) in enumerate(headers):
            lowered = name.lower()
            if lowered == b"content-type":
                html = value.startswith(b"text/html")
            elif lowered == CSP:
                has_csp = True
            elif tls and lowered == b"set-cookie" and b"secure" not in value.lower():
                headers[i] = (name, value + b"; Secure")
        headers.extend(ALWAYS)
        if html and not has_csp:
            headers.append((CSP, policy))
        if tls:
            headers.append(self.hsts)
        return headers

    async def _docs(self, scope: Scope, receive: Receive, send: Send, tls: bool) -> None:
        """Swagger UI / ReDoc: the page is held until complete, to hash its inline scripts."""
        start: dict[str, Any] = {}
        chunks: list[bytes] = []

        async def collect(message: Message) -> None:
            if message["type"] == "http.response.start":
                start.update(message)
                return
            if message["type"] != "http.response.body":
                await send(message)
                return
            chunks.append(message.get("body", b""))
            if message.get("more_body", False):
                return
            body = b"".join(chunks)
            policy = docs_policy(script_hashes(body)).encode()
            await send({**start, "headers": self._headers(start, tls, policy)})
            await send({"type": "http.response.body", "body": body})

        await self.app(scope, receive, collect)
