"""Risk units as a layer of the regulator's map (issue 19 §1), over real HTTP and PostGIS.

Planted here, around 128.00 E, 36.00 N (districts RU-A and RU-B, credit codes 91330200RU…):
enterprise A's site with five units, all through the register API — red, orange, yellow and
blue assessed, one registered but not assessed — and enterprise B of the other district next
door with one blue unit. Asserted: the units' tiles (z13 and up, none below; colours, grey,
properties), who gets which of them (tile reader: none anywhere; a regulator: their district's;
an enterprise: its own), the REST collection's filters, the hexagon rollup's counts and worst
colours, and that every register write purges the tiles it touched (on a server whose cached
tiles would otherwise live for an hour).
"""

from __future__ import annotations

import datetime as dt
import time
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import h3
import httpx
import mapbox_vector_tile
import psycopg
import pytest

from geo_api.settings import (
    DatabaseSettings,
    MonitoringSettings,
    ServerSettings,
    Settings,
    TilesSettings,
)
from layers.catalog import CATALOG
from layers.catalog.tiles import h3_resolution
from tests.conftest import LiveServer, auth, key_for
from tests.test_tiles import tile_of
from tiles.tms import Tile

DISTRICT_A, DISTRICT_B = "RU-A", "RU-B"
LAT0, LAT1 = 36.0005, 36.0010  # every unit's south and north edge
#: A's units: west edge, name, kind, register inputs; the colour the register must give.
A_UNITS = [
    (128.0002, "液氯储罐区", "tank_farm", {"method": "LS", "likelihood": 5, "severity": 5}, "red"),
    (128.0008, "氯化反应釜", "reactor", {"method": "LS", "likelihood": 4, "severity": 4}, "orange"),
    (
        128.0014,
        "槽车装卸区",
        "loading_bay",
        {"method": "LEC", "likelihood": 1, "exposure": 10, "consequence": 15},
        "yellow",
    ),
    (128.0020, "成品仓库", "warehouse", {"method": "LS", "likelihood": 1, "severity": 2}, "blue"),
]
NOT_ASSESSED_WEST = 128.0026
B_UNIT_WEST = 128.0042
WIDTH = 0.0004


def _square(west: float, width: float = WIDTH) -> list[list[list[float]]]:
    e = west + width
    return [[[west, LAT0], [e, LAT0], [e, LAT1], [west, LAT1], [west, LAT0]]]


def _centre(west: float) -> tuple[float, float]:
    return west + WIDTH / 2, (LAT0 + LAT1) / 2


@dataclass
class Plant:
    a: int  # enterprise A (district RU-A)
    b: int  # enterprise B (district RU-B)
    units: dict[str, int]  # colour (grey: not assessed) → A's unit id
    b_unit: int
    west: dict[int, float]  # unit id → its west edge
    overdue: int  # the unit whose review is past due


def _post_enterprise(client: httpx.Client, n: int, district: str, west: float, east: float) -> int:
    site = [[[west, 36.0], [east, 36.0], [east, 36.0016], [west, 36.0016], [west, 36.0]]]
    r = client.post(
        "/api/enterprises",
        json={
            "type": "Feature",
            "geometry": {"type": "Point", "coordinates": [(west + east) / 2, 36.0013]},
            "properties": {
                "credit_code": f"91330200RU{n:08d}",
                "name": f"risk unit plant {n}",
                "category": "production",
                "is_hazmat": True,
                "district": district,
                "diagnosis_score": 80,
                "site": {"type": "Polygon", "coordinates": site},
            },
        },
    )
    assert r.status_code == 201, r.text
    return int(r.json()["id"])


def _post_unit(
    client: httpx.Client, enterprise: int, west: float, name: str, kind: str, **inputs: Any
) -> httpx.Response:
    return client.post(
        f"/api/enterprises/{enterprise}/risk-units",
        json={
            "type": "Feature",
            "geometry": {"type": "Polygon", "coordinates": _square(west)},
            "properties": {"name": name, "kind": kind, **inputs},
        },
    )


