"""Full CRUD on the collections (issue 16 item 3): PATCH as an RFC 7396 merge patch and DELETE,
guarded by ETag / If-Match, scoped and audited like POST, re-rating and purging tiles; deleting
what history names retires it, deleting what live objects need is a 409 naming them.

Everything planted here lives around 127.4 E, 34.4 N in two districts of our own (CR-1 west,
CR-2 east), far from the demo city and the other tests; credit codes, plates and codes carry
"CR". Real HTTP into the shared server, real PostGIS underneath.
"""

from __future__ import annotations

import datetime as dt
import itertools
import threading
import time
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any

import httpx
import mapbox_vector_tile
import psycopg
import pytest

from tests.conftest import LiveServer, key_for
from tests.test_tankers import alerts_of, post, visit
from tiles.tms import tile_range

LON, LAT = 127.40, 34.40
D1, D2 = "CR-1", "CR-2"
MERGE = "application/merge-patch+json"
_serial = itertools.count(1)


def _n() -> int:
    return next(_serial)


def _square(lon: float, lat: float, half: float = 0.002) -> dict[str, Any]:
    a, b, c, d = lon - half, lat - half, lon + half, lat + half
    return {"type": "Polygon", "coordinates": [[[a, b], [c, b], [c, d], [a, d], [a, b]]]}


def _point(lon: float, lat: float) -> dict[str, Any]:
    return {"type": "Point", "coordinates": [lon, lat]}


def _feature(geometry: dict[str, Any], **props: Any) -> dict[str, Any]:
    return {"type": "Feature", "geometry": geometry, "properties": props}


@pytest.fixture(scope="module")
def area(database_url: str, live_server: LiveServer) -> Iterator[dict[str, Any]]:
    """Two districts, an enterprise in CR-1 with a hazard source (the parent of the points)."""
    with psycopg.connect(database_url, autocommit=True) as c:
        for code, west in ((D1, 127.3), (D2, 127.5)):
            c.execute(
                "INSERT INTO districts (code, name, geom) VALUES (%s, %s,"
                " ST_Multi(ST_MakeEnvelope(%s, 34.3, %s, 34.5, 4326)))",
                (code, f"编辑测试区{code}", west, west + 0.2),
            )
    with live_server.client() as http:
        r = http.post(
            "/api/enterprises",
            json=_feature(
                _point(LON, LAT),
                credit_code="91330200CR00000001",
                name="编辑测试化工",
                category="production",
                diagnosis_score=95,
                district=D1,
            ),
        )
        assert r.status_code == 201, r.text
        enterprise = r.json()["id"]
        r = http.post(
            "/api/hazard-sources",
            json=_feature(
                _square(LON, LAT, 0.0005),
                enterprise_id=enterprise,
                code="CR-HS-PARENT",
                unit_name="液氯罐区",
                unit_kind="storage",
                population_500m=100,
                substances=[{"name": "氯", "cas": "7782-50-5", "q": 1}],
            ),
        )
        assert r.status_code == 201, r.text
        yield {"enterprise": enterprise, "hazard_source": r.json()["id"]}


@dataclass(frozen=True)
class Case:
    """One collection: how to create an item, a good patch and what it changes, a bad one."""

    path: str
    table: str
    create: Callable[[dict[str, Any]], dict[str, Any]]
    patch: dict[str, Any]
    field: str
    value: Any
    bad: dict[str, Any]
    bad_field: str


def _props(patch: dict[str, Any]) -> dict[str, Any]:
    return patch.get("properties", patch)


