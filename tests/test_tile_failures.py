"""A tile that cannot be fetched never passes for an empty one (the map never lies).

Leaflet.VectorGrid draws a failed tile fetch as a tile with no features. The page watches tile
answers: a refused tile token (401 — expired while a laptop slept, or revoked) is renewed and the
view fetched again; any other failure turns the live banner into a warning and the view is
retried until tiles come back. Failures are made with Playwright's routing, the server is real.
"""

from __future__ import annotations

import re
from typing import Any
from urllib.parse import urlparse

import pytest

from tests.conftest import LiveServer, key_for
from tests.test_web import CHROMIUM, Watched
from tests.test_web import browser as browser  # the module-scoped chromium fixture

pytestmark = pytest.mark.skipif(
    not CHROMIUM.exists(), reason="needs Debian's chromium (tests/ensure_browser.py)"
)
TILE = re.compile(r".*/tiles/[^?]*\.mvt.*")


def _open(w: Watched, base: str) -> None:
    w.page.goto(f"{base}/?layers=enterprises,districts")
    w.page.wait_for_function(
        "() => GeoRisk.stats.tilesLoaded > 0 && GeoRisk.stats.live === 'live'", timeout=20_000
    )


def _pan(w: Watched, lat: float, lon: float) -> None:
    w.page.evaluate(
        "([lat, lon]) => GeoRisk.map.setView([lat, lon], 12, {animate: false})", [lat, lon]
    )


def test_failing_tiles_warn_in_the_banner_and_come_back(
    browser: Any, live_server: LiveServer
) -> None:
    w = Watched(browser, live_server.base_url, key_for(live_server.url))
    try:
        _open(w, live_server.base_url)
        failed: list[str] = []

        def unavailable(route: Any) -> None:
            failed.append(route.request.url)
            route.fulfill(status=503, body="")

        w.page.route(TILE, unavailable)
        _pan(w, 29.95, 121.6)
        w.page.wait_for_selector('#live[data-state="degraded"]', timeout=10_000)
        assert failed and w.page.evaluate("() => GeoRisk.stats.tileFailures") >= 1
        assert "tiles failed" in w.page.inner_text("#live")

        # The server answers again: the page retries on its own and the banner clears.
        loaded = w.page.evaluate("() => GeoRisk.stats.tilesLoaded")
        w.page.unroute(TILE, unavailable)
        w.page.wait_for_selector('#live[data-state="live"]', timeout=20_000)
        w.page.wait_for_function("(n) => GeoRisk.stats.tilesLoaded > n", arg=loaded, timeout=10_000)
    finally:
        w.context.close()


def test_a_refused_tile_token_is_renewed_and_the_view_fetched_again(
    browser: Any, live_server: LiveServer
) -> None:
    w = Watched(browser, live_server.base_url, key_for(live_server.url))
    try:
        _open(w, live_server.base_url)
        tokens = w.page.evaluate("() => GeoRisk.stats.tileTokens")
        refused: list[str] = []
        answers: list[tuple[str, int]] = []
        w.page.on(
            "response",
            lambda r: TILE.match(r.url) and answers.append((r.url, r.status)),
        )

        def expired_once(route: Any) -> None:
            if not refused:
                refused.append(route.request.url)
                route.fulfill(status=401, body="")
            else:
                route.continue_()

        w.page.route(TILE, expired_once)
        _pan(w, 29.85, 121.8)
        w.page.wait_for_function("(n) => GeoRisk.stats.tileTokens > n", arg=tokens, timeout=10_000)
        # The view is fetched again with the new token, and those tiles arrive.
        renewed = w.page.evaluate("() => GeoRisk.stats.tileTokens")
        assert renewed > tokens
        refused_tile = urlparse(refused[0]).path

        def fresh_ok() -> bool:  # the refused tile itself, fetched again and answered
            return any(urlparse(u).path == refused_tile and st == 200 for u, st in answers)

        for _ in range(100):
            if fresh_ok():
                break
            w.page.wait_for_timeout(100)
        assert fresh_ok(), answers[-5:]
        assert len(refused) == 1
    finally:
        w.context.close()