@pytest.fixture(scope="module")
def plant(live_server: LiveServer, database_url: str) -> Iterator[Plant]:
    conn = psycopg.connect(database_url, autocommit=True)
    for code in (DISTRICT_A, DISTRICT_B):
        conn.execute(
            "INSERT INTO districts (code, name, geom) VALUES (%s, %s,"
            " ST_Multi(ST_MakeEnvelope(127.99, 35.99, 128.01, 36.01, 4326)))",
            (code, f"risk unit district {code}"),
        )
    with live_server.client() as client:
        a = _post_enterprise(client, 1, DISTRICT_A, 128.0, 128.0032)
        b = _post_enterprise(client, 2, DISTRICT_B, 128.0040, 128.0050)
        # Registered, not assessed yet: no method, no inputs; the register stores no colour.
        r = _post_unit(client, a, NOT_ASSESSED_WEST, "公用工程站", "utilities", method=None)
        assert r.status_code == 201, r.text
        assert (r.json()["color"], r.json()["score"]) == (None, None)
        units, west = {"grey": int(r.json()["id"])}, {int(r.json()["id"]): NOT_ASSESSED_WEST}
        overdue = 0
        for x, name, kind, inputs, colour in A_UNITS:
            extra: dict[str, Any] = {"responsible": "张伟", "responsible_phone": "13800000000"}
            if colour == "orange":  # assessed in 2020, review due a year later: overdue now
                extra.update(assessed_on="2020-01-10", review_due="2021-01-10")
            else:
                extra.update(assessed_on="2026-01-10", review_due="2099-01-10")
            r = _post_unit(client, a, x, name, kind, **inputs, **extra)
            assert r.status_code == 201, r.text
            assert r.json()["color"] == colour
            units[colour] = int(r.json()["id"])
            west[units[colour]] = x
            if colour == "orange":
                overdue = units[colour]
        r = _post_unit(client, b, B_UNIT_WEST, "乙厂仓库", "warehouse", method="LS", likelihood=1,
                       severity=1)  # fmt: skip
        assert r.status_code == 201, r.text
        b_unit = int(r.json()["id"])
        west[b_unit] = B_UNIT_WEST
    yield Plant(a, b, units, b_unit, west, overdue)
    conn.execute("DELETE FROM enterprises WHERE credit_code LIKE '91330200RU%%'")
    conn.execute("DELETE FROM districts WHERE code LIKE 'RU-%%'")
    conn.close()


def _tile(http: httpx.Client, layers: str, tile: Tile) -> dict[str, Any]:
    r = http.get(f"/tiles/{layers}/{tile.z}/{tile.x}/{tile.y}.mvt")
    assert r.status_code in (200, 204), r.text
    return dict(mapbox_vector_tile.decode(r.content)) if r.status_code == 200 else {}


def _units_in(decoded: dict[str, Any]) -> dict[int, dict[str, Any]]:
    return {
        int(f["id"]): dict(f["properties"])
        for f in decoded.get("risk_units", {}).get("features", [])
    }


def _seen(http: httpx.Client, plant: Plant, z: int, layers: str = "risk_units") -> dict[int, Any]:
    """Every unit of ours found in the tiles (at zoom ``z``) that hold our units' centres."""
    seen: dict[int, Any] = {}
    for tile in {tile_of(*_centre(x), z) for x in plant.west.values()}:
        seen.update(_units_in(_tile(http, layers, tile)))
    return {i: p for i, p in seen.items() if i in plant.west}


