"""The map never lies (issue 13), checked where a regulator sees it: in a real browser.

Each scenario has a corner of its own far from the demo city (126.6–126.9 E, 34.3–34.5 N), so the
page's view holds only what the test put there.
"""

from __future__ import annotations

import itertools
from collections.abc import Iterator
from typing import Any

import h3
import httpx
import mapbox_vector_tile
import psycopg
import pytest

from tests.conftest import key_for
from tests.test_web import CHROMIUM, Watched
from tests.test_web import browser as browser  # the module-scoped chromium fixture

pytestmark = pytest.mark.skipif(
    not CHROMIUM.exists(), reason="needs Debian's chromium (tests/ensure_browser.py)"
)

DISTRICT = "LM-1"
_serial = itertools.count(1)


@pytest.fixture(scope="module")
def corner(database_url: str) -> Iterator[psycopg.Connection]:
    conn = psycopg.connect(database_url, autocommit=True)
    conn.execute(
        "INSERT INTO districts (code, name, geom) VALUES (%s, 'live map',"
        " ST_Multi(ST_MakeEnvelope(126.6, 34.3, 126.9, 34.5, 4326)))",
        (DISTRICT,),
    )
    yield conn
    conn.execute(
        "DELETE FROM hidden_dangers WHERE enterprise_id IN"
        " (SELECT id FROM enterprises WHERE district = %s)",
        (DISTRICT,),
    )
    # The state's link to its alarm has no ON DELETE action (migration 0021): clear it first.
    conn.execute(
        "UPDATE monitoring_state SET alarm_id = NULL WHERE point_id IN (SELECT mp.id"
        " FROM monitoring_points mp JOIN hazard_sources h ON h.id = mp.hazard_source_id"
        " JOIN enterprises e ON e.id = h.enterprise_id WHERE e.district = %s)",
        (DISTRICT,),
    )
    conn.execute(
        "DELETE FROM alarms WHERE point_id IN (SELECT mp.id FROM monitoring_points mp"
        " JOIN hazard_sources h ON h.id = mp.hazard_source_id JOIN enterprises e"
        " ON e.id = h.enterprise_id WHERE e.district = %s)",
        (DISTRICT,),
    )
    conn.execute(
        "DELETE FROM monitoring_points WHERE hazard_source_id IN (SELECT h.id FROM"
        " hazard_sources h JOIN enterprises e ON e.id = h.enterprise_id WHERE e.district = %s)",
        (DISTRICT,),
    )
    conn.execute(
        "DELETE FROM hazard_sources WHERE enterprise_id IN"
        " (SELECT id FROM enterprises WHERE district = %s)",
        (DISTRICT,),
    )
    conn.execute("DELETE FROM enterprises WHERE district = %s", (DISTRICT,))
    conn.execute("DELETE FROM districts WHERE code = %s", (DISTRICT,))
    conn.close()


def _post_enterprise(client: httpx.Client, lon: float, lat: float, score: float | None) -> int:
    n = next(_serial)
    props: dict[str, Any] = {
        "credit_code": f"91330200LM{n:08d}",
        "name": f"live map plant {n}",
        "category": "storage",
        "is_hazmat": True,
        "district": DISTRICT,
    }
    if score is not None:
        props["diagnosis_score"] = score
    r = client.post(
        "/api/enterprises",
        json={
            "type": "Feature",
            "geometry": {"type": "Point", "coordinates": [lon, lat]},
            "properties": props,
        },
    )
    assert r.status_code == 201, r.text
    return int(r.json()["id"])


def _open_map(w: Watched, base: str, lon: float, lat: float, zoom: int, layers: str) -> None:
    page = w.page
    page.goto(f"{base}/?layers={layers}")
    page.wait_for_function("() => GeoRisk.stats.tilesLoaded > 0", timeout=15_000)
    page.evaluate(
        "([lat, lon, z]) => GeoRisk.map.setView([lat, lon], z, {animate: false})",
        [lat, lon, zoom],
    )
    page.wait_for_function("() => GeoRisk.stats.live === 'live'", timeout=15_000)
    page.wait_for_timeout(800)  # the view's tiles


