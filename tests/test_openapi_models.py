"""Response models (geo_api/models/): /openapi.json documents the main resources' success
bodies, and what the live server really answers matches what it documents.

Each real body is checked twice: against the schema of /openapi.json (jsonschema, the way a
client generator reads it) and against the pydantic model, whose JSON dump must give the very
same body back (a model that turned 4 into 4.0, or reshaped a time, would fail here).

Rows written here live in an enterprise, a vehicle and an alert district of this module's
own, removed at the end, so other tests' counts never see them.
"""

from __future__ import annotations

import datetime as dt
import importlib
import pkgutil
from collections.abc import Iterator
from typing import Any

import httpx
import psycopg
import pytest
from jsonschema import Draft202012Validator
from pydantic import BaseModel

import geo_api.models
from geo_api.models.access import KeyList, NewApiKey
from geo_api.models.alerts import AlertCollection, AlertFeature, AlertList, AlertStats
from geo_api.models.base import Body
from geo_api.models.health import Health
from geo_api.models.monitoring import AlarmCollection
from geo_api.models.prevention import (
    Deduction,
    HiddenDanger,
    HiddenDangerList,
    SafetyScore,
    WatchList,
)
from geo_api.models.risk import (
    EnterpriseRisk,
    Gb18218Assessment,
    RiskSummary,
    RiskUnitCollection,
    RiskUnitFeature,
    RiskUnitRating,
)
from tests.conftest import LiveServer

JSON = "application/json"
GEO = "application/geo+json"
DISTRICT = "OAM-TEST"  # alerts of this module only (a free-text column, no district row)

#: (method, path, status, media type, key fields the documented schema must name as required)
DOCUMENTED: list[tuple[str, str, int, str, set[str]]] = [
    ("get", "/api/enterprises/{enterprise_id}/risk", 200, JSON, {"id", "color", "reasons"}),
    ("get", "/api/risk/summary", 200, JSON, {"enterprises", "districts"}),
    ("post", "/api/assess/gb18218", 200, JSON, {"S", "alpha", "R", "grade", "substances"}),
    ("get", "/api/alerts", 200, GEO, {"type", "features", "numberMatched"}),
    ("get", "/api/alerts", 200, JSON, {"alerts", "numberMatched"}),
    ("get", "/api/alerts/{alert_id}", 200, GEO, {"type", "geometry", "properties"}),
    ("post", "/api/alerts/{alert_id}/ack", 200, GEO, {"type", "geometry", "properties"}),
    ("post", "/api/alerts/{alert_id}/dispose", 200, GEO, {"type", "geometry", "properties"}),
    ("get", "/api/alerts/stats", 200, JSON, {"overall", "by_district", "by_carrier"}),
    ("get", "/api/alarms", 200, GEO, {"type", "features"}),
    ("get", "/api/enterprises/{enterprise_id}/score", 200, JSON, {"remaining", "history"}),
    ("post", "/api/enterprises/{enterprise_id}/deductions", 201, JSON, {"id", "points"}),
    ("get", "/api/enterprises/{enterprise_id}/risk-units", 200, GEO, {"type", "features"}),
    ("post", "/api/enterprises/{enterprise_id}/risk-units", 201, JSON, {"id", "color", "score"}),
    ("get", "/api/risk-units/{unit_id}", 200, GEO, {"type", "geometry", "properties"}),
    ("put", "/api/risk-units/{unit_id}", 200, JSON, {"id", "color", "score"}),
    ("get", "/api/enterprises/{enterprise_id}/hidden-dangers", 200, JSON, {"items"}),
    ("post", "/api/enterprises/{enterprise_id}/hidden-dangers", 201, JSON, {"id", "status"}),
    ("patch", "/api/hidden-dangers/{danger_id}", 200, JSON, {"id", "status"}),
    ("get", "/healthz", 200, JSON, {"status", "postgis", "schema_revision"}),
    ("get", "/api/reports/daily", 200, JSON, {"date", "key_attention", "districts"}),
    ("get", "/api/keys", 200, JSON, {"keys"}),
    ("post", "/api/keys", 201, JSON, {"key", "prefix", "role"}),
]


