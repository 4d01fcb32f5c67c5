"""The base map (issue 19 §4): roads by class, areas, district boundaries and place labels from
our own data, served as vector tiles and drawn under the risk layers, over the seeded demo city.

Tiles are decoded with mapbox-vector-tile and read again with GDAL's MVT driver (pyogrio) and
compared with what the database holds; the browser checks run with every request that leaves
the test server blocked, so the map needs nothing from outside.
"""

from __future__ import annotations

import json
import math
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import jsonschema
import psycopg
import pyogrio
import pytest
from pydantic import ValidationError

from geo_api.map_changes import MapChangeFeed
from geo_api.settings import DatabaseSettings, ServerSettings, Settings, TilesSettings
from layers.catalog import CATALOG
from layers.catalog.declarations import (
    AREA_LABEL_MINZOOM,
    BASE_AREA_KINDS,
    ENTERPRISE_LABEL_MINZOOM,
    ROAD_CLASS_MINZOOM,
)
from layers.core.colors import LIVE_COLORS
from tests.conftest import LiveServer, key_for
from tests.test_tiles import TILEJSON_SCHEMA, decode, features, get_tile, points, tile_of, tile_xy
from tests.test_web import CHROMIUM, Watched
from tests.test_web import browser as browser  # the module-scoped chromium fixture
from tiles.engine import ClusterGrid
from tiles.tms import EXTENT, MARGIN, Tile

BASE = ("base_boundaries", "base_areas", "base_roads", "base_labels", "base_enterprise_labels")
ALL = ",".join(BASE)
REFERENCE = set(BASE) - {"base_enterprise_labels"}
#: The demo city's districts (layers/demo_city/geography.py); other tests may add their own.
DEMO_DISTRICTS = {"海曙区", "江北区", "北仑区", "镇海区", "鄞州区", "奉化区", "余姚市", "慈溪市"}
ATTRIBUTION = "© 天地图 & GS(2024)0650号"
EXTERNAL = "https://t{s}.tiles.example.invalid/vec_w/{z}/{x}/{y}.png?tk=KEY"


def district_labels(db: psycopg.Connection) -> dict[str, tuple[int, float, float]]:
    """name → (id, lon, lat) of each district's label point, as the database computes it."""
    rows = db.execute(
        "SELECT name, id, ST_X(p), ST_Y(p) FROM"
        " (SELECT name, id, ST_PointOnSurface(geom) AS p FROM districts) d"
    ).fetchall()
    return {r[0]: (r[1], r[2], r[3]) for r in rows}


def roads_in(db: psycopg.Connection, tile: Tile, margin: float = 0.0) -> dict[int, str]:
    """id → class of the roads crossing the tile's envelope (with a margin, in tile widths)."""
    rows = db.execute(
        "SELECT id, road_class FROM roads WHERE ST_Intersects(geom,"
        " ST_Transform(ST_TileEnvelope(%s, %s, %s, margin => %s), 4326))",
        (tile.z, tile.x, tile.y, margin),
    ).fetchall()
    return {r[0]: r[1] for r in rows}


def read_with_gdal(body: bytes, tile: Tile, where: Path, layer: str) -> Any:
    path = where / str(tile.z) / str(tile.x) / f"{tile.y}.pbf"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(body)
    assert layer in [name for name, _ in pyogrio.list_layers(path)]
    return pyogrio.read_dataframe(path, layer=layer)