#: Wraps the page's fetch: every .mvt body it receives is kept (base64) in order.
RECORD_TILES = """
(() => {
  const real = window.fetch;
  window.__tiles = [];
  window.fetch = async (...args) => {
    const r = await real(...args);
    const url = String(args[0]);
    if (url.includes('.mvt') && r.ok) {
      const buf = new Uint8Array(await r.clone().arrayBuffer());
      let s = '';
      for (let i = 0; i < buf.length; i += 1) s += String.fromCharCode(buf[i]);
      window.__tiles.push([url, btoa(s)]);
    }
    return r;
  };
})();
"""


def _recorded_tiles(w: Watched, since_version: int) -> list[bytes]:
    import base64

    rows = w.page.evaluate("() => window.__tiles")
    return [base64.b64decode(b) for url, b in rows if since_version <= _version(url)]


def _version(url: str) -> int:
    from urllib.parse import parse_qs, urlsplit

    return int(parse_qs(urlsplit(url).query).get("v", ["0"])[0])


def _drawn(w: Watched, key: str) -> Any:
    return w.page.evaluate("(k) => GeoRisk.stats.colors[k]", key)


def _pixel(w: Watched, lon: float, lat: float) -> list[int]:
    """The canvas pixel where the map draws ``lon, lat`` (RGBA)."""
    return list(
        w.page.evaluate(
            """([lat, lon]) => {
                const p = GeoRisk.map.latLngToContainerPoint([lat, lon]);
                const m = document.getElementById('map').getBoundingClientRect();
                const x = m.left + p.x, y = m.top + p.y;
                for (const c of document.querySelectorAll('.leaflet-tile-container canvas')) {
                    const r = c.getBoundingClientRect();
                    if (x < r.left || x >= r.right || y < r.top || y >= r.bottom) continue;
                    const d = c.getContext('2d').getImageData(
                        Math.floor((x - r.left) * c.width / r.width),
                        Math.floor((y - r.top) * c.height / r.height), 1, 1).data;
                    if (d[3] > 0) return Array.from(d);
                }
                return [0, 0, 0, 0];
            }""",
            [lat, lon],
        )
    )


def test_a_major_hidden_danger_appears_without_interaction(
    browser: Any, live_server: Any, client: httpx.Client, corner: psycopg.Connection
) -> None:
    lon, lat = 126.71, 34.41
    ent = _post_enterprise(client, lon, lat, 80)  # diagnosis 80: yellow
    w = Watched(browser, live_server.base_url, key_for(live_server.url))
    # Keep a copy of every tile body the page's own fetch receives (what the page drew from).
    w.page.add_init_script(RECORD_TILES)

    try:
        _open_map(w, live_server.base_url, lon, lat, 16, "enterprises")
        assert _drawn(w, f"enterprises:{ent}") == "yellow"
        refreshed = w.page.evaluate("() => GeoRisk.stats.tilesRefreshed")
        r = client.post(
            f"/api/enterprises/{ent}/hidden-dangers",
            json={"title": "emergency shut-off missing on the tank farm", "is_major": True},
        )
        assert r.status_code == 201, r.text
        # Within 3 s, with nobody touching the map: the page drew the raised colour ...
        w.page.wait_for_function(
            "(k) => GeoRisk.stats.colors[k] === 'orange'", arg=f"enterprises:{ent}", timeout=3000
        )
        assert w.page.evaluate("() => GeoRisk.stats.tilesRefreshed") > refreshed
        # ... from a tile it fetched that says orange ...
        colours = []
        for body in _recorded_tiles(w, since_version=0):
            for f in mapbox_vector_tile.decode(body).get("enterprises", {}).get("features", []):
                if f["id"] == ent:
                    colours.append(f["properties"]["color"])
        assert colours[0] == "yellow" and colours[-1] == "orange", colours
        # ... and the canvas shows it (#FF8C00 at 0.9 opacity over the map's background).
        red, green, blue, _ = _pixel(w, lon, lat)
        assert red > 200 and 110 < green < 190 and blue < 90, (red, green, blue)
        assert w.errors == []
    finally:
        w.context.close()


