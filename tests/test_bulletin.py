"""The daily bulletin (issue 15 §6): numbered, kept with history, penalties and accidents as
inputs, actions recorded, the department index, CSV and PDF.

This module plants a district of its own with four enterprises and issues the bulletin of a
day forty days back (the demo city issued the last seven): an accident ten days before puts
A on the key list (K6); penalties 364 and 365 days before put C on the suggested list (S4)
and leave D off it (the look-back is 365 days, the day of the penalty counting as day 1);
B has nothing. Actions on A and on the carrier T give the department index hand-computed
values. Everything it writes lives in its own district and day and is removed at the end.
"""

from __future__ import annotations

import asyncio
import csv
import datetime as dt
import io
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import psycopg
import pytest
from psycopg_pool import AsyncConnectionPool
from pypdf import PdfReader

from geo_api.bulletin_task import BulletinClock
from layers.prevention.bulletin import BulletinRules, bulletin_number
from tests.conftest import LiveServer, key_for

DISTRICT = "BL-1"
LON, LAT = 124.61, 32.41
DAY = dt.date.today() - dt.timedelta(days=40)


@pytest.fixture(scope="module")
def plant(database_url: str) -> Iterator[dict[str, Any]]:
    conn = psycopg.connect(database_url, autocommit=True)
    conn.execute(
        "INSERT INTO districts (code, name, geom) VALUES (%s, 'bulletin district',"
        " ST_Multi(ST_MakeEnvelope(%s, %s, %s, %s, 4326)))",
        (DISTRICT, LON - 0.1, LAT - 0.1, LON + 0.1, LAT + 0.1),
    )
    ids: dict[str, int] = {}
    for n, (key, category) in enumerate(
        (("A", "storage"), ("B", "storage"), ("C", "storage"), ("D", "storage"), ("T", "transport"))
    ):
        row = conn.execute(
            "INSERT INTO enterprises (credit_code, name, category, is_hazmat, diagnosis_score,"
            " district, geom) VALUES (%s, %s, %s, true, 80, %s,"
            " ST_SetSRID(ST_Point(%s, %s), 4326)) RETURNING id",
            (
                f"91330200BL0000000{n}",
                f"简报测试企业{key}",
                category,
                DISTRICT,
                LON + n * 0.001,
                LAT,
            ),
        ).fetchone()
        assert row is not None
        ids[key] = int(row[0])
    yield {"ids": ids, "conn": conn}
    conn.execute("DELETE FROM bulletins WHERE day = %s", (DAY,))
    conn.execute("DELETE FROM enterprises WHERE district = %s", (DISTRICT,))
    conn.execute("DELETE FROM districts WHERE code = %s", (DISTRICT,))
    conn.close()


@pytest.fixture(scope="module")
def issued(live_server: LiveServer, plant: dict[str, Any]) -> dict[str, Any]:
    ids = plant["ids"]
    with live_server.client() as admin:
        for key, days in (("A", 10), ("T", 3)):
            r = admin.post(
                f"/api/enterprises/{ids[key]}/accidents",
                json={
                    "occurred_on": (DAY - dt.timedelta(days=days)).isoformat(),
                    "grade": "general",
                    "injuries": 1,
                    "description": "装卸软管泄漏，一人轻伤",
                },
            )
            assert r.status_code == 201, r.text
        for key, days in (("C", 364), ("D", 365)):
            r = admin.post(
                f"/api/enterprises/{ids[key]}/penalties",
                json={
                    "decided_on": (DAY - dt.timedelta(days=days)).isoformat(),
                    "decision_no": f"BL-{key}-001",
                    "authority": "简报测试应急局",
                    "amount_yuan": 20000,
                    "reason": "未按规定设置安全警示标志",
                },
            )
            assert r.status_code == 201, r.text
        r = admin.post("/api/bulletins", json={"date": DAY.isoformat()})
        assert r.status_code == 201, r.text
        return dict(r.json())


