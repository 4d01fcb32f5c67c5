"""The REST collections over real HTTP and a real PostGIS: create, validate, list, filter.

Every test makes its own data (districts by SQL, features by POST) in an area and with codes
of its own, so it depends neither on the demo seed nor on the order tests run in.
"""

from __future__ import annotations

import datetime as dt
import itertools
import math
from collections.abc import Iterator
from typing import Any

import httpx
import psycopg
import pytest

from geo_api.settings import DatabaseSettings, ServerSettings, Settings
from layers.core.partitions import ensure_daily_partitions
from tests.conftest import LiveServer

GEOJSON = "application/geo+json"
MERCATOR_R = 6378137.0
_serial = itertools.count(1)


def credit_code() -> str:
    """A fresh, well-formed unified social credit code (GB 32100 alphabet)."""
    return f"91330200MA{next(_serial):08d}"


def code(prefix: str) -> str:
    return f"{prefix}-{next(_serial):06d}"


def point(lon: float, lat: float, **props: Any) -> dict[str, Any]:
    return {
        "type": "Feature",
        "geometry": {"type": "Point", "coordinates": [lon, lat]},
        "properties": props,
    }


def enterprise(lon: float, lat: float, **extra: Any) -> dict[str, Any]:
    props = {"credit_code": credit_code(), "name": "Test Chem", "category": "production"}
    props.update(extra)
    return point(lon, lat, **props)


def square(lon: float, lat: float, size: float = 0.01) -> list[list[list[float]]]:
    return [
        [
            [lon, lat],
            [lon + size, lat],
            [lon + size, lat + size],
            [lon, lat + size],
            [lon, lat],
        ]
    ]


def collection(*features: dict[str, Any]) -> dict[str, Any]:
    return {"type": "FeatureCollection", "features": list(features)}


def add_district(db: psycopg.Connection, code_: str, bounds: tuple[float, ...]) -> None:
    db.execute(
        "INSERT INTO districts (code, name, geom)"
        " VALUES (%s, %s, ST_Multi(ST_MakeEnvelope(%s, %s, %s, %s, 4326)))"
        " ON CONFLICT (code) DO NOTHING",
        (code_, f"District {code_}", *bounds),
    )


def count(db: psycopg.Connection, sql: str, *params: Any) -> int:
    row = db.execute(sql, params).fetchone()
    assert row is not None
    return int(row[0])


@pytest.fixture()
def ningbo(db: psycopg.Connection) -> str:
    """A test district east of the demo city (123–124 E, 31.5–32.5 N), so that filling a
    district from the polygon holding a feature is never ambiguous with the demo's districts."""
    add_district(db, "T-NB", (123.0, 31.5, 124.0, 32.5))
    return "T-NB"


# -- validation: nothing stored -----------------------------------------------------------


def test_enterprise_at_latitude_95_is_422_and_not_stored(
    client: httpx.Client, db: psycopg.Connection, ningbo: str
) -> None:
    feature = enterprise(123.5, 95)
    r = client.post("/api/enterprises", json=feature)
    assert r.status_code == 422
    body = r.json()
    assert body["errors"] == [
        {"field": "geometry", "reason": "latitude 95 is outside -90..90", "index": 0}
    ]
    assert "latitude 95" in body["detail"]
    code_ = feature["properties"]["credit_code"]
    assert count(db, "SELECT count(*) FROM enterprises WHERE credit_code = %s", code_) == 0


def test_zone_with_self_crossing_polygon_is_422_and_not_stored(
    client: httpx.Client, db: psycopg.Connection, ningbo: str
) -> None:
    bowtie = [[[123.4, 31.8], [123.6, 32.0], [123.6, 31.8], [123.4, 32.0], [123.4, 31.8]]]
    zone_code = code("Z")
    feature = {
        "type": "Feature",
        "geometry": {"type": "Polygon", "coordinates": bowtie},
        "properties": {"code": zone_code, "name": "Bow-tie school", "kind": "school"},
    }
    r = client.post("/api/zones", json=feature)
    assert r.status_code == 422
    (error,) = r.json()["errors"]
    assert error["field"] == "geometry"
    assert error["reason"] == "invalid polygon: Self-intersection at 123.5 31.9"
    assert count(db, "SELECT count(*) FROM zones WHERE code = %s", zone_code) == 0


