"""Security headers (issue 18 §2) and the pages under their Content-Security-Policy, in
Debian's chromium: the map and the diagram draw with not one CSP violation."""

from __future__ import annotations

import base64
import hashlib
import re
from collections.abc import Iterator
from typing import Any

import httpx
import psycopg
import pytest

from geo_api.settings import SecuritySettings, ServerSettings
from tests.conftest import LiveServer, auth, key_for, make_settings
from tests.test_web import CHROMIUM, Watched
from tests.test_web import browser as browser  # the module-scoped chromium fixture

browser_only = pytest.mark.skipif(
    not CHROMIUM.exists(), reason="needs Debian's chromium (tests/ensure_browser.py)"
)

EVERYWHERE = {
    "x-content-type-options": "nosniff",
    "referrer-policy": "no-referrer",
    "x-frame-options": "DENY",
}


def _directives(policy: str) -> dict[str, list[str]]:
    out = {}
    for part in policy.split(";"):
        name, *values = part.split()
        out[name] = values
    return out


@pytest.fixture(scope="module")
def site(database_url: str) -> Iterator[int]:
    """A demo enterprise with a site outline and hazard sources, given a risk unit of ours so
    its diagram's table has a row to show."""
    with psycopg.connect(database_url, autocommit=True) as c:
        row = c.execute(
            "SELECT e.id FROM enterprises e JOIN hazard_sources h ON h.enterprise_id = e.id"
            " WHERE e.site_geom IS NOT NULL ORDER BY e.id LIMIT 1"
        ).fetchone()
        assert row
        (unit,) = c.execute(
            "INSERT INTO risk_units (enterprise_id, name, method, likelihood, exposure,"
            " consequence, color, geom) SELECT id, 'CSP 测试单元', 'LEC', 3, 6, 7, 'yellow',"
            " ST_Multi(ST_Buffer(ST_PointOnSurface(site_geom)::geography, 8)::geometry)"
            " FROM enterprises WHERE id = %s RETURNING id",
            (row[0],),
        ).fetchone()
        yield int(row[0])
        c.execute("DELETE FROM risk_units WHERE id = %s", (unit,))


# -- headers -----------------------------------------------------------------------------------
def test_every_answer_has_the_headers_and_pages_have_a_tight_policy(
    live_server: LiveServer, site: int
) -> None:
    key = key_for(live_server.url)
    with httpx.Client(base_url=live_server.base_url, headers=auth(key), timeout=30) as http:
        answers = {
            "page": http.get("/"),
            "diagram": http.get(f"/enterprises/{site}/diagram"),
            "json": http.get("/api/enterprises", params={"limit": 1}),
            "tile": http.get("/tiles/districts/8/213/105.mvt"),  # the fast path
            "static": http.get("/static/app.js"),
            "401": http.get("/api/enterprises", headers={"X-API-Key": "grk_" + "x" * 40}),
            "404": http.get("/api/nothing-here"),
        }
    for name, r in answers.items():
        assert {h: r.headers.get(h) for h in EVERYWHERE} == EVERYWHERE, name
        assert "strict-transport-security" not in r.headers, name  # plain HTTP: no HSTS
    for name in ("json", "tile", "static"):
        assert "content-security-policy" not in answers[name].headers
    for name in ("page", "diagram"):
        assert answers[name].status_code == 200
        policy = _directives(answers[name].headers["content-security-policy"])
        assert policy["script-src"] == ["'self'"] and policy["style-src"] == ["'self'"]
        assert policy["frame-ancestors"] == ["'none'"] and policy["object-src"] == ["'none'"]
        assert policy["img-src"] == ["'self'", "data:"] and policy["connect-src"] == ["'self'"]
        assert "unsafe" not in answers[name].headers["content-security-policy"]