# -- tiles ---------------------------------------------------------------------------------
def test_z10_tile_holds_roads_by_class_and_district_names(
    client: httpx.Client, db: psycopg.Connection, tmp_path: Path
) -> None:
    labels = district_labels(db)
    _, lon, lat = labels["海曙区"]
    tile = tile_of(lon, lat, 10)
    r = get_tile(client, ALL, tile)
    assert r.status_code == 200
    tile_doc = decode(r.content)
    # Roads: every expressway and arterial crossing the tile, no local road (zoom < 12).
    roads = {f["id"]: f["properties"]["road_class"] for f in features(tile_doc, "base_roads")}
    inner, outer = roads_in(db, tile), roads_in(db, tile, MARGIN)
    assert "local" in inner.values()  # there are local roads here; the tile leaves them out
    city = {i: c for i, c in inner.items() if c != "local"}
    assert set(roads.values()) == {"expressway", "arterial"}
    assert set(city) <= set(roads) <= set(outer)
    assert all(roads[i] == outer[i] for i in roads)
    # An expressway's vertices are where the database has them (4096 grid, y up).
    eid = next(i for i, c in sorted(city.items()) if c == "expressway")
    row = db.execute(
        "SELECT ST_X(ST_StartPoint(geom)), ST_Y(ST_StartPoint(geom)) FROM roads WHERE id = %s",
        (eid,),
    ).fetchone()
    assert row is not None
    drawn = points(next(f for f in features(tile_doc, "base_roads") if f["id"] == eid)["geometry"])
    ex, ey = tile_xy(row[0], row[1], tile)
    if -64 <= ex <= EXTENT + 64 and -64 <= ey <= EXTENT + 64:
        assert min(math.hypot(x - ex, y - ey) for x, y in drawn) <= 1.5
    # District names at their label points: exactly the districts whose point is in the tile.
    feats = [f for f in features(tile_doc, "base_labels") if f["properties"]["kind"] == "district"]
    in_tile = {
        name
        for name, (_, x, y) in labels.items()
        if all(-0.5 <= v <= EXTENT + 0.5 for v in tile_xy(x, y, tile))
    }
    names = {f["properties"]["name"] for f in feats}
    assert "海曙区" in in_tile and in_tile <= names
    haishu = next(f for f in feats if f["properties"]["name"] == "海曙区")
    assert haishu["id"] == labels["海曙区"][0] * 4
    assert haishu["properties"]["code"] == "330203"
    assert abs(haishu["properties"]["lon"] - lon) < 1e-6
    assert abs(haishu["properties"]["lat"] - lat) < 1e-6
    (px, py) = points(haishu["geometry"])[0]
    hx, hy = tile_xy(lon, lat, tile)
    assert abs(px - hx) <= 1 and abs(py - hy) <= 1
    # Boundaries are lines with their district's code.
    bounds = features(tile_doc, "base_boundaries")
    assert "330203" in {f["properties"]["code"] for f in bounds}
    assert {f["geometry"]["type"] for f in bounds} <= {"LineString", "MultiLineString"}
    # No enterprise names at a city zoom.
    assert features(tile_doc, "base_enterprise_labels") == []
    # GDAL reads the same tile.
    df = read_with_gdal(r.content, tile, tmp_path, "base_roads")
    assert set(df["road_class"]) == {"expressway", "arterial"}
    # (GDAL clips to the tile: features only in the buffer, or only grazing an edge, go.)
    well_inside = {i for i, c in roads_in(db, tile, -4 / EXTENT).items() if c != "local"}
    assert well_inside <= set(df["id"]) <= set(roads)
    labels_df = read_with_gdal(r.content, tile, tmp_path, "base_labels")
    assert "海曙区" in set(labels_df["name"])


def test_each_road_class_appears_from_its_zoom(
    client: httpx.Client, db: psycopg.Connection
) -> None:
    row = db.execute(
        "SELECT id, ST_X(ST_LineInterpolatePoint(geom, 0.5)), ST_Y(ST_LineInterpolatePoint(geom,"
        " 0.5)) FROM roads WHERE road_class = 'local' ORDER BY id LIMIT 1 OFFSET 100"
    ).fetchone()
    assert row is not None
    rid, lon, lat = row
    for z in range(8, 16):
        tile = tile_of(lon, lat, z)
        r = get_tile(client, "base_roads", tile)
        assert r.status_code == 200, z
        got = {
            f["id"]: f["properties"]["road_class"]
            for f in features(decode(r.content), "base_roads")
        }
        shown = {c for c, mz in ROAD_CLASS_MINZOOM.items() if z >= mz}
        assert set(got.values()) <= shown, z
        # The database's roads of the shown classes crossing the tile are all there.
        wanted = {i for i, c in roads_in(db, tile).items() if c in shown}
        assert wanted <= set(got), z
        assert (rid in got) == (z >= ROAD_CLASS_MINZOOM["local"]), z
    # At z14 the tile holds the local road itself, as GDAL reads it too.
    r = get_tile(client, "base_roads", tile_of(lon, lat, 14))
    assert {f["properties"]["road_class"] for f in features(decode(r.content), "base_roads")} >= {
        "local"
    }