def _ours(bulletin: dict[str, Any], ids: dict[str, int], label: str) -> dict[int, dict[str, Any]]:
    mine = set(ids.values())
    return {e["enterprise_id"]: e for e in bulletin[label] if e["enterprise_id"] in mine}


def test_inputs_put_enterprises_on_the_lists(issued: dict[str, Any], plant: dict[str, Any]) -> None:
    ids = plant["ids"]
    assert issued["number"] == bulletin_number(DAY) == f"{DAY.year}-{DAY.timetuple().tm_yday:03d}"
    key = _ours(issued, ids, "key_attention")
    suggested = _ours(issued, ids, "suggested_attention")
    assert set(key) == {ids["A"], ids["T"]}
    assert [r["code"] for r in key[ids["A"]]["reasons"]] == ["K6_recent_accident"]
    assert set(suggested) == {ids["C"]}  # D's penalty is 365 days old: outside the look-back
    assert [r["code"] for r in suggested[ids["C"]]["reasons"]] == ["S4_recent_penalty"]
    assert key[ids["T"]]["department"] == "transport"
    assert key[ids["A"]]["department"] == "emergency_management"
    # Ranks: every key entry before every suggested one, numbered from 1 without gaps.
    ranks = [e["rank"] for e in issued["key_attention"] + issued["suggested_attention"]]
    assert ranks == list(range(1, len(ranks) + 1))


def test_a_bulletin_is_never_rewritten(
    live_server: LiveServer, issued: dict[str, Any], plant: dict[str, Any]
) -> None:
    ids = plant["ids"]
    with live_server.client() as admin:
        r = admin.post(
            f"/api/enterprises/{ids['B']}/accidents",
            json={
                "occurred_on": (DAY - dt.timedelta(days=1)).isoformat(),
                "grade": "general",
                "description": "储罐区闪燃",
            },
        )
        assert r.status_code == 201, r.text
        again = admin.post("/api/bulletins", json={"date": DAY.isoformat()})
        assert again.status_code == 200
        assert again.json()["number"] == issued["number"]
        assert ids["B"] not in _ours(again.json(), ids, "key_attention")
        # The report (the list not yet issued) sees the new fact at once.
        report = admin.get("/api/reports/daily", params={"date": DAY.isoformat()}).json()
        assert ids["B"] in {e["enterprise_id"] for e in report["key_attention"]}
        listed = admin.get(
            "/api/bulletins", params={"from": DAY.isoformat(), "to": DAY.isoformat()}
        )
        assert [b["number"] for b in listed.json()["items"]] == [issued["number"]]


