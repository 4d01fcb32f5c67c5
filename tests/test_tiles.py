"""Vector tiles over the seeded demo city: real PostGIS, real HTTP, content decoded twice.

Tiles are decoded with mapbox-vector-tile and read again with GDAL's MVT driver (pyogrio), so a
tile both libraries accept is what QGIS and MapLibre get.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import math
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import jsonschema
import mapbox_vector_tile
import psycopg
import pyogrio
import pytest
from pyproj import Transformer

from geo_api.settings import DatabaseSettings, ServerSettings, Settings, TilesSettings
from layers.catalog import CATALOG
from layers.core.colors import LIVE_COLORS
from layers.risk.recompute import RecomputeConfig, recompute
from tests.conftest import LiveServer
from tiles.cache import Entry, TileCache
from tiles.engine import ClusterGrid
from tiles.tms import BUFFER, EXTENT, Tile, tile_range

TILE_LAYERS = CATALOG.tiles
ENTERPRISES = TILE_LAYERS["enterprises"]
TO_3857 = Transformer.from_crs(4326, 3857, always_xy=True)
HALF_WORLD = 20037508.342789244

# TileJSON 3.0.0 (the spec's required members and types), written for these tests.
TILEJSON_SCHEMA: dict[str, Any] = {
    "type": "object",
    "required": ["tilejson", "tiles", "vector_layers"],
    "properties": {
        "tilejson": {"type": "string", "pattern": r"^3\.0\.0$"},
        "tiles": {"type": "array", "minItems": 1, "items": {"type": "string"}},
        "vector_layers": {
            "type": "array",
            "minItems": 1,
            "items": {
                "type": "object",
                "required": ["id", "fields"],
                "properties": {
                    "id": {"type": "string"},
                    "fields": {"type": "object", "additionalProperties": {"type": "string"}},
                    "description": {"type": "string"},
                    "minzoom": {"type": "integer", "minimum": 0, "maximum": 30},
                    "maxzoom": {"type": "integer", "minimum": 0, "maximum": 30},
                },
            },
        },
        "name": {"type": "string"},
        "description": {"type": "string"},
        "version": {"type": "string"},
        "attribution": {"type": "string"},
        "scheme": {"enum": ["xyz", "tms"]},
        "minzoom": {"type": "integer", "minimum": 0, "maximum": 30},
        "maxzoom": {"type": "integer", "minimum": 0, "maximum": 30},
        "bounds": {"type": "array", "items": {"type": "number"}, "minItems": 4, "maxItems": 4},
        "center": {"type": "array", "items": {"type": "number"}, "minItems": 3, "maxItems": 3},
        "fillzoom": {"type": "integer", "minimum": 0, "maximum": 30},
        "grids": {"type": "array", "items": {"type": "string"}},
        "data": {"type": "array", "items": {"type": "string"}},
        "legend": {"type": "string"},
        "template": {"type": "string"},
    },
}


def tile_of(lon: float, lat: float, z: int) -> Tile:
    x, y, _, _ = tile_range((lon, lat, lon, lat), z)
    return Tile(z, x, y)


def tile_xy(lon: float, lat: float, tile: Tile) -> tuple[float, float]:
    """Where a lon/lat falls in the tile's 4096 grid (y up, as mapbox-vector-tile returns)."""
    mx, my = TO_3857.transform(lon, lat)
    left = -HALF_WORLD + tile.x * tile.width_m
    bottom = HALF_WORLD - (tile.y + 1) * tile.width_m
    return (mx - left) / tile.width_m * EXTENT, (my - bottom) / tile.width_m * EXTENT


def decode(body: bytes) -> dict[str, Any]:
    return dict(mapbox_vector_tile.decode(body))


def features(tile: dict[str, Any], layer: str) -> list[dict[str, Any]]:
    return list(tile.get(layer, {}).get("features", []))


def points(geometry: dict[str, Any]) -> list[tuple[float, float]]:
    coords = geometry["coordinates"]
    out: list[tuple[float, float]] = []

    def walk(c: Any) -> None:
        if isinstance(c[0], (int, float)):
            out.append((float(c[0]), float(c[1])))
        else:
            for part in c:
                walk(part)

    walk(coords)
    return out