# -- tiles ------------------------------------------------------------------------------------
def test_unit_tiles_from_zoom_13_coloured_by_level_grey_when_not_assessed(
    live_server: LiveServer, plant: Plant
) -> None:
    expected = {i: c for c, i in plant.units.items()} | {plant.b_unit: "blue"}
    with live_server.client() as admin:
        for z in (13, 14, 15, 16, 17):
            seen = _seen(admin, plant, z)
            assert {i: p["color"] for i, p in seen.items()} == expected, z
        # Below zoom 13 the layer is not drawn at all, alone or in a comma list.
        for tile in {tile_of(*_centre(x), 12) for x in plant.west.values()}:
            assert "risk_units" not in _tile(admin, "risk_units", tile)
            assert "risk_units" not in _tile(admin, "enterprises,risk_units", tile)
        props = _seen(admin, plant, 16)
    red = props[plant.units["red"]]
    assert (red["name"], red["kind"], red["method"], red["score"]) == ("液氯储罐区", "tank_farm",
                                                                       "LS", 25)  # fmt: skip
    assert red["enterprise_id"] == plant.a and red["overdue"] is False
    assert red["review_due"] == "2099-01-10"
    # The label point lies inside the unit (the page writes the name there at z ≥ 16).
    west = plant.west[plant.units["red"]]
    assert west < red["label_lon"] < west + WIDTH and LAT0 < red["label_lat"] < LAT1
    assert props[plant.units["yellow"]]["score"] == 150  # LEC 1 × 10 × 15
    assert props[plant.overdue]["overdue"] is True
    grey = props[plant.units["grey"]]
    assert grey["name"] == "公用工程站" and grey["overdue"] is False
    assert "method" not in grey and "score" not in grey  # nothing assessed, nothing claimed


def test_a_tile_reader_never_gets_units_nor_their_hexagons(
    live_server: LiveServer, plant: Plant
) -> None:
    reader = key_for(live_server.url, "tile_reader")
    with live_server.client(key=reader) as http:
        public = sorted(
            layer["name"] for layer in http.get("/tiles").json()["layers"]
        )  # what the reader may ask for
        assert public and "enterprises" in public
        assert "risk_units" not in public and "h3_risk_units" not in public
        for z in (13, 15, 17):
            for tile in {tile_of(*_centre(x), z) for x in plant.west.values()}:
                decoded = _tile(http, ",".join(n for n in public if not n.startswith("h3_")), tile)
                assert "risk_units" not in decoded
                r = http.get(f"/tiles/risk_units/{tile.z}/{tile.x}/{tile.y}.mvt")
                assert r.status_code == 403 and r.json()["errors"][0]["field"] == "layer"
                assert http.get(f"/tiles/enterprises,risk_units/{z}/{tile.x}/{tile.y}.mvt")\
                    .status_code == 403  # fmt: skip
        assert http.get("/tiles/risk_units.json").status_code == 403
        assert http.get("/tiles/h3_risk_units.json").status_code == 403
        style = http.get("/styles/risk.json").json()
        assert not [s for s in style["sources"] if "risk_units" in s]
        assert http.get("/api/risk-units").status_code == 403


def test_tilejson_and_style_describe_the_layer(live_server: LiveServer) -> None:
    with live_server.client() as admin:
        doc = admin.get("/tiles/risk_units.json").json()
        (layer,) = doc["vector_layers"]
        assert layer["id"] == "risk_units" and layer["minzoom"] == 13
        for name in ("color", "name", "kind", "method", "score", "overdue", "label_lon"):
            assert name in layer["fields"], name
        assert "Risk units: risk unit level" in doc["legend"]
        listed = {x["name"]: x for x in admin.get("/tiles").json()["layers"]}
        assert listed["risk_units"]["minzoom"] == 13 and "h3_risk_units" in listed
        style = admin.get("/styles/risk.json").json()
        fill = next(x for x in style["layers"] if x["id"] == "risk_units-fill")
        assert fill["minzoom"] == 13 and fill["layout"]["visibility"] == "visible"
        assert "#E02020" in fill["paint"]["fill-color"] and "#9E9E9E" in fill["paint"]["fill-color"]