def test_areas_are_the_base_kinds_without_sensitive_fields(
    client: httpx.Client, db: psycopg.Connection
) -> None:
    row = db.execute(
        "SELECT id, name, ST_X(ST_PointOnSurface(geom)), ST_Y(ST_PointOnSurface(geom))"
        " FROM zones WHERE kind = 'water_source' ORDER BY id LIMIT 1"
    ).fetchone()
    assert row is not None
    zid, name, lon, lat = row
    tile = tile_of(lon, lat, AREA_LABEL_MINZOOM)
    r = get_tile(client, "base_areas,base_labels", tile)
    assert r.status_code == 200
    doc = decode(r.content)
    areas = features(doc, "base_areas")
    ours = [f for f in areas if f["id"] == zid]
    assert len(ours) == 1 and ours[0]["properties"] == {
        "id": zid,
        "kind": "water_source",
        "name": name,
    }
    assert {f["properties"]["kind"] for f in areas} <= set(BASE_AREA_KINDS)
    # Schools and hospitals in the tile stay in the zones layer, not the base.
    others = db.execute(
        "SELECT id FROM zones WHERE kind NOT IN ('water_source', 'chemical_park', 'residential')"
        " AND geom && ST_Transform(ST_TileEnvelope(%s, %s, %s), 4326)",
        (tile.z, tile.x, tile.y),
    ).fetchall()
    assert not {o[0] for o in others} & {f["id"] for f in areas}
    # The water source's name is a place label from this zoom (not below).
    label = [f for f in features(doc, "base_labels") if f["id"] == zid * 4 + 1]
    assert [f["properties"]["name"] for f in label] == [name]
    below = get_tile(client, "base_labels", tile_of(lon, lat, AREA_LABEL_MINZOOM - 1))
    if below.status_code == 200:
        assert zid * 4 + 1 not in {f["id"] for f in features(decode(below.content), "base_labels")}


def _dense_enterprise_tile(db: psycopg.Connection, z: int) -> tuple[Tile, list[tuple[int, str]]]:
    rows = db.execute(
        "SELECT id, ST_X(geom), ST_Y(geom), coalesce(dynamic_color, inherent_color, 'grey')"
        " FROM enterprises"
    ).fetchall()
    by_tile: dict[Tile, list[tuple[int, str]]] = {}
    for eid, lon, lat, color in rows:
        by_tile.setdefault(tile_of(lon, lat, z), []).append((eid, color))
    return max(by_tile.items(), key=lambda kv: len(kv[1]))


def test_who_gets_the_base_layers(live_server: LiveServer, db: psycopg.Connection) -> None:
    """Reference base layers for every role; enterprise names for whoever may read
    enterprises (a tile reader — as on the published map — and an enterprise, its own only)."""
    tile, members = _dense_enterprise_tile(db, ENTERPRISE_LABEL_MINZOOM)
    assert len(members) >= 2
    names = dict(db.execute("SELECT id, name FROM enterprises").fetchall())
    with live_server.client("tile_reader") as http:
        listed = {e["name"] for e in http.get("/tiles").json()["layers"]}
        assert set(BASE) <= listed
        r = get_tile(http, ALL, tile)
        assert r.status_code == 200
        got = {
            f["id"]: f["properties"] for f in features(decode(r.content), "base_enterprise_labels")
        }
        assert set(got) == {eid for eid, _ in members}
        assert all(p["name"] == names[i] for i, p in got.items())
    with live_server.client("officer") as http:
        listed = {e["name"] for e in http.get("/tiles").json()["layers"]}
        assert REFERENCE <= listed and "base_enterprise_labels" not in listed
        assert get_tile(http, ",".join(sorted(REFERENCE)), tile).status_code in (200, 204)
        refused = get_tile(http, "base_enterprise_labels", tile)
        assert refused.status_code == 403
        assert refused.json()["errors"][0]["field"] == "layer"
        assert "base_enterprise_labels" in refused.json()["detail"]
    own = members[0][0]
    key = key_for(live_server.url, "enterprise", enterprise_id=own)
    with live_server.client(key=key) as http:
        r = get_tile(http, "base_enterprise_labels", tile)
        assert r.status_code == 200
        assert [f["id"] for f in features(decode(r.content), "base_enterprise_labels")] == [own]