def test_a_new_role_on_the_same_page_never_gets_the_old_roles_tiles(
    browser: Any, live_server: Any, client: httpx.Client, corner: psycopg.Connection
) -> None:
    """An administrator signs out, a tile reader signs in in the same browser: no field the
    tile reader may not see (substance inventories, R) reaches the page, cache or no cache."""
    lon, lat = 126.76, 34.43
    ent = _post_enterprise(client, lon, lat, 85)
    r = client.post(
        "/api/hazard-sources",
        json={
            "type": "Feature",
            "geometry": {
                "type": "Polygon",
                "coordinates": [
                    [
                        [lon - 0.0005, lat - 0.0005],
                        [lon + 0.0005, lat - 0.0005],
                        [lon + 0.0005, lat + 0.0005],
                        [lon - 0.0005, lat + 0.0005],
                        [lon - 0.0005, lat - 0.0005],
                    ]
                ],
            },
            "properties": {
                "enterprise_id": ent,
                "code": "LM-T1",
                "unit_name": "chlorine store",
                "unit_kind": "storage",
                "population_500m": 60,
                "substances": [{"name": "氯", "cas": "7782-50-5", "q": 12.5}],
            },
        },
    )
    assert r.status_code == 201, r.text
    base = live_server.base_url
    w = Watched(browser, base, key_for(live_server.url))
    try:
        _open_map(w, base, lon, lat, 17, "hazard_sources")
        admin_props = w.page.evaluate("() => Object.keys(GeoRisk.stats.props.hazard_sources)")
        assert {"substances", "R"} <= set(admin_props)  # the admin saw the inventory
        # Sign out and in as a tile reader, in this very browser (same HTTP cache); the page
        # is left first, as the sign-out button does (its open stream would get a 401).
        w.page.goto("about:blank")
        assert w.context.request.delete(base + "/api/auth/session").ok
        reader = key_for(live_server.url, "tile_reader")
        assert w.context.request.post(base + "/api/auth/session", data={"key": reader}).ok
        w.page.add_init_script(RECORD_TILES)
        _open_map(w, base, lon, lat, 17, "hazard_sources")
        props = w.page.evaluate("() => Object.keys(GeoRisk.stats.props.hazard_sources || {})")
        assert props and not {"substances", "R"} & set(props), props
        bodies = _recorded_tiles(w, since_version=0)
        assert bodies, "the tile reader's page fetched its tiles"
        for body in bodies:
            for f in mapbox_vector_tile.decode(body).get("hazard_sources", {}).get("features", []):
                assert "substances" not in f["properties"] and "R" not in f["properties"]
        assert w.errors == []
    finally:
        w.context.close()


def test_hexagons_turn_red_when_a_red_enterprise_appears_in_a_blue_cell(
    browser: Any, live_server: Any, client: httpx.Client, corner: psycopg.Connection
) -> None:
    lon, lat = 126.82, 34.46
    _post_enterprise(client, lon, lat, 95)  # blue
    zoom = 14
    res = max(5, min(10, zoom - 4))
    cell = h3.latlng_to_cell(lat, lon, res)
    w = Watched(browser, live_server.base_url, key_for(live_server.url))
    try:
        w.page.goto(f"{live_server.base_url}/?layers=districts")
        w.page.wait_for_function("() => GeoRisk.stats.tilesLoaded > 0", timeout=15_000)
        w.page.check("#hex-mode")
        w.page.evaluate(
            "([lat, lon, z]) => GeoRisk.map.setView([lat, lon], z, {animate: false})",
            [lat, lon, zoom],
        )
        key = f"h3_enterprises:{cell}"
        w.page.wait_for_function(
            "(k) => GeoRisk.stats.colors[k] === 'blue'", arg=key, timeout=15_000
        )
        w.page.wait_for_function("() => GeoRisk.stats.live === 'live'", timeout=10_000)
        _post_enterprise(client, lon + 0.0003, lat, 50)  # red, in the same cell
        w.page.wait_for_function(
            "(k) => GeoRisk.stats.colors[k] === 'red'", arg=key, timeout=10_000
        )
        assert w.errors == []
    finally:
        w.context.close()


def _popup_reasons(w: Watched, lon: float, lat: float) -> list[str]:
    """Click the enterprise drawn at ``lon, lat`` and read its popup's reasons (English)."""
    from tests.test_web import _click_at

    _click_at(w.page, lon, lat)
    w.page.wait_for_selector(".leaflet-popup-content .reasons li", timeout=10_000)
    return [t.strip() for t in w.page.locator(".reasons li small").all_inner_texts()]