CASES = {
    "zones": Case(
        "zones",
        "zones",
        lambda a: _feature(
            _square(LON + 0.02, LAT + 0.02), name=f"CR 学校 {_n()}", kind="school", district=D1
        ),
        {"properties": {"name": "CR 新校区"}},
        "name",
        "CR 新校区",
        {"properties": {"kind": "mall"}},
        "kind",
    ),
    "districts": Case(
        "districts",
        "districts",
        lambda a: _feature(_square(127.9, 34.9, 0.01), code=f"CR-D{_n()}", name="编辑测试临时区"),
        {"properties": {"name_en": "Edit test"}},
        "name_en",
        "Edit test",
        {"properties": {"name": ""}},
        "name",
    ),
    "enterprises": Case(
        "enterprises",
        "enterprises",
        lambda a: _feature(
            _point(LON + 0.03, LAT),
            credit_code=f"91330200CR1{_n():07d}",
            name="编辑测试仓储",
            category="storage",
            district=D1,
        ),
        {"properties": {"address": "测试路 1 号"}},
        "address",
        "测试路 1 号",
        {"properties": {"category": "farm"}},
        "category",
    ),
    "hazard-sources": Case(
        "hazard-sources",
        "hazard_sources",
        lambda a: _feature(
            _square(LON + 0.001, LAT, 0.0003),
            enterprise_id=a["enterprise"],
            code=f"CR-HS-{_n()}",
            unit_name="甲醇罐",
            unit_kind="storage",
        ),
        {"properties": {"unit_name": "甲醇储罐区"}},
        "unit_name",
        "甲醇储罐区",
        {"properties": {"population_500m": -1}},
        "population_500m",
    ),
    "monitoring-points": Case(
        "monitoring-points",
        "monitoring_points",
        lambda a: _feature(
            _point(LON + 0.0002, LAT),
            code=f"CR-MP-{_n()}",
            hazard_source_id=a["hazard_source"],
            kind="gas_toxic",
            unit="%OEL",
            level1=100,
            level2=200,
        ),
        {"properties": {"level1": 80}},
        "level1",
        80,
        {"properties": {"level1": 300}},
        "level1",
    ),
    "pipelines": Case(
        "pipelines",
        "pipelines",
        lambda a: _feature(
            {"type": "LineString", "coordinates": [[LON, LAT - 0.05], [LON + 0.01, LAT - 0.05]]},
            code=f"CR-PL-{_n()}",
            substance="天然气",
            diameter_mm=300,
            pressure_mpa=4,
        ),
        {"properties": {"pressure_mpa": 2.5}},
        "pressure_mpa",
        2.5,
        {"properties": {"diameter_mm": 0}},
        "diameter_mm",
    ),
    "vehicles": Case(
        "vehicles",
        "vehicles",
        lambda a: {"plate": f"测CR{_n():04d}", "carrier": "CR 运输", "district": D1},
        {"carrier": "CR 新运输"},
        "carrier",
        "CR 新运输",
        {"capacity_t": 500},
        "capacity_t",
    ),
}


def _create(http: httpx.Client, case: Case, area: dict[str, Any]) -> int:
    r = http.post(f"/api/{case.path}", json=case.create(area))
    assert r.status_code == 201, r.text
    assert r.headers["ETag"] == '"1"'
    return int(r.json()["id"])


def _get(http: httpx.Client, case: Case, item: int) -> httpx.Response:
    r = http.get(f"/api/{case.path}/{item}")
    assert r.status_code == 200, r.text
    return r


def _stored(body: dict[str, Any], field: str) -> Any:
    return body.get("properties", body).get(field)


def _patch(http: httpx.Client, path: str, body: Any, etag: str | None) -> httpx.Response:
    headers = {"Content-Type": MERGE}
    if etag is not None:
        headers["If-Match"] = etag
    return http.request("PATCH", f"/api/{path}", json=body, headers=headers)


def _audit(db: psycopg.Connection, table: str, item: int) -> list[tuple[Any, ...]]:
    return db.execute(
        "SELECT action, before, after, actor FROM audit_log WHERE entity = %s AND entity_id = %s"
        " ORDER BY id",
        (table, item),
    ).fetchall()


