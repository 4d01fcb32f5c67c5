"""OGC API – Tiles under /ogc: real HTTP, real PostGIS, tiles decoded, and GDAL's OGCAPI
driver as the real client."""

from __future__ import annotations

from typing import Any

import httpx
import pytest

from tests import gdal_client
from tests.conftest import LiveServer, key_for
from tests.test_tiles import TO_3857, decode, enterprise, features, tile_of  # noqa: F401 (fixture)

OGC_TILES = "http://www.opengis.net/spec/ogcapi-tiles-1/1.0/conf/"


def crawl(http: httpx.Client, start: str, limit: int = 200) -> dict[str, dict[str, Any]]:
    """Every JSON document reachable from ``start`` through non-templated /ogc links."""
    seen: dict[str, dict[str, Any]] = {}
    todo = [start]
    while todo and len(seen) < limit:
        url = todo.pop()
        if url in seen:
            continue
        r = http.get(url)
        assert r.status_code == 200, (url, r.text[:300])
        assert r.headers["content-type"].startswith("application/json"), url
        doc = r.json()
        seen[url] = doc
        for link in links_of(doc):
            href = link["href"]
            if link.get("templated"):
                continue
            if "/ogc" in href and link.get("type", "application/json") == "application/json":
                todo.append(href)
            else:  # openapi.json, TileJSON: they answer too
                assert http.get(href).status_code == 200, href
    return seen


def links_of(doc: Any) -> list[dict[str, Any]]:
    out: list[dict[str, Any]] = []
    if isinstance(doc, dict):
        for k, v in doc.items():
            if k == "links" and isinstance(v, list):
                out.extend(v)
            else:
                out.extend(links_of(v))
    elif isinstance(doc, list):
        for v in doc:
            out.extend(links_of(v))
    return out


def test_a_query_key_works_and_is_never_handed_out(live_server: LiveServer) -> None:
    key = key_for(live_server.url)
    base = f"{live_server.base_url}/ogc"
    for path in ("", "/collections", "/collections/enterprises/tiles/WebMercatorQuad"):
        r = httpx.get(f"{base}{path}", params={"key": key})
        assert r.status_code == 200, path
        assert key not in r.text  # links and templates never carry the key
    assert httpx.get(f"{base}/collections").status_code == 401


def test_links_resolve_with_a_key_header(live_server: LiveServer) -> None:
    with live_server.client() as http:
        docs = crawl(http, f"{live_server.base_url}/ogc")
    base = f"{live_server.base_url}/ogc"
    landing = docs[base]
    rels = {link["rel"]: link["href"] for link in landing["links"]}
    assert rels["conformance"] == f"{base}/conformance"
    assert rels["data"] == f"{base}/collections"
    assert rels["service-desc"].endswith("/openapi.json")
    assert rels["http://www.opengis.net/def/rel/ogc/1.0/tiling-schemes"] == f"{base}/tileMatrixSets"
    # Every tile collection, its tileset list and its tileset metadata were reached.
    collections = docs[f"{base}/collections"]["collections"]
    names = {c["id"] for c in collections if c.get("dataType") == "vector"}
    assert {"enterprises", "tankers", "districts"} <= names
    assert "pipelines" not in names  # features only: no tiles
    for name in names:
        assert f"{base}/collections/{name}/tiles/WebMercatorQuad" in docs
    assert f"{base}/tiles/WebMercatorQuad" in docs


def test_conformance_declares_tiles(client: httpx.Client) -> None:
    classes = set(client.get("/ogc/conformance").json()["conformsTo"])
    for name in ("core", "tileset", "tilesets-list", "geodata-tilesets", "dataset-tilesets", "mvt"):
        assert OGC_TILES + name in classes
    # Nothing claimed that is not built: no maps, no other tile matrix set, no coverages.
    assert not any(c.endswith(("/png", "/jpeg", "/geotiff")) for c in classes)
    assert not any("ogcapi-maps" in c or "ogcapi-coverages" in c for c in classes)


