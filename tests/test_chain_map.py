"""The transport chain on the web map (issue 14 items 5–6), in a real browser: waybill routes
drawn where the database has them, their popup, a carrier's key seeing its own waybills only,
and the officer's department queue with deadlines, counts and the disposal rate.

Everything lives in the district CM-1 of this module (far from the demo city) and is removed at
the end: two carriers X and Y with a vehicle and crew each, X's waybills planned today, on the
road since two days, delivered three days ago; Y's planned today; alerts of both vehicles,
routed by the ``route_alert`` trigger as any engine's would be.
"""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import psycopg
import pytest

from layers.core import vocab
from layers.core.partitions import ensure_daily_partitions
from tests.conftest import LiveServer, key_for
from tests.planting import id_card
from tests.test_web import CHROMIUM, Watched
from tests.test_web import browser as browser  # the module-scoped chromium fixture

pytestmark = pytest.mark.skipif(
    not CHROMIUM.exists(), reason="needs Debian's chromium (tests/ensure_browser.py)"
)

DISTRICT = "CM-1"
LON, LAT = 127.83, 36.62
TAG = "773015"
ROUTE = [[LON - 0.03, LAT - 0.01], [LON, LAT + 0.004], [LON + 0.03, LAT + 0.012]]
SHOTS = Path(__file__).resolve().parent.parent / ".data" / "screenshots"


def _now() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