@pytest.fixture(scope="module")
def openapi(live_server: LiveServer) -> dict[str, Any]:
    response = httpx.get(f"{live_server.base_url}/openapi.json", timeout=30)
    assert response.status_code == 200
    doc: dict[str, Any] = response.json()
    return doc


def _schema(doc: dict[str, Any], method: str, path: str, status: int, media: str) -> Any:
    operation = doc["paths"][path][method]
    return operation["responses"][str(status)]["content"][media]["schema"]


def _resolved(doc: dict[str, Any], schema: dict[str, Any]) -> dict[str, Any]:
    while "$ref" in schema:
        schema = doc["components"]["schemas"][schema["$ref"].rsplit("/", 1)[-1]]
    return schema


@pytest.mark.parametrize(
    ("method", "path", "status", "media", "fields"),
    DOCUMENTED,
    ids=[f"{m} {p} {s} {t}" for m, p, s, t, _ in DOCUMENTED],
)
def test_operation_documents_its_success_body(
    openapi: dict[str, Any], method: str, path: str, status: int, media: str, fields: set[str]
) -> None:
    schema = _resolved(openapi, _schema(openapi, method, path, status, media))
    assert schema.get("type") == "object", schema
    assert fields <= set(schema["properties"]), (fields, sorted(schema["properties"]))
    assert fields <= set(schema["required"]), (fields, schema["required"])


def test_every_response_model_keeps_what_a_handler_adds() -> None:
    """``response_model`` drops undeclared keys unless the model allows extras: every model
    of geo_api/models/ does, through ``Body``."""
    models: list[type[BaseModel]] = []
    for info in pkgutil.iter_modules(geo_api.models.__path__):
        module = importlib.import_module(f"geo_api.models.{info.name}")
        models += [
            value
            for value in vars(module).values()
            if isinstance(value, type)
            and issubclass(value, BaseModel)
            and value.__module__ == module.__name__
            and value is not Body
        ]
    assert len(models) > 30
    for model in models:
        assert issubclass(model, Body), model
        assert model.model_config.get("extra") == "allow", model


# -- real answers ---------------------------------------------------------------------------
class Checker:
    """Checks one real response against /openapi.json and against its pydantic model."""

    def __init__(self, doc: dict[str, Any]) -> None:
        self.doc = doc
        self.seen: set[tuple[str, str, int, str]] = set()

    def __call__(
        self,
        response: httpx.Response,
        method: str,
        path: str,
        model: type[BaseModel],
        status: int = 200,
        media: str = JSON,
    ) -> Any:
        assert response.status_code == status, response.text
        assert response.headers["content-type"].split(";")[0] == media
        body = response.json()
        schema = _schema(self.doc, method, path, status, media)
        # Refs point into the document's components: validate from the document's root.
        Draft202012Validator({**schema, "components": self.doc["components"]}).validate(body)
        parsed = model.model_validate(body)
        assert parsed.model_dump(mode="json", by_alias=True) == body, model
        self.seen.add((method, path, status, media))
        return body


