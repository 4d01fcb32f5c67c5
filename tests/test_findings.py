"""Direct-red findings (MEM 2018 guide) and the three-year diagnosis validity, over real HTTP
and a real PostGIS: colours via the API and a decoded vector tile, scopes, audit, bad input.

Everything planted here lives around 127.2–127.35 E, 35.2–35.35 N in districts F15-*, with
credit codes 91330200F5…, so the demo city and other tests never touch it.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import itertools
from collections.abc import Callable, Iterator
from typing import Any

import httpx
import mapbox_vector_tile
import psycopg
import pytest

from layers.risk.recompute import RecomputeConfig, recompute
from tests.conftest import LiveServer, key_for
from tiles.tms import Tile, tile_range

_serial = itertools.count(1)
LAT = 35.25
Plant = Callable[..., dict[str, Any]]


@pytest.fixture(scope="module")
def plant(database_url: str) -> Iterator[Plant]:
    """``plant(district, score, diagnosed_on=None)`` → {"id", "lon"} of a new enterprise."""
    conn = psycopg.connect(database_url, autocommit=True)
    for code in ("F15-A", "F15-B"):
        conn.execute(
            "INSERT INTO districts (code, name, geom) VALUES (%s, %s,"
            " ST_Multi(ST_MakeEnvelope(127.2, 35.2, 127.35, 35.35, 4326)))",
            (code, f"test district {code}"),
        )

    def make(district: str, score: float | None, diagnosed_on: dt.date | None = None) -> dict:
        n = next(_serial)
        lon = 127.2 + n * 0.004
        row = conn.execute(
            "INSERT INTO enterprises (credit_code, name, category, is_hazmat, diagnosis_score,"
            " diagnosed_on, district, geom) VALUES (%s, %s, 'storage', true, %s, %s, %s,"
            " ST_SetSRID(ST_Point(%s, %s), 4326)) RETURNING id",
            (f"91330200F5{n:08d}", f"finding test {n}", score, diagnosed_on, district, lon, LAT),
        ).fetchone()
        assert row is not None
        asyncio.run(_rerate(database_url, [int(row[0])]))
        return {"id": int(row[0]), "lon": lon}

    yield make
    conn.execute("DELETE FROM enterprises WHERE credit_code LIKE '91330200F5%%'")
    conn.execute("DELETE FROM districts WHERE code LIKE 'F15-%%'")
    conn.close()


async def _rerate(url: str, ids: list[int]) -> None:
    async with await psycopg.AsyncConnection.connect(url) as conn:
        await recompute(conn, RecomputeConfig(), ids)


def _risk(client: httpx.Client, enterprise_id: int) -> dict[str, Any]:
    answer = client.get(f"/api/enterprises/{enterprise_id}/risk")
    assert answer.status_code == 200, answer.text
    return dict(answer.json())


def _tile_colour(client: httpx.Client, ent: dict[str, Any], zoom: int) -> str:
    """The enterprise's colour in a decoded vector tile. Each check uses a zoom not fetched
    before, so no cached tile can answer for an earlier state."""
    x, y, _, _ = tile_range((ent["lon"], LAT, ent["lon"], LAT), zoom)
    tile = Tile(zoom, x, y)
    r = client.get(f"/tiles/enterprises/{tile.z}/{tile.x}/{tile.y}.mvt")
    assert r.status_code == 200, r.text
    layer = mapbox_vector_tile.decode(r.content)["enterprises"]
    (feature,) = [f for f in layer["features"] if f["properties"].get("id", f["id"]) == ent["id"]]
    return str(feature["properties"]["color"])


def _client(server: LiveServer, key: str) -> httpx.Client:
    return server.client(key=key)


def test_direct_red_finding_is_red_with_its_reason_first_until_closed(
    client: httpx.Client, live_server: LiveServer, db: psycopg.Connection, plant: Plant
) -> None:
    ent = plant("F15-A", 95)  # diagnosis 95 → blue
    assert (_risk(client, ent["id"])["dynamic_color"], _tile_colour(client, ent, 13)) == (
        "blue",
        "blue",
    )
    url = live_server.url
    regulator = _client(live_server, key_for(url, "regulator", districts=["F15-A"]))
    other = _client(live_server, key_for(url, "regulator", districts=["F15-B"]))
    own = _client(live_server, key_for(url, "enterprise", enterprise_id=ent["id"]))
    path = f"/api/enterprises/{ent['id']}/findings"
    body = {
        "code": "unit_not_designed_not_diagnosed",
        "evidence": "2号装置无设计文件",
        "evidence_url": "https://example.org/report/7",
        "found_on": "2026-11-30",
    }
    with regulator, other, own:
        assert own.post(path, json=body).status_code == 403  # an enterprise cannot record one
        assert other.post(path, json=body).status_code == 403  # nor another district's regulator
        created = regulator.post(path, json=body)
        assert created.status_code == 201, created.text
        finding = created.json()
        assert (finding["state"], finding["found_on"], finding["code"]) == (
            "open",
            "2026-11-30",
            "unit_not_designed_not_diagnosed",
        )
        assert finding["found_by"].startswith("regulator:")
        assert finding["text"]["en"].startswith("in-service unit never formally designed")

        risk = _risk(client, ent["id"])
        assert (risk["inherent_color"], risk["dynamic_color"]) == ("red", "red")
        first = risk["reasons"][0]
        assert first["code"] == "direct_red_finding" and first["color"] == "red"
        assert "2号装置无设计文件" in first["zh"] and "never formally designed" in first["en"]
        assert [r["code"] for r in risk["reasons"][1:]] == ["diagnosis_score"]
        assert _tile_colour(client, ent, 14) == "red"

        listed = own.get(path)  # the enterprise reads its own
        assert listed.status_code == 200 and listed.json()["numberMatched"] == 1
        assert own.post(f"{path}/{finding['id']}/close", json={"reason": "x"}).status_code == 403

        closed = regulator.post(f"{path}/{finding['id']}/close", json={"reason": "已补做设计诊断"})
        assert closed.status_code == 200, closed.text
        done = closed.json()
        assert (done["state"], done["close_reason"]) == ("closed", "已补做设计诊断")
        assert done["closed_by"].startswith("regulator:") and done["closed_at"]
        again = regulator.post(f"{path}/{finding['id']}/close", json={"reason": "again"})
        assert again.status_code == 409
        missing = regulator.post(f"{path}/2147483647/close", json={"reason": "x"})
        assert missing.status_code == 404

    risk = _risk(client, ent["id"])
    assert (risk["inherent_color"], risk["dynamic_color"]) == ("blue", "blue")
    assert [r["code"] for r in risk["reasons"]] == ["diagnosis_score"]
    assert _tile_colour(client, ent, 15) == "blue"

    audit = db.execute(
        "SELECT action, actor, after->>'state' FROM audit_log"
        " WHERE entity = 'enterprise_findings' AND entity_id = %s ORDER BY id",
        (finding["id"],),
    ).fetchall()
    assert [(a, s) for a, _, s in audit] == [("insert", "open"), ("update", "closed")]
    assert all("regulator" in actor for _, actor, _ in audit)


def test_finding_input_is_checked_field_by_field(client: httpx.Client, plant: Plant) -> None:
    ent = plant("F15-A", 70)
    path = f"/api/enterprises/{ent['id']}/findings"
    cases = [
        ({"code": "made_up", "evidence": "x"}, "code"),
        ({"code": "other_direct_red"}, "evidence"),
        ({"code": "other_direct_red", "evidence": "  "}, "evidence"),
        ({"code": "other_direct_red", "evidence": "x", "evidence_url": "ftp://a"}, "evidence_url"),
        ({"code": "other_direct_red", "evidence": "x", "found_on": "2999-01-01"}, "found_on"),
        ({"code": "other_direct_red", "evidence": "x", "colour": "red"}, "colour"),
    ]
    for body, field in cases:
        answer = client.post(path, json=body)
        assert answer.status_code == 422, (body, answer.text)
        assert answer.json()["errors"][0]["field"] == field, answer.json()
    assert client.post(f"{path}/1/close", json={}).status_code in (404, 422)
    assert client.get("/api/enterprises/2147483647/findings").status_code == 404
    # nothing stored, colour untouched: diagnosis 70 → orange
    assert client.get(path).json()["numberMatched"] == 0
    assert _risk(client, ent["id"])["dynamic_color"] == "orange"


def test_other_direct_red_on_a_never_assessed_enterprise_is_red_not_grey(
    client: httpx.Client, plant: Plant
) -> None:
    ent = plant("F15-A", None)
    assert _risk(client, ent["id"])["dynamic_color"] == "grey"
    body = {"code": "other_direct_red", "evidence": "指南第X条情形（见检查记录）"}
    assert client.post(f"/api/enterprises/{ent['id']}/findings", json=body).status_code == 201
    risk = _risk(client, ent["id"])
    assert (risk["inherent_color"], risk["dynamic_color"]) == ("red", "red")
    assert [r["code"] for r in risk["reasons"]] == ["direct_red_finding", "not_assessed"]


def test_diagnosis_older_than_three_years_is_a_reason_and_raises_one_level(
    client: httpx.Client, plant: Plant
) -> None:
    today = dt.datetime.now(dt.UTC).date()
    three_years_ago = today.replace(year=today.year - 3)
    current = plant("F15-B", 80, three_years_ago)  # the anniversary: still valid
    expired = plant("F15-B", 80, three_years_ago - dt.timedelta(days=1))
    undated = plant("F15-B", 80)

    for ent in (current, undated):
        risk = _risk(client, ent["id"])
        assert (risk["inherent_color"], risk["dynamic_color"]) == ("yellow", "yellow")
        assert "diagnosis_expired" not in [r["code"] for r in risk["reasons"]]

    risk = _risk(client, expired["id"])
    # The last score still gives the band (80 → yellow); expiry raises the dynamic colour.
    assert (risk["inherent_color"], risk["dynamic_color"]) == ("yellow", "orange")
    reason = risk["reasons"][0]
    assert reason["code"] == "diagnosis_expired" and reason["raises"] is True
    assert (three_years_ago - dt.timedelta(days=1)).isoformat() in reason["en"]
    assert _tile_colour(client, expired, 16) == "orange"

    listed = client.get(f"/api/enterprises/{expired['id']}")
    assert listed.status_code == 200
    assert (
        listed.json()["properties"]["diagnosed_on"]
        == (three_years_ago - dt.timedelta(days=1)).isoformat()
    )


def test_demo_city_plants_a_direct_red_enterprise_and_expired_diagnoses(
    client: httpx.Client, db: psycopg.Connection, demo_dir: Any
) -> None:
    import json

    truth = json.loads((demo_dir / "ground_truth.json").read_text())["supervision"]
    red = truth["direct_red"]["enterprise_id"]
    risk = _risk(client, red)
    assert risk["dynamic_color"] == "red"
    assert risk["reasons"][0]["code"] == "direct_red_finding"
    assert len(truth["expired_diagnoses"]) >= 3
    for eid in truth["expired_diagnoses"]:
        codes = [r["code"] for r in _risk(client, eid)["reasons"]]
        assert "diagnosis_expired" in codes, eid
    states = sorted(d["status"] for d in truth["major_dangers"])
    assert states == ["found", "rectification_reported", "rectified"]
    for d in truth["major_dangers"]:
        stored = db.execute(
            "SELECT status, major_criterion FROM hidden_dangers WHERE id = %s", (d["id"],)
        ).fetchone()
        assert stored == (d["status"], d["criterion"])
        codes = [r["code"] for r in _risk(client, d["enterprise_id"])["reasons"]]
        assert ("open_major_hidden_danger" in codes) is d["raises"]


def test_diagnosis_expiry_edges_pure() -> None:
    from layers.risk.enterprise import EnterpriseFacts, LiveRules, diagnosis_expired, rate

    assert not diagnosis_expired(None, dt.date(2030, 1, 1), 3)
    assert not diagnosis_expired(dt.date(2021, 6, 30), dt.date(2024, 6, 30), 3)  # anniversary
    assert diagnosis_expired(dt.date(2021, 6, 30), dt.date(2024, 7, 1), 3)
    # 29 February: valid up to 28 February three years on.
    assert not diagnosis_expired(dt.date(2020, 2, 29), dt.date(2023, 2, 28), 3)
    assert diagnosis_expired(dt.date(2020, 2, 29), dt.date(2023, 3, 1), 3)

    facts = EnterpriseFacts(1, diagnosis_score=92, diagnosis_expired=True)
    raised = rate(facts)
    assert (raised.inherent, raised.dynamic) == ("blue", "yellow")
    shown_only = rate(facts, LiveRules(expired_diagnosis_raises=False))
    assert (shown_only.inherent, shown_only.dynamic) == ("blue", "blue")
    assert [r.code for r in shown_only.reasons] == ["diagnosis_expired", "diagnosis_score"]
    # A finding beats everything and comes first, even before a live condition.
    red = rate(
        EnterpriseFacts(
            1,
            diagnosis_score=92,
            open_findings=2,
            finding_code="other_direct_red",
            open_major_dangers=1,
        )
    )
    assert (red.inherent, red.dynamic) == ("red", "red")
    assert [r.code for r in red.reasons] == [
        "direct_red_finding",
        "open_major_hidden_danger",
        "diagnosis_score",
    ]
    assert "(+1 more)" in red.reasons[0].en