@pytest.fixture(scope="module")
def plant(database_url: str, live_server: LiveServer) -> Iterator[dict[str, Any]]:
    conn = psycopg.connect(database_url, autocommit=True)
    conn.execute(
        "INSERT INTO districts (code, name, geom) VALUES (%s, 'chain map district',"
        " ST_Multi(ST_MakeEnvelope(%s, %s, %s, %s, 4326)))",
        (DISTRICT, LON - 0.2, LAT - 0.2, LON + 0.2, LAT + 0.2),
    )
    out: dict[str, Any] = {"conn": conn}

    def enterprise(n: int, name: str, category: str, dx: float) -> int:
        (eid,) = conn.execute(
            "INSERT INTO enterprises (credit_code, name, category, is_hazmat, district, geom)"
            " VALUES (%s, %s, %s, true, %s, ST_SetSRID(ST_Point(%s, %s), 4326)) RETURNING id",
            (f"91330200{TAG}{n:04d}", name, category, DISTRICT, LON + dx, LAT + dx / 3),
        ).fetchone()
        return int(eid)

    out["x"] = enterprise(1, f"链图承运X{TAG}", "transport", -0.03)
    out["y"] = enterprise(2, f"链图承运Y{TAG}", "transport", 0.05)
    out["shipper"] = enterprise(3, f"链图发货{TAG}", "storage", -0.031)
    out["consignee"] = enterprise(4, f"链图收货{TAG}", "use", 0.031)
    for key in ("x", "y"):
        conn.execute(
            "INSERT INTO carriers (enterprise_id, licence_no, licence_expiry)"
            " VALUES (%s, %s, current_date + 365)",
            (out[key], f"L{key.upper()}{TAG}"),
        )
    for n, key in enumerate(("x", "y")):
        (vid,) = conn.execute(
            "INSERT INTO vehicles (plate, carrier, enterprise_id, hazmat_class, un_number,"
            " capacity_t, district, tank_type, tank_volume_m3, road_permit_no,"
            " road_permit_expiry, tank_inspection_expiry) VALUES (%s, %s, %s, '3', '1203', 30,"
            " %s, 'atmospheric', 40, %s, current_date + 200, current_date + 100) RETURNING id",
            (f"浙C{TAG[-4:]}{n}", f"链图承运{key.upper()}{TAG}", out[key], DISTRICT, f"P{TAG}{n}"),
        ).fetchone()
        out[f"v{key}"] = int(vid)

    def person(n: int, carrier: str, role: str, name: str) -> int:
        (pid,) = conn.execute(
            "INSERT INTO crew_members (carrier_id, name, id_card_no, role, certificate_no,"
            " certificate_expiry, phone) VALUES (%s, %s, %s, %s, %s, current_date + 300,"
            " '13800001234') RETURNING id",
            (out[carrier], name, id_card(f"3302031991{TAG}{n}"), role, f"CM{TAG}{n}"),
        ).fetchone()
        return int(pid)

    out["driver"] = person(1, "x", "driver", "张驾驶")
    out["escort"] = person(2, "x", "escort", "李押运")
    out["y_driver"] = person(3, "y", "driver", "王驾驶")

    now = _now()

    def waybill(code: str, carrier: str, start: dt.datetime, hours: float, dy: float) -> int:
        props = {
            "code": code,
            "shipper_id": out["shipper"],
            "carrier_id": out[carrier],
            "consignee_id": out["consignee"],
            "loading_party_id": out["shipper"],
            "substance_name": "汽油",
            "un_number": "1203",
            "hazmat_class": "3",
            "quantity_t": 20,
            "vehicle_id": out[f"v{carrier}"],
            "driver_id": out["driver"] if carrier == "x" else out["y_driver"],
            "escort_id": out["escort"] if carrier == "x" else None,
            "origin_id": out["shipper"],
            "destination_id": out["consignee"],
            "corridor_m": 300,
            "planned_departure": start.isoformat(),
            "planned_arrival": (start + dt.timedelta(hours=hours)).isoformat(),
        }
        # Each its own line (``dy`` degrees north of ROUTE), so a click finds one waybill.
        line = [[x, y + dy] for x, y in ROUTE]
        feature = {
            "type": "Feature",
            "geometry": {"type": "LineString", "coordinates": line},
            "properties": props,
        }
        with live_server.client() as admin:
            r = admin.post("/api/waybills", json=feature)
        assert r.status_code == 201, r.text
        return int(r.json()["id"])

    out["today"] = waybill(f"CM{TAG}-1", "x", now - dt.timedelta(hours=1), 4, 0)
    out["on_road"] = waybill(f"CM{TAG}-2", "x", now - dt.timedelta(days=2), 3, 0.02)
    out["old"] = waybill(f"CM{TAG}-3", "x", now - dt.timedelta(days=3), 3, 0.04)
    out["theirs"] = waybill(f"CM{TAG}-4", "y", now - dt.timedelta(hours=2), 5, -0.02)
    conn.execute("UPDATE waybills SET state = 'in_transit' WHERE id = %s", (out["on_road"],))
    conn.execute("UPDATE waybills SET state = 'delivered' WHERE id = %s", (out["old"],))

    # The vehicle's latest fix, stored as ingest stores it (straight into the table: the
    # warning models the ingest runs would otherwise add alerts of their own to this vehicle).
    out["fix"] = (LON + 0.01, LAT + 0.027)
    fixed_at = now.replace(microsecond=0) - dt.timedelta(minutes=1)
    ensure_daily_partitions(conn, "positions", {fixed_at.date()})
    conn.execute(
        "INSERT INTO positions (vehicle_id, ts, lon, lat, speed_kmh, heading)"
        " VALUES (%s, %s, %s, %s, 42, 60)",
        (out["vx"], fixed_at, *out["fix"]),
    )

    def alert(vehicle: str, rule: str, minutes: int, ack_in_s: int) -> int:
        (aid,) = conn.execute(
            "INSERT INTO alerts (vehicle_id, rule, episode_start, district, enterprise_id, geom,"
            " ack_deadline, dispose_deadline) VALUES (%s, %s, now() - %s * interval '1 minute',"
            " %s, %s, ST_SetSRID(ST_Point(%s, %s), 4326), now() + %s * interval '1 second',"
            " now() + interval '4 h') RETURNING id",
            (out[f"v{vehicle}"], rule, minutes, DISTRICT, out[vehicle], LON, LAT, ack_in_s),
        ).fetchone()
        return int(aid)

    out["alerts"] = {
        "no_escort": alert("x", "no_escort", 50, 900),  # transport + traffic police
        "overspeed": alert("x", "overspeed", 40, 1800),  # traffic police
        "forbidden": alert("y", "forbidden_zone_parking", 30, 1800),  # traffic police + EM
        "power": alert("y", "terminal_power_cut", 20, 1800),  # transport only
        "late": alert("x", "restricted_hours", 90, 600),  # traffic police
    }
    # Its acknowledgement now overdue (a route's own deadline replaces the one inserted).
    conn.execute(
        "UPDATE alerts SET ack_deadline = now() - interval '10 minutes' WHERE id = %s",
        (out["alerts"]["late"],),
    )
    out["officer"] = key_for(live_server.url, "officer", districts=[DISTRICT])
    yield out
    conn.execute("DELETE FROM alerts WHERE district = %s", (DISTRICT,))
    ids = [out[k] for k in ("today", "on_road", "old", "theirs")]
    conn.execute("DELETE FROM waybill_events WHERE waybill_id = ANY(%s)", (ids,))
    conn.execute("DELETE FROM waybills WHERE id = ANY(%s)", (ids,))
    conn.close()


