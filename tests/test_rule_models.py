"""The documented bodies of the rule-set, deduction-lifecycle, earn-back, tag, licence and
certificate routes and of the OGC documents (geo_api/models/rules.py, ogc.py) are what the live
server answers: each real body validates against /openapi.json's schema and against its model,
whose JSON dump gives the very same body back (``Checker`` of test_openapi_models).

Enterprises here are planted with the ``RM`` prefix (tests/scoring_support.py) and removed at
the end; the rule set loaded here has a code of its own (``rm-…``) assigned to a tag no one has.
"""

from __future__ import annotations

import datetime as dt
import uuid
from collections.abc import Iterator
from typing import Any
from zoneinfo import ZoneInfo

import httpx
import psycopg
import pytest
from jsonschema import Draft202012Validator
from pydantic import BaseModel

from geo_api.models.ogc import Feature, FeatureCollection, OpenApiDocument, Queryables
from geo_api.models.rules import (
    Certificate,
    CertificateList,
    DeductionStep,
    EarnBack,
    EnterpriseTags,
    Licence,
    LicenceList,
    RuleSet,
    RuleSetList,
)
from geo_api.routes.ogc_common import OPENAPI
from geo_api.settings import ScoringSettings
from tests.scoring_support import clean, plant
from tests.test_openapi_models import GEO, Checker, openapi  # noqa: F401 (fixture)

P = "RM"
EVIDENCE = "https://example.org/evidence/rm.jpg"
ENTERPRISE = "/api/enterprises/{enterprise_id}"
DEDUCTION = ENTERPRISE + "/deductions/{deduction_id}"


@pytest.fixture()
def hailing(db: psycopg.Connection) -> Iterator[int]:
    """A furnace-tagged enterprise of the furnace district: the Hailing SAMPLE set, which
    allows earning points back."""
    clean(db, P)
    try:
        yield plant(db, P, 1, hailing=True)
    finally:
        clean(db, P)


def _today() -> dt.date:
    # The licence status is counted in the scoring zone (GEORISK_SCORING_TIMEZONE).
    return dt.datetime.now(ZoneInfo(ScoringSettings().timezone)).date()


def test_rule_sets_answer_their_models(client: httpx.Client, openapi: dict[str, Any]) -> None:  # noqa: F811
    check = Checker(openapi)
    listing = check(client.get("/api/rule-sets"), "get", "/api/rule-sets", RuleSetList)
    summaries = {s["code"]: s for s in listing["rule_sets"]}
    assert {"hailing", "xiaoshan"} <= set(summaries)
    assert "items" not in summaries["hailing"] and summaries["hailing"]["items_count"] > 0
    one = check(client.get("/api/rule-sets/hailing"), "get", "/api/rule-sets/{code}", RuleSet)
    assert len(one["items"]) == summaries["hailing"]["items_count"]
    assert one["earn_back"]["allowed"] is True and one["is_sample"] is True

    code = f"rm-{uuid.uuid4().hex[:8]}"
    definition = {
        "code": code,
        "title": {"zh": "模型测试", "en": "Model test"},
        "is_sample": False,
        "cycle": {"start_month": 1, "start_day": 1, "carry_over": "none"},
        "items": [
            {"code": "M-1", "points": 2, "category": "management", "tier": "district",
             "text": {"zh": "缺失", "en": "Gap"}, "cap_per_cycle": 4},
        ],
        "measures": [{"at": 6, "code": "talk", "text": {"zh": "约谈", "en": "Talk"}}],
        "assignments": [{"tag": code}],
    }  # fmt: skip
    made = check(
        client.post("/api/rule-sets", json=definition), "post", "/api/rule-sets", RuleSet, 201
    )
    assert (made["code"], made["version"], made["source_note"]) == (code, 1, None)
    assert made["items"][0]["cap_per_cycle"] == 4 and made["items"][0]["trigger"] == "none"
    assert made["measures"][0]["effects"]["inspection_every_days"] is None
    assert made["created_at"] is not None
    assert check.seen == {
        ("get", "/api/rule-sets", 200, "application/json"),
        ("get", "/api/rule-sets/{code}", 200, "application/json"),
        ("post", "/api/rule-sets", 201, "application/json"),
    }