def test_batch_with_bad_features_lists_each_and_stores_nothing(
    client: httpx.Client, db: psycopg.Connection, ningbo: str
) -> None:
    good = enterprise(123.51, 31.91)
    bad_category = enterprise(123.52, 31.92, category="brewery")
    bad_site = enterprise(123.53, 31.93, site={"type": "Point", "coordinates": [1, 2]})
    r = client.post(
        "/api/enterprises", json=collection(good, bad_category, enterprise(123.5, 31.9), bad_site)
    )
    assert r.status_code == 422
    errors = r.json()["errors"]
    by_index = {e["index"]: e for e in errors}
    assert set(by_index) == {1, 3}
    assert by_index[1]["field"] == "category"
    assert "'brewery' is not one of" in by_index[1]["reason"]
    assert by_index[3]["field"] == "site"
    assert "Point is not accepted" in by_index[3]["reason"]
    codes = [f["properties"]["credit_code"] for f in (good, bad_category, bad_site)]
    assert count(db, "SELECT count(*) FROM enterprises WHERE credit_code = ANY(%s)", codes) == 0


def test_unknown_properties_and_missing_fields_are_named(client: httpx.Client, ningbo: str) -> None:
    feature = point(123.5, 31.9, name="No code", category="school", colour="red")
    r = client.post("/api/enterprises", json=feature)
    assert r.status_code == 422
    errors = {e["field"]: e["reason"] for e in r.json()["errors"]}
    assert errors == {"credit_code": "required", "colour": "not a property of enterprises"}


def test_duplicate_credit_code_is_409_against_db_and_within_batch(
    client: httpx.Client, db: psycopg.Connection, ningbo: str
) -> None:
    first = enterprise(123.5, 31.9)
    assert client.post("/api/enterprises", json=first).status_code == 201
    again = client.post("/api/enterprises", json=first)
    assert again.status_code == 409
    (error,) = again.json()["errors"]
    assert error["field"] == "credit_code" and error["index"] == 0
    assert "already exists" in error["reason"]

    twin = enterprise(123.6, 31.8)
    r = client.post("/api/enterprises", json=collection(enterprise(123.6, 31.7), twin, twin))
    assert r.status_code == 409
    assert [(e["index"], e["field"]) for e in r.json()["errors"]] == [(2, "credit_code")]
    code_ = twin["properties"]["credit_code"]
    assert count(db, "SELECT count(*) FROM enterprises WHERE credit_code = %s", code_) == 0


def test_unknown_district_is_422(client: httpx.Client, ningbo: str) -> None:
    r = client.post("/api/enterprises", json=enterprise(123.5, 31.9, district="NOPE"))
    assert r.status_code == 422
    assert r.json()["errors"][0] == {
        "field": "district",
        "reason": "unknown district code NOPE",
        "index": 0,
    }


def test_malformed_and_oversized_bodies(client: httpx.Client, database_url: str) -> None:
    r = client.post(
        "/api/enterprises", content=b"{not json", headers={"content-type": "application/json"}
    )
    assert r.status_code == 400 and r.json()["errors"][0]["field"] == "body"
    r = client.post("/api/enterprises", json={"type": "Point", "coordinates": [1, 2]})
    assert r.status_code == 400 and r.json()["errors"][0]["field"] == "type"

    settings = Settings(
        db=DatabaseSettings(url=database_url, pool_max=2),
        server=ServerSettings(max_body_bytes=2048),
    )
    big = collection(*[enterprise(123.5, 31.9) for _ in range(40)])
    with LiveServer(settings) as small, small.client() as http:
        r = http.post("/api/enterprises", json=big)
        assert r.status_code == 413
        assert r.json()["errors"][0]["field"] == "body"
        # Bodies FastAPI parses into a model are bounded too, declared or chunked.
        note = {"outcome": "disposed", "note": "x" * 4000}
        r = http.post("/api/alerts/1/dispose", json=note)
        assert r.status_code == 413 and r.json()["errors"][0]["field"] == "body"

        def chunks() -> Iterator[bytes]:
            for _ in range(100):
                yield b" " * 100

        r = http.post("/api/keys", content=chunks(), headers={"content-type": "application/json"})
        assert r.status_code == 413
        small_body = iter([b'{"name": "chunked", ', b'"role": "tile_reader"}'])
        r = http.post("/api/keys", content=small_body, headers={"content-type": "application/json"})
        assert r.status_code == 201  # under the limit: replayed to the route untouched


# -- round trip and CRS -----------------------------------------------------------------