def _open_map(w: Watched, base: str, layers: str = "districts,waybills") -> Any:
    page = w.page
    page.goto(f"{base}/?layers={layers}")
    # The opening view's waybills first, then those of the planted district's view.
    page.wait_for_function("() => GeoRisk.waybills && GeoRisk.waybills.loads > 0", timeout=20_000)
    loads = page.evaluate("() => GeoRisk.waybills.loads")
    page.evaluate("([lat, lon]) => GeoRisk.map.setView([lat, lon], 13)", [LAT, LON])
    page.wait_for_function("(n) => GeoRisk.waybills.loads > n", arg=loads, timeout=15_000)
    return page


def _drawn_ids(page: Any) -> list[int]:
    return sorted(page.evaluate("() => [...GeoRisk.waybills.drawn.keys()]"))


def _zoom_in(page: Any) -> None:
    """Zoom 14 over the planted routes, once the view's waybills are drawn again."""
    loads = page.evaluate("() => GeoRisk.waybills.loads")
    page.evaluate("([lat, lon]) => GeoRisk.map.setView([lat, lon], 14)", [LAT + 0.01, LON])
    page.wait_for_function("(n) => GeoRisk.waybills.loads > n", arg=loads, timeout=15_000)


def _click_at(page: Any, lat: float, lon: float) -> None:
    xy = page.evaluate(
        "([lat, lon]) => { const p = GeoRisk.map.latLngToContainerPoint([lat, lon]);"
        " const r = document.getElementById('map').getBoundingClientRect();"
        " return [r.left + p.x, r.top + p.y]; }",
        [lat, lon],
    )
    page.mouse.click(xy[0], xy[1])


def _flat(coords: Any) -> list[float]:
    """Every number of a GeoJSON coordinate array, in order (lon, lat, lon, lat …)."""
    if isinstance(coords, (int, float)):
        return [float(coords)]
    return [n for c in coords for n in _flat(c)]