def test_tilejson_and_style_list_the_base(client: httpx.Client) -> None:
    doc = client.get(f"/tiles/{ALL}.json").json()
    jsonschema.validate(doc, TILEJSON_SCHEMA)
    layers = {v["id"]: v for v in doc["vector_layers"]}
    assert list(layers) == list(BASE)
    assert {"road_class", "name"} <= set(layers["base_roads"]["fields"])
    assert {"name", "kind", "lon", "lat"} <= set(layers["base_labels"]["fields"])
    assert layers["base_roads"]["minzoom"] == ROAD_CLASS_MINZOOM["expressway"]
    assert layers["base_enterprise_labels"]["minzoom"] == ENTERPRISE_LABEL_MINZOOM
    style = client.get("/styles/risk.json").json()
    assert set(BASE) <= set(style["sources"])
    ids = [layer["id"] for layer in style["layers"]]
    # Drawn first: every base layer comes before the first risk layer.
    assert max(ids.index(n) for n in BASE) < ids.index("districts-fill")
    roads = next(layer for layer in style["layers"] if layer["id"] == "base_roads")
    assert roads["paint"]["line-color"][:2] == ["match", ["get", "road_class"]]
    assert roads["layout"]["visibility"] == "visible"


def test_a_renamed_enterprise_gets_its_new_label_without_a_feed_event(
    client: httpx.Client, db: psycopg.Connection
) -> None:
    """Label tiles are purged by the enterprises' own notices; the live map's change feed
    does not announce them (a map does not refetch its base on a change)."""
    feed = MapChangeFeed(CATALOG, history=16, queue_size=16, max_viewers=4)
    viewer = feed.subscribe(frozenset(CATALOG.tiles), None)
    feed.on_change({"layer": "enterprises", "bbox": [121.6, 29.9, 121.6, 29.9]})
    told = {c.layer for c in viewer.events}
    assert "enterprises" in told and not {n for n in told if n.startswith("base_")}
    purged = {t.name for t in CATALOG.tile_layers_for_change("enterprises")}
    assert "base_enterprise_labels" in purged
    row = db.execute(
        "SELECT id, name, ST_X(geom), ST_Y(geom) FROM enterprises ORDER BY id LIMIT 1"
    ).fetchone()
    assert row is not None
    eid, name, lon, lat = row
    tile = tile_of(lon, lat, ENTERPRISE_LABEL_MINZOOM)

    def label() -> str | None:
        r = get_tile(client, "base_enterprise_labels", tile)
        found = [f for f in features(decode(r.content), "base_enterprise_labels") if f["id"] == eid]
        return found[0]["properties"]["name"] if found else None

    def rename(to: str) -> None:
        db.execute("UPDATE enterprises SET name = %s WHERE id = %s", (to, eid))
        payload = {"layer": "enterprises", "count": 1, "ids": [eid], "bbox": [lon, lat, lon, lat]}
        db.execute("SELECT pg_notify('georisk_changes', %s)", (json.dumps(payload),))

    assert label() == name  # now in the tile cache
    try:
        rename(name + "（更名）")
        deadline = time.monotonic() + 10
        while label() != name + "（更名）" and time.monotonic() < deadline:
            time.sleep(0.1)
        assert label() == name + "（更名）"
    finally:
        rename(name)


# -- city zoom: coarse clusters ------------------------------------------------------------
def test_city_zoom_clusters_are_coarse(client: httpx.Client, db: psycopg.Connection) -> None:
    """At zoom ≤ 11 a tile holds at most 4 × 4 clusters per point layer, which together count
    every enterprise in the tile; from zoom 12 enterprises are single points again."""
    tile, _ = _dense_enterprise_tile(db, 10)
    grid = ClusterGrid()
    assert grid.cells(10) == 4 and grid.cells(12) == 16
    r = get_tile(client, "enterprises", tile)
    clusters = features(decode(r.content), "enterprises")
    assert 0 < len(clusters) <= grid.cells(10) ** 2
    row = db.execute(
        "SELECT count(*) FROM enterprises WHERE geom && ST_Transform(ST_TileEnvelope(%s, %s, %s),"
        " 4326)",
        (tile.z, tile.x, tile.y),
    ).fetchone()
    assert row is not None
    assert sum(f["properties"]["count"] for f in clusters) == row[0]
    n = (1 << tile.z) * grid.cells(10)
    for f in clusters:  # the cell id lies in this tile's 4 × 4 block of the zoom's grid
        gx, gy = divmod(f["id"], n)
        assert tile.x * 4 <= gx < tile.x * 4 + 4 and tile.y * 4 <= gy < tile.y * 4 + 4
    single = get_tile(client, "enterprises", tile_of(*_first_enterprise(db), 12))
    assert all(
        "count" not in f["properties"] for f in features(decode(single.content), "enterprises")
    )