def test_the_api_docs_get_tight_policies_of_their_own(live_server: LiveServer) -> None:
    """Swagger UI and ReDoc are vendored and started from files (issue 16 §4): no CDN, no
    inline script; ReDoc's two <style> elements by hash, its search worker from blob:."""
    swagger = httpx.get(live_server.base_url + "/docs")
    redoc = httpx.get(live_server.base_url + "/redoc")
    for r in (swagger, redoc):
        assert r.status_code == 200 and r.headers["x-content-type-options"] == "nosniff"
        header = r.headers["content-security-policy"]
        policy = _directives(header)
        assert policy["default-src"] == ["'none'"] and policy["script-src"] == ["'self'"]
        assert policy["connect-src"] == ["'self'"] and policy["img-src"] == ["'self'", "data:"]
        assert policy["font-src"] == ["'self'"] and policy["frame-ancestors"] == ["'none'"]
        assert "unsafe" not in header and "http" not in header  # no inline, no other origin
    assert _directives(swagger.headers["content-security-policy"])["style-src"] == ["'self'"]
    assert "worker-src" not in _directives(swagger.headers["content-security-policy"])
    redoc_policy = _directives(redoc.headers["content-security-policy"])
    empty = base64.b64encode(hashlib.sha256(b"").digest()).decode()
    assert redoc_policy["style-src"][:2] == ["'self'", f"'sha256-{empty}'"]
    assert len(redoc_policy["style-src"]) == 3  # and perfect-scrollbar's stylesheet
    assert redoc_policy["worker-src"] == ["blob:"]


def test_the_offline_diagram_export_runs_sandboxed(live_server: LiveServer, site: int) -> None:
    with live_server.client() as http:
        r = http.get(f"/enterprises/{site}/diagram.html")
    assert r.status_code == 200 and "<script>" in r.text  # inline by design: it is offline
    policy = _directives(r.headers["content-security-policy"])
    assert policy["sandbox"] == ["allow-scripts"] and policy["default-src"] == ["'none'"]
    assert "connect-src" not in policy  # default-src 'none': it can call nobody


def test_over_tls_hsts_and_secure_cookies(live_server: LiveServer, database_url: str) -> None:
    """Behind a TLS proxy (X-Forwarded-Proto from a trusted address: uvicorn trusts 127.0.0.1
    by default), and with GEORISK_SECURITY_TLS on a server of its own."""
    key = key_for(database_url)
    proxied = {"X-Forwarded-Proto": "https"}
    with httpx.Client(base_url=live_server.base_url, timeout=30) as http:
        plain = http.post("/api/auth/session", json={"key": key})
        assert plain.status_code == 200 and "secure" not in plain.headers["set-cookie"].lower()
        r = http.post("/api/auth/session", json={"key": key}, headers=proxied)
        assert r.status_code == 200
        assert r.headers["strict-transport-security"] == "max-age=31536000"
        cookie = r.headers["set-cookie"]
        assert "georisk_session=" in cookie and cookie.endswith("; Secure")
        assert "HttpOnly" in cookie and "SameSite=strict" in cookie
        assert "strict-transport-security" in http.get("/", headers=proxied).headers

    settings = make_settings(database_url)
    settings.security = SecuritySettings(tls=True, hsts_max_age_s=600, hsts_include_subdomains=True)
    settings.server = ServerSettings(basemap_url="https://t{s}.tianditu.gov.cn/img_w/{z}/{x}/{y}")
    with LiveServer(settings) as server, httpx.Client(base_url=server.base_url) as http:
        r = http.post("/api/auth/session", json={"key": key})
        assert r.headers["strict-transport-security"] == "max-age=600; includeSubDomains"
        assert r.headers["set-cookie"].endswith("; Secure")
        page = http.get("/")
        # The configured base map is the one other origin the map may draw images from.
        policy = _directives(page.headers["content-security-policy"])
        assert policy["img-src"] == ["'self'", "data:", "https://*.tianditu.gov.cn"]
        assert policy["connect-src"] == ["'self'"]


def _token_in(url: str) -> str:
    found = re.search(r"[?&]t=([^&]+)", url)
    assert found, url
    return found[1]


# -- the pages under their policy, in a real browser --------------------------------------------
#: Runs before the page's own scripts (Playwright's init scripts are not subject to the CSP).
RECORD_VIOLATIONS = """
window.__csp = [];
document.addEventListener('securitypolicyviolation', (e) => {
  window.__csp.push(`${e.violatedDirective} ${e.blockedURI} ${e.sourceFile}:${e.lineNumber}`);
});
"""


