"""Who may see what (issue 8): keys, tokens, sessions, roles, row scopes, tile views, audit.

Everything goes through the real authentication path: keys made in the test database, sent
over real HTTP to the running server. Planted data lives around 127.3 E, 35.3 N (outside the
demo city), in two of the demo city's districts.
"""

from __future__ import annotations

import json
import queue
import re
import threading
import time
import uuid
from collections.abc import Iterator
from typing import Any

import httpx
import psycopg
import pytest

from geo_api.routes import PUBLIC_ROUTERS, routers
from layers.catalog import CATALOG
from tests.conftest import LiveServer, auth, key_for, make_settings
from tests.planting import plant_two_sites
from tests.test_tiles import decode, features, get_tile, tile_of

LON, LAT = 127.30, 35.30
MANUAL_ITEM = "XS-10"  # a manual item of the default (xiaoshan) rule set


@pytest.fixture(scope="module")
def plant(database_url: str) -> Iterator[dict[str, Any]]:
    """Enterprises A (district d1) and B (district d2) side by side, each with a hazard source
    holding a substance inventory, and a risk unit (tests/planting.py)."""
    with psycopg.connect(database_url, autocommit=True) as c:
        out = plant_two_sites(c, "AUTH", "权限测试公司", LON, LAT, 0.001)
    yield out


@pytest.fixture(scope="module")
def keys(database_url: str, plant: dict[str, Any]) -> dict[str, str]:
    return {
        "admin": key_for(database_url),
        "ent_a": key_for(database_url, "enterprise", enterprise_id=plant["a"]["id"]),
        "reg_d1": key_for(database_url, "regulator", districts=[plant["d1"]]),
        "officer_d1": key_for(database_url, "officer", districts=[plant["d1"]]),
        "tiles": key_for(database_url, "tile_reader"),
    }


def as_(live_server: LiveServer, key: str) -> httpx.Client:
    return live_server.client(key=key)


# -- every route is covered ------------------------------------------------------------------
def test_every_route_declares_its_roles() -> None:
    """One ``allow(...)`` per route: a route added without deciding who may call it fails."""
    missing = []
    for router in routers(CATALOG):
        for route in router.routes:
            roles = [getattr(d.dependency, "allowed_roles", None) for d in route.dependencies]
            if len([r for r in roles if r]) != 1:
                missing.append(f"{route.methods} {route.path}")  # type: ignore[attr-defined]
    assert missing == []
    public = {route.path for router in PUBLIC_ROUTERS for route in router.routes}  # type: ignore[attr-defined]
    assert public == {
        "/healthz",
        "/",
        "/api/auth/session",
        "/enterprises/{enterprise_id}/diagram",
        "/api/cap/certificate.pem",  # a certificate is public: receivers verify CAP with it
        "/docs",  # the API docs, public like /openapi.json (FastAPI's own were too)
        "/redoc",
    }


def test_every_documented_route_refuses_a_caller_it_cannot_resolve(database_url: str) -> None:
    """With the one caller dependency made to refuse everyone, every documented route but the
    public ones answers 401 — no route bypasses it."""
    from geo_api.auth import current_caller
    from geo_api.errors import Unauthorized

    async def nobody() -> None:
        raise Unauthorized("nobody may call this")

    server = LiveServer(make_settings(database_url))
    app = server.server.config.app
    app.dependency_overrides[current_caller] = nobody
    spec = app.openapi()
    calls = [
        (method.upper(), re.sub(r"\{[^}]+\}", "1", path))
        for path, ops in spec["paths"].items()
        for method in ops
        if path not in ("/healthz", "/api/auth/session", "/api/cap/certificate.pem")
    ]
    assert len(calls) > 50
    with server, httpx.Client(base_url=server.base_url, timeout=30) as http:
        answers = {(m, p): http.request(m, p + "?probe=1").status_code for m, p in calls}
    assert {call: code for call, code in answers.items() if code != 401} == {}


