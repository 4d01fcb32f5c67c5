"""The daily bulletin where regulators read it: the map's side panel, in a real browser.

Over the demo city's week of bulletins: the panel opens on the newest one, lists the key
entries in the API's rank order, flies the map to an entry's enterprise, and records an action
that the API then holds; an officer's page has no bulletin panel.
"""

from __future__ import annotations

from typing import Any

import httpx
import psycopg
import pytest

from tests.conftest import LiveServer, key_for
from tests.test_web import CHROMIUM, Watched
from tests.test_web import browser as browser  # the module-scoped chromium fixture

pytestmark = pytest.mark.skipif(
    not CHROMIUM.exists(), reason="needs Debian's chromium (tests/ensure_browser.py)"
)


def test_the_panel_shows_the_newest_bulletin_and_records_an_action(
    browser: Any, live_server: LiveServer, client: httpx.Client
) -> None:
    newest = client.get("/api/bulletins", params={"limit": 1}).json()["items"][0]
    bulletin = client.get(f"/api/bulletins/{newest['number']}").json()
    assert bulletin["key_attention"], "the demo city's bulletin has key-attention entries"
    w = Watched(browser, live_server.base_url, key_for(live_server.url))
    note = "面板记录：约谈主要负责人"
    try:
        page = w.page
        page.goto(live_server.base_url + "/")
        page.wait_for_selector("#bulletin-head", timeout=20_000)
        assert page.input_value("#bulletin-pick") == newest["number"]
        assert newest["number"] in page.inner_text("#bulletin-head")
        shown = page.eval_on_selector_all(
            "#bulletin-body ol:first-of-type > li.bl-entry",
            "els => els.map(e => +e.dataset.enterprise)",
        )
        expected = [e["enterprise_id"] for e in bulletin["key_attention"]][: len(shown)]
        assert shown == expected and shown

        # A click on the first entry flies the map to its enterprise.
        first = bulletin["key_attention"][0]
        feature = client.get(f"/api/enterprises/{first['enterprise_id']}").json()
        lon, lat = feature["geometry"]["coordinates"]
        page.click(f'li.bl-entry[data-enterprise="{first["enterprise_id"]}"] .bl-go')
        page.wait_for_function(
            "([lat, lon]) => { const c = GeoRisk.map.getCenter();"
            " return Math.abs(c.lat - lat) < 1e-4 && Math.abs(c.lng - lon) < 1e-4; }",
            arg=[lat, lon],
            timeout=10_000,
        )

        # Record an action in the entry's form: the panel and the API both show it.
        form = f'form.bl-act[data-enterprise="{first["enterprise_id"]}"]'
        page.select_option(f"{form} select", "interview")
        page.fill(f"{form} input[name=note]", note)
        page.click(f"{form} button")
        page.wait_for_function(
            "(n) => document.getElementById('bulletin-body').innerText.includes(n)",
            arg=note,
            timeout=10_000,
        )
        after = client.get(f"/api/bulletins/{newest['number']}").json()
        entry = next(
            e for e in after["key_attention"] if e["enterprise_id"] == first["enterprise_id"]
        )
        assert [a["note"] for a in entry["actions"] if a["kind"] == "interview"][-1] == note
        assert w.errors == [] and w.foreign == []
    finally:
        w.context.close()
        with psycopg.connect(live_server.url, autocommit=True) as conn:
            conn.execute("DELETE FROM bulletin_actions WHERE note = %s", (note,))


def test_an_officer_sees_no_bulletin(browser: Any, live_server: LiveServer) -> None:
    w = Watched(browser, live_server.base_url, key_for(live_server.url, "officer"))
    try:
        w.page.goto(live_server.base_url + "/")
        w.page.wait_for_function(
            "() => GeoRisk.stats && GeoRisk.stats.tilesLoaded > 0", timeout=20_000
        )
        w.page.wait_for_selector("#bulletin", state="hidden", timeout=10_000)
    finally:
        w.context.close()