def test_the_days_filter_keeps_waybills_on_the_road_and_those_planned_that_day(
    client: httpx.Client, plant: dict[str, Any]
) -> None:
    """What the map asks for: ``active_from``/``active_to`` (declared on the catalogue)."""
    planted = {plant[k] for k in ("today", "on_road", "old", "theirs")}

    def listed(start: dt.datetime, end: dt.datetime) -> set[int]:
        r = client.get(
            "/api/waybills",
            params={
                "active_from": start.isoformat(),
                "active_to": end.isoformat(),
                "district": DISTRICT,
                "limit": 1000,
            },
        )
        assert r.status_code == 200, r.text
        return {f["id"] for f in r.json()["features"]} & planted

    now = _now()
    assert listed(now - dt.timedelta(hours=12), now + dt.timedelta(hours=12)) == {
        plant["today"],
        plant["on_road"],
        plant["theirs"],
    }
    # Three days ago: the delivered one was planned then; the one in transit is on the road.
    three = now - dt.timedelta(days=3)
    assert listed(three, three + dt.timedelta(hours=2)) == {plant["old"], plant["on_road"]}
    # Next week: only what is on the road.
    week = now + dt.timedelta(days=7)
    assert listed(week, week + dt.timedelta(days=1)) == {plant["on_road"]}
    bad = client.get("/api/waybills", params={"active_from": "today"})
    assert bad.status_code == 400 and "active_from" in bad.text
    doc = client.get("/openapi.json").json()["paths"]["/api/waybills"]["get"]["parameters"]
    described = {p["name"]: p["description"] for p in doc}
    assert described["active_to"] == "on the road, or planned to depart before this time"


def test_the_waybill_layer_draws_the_routes_the_database_holds(
    browser: Any, live_server: LiveServer, client: httpx.Client, plant: dict[str, Any]
) -> None:
    feature = client.get(f"/api/waybills/{plant['today']}").json()
    on_road = client.get(f"/api/waybills/{plant['on_road']}").json()
    w = Watched(browser, live_server.base_url, key_for(live_server.url))
    try:
        page = _open_map(w, live_server.base_url)
        ids = _drawn_ids(page)
        # Planned today and on the road: drawn; delivered three days ago: not.
        mine = {plant["today"], plant["on_road"], plant["theirs"]}
        assert mine <= set(ids) and plant["old"] not in ids
        drawn = page.evaluate(
            "(id) => { const d = GeoRisk.waybills.drawn.get(id);"
            " const ll = (x) => [x.lng, x.lat];"
            " return { route: d.route.getLatLngs().map(ll),"
            "  corridor: d.corridor.getLatLngs().flat(3).map(ll),"
            "  origin: ll(d.origin.getLatLng()), destination: ll(d.destination.getLatLng()),"
            "  color: d.route.options.color, dash: d.route.options.dashArray }; }",
            plant["today"],
        )
        # The route exactly where the database has it (the API's 7 decimals), vertex by vertex.
        route = _flat(drawn["route"])
        assert route == pytest.approx(_flat(feature["geometry"]["coordinates"]), abs=1e-7)
        assert route == pytest.approx(_flat(ROUTE), abs=1e-7)
        corridor = _flat(feature["properties"]["corridor"]["coordinates"])
        # Leaflet leaves out a ring's closing vertex (the first one repeated).
        drawn_corridor = _flat(drawn["corridor"])
        assert len(drawn_corridor) == len(corridor) - 2 > 16
        assert drawn_corridor == pytest.approx(corridor[:-2], abs=1e-6)
        props = feature["properties"]
        assert drawn["origin"] == pytest.approx(props["origin"]["coordinates"], abs=1e-7)
        assert drawn["destination"] == pytest.approx(props["destination"]["coordinates"], abs=1e-7)
        # Styled by state: planned is a dashed purple line, in transit a solid green one.
        styles = page.evaluate("() => GeoRisk.waybills.STYLES")
        assert drawn["color"] == styles["planned"]["color"] and drawn["dash"]
        road = page.evaluate(
            "(id) => GeoRisk.waybills.drawn.get(id).route.options", plant["on_road"]
        )
        assert road["color"] == styles["in_transit"]["color"] != drawn["color"]
        assert on_road["properties"]["state"] == "in_transit" and not road.get("dashArray")

        # The switch in the layer panel takes it off the map and back.
        assert page.locator(".leaflet-waybills-pane path").count() >= 4 * 3
        page.uncheck("#waybills-on")
        assert page.locator(".leaflet-waybills-pane path").count() == 0
        loads = page.evaluate("() => GeoRisk.waybills.loads")
        page.check("#waybills-on")
        page.wait_for_function("(n) => GeoRisk.waybills.loads > n", arg=loads, timeout=15_000)
        assert plant["today"] in _drawn_ids(page)
        assert w.errors == [] and w.foreign == []
    finally:
        w.context.close()


