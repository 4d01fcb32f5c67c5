"""OGC API – Features (Parts 1–3) under /ogc: real HTTP, real PostGIS, and GDAL's OAPIF
driver (through pyogrio) as the real client. Planted in an area of this module's own."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import psycopg
import pytest
from pyproj import Transformer

from layers.catalog import CATALOG
from tests import gdal_client
from tests.conftest import LiveServer, key_for
from tests.planting import plant_two_sites, square_wkt

LON, LAT = 126.70, 34.70
TAG = "HGCF"
CRS84 = "http://www.opengis.net/def/crs/OGC/1.3/CRS84"
EPSG4490 = "http://www.opengis.net/def/crs/EPSG/0/4490"
EPSG3857 = "http://www.opengis.net/def/crs/EPSG/0/3857"
#: Around everything planted here (A, B and the grid), nothing of the demo city.
BOX = (LON - 0.01, LAT - 0.01, LON + 0.05, LAT + 0.05)
BBOX = ",".join(str(v) for v in BOX)
#: The grid: (name suffix, category, diagnosis score, dx, dy) — dx/dy in 0.001°.
GRID = [
    ("G1", "storage", 95.0, 10, 10),
    ("G2", "storage", 85.0, 12, 10),
    ("G3", "production", 72.5, 14, 10),
    ("G4", "production", None, 16, 10),
    ("G5", "trading", 55.0, 10, 14),
    ("G6", "use", 88.0, 12, 14),
    ("G7", "storage", 91.0, 14, 14),
]


@pytest.fixture(scope="module")
def plant(database_url: str) -> Iterator[dict[str, Any]]:
    """Enterprises A (district d1) and B (d2) with hazard sources and risk units
    (tests/planting.py), and a grid of seven enterprises in d1 with categories and scores;
    A's and B's risk units assessed on known dates."""
    with psycopg.connect(database_url, autocommit=True) as c:
        out = plant_two_sites(c, TAG, "开放标准测试", LON, LAT, 0.001)
        grid = {}
        for i, (suffix, category, score, dx, dy) in enumerate(GRID):
            (eid,) = c.execute(
                "INSERT INTO enterprises (credit_code, name, category, is_hazmat, district,"
                " diagnosis_score, geom) VALUES (%s, %s, %s, %s, %s, %s,"
                " ST_SetSRID(ST_Point(%s, %s), 4326)) RETURNING id",
                (
                    f"91330200{TAG}G{i:05d}",
                    f"网格{suffix}",
                    category,
                    category in ("storage", "production", "trading", "use"),
                    out["d1"],
                    score,
                    LON + dx / 1000,
                    LAT + dy / 1000,
                ),
            ).fetchone()
            grid[suffix] = eid
        out["grid"] = grid
        zones = {}
        for key, retired in (("kept", False), ("retired", True)):
            (zid,) = c.execute(
                "INSERT INTO zones (code, name, kind, geom, retired_at) VALUES (%s, %s, 'school',"
                " ST_GeomFromText(%s, 4326), CASE WHEN %s THEN now() END) RETURNING id",
                (f"{TAG}-{key}", f"学校{key}", square_wkt(LON + 0.03, LAT + 0.03, 0.001), retired),
            ).fetchone()
            zones[key] = zid
        out["zones"] = zones
        c.execute(
            "UPDATE risk_units SET assessed_on = %s WHERE id = %s", ("2024-03-01", out["a"]["unit"])
        )
        c.execute(
            "UPDATE risk_units SET assessed_on = %s WHERE id = %s", ("2025-06-15", out["b"]["unit"])
        )
    yield out


@pytest.fixture(scope="module")
def keys(database_url: str, plant: dict[str, Any]) -> dict[str, str]:
    return {
        "admin": key_for(database_url),
        "ent_a": key_for(database_url, "enterprise", enterprise_id=plant["a"]["id"]),
        "reg_d1": key_for(database_url, "regulator", districts=[plant["d1"]]),
        "officer": key_for(database_url, "officer"),
        "tiles": key_for(database_url, "tile_reader"),
    }


def as_(live_server: LiveServer, keys: dict[str, str], who: str) -> httpx.Client:
    return live_server.client(key=keys[who])


def items(http: httpx.Client, collection: str, **params: Any) -> dict[str, Any]:
    r = http.get(f"/ogc/collections/{collection}/items", params=params)
    assert r.status_code == 200, r.text[:400]
    assert r.headers["content-type"].startswith("application/geo+json")
    doc: dict[str, Any] = r.json()
    assert doc["type"] == "FeatureCollection"
    assert doc["numberReturned"] == len(doc["features"])
    return doc


def by_id(doc: dict[str, Any]) -> dict[int, dict[str, Any]]:
    return {f["id"]: f for f in doc["features"]}


def error_field(r: httpx.Response) -> str:
    assert 400 <= r.status_code < 500, (r.status_code, r.text[:300])
    body = r.json()
    assert "SELECT" not in r.text and "psycopg" not in r.text
    return str(body["errors"][0]["field"])


# -- landing page, conformance, collections --------------------------------------------------


def test_landing_page_links(live_server: LiveServer, keys: dict[str, str]) -> None:
    with as_(live_server, keys, "admin") as http:
        doc = http.get("/ogc").json()
        rels = {link["rel"]: link for link in doc["links"]}
        base = f"{live_server.base_url}/ogc"
        assert rels["self"]["href"] == base
        assert rels["service-desc"]["href"] == f"{base}/openapi.json"
        assert rels["service-desc"]["type"].startswith("application/vnd.oai.openapi+json")
        # The OGC API's own definition: server /ogc, the caller's collections' own parameters.
        ogc_api = http.get(rels["service-desc"]["href"])
        assert ogc_api.headers["content-type"].startswith("application/vnd.oai.openapi+json")
        api = ogc_api.json()
        assert api["servers"][0]["url"] == base
        names = {
            p["name"] for p in api["paths"]["/collections/enterprises/items"]["get"]["parameters"]
        }
        assert {"bbox", "crs", "filter", "filter-lang", "name", "diagnosis_score"} <= names
        assert "datetime" not in names and "site" not in names
        units = api["paths"]["/collections/risk_units/items"]["get"]["parameters"]
        assert "datetime" in {p["name"] for p in units}
        assert rels["service-doc"]["href"].endswith("/docs")
        assert rels["conformance"]["href"] == f"{base}/conformance"
        assert rels["data"]["href"] == f"{base}/collections"
        # The service description documents the items' success body.
        spec = http.get("/openapi.json").json()
        op = spec["paths"]["/ogc/collections/{collectionId}/items"]["get"]
        assert "application/geo+json" in op["responses"]["200"]["content"]
        assert "FeatureCollection" in json.dumps(spec["components"]["schemas"])


def test_conformance_declares_features_crs_filter_and_tiles(client: httpx.Client) -> None:
    classes = set(client.get("/ogc/conformance").json()["conformsTo"])
    features = "http://www.opengis.net/spec/ogcapi-features-1/1.0/conf/"
    part3 = "http://www.opengis.net/spec/ogcapi-features-3/1.0/conf/"
    cql2 = "http://www.opengis.net/spec/cql2/1.0/conf/"
    for uri in (
        f"{features}core",
        f"{features}geojson",
        f"{features}oas30",
        "http://www.opengis.net/spec/ogcapi-features-2/1.0/conf/crs",
        f"{part3}filter",
        f"{part3}features-filter",
        f"{cql2}cql2-text",
        f"{cql2}cql2-json",
        f"{cql2}basic-cql2",
        f"{cql2}basic-spatial-functions",
        "http://www.opengis.net/spec/ogcapi-tiles-1/1.0/conf/core",
    ):
        assert uri in classes, uri


def test_collections_follow_the_catalogue_and_the_role(
    live_server: LiveServer, keys: dict[str, str], plant: dict[str, Any]
) -> None:
    rest_layers = {coll.layer for coll in CATALOG.collections.values()}
    with as_(live_server, keys, "admin") as http:
        doc = http.get("/ogc/collections").json()
    colls = {c["id"]: c for c in doc["collections"]}
    features = {i for i, c in colls.items() if c.get("itemType") == "feature"}
    assert features == rest_layers  # every REST layer, nothing hand-listed
    assert set(CATALOG.tiles) <= set(colls)  # and every tile layer
    ent = colls["enterprises"]
    assert ent["title"] == CATALOG.layers["enterprises"].title
    assert ent["extent"]["spatial"]["crs"] == CRS84
    (box,) = ent["extent"]["spatial"]["bbox"]
    assert len(box) == 4 and -180 <= box[0] < box[2] <= 180
    assert ent["crs"] == [CRS84, EPSG4490, EPSG3857] and ent["storageCrs"] == CRS84
    rels = {link["rel"]: link for link in ent["links"]}
    assert rels["items"]["href"].endswith("/ogc/collections/enterprises/items")
    assert rels["items"]["type"] == "application/geo+json"
    assert rels["http://www.opengis.net/def/rel/ogc/1.0/queryables"]["href"].endswith("/queryables")
    assert rels["http://www.opengis.net/def/rel/ogc/1.0/tilesets-vector"]["href"].endswith(
        "/ogc/collections/enterprises/tiles"
    )
    assert rels["describedby"]["href"].endswith("/tiles/enterprises.json")  # TileJSON
    # Pipelines are features only; tankers tiles only; units and vehicles have time.
    assert "dataType" not in colls["pipelines"] and "itemType" not in colls["tankers"]
    assert "temporal" not in ent["extent"]
    interval = colls["risk_units"]["extent"]["temporal"]["interval"][0]
    assert interval[0] <= "2024-03-01T00:00:00Z" and interval[1] >= "2025-06-15T00:00:00Z"
    with as_(live_server, keys, "officer") as http:
        doc = http.get("/ogc/collections").json()
        officer = {c["id"]: c for c in doc["collections"]}
        assert officer["vehicles"]["itemType"] == "feature"
        assert "itemType" not in officer.get("enterprises", {})  # a site layer: not theirs
        r = http.get("/ogc/collections/enterprises/items")
        assert r.status_code == 404 and error_field(r) == "collectionId"
        r = http.get("/ogc/collections/pipelines")  # neither features nor tiles for officers
        assert r.status_code == 404 and error_field(r) == "collectionId"
    with as_(live_server, keys, "tiles") as http:
        doc = http.get("/ogc/collections").json()
        assert not any(c.get("itemType") for c in doc["collections"])
        for path in ("/items", "/queryables", f"/items/{plant['a']['id']}"):
            r = http.get(f"/ogc/collections/enterprises{path}")
            assert r.status_code == 404 and error_field(r) == "collectionId", path


def test_queryables_are_the_callers_properties(
    live_server: LiveServer, keys: dict[str, str]
) -> None:
    with as_(live_server, keys, "admin") as http:
        r = http.get("/ogc/collections/enterprises/queryables")
        assert r.status_code == 200
        assert r.headers["content-type"].startswith("application/schema+json")
        props = r.json()["properties"]
    assert props["geometry"]["x-ogc-role"] == "primary-geometry"
    assert props["name"]["type"] == "string" and props["diagnosis_score"]["type"] == "number"
    assert props["is_hazmat"]["type"] == "boolean"
    assert "site" not in props  # a JSON object: not queryable
    rest_props = {p.name for p in CATALOG.layers["enterprises"].properties if p.rest}
    assert set(props) - {"geometry"} <= rest_props


# -- items: the same features as /api --------------------------------------------------------


@pytest.mark.parametrize("who", ["admin", "reg_d1", "ent_a"])
@pytest.mark.parametrize("collection", ["enterprises", "hazard_sources"])
def test_items_equal_the_rest_api_for_a_bbox(
    live_server: LiveServer, keys: dict[str, str], plant: dict[str, Any], who: str, collection: str
) -> None:
    with as_(live_server, keys, who) as http:
        path = collection.replace("_", "-")
        rest = http.get(f"/api/{path}", params={"bbox": BBOX})
        assert rest.status_code == 200
        ogc = items(http, collection, bbox=BBOX)
    want, got = by_id(rest.json()), by_id(ogc)
    assert got.keys() == want.keys()
    for fid, feature in got.items():
        assert feature["geometry"] == want[fid]["geometry"]
        assert feature["properties"] == want[fid]["properties"]
    assert ogc["numberMatched"] == rest.json()["numberMatched"] == len(got)
    a, b = plant["a"], plant["b"]
    ids = (
        set(got)
        if collection == "enterprises"
        else {f["properties"]["enterprise_id"] for f in got.values()}
    )
    if who == "admin":
        assert {a["id"], b["id"]} <= ids
    elif who == "reg_d1":  # district d1: A and the grid, never B
        assert a["id"] in ids and b["id"] not in ids
    else:  # enterprise A: only its own
        assert ids == {a["id"]}


def test_a_retired_row_is_served_by_neither_api(
    live_server: LiveServer, keys: dict[str, str], plant: dict[str, Any]
) -> None:
    """A zone retired by a DELETE (history names it) leaves /api's lists: /ogc's too."""
    kept, retired = plant["zones"]["kept"], plant["zones"]["retired"]
    with as_(live_server, keys, "admin") as http:
        rest = set(by_id(http.get("/api/zones", params={"bbox": BBOX}).json()))
        ogc = set(by_id(items(http, "zones", bbox=BBOX)))
        assert ogc == rest and kept in ogc and retired not in ogc
        assert http.get(f"/ogc/collections/zones/items/{kept}").status_code == 200
        r = http.get(f"/ogc/collections/zones/items/{retired}")
        assert r.status_code == 404 and error_field(r) == "featureId"


def test_one_item_and_the_scope(
    live_server: LiveServer, keys: dict[str, str], plant: dict[str, Any]
) -> None:
    a, b = plant["a"]["id"], plant["b"]["id"]
    with as_(live_server, keys, "reg_d1") as http:
        r = http.get(f"/ogc/collections/enterprises/items/{a}")
        assert r.status_code == 200 and r.headers["content-type"].startswith("application/geo+json")
        feature = r.json()
        assert feature["id"] == a and feature["geometry"]["coordinates"] == pytest.approx(
            [plant["a"]["lon"], plant["a"]["lat"]]
        )
        assert feature["properties"] == http.get(f"/api/enterprises/{a}").json()["properties"]
        r = http.get(f"/ogc/collections/enterprises/items/{b}")  # another district's: absent
        assert r.status_code == 404 and error_field(r) == "featureId"
        r = http.get("/ogc/collections/enterprises/items/999999999")
        assert r.status_code == 404 and error_field(r) == "featureId"
        r = http.get(f"/ogc/collections/enterprises/items/{a}", params={"crs": EPSG4490})
        assert r.headers["content-crs"] == f"<{EPSG4490}>"
        assert r.json()["geometry"]["coordinates"] == pytest.approx(
            [plant["a"]["lat"], plant["a"]["lon"]]
        )


def test_paging_links_walk_every_feature_once(
    live_server: LiveServer, keys: dict[str, str], plant: dict[str, Any]
) -> None:
    with as_(live_server, keys, "admin") as http:
        first = items(http, "enterprises", bbox=BBOX, limit=2, category="storage")
        total = first["numberMatched"]
        assert total == 1 + 1 + 3  # A, B (storage) and G1, G2, G7
        seen: list[int] = []
        doc, pages = first, 0
        while True:
            pages += 1
            seen += [f["id"] for f in doc["features"]]
            assert all(f["properties"]["category"] == "storage" for f in doc["features"])
            rels = {link["rel"]: link["href"] for link in doc["links"]}
            if pages > 1:
                assert "prev" in rels
            if "next" not in rels:
                break
            assert "bbox=" in rels["next"] and "category=storage" in rels["next"]
            assert "limit=2" in rels["next"]
            r = http.get(rels["next"])
            assert r.status_code == 200
            doc = r.json()
        assert pages == 3
        assert len(seen) == len(set(seen)) == total
        assert seen == sorted(seen)
        # Without a limit: GEORISK_OGC_DEFAULT_LIMIT (100), the rest behind `next`.
        everything = items(http, "enterprises")
        assert everything["numberMatched"] > 100 and everything["numberReturned"] == 100
        assert "next" in {link["rel"] for link in everything["links"]}


def test_a_query_key_is_never_in_a_link(live_server: LiveServer, keys: dict[str, str]) -> None:
    key = keys["admin"]
    r = httpx.get(
        f"{live_server.base_url}/ogc/collections/enterprises/items",
        params={"key": key, "bbox": BBOX, "limit": 1},
    )
    assert r.status_code == 200
    assert key not in r.text and "next" in {link["rel"] for link in r.json()["links"]}


# -- Part 2: CRS ------------------------------------------------------------------------------


def test_crs_output_and_bbox_crs(
    live_server: LiveServer, keys: dict[str, str], plant: dict[str, Any]
) -> None:
    with as_(live_server, keys, "admin") as http:
        plain = http.get("/ogc/collections/enterprises/items", params={"bbox": BBOX})
        assert plain.headers["content-crs"] == f"<{CRS84}>"
        lonlat = {f["id"]: f["geometry"]["coordinates"] for f in plain.json()["features"]}
        r = http.get("/ogc/collections/enterprises/items", params={"bbox": BBOX, "crs": EPSG4490})
        assert r.status_code == 200 and r.headers["content-crs"] == f"<{EPSG4490}>"
        latlon = {f["id"]: f["geometry"]["coordinates"] for f in r.json()["features"]}
        assert latlon.keys() == lonlat.keys()
        for fid, (lon, lat) in lonlat.items():
            assert latlon[fid] == pytest.approx([lat, lon], abs=1e-6)  # axes swapped
        # bbox in EPSG:4490 is lat,lon order: the same box, the same features.
        box4490 = f"{BOX[1]},{BOX[0]},{BOX[3]},{BOX[2]}"
        same = items(http, "enterprises", bbox=box4490, **{"bbox-crs": EPSG4490})
        assert set(by_id(same)) == set(lonlat)
        # EPSG:3857 out and in.
        to_3857 = Transformer.from_crs(4326, 3857, always_xy=True)
        merc = items(http, "enterprises", bbox=BBOX, crs=EPSG3857)
        a = plant["a"]
        x, y = to_3857.transform(a["lon"], a["lat"])
        assert by_id(merc)[a["id"]]["geometry"]["coordinates"] == pytest.approx([x, y], abs=0.05)
        x0, y0 = to_3857.transform(BOX[0], BOX[1])
        x1, y1 = to_3857.transform(BOX[2], BOX[3])
        box3857 = f"{x0},{y0},{x1},{y1}"
        assert set(
            by_id(items(http, "enterprises", bbox=box3857, **{"bbox-crs": EPSG3857}))
        ) == set(lonlat)
        for params, field in (
            ({"crs": "http://www.opengis.net/def/crs/EPSG/0/2385"}, "crs"),
            ({"bbox": BBOX, "bbox-crs": "EPSG:9999"}, "bbox-crs"),
            ({"crs": "GCJ-02"}, "crs"),
        ):
            r = http.get("/ogc/collections/enterprises/items", params=params)
            assert r.status_code == 400 and error_field(r) == field, params


# -- Part 3: CQL2 -----------------------------------------------------------------------------


def grid_ids(plant: dict[str, Any], *names: str) -> set[int]:
    return {plant["grid"][n] for n in names}


def test_cql2_text_filters(
    live_server: LiveServer, keys: dict[str, str], plant: dict[str, Any]
) -> None:
    grid_only = "name LIKE '网格%'"
    cases = {
        f"{grid_only} AND diagnosis_score > 85": ("G1", "G6", "G7"),
        f"{grid_only} AND diagnosis_score >= 85 AND category = 'storage'": ("G1", "G2", "G7"),
        f"{grid_only} AND (category = 'trading' OR category = 'use')": ("G5", "G6"),
        f"{grid_only} AND NOT (category = 'storage')": ("G3", "G4", "G5", "G6"),
        f"{grid_only} AND diagnosis_score IS NULL": ("G4",),
        f"{grid_only} AND category IN ('production', 'use')": ("G3", "G4", "G6"),
        f"{grid_only} AND diagnosis_score BETWEEN 70 AND 88": ("G2", "G3", "G6"),
        f"{grid_only} AND diagnosis_score <> 95": ("G2", "G3", "G5", "G6", "G7"),
        "name LIKE '网格G_'": ("G1", "G2", "G3", "G4", "G5", "G6", "G7"),
        f"{grid_only} AND diagnosis_score IN (95, 72.5)": ("G1", "G3"),
        f"{grid_only} AND is_hazmat = false": (),
    }
    # S_INTERSECTS: a polygon around the grid's lower row (dy = 10) only.
    w, s, e, n = LON + 0.009, LAT + 0.009, LON + 0.017, LAT + 0.011
    poly = f"POLYGON(({w} {s},{e} {s},{e} {n},{w} {n},{w} {s}))"
    cases[f"S_INTERSECTS(geometry, {poly})"] = ("G1", "G2", "G3", "G4")
    cases[f"S_INTERSECTS(geometry, {poly}) AND category = 'production'"] = ("G3", "G4")
    cases[f"S_INTERSECTS(geometry, BBOX({w}, {s}, {e}, {n}))"] = ("G1", "G2", "G3", "G4")
    with as_(live_server, keys, "admin") as http:
        for text, want in cases.items():
            doc = items(http, "enterprises", bbox=BBOX, filter=text)
            assert set(by_id(doc)) == grid_ids(plant, *want), text
        # filter-crs EPSG:4490: the literal's axes are lat/lon.
        poly4490 = f"POLYGON(({s} {w},{s} {e},{n} {e},{n} {w},{s} {w}))"
        doc = items(
            http,
            "enterprises",
            filter=f"S_INTERSECTS(geometry, {poly4490})",
            **{"filter-crs": EPSG4490},
        )
        assert set(by_id(doc)) == grid_ids(plant, "G1", "G2", "G3", "G4")


def test_cql2_json_filters(
    live_server: LiveServer, keys: dict[str, str], plant: dict[str, Any]
) -> None:
    grid_only = {"op": "like", "args": [{"property": "name"}, "网格%"]}
    w, s, e, n = LON + 0.009, LAT + 0.013, LON + 0.015, LAT + 0.015  # the upper row, G5–G7
    square = {
        "type": "Polygon",
        "coordinates": [[[w, s], [e, s], [e, n], [w, n], [w, s]]],
    }
    cases: list[tuple[dict[str, Any], tuple[str, ...]]] = [
        (
            {
                "op": "and",
                "args": [grid_only, {"op": ">", "args": [{"property": "diagnosis_score"}, 85]}],
            },
            ("G1", "G6", "G7"),
        ),
        (
            {
                "op": "and",
                "args": [
                    grid_only,
                    {
                        "op": "or",
                        "args": [
                            {"op": "=", "args": [{"property": "category"}, "trading"]},
                            {"op": "isNull", "args": [{"property": "diagnosis_score"}]},
                        ],
                    },
                ],
            },
            ("G4", "G5"),
        ),
        (
            {
                "op": "and",
                "args": [
                    grid_only,
                    {
                        "op": "not",
                        "args": [
                            {
                                "op": "in",
                                "args": [{"property": "category"}, ["storage", "production"]],
                            }
                        ],
                    },
                ],
            },
            ("G5", "G6"),
        ),
        (
            {
                "op": "and",
                "args": [
                    grid_only,
                    {"op": "between", "args": [{"property": "diagnosis_score"}, 80, 90]},
                ],
            },
            ("G2", "G6"),
        ),
        ({"op": "s_intersects", "args": [{"property": "geometry"}, square]}, ("G5", "G6", "G7")),
        (
            {"op": "s_intersects", "args": [{"property": "geometry"}, {"bbox": [w, s, e, n]}]},
            ("G5", "G6", "G7"),
        ),
    ]
    with as_(live_server, keys, "admin") as http:
        for doc_filter, want in cases:
            doc = items(
                http, "enterprises", filter=json.dumps(doc_filter), **{"filter-lang": "cql2-json"}
            )
            assert set(by_id(doc)) == grid_ids(plant, *want), doc_filter


def test_a_filter_keeps_the_callers_scope(
    live_server: LiveServer, keys: dict[str, str], plant: dict[str, Any]
) -> None:
    """A filter narrows the caller's rows, never widens them: B matches but is not theirs."""
    with as_(live_server, keys, "reg_d1") as http:
        doc = items(http, "enterprises", filter="name LIKE '开放标准测试%'")
        assert set(by_id(doc)) == {plant["a"]["id"]}
        r = http.get("/ogc/collections/enterprises/items", params={"filter": "name = 'x' OR 1 = 1"})
        assert r.status_code == 400 and error_field(r) == "filter"


