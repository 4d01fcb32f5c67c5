"""Risk endpoints over real HTTP: calculator worked examples, colours, risk-unit lifecycle."""

from __future__ import annotations

import time
from collections.abc import Iterator
from typing import Any

import httpx
import psycopg
import pytest


def _assess(client: httpx.Client, people: int, *substances: dict[str, Any]) -> httpx.Response:
    return client.post(
        "/api/assess/gb18218", json={"population_500m": people, "substances": list(substances)}
    )


def test_calculator_grade_one_at_exactly_100_with_q_from_table1(client: httpx.Client) -> None:
    response = _assess(client, 100, {"name": "液氯", "cas": "7782-50-5", "q": 62.5})
    assert response.status_code == 200
    body = response.json()
    assert (body["S"], body["alpha"], body["R"]) == (12.5, 2.0, 100.0)
    assert (body["grade"], body["color"]) == (1, "red")
    assert body["substances"][0]["Q"] == 5
    assert body["substances"][0]["Q_from"] == "table1"
    assert body["substances"][0]["beta_from"] == "table3"


def test_calculator_below_s_one_has_no_grade(client: httpx.Client) -> None:
    body = _assess(client, 10, {"name": "甲苯", "q": 100, "Q": 500, "class": "W5.4"}).json()
    assert body["S"] == 0.2 and body["grade"] is None and body["color"] is None


@pytest.mark.parametrize(
    ("substance", "field"),
    [
        ({"name": "苯", "q": -3, "Q": 50, "class": "W5.1"}, "substances[0].q"),
        ({"name": "苯", "q": 3, "Q": 0, "class": "W5.1"}, "substances[0].Q"),
        # "other" has no Table 2 Q (W4 has one since issue 15: 50 t)
        ({"name": "神秘物质", "cas": "999-99-9", "q": 3, "class": "other"}, "substances[0].Q"),
    ],
)
def test_malformed_assessment_is_422_naming_the_substance(
    client: httpx.Client, substance: dict[str, Any], field: str
) -> None:
    response = _assess(client, 10, substance)
    assert response.status_code == 422
    body = response.json()
    assert body["errors"][0]["field"] == field
    assert substance["name"] in body["detail"]


def test_calculator_rejects_missing_population(client: httpx.Client) -> None:
    response = client.post("/api/assess/gb18218", json={"substances": [{"name": "x", "q": 1}]})
    assert response.status_code == 422
    assert "population_500m" in response.json()["detail"]


@pytest.fixture()
def enterprise(db: psycopg.Connection) -> Iterator[int]:
    row = db.execute(
        "INSERT INTO enterprises (credit_code, name, category, is_hazmat, diagnosis_score, geom,"
        " site_geom) VALUES ('91330200RU00000012', 'risk unit test', 'storage', true, 92,"
        " ST_SetSRID(ST_Point(121.30, 30.15), 4326),"
        " ST_Multi(ST_MakeEnvelope(121.299, 30.149, 121.301, 30.151, 4326))) RETURNING id"
    ).fetchone()
    assert row is not None
    yield int(row[0])
    db.execute("DELETE FROM enterprises WHERE id = %s", (row[0],))


def _unit(name: str, **props: Any) -> dict[str, Any]:
    ring = [[121.2995, 30.1495], [121.3005, 30.1495], [121.3005, 30.1505], [121.2995, 30.1495]]
    return {
        "type": "Feature",
        "geometry": {"type": "Polygon", "coordinates": [ring]},
        "properties": {"name": name, **props},
    }


