"""The ingest role (issue 18 §7): a machine posts fixes and readings of its own districts or
carriers, and gets 403 everywhere else.

Planted data around 127.6 E, 35.6 N (outside the demo city): per district d1/d2 an enterprise
with a hazard source and a monitoring point, and tankers of two carriers of this test's own.
"""

from __future__ import annotations

import datetime as dt
import os
import re
import subprocess
import sys
import uuid
from collections.abc import Iterator
from typing import Any

import httpx
import psycopg
import pytest

from tests.conftest import LiveServer, key_for

LON, LAT = 127.60, 35.60


@pytest.fixture(scope="module")
def plant(database_url: str) -> Iterator[dict[str, Any]]:
    tag = uuid.uuid4().hex[:6]
    out: dict[str, Any] = {"carrier_a": f"入库测试危运A-{tag}", "carrier_b": f"入库测试危运B-{tag}"}
    with psycopg.connect(database_url, autocommit=True) as c:
        d1, d2 = (r[0] for r in c.execute("SELECT code FROM districts ORDER BY code LIMIT 2"))
        out["d1"], out["d2"] = d1, d2
        for name, district, carrier in (
            ("v1", d1, out["carrier_a"]),  # carrier A in d1
            ("v2", d2, out["carrier_a"]),  # carrier A in d2
            ("v3", d1, out["carrier_b"]),  # carrier B in d1
        ):
            (out[name],) = c.execute(
                "INSERT INTO vehicles (plate, carrier, district) VALUES (%s, %s, %s) RETURNING id",
                (f"入{name}{tag}", carrier, district),
            ).fetchone()  # type: ignore[misc]
        for i, (name, district) in enumerate((("p1", d1), ("p2", d2))):
            lon = LON + 0.01 * i
            (eid,) = c.execute(
                "INSERT INTO enterprises (credit_code, name, category, is_hazmat, district, geom)"
                " VALUES (%s, %s, 'storage', true, %s, ST_SetSRID(ST_Point(%s, %s), 4326))"
                " RETURNING id",
                (f"9133020000NGK{i}{tag[:4].upper()}", f"入库测试公司{i}", district, lon, LAT),
            ).fetchone()  # type: ignore[misc]
            (hid,) = c.execute(
                "INSERT INTO hazard_sources (enterprise_id, code, unit_name, unit_kind, geom)"
                " VALUES (%s, 'ING-HS', '储罐区', 'storage', ST_Multi(ST_Buffer(ST_SetSRID("
                "ST_Point(%s, %s), 4326)::geography, 25)::geometry)) RETURNING id",
                (eid, lon, LAT),
            ).fetchone()  # type: ignore[misc]
            (out[name],) = c.execute(
                "INSERT INTO monitoring_points (code, hazard_source_id, kind, unit, level1,"
                " level2, geom) VALUES (%s, %s, 'gas_flammable', '%%LEL', 25, 50,"
                " ST_SetSRID(ST_Point(%s, %s), 4326)) RETURNING id",
                (f"ING-{name}-{tag}", hid, lon, LAT),
            ).fetchone()  # type: ignore[misc]
    yield out


@pytest.fixture(scope="module")
def keys(database_url: str, plant: dict[str, Any]) -> dict[str, str]:
    return {
        "d1": key_for(database_url, "ingest", districts=[plant["d1"]]),
        "carrier_a": key_for(database_url, "ingest", carriers=[plant["carrier_a"]]),
        "both": key_for(
            database_url, "ingest", districts=[plant["d1"]], carriers=[plant["carrier_a"]]
        ),
        "city": key_for(database_url, "ingest"),
    }


_CLOCK = [dt.datetime.now(dt.UTC).replace(microsecond=0) - dt.timedelta(hours=2)]


def fixes(*vehicles: int) -> list[dict[str, Any]]:
    """One fix per vehicle, each at a moment no other test used (30 s apart: no jumps)."""
    out = []
    for i, vid in enumerate(vehicles):
        _CLOCK[0] += dt.timedelta(seconds=30)
        out.append(
            {
                "vehicle_id": vid,
                "ts": _CLOCK[0].isoformat(),
                "lon": LON + 0.001 * i,
                "lat": LAT,
                "speed_kmh": 30,
            }
        )
    return out


def readings(*points: int) -> list[dict[str, Any]]:
    out = []
    for pid in points:
        _CLOCK[0] += dt.timedelta(seconds=30)
        out.append({"point_id": pid, "ts": _CLOCK[0].isoformat(), "value": 3.5})
    return out


def stored_fixes(db: psycopg.Connection, batch: list[dict[str, Any]]) -> int:
    row = db.execute(
        "SELECT count(*) FROM positions p JOIN unnest(%s::int[], %s::timestamptz[]) b(v, t)"
        " ON p.vehicle_id = b.v AND p.ts = b.t",
        ([f["vehicle_id"] for f in batch], [f["ts"] for f in batch]),
    ).fetchone()
    return int(row[0])  # type: ignore[index]