def test_the_access_rules_fit_the_layer_registry() -> None:
    """Every layer an enterprise may read (but the reference layers) names its enterprise, so
    its tiles can be cut to one site; every sensitive property exists; the published map
    exists; and each role's layer set is a subset of the registry."""
    from layers.access import roles as access
    from layers.catalog import CATALOG

    tiles = CATALOG.tiles
    for name in access.tile_layers_for(access.ENTERPRISE, CATALOG):
        assert tiles[name].audience == "reference" or tiles[name].enterprise_sql, name
    for layer in tiles.values():
        assert set(layer.sensitive) <= {p.name for p in layer.properties}, layer.name
    assert tiles["hazard_sources"].sensitive  # the inventory is never published
    for role in access.ROLES:
        assert access.tile_layers_for(role, CATALOG) <= set(tiles), role
    assert tiles["alerts"].district_sql  # an officer's alerts are cut to districts
    # The sets each role had before the catalogue derived them (issue 8's role table).
    base = {"base_boundaries", "base_areas", "base_roads", "base_labels"}  # issue 19's base map
    reference = {"districts", "zones"} | base
    assert access.tile_layers_for(access.ENTERPRISE, CATALOG) == reference | {
        "base_enterprise_labels",
        "enterprises",
        "hazard_sources",
        "risk_units",
        "monitoring_points",
    }
    assert access.tile_layers_for(access.OFFICER, CATALOG) == reference | {
        "tankers",
        "tanker_tracks",
        "stops",
        "alerts",
        "h3_fixes",
        "h3_stops",
    }
    assert access.tile_layers_for(access.TILE_READER, CATALOG) == reference | {
        "base_enterprise_labels",
        "enterprises",
        "hazard_sources",
        "monitoring_points",
        "pipeline_segments",
        "overlay_zones",
        "h3_enterprises",
        "h3_hazard_sources",
        "h3_monitoring_points",
        "h3_alarms",
        "h3_overlay_zones",
    }


# -- credentials -----------------------------------------------------------------------------
def test_no_bad_and_revoked_credentials_are_401(client: httpx.Client, live_server: Any) -> None:
    r = httpx.get(live_server.base_url + "/api/enterprises")
    assert r.status_code == 401 and r.headers["www-authenticate"].startswith("Bearer")
    assert r.json()["errors"][0]["field"] == "credentials"
    bad = httpx.get(live_server.base_url + "/api/enterprises", headers=auth("grk_" + "x" * 43))
    assert bad.status_code == 401 and "unknown" in bad.json()["detail"]
    scheme = httpx.get(
        live_server.base_url + "/api/enterprises", headers={"Authorization": "Basic abc"}
    )
    assert scheme.status_code == 401 and scheme.json()["errors"][0]["field"] == "Authorization"
    made = client.post("/api/keys", json={"name": "short-lived", "role": "regulator"})
    assert made.status_code == 201 and made.json()["key"].startswith("grk_")
    key, key_id = made.json()["key"], made.json()["id"]
    listed = client.get("/api/keys").json()["keys"]
    assert all("key" not in k and "key_hash" not in k for k in listed)
    assert [k["prefix"] for k in listed if k["id"] == key_id] == [key[:12]]
    assert httpx.get(live_server.base_url + "/api/risk/summary", headers=auth(key)).is_success
    assert client.delete(f"/api/keys/{key_id}").status_code == 204
    gone = httpx.get(live_server.base_url + "/api/risk/summary", headers=auth(key))
    assert gone.status_code == 401  # at once in this process (others: within the cache TTL)
    assert client.delete(f"/api/keys/{key_id}").status_code == 404
    expired = client.post(
        "/api/keys",
        json={"name": "expired", "role": "admin", "expires_at": "2020-01-01T00:00:00Z"},
    )
    assert expired.status_code == 201
    r = httpx.get(live_server.base_url + "/api/auth/whoami", headers=auth(expired.json()["key"]))
    assert r.status_code == 401 and "expired" in r.json()["detail"]


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"name": "x", "role": "enterprise"}, "enterprise_id"),
        ({"name": "x", "role": "admin", "enterprise_id": 1}, "enterprise_id"),
        ({"name": "x", "role": "regulator", "districts": ["NOPE-1"]}, "districts"),
        ({"name": "x", "role": "tile_reader", "districts": ["NOPE-1"]}, "districts"),
        ({"name": "x", "role": "king"}, "role"),
        ({"name": " ", "role": "admin"}, "name"),
    ],
)
def test_keys_are_validated(client: httpx.Client, body: dict[str, Any], field: str) -> None:
    r = client.post("/api/keys", json=body)
    assert r.status_code == 422 and r.json()["errors"][0]["field"] == field