def test_enterprise_round_trip_derives_hazmat_and_district(
    client: httpx.Client, ningbo: str
) -> None:
    site = {"type": "Polygon", "coordinates": square(123.449, 31.899, 0.002)}
    feature = enterprise(123.45, 31.9, category="storage", name="Harbour Tanks", site=site)
    r = client.post("/api/enterprises", json=feature)
    assert r.status_code == 201
    new_id = r.json()["id"]
    assert r.json()["ids"] == [new_id]
    assert r.headers["location"] == f"/api/enterprises/{new_id}"

    got = client.get(f"/api/enterprises/{new_id}")
    assert got.status_code == 200
    assert got.headers["content-type"].startswith(GEOJSON)
    body = got.json()
    assert body["id"] == new_id
    assert body["geometry"] == {"type": "Point", "coordinates": [123.45, 31.9]}
    props = body["properties"]
    assert props["credit_code"] == feature["properties"]["credit_code"]
    assert props["is_hazmat"] is True
    assert props["district"] == ningbo  # filled from the district polygon
    assert props["site"]["type"] == "MultiPolygon"


def test_contradicting_is_hazmat_is_422(client: httpx.Client, ningbo: str) -> None:
    r = client.post(
        "/api/enterprises", json=enterprise(123.5, 31.9, category="school", is_hazmat=True)
    )
    assert r.status_code == 422
    assert r.json()["errors"][0]["field"] == "is_hazmat"


def test_cgcs2000_input_is_stored_at_the_same_coordinates(
    client: httpx.Client, db: psycopg.Connection, ningbo: str
) -> None:
    body = collection(enterprise(123.5432101, 31.8765432))
    body["crs"] = {"type": "name", "properties": {"name": "urn:ogc:def:crs:EPSG::4490"}}
    r = client.post("/api/enterprises", json=body)
    assert r.status_code == 201
    r2 = client.post("/api/enterprises?crs=EPSG:4490", json=enterprise(123.1234567, 32.1234567))
    assert r2.status_code == 201
    rows = db.execute(
        "SELECT ST_X(geom), ST_Y(geom), ST_SRID(geom) FROM enterprises WHERE id = ANY(%s)"
        " ORDER BY id",
        ([r.json()["ids"][0], r2.json()["id"]],),
    ).fetchall()
    assert rows[0][0] == pytest.approx(123.5432101, abs=1e-9)
    assert rows[0][1] == pytest.approx(31.8765432, abs=1e-9)
    assert rows[1][:2] == (
        pytest.approx(123.1234567, abs=1e-9),
        pytest.approx(32.1234567, abs=1e-9),
    )
    assert {row[2] for row in rows} == {4326}


def test_consumer_map_offsets_and_unknown_crs_are_refused(client: httpx.Client) -> None:
    r = client.post("/api/enterprises?crs=GCJ-02", json=enterprise(123.5, 31.9))
    assert r.status_code == 422
    (error,) = r.json()["errors"]
    assert error["field"] == "crs"
    assert "does not silently convert consumer map offsets" in error["reason"]
    r = client.post("/api/enterprises?crs=EPSG:999999", json=enterprise(123.5, 31.9))
    assert r.status_code == 422 and r.json()["errors"][0]["field"] == "crs"


def test_projected_crs_is_transformed(
    client: httpx.Client, db: psycopg.Connection, ningbo: str
) -> None:
    # 123.5 E, 31.9 N in Web Mercator, by the spherical formula (independent of pyproj)
    x3857 = MERCATOR_R * math.radians(123.5)
    y3857 = MERCATOR_R * math.log(math.tan(math.pi / 4 + math.radians(31.9) / 2))
    r = client.post("/api/enterprises?crs=EPSG:3857", json=enterprise(x3857, y3857))
    assert r.status_code == 201
    x, y = db.execute(
        "SELECT ST_X(geom), ST_Y(geom) FROM enterprises WHERE id = %s", (r.json()["id"],)
    ).fetchone()  # type: ignore[misc]
    assert (x, y) == (pytest.approx(123.5, abs=1e-9), pytest.approx(31.9, abs=1e-9))


# -- items --------------------------------------------------------------------------------


def test_unknown_and_malformed_ids(client: httpx.Client) -> None:
    r = client.get("/api/enterprises/987654")
    assert r.status_code == 404
    assert "987654" in r.json()["detail"]
    assert client.get("/api/zones/abc").status_code == 422
    assert client.get("/api/zones/99999999999999").status_code == 422
    assert client.get("/api/vehicles/424242").status_code == 404


# -- lists and filters --------------------------------------------------------------------