@pytest.fixture()
def enterprise(db: psycopg.Connection) -> dict[str, Any]:
    row = db.execute(
        "SELECT id, ST_X(geom), ST_Y(geom), coalesce(dynamic_color, inherent_color)"
        " FROM enterprises WHERE dynamic_color IS NOT NULL ORDER BY id LIMIT 1"
    ).fetchone()
    assert row is not None
    return {"id": row[0], "lon": row[1], "lat": row[2], "color": row[3]}


def get_tile(client: httpx.Client, layers: str, tile: Tile, **kw: Any) -> httpx.Response:
    return client.get(f"/tiles/{layers}/{tile.z}/{tile.x}/{tile.y}.mvt", **kw)


# -- catalog, TileJSON, style -------------------------------------------------------------------
def test_catalog_lists_every_registry_layer(client: httpx.Client) -> None:
    r = client.get("/tiles")
    assert r.status_code == 200
    names = [entry["name"] for entry in r.json()["layers"]]
    assert names == list(TILE_LAYERS)
    assert {"enterprises", "tankers", "tanker_tracks", "h3_enterprises"} <= set(names)


def test_tilejson_validates_and_lists_fields(client: httpx.Client) -> None:
    for name in ("enterprises", "enterprises,districts", "tanker_tracks"):
        r = client.get(f"/tiles/{name}.json")
        assert r.status_code == 200
        doc = r.json()
        jsonschema.validate(doc, TILEJSON_SCHEMA)
        url, _, query = doc["tiles"][0].partition("?")
        assert url.endswith(f"/tiles/{name}/{{z}}/{{x}}/{{y}}.mvt")
        assert query.startswith("t=")  # a tile token, never the key (tests/test_secrets.py)
        assert [v["id"] for v in doc["vector_layers"]] == name.split(",")
    doc = client.get("/tiles/enterprises.json").json()
    fields = doc["vector_layers"][0]["fields"]
    assert set(fields) == set(ENTERPRISES.fields)
    assert fields["color"].startswith("String")
    assert fields["count"].startswith("Number")
    west, south, east, north = doc["bounds"]
    # The districts' extent (other tests add districts of their own), never the whole world.
    assert west <= 121.2 and east >= 122.2 and south <= 29.6 and north >= 30.2
    assert (west, south, east, north) != (-180, -85.0511287798066, 180, 85.0511287798066)
    assert east - west < 90


def test_style_uses_the_four_colours(client: httpx.Client) -> None:
    r = client.get("/styles/risk.json")
    assert r.status_code == 200
    style = r.json()
    assert style["version"] == 8
    text = r.text
    for hex_code in ("#E02020", "#FF8C00", "#FFD700", "#1E6FD9"):
        assert hex_code in text
    assert set(style["sources"]) == set(TILE_LAYERS)
    ids = {layer["id"] for layer in style["layers"]}
    assert {"enterprises", "overlay_zones-fill", "pipeline_segments"} <= ids