def test_tokens_and_sessions(client: httpx.Client, live_server: Any) -> None:
    base = live_server.base_url
    issued = client.post("/api/auth/token").json()
    assert issued["token_type"] == "Bearer" and issued["expires_in"] > 0
    bearer = {"Authorization": f"Bearer {issued['access_token']}"}
    me = httpx.get(base + "/api/auth/whoami", headers=bearer).json()
    assert me["role"] == "admin" and me["via"] == "token"
    tampered = issued["access_token"][:-3] + (
        "aaa" if not issued["access_token"].endswith("aaa") else "bbb"
    )
    r = httpx.get(base + "/api/auth/whoami", headers={"Authorization": f"Bearer {tampered}"})
    assert r.status_code == 401 and r.json()["errors"][0]["field"] == "token"
    app: Any = live_server.server.config.app
    from geo_api.auth import Caller

    old = app.state.auth.issue_token(Caller("old", "admin"), -10)
    r = httpx.get(base + "/api/auth/whoami", headers={"Authorization": f"Bearer {old}"})
    assert r.status_code == 401 and "expired" in r.json()["detail"]
    # Correctly signed but inconsistent claims are refused, never read as "see everything".
    import jwt

    now = int(time.time())
    claims = {"iss": "georisk", "sub": "x", "role": "enterprise", "iat": now, "exp": now + 60}
    odd = jwt.encode(claims, app.state.auth.secret, algorithm="HS256")
    r = httpx.get(base + "/api/auth/whoami", headers={"Authorization": f"Bearer {odd}"})
    assert r.status_code == 401 and r.json()["errors"][0]["field"] == "token"
    unsigned = jwt.encode({**claims, "role": "admin"}, "x" * 48, algorithm="HS256")
    r = httpx.get(base + "/api/auth/whoami", headers={"Authorization": f"Bearer {unsigned}"})
    assert r.status_code == 401
    # The browser: a key signs in, the cookie carries a signed token, signing out drops it.
    with httpx.Client(base_url=base) as browser:
        state = browser.get("/api/auth/session").json()
        assert state["signed_in"] is False and "missing" in state["reason"]
        r = browser.post("/api/auth/session", json={"key": key_for(live_server.url, "officer")})
        assert r.status_code == 200
        cookie = r.headers["set-cookie"].lower()
        assert "httponly" in cookie and "samesite=strict" in cookie
        assert browser.get("/api/auth/whoami").json()["via"] == "session"
        assert browser.get("/api/alerts", params={"limit": 1}).status_code == 200
        browser.delete("/api/auth/session")
        browser.cookies.clear()  # httpx keeps expired cookies until told
        assert browser.get("/api/alerts").status_code == 401
        bad = browser.post("/api/auth/session", json={"key": "hunter2"})
        assert bad.status_code == 422 and bad.json()["errors"][0]["field"] == "key"


def test_methods_are_configurable(database_url: str) -> None:
    key = key_for(database_url)
    settings = make_settings(database_url)
    settings.auth.methods = "token"
    with LiveServer(settings) as server, httpx.Client(base_url=server.base_url) as http:
        r = http.get("/api/auth/whoami", headers=auth(key))
        assert r.status_code == 401 and "switched off" in r.json()["detail"]
    settings = make_settings(database_url)
    settings.auth.methods = "key"
    with LiveServer(settings) as server, httpx.Client(base_url=server.base_url) as http:
        r = http.post("/api/auth/token", headers=auth(key))
        assert r.status_code == 403 and r.json()["errors"][0]["field"] == "token"


def test_a_query_key_works_for_tiles_only(live_server: Any, keys: dict[str, str]) -> None:
    base, key = live_server.base_url, keys["tiles"]
    doc = httpx.get(base + "/tiles/enterprises.json", params={"key": key})
    # The TileJSON's tile URLs hold a short-lived tile token instead (tests/test_secrets.py).
    assert doc.status_code == 200 and key not in doc.text and "?t=" in doc.json()["tiles"][0]
    assert httpx.get(base + "/api/enterprises", params={"key": key}).status_code == 401