def test_web_mercator_quad_numbers(client: httpx.Client) -> None:
    tms = client.get("/ogc/tileMatrixSets/WebMercatorQuad").json()
    assert tms["id"] == "WebMercatorQuad"
    assert tms["crs"] == "http://www.opengis.net/def/crs/EPSG/0/3857"
    matrices = tms["tileMatrices"]
    assert [m["id"] for m in matrices] == [str(z) for z in range(23)]
    z0 = matrices[0]
    assert z0["scaleDenominator"] == pytest.approx(559082264.0287178, rel=1e-12)
    assert z0["cellSize"] == pytest.approx(156543.03392804097, rel=1e-12)
    assert z0["pointOfOrigin"] == [-20037508.3427892, 20037508.3427892]
    for z, m in enumerate(matrices):
        assert m["matrixWidth"] == m["matrixHeight"] == 2**z
        assert m["tileWidth"] == m["tileHeight"] == 256
        assert m["cellSize"] == pytest.approx(156543.03392804097 / 2**z, rel=1e-12)
    r = client.get("/ogc/tileMatrixSets/WorldCRS84Quad")
    assert r.status_code == 404 and r.json()["errors"][0]["field"] == "tileMatrixSetId"


def test_tileset_metadata(
    client: httpx.Client,
    enterprise: dict[str, Any],  # noqa: F811 (the fixture imported above)
) -> None:
    doc = client.get("/ogc/collections/enterprises/tiles/WebMercatorQuad").json()
    assert doc["dataType"] == "vector"
    assert doc["tileMatrixSetURI"].endswith("/tilematrixset/OGC/1.0/WebMercatorQuad")
    limits = {lim["tileMatrix"]: lim for lim in doc["tileMatrixSetLimits"]}
    assert sorted(limits, key=int) == [str(z) for z in range(6, 23)]  # the layer's zooms
    tile = tile_of(enterprise["lon"], enterprise["lat"], 12)
    at12 = limits["12"]
    assert at12["minTileCol"] <= tile.x <= at12["maxTileCol"]
    assert at12["minTileRow"] <= tile.y <= at12["maxTileRow"]
    (layer,) = doc["layers"]
    assert layer["id"] == "enterprises" and layer["geometryDimension"] == 0
    assert "color" in layer["propertiesSchema"]["properties"]
    item = next(link for link in doc["links"] if link["rel"] == "item")
    assert item["type"] == "application/vnd.mapbox-vector-tile" and item["templated"]
    assert "/tiles/enterprises/{tileMatrix}/{tileCol}/{tileRow}.mvt?t=" in item["href"]


def test_ogc_tile_equals_the_mvt_tile(
    live_server: LiveServer,
    client: httpx.Client,
    enterprise: dict[str, Any],  # noqa: F811 (the fixture imported above)
) -> None:
    tile = tile_of(enterprise["lon"], enterprise["lat"], 14)
    direct = client.get(f"/tiles/enterprises/{tile.z}/{tile.x}/{tile.y}.mvt")
    ogc = client.get(
        f"/ogc/collections/enterprises/tiles/WebMercatorQuad/{tile.z}/{tile.y}/{tile.x}"
    )
    assert direct.status_code == ogc.status_code == 200
    assert ogc.headers["content-type"] == "application/vnd.mapbox-vector-tile"
    doc = client.get("/ogc/collections/enterprises/tiles/WebMercatorQuad").json()
    template = next(link["href"] for link in doc["links"] if link["rel"] == "item")
    url = (
        template.replace("{tileMatrix}", str(tile.z))
        .replace("{tileRow}", str(tile.y))
        .replace("{tileCol}", str(tile.x))
    )
    via_template = httpx.get(url)  # no header: the template's tile token is the credential
    assert via_template.status_code == 200
    tiles = [decode(r.content) for r in (direct, ogc, via_template)]
    ids = [sorted(f["id"] for f in features(t, "enterprises")) for t in tiles]
    assert enterprise["id"] in ids[0] and ids[0] == ids[1] == ids[2]
    props = [
        sorted((f["id"], f["properties"]["color"]) for f in features(t, "enterprises"))
        for t in tiles
    ]
    assert props[0] == props[1] == props[2]
    assert tiles[0] == tiles[1]
    # The dataset tileset (all layers in one tile) holds the same enterprises.
    combined = client.get(f"/ogc/tiles/WebMercatorQuad/{tile.z}/{tile.y}/{tile.x}")
    assert combined.status_code == 200
    both = decode(combined.content)
    assert sorted(f["id"] for f in features(both, "enterprises")) == ids[0]
    assert "districts" in both


