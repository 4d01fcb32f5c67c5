"""The demo city's registers on the regulator's map (issue 19, "checked by"): at zoom 15 over a
chemical park the page draws risk-unit polygons in at least three of the four colours.

The view is chosen from the database, not hard-coded: the zoom-15 tile inside a seeded chemical
park whose units show the most colours. What is asserted is what the page drew (its
``GeoRisk.stats`` hooks) and the tile bodies it fetched, which must agree with the database.
Set GEORISK_TEST_SCREENSHOTS=<dir> to keep the screenshot.
"""

from __future__ import annotations

import base64
import math
import os
from pathlib import Path
from typing import Any

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
FOUR = ("red", "orange", "yellow", "blue")
ZOOM = 15


def _tile(lon: float, lat: float, z: int) -> tuple[int, int]:
    n = 2**z
    x = int((lon + 180) / 360 * n)
    y = int((1 - math.asinh(math.tan(math.radians(lat))) / math.pi) / 2 * n)
    return x, y


def _tile_centre(x: int, y: int, z: int) -> tuple[float, float]:
    n = 2**z
    lon = (x + 0.5) / n * 360 - 180
    lat = math.degrees(math.atan(math.sinh(math.pi * (1 - 2 * (y + 0.5) / n))))
    return lon, lat


def _busiest_park_tile(db: psycopg.Connection) -> tuple[int, int, dict[int, str]]:
    """The zoom-15 tile of a chemical park whose assessed units show the most colours."""
    rows = db.execute(
        "SELECT u.id, u.color, ST_X(c), ST_Y(c) FROM risk_units u"
        " CROSS JOIN LATERAL ST_PointOnSurface(u.geom) c"
        " JOIN zones z ON z.kind = 'chemical_park' AND ST_Contains(z.geom, c)"
        " WHERE u.color IS NOT NULL"
    ).fetchall()
    tiles: dict[tuple[int, int], dict[int, str]] = {}
    for unit, colour, lon, lat in rows:
        tiles.setdefault(_tile(lon, lat, ZOOM), {})[unit] = colour
    assert tiles, "the seeded demo city has no risk units in a chemical park"
    (x, y), units = max(tiles.items(), key=lambda kv: (len(set(kv[1].values())), len(kv[1])))
    return x, y, units


def test_zoom_15_over_a_chemical_park_draws_units_in_three_colours(
    browser: Any, live_server: LiveServer, db: psycopg.Connection, tmp_path: Path
) -> None:
    x, y, units = _busiest_park_tile(db)
    assert len(set(units.values())) >= 3, f"the best park tile shows only {set(units.values())}"
    lon, lat = _tile_centre(x, y, ZOOM)
    w = Watched(browser, live_server.base_url, key_for(live_server.url, "admin"))
    w.page.add_init_script(RECORD_TILES)
    try:
        w.page.goto(f"{live_server.base_url}/")
        w.page.wait_for_function("() => GeoRisk.stats.tilesLoaded > 0", timeout=15_000)
        w.page.evaluate(
            "([lat, lon, z]) => GeoRisk.map.setView([lat, lon], z, {animate: false})",
            [lat, lon, ZOOM],
        )
        w.page.wait_for_function(
            "(ids) => ids.every((i) => GeoRisk.stats.colors['risk_units:' + i])",
            arg=list(units),
            timeout=20_000,
        )
        drawn = w.page.evaluate("() => GeoRisk.stats.colors")
        shown = {unit: drawn[f"risk_units:{unit}"] for unit in units}
        assert shown == units  # each unit in its register's colour
        assert len({c for c in shown.values() if c in FOUR}) >= 3

        # The page's colours came from the tiles it fetched (zoom 15, the risk_units layer).
        in_tiles: dict[int, str] = {}
        for url, body in w.page.evaluate("() => window.__tiles"):
            if f"/{ZOOM}/" not in url:
                continue
            layer = mapbox_vector_tile.decode(base64.b64decode(body)).get("risk_units", {})
            for f in layer.get("features", []):
                in_tiles[int(f["id"])] = f["properties"]["color"]
        assert {u: in_tiles.get(u) for u in units} == units

        shots = Path(os.environ.get("GEORISK_TEST_SCREENSHOTS") or tmp_path)
        shots.mkdir(parents=True, exist_ok=True)
        w.page.wait_for_timeout(500)  # Leaflet's tile fade
        w.page.screenshot(path=str(shots / "demo_park_z15.png"))
        assert w.errors == [] and w.foreign == []
    finally:
        w.context.close()