def test_a_new_enterprise_with_nothing_assessed_is_grey_with_its_reasons(
    browser: Any, live_server: Any, client: httpx.Client, corner: psycopg.Connection
) -> None:
    lon, lat = 126.66, 34.36
    ent = _post_enterprise(client, lon, lat, None)
    w = Watched(browser, live_server.base_url, key_for(live_server.url))
    try:
        _open_map(w, live_server.base_url, lon, lat, 17, "enterprises")
        w.page.wait_for_function(
            "(k) => GeoRisk.stats.colors[k] === 'grey'", arg=f"enterprises:{ent}", timeout=10_000
        )
        reasons = _popup_reasons(w, lon, lat)
        assert reasons and reasons[0].startswith("not assessed: no diagnosis score"), reasons
        assert "grey" in w.page.inner_text(".leaflet-popup-content .ent-color")
        assert "not assessed" in w.page.inner_text("#legend")
        assert w.errors == []
    finally:
        w.context.close()


def test_a_silent_alarm_pair_stays_red_offline_and_keeps_the_enterprise_raised(
    browser: Any, live_server: Any, client: httpx.Client, corner: psycopg.Connection
) -> None:
    """Two detectors of one hazard source at confirmed level 2, then two minutes of silence:
    on the open map the points stay red and gain the offline ring, the enterprise stays raised
    and says why first."""
    import datetime as dt
    from concurrent.futures import ThreadPoolExecutor

    from tests.test_offline_alarms import INTERVAL_S, N, _rows, _sweep

    lon, lat = 126.86, 34.33
    ent = _post_enterprise(client, lon, lat, 80)  # yellow
    src = corner.execute(
        "INSERT INTO hazard_sources (enterprise_id, code, unit_name, unit_kind, geom)"
        " SELECT id, 'LM-HS', 'LPG tanks', 'storage',"
        " ST_Multi(ST_Buffer(geom::geography, 40)::geometry) FROM enterprises WHERE id = %s"
        " RETURNING id",
        (ent,),
    ).fetchone()
    assert src is not None
    points = []
    for i in range(2):
        row = corner.execute(
            "INSERT INTO monitoring_points (code, hazard_source_id, kind, unit, level1, level2,"
            " sampling_interval_s, geom) VALUES (%s, %s, 'gas_flammable', '%%LEL', 25, 50, %s,"
            " ST_SetSRID(ST_Point(%s, %s), 4326)) RETURNING id",
            (f"LM-G{i}", src[0], INTERVAL_S, lon + 0.0004 * (i + 1), lat + 0.0003),
        ).fetchone()
        assert row is not None
        points.append(int(row[0]))
    start = dt.datetime.now(dt.UTC) - dt.timedelta(minutes=1)
    rows = [r for p in points for r in _rows(p, start, [60.0] * (N + 1))]
    assert client.post("/api/readings", json=rows).status_code == 200
    w = Watched(browser, live_server.base_url, key_for(live_server.url))
    try:
        _open_map(w, live_server.base_url, lon, lat, 17, "monitoring_points,enterprises")
        for p in points:
            w.page.wait_for_function(
                "(k) => GeoRisk.stats.colors[k] === 'red'", arg=f"monitoring_points:{p}"
            )
        raised = w.page.evaluate("(k) => GeoRisk.stats.colors[k]", f"enterprises:{ent}")
        assert raised == "orange"  # yellow raised by the red pair
        # Two minutes of silence (the sweep on a clock two minutes on): the open map follows.
        # (in a thread: Playwright's sync API owns this thread's event loop)
        with ThreadPoolExecutor(1) as pool:
            pool.submit(_sweep, live_server.url, start + dt.timedelta(seconds=N + 120)).result()
        for p in points:
            w.page.wait_for_function(
                "(k) => GeoRisk.stats.offline[k] === true", arg=f"monitoring_points:{p}"
            )
            assert (
                w.page.evaluate("(k) => GeoRisk.stats.colors[k]", f"monitoring_points:{p}") == "red"
            )
        assert w.page.evaluate("(k) => GeoRisk.stats.colors[k]", f"enterprises:{ent}") == "orange"
        reasons = _popup_reasons(w, lon, lat)
        assert reasons[0].startswith("2 detector(s) offline during an open level-2 alarm"), reasons
        assert w.errors == []
    finally:
        w.context.close()