# -- content ---------------------------------------------------------------------------------------
def test_enterprise_tile_holds_the_enterprise(
    client: httpx.Client, enterprise: dict[str, Any], tmp_path: Path
) -> None:
    tile = tile_of(enterprise["lon"], enterprise["lat"], 15)
    r = get_tile(client, "enterprises", tile)
    assert r.status_code == 200
    assert r.headers["content-type"] == "application/vnd.mapbox-vector-tile"
    assert r.headers["content-encoding"] == "gzip"
    # A keyed caller's tile: never shared, always revalidated (issue 13: the map never lies).
    assert r.headers["cache-control"] == "private, no-cache"
    assert "X-API-Key" in r.headers["vary"] and "Cookie" in r.headers["vary"]
    decoded = decode(r.content)
    assert decoded["enterprises"]["extent"] == EXTENT
    feats = features(decoded, "enterprises")
    ours = [f for f in feats if f["id"] == enterprise["id"]]
    assert len(ours) == 1
    props = ours[0]["properties"]
    assert props["id"] == enterprise["id"]
    assert props["color"] == enterprise["color"]
    assert set(props) <= set(ENTERPRISES.fields)
    assert {"name", "category", "color"} <= set(props)
    (px, py) = points(ours[0]["geometry"])[0]
    ex, ey = tile_xy(enterprise["lon"], enterprise["lat"], tile)
    assert abs(px - ex) <= 1 and abs(py - ey) <= 1
    for f in feats:
        for x, y in points(f["geometry"]):
            assert -BUFFER <= x <= EXTENT + BUFFER and -BUFFER <= y <= EXTENT + BUFFER

    # GDAL reads the same tile; a z/x/y path gives it the georeferencing.
    path = tmp_path / str(tile.z) / str(tile.x) / f"{tile.y}.pbf"
    path.parent.mkdir(parents=True)
    path.write_bytes(r.content)  # httpx already removed the gzip
    assert "enterprises" in [name for name, _ in pyogrio.list_layers(path)]
    df = pyogrio.read_dataframe(path, layer="enterprises")
    row = df[df["id"] == enterprise["id"]]
    assert len(row) == 1
    assert row.iloc[0]["color"] == enterprise["color"]
    mx, my = TO_3857.transform(enterprise["lon"], enterprise["lat"])
    geom = row.geometry.iloc[0]
    assert math.hypot(geom.x - mx, geom.y - my) < tile.width_m / EXTENT * 2


def test_polygons_and_lines_decode_with_both_readers(
    client: httpx.Client, db: psycopg.Connection, tmp_path: Path
) -> None:
    for layer, table in (("hazard_sources", "hazard_sources"), ("pipeline_segments", None)):
        row = db.execute(
            f"SELECT id, ST_X(ST_PointOnSurface(geom)), ST_Y(ST_PointOnSurface(geom))"
            f" FROM {table or 'pipeline_segments'} ORDER BY id LIMIT 1"
        ).fetchone()
        assert row is not None
        tile = tile_of(row[1], row[2], 14)
        r = get_tile(client, layer, tile)
        assert r.status_code == 200, layer
        feats = features(decode(r.content), layer)
        assert row[0] in {f["id"] for f in feats}
        fields = TILE_LAYERS[layer].fields
        for f in feats:
            assert set(f["properties"]) <= set(fields)
        path = tmp_path / layer / str(tile.z) / str(tile.x) / f"{tile.y}.pbf"
        path.parent.mkdir(parents=True)
        path.write_bytes(r.content)
        df = pyogrio.read_dataframe(path, layer=layer)
        assert row[0] in set(df["id"])


def test_comma_list_returns_both_layers(client: httpx.Client, enterprise: dict[str, Any]) -> None:
    tile = tile_of(enterprise["lon"], enterprise["lat"], 13)
    r = get_tile(client, "enterprises,districts", tile)
    assert r.status_code == 200
    decoded = decode(r.content)
    assert {"enterprises", "districts"} <= set(decoded)
    assert features(decoded, "districts")[0]["properties"]["code"]


def test_h3_layer_resolution_follows_zoom(client: httpx.Client, enterprise: dict[str, Any]) -> None:
    tile = tile_of(enterprise["lon"], enterprise["lat"], 12)
    r = get_tile(client, "h3_enterprises", tile)
    assert r.status_code == 200
    feats = features(decode(r.content), "h3_enterprises")
    assert feats and {f["properties"]["res"] for f in feats} == {8}
    assert all(f["properties"]["color"] in LIVE_COLORS for f in feats)
    assert sum(f["properties"]["count"] for f in feats) >= 1