@pytest.mark.parametrize("name", list(CASES))
def test_patch_changes_one_field_bumps_the_etag_and_is_audited(
    name: str, client: httpx.Client, db: psycopg.Connection, area: dict[str, Any]
) -> None:
    case = CASES[name]
    item = _create(client, case, area)
    before = _get(client, case, item)
    assert before.headers["ETag"] == '"1"'
    r = _patch(client, f"{case.path}/{item}", case.patch, '"1"')
    assert r.status_code == 200, r.text
    assert r.headers["ETag"] == '"2"' and r.json() == {"id": item, "version": 2, "etag": '"2"'}
    after = _get(client, case, item)
    assert after.headers["ETag"] == '"2"'
    assert _stored(after.json(), case.field) == pytest.approx(case.value)
    # Everything the patch did not name is as it was (a merge, not a replacement).
    old, new = before.json(), after.json()
    for key, value in old.get("properties", old).items():
        if key not in (case.field, "last_fix_at", "state", "state_since"):
            assert new.get("properties", new)[key] == value, key
    if "geometry" in old:
        assert new["geometry"] == old["geometry"]
    updates = [row for row in _audit(db, case.table, item) if row[0] == "update"]
    assert updates, "the PATCH left no audit row"
    _action, was, now, actor = updates[-1]
    assert was[case.field] != now[case.field]
    assert now[case.field] == pytest.approx(case.value)
    assert (was["version"], now["version"]) == (1, 2)
    assert actor.startswith("admin:")


@pytest.mark.parametrize("name", list(CASES))
def test_a_stale_etag_is_412_and_changes_nothing(
    name: str, client: httpx.Client, area: dict[str, Any]
) -> None:
    case = CASES[name]
    item = _create(client, case, area)
    assert _patch(client, f"{case.path}/{item}", case.patch, '"1"').status_code == 200
    snapshot = _get(client, case, item).json()
    # A second client still holding version 1 tries to store its edit: refused.
    lost = _patch(client, f"{case.path}/{item}", {}, '"1"')
    assert lost.status_code == 412, lost.text
    assert lost.headers["ETag"] == '"2"'
    assert lost.json()["errors"][0]["field"] == "If-Match"
    assert '"2"' in lost.json()["detail"]
    assert _get(client, case, item).json() == snapshot
    # Without If-Match: 428, also nothing changed; "*" accepts whatever is current.
    missing = _patch(client, f"{case.path}/{item}", case.patch, None)
    assert missing.status_code == 428 and missing.json()["errors"][0]["field"] == "If-Match"
    assert client.delete(f"/api/{case.path}/{item}").status_code == 428
    assert client.delete(f"/api/{case.path}/{item}", headers={"If-Match": '"1"'}).status_code == 412
    assert _get(client, case, item).json() == snapshot
    assert _patch(client, f"{case.path}/{item}", {}, "*").headers["ETag"] == '"3"'


def test_two_clients_racing_with_one_etag_store_one_edit(
    live_server: LiveServer, client: httpx.Client, area: dict[str, Any]
) -> None:
    """Both read version 1 and save at once: the row lock serialises them, the second finds
    version 2 and is refused — its edit is never silently written over the first's."""
    zone = _create(client, CASES["zones"], area)
    names = [f"CR 并发 {i}" for i in range(3)]  # the test pool holds 4 connections
    barrier = threading.Barrier(len(names))

    def save(name: str) -> int:
        with live_server.client() as http:
            barrier.wait()
            return _patch(http, f"zones/{zone}", {"properties": {"name": name}}, '"1"').status_code

    with ThreadPoolExecutor(len(names)) as pool:
        statuses = list(pool.map(save, names))
    assert sorted(statuses) == [200, 412, 412]
    winner = names[statuses.index(200)]
    item = client.get(f"/api/zones/{zone}")
    assert item.json()["properties"]["name"] == winner and item.headers["ETag"] == '"2"'