# -- an enterprise sees itself only ------------------------------------------------------------
def test_an_enterprise_key_reads_its_own_data_only(
    live_server: Any, keys: dict[str, str], plant: dict[str, Any]
) -> None:
    a, b = plant["a"]["id"], plant["b"]["id"]
    with as_(live_server, keys["ent_a"]) as http:
        for path in (
            "/api/enterprises/{}/risk-units",
            "/api/enterprises/{}/score",
            "/api/enterprises/{}/risk",
            "/api/enterprises/{}/hidden-dangers",
            "/enterprises/{}/diagram.geojson",
            "/api/enterprises/{}",
        ):
            own = http.get(path.format(a))
            assert own.status_code == 200, (path, own.text)
            other = http.get(path.format(b))
            assert other.status_code == 403, (path, other.text)
            assert other.json()["errors"][0]["field"] in ("id",)
        assert http.get(f"/api/risk-units/{plant['b']['unit']}").status_code == 403
        assert http.get(f"/api/risk-units/{plant['a']['unit']}").status_code == 200
        assert http.get("/enterprises/999999/diagram.geojson").status_code == 404
        listed = http.get("/api/enterprises", params={"limit": 1000}).json()
        assert [f["id"] for f in listed["features"]] == [a]
        sources = http.get("/api/hazard-sources", params={"limit": 1000}).json()
        assert {f["properties"]["enterprise_id"] for f in sources["features"]} == {a}
        page = http.get(f"/enterprises/{b}/diagram")
        assert page.status_code == 403
        assert http.get("/api/alerts").status_code == 403
        assert http.get("/api/risk/summary").status_code == 403


def test_tiles_carry_no_other_sites_inventory(
    live_server: Any, keys: dict[str, str], plant: dict[str, Any]
) -> None:
    """The same tile for three callers: the admin sees both sites with inventories, the
    enterprise only its own (with its inventory), the tile reader both without inventories.
    The admin asks first, so a shared cache entry would leak into the others."""
    tile = tile_of(plant["a"]["lon"], plant["a"]["lat"], 15)
    assert tile == tile_of(plant["b"]["lon"], plant["b"]["lat"], 15)
    layers = "enterprises,hazard_sources"
    seen = {}
    for who in ("admin", "ent_a", "tiles"):
        with as_(live_server, keys[who]) as http:
            r = get_tile(http, layers, tile)
            assert r.status_code == 200 and r.headers["cache-control"].startswith("private")
            seen[who] = decode(r.content)
    names = {
        w: sorted(f["properties"]["name"] for f in features(t, "enterprises"))
        for w, t in seen.items()
    }
    assert names == {
        "admin": ["权限测试公司A", "权限测试公司B"],
        "ent_a": ["权限测试公司A"],
        "tiles": ["权限测试公司A", "权限测试公司B"],
    }
    inventory = {
        w: sorted(str(f["properties"].get("substances")) for f in features(t, "hazard_sources"))
        for w, t in seen.items()
    }
    assert inventory["admin"] == ["液氯A 12.500/5.000 t", "液氯B 12.500/5.000 t"]
    assert inventory["ent_a"] == ["液氯A 12.500/5.000 t"]
    assert inventory["tiles"] == ["None", "None"]
    assert all("R" not in f["properties"] for f in features(seen["tiles"], "hazard_sources"))
    with as_(live_server, keys["tiles"]) as http:
        doc = http.get("/tiles/hazard_sources.json").json()
        fields = doc["vector_layers"][0]["fields"]
        assert "substances" not in fields and "R" not in fields and "grade" in fields
        assert http.get("/tiles/alerts.json").status_code == 403
        refused = get_tile(http, "enterprises,tankers", tile)
        assert refused.status_code == 403 and "tankers" in refused.json()["detail"]
        catalog = {layer["name"] for layer in http.get("/tiles").json()["layers"]}
        assert "enterprises" in catalog and "tankers" not in catalog


def test_a_tile_reader_cannot_write_anything(live_server: Any, keys: dict[str, str]) -> None:
    spec = httpx.get(live_server.base_url + "/openapi.json").json()
    writes = [
        (method.upper(), re.sub(r"\{[^}]+\}", "1", path))
        for path, ops in spec["paths"].items()
        for method in ops
        if method in ("post", "put", "patch", "delete")
        and path not in ("/api/auth/session", "/api/auth/token")
    ]
    assert len(writes) > 20
    with as_(live_server, keys["tiles"]) as http:
        answers = {(m, p): http.request(m, p, json={}).status_code for m, p in writes}
        reads = {p: http.get(p).status_code for p in ("/api/enterprises", "/api/alerts")}
    assert {call: code for call, code in answers.items() if code != 403} == {}
    assert reads == {"/api/enterprises": 403, "/api/alerts": 403}