def test_tracks_in_a_time_window(client: httpx.Client, db: psycopg.Connection) -> None:
    row = db.execute(
        "SELECT vehicle_id, max(ts), (array_agg(lon ORDER BY ts DESC))[1],"
        " (array_agg(lat ORDER BY ts DESC))[1] FROM positions"
        " GROUP BY vehicle_id ORDER BY count(*) DESC LIMIT 1"
    ).fetchone()
    assert row is not None, "the demo city has tanker fixes"
    vehicle, last, lon, lat = row
    tile = tile_of(lon, lat, 13)
    window = {"from": (last - dt.timedelta(hours=2)).isoformat(), "to": last.isoformat()}
    window["to"] = (last + dt.timedelta(seconds=1)).isoformat()
    r = get_tile(client, "tanker_tracks", tile, params=window)
    assert r.status_code == 200
    tracks = {f["id"]: f for f in features(decode(r.content), "tanker_tracks")}
    assert vehicle in tracks
    assert tracks[vehicle]["geometry"]["type"] in ("LineString", "MultiLineString")
    latest = get_tile(client, "tankers", tile_of(lon, lat, 14), params={"at": window["to"]})
    assert latest.status_code == 200
    assert vehicle in {f["id"] for f in features(decode(latest.content), "tankers")}
    bad = get_tile(
        client, "tanker_tracks", tile, params={"from": window["to"], "to": window["from"]}
    )
    assert bad.status_code == 422
    long = {"from": "2020-01-01T00:00:00Z", "to": "2020-03-01T00:00:00Z"}
    assert get_tile(client, "tanker_tracks", tile, params=long).status_code == 422


# -- generalisation ----------------------------------------------------------------------------
def test_clusters_keep_the_red_one_visible(client: httpx.Client, db: psycopg.Connection) -> None:
    row = db.execute(
        "SELECT id, ST_X(geom), ST_Y(geom) FROM enterprises"
        " WHERE coalesce(dynamic_color, inherent_color) = 'red' ORDER BY id LIMIT 1"
    ).fetchone()
    if row is None:  # make one: the test owns enterprise colours it sets
        row = db.execute(
            "UPDATE enterprises SET dynamic_color = 'red' WHERE id = (SELECT min(id) FROM"
            " enterprises) RETURNING id, ST_X(geom), ST_Y(geom)"
        ).fetchone()
        assert row is not None
    _, lon, lat = row
    z = 9
    assert ENTERPRISES.cluster_below is not None and z < ENTERPRISES.cluster_below
    tile = tile_of(lon, lat, z)
    r = get_tile(client, "enterprises", tile)
    assert r.status_code == 200
    clusters = features(decode(r.content), "enterprises")
    total = db.execute("SELECT count(*) FROM enterprises").fetchone()
    assert clusters and total is not None
    assert sum(f["properties"]["count"] for f in clusters) <= total[0]
    assert all(set(f["properties"]) == {"count", "color"} for f in clusters)
    # The red enterprise's grid cell is a red cluster, however many blue ones share it.
    cells = ClusterGrid().cells(z)  # coarse at city zoom (issue 19)
    cell = tile.width_m / cells
    mx, my = TO_3857.transform(lon, lat)
    fid = math.floor((mx + HALF_WORLD) / cell) * (1 << z) * cells + math.floor(
        (HALF_WORLD - my) / cell
    )
    mine = [f for f in clusters if f["id"] == fid]
    assert len(mine) == 1
    assert mine[0]["properties"]["color"] == "red"


@pytest.fixture(scope="module")
def capped_server(database_url: str) -> Iterator[LiveServer]:
    settings = Settings(
        db=DatabaseSettings(url=database_url, pool_max=2),
        server=ServerSettings(),
        tiles=TilesSettings(feature_caps={"enterprises": 3}),
    )
    with LiveServer(settings) as server:
        yield server