@pytest.mark.parametrize("name", list(CASES))
def test_a_bad_patch_is_422_naming_the_field(
    name: str, client: httpx.Client, area: dict[str, Any]
) -> None:
    case = CASES[name]
    item = _create(client, case, area)
    snapshot = _get(client, case, item).json()
    bad = _patch(client, f"{case.path}/{item}", case.bad, '"1"')
    assert bad.status_code == 422, bad.text
    assert case.bad_field in [e["field"] for e in bad.json()["errors"]]
    # The id is the server's: a patch naming another one is refused, naming it.
    moved = {"id": item + 1000} if name == "vehicles" else {"id": item + 1000, "properties": {}}
    refused = _patch(client, f"{case.path}/{item}", moved, '"1"')
    assert refused.status_code == 422 and refused.json()["errors"][0]["field"] == "id"
    # null removes a property: a required one is then missing, named.
    required = case.field if name != "districts" else "name"
    if name in ("zones", "hazard-sources", "vehicles", "districts"):
        body = {required: None} if name == "vehicles" else {"properties": {required: None}}
        gone = _patch(client, f"{case.path}/{item}", body, '"1"')
        assert gone.status_code == 422, gone.text
        assert required in [e["field"] for e in gone.json()["errors"]]
    assert _get(client, case, item).json() == snapshot
    assert _get(client, case, item).headers["ETag"] == '"1"'


@pytest.mark.parametrize("name", list(CASES))
def test_edits_outside_the_callers_scope_are_403_and_unknown_ids_404(
    name: str, live_server: LiveServer, client: httpx.Client, area: dict[str, Any]
) -> None:
    """Everything planted lies in CR-1: a regulator of CR-2 may neither edit nor delete it
    (districts: admins only), a tile reader writes nothing; an unknown id is a 404."""
    case = CASES[name]
    item = _create(client, case, area)
    outsider = key_for(live_server.url, "regulator", districts=[D2])
    for key in (outsider, key_for(live_server.url, "tile_reader")):
        with live_server.client(key=key) as http:
            r = _patch(http, f"{case.path}/{item}", case.patch, '"1"')
            assert r.status_code == 403, r.text
            r = http.delete(f"/api/{case.path}/{item}", headers={"If-Match": '"1"'})
            assert r.status_code == 403, r.text
    assert _patch(client, f"{case.path}/2000000000", case.patch, '"1"').status_code == 404
    assert (
        client.delete(f"/api/{case.path}/2000000000", headers={"If-Match": "*"}).status_code == 404
    )
    assert _get(client, case, item).headers["ETag"] == '"1"'


def test_null_clears_an_optional_property(client: httpx.Client, area: dict[str, Any]) -> None:
    case = CASES["zones"]
    body = case.create(area)
    body["properties"]["max_dwell_s"] = 600
    zone = client.post("/api/zones", json=body).json()["id"]
    r = _patch(client, f"zones/{zone}", {"properties": {"max_dwell_s": None}}, '"1"')
    assert r.status_code == 200, r.text
    assert client.get(f"/api/zones/{zone}").json()["properties"]["max_dwell_s"] is None


def test_edits_are_scoped_like_creation(
    live_server: LiveServer, client: httpx.Client, area: dict[str, Any]
) -> None:
    zone = _create(client, CASES["zones"], area)  # in CR-1
    body = CASES["zones"].create(area)
    body["geometry"] = _square(127.6, 34.4)
    body["properties"]["district"] = D2
    other = client.post("/api/zones", json=body).json()["id"]  # in CR-2
    regulator = key_for(live_server.url, "regulator", districts=[D1])
    officer = key_for(live_server.url, "officer", districts=[D1])
    rename = {"properties": {"name": "CR 改名"}}
    with live_server.client(key=regulator) as http:
        assert _patch(http, f"zones/{zone}", rename, '"1"').status_code == 200
        outside = _patch(http, f"zones/{other}", rename, '"1"')
        assert outside.status_code == 403 and outside.json()["errors"][0]["field"] == "id"
        assert http.delete(f"/api/zones/{other}", headers={"If-Match": "*"}).status_code == 403
        assert _patch(http, "zones/2000000000", rename, "*").status_code == 404
        # Moving one's own zone into another district is as refused as creating it there.
        moved = _patch(http, f"zones/{zone}", {"properties": {"district": D2}}, '"2"')
        assert moved.status_code == 403
    with live_server.client(key=officer) as http:  # officers correct the zones they drew
        assert _patch(http, f"zones/{zone}", rename, '"2"').status_code == 200
        assert _patch(http, f"zones/{other}", rename, '"1"').status_code == 403
    enterprise = key_for(live_server.url, "enterprise", enterprise_id=area["enterprise"])
    for key in (enterprise, key_for(live_server.url, "tile_reader")):
        with live_server.client(key=key) as http:
            r = _patch(http, f"zones/{zone}", rename, "*")
            assert r.status_code == 403, r.text
            hs = area["hazard_source"]
            assert _patch(http, f"hazard-sources/{hs}", {}, "*").status_code == 403
    assert client.get(f"/api/zones/{other}").json()["properties"]["name"] != "CR 改名"