def test_the_popup_tells_goods_crew_times_and_live_position_and_links_the_alerts(
    browser: Any, live_server: LiveServer, plant: dict[str, Any]
) -> None:
    """An officer of the district: the crew's phones come masked, as the API gives them."""
    w = Watched(browser, live_server.base_url, plant["officer"])
    try:
        page = _open_map(w, live_server.base_url)
        # The middle of the route's first segment: on the line, away from the end markers.
        (a_lon, a_lat), (b_lon, b_lat) = ROUTE[0], ROUTE[1]
        _zoom_in(page)
        _click_at(page, (a_lat + b_lat) / 2, (a_lon + b_lon) / 2)
        page.wait_for_selector(".wb-popup .wb-code", timeout=10_000)
        page.wait_for_function("() => document.querySelector('.wb-popup .wb-live')", timeout=10_000)
        text = page.inner_text(".wb-popup")
        assert f"CM{TAG}-1" in page.inner_text(".wb-popup .wb-code")
        for shown in (
            "汽油",
            "UN 1203",
            "3 类 class",
            "20 t",
            f"链图承运X{TAG}",
            f"浙C{TAG[-4:]}0",
            "张驾驶",
            "李押运",
            "计划 planned",
        ):
            assert shown in text, shown
        assert page.get_attribute(".wb-popup .wb-state", "data-state") == "planned"
        # Personal data as the API gives an officer: masked, never whole.
        phones = page.eval_on_selector_all(
            ".wb-popup .wb-phone", "els => els.map(e => e.textContent)"
        )
        assert phones == ["138****1234", "138****1234"]
        assert "13800001234" not in text
        # The vehicle's live position: the fix it reported.
        live = page.inner_text(".wb-popup .wb-live")
        assert live == f"{plant['fix'][1]:.5f}, {plant['fix'][0]:.5f}"
        assert page.evaluate("() => Boolean(GeoRisk.waybills.vehicle)")
        SHOTS.mkdir(parents=True, exist_ok=True)
        page.screenshot(path=str(SHOTS / "waybill_popup.png"))
        # The vehicle's waybill alerts (no_escort, restricted_hours), one click from the panel.
        link = page.inner_text(".wb-popup .wb-alerts-link")
        assert link.startswith("2 条运单类告警")
        page.click(".wb-popup .wb-alerts-link")
        page.wait_for_selector("#alerts-filter:not([hidden])", timeout=5_000)
        page.wait_for_function(
            "() => document.querySelectorAll('#alerts-list li[data-alert]').length === 2",
            timeout=10_000,
        )
        listed = page.eval_on_selector_all(
            "#alerts-list li[data-alert]", "els => els.map(e => +e.dataset.alert)"
        )
        assert sorted(listed) == sorted([plant["alerts"]["no_escort"], plant["alerts"]["late"]])
        assert w.errors == [] and w.foreign == []
    finally:
        w.context.close()