@pytest.fixture(scope="module")
def site(database_url: str) -> Iterator[dict[str, int]]:
    """An enterprise with a site plan, a vehicle of its own and two new alerts."""
    now = dt.datetime.now(dt.UTC).replace(microsecond=0)
    with psycopg.connect(database_url, autocommit=True) as db:
        row = db.execute(
            "INSERT INTO enterprises (credit_code, name, category, is_hazmat, diagnosis_score,"
            " geom, site_geom) VALUES ('91330200AM00000018', 'openapi models test', 'storage',"
            " true, 88, ST_SetSRID(ST_Point(121.40, 30.25), 4326),"
            " ST_Multi(ST_MakeEnvelope(121.399, 30.249, 121.401, 30.251, 4326))) RETURNING id"
        ).fetchone()
        assert row is not None
        enterprise = int(row[0])
        row = db.execute(
            "INSERT INTO vehicles (plate, carrier) VALUES ('测OAM01', '文档测试运输') RETURNING id"
        ).fetchone()
        assert row is not None
        vehicle = int(row[0])
        alerts = [
            int(r[0])
            for r in db.execute(
                "INSERT INTO alerts (vehicle_id, rule, episode_start, episode_end, status,"
                " district, geom) SELECT %s, 'illegal_parking', %s + g * interval '1 minute', %s,"
                " 'new', %s,"
                " ST_SetSRID(ST_Point(121.41, 30.26), 4326) FROM generate_series(1, 2) g"
                " RETURNING id",
                (vehicle, now - dt.timedelta(hours=1), now - dt.timedelta(minutes=40), DISTRICT),
            ).fetchall()
        ]
        try:
            yield {"enterprise": enterprise, "alert": alerts[0]}
        finally:
            db.execute("DELETE FROM alerts WHERE district = %s", (DISTRICT,))
            db.execute("DELETE FROM vehicles WHERE id = %s", (vehicle,))
            db.execute("DELETE FROM enterprises WHERE id = %s", (enterprise,))


def _unit(name: str, **props: Any) -> dict[str, Any]:
    ring = [[121.3995, 30.2495], [121.4005, 30.2495], [121.4005, 30.2505], [121.3995, 30.2495]]
    return {
        "type": "Feature",
        "geometry": {"type": "Polygon", "coordinates": [ring]},
        "properties": {"name": name, **props},
    }