def test_delete_without_history_is_204_and_audited(
    client: httpx.Client, db: psycopg.Connection, area: dict[str, Any]
) -> None:
    zone = _create(client, CASES["zones"], area)
    r = client.delete(f"/api/zones/{zone}", headers={"If-Match": '"1"'})
    assert r.status_code == 204, r.text
    assert client.get(f"/api/zones/{zone}").status_code == 404
    assert db.execute("SELECT count(*) FROM zones WHERE id = %s", (zone,)).fetchone() == (0,)
    (last,) = [row for row in _audit(db, "zones", zone) if row[0] == "delete"]
    assert last[1]["id"] == zone and last[2] is None


def _tile(http: httpx.Client, layer: str, lon: float, lat: float, z: int = 14) -> list[int]:
    x, y, _, _ = tile_range((lon, lat, lon, lat), z)
    r = http.get(f"/tiles/{layer}/{z}/{x}/{y}.mvt")
    if r.status_code == 204:  # an empty tile
        return []
    assert r.status_code == 200, r.text
    decoded = mapbox_vector_tile.decode(r.content)
    return sorted(int(f["properties"]["id"]) for f in decoded.get(layer, {}).get("features", []))


def _eventually(check: Callable[[], bool], seconds: float = 10.0) -> bool:
    """Change notices reach the tile cache through LISTEN, a moment after the commit."""
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if check():
            return True
        time.sleep(0.1)
    return check()


def test_a_patched_zone_leaves_its_old_tile_and_appears_in_the_new_one(
    client: httpx.Client, area: dict[str, Any]
) -> None:
    old_at, new_at = (LON - 0.05, LAT + 0.05), (LON - 0.08, LAT + 0.08)
    body = CASES["zones"].create(area)
    body["geometry"] = _square(*old_at, 0.001)
    zone = client.post("/api/zones", json=body).json()["id"]
    assert zone in _tile(client, "zones", *old_at)  # cached from now on
    assert zone not in _tile(client, "zones", *new_at)
    r = _patch(client, f"zones/{zone}", {"geometry": _square(*new_at, 0.001)}, '"1"')
    assert r.status_code == 200, r.text
    assert _eventually(lambda: zone not in _tile(client, "zones", *old_at))
    assert _eventually(lambda: zone in _tile(client, "zones", *new_at))
    coords = client.get(f"/api/zones/{zone}").json()["geometry"]["coordinates"]
    assert coords[0][0][0][0] == pytest.approx(new_at[0] - 0.001)