def test_a_carriers_key_sees_only_its_own_waybills_on_the_map(
    browser: Any, live_server: LiveServer, plant: dict[str, Any]
) -> None:
    carrier = key_for(live_server.url, "enterprise", enterprise_id=plant["x"])
    w = Watched(browser, live_server.base_url, carrier)
    try:
        page = _open_map(w, live_server.base_url)
        ids = _drawn_ids(page)
        assert ids == sorted([plant["today"], plant["on_road"]])
        with live_server.client(key=carrier) as http:
            listed = http.get("/api/waybills", params={"limit": 1000})
            api = listed.json()["features"]
        # A caller's view is never kept by a shared cache for another caller.
        assert listed.headers["cache-control"] == "private, no-cache"
        assert {f["properties"]["carrier_id"] for f in api} == {plant["x"]}
        # Its own crew's phone whole (a carrier reads its own personal data).
        (a_lon, a_lat), (b_lon, b_lat) = ROUTE[1], ROUTE[2]
        _zoom_in(page)
        _click_at(page, (a_lat + b_lat) / 2, (a_lon + b_lon) / 2)
        page.wait_for_selector(".wb-popup .wb-phone", timeout=10_000)
        assert "13800001234" in page.inner_text(".wb-popup")
        assert page.locator("#alerts").is_hidden()
        assert w.errors == [] and w.foreign == []
    finally:
        w.context.close()


def test_every_rule_and_department_has_its_label(
    browser: Any, live_server: LiveServer, plant: dict[str, Any]
) -> None:
    w = Watched(browser, live_server.base_url, plant["officer"])
    try:
        page = w.page
        page.goto(live_server.base_url + "/?layers=districts")
        page.wait_for_selector("#alerts-department option", state="attached", timeout=20_000)
        labels = page.evaluate("() => GeoRisk.RULE_LABELS")
        assert set(labels) == set(vocab.ALERT_RULES)
        assert all(re.search(r"[\u4e00-\u9fff]", zh) and en for zh, en in labels.values())
        assert page.evaluate("() => GeoRisk.WAYBILL_RULES") == list(vocab.WARNING_MODEL_RULES)
        options = page.eval_on_selector_all(
            "#alerts-department option", "els => els.map(e => e.value)"
        )
        assert options == ["", *vocab.DEPARTMENTS]
        assert set(page.evaluate("() => Object.keys(GeoRisk.WAYBILL_STATES)")) == set(
            vocab.WAYBILL_STATES
        )
        assert set(page.evaluate("() => Object.keys(GeoRisk.ALERT_STATUSES)")) == set(
            vocab.ALERT_STATUSES
        )
    finally:
        w.context.close()


def _status_counts(page: Any) -> dict[str, int]:
    return page.evaluate(
        "() => Object.fromEntries([...document.querySelectorAll('#alerts-counts .count')]"
        ".map(e => [e.dataset.status, +e.querySelector('b').textContent]))"
    )