def test_bad_tile_addresses_name_the_field(client: httpx.Client) -> None:
    base = "/ogc/collections/enterprises/tiles/WebMercatorQuad"
    for path, field in (
        (f"{base}/23/0/0", "tileMatrix"),
        (f"{base}/2/4/0", "tileRow"),
        (f"{base}/2/0/9", "tileCol"),
        ("/ogc/collections/nope/tiles/WebMercatorQuad/0/0/0", "collectionId"),
        ("/ogc/collections/enterprises/tiles/Foo/0/0/0", "tileMatrixSetId"),
    ):
        r = client.get(path)
        assert r.status_code == 404, path
        assert r.json()["errors"][0]["field"] == field
    r = client.get(f"{base}/x/0/0")
    assert 400 <= r.status_code < 500 and "tileMatrix" in r.text


def test_a_tile_reader_sees_public_layers_only(live_server: LiveServer) -> None:
    with live_server.client("tile_reader") as http:
        names = {c["id"] for c in http.get("/ogc/collections").json()["collections"]}
        assert "enterprises" in names and "tankers" not in names and "alerts" not in names
        for path in (
            "/ogc/collections/tankers",
            "/ogc/collections/tankers/tiles",
            "/ogc/collections/tankers/tiles/WebMercatorQuad",
            "/ogc/collections/tankers/tiles/WebMercatorQuad/10/0/0",
        ):
            r = http.get(path)  # not theirs: as absent as an id that never existed
            assert r.status_code == 404, path
            err = r.json()["errors"][0]
            assert err["field"] == "collectionId" and "tankers" in err["reason"]
        doc = http.get("/ogc/collections/hazard_sources/tiles/WebMercatorQuad").json()
        props = doc["layers"][0]["propertiesSchema"]["properties"]
        assert "substances" not in props and "R" not in props and "grade" in props
        combined = http.get("/ogc/tiles/WebMercatorQuad").json()
        assert "tankers" not in {layer["id"] for layer in combined["layers"]}
    with live_server.client() as http:
        doc = http.get("/ogc/collections/hazard_sources/tiles/WebMercatorQuad").json()
        assert "substances" in doc["layers"][0]["propertiesSchema"]["properties"]


def test_ogc_needs_credentials(live_server: LiveServer) -> None:
    r = httpx.get(f"{live_server.base_url}/ogc/collections")
    assert r.status_code == 401


def test_gdal_reads_enterprises_from_the_tiles(
    live_server: LiveServer,
    enterprise: dict[str, Any],  # noqa: F811 (the fixture imported above)
) -> None:
    """GDAL's OGCAPI driver as a real client: collection → tilesets → tileset → tiles.

    For vector tiles the driver takes the collection's ``extent.spatial.bbox`` as coordinates
    of the tile matrix set's CRS (EPSG:3857) whatever its ``crs`` says (raster tiles only are
    reprojected from CRS84), so the box of interest is given in EPSG:3857 with its MINX…MAXY
    open options (docs/qgis.md) — as any GDAL user of an OGC API – Tiles server does."""
    key = key_for(live_server.url)
    source = f"OGCAPI:{live_server.base_url}/ogc/collections/enterprises"
    x, y = TO_3857.transform(enterprise["lon"], enterprise["lat"])
    box = {"MINX": x - 200, "MINY": y - 200, "MAXX": x + 200, "MAXY": y + 200}
    layers = gdal_client.list_layers(source, gdal_client.bearer(key), API="TILES", **box)
    assert "Zoom level 14" in layers and "Zoom level 22" in layers
    frame = gdal_client.read_dataframe(
        source, gdal_client.bearer(key), API="TILES", layer="Zoom level 14", **box
    )
    assert "color" in frame.columns
    assert enterprise["id"] in set(frame["id"].astype(int))
    row = frame[frame["id"].astype(int) == enterprise["id"]].iloc[0]
    assert row["color"] == enterprise["color"]
    gx, gy = row.geometry.x, row.geometry.y  # EPSG:3857, snapped to the tile grid
    assert abs(gx - x) < 20 and abs(gy - y) < 20