def test_bad_parameters_name_the_field(live_server: LiveServer, keys: dict[str, str]) -> None:
    cases: list[tuple[str, dict[str, str], str]] = [
        ("enterprises", {"filter": "name = "}, "filter"),
        ("enterprises", {"filter": "nosuch = 1"}, "filter"),
        ("enterprises", {"filter": "name = 5"}, "filter"),
        ("enterprises", {"filter": "diagnosis_score LIKE 'x%'"}, "filter"),
        ("enterprises", {"filter": "S_INTERSECTS(geometry, POLYGON((0 0, 1 1, 0 0)))"}, "filter"),
        ("enterprises", {"filter": "S_CONTAINS(geometry, POINT(1 2))"}, "filter"),
        ("enterprises", {"filter": "{not json", "filter-lang": "cql2-json"}, "filter"),
        ("enterprises", {"filter": "name = 'a'", "filter-lang": "ecql"}, "filter-lang"),
        ("enterprises", {"filter": "name = 'a'", "filter-crs": "EPSG:1"}, "filter-crs"),
        ("enterprises", {"bbox": "1,2,3"}, "bbox"),
        ("enterprises", {"bbox": "10,10,5,5"}, "bbox"),
        ("enterprises", {"bbox": "0,95,1,96"}, "bbox"),
        ("enterprises", {"limit": "0"}, "limit"),
        ("enterprises", {"limit": "10001"}, "limit"),
        ("enterprises", {"limit": "many"}, "limit"),
        ("enterprises", {"offset": "-1"}, "offset"),
        ("enterprises", {"nosuch": "1"}, "nosuch"),
        ("enterprises", {"diagnosis_score": "high"}, "diagnosis_score"),
        ("enterprises", {"datetime": "2024-01-01"}, "datetime"),  # no time on enterprises
        ("risk_units", {"datetime": "yesterday"}, "datetime"),
        ("risk_units", {"datetime": "2025-01-01/2024-01-01"}, "datetime"),
        ("risk_units", {"datetime": "../.."}, "datetime"),
        ("risk_units", {"datetime": "9999-12-31"}, "datetime"),  # its next day overflows
        # What would fail inside the database comes back as the client's mistake.
        ("enterprises", {"filter": "name LIKE 'abc\\'"}, "filter"),
        ("enterprises", {"bbox": "0,0,1e300,1e300", "bbox-crs": EPSG3857}, "bbox"),
        ("enterprises", {"filter": "S_INTERSECTS(geometry, POINT(500 10))"}, "filter"),
        (
            "enterprises",
            {"filter": "S_INTERSECTS(geometry, POINT(1e300 0))", "filter-crs": EPSG3857},
            "filter",
        ),
        ("enterprises", {"filter": "category IN ('a', 1)"}, "filter"),
    ]
    with as_(live_server, keys, "admin") as http:
        for collection, params, field in cases:
            r = http.get(f"/ogc/collections/{collection}/items", params=params)
            assert r.status_code == 400, (params, r.status_code, r.text[:200])
            assert error_field(r) == field, params
        r = http.get("/ogc/collections/nosuch/items")
        assert r.status_code == 404 and error_field(r) == "collectionId"