def test_cap_keeps_the_worst_and_says_so(capped_server: LiveServer, db: psycopg.Connection) -> None:
    # The densest z13 tile of the demo city, where more than 3 enterprises stand.
    rows = db.execute(
        "SELECT ST_X(geom), ST_Y(geom), coalesce(dynamic_color, inherent_color) FROM enterprises"
    ).fetchall()
    by_tile: dict[Tile, list[str | None]] = {}
    for lon, lat, color in rows:
        by_tile.setdefault(tile_of(lon, lat, 13), []).append(color)
    tile, colors = max(by_tile.items(), key=lambda kv: len(kv[1]))
    assert len(colors) > 3
    with capped_server.client() as http:
        r = get_tile(http, "enterprises", tile)
    assert r.status_code == 200
    assert r.headers["x-tile-truncated"] == "enterprises"
    kept = [f["properties"].get("color") for f in features(decode(r.content), "enterprises")]
    assert len(kept) == 3

    def rank(c: str | None) -> int:
        return LIVE_COLORS.index(c) if c in LIVE_COLORS else 99

    assert sorted(map(rank, kept)) == sorted(map(rank, colors))[:3]


def test_zoom_outside_layer_range_is_empty(client: httpx.Client) -> None:
    r = client.get("/tiles/hazard_sources/3/6/3.mvt")
    assert r.status_code == 204 and r.content == b""


def test_no_demo_tile_over_500_kb(client: httpx.Client, enterprise: dict[str, Any]) -> None:
    everything = ",".join(TILE_LAYERS)
    for z in (6, 9, 11, 13):
        tile = tile_of(enterprise["lon"], enterprise["lat"], z)
        r = get_tile(client, everything, tile, headers={"Accept-Encoding": "identity"})
        assert r.status_code in (200, 204)
        assert len(r.content) < 500 * 1024, (z, len(r.content))


# -- errors ---------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("path", "status"),
    [
        ("/tiles/nosuch/10/1/1.mvt", 404),
        ("/tiles/enterprises,nosuch/10/1/1.mvt", 404),
        ("/tiles/nosuch.json", 404),
        ("/tiles/enterprises/23/0/0.mvt", 404),
        ("/tiles/enterprises/99999/0/0.mvt", 404),
        ("/tiles/enterprises/-1/0/0.mvt", 404),
        ("/tiles/enterprises/10/1024/0.mvt", 404),
        ("/tiles/enterprises/10/0/1024.mvt", 404),
        ("/tiles/enterprises/10/-1/0.mvt", 404),
        ("/tiles/enterprises/ten/0/0.mvt", 422),
        ("/tiles/enterprises/10/0/0.mvt?at=notatime", 422),
    ],
)
def test_bad_addresses_are_client_errors(client: httpx.Client, path: str, status: int) -> None:
    r = client.get(path)
    assert r.status_code == status, r.text
    assert r.json()["detail"]


# -- cache ----------------------------------------------------------------------------------
def test_etag_and_304(client: httpx.Client, enterprise: dict[str, Any]) -> None:
    tile = tile_of(enterprise["lon"], enterprise["lat"], 14)
    first = get_tile(client, "enterprises", tile)
    etag = first.headers["etag"]
    again = get_tile(client, "enterprises", tile, headers={"If-None-Match": etag})
    assert again.status_code == 304 and again.content == b""
    assert again.headers["etag"] == etag
    other = get_tile(client, "enterprises", tile, headers={"If-None-Match": 'W/"stale"'})
    assert other.status_code == 200 and other.content == first.content