def test_lifecycle_answers_match_their_models(
    client: httpx.Client,
    openapi: dict[str, Any],  # noqa: F811
    hailing: int,
) -> None:
    check = Checker(openapi)
    base = f"/api/enterprises/{hailing}"
    today = _today()

    # tags: the set scoring the enterprise follows them
    tags = check(
        client.put(f"{base}/tags", json={"tags": ["furnace", "kiln", "furnace"]}),
        "put",
        ENTERPRISE + "/tags",
        EnterpriseTags,
    )
    assert tags["tags"] == ["furnace", "kiln"] and tags["rule_set"]["code"] == "hailing"

    # a deduction through every step: reported, rejected, reported again, accepted; one voided
    def deduct(item: str) -> int:
        r = client.post(f"{base}/deductions", json={"item_code": item, "note": "模型测试"})
        assert r.status_code == 201, r.text
        return int(r.json()["id"])

    first, second = deduct("HL-01"), deduct("HL-03")
    report = {"note": "已整改", "evidence_url": EVIDENCE}
    review = {"reinspected_on": today.isoformat(), "note": "复查"}
    steps = [
        (first, "rectification", report, "reported"),
        (first, "reject", review, "rejected"),
        (first, "rectification", report, "reported"),
        (first, "accept", review, "accepted"),
        (second, "void", {"reason": "录入错误"}, "voided"),
    ]
    for deduction, action, body, state in steps:
        answer = check(
            client.post(f"{base}/deductions/{deduction}/{action}", json=body),
            "post",
            f"{DEDUCTION}/{action}",
            DeductionStep,
        )
        assert (answer["id"], answer["enterprise_id"], answer["state"]) == (
            deduction,
            hailing,
            state,
        )
    refused = client.post(f"{base}/deductions/{second}/accept", json=review)
    assert (
        refused.status_code == 409
        and "409" in openapi["paths"][f"{DEDUCTION}/accept"]["post"]["responses"]
    )

    # an earn-back: the time keeps the handler's own ISO form (``+00:00``, not ``Z``)
    when = dt.datetime.now(dt.UTC).replace(microsecond=0) - dt.timedelta(days=1)
    ask = {
        "points": 2,
        "reason": "training",
        "note": "培训",
        "evidence_url": EVIDENCE,
        "occurred_at": when.isoformat(),
    }
    asked = check(
        client.post(f"{base}/earn-backs", json=ask),
        "post",
        ENTERPRISE + "/earn-backs",
        EarnBack,
        201,
    )
    assert (asked["points"], asked["state"]) == (2, "requested")
    assert dt.datetime.fromisoformat(asked["occurred_at"]) == when
    assert not asked["occurred_at"].endswith("Z")
    approved = check(
        client.post(f"{base}/earn-backs/{asked['id']}/review", json={"approve": True}),
        "post",
        ENTERPRISE + "/earn-backs/{earn_back_id}/review",
        EarnBack,
    )
    assert approved["state"] == "approved" and approved["occurred_at"] == asked["occurred_at"]

    # licences and certificates: status and days left counted from the scoring zone's today
    licence = {
        "kind": "hazmat_business",
        "valid_until": (today + dt.timedelta(days=10)).isoformat(),
    }
    lic = check(
        client.post(f"{base}/licences", json=licence),
        "post",
        ENTERPRISE + "/licences",
        Licence,
        201,
    )
    assert (lic["status"], lic["days_left"], lic["number"]) == ("expiring", 10, None)
    renewed = {
        **licence,
        "number": "HZ-1",
        "valid_until": (today + dt.timedelta(days=400)).isoformat(),
    }
    lic = check(
        client.put(f"{base}/licences/{lic['id']}", json=renewed),
        "put",
        ENTERPRISE + "/licences/{document_id}",
        Licence,
    )
    assert (lic["status"], lic["days_left"], lic["number"]) == ("valid", 400, "HZ-1")
    licences = check(client.get(f"{base}/licences"), "get", ENTERPRISE + "/licences", LicenceList)
    assert [item["id"] for item in licences["licences"]] == [lic["id"]]

    yesterday = (today - dt.timedelta(days=1)).isoformat()
    cert = {"holder": "张三", "role": "special_operations", "valid_until": yesterday}
    made = check(
        client.post(f"{base}/certificates", json=cert),
        "post",
        ENTERPRISE + "/certificates",
        Certificate,
        201,
    )
    assert (made["status"], made["days_left"], made["operation"]) == ("expired", -1, None)
    cert = {**cert, "operation": "焊接", "valid_until": today.isoformat()}
    made = check(
        client.put(f"{base}/certificates/{made['id']}", json=cert),
        "put",
        ENTERPRISE + "/certificates/{document_id}",
        Certificate,
    )
    assert (made["status"], made["days_left"], made["operation"]) == ("expiring", 0, "焊接")
    certificates = check(
        client.get(f"{base}/certificates"), "get", ENTERPRISE + "/certificates", CertificateList
    )
    assert [c["holder"] for c in certificates["certificates"]] == ["张三"]
    assert len(check.seen) == 13