def test_datetime_on_a_layer_with_time(
    live_server: LiveServer, keys: dict[str, str], plant: dict[str, Any]
) -> None:
    a, b = plant["a"]["unit"], plant["b"]["unit"]
    mine = {a, b}
    with as_(live_server, keys, "admin") as http:

        def units(value: str) -> set[int]:
            doc = items(http, "risk_units", bbox=BBOX, datetime=value)
            return set(by_id(doc)) & mine

        assert units("2024-03-01") == {a}  # a date: that day
        assert units("2024-03-01T00:00:00Z") == {a}  # an instant
        assert units("2024-01-01T00:00:00Z/2024-12-31T00:00:00Z") == {a}
        assert units("2025-01-01T00:00:00Z/..") == {b}  # open end
        assert units("../2025-06-15T00:00:00Z") == {a, b}  # open start
        assert units("2026-01-01T00:00:00Z/") == set()
        # Vehicles' time is their latest fix (a lateral join): the demo's tankers have fixes.
        fixes = items(http, "vehicles", datetime="2000-01-01T00:00:00Z/..", limit=1000)
        assert fixes["numberMatched"] > 0
        assert all(f["properties"]["last_fix_at"] is not None for f in fixes["features"])
        assert items(http, "vehicles", datetime="../2000-01-01T00:00:00Z")["numberMatched"] == 0