def test_colour_change_reaches_the_tile(
    client: httpx.Client, db: psycopg.Connection, database_url: str
) -> None:
    row = db.execute(
        "SELECT id, ST_X(geom), ST_Y(geom), dynamic_color FROM enterprises e"
        " WHERE dynamic_color = inherent_color AND dynamic_color IN ('orange', 'yellow', 'blue')"
        " AND NOT EXISTS (SELECT 1 FROM hidden_dangers h WHERE h.enterprise_id = e.id)"
        " ORDER BY id DESC LIMIT 1"
    ).fetchone()
    assert row is not None
    ent_id, lon, lat, before = row
    raised = LIVE_COLORS[LIVE_COLORS.index(before) - 1]
    tiles = [tile_of(lon, lat, z) for z in (15, 12)]  # both plain (clusters < 12)
    old: dict[Tile, str] = {}
    for tile in tiles:  # cache both zooms
        r = get_tile(client, "enterprises", tile)
        old[tile] = r.headers["etag"]
        assert get_tile(client, "enterprises", tile).headers["etag"] == old[tile]
    db.execute(
        "INSERT INTO hidden_dangers (enterprise_id, title, is_major, status, found_at)"
        " VALUES (%s, 'tiles test: blocked exit', true, 'found', now())",
        (ent_id,),
    )

    async def run() -> None:
        conn = await psycopg.AsyncConnection.connect(database_url)
        async with conn:
            await recompute(conn, RecomputeConfig(), [ent_id])

    asyncio.run(run())
    deadline = time.monotonic() + 3
    while True:  # the NOTIFY purge lands within moments; poll briefly
        r = get_tile(client, "enterprises", tiles[0])
        ours = [f for f in features(decode(r.content), "enterprises") if f["id"] == ent_id]
        if (ours and ours[0]["properties"]["color"] == raised) or time.monotonic() > deadline:
            break
        time.sleep(0.05)
    assert ours[0]["properties"]["color"] == raised
    assert ours[0]["properties"]["dynamic_color"] == raised
    assert r.headers["etag"] != old[tiles[0]]
    assert get_tile(client, "enterprises", tiles[1]).headers["etag"] != old[tiles[1]]


def test_purge_drops_only_tiles_touching_the_bbox_at_every_zoom() -> None:
    cache = TileCache(10_000_000)
    here = (121.5, 29.9)
    far = (100.0, 10.0)
    keys: dict[str, Tile] = {}
    for z in (4, 10, 16, 22):
        for name, (lon, lat) in (("here", here), ("far", far)):
            tile = tile_of(lon, lat, z)
            key = f"enterprises/{z}/{name}"
            keys[key] = tile
            entry = Entry(b"x", "e", (), ("enterprises",), tile)
            assert cache.put(key, entry, cache.generations(["enterprises"]))
    other = Entry(b"x", "e", (), ("districts",), tile_of(*here, 10))
    cache.put("districts", other, cache.generations(["districts"]))
    dropped = cache.purge("enterprises", (here[0], here[1], here[0] + 1e-6, here[1] + 1e-6))
    assert dropped == 4
    assert all(cache.get(k) is None for k in keys if "here" in k)
    assert all(cache.get(k) is not None for k in keys if "far" in k)
    assert cache.get("districts") is not None
    # A render that began before the purge is not stored afterwards.
    stale = cache.generations(["enterprises"])
    cache.purge("enterprises", None)
    assert not cache.put("late", Entry(b"x", "e", (), ("enterprises",), Tile(0, 0, 0)), stale)


def test_cache_is_bounded_by_bytes() -> None:
    cache = TileCache(10 * 1024)
    for i in range(100):
        cache.put(f"k{i}", Entry(b"y" * 1000, "e", (), ("a",), Tile(0, 0, 0)), (0,))
    assert cache.bytes <= 10 * 1024
    assert cache.get("k99") is not None and cache.get("k0") is None


# -- offline export -------------------------------------------------------------------------------
def test_export_pmtiles_and_mbtiles(database_url: str, tmp_path: Path) -> None:
    from pmtiles.reader import MmapSource, Reader

    from tiles.engine import parse_layers
    from tiles.export import export_tiles

    bbox = (121.2, 29.6, 122.2, 30.2)
    layers = parse_layers("enterprises,districts", TILE_LAYERS)
    pm = tmp_path / "city.pmtiles"
    report = asyncio.run(export_tiles(database_url, layers, bbox, range(8, 11), pm, False))
    assert report.written > 0
    with pm.open("rb") as f:
        reader = Reader(MmapSource(f))
        assert (reader.header()["min_zoom"], reader.header()["max_zoom"]) == (8, 10)
        assert reader.metadata()["vector_layers"][0]["id"] == "enterprises"
    mb = tmp_path / "city.mbtiles"
    asyncio.run(export_tiles(database_url, layers, bbox, range(8, 11), mb, False))
    names = {name for name, _ in pyogrio.list_layers(mb)}
    assert {"enterprises", "districts"} <= names
    assert len(pyogrio.read_dataframe(mb, layer="districts")) > 0