# -- regulators and officers: their districts ----------------------------------------------
def test_a_regulator_sees_their_districts(
    live_server: Any, keys: dict[str, str], plant: dict[str, Any]
) -> None:
    with as_(live_server, keys["reg_d1"]) as http:
        assert http.get(f"/api/enterprises/{plant['a']['id']}/risk").status_code == 200
        assert http.get(f"/api/enterprises/{plant['b']['id']}/risk").status_code == 403
        listed = http.get("/api/enterprises", params={"limit": 1000}).json()
        assert {f["properties"]["district"] for f in listed["features"]} == {plant["d1"]}
        r = http.get("/api/enterprises", params={"district": plant["d2"]})
        assert r.status_code == 403 and r.json()["errors"][0]["field"] == "district"
        summary = http.get("/api/risk/summary").json()
        assert [d["district"] for d in summary["districts"]] == [plant["d1"]]
        unit_b = {"type": "Feature", "geometry": None, "properties": {}}
        r = http.put(f"/api/risk-units/{plant['b']['unit']}", json=unit_b)
        assert r.status_code == 403
        feature = {
            "type": "Feature",
            "geometry": {"type": "Point", "coordinates": [LON + 0.01, LAT]},
            "properties": {
                "credit_code": "9133020000AUTH0C01",
                "name": "越权新增公司",
                "category": "storage",
                "district": plant["d2"],
            },
        }
        r = http.post("/api/enterprises", json=feature)
        assert r.status_code == 403  # and nothing was stored:
    with live_server.client() as admin:
        found = admin.get("/api/enterprises", params={"limit": 1000, "district": plant["d2"]})
        assert "越权新增公司" not in found.text


def test_a_district_regulator_writes_in_their_districts_only(
    live_server: Any, keys: dict[str, str], plant: dict[str, Any]
) -> None:
    """Zones are reference data anyone may read, but a district regulator creates them only in
    their districts; the refused batch leaves nothing behind."""

    def school(code: str, district: str, dx: float) -> dict[str, Any]:
        lon, lat = LON + 0.02 + dx, LAT + 0.02
        ring = [[lon, lat], [lon + 0.001, lat], [lon + 0.001, lat + 0.001], [lon, lat]]
        return {
            "type": "Feature",
            "geometry": {"type": "Polygon", "coordinates": [ring]},
            "properties": {
                "code": code,
                "name": "权限测试学校",
                "kind": "school",
                "district": district,
            },
        }

    tag = uuid.uuid4().hex[:6]
    with as_(live_server, keys["reg_d1"]) as http:
        theirs = school(f"AUTH-Z1-{tag}", plant["d1"], 0.0)
        other = school(f"AUTH-Z2-{tag}", plant["d2"], 0.01)
        r = http.post("/api/zones", json={"type": "FeatureCollection", "features": [theirs, other]})
        assert r.status_code == 403 and r.json()["errors"][0]["field"] == "id"
        assert http.post("/api/zones", json=theirs).status_code == 201
    with live_server.client() as admin:
        stored = admin.get("/api/zones", params={"limit": 10000}).json()["features"]
        codes = {f["properties"]["code"] for f in stored}
        assert f"AUTH-Z1-{tag}" in codes and f"AUTH-Z2-{tag}" not in codes


def _plant_alerts(database_url: str, plant: dict[str, Any]) -> dict[str, int]:
    with psycopg.connect(database_url, autocommit=True) as c:
        (vid,) = c.execute(
            "INSERT INTO vehicles (plate, carrier) VALUES (%s, '权限测试危运') RETURNING id",
            (f"权A{uuid.uuid4().hex[:6]}",),
        ).fetchone()
        ids = {}
        for key, district in (("d1", plant["d1"]), ("d2", plant["d2"])):
            (aid,) = c.execute(
                "INSERT INTO alerts (vehicle_id, rule, episode_start, district, severity, geom)"
                " VALUES (%s, 'overspeed', now() - %s * interval '1 s', %s, 'moderate',"
                " ST_SetSRID(ST_Point(%s, %s), 4326)) RETURNING id",
                (vid, len(ids) + 1, district, LON, LAT),
            ).fetchone()
            ids[key] = aid
        c.execute(
            "SELECT pg_notify('georisk_changes', %s)",
            (json.dumps({"layer": "alerts", "ids": sorted(ids.values())}),),
        )
    return ids


