"""The regulator's map and the enterprise diagram in a real browser (Debian's chromium driven by
Playwright; no browser download). Everything runs against the live test server; the tanker
scenario uses an area of its own (124.8–124.9 E, 32.6–32.7 N) and its own vehicle.
"""

from __future__ import annotations

import datetime as dt
import io
import math
import re
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import psycopg
import pytest

from tests.conftest import key_for

CHROMIUM = Path("/usr/bin/chromium")
FLAGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
SPOT = (124.85, 32.65)  # roadside spot of our own, outside every zone

pytestmark = pytest.mark.skipif(
    not CHROMIUM.exists(), reason="needs Debian's chromium (tests/ensure_browser.py)"
)


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    from playwright.sync_api import sync_playwright

    with sync_playwright() as pw:
        b = pw.chromium.launch(executable_path=str(CHROMIUM), args=FLAGS)
        yield b
        b.close()


class Watched:
    """A signed-in page (session cookie from POST /api/auth/session, as the sign-in form does)
    with its console errors and off-server requests recorded."""

    def __init__(self, browser: Any, base: str, key: str | None = None) -> None:
        self.context = browser.new_context(viewport={"width": 1280, "height": 800})
        if key is not None:
            r = self.context.request.post(base + "/api/auth/session", data={"key": key})
            assert r.ok, r.text()
        self.page = self.context.new_page()
        self.errors: list[str] = []
        self.foreign: list[str] = []
        self.page.on("console", lambda m: m.type == "error" and self.errors.append(m.text))
        self.page.on("pageerror", lambda e: self.errors.append(str(e)))

        def request(r: Any) -> None:
            if not r.url.startswith((base, "data:", "blob:", "about:")):
                self.foreign.append(r.url)

        self.page.on("request", request)


@pytest.fixture()
def watched(browser: Any, live_server: Any) -> Iterator[Watched]:
    w = Watched(browser, live_server.base_url, key_for(live_server.url))
    yield w
    w.context.close()


def test_map_draws_tiles_without_errors_or_foreign_requests(
    watched: Watched, live_server: Any
) -> None:
    page = watched.page
    page.goto(live_server.base_url + "/")
    page.wait_for_function(
        "() => { const d = window.GeoRisk && GeoRisk.stats.drawn;"
        " return d && d.enterprises > 0 && d.monitoring_points > 0 && d.pipeline_segments > 0; }",
        timeout=15_000,
    )
    # Every registry layer has a switch; the legend shows the four colours.
    tiles = httpx.get(live_server.base_url + "/tiles", headers=live_server.admin_headers)
    catalog = tiles.json()["layers"]
    for layer in catalog:
        if layer["name"].startswith("h3_"):
            assert page.locator(f'#hex-layer option[value="{layer["name"]}"]').count() == 1
        else:
            assert page.locator(f'input[data-layer="{layer["name"]}"]').count() == 1
    legend = page.inner_text("#legend")
    for word in ("major", "high", "moderate", "low"):
        assert word in legend
    assert page.locator("#summary-svg rect").count() > 0
    assert page.locator(".leaflet-tile-container canvas").count() > 0
    # Hexagon mode draws H3 cells instead of points.
    page.check("#hex-mode")
    page.wait_for_function("() => GeoRisk.stats.drawn.h3_enterprises > 0", timeout=10_000)
    assert re.match(r"res \d+", page.inner_text("#hex-res"))
    page.wait_for_timeout(2500)  # one alert poll or stream event cycle
    assert watched.errors == []
    assert watched.foreign == []


def _click_at(page: Any, lon: float, lat: float) -> None:
    xy = page.evaluate(
        "([lat, lon]) => { const p = GeoRisk.map.latLngToContainerPoint([lat, lon]);"
        " const r = document.getElementById('map').getBoundingClientRect();"
        " return [r.left + p.x, r.top + p.y]; }",
        [lat, lon],
    )
    page.mouse.click(xy[0], xy[1])