def test_the_tile_reader_never_sees_a_sensitive_property(
    live_server: LiveServer, keys: dict[str, str]
) -> None:
    """Everything under /ogc a tile reader reaches, crawled: no sensitive property's name in
    any schema, and no feature collection at all (the REST API serves them none)."""
    seen: dict[str, Any] = {}
    checked: set[str] = set()
    todo = [f"{live_server.base_url}/ogc"]
    with as_(live_server, keys, "tiles") as http:
        while todo:
            url = todo.pop()
            if url in seen or "/ogc" not in url:
                continue
            r = http.get(url)
            assert r.status_code == 200, url
            seen[url] = r.json()
            for link in _links_of(seen[url]):
                if not link.get("templated") and link.get("type") == "application/json":
                    todo.append(link["href"])
    assert any("/tiles/WebMercatorQuad" in u for u in seen)
    for url, doc in seen.items():
        for layer in doc.get("layers", []):
            names = set(layer["propertiesSchema"]["properties"])
            sensitive = set(CATALOG.tiles[layer["id"]].sensitive)
            assert not names & sensitive, (url, names & sensitive)
            checked.update(sensitive)
        assert "itemType" not in json.dumps(doc), url
    assert {"R", "substances"} <= checked  # hazard sources' inventory was among them


def _links_of(doc: Any) -> list[dict[str, Any]]:
    out: list[dict[str, Any]] = []
    if isinstance(doc, dict):
        for k, v in doc.items():
            out.extend(v if k == "links" and isinstance(v, list) else _links_of(v))
    elif isinstance(doc, list):
        for v in doc:
            out.extend(_links_of(v))
    return out


