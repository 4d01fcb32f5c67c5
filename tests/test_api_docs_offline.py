"""The API docs work offline (issue 16 §4): /docs (Swagger UI) and /redoc (ReDoc) load only from
this server — vendored bundles, start-up scripts as files — and render every operation of
/openapi.json in Debian's chromium with every request to anywhere else aborted, under their
Content-Security-Policy with not one violation and not one console error."""

from __future__ import annotations

import re
from collections.abc import Iterator
from html.parser import HTMLParser
from typing import Any

import httpx
import pytest

from geo_api.routes.pages import WEB_DIR
from tests.conftest import LiveServer
from tests.test_headers_csp import RECORD_VIOLATIONS
from tests.test_web import CHROMIUM, Watched
from tests.test_web import browser as browser  # the module-scoped chromium fixture

browser_only = pytest.mark.skipif(
    not CHROMIUM.exists(), reason="needs Debian's chromium (tests/ensure_browser.py)"
)

METHODS = ("get", "put", "post", "delete", "patch", "head", "options")
MVT = "/tiles/{layers}/{z}/{x}/{y}.mvt"


class _References(HTMLParser):
    """Every ``src`` and ``href`` of a page."""

    def __init__(self) -> None:
        super().__init__()
        self.urls: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.urls += [v for k, v in attrs if k in ("src", "href") and v]


def _operations(base: str) -> dict[str, tuple[str, str]]:
    """operationId → (METHOD, path) for every operation in /openapi.json."""
    spec = httpx.get(base + "/openapi.json", timeout=30).json()
    return {
        op["operationId"]: (method.upper(), path)
        for path, item in spec["paths"].items()
        for method, op in item.items()
        if method in METHODS
    }


# -- the pages as served -------------------------------------------------------------------------
@pytest.mark.parametrize("path", ["/docs", "/redoc"])
def test_the_pages_reference_only_this_server(live_server: LiveServer, path: str) -> None:
    """Public like /openapi.json; no URL in them points anywhere else, and everything they
    reference is served here."""
    with httpx.Client(base_url=live_server.base_url, timeout=30) as http:  # no credentials
        page = http.get(path)
        assert page.status_code == 200
        assert page.headers["content-type"].startswith("text/html")
        assert re.findall(r"(?:https?:)?//[\w.-]+", page.text) == []  # no other host at all
        assert "<script>" not in page.text  # no inline script: the CSP needs none
        refs = _References()
        refs.feed(page.text)
        files = [u for u in refs.urls if not u.startswith("data:")]
        assert any(u.startswith("/static/vendor/") for u in files)
        assert 'data-openapi="/openapi.json"' in page.text
        for url in files:
            r = http.get(url)
            assert r.status_code == 200 and len(r.content) > 100, url


def test_the_vendored_copies_carry_their_licences_and_no_cdn() -> None:
    vendor = WEB_DIR / "vendor"
    for name in (
        "swagger-ui/swagger-ui-bundle.js",
        "swagger-ui/swagger-ui.css",
        "swagger-ui/LICENSE",
        "swagger-ui/NOTICE",
        "redoc/redoc.standalone.js",
        "redoc/LICENSE",
    ):
        assert (vendor / name).stat().st_size > 0, name
    assert "Apache License" in (vendor / "swagger-ui/LICENSE").read_text()
    assert "MIT License" in (vendor / "redoc/LICENSE").read_text()
    # ReDoc's sidebar logo came from Redocly's CDN; `make vendor` replaces it (Makefile).
    assert "cdn.redoc.ly" not in (vendor / "redoc/redoc.standalone.js").read_text()


# -- the pages in a real browser, cut off from everything but the server -------------------------
class Offline(Watched):
    """A page (no sign-in: the docs are public) whose requests to anywhere but the server are
    aborted and recorded, with CSP violations and console errors recorded too."""

    def __init__(self, browser: Any, base: str) -> None:
        super().__init__(browser, base)
        self.aborted: list[str] = []
        self.page.add_init_script(RECORD_VIOLATIONS)

        def route(r: Any) -> None:
            if r.request.url.startswith(base + "/"):
                r.continue_()
            else:
                self.aborted.append(r.request.url)
                r.abort()

        self.page.route("**/*", route)

    def assert_clean(self) -> None:
        """Nothing left the server, nothing was refused by the CSP, nothing went wrong."""
        violations: list[str] = self.page.evaluate("window.__csp")
        assert violations == []
        assert self.aborted == [] and self.foreign == []
        assert self.errors == []


