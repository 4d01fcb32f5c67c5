"""Risk units on the regulator's map, in a real browser (issue 19 §1, "checked by").

A site of our own around 128.30 E, 36.30 N (district RM-1, credit codes 91330200RM…) holds a red,
an orange, a yellow and a blue unit assessed through the register API, and one registered there
but not assessed. The page, opened with its default layers at zoom 15, draws them in their colours
(read from the page's ``GeoRisk.stats`` hooks and from the tile bodies it fetched), writes their
names at zoom ≥ 16, and follows an edit made on the enterprise's diagram page live.
Set GEORISK_TEST_SCREENSHOTS=<dir> to keep the zoom-15 screenshot.
"""

from __future__ import annotations

import base64
import os
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import mapbox_vector_tile
import psycopg
import pytest

from tests.conftest import LiveServer, key_for
from tests.test_live_map import RECORD_TILES
from tests.test_web import CHROMIUM, Watched
from tests.test_web import browser as browser  # the module-scoped chromium fixture

pytestmark = pytest.mark.skipif(
    not CHROMIUM.exists(), reason="needs Debian's chromium (tests/ensure_browser.py)"
)

DISTRICT = "RM-1"
LAT0, LAT1 = 36.3004, 36.3010
WIDTH = 0.0005
#: West edge, name, register inputs, the colour the register gives.
UNITS = [
    (128.3002, "液氨储罐区", {"method": "LEC", "likelihood": 6, "exposure": 6, "consequence": 15},
     "red"),
    (128.3009, "合成反应区", {"method": "LS", "likelihood": 4, "severity": 4}, "orange"),
    (128.3016, "汽车装卸台", {"method": "LS", "likelihood": 2, "severity": 3}, "yellow"),
    (128.3023, "五金仓库", {"method": "LS", "likelihood": 1, "severity": 3}, "blue"),
]  # fmt: skip
GREY_WEST, GREY_NAME = 128.3030, "循环水站"
CENTRE = (128.3019, 36.3008)


def _ring(west: float) -> list[list[float]]:
    e = west + WIDTH
    return [[west, LAT0], [e, LAT0], [e, LAT1], [west, LAT1], [west, LAT0]]


@dataclass
class Site:
    enterprise: int
    units: dict[str, int]  # colour → unit id (grey: not assessed)


@pytest.fixture(scope="module")
def site(live_server: LiveServer, database_url: str) -> Iterator[Site]:
    conn = psycopg.connect(database_url, autocommit=True)
    conn.execute(
        "INSERT INTO districts (code, name, geom) VALUES (%s, 'risk unit map',"
        " ST_Multi(ST_MakeEnvelope(128.2, 36.2, 128.4, 36.4, 4326)))",
        (DISTRICT,),
    )
    outline = [[128.3, 36.3], [128.304, 36.3], [128.304, 36.3016], [128.3, 36.3016], [128.3, 36.3]]
    with live_server.client() as client:
        r = client.post(
            "/api/enterprises",
            json={
                "type": "Feature",
                "geometry": {"type": "Point", "coordinates": [128.302, 36.3013]},
                "properties": {
                    "credit_code": "91330200RM00000001",
                    "name": "四色分布图化工",
                    "category": "production",
                    "is_hazmat": True,
                    "district": DISTRICT,
                    "diagnosis_score": 80,
                    "site": {"type": "Polygon", "coordinates": [outline]},
                },
            },
        )
        assert r.status_code == 201, r.text
        enterprise = int(r.json()["id"])
        units: dict[str, int] = {}
        for west, name, inputs, colour in UNITS:
            r = client.post(
                f"/api/enterprises/{enterprise}/risk-units",
                json={
                    "type": "Feature",
                    "geometry": {"type": "Polygon", "coordinates": [_ring(west)]},
                    "properties": {"name": name, **inputs},
                },
            )
            assert r.status_code == 201 and r.json()["color"] == colour, r.text
            units[colour] = int(r.json()["id"])
        r = client.post(
            f"/api/enterprises/{enterprise}/risk-units",
            json={
                "type": "Feature",
                "geometry": {"type": "Polygon", "coordinates": [_ring(GREY_WEST)]},
                "properties": {"name": GREY_NAME, "kind": "utilities", "method": None},
            },
        )
        assert r.status_code == 201 and r.json()["color"] is None, r.text
        units["grey"] = int(r.json()["id"])
    yield Site(enterprise, units)
    conn.execute("DELETE FROM enterprises WHERE credit_code LIKE '91330200RM%%'")
    conn.execute("DELETE FROM districts WHERE code = %s", (DISTRICT,))
    conn.close()


def _open(w: Watched, base: str, zoom: int, query: str = "") -> None:
    w.page.goto(f"{base}/{query}")
    w.page.wait_for_function("() => GeoRisk.stats.tilesLoaded > 0", timeout=15_000)
    w.page.evaluate(
        "([lat, lon, z]) => GeoRisk.map.setView([lat, lon], z, {animate: false})",
        [CENTRE[1], CENTRE[0], zoom],
    )
    w.page.wait_for_function("() => GeoRisk.stats.live === 'live'", timeout=15_000)


def _drawn(w: Watched, site: Site) -> dict[str, Any]:
    colours = w.page.evaluate("() => GeoRisk.stats.colors")
    return {c: colours.get(f"risk_units:{i}") for c, i in site.units.items()}