@pytest.fixture()
def gobi(client: httpx.Client, db: psycopg.Connection) -> Iterator[tuple[str, list[int]]]:
    """A district of its own far from everything else, with five enterprises in it."""
    district = code("T-GB")
    add_district(db, district, (100.0, 40.0, 101.0, 41.0))
    features = [
        enterprise(100.1, 40.1, category="production"),
        enterprise(100.2, 40.2, category="storage"),
        enterprise(100.3, 40.3, category="school"),
        enterprise(100.8, 40.8, category="school"),
        enterprise(100.9, 40.9, category="production"),
    ]
    r = client.post("/api/enterprises", json=collection(*features))
    assert r.status_code == 201, r.text
    yield district, r.json()["ids"]
    db.execute("DELETE FROM enterprises WHERE id = ANY(%s)", (r.json()["ids"],))
    db.execute("DELETE FROM districts WHERE code = %s", (district,))


def test_list_filters_give_exact_counts(client: httpx.Client, gobi: tuple[str, list[int]]) -> None:
    district, ids = gobi
    r = client.get("/api/enterprises", params={"district": district})
    assert r.status_code == 200
    assert r.headers["content-type"].startswith(GEOJSON)
    body = r.json()
    assert body["type"] == "FeatureCollection"
    assert (body["numberMatched"], body["numberReturned"]) == (5, 5)
    assert [f["id"] for f in body["features"]] == ids
    assert all(f["properties"]["district"] == district for f in body["features"])

    school = client.get("/api/enterprises", params={"district": district, "category": "school"})
    assert school.json()["numberMatched"] == 2
    assert {f["id"] for f in school.json()["features"]} == {ids[2], ids[3]}

    box = client.get("/api/enterprises", params={"bbox": "100.05,40.05,100.25,40.25"})
    assert box.json()["numberMatched"] == 2
    assert [f["id"] for f in box.json()["features"]] == ids[:2]


def test_list_paging_and_links(client: httpx.Client, gobi: tuple[str, list[int]]) -> None:
    district, ids = gobi
    first = client.get("/api/enterprises", params={"district": district, "limit": 2}).json()
    assert (first["numberMatched"], first["numberReturned"]) == (5, 2)
    assert [f["id"] for f in first["features"]] == ids[:2]
    rels = {link["rel"]: link["href"] for link in first["links"]}
    assert set(rels) == {"self", "next"}
    second = client.get(rels["next"]).json()
    assert [f["id"] for f in second["features"]] == ids[2:4]
    last = client.get(
        "/api/enterprises", params={"district": district, "limit": 2, "offset": 4}
    ).json()
    assert [f["id"] for f in last["features"]] == ids[4:]
    assert {link["rel"] for link in last["links"]} == {"self", "prev"}


@pytest.mark.parametrize(
    ("query", "field"),
    [
        ({"bbox": "1,2,3"}, "bbox"),
        ({"bbox": "a,b,c,d"}, "bbox"),
        ({"bbox": "101,40,100,41"}, "bbox"),
        ({"bbox": "100,-95,101,41"}, "bbox"),
        ({"limit": "0"}, "limit"),
        ({"limit": "1000000"}, "limit"),
        ({"offset": "-1"}, "offset"),
        ({"color": "purple"}, "color"),
        ({"category": "brewery"}, "category"),
        ({"kind": "school"}, "kind"),
        ({"district": "a\x00b"}, "district"),
    ],
)
def test_bad_filters_are_400_naming_the_parameter(
    client: httpx.Client, query: dict[str, str], field: str
) -> None:
    r = client.get("/api/enterprises", params=query)
    assert r.status_code == 400
    assert r.json()["errors"][0]["field"] == field


def test_zone_kind_filter(client: httpx.Client, db: psycopg.Connection) -> None:
    district = code("T-ZK")
    add_district(db, district, (102.0, 40.0, 103.0, 41.0))
    zones = [
        {
            "type": "Feature",
            "geometry": {"type": kind_geom, "coordinates": coords},
            "properties": {"code": code("Z"), "name": f"zone {i}", "kind": kind},
        }
        for i, (kind, kind_geom, coords) in enumerate(
            [
                ("school", "Polygon", square(102.1, 40.1)),
                ("designated_parking", "MultiPolygon", [square(102.2, 40.2)]),
                ("school", "Polygon", square(102.3, 40.3)),
            ]
        )
    ]
    r = client.post("/api/zones", json=collection(*zones))
    assert r.status_code == 201
    body = client.get("/api/zones", params={"district": district, "kind": "school"}).json()
    assert body["numberMatched"] == 2
    assert {f["geometry"]["type"] for f in body["features"]} == {"MultiPolygon"}
    assert client.get("/api/zones", params={"kind": "pub"}).status_code == 400