def test_clicking_an_enterprise_shows_colour_and_reasons(
    watched: Watched, live_server: Any, client: httpx.Client
) -> None:
    ent = client.get("/api/enterprises", params={"color": "red", "limit": 1}).json()["features"][0]
    risk = client.get(f"/api/enterprises/{ent['id']}/risk").json()
    assert risk["reasons"], "a red enterprise has reasons"
    lon, lat = ent["geometry"]["coordinates"]
    page = watched.page
    page.goto(live_server.base_url + "/?layers=districts,enterprises")
    page.wait_for_function("() => GeoRisk.stats.tilesLoaded > 0", timeout=15_000)
    page.evaluate(
        "([lat, lon]) => GeoRisk.map.setView([lat, lon], 16, {animate: false})", [lat, lon]
    )
    page.wait_for_function(
        "() => GeoRisk.stats.drawn.enterprises > 0 && GeoRisk.stats.tilesLoaded > 2",
        timeout=15_000,
    )
    page.wait_for_timeout(500)
    _click_at(page, lon, lat)
    popup = page.locator(".leaflet-popup-content .ent-color")
    popup.wait_for(timeout=10_000)
    assert risk["color"] in popup.inner_text()
    assert risk["dynamic_color"] in page.inner_text(".leaflet-popup-content .ent-dynamic")
    reasons = page.inner_text(".leaflet-popup-content .reasons")
    assert risk["reasons"][0]["zh"] in reasons
    assert watched.errors == []


def _offset(lon: float, lat: float, east_m: float) -> tuple[float, float]:
    return lon + east_m / (111_320 * math.cos(math.radians(lat))), lat