def test_a_zone_past_alerts_name_is_retired_and_its_evidence_kept(
    client: httpx.Client, db: psycopg.Connection, area: dict[str, Any]
) -> None:
    school_at = (LON + 0.08, LAT - 0.08)
    body = CASES["zones"].create(area)
    body["geometry"] = _square(*school_at, 0.002)
    body["properties"]["name"] = "CR 退役小学"
    zone = client.post("/api/zones", json=body).json()["id"]
    vehicles = [_create(client, CASES["vehicles"], area) for _ in range(2)]
    start = (dt.datetime.now(dt.UTC) - dt.timedelta(hours=3)).replace(second=0, microsecond=0)
    post(client, visit(vehicles[0], school_at, start, 240))
    (alert,) = alerts_of(client, vehicles[0])
    assert (alert["rule"], alert["zone_id"]) == ("forbidden_zone_parking", zone)
    assert zone in _tile(client, "zones", *school_at)

    r = client.delete(f"/api/zones/{zone}", headers={"If-Match": '"1"'})
    assert r.status_code == 200, r.text
    assert r.json() == {"id": zone, "outcome": "retired"}
    # Gone from the item, the list and the map …
    gone = client.get(f"/api/zones/{zone}")
    assert gone.status_code == 410 and "retired" in gone.json()["detail"]
    listed = client.get("/api/zones", params={"district": D1, "limit": 1000}).json()["features"]
    assert zone not in [f["id"] for f in listed]
    assert _eventually(lambda: zone not in _tile(client, "zones", *school_at))
    assert client.delete(f"/api/zones/{zone}", headers={"If-Match": "*"}).status_code == 410
    # … and from the rules: a stop in it now raises nothing.
    post(client, visit(vehicles[1], school_at, start + dt.timedelta(hours=1), 240))
    assert alerts_of(client, vehicles[1]) == []
    # The old alert's evidence still shows the zone, its name and where it was.
    evidence = client.get(f"/api/alerts/{alert['id']}/evidence").json()
    (shown,) = [f for f in evidence["features"] if f["properties"]["kind"] == "zone"]
    assert shown["id"] == zone and shown["properties"]["name"] == "CR 退役小学"
    assert shown["properties"]["retired_at"] is not None  # shown, and said to be retired
    assert shown["geometry"]["coordinates"][0][0] == pytest.approx(
        [school_at[0] - 0.002, school_at[1] - 0.002]
    )
    retired = [row for row in _audit(db, "zones", zone) if row[0] == "update"][-1]
    assert retired[1]["retired_at"] is None and retired[2]["retired_at"] is not None
    assert (retired[1]["version"], retired[2]["version"]) == (1, 2)
    # The vehicle with fixes, a stop and an alert is retired too; its fixes are then refused.
    r = client.delete(f"/api/vehicles/{vehicles[0]}", headers={"If-Match": '"1"'})
    assert r.status_code == 200 and r.json()["outcome"] == "retired"
    assert client.get(f"/api/vehicles/{vehicles[0]}").status_code == 410
    late = client.post(
        "/api/positions",
        json=visit(vehicles[0], school_at, start + dt.timedelta(hours=2), 60)[:1],
    ).json()
    assert late["accepted"] == 0 and len(late["rejected"]) == 1


def test_deleting_what_live_objects_need_is_409_naming_them(
    client: httpx.Client, db: psycopg.Connection, area: dict[str, Any]
) -> None:
    enterprise = area["enterprise"]
    r = client.delete(f"/api/enterprises/{enterprise}", headers={"If-Match": "*"})
    assert r.status_code == 409, r.text
    kinds = {d["kind"]: d for d in r.json()["dependents"]}
    assert area["hazard_source"] in kinds["hazard source"]["ids"]
    assert kinds["hazard source"]["count"] >= 1
    assert str(area["hazard_source"]) in r.json()["detail"]
    # A pipeline with a monitoring point, a district with zones: the same.
    line = CASES["pipelines"]
    pipeline = _create(client, line, area)
    body = CASES["monitoring-points"].create(area)
    body["properties"].pop("hazard_source_id")
    body["properties"]["pipeline_id"] = pipeline
    point = client.post("/api/monitoring-points", json=body).json()["id"]
    r = client.delete(f"/api/pipelines/{pipeline}", headers={"If-Match": "*"})
    assert r.status_code == 409
    assert r.json()["dependents"] == [{"kind": "monitoring point", "count": 1, "ids": [point]}]
    (district,) = db.execute("SELECT id FROM districts WHERE code = %s", (D1,)).fetchone() or ()
    r = client.delete(f"/api/districts/{district}", headers={"If-Match": "*"})
    assert r.status_code == 409
    assert {"enterprise", "zone"} <= {d["kind"] for d in r.json()["dependents"]}
    # Nothing was deleted or changed.
    assert client.get(f"/api/enterprises/{enterprise}").headers["ETag"] == '"1"'
    assert client.get(f"/api/pipelines/{pipeline}").status_code == 200
    assert client.get(f"/api/districts/{district}").status_code == 200
    # The point with readings is retired (its readings are history); the pipeline then has
    # only retired points: it is retired in turn, not deleted (they still name it).
    now = dt.datetime.now(dt.UTC).replace(microsecond=0)
    readings = [{"point_id": point, "ts": now.isoformat(), "value": 10}]
    assert client.post("/api/readings", json=readings).json()["accepted"] == 1
    r = client.delete(f"/api/monitoring-points/{point}", headers={"If-Match": "*"})
    assert r.status_code == 200 and r.json()["outcome"] == "retired"
    late = [{"point_id": point, "ts": (now + dt.timedelta(seconds=10)).isoformat(), "value": 9}]
    assert client.post("/api/readings", json=late).json()["accepted"] == 0
    r = client.delete(f"/api/pipelines/{pipeline}", headers={"If-Match": "*"})
    assert r.status_code == 200 and r.json()["outcome"] == "retired"
    assert db.execute(
        "SELECT count(*) FROM pipeline_segments WHERE pipeline_id = %s", (pipeline,)
    ).fetchone() == (0,)