def _ogc(
    openapi: dict[str, Any],  # noqa: F811
    response: httpx.Response,
    path: str,
    model: type[BaseModel],
    media: str,
) -> Any:
    """One OGC document checked like ``Checker`` does, but dumped without the unset optional
    keys: these handlers send their own responses, which the models document, never reshape
    (a link without ``templated`` stays without it)."""
    assert response.status_code == 200, response.text
    assert response.headers["content-type"] == media
    documented = openapi["paths"][path]["get"]["responses"]["200"]["content"]
    assert list(documented) == [media]
    body = response.json()
    Draft202012Validator(
        {**documented[media]["schema"], "components": openapi["components"]}
    ).validate(body)
    parsed = model.model_validate(body)
    assert parsed.model_dump(mode="json", exclude_unset=True) == body, model
    return body


def test_ogc_documents_answer_their_models(
    client: httpx.Client,
    openapi: dict[str, Any],  # noqa: F811
) -> None:
    items = "/ogc/collections/{collectionId}/items"
    r = client.get("/ogc/collections/enterprises/items", params={"limit": 2})
    page = _ogc(openapi, r, items, FeatureCollection, GEO)
    assert page["numberReturned"] == len(page["features"]) == 2
    first = page["features"][0]
    r = client.get(f"/ogc/collections/enterprises/items/{first['id']}")
    one = _ogc(openapi, r, items + "/{featureId}", Feature, GEO)
    assert (one["id"], one["geometry"]) == (first["id"], first["geometry"])
    r = client.get("/ogc/collections/enterprises/queryables")
    path = "/ogc/collections/{collectionId}/queryables"
    assert _ogc(openapi, r, path, Queryables, "application/schema+json")["properties"]
    # The OGC API's own definition, under its media type with its parameter (version=3.0).
    body = _ogc(
        openapi, client.get("/ogc/openapi.json"), "/ogc/openapi.json", OpenApiDocument, OPENAPI
    )
    assert "/collections/enterprises/items" in body["paths"]

    # The tiles are bytes: a binary string under the tile media type, and the empty tile.
    for path in (
        "/ogc/collections/{collectionId}/tiles/{tileMatrixSetId}/{tileMatrix}/{tileRow}/{tileCol}",
        "/ogc/tiles/{tileMatrixSetId}/{tileMatrix}/{tileRow}/{tileCol}",
    ):
        responses = openapi["paths"][path]["get"]["responses"]
        content = responses["200"]["content"]
        assert content == {
            "application/vnd.mapbox-vector-tile": {"schema": {"type": "string", "format": "binary"}}
        }
        assert "204" in responses and "content" not in responses["204"]