# -- hazard sources, monitoring points, pipelines ------------------------------------------


def test_hazard_source_with_substances_and_parents(
    client: httpx.Client, db: psycopg.Connection, ningbo: str
) -> None:
    owner = enterprise(123.3, 31.7)
    enterprise_id = client.post("/api/enterprises", json=owner).json()["id"]
    base_props: dict[str, Any] = {
        "enterprise_credit_code": owner["properties"]["credit_code"],
        "code": "T-01",
        "unit_name": "Chlorine store",
        "unit_kind": "storage",
        "population_500m": 120,
        "substances": [
            {"name": "chlorine", "cas": "7782-50-5", "q": 20, "Q": 5, "beta": 4},
            {"name": "ammonia", "cas": "7664-41-7", "q": 12},
        ],
    }
    source: dict[str, Any] = {
        "type": "Feature",
        "geometry": {"type": "Polygon", "coordinates": square(123.3, 31.7, 0.001)},
        "properties": base_props,
    }
    r = client.post("/api/hazard-sources", json=source)
    assert r.status_code == 201, r.text
    hs_id = r.json()["id"]
    got = client.get(f"/api/hazard-sources/{hs_id}").json()
    assert got["geometry"]["type"] == "MultiPolygon"
    assert got["properties"]["enterprise_id"] == enterprise_id
    assert got["properties"]["district"] == ningbo
    assert [(s["name"], s["q"], s["Q"]) for s in got["properties"]["substances"]] == [
        ("chlorine", 20, 5),
        ("ammonia", 12, None),
    ]
    listed = client.get("/api/hazard-sources", params={"enterprise_id": enterprise_id}).json()
    assert [f["id"] for f in listed["features"]] == [hs_id]

    # Same code for the same enterprise: 409; unknown parents: 422 naming the field.
    assert client.post("/api/hazard-sources", json=source).status_code == 409
    orphan = source | {"properties": base_props | {"enterprise_credit_code": credit_code()}}
    r = client.post("/api/hazard-sources", json=orphan)
    assert r.status_code == 422
    assert r.json()["errors"][0]["field"] == "enterprise_credit_code"
    props = dict(base_props, enterprise_id=987654, code="T-02")
    del props["enterprise_credit_code"]
    r = client.post("/api/hazard-sources", json=source | {"properties": props})
    assert r.status_code == 422
    assert r.json()["errors"][0] == {
        "field": "enterprise_id",
        "reason": "no enterprise with id 987654",
        "index": 0,
    }
    bad_q = dict(props, enterprise_id=enterprise_id, substances=[{"name": "x", "q": -1}])
    r = client.post("/api/hazard-sources", json=source | {"properties": bad_q})
    assert r.status_code == 422
    assert r.json()["errors"][0]["field"] == "substances.0.q"
    assert (
        count(db, "SELECT count(*) FROM hazard_sources WHERE enterprise_id = %s", enterprise_id)
        == 1
    )


def test_monitoring_points_need_an_existing_parent(client: httpx.Client, ningbo: str) -> None:
    owner = client.post("/api/enterprises", json=enterprise(123.31, 31.71)).json()["id"]
    hs = client.post(
        "/api/hazard-sources",
        json={
            "type": "Feature",
            "geometry": {"type": "Polygon", "coordinates": square(123.31, 31.71, 0.001)},
            "properties": {
                "enterprise_id": owner,
                "code": "U1",
                "unit_name": "Reactor",
                "unit_kind": "production",
            },
        },
    ).json()["id"]
    mp_code = code("MP")
    good = point(
        123.3105,
        31.7105,
        code=mp_code,
        hazard_source_id=hs,
        kind="gas_flammable",
        unit="%LEL",
        level1=25,
        level2=50,
    )
    r = client.post("/api/monitoring-points", json=good)
    assert r.status_code == 201
    got = client.get(f"/api/monitoring-points/{r.json()['id']}").json()["properties"]
    assert (got["code"], got["district"], got["sampling_interval_s"]) == (mp_code, ningbo, 10)

    missing = point(
        123.31, 31.71, code=code("MP"), hazard_source_id=987654, kind="oxygen", unit="%"
    )
    r = client.post("/api/monitoring-points", json=missing)
    assert r.status_code == 422 and r.json()["errors"][0]["field"] == "hazard_source_id"
    upside_down = point(
        123.31,
        31.71,
        code=code("MP"),
        hazard_source_id=hs,
        kind="pressure",
        unit="MPa",
        limit_h=5,
        limit_hh=4,
    )
    r = client.post("/api/monitoring-points", json=upside_down)
    assert r.status_code == 422 and r.json()["errors"][0]["field"] == "limit_h"