# -- GDAL's OAPIF driver as the client ---------------------------------------------------------


def test_gdal_reads_the_same_features_as_the_rest_api(
    live_server: LiveServer, keys: dict[str, str], plant: dict[str, Any], tmp_path: Path
) -> None:
    config = gdal_client.bearer(keys["reg_d1"])
    source = f"OAPIF:{live_server.base_url}/ogc"
    layers = set(gdal_client.list_layers(source, config))
    assert {"enterprises", "hazard_sources", "risk_units"} <= layers
    frame = gdal_client.read_dataframe(source, config, layer="enterprises", bbox=BOX)
    with as_(live_server, keys, "reg_d1") as http:
        rest = by_id(http.get("/api/enterprises", params={"bbox": BBOX}).json())
    assert len(frame) == len(rest) and plant["b"]["id"] not in rest
    names = {f["properties"]["name"] for f in rest.values()}
    assert set(frame["name"]) == names
    for _, row in frame.iterrows():
        match = next(f for f in rest.values() if f["properties"]["name"] == row["name"])
        lon, lat = match["geometry"]["coordinates"]
        assert (row.geometry.x, row.geometry.y) == pytest.approx((lon, lat), abs=1e-7)
    # An attribute filter travels as CQL text (the service description advertises it, with
    # the collection's queryables) and comes back filtered by the server.
    log = tmp_path / "gdal.log"
    filtered = gdal_client.read_dataframe(
        source,
        {**config, "CPL_DEBUG": "ON", "CPL_LOG": str(log)},
        layer="enterprises",
        where="diagnosis_score > 85 AND name LIKE '网格%'",
    )
    assert set(filtered["name"]) == {"网格G1", "网格G6", "网格G7"}
    fetched = [line for line in log.read_text().splitlines() if "/enterprises/items?" in line]
    assert any("filter=" in line and "diagnosis_score" in line for line in fetched), fetched


def test_gdal_reads_cgcs2000(
    live_server: LiveServer, keys: dict[str, str], plant: dict[str, Any]
) -> None:
    source = f"OAPIF:{live_server.base_url}/ogc/collections/enterprises"
    config = gdal_client.bearer(keys["reg_d1"])
    frame = gdal_client.read_dataframe(source, config, bbox=BOX, CRS="EPSG:4490")
    assert frame.crs is not None and frame.crs.to_epsg() == 4490
    a = plant["a"]
    row = frame[frame["name"] == "开放标准测试A"].iloc[0]
    # The server answered lat/lon (EPSG:4490's axis order); GDAL hands out x = longitude.
    assert (row.geometry.x, row.geometry.y) == pytest.approx((a["lon"], a["lat"]), abs=1e-6)