def _stop_fixes(vid: int, start: dt.datetime, stay_s: int) -> list[dict[str, Any]]:
    """Drive in at 40 km/h, park ``stay_s`` at SPOT, drive on: 30 s fixes."""
    fixes, t = [], start

    def fix(lon: float, lat: float, speed: float) -> None:
        nonlocal t
        fixes.append(
            {
                "vehicle_id": vid,
                "ts": t.isoformat(),
                "lon": round(lon, 7),
                "lat": round(lat, 7),
                "speed_kmh": speed,
                "heading": 90,
            }
        )
        t += dt.timedelta(seconds=30)

    for k in range(6, 0, -1):
        fix(*_offset(*SPOT, -333.0 * k), 40)
    for _ in range(stay_s // 30 + 1):
        fix(*SPOT, 0)
    for k in range(1, 7):
        fix(*_offset(*SPOT, 333.0 * k), 40)
    return fixes


@pytest.mark.parametrize("mode", ["SSE", "polling"])
def test_illegal_stop_reaches_the_panel_and_is_acknowledged_there(
    watched: Watched, live_server: Any, client: httpx.Client, db: psycopg.Connection, mode: str
) -> None:
    row = db.execute(
        "INSERT INTO vehicles (plate, carrier) VALUES (%s, '网页测试危运') RETURNING id",
        (f"测W{uuid.uuid4().hex[:5]}",),
    ).fetchone()
    assert row
    vid = row[0]
    page = watched.page
    if mode == "polling":  # a server without the stream: the panel must fall back to polling
        page.route("**/openapi.json", lambda route: route.fulfill(json={"paths": {}}))
    page.goto(live_server.base_url + "/?layers=districts")
    page.wait_for_function(
        f"() => document.getElementById('alerts-mode').textContent.includes('{mode}')",
        timeout=10_000,
    )
    start = (dt.datetime.now(dt.UTC) - dt.timedelta(hours=2)).replace(microsecond=0)
    r = client.post("/api/positions", json=_stop_fixes(vid, start, 720))
    assert r.status_code == 200 and not r.json()["rejected"], r.text
    item = page.locator(f'#alerts-list li[data-vehicle="{vid}"]')
    item.wait_for(timeout=3_000)  # the bound: within 3 s of the fixes arriving
    assert "illegal parking" in item.inner_text()
    item.locator("button[data-ack]").click()
    page.wait_for_function(
        f"() => {{ const li = document.querySelector('#alerts-list li[data-vehicle=\"{vid}\"]');"
        " return li && li.classList.contains('acknowledged'); }",
        timeout=5_000,
    )
    alerts = client.get("/api/alerts", params={"vehicle_id": vid, "f": "json"}).json()["alerts"]
    assert [a["status"] for a in alerts] == ["acknowledged"]
    assert watched.errors == []


def _diagram_enterprise(db: psycopg.Connection) -> int:
    row = db.execute(
        "SELECT e.id FROM enterprises e JOIN hazard_sources h ON h.enterprise_id = e.id"
        " WHERE e.site_geom IS NOT NULL ORDER BY e.id LIMIT 1"
    ).fetchone()
    assert row
    return int(row[0])


def test_a_unit_drawn_on_the_diagram_is_saved_and_reloaded(
    watched: Watched, live_server: Any, client: httpx.Client, db: psycopg.Connection
) -> None:
    eid = _diagram_enterprise(db)
    name = f"网页绘制单元 {uuid.uuid4().hex[:6]}"
    page = watched.page
    url = f"{live_server.base_url}/enterprises/{eid}/diagram"
    page.goto(url)
    page.wait_for_function("() => window.diagramReady === true", timeout=15_000)
    page.click(".leaflet-pm-icon-polygon")
    box = page.locator("#dmap").bounding_box()
    cx, cy = box["x"] + box["width"] / 2, box["y"] + box["height"] / 2
    for dx, dy in ((-60, -40), (60, -40), (60, 40), (-60, 40), (-60, -40)):
        page.mouse.click(cx + dx, cy + dy)
        page.wait_for_timeout(150)
    page.locator("#unit-form").wait_for(state="visible", timeout=5_000)
    page.fill("#u-name", name)
    page.select_option("#u-method", "LEC")
    page.fill("#u-l", "6")
    page.fill("#u-e", "6")
    page.fill("#u-c", "15")  # D = 540 > 320 → red
    page.click("#u-add-control")
    page.select_option("#u-control-rows .control >> nth=0 >> .c-type", "management")
    page.fill("#u-control-rows .control >> nth=0 >> .c-measure", "双人巡检")
    page.click("#u-save")
    page.locator(f'#units tr:has-text("{name}")').wait_for(timeout=10_000)
    page.reload()
    page.wait_for_function("() => window.diagramReady === true", timeout=15_000)
    row = page.locator(f'#units tr:has-text("{name}")')
    assert row.count() == 1
    assert "red" in row.inner_text()
    units = client.get(f"/api/enterprises/{eid}/risk-units").json()["features"]
    assert [u["properties"]["color"] for u in units if u["properties"]["name"] == name] == ["red"]
    # Editing: clicking the unit opens its form; a lower likelihood re-colours it (PUT).
    page.mouse.click(cx + 30, cy + 20)
    page.locator("#unit-form").wait_for(state="visible", timeout=5_000)
    assert page.input_value("#u-name") == name
    page.fill("#u-l", "1")  # D = 1 × 6 × 15 = 90 → yellow
    page.click("#u-save")
    page.locator(f'#units tr:has-text("{name}"):has-text("yellow")').wait_for(timeout=10_000)
    units = client.get(f"/api/enterprises/{eid}/risk-units").json()["features"]
    assert [u["properties"]["color"] for u in units if u["properties"]["name"] == name] == [
        "yellow"
    ]
    assert watched.errors == []
    assert watched.foreign == []


def test_a_not_assessed_unit_with_typed_controls_is_grey_and_stored_as_entered(
    watched: Watched, live_server: Any, client: httpx.Client, db: psycopg.Connection
) -> None:
    """The register form (issue 19 §3): kind, hazard source, "not assessed", typed control rows
    (added and removed), responsible person, review date; then an edit assesses it by LS."""
    eid = _diagram_enterprise(db)
    hazard_ids = [
        r[0]
        for r in db.execute(
            "SELECT id FROM hazard_sources WHERE enterprise_id = %s ORDER BY id", (eid,)
        ).fetchall()
    ]
    name = f"待评估仓库 {uuid.uuid4().hex[:6]}"
    page = watched.page
    page.goto(f"{live_server.base_url}/enterprises/{eid}/diagram")
    page.wait_for_function("() => window.diagramReady === true", timeout=15_000)
    page.click(".leaflet-pm-icon-polygon")
    box = page.locator("#dmap").bounding_box()
    cx, cy = box["x"] + box["width"] / 2 + 200, box["y"] + box["height"] / 2 - 60
    for dx, dy in ((-50, -40), (50, -40), (50, 40), (-50, 40), (-50, -40)):
        page.mouse.click(cx + dx, cy + dy)
        page.wait_for_timeout(150)
    page.locator("#unit-form").wait_for(state="visible", timeout=5_000)
    page.fill("#u-name", name)
    page.select_option("#u-kind", "warehouse")
    options = page.locator("#u-hazard option").evaluate_all("(os) => os.map((o) => o.value)")
    assert options == ["", *[str(h) for h in hazard_ids]]  # this enterprise's sources only
    page.select_option("#u-hazard", str(hazard_ids[0]))
    page.select_option("#u-method", "")  # 未评估 not assessed: no inputs to fill
    assert not page.locator("#u-l").is_visible() and not page.locator("#u-e").is_visible()
    entered = [
        ("engineering", "可燃气体检测报警仪"),
        ("ppe", "作废的一行"),
        ("emergency", "泄漏应急预案"),
    ]
    for n, (kind, measure) in enumerate(entered):
        page.click("#u-add-control")
        row = page.locator("#u-control-rows .control").nth(n)
        row.locator(".c-type").select_option(kind)
        row.locator(".c-measure").fill(measure)
    page.locator("#u-control-rows .control").nth(1).locator(".c-remove").click()
    assert page.locator("#u-control-rows .control").count() == 2
    page.fill("#u-responsible", "周杰")
    page.fill("#u-phone", "13700001234")
    page.fill("#u-review", "2020-01-01")
    page.click("#u-save")
    row = page.locator(f'#units tr:has-text("{name}")')
    row.wait_for(timeout=10_000)
    text = row.inner_text()
    assert "grey" in text and "未评估" in text and "仓库" in text and "周杰 13700001234" in text
    controls = row.locator("td.controls")
    assert (
        controls.locator('[data-type="engineering"]').inner_text() == "工程技术: 可燃气体检测报警仪"
    )
    assert controls.locator('[data-type="emergency"]').inner_text() == "应急处置: 泄漏应急预案"
    assert controls.locator('[data-type="ppe"]').count() == 0
    assert "overdue" in (row.locator("td.review").get_attribute("class") or "")
    swatch = row.locator(".sw").evaluate("(n) => getComputedStyle(n).backgroundColor")
    assert swatch == "rgb(158, 158, 158)"  # grey, never blue
    fill = page.evaluate(
        """(name) => Object.values(window.diagramMap._layers)
             .filter((l) => l.feature && l.feature.properties.name === name)
             .map((l) => l.options.fillColor)""",
        name,
    )
    assert fill == ["#9E9E9E"]

    units = client.get(f"/api/enterprises/{eid}/risk-units").json()["features"]
    [stored] = [u["properties"] for u in units if u["properties"]["name"] == name]
    assert {
        k: stored[k]
        for k in (
            "kind",
            "hazard_source_id",
            "method",
            "likelihood",
            "exposure",
            "consequence",
            "severity",
            "color",
            "score",
            "controls",
            "responsible",
            "responsible_phone",
            "assessed_on",
            "review_due",
        )
    } == {
        "kind": "warehouse",
        "hazard_source_id": hazard_ids[0],
        "method": None,
        "likelihood": None,
        "exposure": None,
        "consequence": None,
        "severity": None,
        "color": None,
        "score": None,
        "controls": [
            {"type": "engineering", "measure": "可燃气体检测报警仪"},
            {"type": "emergency", "measure": "泄漏应急预案"},
        ],
        "responsible": "周杰",
        "responsible_phone": "13700001234",
        "assessed_on": None,
        "review_due": "2020-01-01",
    }

    # Reopening shows what was stored; assessing it by LS (L2 × S4 = 8) turns it yellow.
    page.mouse.click(cx, cy)
    page.locator("#unit-form").wait_for(state="visible", timeout=5_000)
    assert page.input_value("#u-name") == name and page.input_value("#u-method") == ""
    assert page.locator("#u-control-rows .c-measure").evaluate_all(
        "(xs) => xs.map((x) => x.value)"
    ) == ["可燃气体检测报警仪", "泄漏应急预案"]
    page.select_option("#u-method", "LS")
    page.fill("#u-l", "2")
    page.fill("#u-s", "4")
    page.fill("#u-assessed", "2019-06-01")
    page.click("#u-save")
    page.locator(f'#units tr:has-text("{name}"):has-text("yellow")').wait_for(timeout=10_000)
    units = client.get(f"/api/enterprises/{eid}/risk-units").json()["features"]
    [stored] = [u["properties"] for u in units if u["properties"]["name"] == name]
    assert (stored["method"], stored["likelihood"], stored["severity"], stored["color"]) == (
        "LS",
        2,
        4,
        "yellow",
    )
    assert stored["assessed_on"] == "2019-06-01" and len(stored["controls"]) == 2
    assert client.delete(f"/api/risk-units/{stored['id']}").status_code == 204
    assert watched.errors == []
    assert watched.foreign == []


def test_emergency_contacts_are_edited_on_the_diagram_page(
    watched: Watched, live_server: Any, client: httpx.Client, db: psycopg.Connection
) -> None:
    eid = _diagram_enterprise(db)
    url = f"/api/enterprises/{eid}/contacts"
    before = client.get(url).json()["contacts"]
    page = watched.page
    try:
        page.goto(f"{live_server.base_url}/enterprises/{eid}/diagram")
        page.wait_for_function("() => window.diagramReady === true", timeout=15_000)
        page.wait_for_function(
            f"() => document.querySelectorAll('#contact-rows .contact').length === {len(before)}"
        )
        # The seeded enterprise has its contacts (layers/demo_city/registers.py): remove them
        # one at a time, the first each time (the rows renumber as they go).
        remove = page.locator("#contact-rows .k-remove")
        for _ in range(len(before)):
            remove.first.click()
        page.wait_for_function("() => !document.querySelector('#contact-rows .contact')")
        for role, name, phone in (("主要负责人", "吴刚", "13600001111"), ("作废", "x", "1")):
            page.click("#c-add")
            new = page.locator("#contact-rows .contact").last
            new.locator(".k-role").fill(role)
            new.locator(".k-name").fill(name)
            new.locator(".k-phone").fill(phone)
        page.locator("#contact-rows .contact").last.locator(".k-remove").click()
        page.click("#c-save")
        page.locator("#c-status:has-text('saved')").wait_for(timeout=5_000)
        assert client.get(url).json()["contacts"] == [
            {"role": "主要负责人", "name": "吴刚", "phone": "13600001111"}
        ]
        # A bad phone is refused with the field named, and nothing changes.
        page.locator("#contact-rows .k-phone").first.fill("请拨打")
        page.click("#c-save")
        page.locator("#c-status.error:has-text('contacts.0.phone')").wait_for(timeout=5_000)
        assert client.get(url).json()["contacts"][0]["phone"] == "13600001111"
    finally:
        client.put(url, json={"contacts": before})
    assert [e for e in watched.errors if "422" not in e] == []
    assert watched.foreign == []


def test_every_export_opens(
    browser: Any, client: httpx.Client, db: psycopg.Connection, tmp_path: Path
) -> None:
    from PIL import Image
    from pypdf import PdfReader

    eid = _diagram_enterprise(db)
    base = f"/enterprises/{eid}/diagram"
    png = client.get(base + ".png")
    assert png.status_code == 200 and png.headers["content-type"] == "image/png"
    image = Image.open(io.BytesIO(png.content))
    image.load()
    assert image.width > 200 and image.height > 200
    pdf = client.get(base + ".pdf")
    assert pdf.status_code == 200 and pdf.content.startswith(b"%PDF")
    reader = PdfReader(io.BytesIO(pdf.content))
    assert len(reader.pages) >= 1
    width_pt, height_pt = (float(v) for v in reader.pages[0].mediabox.upper_right)
    assert abs(width_pt - 595) < 2 and abs(height_pt - 842) < 2  # A4 portrait
    gj = client.get(base + ".geojson")
    assert gj.headers["content-type"].startswith("application/geo+json")
    layers = {f["properties"]["layer"] for f in gj.json()["features"]}
    assert {"enterprise", "hazard_source"} <= layers
    html = client.get(base + ".html")
    assert html.status_code == 200
    urls = set(re.findall(r"https?://[^\s\"'<>)]+", html.text))
    assert {u for u in urls if not u.startswith("http://www.w3.org/")} == set()
    # And it really opens with no network: every request other than the file itself fails.
    path = tmp_path / "diagram.html"
    path.write_text(html.text, encoding="utf-8")
    page = browser.new_page()
    attempted: list[str] = []

    def block(route: Any) -> None:
        if route.request.url.startswith("file:"):
            route.continue_()
        else:
            attempted.append(route.request.url)
            route.abort()

    page.route("**/*", block)
    errors: list[str] = []
    page.on("pageerror", lambda e: errors.append(str(e)))
    page.goto(path.as_uri())
    page.locator(".leaflet-container path.leaflet-interactive").first.wait_for(timeout=10_000)
    assert attempted == [] and errors == []
    page.close()


def test_track_replay_draws_the_chosen_window(
    watched: Watched, live_server: Any, client: httpx.Client, db: psycopg.Connection
) -> None:
    row = db.execute(
        "INSERT INTO vehicles (plate, carrier) VALUES (%s, '网页测试危运') RETURNING id",
        (f"测R{uuid.uuid4().hex[:5]}",),
    ).fetchone()
    assert row
    vid = row[0]
    start = (dt.datetime.now(dt.UTC) - dt.timedelta(hours=5)).replace(microsecond=0)
    fixes = _stop_fixes(vid, start, 120)
    assert client.post("/api/positions", json=fixes).status_code == 200
    page = watched.page
    page.goto(live_server.base_url + "/?layers=districts")
    page.wait_for_function("() => window.GeoRisk && GeoRisk.selectVehicle", timeout=10_000)
    # The window as the browser's local time, in the datetime-local inputs' format.
    page.evaluate(
        "([a, b]) => { const f = (s) => { const d = new Date(s);"
        " return new Date(d - d.getTimezoneOffset() * 60000).toISOString().slice(0, 16); };"
        " document.getElementById('replay-from').value = f(a);"
        " document.getElementById('replay-to').value = f(b); }",
        [
            (start - dt.timedelta(minutes=1)).isoformat(),
            (start + dt.timedelta(hours=1)).isoformat(),
        ],
    )
    page.evaluate(f"GeoRisk.selectVehicle({vid})")
    page.click("#replay-go")
    page.wait_for_function(
        f"() => document.getElementById('replay-info').textContent.includes('/{len(fixes)}')",
        timeout=10_000,
    )
    assert page.locator("#map path.leaflet-interactive, #map canvas").count() > 0
    assert watched.errors == []


def test_sign_in_form_then_a_role_shaped_map(browser: Any, live_server: Any) -> None:
    """Signed out, the map asks for a key; a tile reader's map has only public layers and
    neither the alert panel nor the district chart; signing out asks again."""
    w = Watched(browser, live_server.base_url)
    page = w.page
    page.goto(live_server.base_url + "/")
    page.locator("#signin-key").wait_for(timeout=10_000)
    page.fill("#signin-key", "grk_not-a-real-key-0000000000000000")
    page.click("#signin button[type=submit]")
    page.wait_for_function(
        "() => document.getElementById('signin-error').textContent.includes('unknown')",
        timeout=5_000,
    )
    page.fill("#signin-key", key_for(live_server.url, "tile_reader"))
    page.click("#signin button[type=submit]")
    page.wait_for_selector("#whoami", timeout=10_000)
    assert "tile_reader" in page.inner_text("#whoami")
    page.wait_for_function(
        "() => document.querySelectorAll('#layer-list input').length > 0", timeout=10_000
    )
    names = page.eval_on_selector_all("#layer-list input", "els => els.map(e => e.dataset.layer)")
    assert "enterprises" in names and "alerts" not in names and "tankers" not in names
    assert page.locator("#alerts").is_hidden() and page.locator("#summary").is_hidden()
    page.click("#signout")
    page.locator("#signin-key").wait_for(timeout=10_000)
    # The unknown key's 401 is the one console error this flow may produce.
    assert [e for e in w.errors if "401" not in e] == []
    w.context.close()