def test_pipelines_take_linestrings_only(client: httpx.Client, ningbo: str) -> None:
    props = {"code": code("PL"), "substance": "ethylene", "diameter_mm": 300, "pressure_mpa": 4.0}
    line = {
        "type": "Feature",
        "geometry": {"type": "LineString", "coordinates": [[123.2, 31.6], [123.3, 31.65]]},
        "properties": props,
    }
    r = client.post("/api/pipelines", json=line)
    assert r.status_code == 201
    got = client.get(f"/api/pipelines/{r.json()['id']}").json()
    assert got["properties"]["district"] == ningbo
    assert got["properties"]["length_m"] > 10_000
    r = client.post("/api/pipelines", json=point(123.2, 31.6, **(props | {"code": code("PL")})))
    assert r.status_code == 422
    assert "Point is not accepted here; expected LineString" in r.json()["errors"][0]["reason"]


# -- vehicles -----------------------------------------------------------------------------


def test_vehicles_post_and_list_with_latest_position(
    client: httpx.Client, db: psycopg.Connection, ningbo: str
) -> None:
    carrier = code("Carrier")
    plates = [code("浙B"), code("浙B")]
    r = client.post(
        "/api/vehicles",
        json=[
            {"plate": plates[0], "carrier": carrier, "un_number": "1203", "hazmat_class": "3"},
            {"plate": plates[1], "carrier": carrier, "capacity_t": 30, "district": ningbo},
        ],
    )
    assert r.status_code == 201, r.text
    first, second = r.json()["ids"]
    single = client.post("/api/vehicles", json={"plate": code("浙B"), "carrier": carrier})
    assert single.status_code == 201 and "id" in single.json()

    now = dt.datetime.now(dt.UTC).replace(microsecond=0)
    ensure_daily_partitions(db, "positions", {(now - dt.timedelta(minutes=5)).date(), now.date()})
    db.execute(
        "INSERT INTO positions (vehicle_id, ts, lon, lat, speed_kmh) VALUES"
        " (%s, %s, 123.40, 31.80, 50), (%s, %s, 123.41, 31.81, 55)",
        (first, now - dt.timedelta(minutes=5), first, now),
    )
    body = client.get("/api/vehicles", params={"carrier": carrier}).json()
    assert body["numberMatched"] == 3
    features = {f["id"]: f for f in body["features"]}
    assert features[first]["geometry"] == {"type": "Point", "coordinates": [123.41, 31.81]}
    assert features[first]["properties"]["speed_kmh"] == 55
    assert features[second]["geometry"] is None
    assert features[second]["properties"]["district"] == ningbo

    near = client.get(
        "/api/vehicles", params={"carrier": carrier, "bbox": "123.405,31.805,123.42,31.82"}
    )
    assert [f["id"] for f in near.json()["features"]] == [first]

    dup = client.post("/api/vehicles", json={"plate": plates[1], "carrier": carrier})
    assert dup.status_code == 409
    assert dup.json()["errors"][0]["field"] == "plate"
    nul = client.post("/api/vehicles", json={"plate": "a\x00", "carrier": carrier})
    assert nul.status_code == 422
    assert nul.json()["errors"][0] == {
        "field": "plate",
        "reason": "contains a NUL character",
        "index": 0,
    }
    bad = client.post(
        "/api/vehicles", json=[{"plate": code("浙B"), "carrier": carrier, "un_number": "12"}]
    )
    assert bad.status_code == 422
    assert bad.json()["errors"][0]["field"] == "un_number"


def test_districts_collection_lists_the_demo_districts(client: httpx.Client) -> None:
    body = client.get("/api/districts", params={"bbox": "121.2,29.6,122.2,30.2"}).json()
    assert body["numberMatched"] == 8  # the demo city's districts, at any scale
    codes = {f["properties"]["code"] for f in body["features"]}
    assert all(c.startswith("3302") for c in codes)
    assert all(f["geometry"]["type"] == "MultiPolygon" for f in body["features"])