def test_patching_a_hazard_source_re_rates_its_enterprise(
    client: httpx.Client, db: psycopg.Connection, live_server: LiveServer
) -> None:
    """GB 18218: chlorine Q = 5 t, β = 4, α = 2 (≥ 100 people): q = 6.25 t gives R = 10, third
    grade (yellow); q = 62.5 t gives R = 100, first grade (red) — and the enterprise follows."""
    r = client.post(
        "/api/enterprises",
        json=_feature(
            _point(LON - 0.02, LAT - 0.02),
            credit_code="91330200CR00000777",
            name="编辑重评化工",
            category="production",
            diagnosis_score=95,
            district=D1,
        ),
    )
    enterprise = r.json()["id"]
    source = client.post(
        "/api/hazard-sources",
        json=_feature(
            _square(LON - 0.02, LAT - 0.02, 0.0005),
            enterprise_id=enterprise,
            code="CR-HS-RERATE",
            unit_name="液氯罐",
            unit_kind="storage",
            population_500m=100,
            substances=[{"name": "氯", "cas": "7782-50-5", "q": 6.25}],
        ),
    ).json()["id"]
    hs = client.get(f"/api/hazard-sources/{source}").json()["properties"]
    assert (hs["grade"], hs["color"], hs["R"]) == (3, "yellow", pytest.approx(10))
    assert client.get(f"/api/enterprises/{enterprise}/risk").json()["color"] == "yellow"

    more = {"properties": {"substances": [{"name": "氯", "cas": "7782-50-5", "q": 62.5}]}}
    r = _patch(client, f"hazard-sources/{source}", more, '"1"')
    assert r.status_code == 200, r.text
    hs = client.get(f"/api/hazard-sources/{source}").json()["properties"]
    assert (hs["grade"], hs["color"], hs["R"]) == (1, "red", pytest.approx(100))
    assert [s["q"] for s in hs["substances"]] == [62.5]  # the list was replaced, not appended
    assert client.get(f"/api/enterprises/{enterprise}/risk").json()["color"] == "red"
    subs = db.execute(
        "SELECT action FROM audit_log WHERE entity = 'hazard_source_substances'"
        " AND (before->>'hazard_source_id' = %s OR after->>'hazard_source_id' = %s) ORDER BY id",
        (str(source), str(source)),
    ).fetchall()
    assert [a for (a,) in subs] == ["insert", "delete", "insert"]

    # Deleting it (no history): the enterprise is re-rated without it, back to its diagnosis.
    r = client.delete(f"/api/hazard-sources/{source}", headers={"If-Match": '"2"'})
    assert r.status_code == 204, r.text
    assert client.get(f"/api/enterprises/{enterprise}/risk").json()["color"] == "blue"
    # And the enterprise, now without dependents or history, is deleted outright.
    etag = client.get(f"/api/enterprises/{enterprise}").headers["ETag"]
    assert (
        client.delete(f"/api/enterprises/{enterprise}", headers={"If-Match": etag}).status_code
        == 204
    )