def test_risk_unit_lifecycle_drives_the_enterprise_colour(
    client: httpx.Client, enterprise: int
) -> None:
    base = f"/api/enterprises/{enterprise}"
    assert client.get(f"{base}/risk").json()["color"] == "blue"  # diagnosis 92

    created = client.post(
        f"{base}/risk-units",
        json=_unit("液氯储罐区", method="LEC", likelihood=6, exposure=6, consequence=15),
    )
    assert created.status_code == 201, created.text
    assert created.json()["color"] == "red" and created.json()["score"] == 540
    unit_id = created.json()["id"]

    risk = client.get(f"{base}/risk").json()
    assert (risk["inherent_color"], risk["dynamic_color"]) == ("red", "red")
    assert risk["reasons"][0]["code"] == "risk_unit"
    assert "液氯储罐区" in risk["reasons"][0]["zh"]

    near = {"bbox": "121.29,30.14,121.31,30.16"}
    reds = client.get("/api/enterprises", params={**near, "color": "red"}).json()
    assert [f["id"] for f in reds["features"]] == [enterprise]
    assert reds["features"][0]["properties"]["inherent_color"] == "red"
    blues = client.get("/api/enterprises", params={**near, "color": "blue"}).json()
    assert blues["numberMatched"] == 0

    # The hexagon holding the site turns red shortly after (background refresh, bounded wait).
    hexes: list[Any] = []
    deadline = time.monotonic() + 15
    while time.monotonic() < deadline:
        hexes = client.get("/api/h3/enterprises", params={"res": 9, **near}).json()["features"]
        if any(h["properties"]["color"] == "red" for h in hexes):
            break
        time.sleep(0.2)
    assert [h["properties"]["color"] for h in hexes] == ["red"]

    listed = client.get(f"{base}/risk-units").json()
    assert [f["properties"]["name"] for f in listed["features"]] == ["液氯储罐区"]

    edited = client.put(
        f"/api/risk-units/{unit_id}",
        json=_unit("液氯储罐区", method="LS", likelihood=2, severity=2),
    )
    assert edited.json() == {"id": unit_id, "color": "yellow", "score": 4}
    assert client.get(f"{base}/risk").json()["color"] == "yellow"

    assert client.delete(f"/api/risk-units/{unit_id}").status_code == 204
    assert client.get(f"{base}/risk").json()["color"] == "blue"
    assert client.get(f"/api/risk-units/{unit_id}").status_code == 404


@pytest.mark.parametrize(
    ("feature", "field"),
    [
        (_unit("x", method="LS", likelihood=3), "severity"),
        (_unit("x", method="LEC", likelihood=5, exposure=6, consequence=7), "likelihood"),
        (_unit("x", method="XYZ", likelihood=1), "method"),
    ],
)
def test_bad_risk_units_are_422_and_not_stored(
    client: httpx.Client, enterprise: int, db: psycopg.Connection, feature: Any, field: str
) -> None:
    response = client.post(f"/api/enterprises/{enterprise}/risk-units", json=feature)
    assert response.status_code == 422
    assert field in response.json()["errors"][0]["field"]
    count = db.execute(
        "SELECT count(*) FROM risk_units WHERE enterprise_id = %s", (enterprise,)
    ).fetchone()
    assert count == (0,)


def test_self_crossing_unit_is_422(client: httpx.Client, enterprise: int) -> None:
    bow = _unit("x", method="LS", likelihood=1, severity=1)
    bow["geometry"]["coordinates"] = [[[0, 0], [1, 1], [1, 0], [0, 1], [0, 0]]]
    response = client.post(f"/api/enterprises/{enterprise}/risk-units", json=bow)
    assert response.status_code == 422
    assert response.json()["errors"][0]["field"] == "geometry"
    assert "Self-intersection" in response.json()["detail"]


def test_unknown_enterprise_is_404(client: httpx.Client) -> None:
    assert client.get("/api/enterprises/2000000000/risk").status_code == 404
    assert client.get("/api/enterprises/abc/risk").status_code == 422


def test_summary_counts_rated_enterprises(client: httpx.Client, enterprise: int) -> None:
    client.get(f"/api/enterprises/{enterprise}/risk")  # rates it
    summary = client.get("/api/risk/summary").json()
    assert summary["enterprises"].get("blue", 0) >= 1
    assert sum(sum(d["counts"].values()) for d in summary["districts"]) == sum(
        summary["enterprises"].values()
    )