def _first_enterprise(db: psycopg.Connection) -> tuple[float, float]:
    row = db.execute(
        "SELECT ST_X(geom), ST_Y(geom) FROM enterprises ORDER BY id LIMIT 1"
    ).fetchone()
    assert row is not None
    return row[0], row[1]


def test_cluster_cells_must_tile_a_tile() -> None:
    with pytest.raises(ValidationError, match="city_cluster_px"):
        TilesSettings(city_cluster_px=48)
    assert TilesSettings(city_cluster_px=32).city_cluster_px == 32


# -- a deployment with caps and an external base --------------------------------------------
@pytest.fixture(scope="module")
def configured(database_url: str) -> Iterator[LiveServer]:
    settings = Settings(
        db=DatabaseSettings(url=database_url, pool_max=2),
        server=ServerSettings(
            basemap_url=EXTERNAL,
            basemap_subdomains="01234567",
            basemap_max_zoom=18,
            basemap_attribution=ATTRIBUTION,
        ),
        tiles=TilesSettings(feature_caps={"base_roads": 5, "base_enterprise_labels": 2}),
    )
    with LiveServer(settings) as server:
        yield server


def test_caps_keep_major_roads_and_worst_enterprises(
    configured: LiveServer, db: psycopg.Connection
) -> None:
    _, lon, lat = district_labels(db)["海曙区"]
    tile = tile_of(lon, lat, 12)
    order = {"expressway": 1, "arterial": 2, "local": 3}
    with configured.client() as http:
        r = get_tile(http, "base_roads", tile)
        assert r.headers["x-tile-truncated"] == "base_roads"
        kept = [f["properties"]["road_class"] for f in features(decode(r.content), "base_roads")]
        assert len(kept) == 5
        there = sorted(order[c] for c in roads_in(db, tile, MARGIN).values())
        assert sorted(order[c] for c in kept) == there[:5]
        tile15, members = _dense_enterprise_tile(db, ENTERPRISE_LABEL_MINZOOM)
        r = get_tile(http, "base_enterprise_labels", tile15)
        assert r.headers["x-tile-truncated"] == "base_enterprise_labels"
        colors = [
            f["properties"]["color"] for f in features(decode(r.content), "base_enterprise_labels")
        ]

    def rank(c: str | None) -> int:
        return LIVE_COLORS.index(c) if c in LIVE_COLORS else 99

    assert sorted(map(rank, colors)) == sorted(rank(c) for _, c in members)[:2]


def test_the_pages_carry_the_external_base(configured: LiveServer, db: psycopg.Connection) -> None:
    row = db.execute("SELECT id FROM enterprises ORDER BY id LIMIT 1").fetchone()
    assert row is not None
    with configured.client() as http:
        pages = [http.get("/").text, http.get(f"/enterprises/{row[0]}/diagram").text]
    for page in pages:  # the map and the diagram draw the same external base
        assert f'data-basemap="{EXTERNAL}"' in page
        assert 'data-basemap-subdomains="01234567"' in page
        assert 'data-basemap-attribution="© 天地图 &amp; GS(2024)0650号"' in page
        assert "data-basemap-overlay" not in page  # unset settings stay out


# -- the map in a browser --------------------------------------------------------------------
pytestmark_browser = pytest.mark.skipif(not CHROMIUM.exists(), reason="needs Debian's chromium")


def _blocked(w: Watched, base: str) -> list[str]:
    """Abort every request that leaves the test server; return the list it records."""
    attempted: list[str] = []

    def route(r: Any) -> None:
        if r.request.url.startswith((base, "data:", "blob:")):
            r.continue_()
        else:
            attempted.append(r.request.url)
            r.abort()

    w.page.route("**/*", route)
    return attempted


def _base_stats(page: Any) -> dict[str, Any]:
    return dict(page.evaluate("() => GeoRisk.stats.base"))