def test_actions_and_the_department_index(
    live_server: LiveServer, issued: dict[str, Any], plant: dict[str, Any]
) -> None:
    ids, number = plant["ids"], issued["number"]
    regulator = key_for(live_server.url, "regulator", districts=[DISTRICT])
    with live_server.client(key=regulator) as reg:
        ok = reg.post(
            f"/api/bulletins/{number}/actions",
            json={
                "enterprise_id": ids["A"],
                "kind": "interview",
                "taken_on": (DAY + dt.timedelta(days=1)).isoformat(),
                "note": "约谈主要负责人",
            },
        )
        assert ok.status_code == 201, ok.text
        late = reg.post(
            f"/api/bulletins/{number}/actions",
            json={
                "enterprise_id": ids["T"],
                "kind": "inspection",
                "taken_on": (DAY + dt.timedelta(days=5)).isoformat(),
                "note": "现场检查",
            },
        )
        assert late.status_code == 201, late.text
        early = reg.post(
            f"/api/bulletins/{number}/actions",
            json={
                "enterprise_id": ids["A"],
                "kind": "inspection",
                "taken_on": (DAY - dt.timedelta(days=1)).isoformat(),
                "note": "x",
            },
        )
        assert early.status_code == 422 and early.json()["errors"][0]["field"] == "taken_on"
        absent = reg.post(
            f"/api/bulletins/{number}/actions",
            json={
                "enterprise_id": ids["B"],
                "kind": "other",
                "taken_on": DAY.isoformat(),
                "note": "x",
            },
        )
        assert absent.status_code == 422
        assert absent.json()["errors"][0]["field"] == "enterprise_id"
        mine = reg.get(f"/api/bulletins/{number}").json()
        # A regulator's bulletin holds its districts only.
        assert {e["district"] for e in mine["key_attention"] + mine["suggested_attention"]} == {
            DISTRICT
        }
        assert [d["district"] for d in mine["districts"]] == [DISTRICT]
        departments = {d["department"]: d for d in mine["departments"]}
        # A acted on the next day (in time); T five days later (late: 3 days allowed).
        assert departments["emergency_management"]["key_entries"] == 1
        assert departments["emergency_management"]["acted_in_time"] == 1
        assert departments["emergency_management"]["index"] == 1.0
        assert departments["emergency_management"]["mean_days_to_act"] == 1.0
        assert departments["transport"] == {
            "department": "transport",
            "key_entries": 1,
            "acted_in_time": 0,
            "index": 0.0,
            "mean_days_to_act": 5.0,
        }
        a = next(e for e in mine["key_attention"] if e["enterprise_id"] == ids["A"])
        assert [x["kind"] for x in a["actions"]] == ["interview"]
    other = key_for(live_server.url, "regulator", districts=["330206"])
    with live_server.client(key=other) as stranger:
        r = stranger.post(
            f"/api/bulletins/{number}/actions",
            json={
                "enterprise_id": ids["A"],
                "kind": "other",
                "taken_on": DAY.isoformat(),
                "note": "x",
            },
        )
        assert r.status_code == 403
    enterprise = key_for(live_server.url, "enterprise", enterprise_id=ids["A"])
    with live_server.client(key=enterprise) as site:
        history = site.get(f"/api/enterprises/{ids['A']}/bulletins").json()["items"]
        assert [(h["number"], h["attention"]) for h in history] == [(number, "key")]
        assert history[0]["actions"][0]["kind"] == "interview"
        assert site.get(f"/api/bulletins/{number}").status_code == 403
        assert site.get(f"/api/enterprises/{ids['A']}/accidents").status_code == 200
        refused = site.post(
            f"/api/enterprises/{ids['A']}/penalties",
            json={
                "decided_on": DAY.isoformat(),
                "decision_no": "x",
                "authority": "y",
                "reason": "z",
            },
        )
        assert refused.status_code == 403


def test_csv_and_pdf_carry_the_entries_and_actions(
    live_server: LiveServer, issued: dict[str, Any], plant: dict[str, Any]
) -> None:
    ids, number = plant["ids"], issued["number"]
    regulator = key_for(live_server.url, "regulator", districts=[DISTRICT])
    with live_server.client(key=regulator) as reg:
        text = reg.get(f"/api/bulletins/{number}.csv").text
        rows = list(csv.DictReader(io.StringIO(text)))
        a_rows = [r for r in rows if r["enterprise_id"] == str(ids["A"])]
        assert [r["rule"] for r in a_rows] == ["K6_recent_accident"]
        assert a_rows[0]["list"] == "key" and "interview" in a_rows[0]["actions"]
        pdf = reg.get(f"/api/bulletins/{number}.pdf")
        assert pdf.status_code == 200 and pdf.headers["content-type"] == "application/pdf"
    reader = PdfReader(io.BytesIO(pdf.content))
    words = "".join(page.extract_text() for page in reader.pages)
    year, seq = number.split("-")
    assert f"{year}年第{int(seq)}期" in words
    assert "重点关注企业" in words and "简报测试企业A" in words and "约谈主要负责人" in words
    assert "交通运输" in words  # T's department, in the department index and its row