class Policed(Watched):
    """A signed-in page that also records CSP violations and every tile URL it asked for."""

    def __init__(self, browser: Any, base: str, key: str) -> None:
        super().__init__(browser, base, key)
        self.page.add_init_script(RECORD_VIOLATIONS)
        self.tiles: list[str] = []
        self.failed: list[str] = []
        self.page.on("request", lambda r: ".mvt" in r.url and self.tiles.append(r.url))
        self.page.on(
            "response",
            lambda r: ".mvt" in r.url and r.status >= 400 and self.failed.append(r.url),
        )

    def violations(self) -> list[str]:
        found: list[str] = self.page.evaluate("window.__csp")
        return found + [e for e in self.errors if "Content Security Policy" in e]


@pytest.fixture()
def policed(browser: Any, live_server: LiveServer) -> Iterator[Policed]:
    w = Policed(browser, live_server.base_url, key_for(live_server.url))
    yield w
    w.context.close()


@browser_only
def test_the_map_draws_under_its_csp(policed: Policed, live_server: LiveServer) -> None:
    page = policed.page
    response = page.goto(live_server.base_url + "/")
    assert (
        response is not None and "script-src 'self'" in response.headers["content-security-policy"]
    )
    page.wait_for_function(
        "() => GeoRisk.stats.tilesLoaded > 0 && (GeoRisk.stats.drawn.enterprises || 0) > 0",
        timeout=20_000,
    )
    page.wait_for_timeout(500)
    assert policed.violations() == [] and policed.errors == []
    # The legend's swatches are coloured by class, and the colour arrives.
    red = page.eval_on_selector("#legend .sw-red", "e => getComputedStyle(e).backgroundColor")
    assert red == "rgb(224, 32, 32)"
    # Every tile URL carries the short-lived token, none a key.
    key = key_for(live_server.url)
    assert policed.tiles and all("t=eyJ" in url and key not in url for url in policed.tiles)
    assert policed.failed == []


@browser_only
def test_the_diagram_draws_under_its_csp(
    policed: Policed, live_server: LiveServer, db: psycopg.Connection, site: int
) -> None:
    eid = site
    units = db.execute("SELECT count(*) FROM risk_units WHERE enterprise_id = %s", (eid,))
    (expected,) = units.fetchone() or (0,)
    page = policed.page
    page.goto(f"{live_server.base_url}/enterprises/{eid}/diagram")
    page.wait_for_function("() => window.diagramReady === true", timeout=20_000)
    page.wait_for_timeout(300)
    assert page.locator("#units tbody tr").count() == expected > 0
    assert policed.violations() == [] and policed.errors == []
    colour = page.eval_on_selector("#dlegend .sw-blue", "e => getComputedStyle(e).backgroundColor")
    assert colour == "rgb(30, 111, 217)"


@browser_only
def test_the_map_renews_its_tile_token_before_it_expires(browser: Any, database_url: str) -> None:
    """With 5-second tokens the map renews every ~4 s; tiles fetched after several renewals
    (a pan to new ground) use the newest token and are all answered."""
    settings = make_settings(database_url)
    settings.security = SecuritySettings(tile_token_ttl_s=5)
    with LiveServer(settings) as server:
        w = Policed(browser, server.base_url, key_for(database_url))
        try:
            page = w.page
            page.goto(server.base_url + "/")
            page.wait_for_function("() => GeoRisk.stats.tilesLoaded > 0", timeout=20_000)
            page.wait_for_function("() => GeoRisk.stats.tileTokens >= 3", timeout=30_000)
            before, loaded = len(w.tiles), page.evaluate("GeoRisk.stats.tilesLoaded")
            page.evaluate("GeoRisk.map.setView([30.05, 121.35], 12, {animate: false})")
            page.wait_for_function(f"() => GeoRisk.stats.tilesLoaded > {loaded}", timeout=20_000)
            page.wait_for_timeout(500)
            tokens = [_token_in(url) for url in w.tiles]
            assert len(w.tiles) > before and len(set(tokens)) >= 2
            # The new ground was fetched with the newest token the page had been given.
            assert tokens[-1] != tokens[0]
            assert w.failed == [] and w.errors == [] and w.violations() == []
        finally:
            w.context.close()