def test_an_officers_stream_carries_only_their_districts(
    live_server: Any, keys: dict[str, str], plant: dict[str, Any], database_url: str
) -> None:
    events: queue.Queue[dict[str, Any]] = queue.Queue()
    opened = threading.Event()
    stop = threading.Event()

    def read() -> None:
        headers = auth(keys["officer_d1"])
        timeout = httpx.Timeout(10, read=2)
        with (
            httpx.Client(base_url=live_server.base_url, timeout=timeout) as c,
            c.stream("GET", "/api/alerts/stream", headers=headers) as r,
        ):
            opened.set()
            try:
                for line in r.iter_lines():
                    if stop.is_set():
                        return
                    if line.startswith("data:"):
                        events.put(json.loads(line[5:]))
            except httpx.ReadTimeout:
                return

    reader = threading.Thread(target=read, daemon=True)
    reader.start()
    assert opened.wait(10)
    time.sleep(0.5)  # subscribed before the alerts exist
    ids = _plant_alerts(database_url, plant)
    got: set[int] = set()
    deadline = time.monotonic() + 8
    while time.monotonic() < deadline:
        try:
            got.add(int(events.get(timeout=0.5)["properties"]["id"]))
        except queue.Empty:
            if ids["d1"] in got:
                break
    stop.set()
    assert ids["d1"] in got and ids["d2"] not in got
    with as_(live_server, keys["officer_d1"]) as http:
        assert http.get(f"/api/alerts/{ids['d2']}").status_code == 403
        assert http.post(f"/api/alerts/{ids['d2']}/ack").status_code == 403
        assert http.post(f"/api/alerts/{ids['d1']}/ack").status_code == 200
        listed = http.get("/api/alerts", params={"f": "json", "limit": 500}).json()["alerts"]
        assert {a["district"] for a in listed} <= {plant["d1"]}
        r = http.get("/api/alerts/stream", params={"district": plant["d2"]})
        assert r.status_code == 403 and r.json()["errors"][0]["field"] == "district"
        assert http.get(f"/api/enterprises/{plant['a']['id']}/risk").status_code == 403


# -- audit log ---------------------------------------------------------------------------------
def test_writes_are_audited_with_who_and_before_after(
    client: httpx.Client, live_server: Any, keys: dict[str, str], plant: dict[str, Any]
) -> None:
    unit = plant["a"]["unit"]
    body = {
        "type": "Feature",
        "geometry": {
            "type": "Polygon",
            "coordinates": [
                [[LON, LAT], [LON + 0.0002, LAT], [LON + 0.0002, LAT + 0.0002], [LON, LAT]]
            ],
        },
        "properties": {
            "name": "审计单元",
            "method": "LS",
            "likelihood": 5,
            "severity": 5,
        },
    }
    with as_(live_server, keys["ent_a"]) as http:
        r = http.put(f"/api/risk-units/{unit}", json=body)
        assert r.status_code == 200, r.text
    log = client.get("/api/audit", params={"entity": "risk_units", "entity_id": unit}).json()
    latest = log["entries"][0]
    assert latest["action"] == "update" and latest["actor"].startswith("enterprise:")
    assert "test enterprise" in latest["actor"]
    assert latest["before"]["name"] == "装卸区" and latest["after"]["name"] == "审计单元"
    assert latest["after"]["geom"]["type"] in ("Polygon", "MultiPolygon")  # GeoJSON, not hex
    with as_(live_server, keys["reg_d1"]) as http:
        r = http.post(
            f"/api/enterprises/{plant['a']['id']}/deductions",
            json={"item_code": MANUAL_ITEM, "note": "audit test"},
        )
        assert r.status_code == 201, r.text
        assert http.get("/api/audit").status_code == 403
    scores = client.get("/api/audit", params={"entity": "score_events"}).json()
    assert scores["entries"][0]["actor"].startswith("regulator:")
    assert scores["entries"][0]["after"]["enterprise_id"] == plant["a"]["id"]
    ids = _plant_alerts(live_server.url, plant)
    assert client.post(f"/api/alerts/{ids['d2']}/ack").status_code == 200
    entry = client.get("/api/audit", params={"entity": "alerts", "entity_id": ids["d2"]}).json()
    (ack,) = entry["entries"]
    assert ack["before"]["status"] == "new" and ack["after"]["status"] == "acknowledged"
    assert ack["actor"].startswith("admin:")
    r = client.get("/api/audit", params={"entity": "nope"})
    assert r.status_code == 422