def test_the_officer_works_the_traffic_police_queue(
    browser: Any, live_server: LiveServer, plant: dict[str, Any]
) -> None:
    a = plant["alerts"]
    w = Watched(browser, live_server.base_url, plant["officer"])
    try:
        page = w.page
        page.goto(live_server.base_url + "/?layers=districts")
        page.wait_for_selector("#alerts-department option", state="attached", timeout=20_000)
        page.select_option("#alerts-department", "traffic_police")
        with live_server.client(key=plant["officer"]) as http:
            api = http.get(
                "/api/alerts", params={"department": "traffic_police", "f": "json"}
            ).json()
            stats = http.get("/api/alerts/stats", params={"department": "traffic_police"}).json()
        expected = {x["id"] for x in api["alerts"]}
        assert expected == {a["no_escort"], a["overspeed"], a["forbidden"], a["late"]}
        page.wait_for_function(
            "(n) => document.querySelectorAll('#alerts-list li[data-alert]').length === n"
            " && document.querySelectorAll('#alerts-counts .count').length === 4",
            arg=api["numberMatched"],
            timeout=10_000,
        )
        listed = page.eval_on_selector_all(
            "#alerts-list li[data-alert]", "els => els.map(e => +e.dataset.alert)"
        )
        assert set(listed) == expected and len(listed) == api["numberMatched"]
        assert page.get_attribute("#alerts-count", "data-count") == str(api["numberMatched"])
        assert _status_counts(page) == stats["overall"]["by_status"]
        assert _status_counts(page)["new"] == 4
        assert "处置率 disposal rate" in page.inner_text("#alerts-rate")
        # Chinese and English rule names; the overdue acknowledgement stands out.
        late = page.locator(f'#alerts-list li[data-alert="{a["late"]}"]')
        assert "限行时段通行 restricted hours" in late.inner_text()
        assert "overdue" in (late.get_attribute("class") or "")
        assert "逾期 overdue" in late.locator(".due.overdue").inner_text()
        fine = page.locator(f'#alerts-list li[data-alert="{a["overspeed"]}"]')
        assert "overdue" not in (fine.get_attribute("class") or "")
        assert "超速 overspeed" in fine.inner_text() and "限 due" in fine.inner_text()
        SHOTS.mkdir(parents=True, exist_ok=True)
        page.screenshot(path=str(SHOTS / "officer_queue.png"))

        # Acknowledge one: the item and the counts follow, and the API holds it.
        page.click(f'#alerts-list li[data-alert="{a["overspeed"]}"] button[data-ack]')
        page.wait_for_function(
            '(id) => document.querySelector(`#alerts-list li[data-alert="${id}"]`)'
            ".dataset.status === 'acknowledged'",
            arg=a["overspeed"],
            timeout=10_000,
        )
        page.wait_for_function(
            "() => +document.querySelector('#alerts-counts .count[data-status=\"new\"] b')"
            ".textContent === 3",
            timeout=10_000,
        )
        counts = _status_counts(page)
        assert counts["new"] == 3 and counts["acknowledged"] == 1
        with live_server.client(key=plant["officer"]) as http:
            one = http.get(f"/api/alerts/{a['overspeed']}").json()["properties"]
        assert one["status"] == "acknowledged"

        # The choice is remembered; another queue shows its own alerts only.
        page.reload()
        page.wait_for_function(
            "() => document.getElementById('alerts-department').value === 'traffic_police'"
            " && document.querySelectorAll('#alerts-list li[data-alert]').length === 4",
            timeout=20_000,
        )
        page.select_option("#alerts-department", "transport")
        page.wait_for_function(
            "() => document.querySelectorAll('#alerts-counts .count').length === 4"
            " && document.getElementById('alerts-count').dataset.count === '2'",
            timeout=10_000,
        )
        listed = page.eval_on_selector_all(
            "#alerts-list li[data-alert]", "els => els.map(e => +e.dataset.alert)"
        )
        assert set(listed) == {a["no_escort"], a["power"]}
        assert w.errors == [] and w.foreign == []
    finally:
        w.context.close()


def test_offline_keeps_the_queue_with_a_stale_marker(
    browser: Any, live_server: LiveServer, plant: dict[str, Any]
) -> None:
    w = Watched(browser, live_server.base_url, plant["officer"])
    try:
        page = w.page
        page.goto(live_server.base_url + "/?layers=districts")
        page.wait_for_selector("#alerts-department option", state="attached", timeout=20_000)
        page.select_option("#alerts-department", "traffic_police")
        page.wait_for_function(
            "() => document.querySelectorAll('#alerts-list li[data-alert]').length === 4",
            timeout=10_000,
        )
        before = sorted(
            page.eval_on_selector_all(
                "#alerts-list li[data-alert]", "els => els.map(e => +e.dataset.alert)"
            )
        )
        w.context.set_offline(True)
        # Choosing the queue again must read the server, fail, and still show what it knew.
        page.select_option("#alerts-department", "")
        page.select_option("#alerts-department", "traffic_police")
        page.wait_for_selector("#alerts-stale:not([hidden])", timeout=15_000)
        assert "offline" in page.inner_text("#alerts-stale")
        after = sorted(
            page.eval_on_selector_all(
                "#alerts-list li[data-alert]", "els => els.map(e => +e.dataset.alert)"
            )
        )
        assert after == before
        w.context.set_offline(False)
        page.select_option("#alerts-department", "transport")
        page.wait_for_selector("#alerts-stale", state="hidden", timeout=15_000)
    finally:
        w.context.close()