def _tile_colours(w: Watched, unit: int) -> list[str]:
    """The colours ``unit`` had in every tile body the page fetched, in order."""
    out = []
    for _url, body in w.page.evaluate("() => window.__tiles"):
        decoded = mapbox_vector_tile.decode(base64.b64decode(body))
        for f in decoded.get("risk_units", {}).get("features", []):
            if f["id"] == unit:
                out.append(f["properties"]["color"])
    return out


def test_zoom_15_draws_the_units_in_their_colours_with_names_at_16(
    browser: Any, live_server: LiveServer, site: Site, tmp_path: Path
) -> None:
    key = key_for(live_server.url, "regulator", districts=[DISTRICT])
    w = Watched(browser, live_server.base_url, key)
    w.page.add_init_script(RECORD_TILES)
    try:
        _open(w, live_server.base_url, 15)  # the default layers: risk units are on
        assert w.page.is_checked('input[data-layer="risk_units"]')
        expected = {c: c for c in site.units}
        w.page.wait_for_function(
            "(ids) => ids.every((i) => GeoRisk.stats.colors['risk_units:' + i])",
            arg=list(site.units.values()),
            timeout=15_000,
        )
        drawn = _drawn(w, site)
        assert drawn == expected
        assert len({c for c in drawn.values() if c != "grey"}) >= 3
        for colour, unit in site.units.items():
            assert colour in _tile_colours(w, unit)  # what the page drew came from its tiles
        assert w.page.evaluate("() => GeoRisk.stats.unitLabels || 0") == 0  # no names at 15
        shots = Path(os.environ.get("GEORISK_TEST_SCREENSHOTS") or tmp_path)
        shots.mkdir(parents=True, exist_ok=True)
        w.page.wait_for_timeout(500)
        w.page.screenshot(path=str(shots / "risk_units_z15.png"))

        # Zoom 17: the names are written on the units, once each.
        w.page.evaluate(
            "([lat, lon]) => GeoRisk.map.setView([lat, lon], 17, {animate: false})",
            [CENTRE[1], CENTRE[0]],
        )
        w.page.wait_for_function(
            "(n) => document.querySelectorAll('.unit-name').length >= n",
            arg=len(site.units),
            timeout=15_000,
        )
        names = w.page.locator(".unit-name span").all_inner_texts()
        for _west, name, _inputs, _colour in UNITS:
            assert names.count(name) == 1, (name, names)
        assert names.count(GREY_NAME) == 1
        w.page.wait_for_timeout(500)  # Leaflet's tile fade
        w.page.screenshot(path=str(shots / "risk_units_z17.png"))
        # Below 16 they are gone again.
        w.page.evaluate("() => GeoRisk.map.setZoom(15, {animate: false})")
        w.page.wait_for_function("() => document.querySelectorAll('.unit-name').length === 0")
        assert w.errors == [] and w.foreign == []
    finally:
        w.context.close()


def test_a_unit_edited_on_the_diagram_recolours_the_regulators_map_live(
    browser: Any, live_server: LiveServer, site: Site, client: httpx.Client
) -> None:
    base = live_server.base_url
    red = site.units["red"]
    regulator = Watched(browser, base, key_for(live_server.url, "regulator", districts=[DISTRICT]))
    regulator.page.add_init_script(RECORD_TILES)
    owner = Watched(
        browser, base, key_for(live_server.url, "enterprise", enterprise_id=site.enterprise)
    )
    try:
        _open(regulator, base, 16, "?layers=risk_units")
        regulator.page.wait_for_function(
            "(k) => GeoRisk.stats.colors[k] === 'red'", arg=f"risk_units:{red}", timeout=15_000
        )
        refreshed = regulator.page.evaluate("() => GeoRisk.stats.tilesRefreshed")

        # The enterprise opens its diagram, clicks the red unit and lowers its likelihood.
        page = owner.page
        page.goto(f"{base}/enterprises/{site.enterprise}/diagram")
        page.wait_for_function("() => window.diagramReady === true", timeout=15_000)
        west = UNITS[0][0]
        xy = page.evaluate(
            "([lat, lon]) => { const p = window.diagramMap.latLngToContainerPoint([lat, lon]);"
            " const r = document.getElementById('dmap').getBoundingClientRect();"
            " return [r.left + p.x, r.top + p.y]; }",
            [(LAT0 + LAT1) / 2, west + WIDTH / 2],
        )
        page.mouse.click(xy[0], xy[1])
        page.locator("#unit-form").wait_for(state="visible", timeout=5_000)
        assert page.input_value("#u-name") == UNITS[0][1]
        page.fill("#u-l", "1")  # D = 1 × 6 × 15 = 90 → yellow
        page.click("#u-save")
        page.locator(f'#units tr:has-text("{UNITS[0][1]}"):has-text("yellow")').wait_for(
            timeout=10_000
        )

        # Nobody touches the regulator's map: it refetches the touched tile and redraws it.
        regulator.page.wait_for_function(
            "(k) => GeoRisk.stats.colors[k] === 'yellow'", arg=f"risk_units:{red}", timeout=10_000
        )
        assert regulator.page.evaluate("() => GeoRisk.stats.tilesRefreshed") > refreshed
        colours = _tile_colours(regulator, red)
        assert colours[0] == "red" and colours[-1] == "yellow", colours
        stored = client.get(f"/api/risk-units/{red}").json()["properties"]
        assert (stored["color"], stored["likelihood"]) == ("yellow", 1)
        assert regulator.errors == [] and owner.errors == []
    finally:
        regulator.context.close()
        owner.context.close()