def test_bad_inputs_name_their_field(live_server: LiveServer, plant: dict[str, Any]) -> None:
    eid = plant["ids"]["B"]
    with live_server.client() as admin:
        grade = admin.post(
            f"/api/enterprises/{eid}/accidents",
            json={"occurred_on": DAY.isoformat(), "grade": "huge", "description": "x"},
        )
        assert grade.status_code == 422 and grade.json()["errors"][0]["field"] == "grade"
        future = admin.post(
            f"/api/enterprises/{eid}/penalties",
            json={
                "decided_on": (dt.date.today() + dt.timedelta(days=30)).isoformat(),
                "decision_no": "x",
                "authority": "y",
                "reason": "z",
            },
        )
        assert future.status_code == 422
        assert future.json()["errors"][0]["field"] == "decided_on"
        twice = {
            "decided_on": DAY.isoformat(),
            "decision_no": "BL-DUP",
            "authority": "y",
            "reason": "z",
        }
        assert admin.post(f"/api/enterprises/{eid}/penalties", json=twice).status_code == 201
        dup = admin.post(f"/api/enterprises/{eid}/penalties", json=twice)
        assert dup.status_code == 409 and dup.json()["errors"][0]["field"] == "decision_no"
        assert admin.get("/api/bulletins/2026-1").status_code == 422
        assert admin.get("/api/bulletins/1999-001").status_code == 404
        tomorrow_plus = (dt.date.today() + dt.timedelta(days=5)).isoformat()
        late = admin.post("/api/bulletins", json={"date": tomorrow_plus})
        assert late.status_code == 422 and late.json()["errors"][0]["field"] == "date"


def test_the_clock_issues_the_local_day_once(database_url: str) -> None:
    clock = BulletinClock(None, BulletinRules(), "08:00", "Asia/Shanghai", 600)  # type: ignore[arg-type]  # the pool comes below
    day = DAY - dt.timedelta(days=3)
    # 07:59 in Shanghai is 23:59 UTC the day before: not due yet; 08:00 is.
    before = dt.datetime.combine(day, dt.time(23, 59), dt.UTC) - dt.timedelta(days=1)
    assert clock.due(before) is None
    assert clock.due(before + dt.timedelta(minutes=1)) == day
    assert clock.due(dt.datetime.combine(day, dt.time(15, 59), dt.UTC)) == day

    async def two_rounds() -> list[str | None]:
        async with AsyncConnectionPool(database_url, min_size=1, max_size=2) as pool:
            clock.pool = pool
            at = before + dt.timedelta(minutes=5)
            return [
                await clock.run_once(before),
                await clock.run_once(at),
                await clock.run_once(at),
            ]

    try:
        assert asyncio.run(two_rounds()) == [None, bulletin_number(day), bulletin_number(day)]
        with psycopg.connect(database_url) as conn:
            row = conn.execute("SELECT count(*) FROM bulletins WHERE day = %s", (day,)).fetchone()
        assert row == (1,)
    finally:
        with psycopg.connect(database_url, autocommit=True) as conn:
            conn.execute("DELETE FROM bulletins WHERE day = %s", (day,))


def test_the_demo_city_has_a_week_of_bulletins(
    client: httpx.Client, demo_dir: Path, database_url: str
) -> None:
    truth = json.loads((demo_dir / "ground_truth.json").read_text())["bulletins"]
    assert len(truth["bulletins"]) == 7 and truth["actions"] > 0
    listed = client.get("/api/bulletins", params={"limit": 1000}).json()["items"]
    by_number = {b["number"]: b for b in listed}
    for b in truth["bulletins"]:
        stored = by_number[b["number"]]
        assert (stored["key_attention"], stored["suggested_attention"]) == (
            b["key"],
            b["suggested"],
        )
    days = sorted(dt.date.fromisoformat(b["date"]) for b in truth["bulletins"])
    assert [(d - days[0]).days for d in days] == list(range(7))
    with psycopg.connect(database_url) as conn:
        row = conn.execute("SELECT count(*) FROM bulletin_actions").fetchone()
    assert row is not None and row[0] >= truth["actions"]