def test_regulators_see_their_district_and_enterprises_their_own(
    live_server: LiveServer, plant: Plant
) -> None:
    a_units = set(plant.units.values())
    views = {
        key_for(live_server.url, "regulator", districts=[DISTRICT_A]): a_units,
        key_for(live_server.url, "regulator", districts=[DISTRICT_B]): {plant.b_unit},
        key_for(live_server.url, "enterprise", enterprise_id=plant.a): a_units,
        key_for(live_server.url, "enterprise", enterprise_id=plant.b): {plant.b_unit},
    }
    for key, expected in views.items():
        with live_server.client(key=key) as http:
            for z in (13, 16):
                assert set(_seen(http, plant, z)) == expected, (z, expected)
            listed = http.get("/api/risk-units", params={"bbox": "127.99,35.99,128.01,36.01"})
            assert listed.status_code == 200, listed.text
            assert {f["id"] for f in listed.json()["features"]} == expected
    officer = key_for(live_server.url, "officer")
    with live_server.client(key=officer) as http:
        tile = tile_of(*_centre(A_UNITS[0][0]), 15)
        assert http.get(f"/tiles/risk_units/15/{tile.x}/{tile.y}.mvt").status_code == 403
        assert http.get("/api/risk-units").status_code == 403


# -- REST -------------------------------------------------------------------------------------
def test_rest_collection_filters(live_server: LiveServer, plant: Plant) -> None:
    with live_server.client() as admin:

        def ids(**params: Any) -> set[int]:
            r = admin.get("/api/risk-units", params={"enterprise_id": plant.a, **params})
            assert r.status_code == 200, r.text
            body = r.json()
            assert body["numberMatched"] == len(body["features"])
            return {f["id"] for f in body["features"]}

        assert ids() == set(plant.units.values())
        for colour, unit in plant.units.items():
            assert ids(color=colour) == {unit}, colour
        assert ids(kind="reactor") == {plant.units["orange"]}
        assert ids(kind="utilities") == {plant.units["grey"]}
        assert ids(overdue="true") == {plant.overdue}
        assert ids(overdue="false") == set(plant.units.values()) - {plant.overdue}
        b = admin.get("/api/risk-units", params={"enterprise_id": plant.b}).json()
        assert [f["id"] for f in b["features"]] == [plant.b_unit]

        grey = admin.get("/api/risk-units", params={"color": "grey", "enterprise_id": plant.a})
        (feature,) = grey.json()["features"]
        p = feature["properties"]
        # The register's own words: a unit not assessed has no method and no colour.
        assert (p["method"], p["color"], p["score"], p["district"]) == (None, None, None, "RU-A")
        red = admin.get("/api/risk-units", params={"color": "red", "enterprise_id": plant.a})
        p = red.json()["features"][0]["properties"]
        assert (p["name"], p["likelihood"], p["severity"], p["score"]) == ("液氯储罐区", 5, 5, 25)
        assert p["responsible"] == "张伟" and p["review_due"] == "2099-01-10"
        assert feature["geometry"]["type"] == "MultiPolygon"

        for params, field in (
            ({"overdue": "soon"}, "overdue"),
            ({"kind": "silo"}, "kind"),
            ({"color": "purple"}, "color"),
            ({"enterprise_id": "x"}, "enterprise_id"),
            ({"owner": "me"}, "owner"),
        ):
            r = admin.get("/api/risk-units", params=params)
            assert r.status_code == 400, (params, r.text)
            assert r.json()["errors"][0]["field"] == field
        # One unit is still read where the register serves it, with its typed model.
        one = admin.get(f"/api/risk-units/{plant.units['red']}").json()
        assert one["properties"]["controls"] == [] and one["properties"]["color"] == "red"