@pytest.fixture()
def offline(browser: Any, live_server: LiveServer) -> Iterator[Offline]:
    w = Offline(browser, live_server.base_url)
    yield w
    w.context.close()


@browser_only
def test_swagger_ui_lists_every_operation_offline(
    offline: Offline, live_server: LiveServer
) -> None:
    expected = _operations(live_server.base_url)
    page = offline.page
    response = page.goto(live_server.base_url + "/docs")
    assert response is not None
    assert "script-src 'self';" in response.headers["content-security-policy"]
    page.wait_for_selector(".opblock", timeout=20_000)
    # A long document is rendered lazily, near the viewport: scroll through it and collect
    # every operation block that appears on the way.
    seen: set[tuple[str, str]] = set()
    last = -1.0
    for _ in range(400):
        blocks = page.eval_on_selector_all(
            ".opblock",
            "bs => bs.map(b => [b.querySelector('.opblock-summary-method').textContent,"
            " b.querySelector('.opblock-summary-path').getAttribute('data-path')])",
        )
        seen.update((m, path) for m, path in blocks)
        y = page.evaluate("() => { window.scrollBy(0, 400); return window.scrollY; }")
        if y == last:
            break
        last = y
        page.wait_for_timeout(50)
    shown = sorted(seen)
    page.evaluate("() => window.scrollTo(0, 0)")
    assert sorted(map(tuple, shown)) == sorted(expected.values())
    assert ("GET", "/api/risk-units") in expected.values()
    assert ("GET", MVT) in expected.values()
    # Its stylesheet applies (style-src 'self'): a GET is Swagger UI's blue.
    colour = page.eval_on_selector(
        ".opblock-get .opblock-summary-method", "e => getComputedStyle(e).backgroundColor"
    )
    assert colour == "rgb(97, 175, 254)"
    # "Try it out" calls the API from the page (connect-src 'self'): /healthz answers.
    block = page.locator("#operations-health-healthz_healthz_get")
    block.locator(".opblock-summary").click()
    block.locator("button.try-out__btn").click()
    block.locator("button.execute").click()
    body = block.locator(".live-responses-table .response-col_description pre")
    body.first.wait_for(timeout=20_000)
    assert '"postgis"' in body.first.inner_text()
    status = block.locator(".live-responses-table tr.response .response-col_status")
    assert status.first.inner_text().strip() == "200"
    page.wait_for_timeout(300)
    offline.assert_clean()


@browser_only
def test_redoc_shows_every_operation_offline(offline: Offline, live_server: LiveServer) -> None:
    expected = _operations(live_server.base_url)
    page = offline.page
    response = page.goto(live_server.base_url + "/redoc")
    assert response is not None
    assert "worker-src blob:" in response.headers["content-security-policy"]
    section = '[data-section-id*="/operation/"]'
    page.wait_for_selector(section, timeout=20_000)
    ids = page.eval_on_selector_all(
        section, "ss => ss.map(s => s.getAttribute('data-section-id').split('/operation/')[1])"
    )
    assert set(ids) == set(expected)
    # Each operation has its heading (its summary) and shows its method and path.
    risk_units = page.locator('[data-section-id$="/operation/list_items_api_risk_units_get"]')
    assert risk_units.locator("h2").inner_text().strip() == "List risk-units as GeoJSON"
    assert "/api/risk-units" in risk_units.inner_text()
    (mvt_id,) = [i for i, (m, p) in expected.items() if (m, p) == ("GET", MVT)]
    assert MVT in page.locator(f'[data-section-id$="/operation/{mvt_id}"]').first.inner_text()
    # styled-components filled its (empty, hash-allowed) sheet through CSSOM, and the
    # perfect-scrollbar stylesheet (allowed by its hash) applies.
    rules = page.evaluate("document.querySelector('style[data-styled]').sheet.cssRules.length")
    assert rules > 100
    assert page.eval_on_selector(".ps", "e => getComputedStyle(e).overflow") == "hidden"
    # Search runs in its blob: worker and finds the operation.
    page.fill("input.search-input", "risk-units")
    results = page.locator('[data-role="search:results"] li')
    results.first.wait_for(timeout=10_000)
    assert "List risk-units as GeoJSON" in page.inner_text('[data-role="search:results"]')
    # The credit stays; its CDN logo does not (no image on the page at all).
    assert "API docs by Redocly" in page.inner_text("body")
    assert page.locator("img").count() == 0
    page.wait_for_timeout(300)
    offline.assert_clean()
