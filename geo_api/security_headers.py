"""Browser security headers on every response (issue 18 §1, §2) — one ASGI middleware.

Every response: ``X-Content-Type-Options: nosniff`` (a JSON or tile body is never run as a
script or page), ``Referrer-Policy: no-referrer`` (no URL of ours, token or not, leaves through
``Referer``), ``X-Frame-Options: DENY`` (the older browsers' ``frame-ancestors 'none'``).
Over TLS — ``GEORISK_SECURITY_TLS``, or a request whose scheme is https because uvicorn
believed a trusted proxy's ``X-Forwarded-Proto`` — also ``Strict-Transport-Security`` and the
``Secure`` flag on every cookie set.

HTML gets a Content-Security-Policy, unless its route chose one (the diagram's offline export
and the API docs do):

* the pages (``PAGE_POLICY``): scripts, styles, fonts, fetches and EventSource from this
  origin only; images from here, ``data:`` (the favicon, Leaflet's CSS icons) and the base
  map's origin; no plugins, no ``<base>``, no framing. No ``'unsafe-inline'`` and no
  ``'unsafe-eval'`` at all: the pages' scripts are files, the vendored Leaflet, VectorGrid and
  Geoman never evaluate strings, Leaflet positions with CSSOM (``element.style``, which CSP
  allows), and colours in generated HTML are classes, not ``style=`` attributes — a
  ``style="…"`` in an HTML string would be refused (and show as a console error in the tests);
* Swagger UI and ReDoc (``/docs``, ``/redoc``, vendored and served from here,
  routes/api_docs.py): ``SWAGGER_UI_POLICY`` and ``REDOC_POLICY``, set by the route — scripts
  from this origin only (the start-up scripts are files), no other origin for anything, and
  for ReDoc its two ``<style>`` elements by hash and a ``blob:`` worker for its search.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Final
from urllib.parse import urlsplit

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from geo_api.settings import SecuritySettings

ALWAYS: Final = (
    (b"x-content-type-options", b"nosniff"),
    (b"referrer-policy", b"no-referrer"),
    (b"x-frame-options", b"DENY"),
)
CSP: Final = b"content-security-policy"


def page_policy(img_src: Iterable[str] = (), connect_src: Iterable[str] = ()) -> str:
    img = " ".join(["'self'", "data:", *img_src])
    connect = " ".join(["'self'", *connect_src])
    return (
        "default-src 'self'; script-src 'self'; style-src 'self'; "
        f"img-src {img}; font-src 'self'; connect-src {connect}; "
        "object-src 'none'; base-uri 'none'; form-action 'self'; frame-ancestors 'none'"
    )


def docs_policy(style_src: Iterable[str] = ()) -> str:
    """The API docs' pages (routes/api_docs.py): the vendored Swagger UI or ReDoc, started from a
    script file, fetching /openapi.json (and, from Swagger UI's "Try it out", our API) — nothing
    from anywhere else, and no inline script."""
    styles = " ".join(["'self'", *style_src])
    return (
        f"default-src 'none'; script-src 'self'; style-src {styles}; img-src 'self' data:; "
        "font-src 'self'; connect-src 'self'; "
        "object-src 'none'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'"
    )


#: Swagger UI renders with React, whose ``style`` props are CSSOM (which CSP allows), and brings
#: one stylesheet file: ``style-src 'self'`` is enough.
SWAGGER_UI_POLICY: Final = docs_policy()

#: ReDoc 2 inserts two ``<style>`` elements, allowed here by their SHA-256 instead of
#: ``'unsafe-inline'``: styled-components' sheet, created empty and filled through CSSOM
#: (``insertRule``, which CSP does not police) — the hash of the empty text; and the
#: perfect-scrollbar stylesheet the bundle writes as text (fixed per vendored version: after
#: ``make vendor`` updates ReDoc, tests/test_api_docs_offline.py fails naming the new hash).
#: Its search index runs in a Worker made from a ``blob:`` URL by the bundle itself.
REDOC_STYLE_HASHES: Final = (
    "'sha256-47DEQpj8HBSa+/TImW+5JCeuQeRkm5NMpJWZG3hSuFU='",  # "" (styled-components)
    "'sha256-QMIg+bpjm3JdElJ388KYke01izlUW0UoNOeKjpMxdgc='",  # perfect-scrollbar 1.5 (ReDoc 2.5.4)
)
REDOC_POLICY: Final = docs_policy(REDOC_STYLE_HASHES) + "; worker-src blob:"


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


class SecurityHeaders:
    """The middleware; outermost, so every answer — tiles of the fast path, 413s — has them."""

    def __init__(
        self,
        app: ASGIApp,
        settings: SecuritySettings,
        basemap_url: str | None = None,
    ) -> None:
        self.app = app
        self.always_tls = settings.tls
        img = [s for s in (source_of(basemap_url), *settings.csp_img_src.split()) if s]
        self.page_policy = page_policy(img, settings.csp_connect_src.split()).encode()
        hsts = f"max-age={settings.hsts_max_age_s}"
        if settings.hsts_include_subdomains:
            hsts += "; includeSubDomains"
        self.hsts = (b"strict-transport-security", hsts.encode())

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        tls = self.always_tls or scope.get("scheme") == "https"

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