# -- hexagons ---------------------------------------------------------------------------------
def _expected_cells(db: psycopg.Connection, enterprises: list[int], res: int) -> dict[str, Any]:
    rank = {"red": 0, "orange": 1, "yellow": 2, "blue": 3, "grey": 4}
    out: dict[str, Any] = {}
    rows = db.execute(
        "SELECT ST_X(p), ST_Y(p), coalesce(color, 'grey') FROM (SELECT ST_PointOnSurface(geom)"
        " AS p, color FROM risk_units WHERE enterprise_id = ANY(%s)) u",
        (enterprises,),
    ).fetchall()
    for lon, lat, colour in rows:
        cell = h3.latlng_to_cell(lat, lon, res)
        n, worst = out.get(cell, (0, "grey"))
        out[cell] = (n + 1, colour if rank[colour] < rank[worst] else worst)
    return out


def test_hexagon_rollup_counts_units_with_the_worst_colour(
    live_server: LiveServer, plant: Plant, db: psycopg.Connection
) -> None:
    """The rollup re-rolled by the units' change notices: per cell, how many units and the
    worst colour (grey only where nothing is assessed)."""
    ours = [plant.a, plant.b]
    for res in (8, 10):
        expected = _expected_cells(db, ours, res)
        assert sum(n for n, _ in expected.values()) == 6
        stored: dict[str, Any] = {}
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            rows = db.execute(
                "SELECT h3, count, color FROM h3_cells WHERE layer = 'risk_units' AND res = %s"
                " AND h3 = ANY(%s)",
                (res, list(expected)),
            ).fetchall()
            stored = {h: (n, c) for h, n, c in rows}
            if stored == expected:
                break
            time.sleep(0.3)
        assert stored == expected, res
    # The red unit's cell is red at every resolution, whatever else is in it.
    assert "red" in {c for _, c in _expected_cells(db, ours, 8).values()}
    # The hexagon tiles carry them for regulators; enterprises and tile readers get none.
    zoom = 14
    res = h3_resolution(CATALOG.tiles["h3_risk_units"], zoom)
    cells = _expected_cells(db, ours, res)
    tile = tile_of(*_centre(A_UNITS[0][0]), zoom)
    with live_server.client("regulator") as http:
        decoded = _tile(http, "h3_risk_units", tile)
    drawn = {f["properties"]["h3"]: f["properties"] for f in decoded["h3_risk_units"]["features"]}
    for cell, (n, colour) in cells.items():
        if cell in drawn:
            assert (drawn[cell]["count"], drawn[cell]["color"]) == (n, colour)
    assert set(cells) & set(drawn)
    # Over REST too: regulators read the cells; officers (who may read other rollups there)
    # and everybody else get a 403 naming the layer.
    bbox = {"res": 10, "bbox": "127.99,35.99,128.01,36.01"}
    with live_server.client("regulator") as http:
        cells10 = http.get("/api/h3/risk_units", params=bbox).json()["features"]
    listed = {f["properties"]["h3"]: (f["properties"]["count"], f["properties"]["color"])
              for f in cells10}  # fmt: skip
    assert listed == _expected_cells(db, ours, 10)
    with live_server.client("officer") as http:
        refused = http.get("/api/h3/risk_units", params=bbox)
        assert refused.status_code == 403 and refused.json()["errors"][0]["field"] == "layer"
        assert http.get("/api/h3/enterprises", params=bbox).status_code == 200
    enterprise = key_for(live_server.url, "enterprise", enterprise_id=plant.a)
    for key in (enterprise, key_for(live_server.url, "tile_reader")):
        r = httpx.get(
            f"{live_server.base_url}/tiles/h3_risk_units/{zoom}/{tile.x}/{tile.y}.mvt",
            headers=auth(key),
        )
        assert r.status_code == 403


# -- change notices ---------------------------------------------------------------------------
@pytest.fixture(scope="module")
def long_cache_server(database_url: str) -> Iterator[LiveServer]:
    """Cached unit tiles would live an hour here: a tile that changes did so by a purge."""
    settings = Settings(
        db=DatabaseSettings(url=database_url, pool_max=3),
        server=ServerSettings(),
        monitoring=MonitoringSettings(sweep_enabled=False),
        tiles=TilesSettings(live_ttl_s=3600),
    )
    with LiveServer(settings) as server:
        yield server