def stored_readings(db: psycopg.Connection, batch: list[dict[str, Any]]) -> int:
    row = db.execute(
        "SELECT count(*) FROM readings r JOIN unnest(%s::int[], %s::timestamptz[]) b(p, t)"
        " ON r.point_id = b.p AND r.ts = b.t",
        ([r["point_id"] for r in batch], [r["ts"] for r in batch]),
    ).fetchone()
    return int(row[0])  # type: ignore[index]


def as_(live_server: LiveServer, key: str) -> httpx.Client:
    return live_server.client(key=key)


# -- in scope: accepted ----------------------------------------------------------------------
def test_a_district_ingest_key_posts_fixes_and_readings_of_its_district(
    live_server: LiveServer, keys: dict[str, str], plant: dict[str, Any], db: psycopg.Connection
) -> None:
    batch = fixes(plant["v1"], plant["v3"])  # both registered in d1, two carriers
    values = readings(plant["p1"])
    with as_(live_server, keys["d1"]) as http:
        r = http.post("/api/positions", json=batch)
        assert r.status_code == 200, r.text
        assert r.json() == {"accepted": 2, "duplicates": 0, "rejected": []}
        r = http.post("/api/readings", json=values)
        assert r.status_code == 200, r.text
        assert r.json()["accepted"] == 1
        # Unknown vehicles are the pipeline's per-row rejection, as for anyone.
        r = http.post("/api/positions", json=fixes(2**31 - 1))
        assert r.status_code == 200 and r.json()["rejected"][0]["index"] == 0
        assert "unknown" in r.json()["rejected"][0]["error"]
    assert stored_fixes(db, batch) == 2 and stored_readings(db, values) == 1


def test_a_carrier_gateway_posts_its_carriers_tankers_anywhere(
    live_server: LiveServer, keys: dict[str, str], plant: dict[str, Any], db: psycopg.Connection
) -> None:
    batch = fixes(plant["v1"], plant["v2"])  # carrier A, in d1 and in d2
    with as_(live_server, keys["carrier_a"]) as http:
        r = http.post("/api/positions", json=batch)
        assert r.status_code == 200 and r.json()["accepted"] == 2, r.text
    assert stored_fixes(db, batch) == 2
    with as_(live_server, keys["city"]) as http:  # no scope: the whole city
        everyone = fixes(plant["v1"], plant["v2"], plant["v3"])
        r = http.post("/api/positions", json=everyone)
        assert r.status_code == 200 and r.json()["accepted"] == 3, r.text
        r = http.post("/api/readings", json=readings(plant["p1"], plant["p2"]))
        assert r.status_code == 200 and r.json()["accepted"] == 2, r.text


# -- out of scope: the whole batch refused, the row named --------------------------------------
@pytest.mark.parametrize(
    ("who", "path", "objects", "field", "index", "culprit"),
    [
        ("d1", "/api/positions", ("v1", "v2"), "vehicle_id", 1, "v2"),  # v2 is in d2
        ("d1", "/api/readings", ("p1", "p1", "p2"), "point_id", 2, "p2"),  # p2 is in d2
        ("carrier_a", "/api/positions", ("v3",), "vehicle_id", 0, "v3"),  # carrier B
        ("carrier_a", "/api/readings", ("p1",), "point_id", 0, "p1"),  # a gateway has no sensors
        ("both", "/api/positions", ("v1", "v2"), "vehicle_id", 1, "v2"),  # carrier A but d2
        ("both", "/api/positions", ("v1", "v3"), "vehicle_id", 1, "v3"),  # d1 but carrier B
    ],
)
def test_rows_outside_the_keys_scope_are_refused_and_nothing_is_stored(
    live_server: LiveServer,
    keys: dict[str, str],
    plant: dict[str, Any],
    db: psycopg.Connection,
    who: str,
    path: str,
    objects: tuple[str, ...],
    field: str,
    index: int,
    culprit: str,
) -> None:
    ids = [plant[o] for o in objects]
    batch = fixes(*ids) if path == "/api/positions" else readings(*ids)
    with as_(live_server, keys[who]) as http:
        r = http.post(path, json=batch)
    assert r.status_code == 403, r.text
    error = r.json()["errors"][0]
    assert error["field"] == field and error["index"] == index
    assert f"row {index}:" in error["reason"] and f" {plant[culprit]} " in error["reason"]
    stored = stored_fixes(db, batch) if path == "/api/positions" else stored_readings(db, batch)
    assert stored == 0


# -- everything else: 403 ---------------------------------------------------------------------
INGEST_ROUTES = {
    ("POST", "/api/positions"),
    ("POST", "/api/readings"),
    ("GET", "/api/auth/whoami"),
    ("POST", "/api/auth/token"),
    ("GET", "/api/auth/session"),  # "who is signed in": public, answers anyone
    ("DELETE", "/api/auth/session"),  # signing out: public
    ("POST", "/api/auth/session"),  # signing in: public, refuses ingest keys (tested below)
    ("GET", "/api/cap/certificate.pem"),  # public: receivers verify signed CAP with it
}