def test_real_answers_match_their_documented_models(
    client: httpx.Client, openapi: dict[str, Any], site: dict[str, int]
) -> None:
    check = Checker(openapi)
    enterprise, alert = site["enterprise"], site["alert"]
    base = f"/api/enterprises/{enterprise}"

    # risk: the calculator (integer β from Table 3 stays an integer), colours, the summary
    assessed = client.post(
        "/api/assess/gb18218",
        json={
            "population_500m": 100,
            "substances": [{"name": "液氯", "cas": "7782-50-5", "q": 62.5}],
        },
    )
    body = check(assessed, "post", "/api/assess/gb18218", Gb18218Assessment)
    assert body["substances"][0]["beta"] == 4 and isinstance(body["substances"][0]["beta"], int)
    risk_path = "/api/enterprises/{enterprise_id}/risk"
    check(client.get(f"{base}/risk"), "get", risk_path, EnterpriseRisk)
    check(client.get("/api/risk/summary"), "get", "/api/risk/summary", RiskSummary)

    # risk units: LEC scores are floats, LS scores integers; both kept as they are
    units_path = "/api/enterprises/{enterprise_id}/risk-units"
    lec = _unit("储罐区", method="LEC", likelihood=6, exposure=6, consequence=15)
    made = check(
        client.post(f"{base}/risk-units", json=lec), "post", units_path, RiskUnitRating, 201
    )
    ls = _unit("装卸区", method="LS", likelihood=4, severity=5)
    rated = check(
        client.post(f"{base}/risk-units", json=ls), "post", units_path, RiskUnitRating, 201
    )
    assert isinstance(rated["score"], int) and rated["score"] == 20
    unit_path = "/api/risk-units/{unit_id}"
    unit = f"/api/risk-units/{made['id']}"
    check(client.get(unit), "get", unit_path, RiskUnitFeature, media=GEO)
    replaced = _unit("储罐区", method="LS", likelihood=2, severity=2)
    check(client.put(unit, json=replaced), "put", unit_path, RiskUnitRating)
    collection = check(
        client.get(f"{base}/risk-units"), "get", units_path, RiskUnitCollection, media=GEO
    )
    assert collection["numberMatched"] == 2
    body = check(client.get(f"{base}/risk"), "get", risk_path, EnterpriseRisk)
    assert body["reasons"], body

    # hidden dangers
    dangers_path = "/api/enterprises/{enterprise_id}/hidden-dangers"
    found = {"title": "泄漏", "is_major": True, "deadline": "2031-01-01"}
    danger = check(
        client.post(f"{base}/hidden-dangers", json=found), "post", dangers_path, HiddenDanger, 201
    )
    check(
        client.patch(f"/api/hidden-dangers/{danger['id']}", json={"status": "rectifying"}),
        "patch",
        "/api/hidden-dangers/{danger_id}",
        HiddenDanger,
    )
    listed = check(client.get(f"{base}/hidden-dangers"), "get", dangers_path, HiddenDangerList)
    assert listed["items"][0]["status"] == "rectifying"

    # safety score: the heaviest item, so a measure applies and its shape is checked too
    score_path = "/api/enterprises/{enterprise_id}/score"
    score = check(client.get(f"{base}/score"), "get", score_path, SafetyScore)
    rule_set = client.get(f"/api/rule-sets/{score['rule_set']['code']}").json()
    item = max(rule_set["items"], key=lambda i: i["points"])
    deduction = {"item_code": item["code"], "note": "文档测试", "evidence_url": "https://e.test/1"}
    check(
        client.post(f"{base}/deductions", json=deduction),
        "post",
        "/api/enterprises/{enterprise_id}/deductions",
        Deduction,
        201,
    )
    score = check(client.get(f"{base}/score"), "get", score_path, SafetyScore)
    assert score["measure"] is not None and score["history"], score

    # tanker alerts: both list forms, one alert, its lifecycle, the statistics
    mine = {"district": DISTRICT}
    listing = check(
        client.get("/api/alerts", params=mine), "get", "/api/alerts", AlertCollection, media=GEO
    )
    assert listing["numberMatched"] == 2
    plain = client.get("/api/alerts", params={**mine, "f": "json"})
    check(plain, "get", "/api/alerts", AlertList)
    one = f"/api/alerts/{alert}"
    check(client.get(one), "get", "/api/alerts/{alert_id}", AlertFeature, media=GEO)
    check(client.post(f"{one}/ack"), "post", "/api/alerts/{alert_id}/ack", AlertFeature, media=GEO)
    disposal = {"outcome": "disposed", "note": "现场处置"}
    disposed = check(
        client.post(f"{one}/dispose", json=disposal),
        "post",
        "/api/alerts/{alert_id}/dispose",
        AlertFeature,
        media=GEO,
    )
    assert disposed["properties"]["status"] == "disposed"
    stats = check(
        client.get("/api/alerts/stats", params=mine), "get", "/api/alerts/stats", AlertStats
    )
    assert stats["overall"]["total"] == 2 and stats["by_carrier"][0]["carrier"] == "文档测试运输"
    check(client.get("/api/alerts/stats"), "get", "/api/alerts/stats", AlertStats)

    # monitoring alarms (the demo city's planted ones; read only)
    alarms = check(
        client.get("/api/alarms", params={"limit": 5}),
        "get",
        "/api/alarms",
        AlarmCollection,
        media=GEO,
    )
    assert alarms["features"], "the demo city plants alarms"

    # the watch list, health, keys
    check(client.get("/api/reports/daily"), "get", "/api/reports/daily", WatchList)
    check(client.get("/healthz"), "get", "/healthz", Health)
    new_key = {"name": "openapi models test", "role": "officer"}
    made_key = check(client.post("/api/keys", json=new_key), "post", "/api/keys", NewApiKey, 201)
    check(client.get("/api/keys"), "get", "/api/keys", KeyList)
    assert client.delete(f"/api/keys/{made_key['id']}").status_code == 204

    assert check.seen == {(m, p, s, t) for m, p, s, t, _ in DOCUMENTED}
