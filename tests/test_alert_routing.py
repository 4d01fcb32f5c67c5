"""Alert routing (issue 14 §5): each warning type goes to its departments and the carrier, with
its own deadlines; departments have queues; a carrier reads its own routed alerts; the stats
report by type and department.

Alerts are planted with plain INSERTs, as any engine would write them: the ``route_alert``
trigger routes them, so the test checks what every insert path gets. Everything lives in the
district RT-1 of this module and is removed at the end; routes it changes are put back.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator
from typing import Any

import httpx
import psycopg
import pytest

from tests.conftest import LiveServer, key_for

DISTRICT = "RT-1"
LON, LAT = 126.31, 35.21


@pytest.fixture(scope="module")
def plant(database_url: str) -> Iterator[dict[str, Any]]:
    conn = psycopg.connect(database_url, autocommit=True)
    conn.execute(
        "INSERT INTO districts (code, name, geom) VALUES (%s, 'routing district',"
        " ST_Multi(ST_MakeEnvelope(%s, %s, %s, %s, 4326)))",
        (DISTRICT, LON - 0.1, LAT - 0.1, LON + 0.1, LAT + 0.1),
    )
    carriers, vehicles = {}, {}
    for n, key in enumerate(("c1", "c2")):
        (eid,) = conn.execute(
            "INSERT INTO enterprises (credit_code, name, category, is_hazmat, district, geom)"
            " VALUES (%s, %s, 'transport', true, %s, ST_SetSRID(ST_Point(%s, %s), 4326))"
            " RETURNING id",
            (f"91330200RT0000000{n}", f"路由测试危运{key}", DISTRICT, LON, LAT),
        ).fetchone()
        carriers[key] = eid
        (vid,) = conn.execute(
            "INSERT INTO vehicles (plate, carrier, enterprise_id, district)"
            " VALUES (%s, %s, %s, %s) RETURNING id",
            (f"测RT{n}", f"路由测试危运{key}", eid, DISTRICT),
        ).fetchone()
        vehicles[key] = vid
    routes = conn.execute("SELECT rule, departments, ack_s FROM alert_routes").fetchall()
    yield {"conn": conn, "carriers": carriers, "vehicles": vehicles}
    for rule, departments, ack_s in routes:  # put the routes back as they were
        conn.execute(
            "UPDATE alert_routes SET departments = %s, ack_s = %s WHERE rule = %s",
            (departments, ack_s, rule),
        )
    conn.execute("DELETE FROM alerts WHERE district = %s", (DISTRICT,))
    conn.execute("DELETE FROM vehicles WHERE district = %s", (DISTRICT,))
    conn.execute("DELETE FROM enterprises WHERE district = %s", (DISTRICT,))
    conn.execute("DELETE FROM districts WHERE code = %s", (DISTRICT,))
    conn.close()


def _raise(plant: dict[str, Any], carrier: str, rule: str, minute: int) -> dict[str, Any]:
    """An alert as the tanker engine writes one (deadlines: the engine's 1800 s / 4 h)."""
    row = (
        plant["conn"]
        .execute(
            "INSERT INTO alerts (vehicle_id, rule, episode_start, district, enterprise_id, geom,"
            " ack_deadline, dispose_deadline) VALUES (%s, %s, now() - %s * interval '1 minute',"
            " %s, %s, ST_SetSRID(ST_Point(%s, %s), 4326), now() + interval '1800 s',"
            " now() + interval '4 h')"
            " RETURNING id, departments, carrier_notified,"
            " extract(epoch FROM ack_deadline - created_at) AS ack_s,"
            " extract(epoch FROM dispose_deadline - created_at) AS dispose_s",
            (
                plant["vehicles"][carrier],
                rule,
                minute,
                DISTRICT,
                plant["carriers"][carrier],
                LON,
                LAT,
            ),
        )
        .fetchone()
    )
    assert row is not None
    alert_id, departments, told, ack_s, dispose_s = row
    return {
        "id": alert_id,
        "departments": departments,
        "told": told,
        "ack_s": round(float(ack_s)),
        "dispose_s": round(float(dispose_s)),
    }


@pytest.fixture(scope="module")
def raised(plant: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {
        "a1": _raise(plant, "c1", "overspeed", 30),
        "a2": _raise(plant, "c1", "forbidden_zone_parking", 20),
        "a3": _raise(plant, "c2", "terminal_power_cut", 10),
    }


def _ids(http: httpx.Client, **params: Any) -> set[int]:
    r = http.get("/api/alerts", params={"district": DISTRICT, **params})
    assert r.status_code == 200, r.text
    return {f["id"] for f in r.json()["features"]}


def test_every_insert_is_routed_with_its_deadlines(raised: dict[str, dict[str, Any]]) -> None:
    a1, a2, a3 = raised["a1"], raised["a2"], raised["a3"]
    assert a1["departments"] == ["traffic_police"] and a1["told"]
    assert sorted(a2["departments"]) == ["emergency_management", "traffic_police"]
    assert a3["departments"] == ["transport"]
    # routes without deadlines of their own keep the engine's (GEORISK_TANKER_*_DEADLINE_S);
    # an edited route's deadlines win (test_an_edited_route_applies_to_new_alerts)
    assert (a1["ack_s"], a1["dispose_s"]) == (1800, 4 * 3600)
    assert (a2["ack_s"], a2["dispose_s"]) == (1800, 4 * 3600)


def test_the_demo_citys_alerts_are_all_routed(db: psycopg.Connection) -> None:
    (unrouted,) = db.execute("SELECT count(*) FROM alerts WHERE departments = '{}'").fetchone()
    (total,) = db.execute("SELECT count(*) FROM alerts").fetchone()
    assert total > 0 and unrouted == 0


def test_department_queues_and_the_carriers_view(
    live_server: LiveServer, client: httpx.Client, plant: dict[str, Any], raised: Any
) -> None:
    a1, a2, a3 = (raised[k]["id"] for k in ("a1", "a2", "a3"))
    assert _ids(client, department="traffic_police") == {a1, a2}
    assert _ids(client, department="transport") == {a3}
    assert _ids(client, department="market_regulation") == set()
    bad = client.get("/api/alerts", params={"department": "fire_brigade"})
    assert bad.status_code == 422 and bad.json()["errors"][0]["field"] == "query.department"
    one = client.get(f"/api/alerts/{a2}").json()["properties"]
    assert sorted(one["departments"]) == ["emergency_management", "traffic_police"]
    carrier = key_for(live_server.url, "enterprise", enterprise_id=plant["carriers"]["c1"])
    with live_server.client(key=carrier) as c1:
        mine = c1.get("/api/alerts")
        assert mine.status_code == 200
        assert {f["id"] for f in mine.json()["features"]} == {a1, a2}
        assert c1.get(f"/api/alerts/{a1}").status_code == 200
        assert c1.get(f"/api/alerts/{a3}").status_code == 403  # the other carrier's
        assert c1.post(f"/api/alerts/{a1}/ack").status_code == 403  # officers act


def test_an_edited_route_applies_to_new_alerts(
    live_server: LiveServer, client: httpx.Client, plant: dict[str, Any], raised: Any
) -> None:
    r = client.put(
        "/api/alert-routes/overspeed",
        json={"departments": ["traffic_police", "transport"], "ack_s": 600},
    )
    assert r.status_code == 200, r.text
    assert r.json()["departments"] == ["traffic_police", "transport"]
    a4 = _raise(plant, "c2", "overspeed", 5)
    assert a4["departments"] == ["traffic_police", "transport"] and a4["ack_s"] == 600
    # an alert keeps what it was raised with
    assert client.get(f"/api/alerts/{raised['a1']['id']}").json()["properties"]["departments"] == [
        "traffic_police"
    ]
    listed = client.get("/api/alert-routes").json()["items"]
    assert {x["rule"] for x in listed} >= {"overspeed", "terminal_emergency"}
    bad = client.put("/api/alert-routes/overspeed", json={"departments": ["fire_brigade"]})
    assert bad.status_code == 422 and bad.json()["errors"][0]["field"].startswith("departments")
    assert (
        client.put("/api/alert-routes/nothing", json={"departments": ["transport"]}).status_code
        == 422
    )
    regulator = key_for(live_server.url, "regulator", districts=[DISTRICT])
    with live_server.client(key=regulator) as reg:
        assert reg.get("/api/alert-routes").status_code == 200
        refused = reg.put("/api/alert-routes/overspeed", json={"departments": ["transport"]})
        assert refused.status_code == 403
    audit = client.get("/api/audit", params={"entity": "alert_routes"}).json()["entries"]
    assert audit and audit[0]["after"]["ack_s"] == 600


def test_stats_by_type_and_department(
    client: httpx.Client, plant: dict[str, Any], raised: Any
) -> None:
    a1 = raised["a1"]["id"]
    assert client.post(f"/api/alerts/{a1}/ack").status_code == 200
    done = client.post(f"/api/alerts/{a1}/dispose", json={"outcome": "disposed", "note": "罚款"})
    assert done.status_code == 200, done.text
    body = client.get("/api/alerts/stats", params={"district": DISTRICT}).json()
    total = body["overall"]["total"]
    rules = {x["rule"]: x for x in body["by_rule"]}
    depts = {x["department"]: x for x in body["by_department"]}
    # a1 overspeed (disposed), a2 forbidden parking, a3 power cut, a4 overspeed (raised by the
    # route test above, routed to traffic police and transport)
    assert total == 4
    assert rules["overspeed"]["total"] == 2
    assert rules["forbidden_zone_parking"]["total"] == 1
    assert rules["terminal_power_cut"]["total"] == 1
    assert depts["traffic_police"]["total"] == 3  # a1, a2, a4
    assert depts["traffic_police"]["by_status"]["disposed"] == 1
    assert depts["traffic_police"]["disposal_rate_of_all"] == round(1 / 3, 4)
    assert depts["emergency_management"]["total"] == 1  # a2
    assert depts["transport"]["total"] == 2  # a3, a4
    police = client.get(
        "/api/alerts/stats", params={"district": DISTRICT, "department": "traffic_police"}
    ).json()
    assert police["overall"]["total"] == depts["traffic_police"]["total"]
    assert police["overall"]["by_status"]["disposed"] == 1
    since = (dt.datetime.now(dt.UTC) - dt.timedelta(minutes=1)).isoformat()
    recent = client.get("/api/alerts/stats", params={"district": DISTRICT, "from": since}).json()
    assert recent["overall"]["total"] <= total