def _notices(conn: psycopg.Connection, wanted: set[str], timeout: float = 15) -> list[Any]:
    """Change notices heard until one of each ``wanted`` layer arrived (or ``timeout``)."""
    import json

    heard: list[Any] = []
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline and not wanted <= {n["layer"] for n in heard}:
        for note in conn.notifies(timeout=0.5, stop_after=1):
            heard.append(json.loads(note.payload))
    return heard


def _colour_in_tile(http: httpx.Client, unit: int, west: float, z: int = 16) -> Any:
    return (
        _units_in(_tile(http, "risk_units", tile_of(*_centre(west), z))).get(unit, {}).get("color")
    )


def test_every_register_write_notifies_and_purges_the_units_tiles(
    long_cache_server: LiveServer, plant: Plant, database_url: str
) -> None:
    listener = psycopg.connect(database_url, autocommit=True)
    listener.execute("LISTEN georisk_changes")
    server = long_cache_server
    west = 128.0032 - WIDTH - 0.00005  # a free strip at the east end of A's site
    try:
        with server.client() as admin:
            made = _post_unit(admin, plant.a, west, "临时堆场", "other", method="LS",
                              likelihood=1, severity=1)  # fmt: skip
            assert made.status_code == 201, made.text
            unit = int(made.json()["id"])
            heard = _notices(listener, {"risk_units", "h3_risk_units"})
            mine = [n for n in heard if n["layer"] == "risk_units"]
            assert mine and mine[0]["ids"] == [unit]
            w, s, e, n = mine[0]["bbox"]
            assert (w, s, e, n) == pytest.approx((west, LAT0, west + WIDTH, LAT1), abs=1e-6)
            assert "h3_risk_units" in {n["layer"] for n in heard}  # the rollup followed
            assert _colour_in_tile(admin, unit, west) == "blue"  # now cached for an hour

            body = {
                "type": "Feature",
                "geometry": {"type": "Polygon", "coordinates": _square(west)},
                "properties": {"name": "临时堆场", "method": "LS", "likelihood": 5, "severity": 5},
            }
            assert admin.put(f"/api/risk-units/{unit}", json=body).json()["color"] == "red"
            heard = _notices(listener, {"risk_units"})
            assert [n["ids"] for n in heard if n["layer"] == "risk_units"] == [[unit]]
            _eventually(lambda: _colour_in_tile(admin, unit, west) == "red")

            assert admin.delete(f"/api/risk-units/{unit}").status_code == 204
            heard = _notices(listener, {"risk_units"})
            gone = [n for n in heard if n["layer"] == "risk_units"]
            assert gone and gone[0]["ids"] == [unit] and "bbox" in gone[0]  # where it stood
            _eventually(lambda: _colour_in_tile(admin, unit, west) is None)
    finally:
        listener.close()


def _eventually(check: Any, timeout: float = 10) -> None:
    """The tile purge runs on the server's change bus, a moment after the write's commit."""
    deadline = time.monotonic() + timeout
    while not check():
        assert time.monotonic() < deadline, "the cached tile was never purged"
        time.sleep(0.2)


def test_overdue_follows_the_date(live_server: LiveServer, plant: Plant) -> None:
    """The REST filter and the tiles agree on "overdue" as of today (UTC)."""
    today = dt.datetime.now(dt.UTC).date()
    assert today > dt.date(2021, 1, 10)
    with live_server.client() as admin:
        flagged = {i for i, p in _seen(admin, plant, 15).items() if p["overdue"]}
        listed = admin.get(
            "/api/risk-units", params={"overdue": "true", "bbox": "127.99,35.99,128.01,36.01"}
        ).json()
    assert flagged == {f["id"] for f in listed["features"]} == {plant.overdue}