def test_an_ingest_key_gets_403_everywhere_else(
    live_server: LiveServer, keys: dict[str, str]
) -> None:
    """Every operation of the OpenAPI document but the ingest routes — tiles, TileJSON, the
    style, collections, alerts and their streams, keys, audit, webhooks, reports… — is a 403
    naming the role; so are the tile fast path and the diagram page."""
    spec = httpx.get(live_server.base_url + "/openapi.json").json()
    calls = [
        (method.upper(), re.sub(r"\{[^}]+\}", "1", path))
        for path, ops in spec["paths"].items()
        for method in ops
        if (method.upper(), path) not in INGEST_ROUTES and path != "/healthz"
    ]
    assert len(calls) > 60
    families = {p.split("/")[1] if not p.startswith("/api/") else p.split("/")[2] for _, p in calls}
    assert {"tiles", "styles", "enterprises", "alerts", "keys", "audit", "webhooks"} <= families
    extra = [
        ("GET", "/tiles/enterprises/12/3420/1700.mvt"),  # the tile fast path
        ("GET", "/enterprises/1/diagram"),  # the page
    ]
    with as_(live_server, keys["d1"]) as http:
        answers = {(m, p): http.request(m, p, json={}) for m, p in calls + extra}
    wrong = {call: r.status_code for call, r in answers.items() if r.status_code != 403}
    assert wrong == {}
    fields = {r.json()["errors"][0]["field"] for r in answers.values()}
    assert fields == {"role"}


def test_an_ingest_key_knows_itself_trades_for_a_token_but_never_signs_in(
    live_server: LiveServer, keys: dict[str, str], plant: dict[str, Any]
) -> None:
    with as_(live_server, keys["both"]) as http:
        me = http.get("/api/auth/whoami").json()
        assert me["role"] == "ingest" and me["districts"] == [plant["d1"]]
        assert me["carriers"] == [plant["carrier_a"]]
        token = http.post("/api/auth/token").json()["access_token"]
    bearer = {"Authorization": f"Bearer {token}"}
    with httpx.Client(base_url=live_server.base_url, headers=bearer, timeout=30) as http:
        # The token carries the scope: in scope accepted, out of scope refused.
        assert http.post("/api/positions", json=fixes(plant["v1"])).status_code == 200
        assert http.post("/api/positions", json=fixes(plant["v2"])).status_code == 403
        assert http.get("/tiles").status_code == 403
    with httpx.Client(base_url=live_server.base_url, timeout=30) as browser:
        r = browser.post("/api/auth/session", json={"key": keys["d1"]})
        assert r.status_code == 403 and r.json()["errors"][0]["field"] == "role"
        assert "set-cookie" not in r.headers


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"role": "ingest", "carriers": ["no such carrier"]}, "carriers"),
        ({"role": "ingest", "carriers": []}, "carriers"),
        ({"role": "regulator", "carriers": ["x"]}, "carriers"),
        ({"role": "ingest", "districts": ["NOPE-1"]}, "districts"),
        ({"role": "ingest", "enterprise_id": 1}, "enterprise_id"),
    ],
)
def test_ingest_keys_are_validated(client: httpx.Client, body: dict[str, Any], field: str) -> None:
    r = client.post("/api/keys", json={"name": "gateway", **body})
    assert r.status_code == 422 and r.json()["errors"][0]["field"] == field


def test_the_cli_makes_ingest_keys_and_the_demo_prints_one(
    live_server: LiveServer,
    plant: dict[str, Any],
    database_url: str,
    tmp_path: Any,
    db: psycopg.Connection,
) -> None:
    env = {**os.environ, "DATABASE_URL": database_url, "GEORISK_DATA_DIR": str(tmp_path)}

    def georisk(*args: str) -> str:
        done = subprocess.run(
            [sys.executable, "-m", "geo_api.cli", *args],
            env=env,
            capture_output=True,
            text=True,
            timeout=120,
        )
        assert done.returncode == 0, done.stderr
        return done.stdout

    made = georisk(
        "keys", "create", "--name", "gps gateway", "--role", "ingest", "--districts", plant["d1"]
    )
    key = made.strip()
    assert key.startswith("grk_")
    with as_(live_server, key) as http:
        batch = fixes(plant["v3"])
        assert http.post("/api/positions", json=batch).status_code == 200
        assert http.get("/api/enterprises").status_code == 403
    assert stored_fixes(db, batch) == 1
    listed = georisk("keys", "list")
    assert any("ingest" in line and plant["d1"] in line for line in listed.splitlines())
    demo = georisk("keys", "demo")
    line = next(line for line in demo.splitlines() if line.split()[:1] == ["ingest"])
    demo_key = line.split()[1]
    assert "POST /api/positions and /api/readings only" in line
    with as_(live_server, demo_key) as http:
        assert http.get("/api/auth/whoami").json()["role"] == "ingest"
        assert http.get("/tiles").status_code == 403