@pytestmark_browser
def test_default_view_at_zoom_10_draws_the_base_and_names_the_districts(
    browser: Any, live_server: LiveServer, db: psycopg.Connection, tmp_path: Path
) -> None:
    w = Watched(browser, live_server.base_url, key_for(live_server.url))
    attempted = _blocked(w, live_server.base_url)
    page = w.page
    try:
        page.goto(live_server.base_url + "/")
        page.wait_for_function(
            "() => window.GeoRisk && GeoRisk.stats.base && GeoRisk.stats.base.labels >= 8"
            " && GeoRisk.stats.base.loaded && GeoRisk.stats.drawn.enterprises > 0",
            timeout=20_000,
        )
        assert page.evaluate("() => GeoRisk.map.getZoom()") == 10
        page.wait_for_timeout(500)  # the last tiles and the label layout settle
        base = _base_stats(page)
        assert base["roads"].get("expressway", 0) > 0 and base["roads"].get("arterial", 0) > 0
        assert "local" not in base["roads"]  # the street grid waits for zoom 12
        drawn = page.evaluate("() => GeoRisk.stats.drawn")
        assert drawn["base_boundaries"] > 0 and drawn["base_areas"] > 0
        assert drawn["base_roads"] == base["roads"]["expressway"] + base["roads"]["arterial"]
        shown = set(
            page.eval_on_selector_all(".base-label-district", "els => els.map(e => e.textContent)")
        )
        assert DEMO_DISTRICTS <= shown
        assert page.locator(".base-label-enterprise").count() == 0
        # The base is under the risk layers: its pane is below Leaflet's tile pane.
        z_base, z_tiles = page.evaluate(
            "() => [GeoRisk.map.getPane('georiskBase').style.zIndex,"
            " getComputedStyle(GeoRisk.map.getPane('tilePane')).zIndex].map(Number)"
        )
        assert z_base < z_tiles
        assert page.locator(".leaflet-georiskBase-pane canvas").count() > 0
        # City zoom draws clusters, not every enterprise.
        assert page.evaluate("() => Boolean(GeoRisk.stats.props.enterprises.count)")
        page.screenshot(path=str(tmp_path / "basemap-z10.png"))
        # The layer list switches the base off and on.
        page.uncheck("#basemap-on")
        page.wait_for_function("() => document.querySelectorAll('.base-label').length === 0")
        assert page.locator(".leaflet-georiskBase-pane canvas").count() == 0
        page.check("#basemap-on")
        page.wait_for_function(
            "() => document.querySelectorAll('.base-label-district').length >= 8"
        )
        # Zoom 14 on a local road: the street grid is drawn.
        row = db.execute(
            "SELECT ST_Y(ST_LineInterpolatePoint(geom, 0.5)), ST_X(ST_LineInterpolatePoint(geom,"
            " 0.5)) FROM roads WHERE road_class = 'local' ORDER BY id LIMIT 1 OFFSET 100"
        ).fetchone()
        assert row is not None
        page.evaluate("(c) => GeoRisk.map.setView(c, 14, { animate: false })", list(row))
        page.wait_for_function(
            "() => GeoRisk.stats.base.loaded && (GeoRisk.stats.base.roads.local || 0) > 0",
            timeout=15_000,
        )
        page.screenshot(path=str(tmp_path / "basemap-z14.png"))
        assert attempted == [] and w.foreign == []
        assert w.errors == []
    finally:
        w.context.close()


@pytestmark_browser
def test_an_external_base_is_requested_from_its_template_with_its_credit(
    browser: Any, configured: LiveServer
) -> None:
    w = Watched(browser, configured.base_url, key_for(configured.url))
    attempted = _blocked(w, configured.base_url)
    page = w.page
    try:
        page.goto(configured.base_url + "/?layers=basemap")
        page.wait_for_function(
            "() => window.GeoRisk && GeoRisk.stats.base && GeoRisk.stats.base.labels > 0",
            timeout=20_000,
        )
        page.wait_for_function("() => document.querySelector('.leaflet-control-attribution')")
        assert ATTRIBUTION in page.inner_text(".leaflet-control-attribution")
        assert attempted, "the external base asks its server for tiles"
        for url in attempted:
            assert url.startswith("https://t") and ".tiles.example.invalid/vec_w/10/" in url, url
            assert url[len("https://t")] in "01234567" and url.endswith("?tk=KEY")
        # Switched off, it asks for nothing more.
        page.uncheck("#basemap-external")
        before = len(attempted)
        page.evaluate("() => GeoRisk.map.panBy([300, 0], { animate: false })")
        page.wait_for_timeout(500)
        assert len(attempted) == before
    finally:
        w.context.close()
