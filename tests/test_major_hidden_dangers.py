"""Dual prevention done properly (issue 15 item 4), over real HTTP and a real PostGIS: a major
hidden danger closes only by a regulator's acceptance, reminders before deadlines, recurring
inspection tasks on risk-unit controls, and the effectiveness ranking.

Everything planted here lives around 127.6–127.75 E, 35.6–35.75 N in districts M15-*, with
credit codes 91330200M5…, so the demo city and other tests never touch it.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import itertools
import json
from collections.abc import Callable, Iterator
from typing import Any

import httpx
import mapbox_vector_tile
import psycopg
import pytest
from psycopg_pool import AsyncConnectionPool

from geo_api.reminder_task import REMINDER_LAYER, ReminderScheduler
from layers.core.changes import CHANGE_CHANNEL
from tests.conftest import LiveServer, key_for
from tiles.tms import Tile, tile_range

_serial = itertools.count(1)
LAT = 35.65
Plant = Callable[..., dict[str, Any]]
TODAY = dt.datetime.now(dt.UTC).date()


@pytest.fixture(scope="module")
def plant(database_url: str) -> Iterator[Plant]:
    """``plant(district, score=80, unit=False)`` → {"id", "lon"}; diagnosis 80 → yellow; with
    ``unit`` an assessed risk unit (blue) with two controls."""
    conn = psycopg.connect(database_url, autocommit=True)
    for code in ("M15-A", "M15-B", "M15-R"):
        conn.execute(
            "INSERT INTO districts (code, name, geom) VALUES (%s, %s,"
            " ST_Multi(ST_MakeEnvelope(127.6, 35.6, 127.75, 35.75, 4326)))",
            (code, f"test district {code}"),
        )

    def make(district: str, score: float | None = 80, unit: bool = False) -> dict[str, Any]:
        n = next(_serial)
        lon = 127.6 + n * 0.004
        row = conn.execute(
            "INSERT INTO enterprises (credit_code, name, category, is_hazmat, diagnosis_score,"
            " district, geom) VALUES (%s, %s, 'storage', true, %s, %s,"
            " ST_SetSRID(ST_Point(%s, %s), 4326)) RETURNING id",
            (f"91330200M5{n:08d}", f"major test {n}", score, district, lon, LAT),
        ).fetchone()
        assert row is not None
        out: dict[str, Any] = {"id": int(row[0]), "lon": lon}
        if unit:
            controls = [
                {"type": "engineering", "measure": "紧急切断阀"},
                {"type": "management", "measure": "每周巡检"},
            ]
            unit_row = conn.execute(
                "INSERT INTO risk_units (enterprise_id, name, method, likelihood, severity,"
                " color, controls, geom) VALUES (%s, '罐区', 'LS', 1, 2, 'blue', %s,"
                " ST_Multi(ST_Buffer(ST_SetSRID(ST_Point(%s, %s), 4326), 0.0005)))"
                " RETURNING id",
                (out["id"], json.dumps(controls), lon, LAT),
            ).fetchone()
            assert unit_row is not None
            out["unit"] = int(unit_row[0])
        return out

    yield make
    conn.execute("DELETE FROM enterprises WHERE credit_code LIKE '91330200M5%%'")
    conn.execute("DELETE FROM districts WHERE code LIKE 'M15-%%'")
    conn.close()


def _colours(client: httpx.Client, enterprise_id: int) -> tuple[str, str, list[str]]:
    risk = client.get(f"/api/enterprises/{enterprise_id}/risk").json()
    return risk["inherent_color"], risk["dynamic_color"], [r["code"] for r in risk["reasons"]]


def _tile_colour(client: httpx.Client, ent: dict[str, Any], zoom: int) -> str:
    """Each check asks a zoom not fetched before: no cached tile answers for an older state."""
    x, y, _, _ = tile_range((ent["lon"], LAT, ent["lon"], LAT), zoom)
    tile = Tile(zoom, x, y)
    r = client.get(f"/tiles/enterprises/{tile.z}/{tile.x}/{tile.y}.mvt")
    assert r.status_code == 200, r.text
    layer = mapbox_vector_tile.decode(r.content)["enterprises"]
    (feature,) = [f for f in layer["features"] if f["properties"].get("id", f["id"]) == ent["id"]]
    return str(feature["properties"]["color"])


# -- closing a major hidden danger -----------------------------------------------------------
def test_enterprise_report_leaves_major_danger_open_until_a_regulator_accepts(
    client: httpx.Client, live_server: LiveServer, plant: Plant
) -> None:
    ent = plant("M15-A")
    url = live_server.url
    own = live_server.client(key=key_for(url, "enterprise", enterprise_id=ent["id"]))
    regulator = live_server.client(key=key_for(url, "regulator", districts=["M15-A"]))
    stranger = live_server.client(key=key_for(url, "regulator", districts=["M15-B"]))
    with own, regulator, stranger:
        created = own.post(
            f"/api/enterprises/{ent['id']}/hidden-dangers",
            json={
                "title": "罐区未实现紧急切断",
                "major_criterion": "MHD05",
                "deadline": "2031-01-01",
            },
        )
        assert created.status_code == 201, created.text
        danger = created.json()
        assert (danger["is_major"], danger["major_criterion"]) == (True, "MHD05")
        did = danger["id"]
        assert _colours(client, ent["id"])[:2] == ("yellow", "orange")
        assert _tile_colour(client, ent, 12) == "orange"

        # The enterprise tries to close its own major danger: refused, naming the rule.
        for status in ("rectifying", "rectified"):
            answer = own.patch(f"/api/hidden-dangers/{did}", json={"status": status})
        assert answer.status_code == 409
        assert "regulator accepts" in answer.json()["detail"]
        assert answer.json()["errors"][0]["field"] == "status"
        sneaky = own.patch(f"/api/hidden-dangers/{did}", json={"status": "rectification_reported"})
        assert sneaky.status_code == 409
        downgrade = own.patch(f"/api/hidden-dangers/{did}", json={"is_major": False})
        assert downgrade.status_code == 403 and downgrade.json()["errors"][0]["field"] == "is_major"
        assert own.post(f"/api/hidden-dangers/{did}/accept", json={}).status_code == 403
        early = regulator.post(f"/api/hidden-dangers/{did}/accept", json={})
        assert early.status_code == 409 and "'rectifying'" in early.json()["detail"]

        no_evidence = own.post(f"/api/hidden-dangers/{did}/report", json={})
        assert no_evidence.status_code == 422
        assert no_evidence.json()["errors"][0]["field"] == "evidence"
        reported = own.post(
            f"/api/hidden-dangers/{did}/report",
            json={"evidence": "已加装紧急切断阀", "evidence_url": "https://example.org/p/1"},
        )
        assert reported.status_code == 200, reported.text
        body = reported.json()
        assert body["status"] == "rectification_reported" and body["rectified_at"] is None
        assert body["reported_by"].startswith("enterprise:")
        # Still open: the colour stays raised, on the API and on the map.
        inherent, dynamic, reasons = _colours(client, ent["id"])
        assert (inherent, dynamic, reasons[0]) == ("yellow", "orange", "open_major_hidden_danger")
        assert _tile_colour(client, ent, 13) == "orange"
        assert (
            own.post(f"/api/hidden-dangers/{did}/report", json={"evidence": "x"}).status_code == 409
        )

        assert (
            stranger.post(f"/api/hidden-dangers/{did}/reject", json={"reason": "x"}).status_code
            == 403
        )
        no_reason = regulator.post(f"/api/hidden-dangers/{did}/reject", json={})
        assert no_reason.status_code == 422 and no_reason.json()["errors"][0]["field"] == "reason"
        rejected = regulator.post(
            f"/api/hidden-dangers/{did}/reject", json={"reason": "切断阀未联锁"}
        ).json()
        assert (rejected["status"], rejected["rejection_reason"]) == ("rectifying", "切断阀未联锁")
        assert rejected["rejected_by"].startswith("regulator:")
        assert _colours(client, ent["id"])[:2] == ("yellow", "orange")
        assert _tile_colour(client, ent, 14) == "orange"

        own.post(f"/api/hidden-dangers/{did}/report", json={"evidence": "已完成联锁调试"})
        accepted = regulator.post(f"/api/hidden-dangers/{did}/accept", json={"note": "复查合格"})
        assert accepted.status_code == 200, accepted.text
        closed = accepted.json()
        assert (closed["status"], closed["acceptance_note"]) == ("rectified", "复查合格")
        assert closed["accepted_by"].startswith("regulator:")
        assert closed["rectified_at"] == closed["accepted_at"]

    assert _colours(client, ent["id"])[:2] == ("yellow", "yellow")
    assert _tile_colour(client, ent, 15) == "yellow"


def test_ordinary_dangers_keep_todays_flow_and_criteria_are_checked(
    client: httpx.Client, live_server: LiveServer, plant: Plant
) -> None:
    ent = plant("M15-A")
    own = live_server.client(key=key_for(live_server.url, "enterprise", enterprise_id=ent["id"]))
    path = f"/api/enterprises/{ent['id']}/hidden-dangers"
    with own:
        minor = own.post(path, json={"title": "标识缺失"}).json()
        for status in ("rectifying", "rectified"):
            answer = own.patch(f"/api/hidden-dangers/{minor['id']}", json={"status": status})
            assert answer.status_code == 200, answer.text
        assert answer.json()["status"] == "rectified"
        other = own.post(path, json={"title": "灭火器过期"}).json()
        report = own.post(f"/api/hidden-dangers/{other['id']}/report", json={"evidence": "x"})
        assert report.status_code == 409 and "ordinary" in report.json()["detail"]
        # A closed danger cannot become major afterwards.
        late = own.patch(f"/api/hidden-dangers/{minor['id']}", json={"major_criterion": "MHD02"})
        assert late.status_code == 409

    for body, field in (
        ({"title": "x", "major_criterion": "MHD21"}, "major_criterion"),
        ({"title": "x", "major_criterion": "MHD01", "is_major": False}, "major_criterion"),
    ):
        answer = client.post(path, json=body)
        assert answer.status_code == 422 and answer.json()["errors"][0]["field"] == field
    flagged = client.patch(f"/api/hidden-dangers/{other['id']}", json={"major_criterion": "MHD12"})
    assert flagged.status_code == 200 and flagged.json()["is_major"] is True
    assert _colours(client, ent["id"])[:2] == ("yellow", "orange")


# -- reminders -------------------------------------------------------------------------------
def test_reminders_once_per_danger_and_deadline_however_often_the_job_runs(
    client: httpx.Client, database_url: str, db: psycopg.Connection, plant: Plant
) -> None:
    ent = plant("M15-B")
    path = f"/api/enterprises/{ent['id']}/hidden-dangers"

    def danger(title: str, days: int, **extra: Any) -> int:
        body = {"title": title, "deadline": (TODAY + dt.timedelta(days=days)).isoformat()}
        answer = client.post(path, json={**body, **extra})
        assert answer.status_code == 201, answer.text
        return int(answer.json()["id"])

    soon = danger("两天后到期", 2)
    major = danger("明天到期的重大隐患", 1, major_criterion="MHD06")
    overdue = danger("已超期", -1)
    later = danger("十天后到期", 10)
    done = danger("已整改", 1)
    for status in ("rectifying", "rectified"):
        client.patch(f"/api/hidden-dangers/{done}", json={"status": status})
    mine = {soon, major, overdue, later, done}

    async def run_job(today: dt.date) -> list[dict[str, Any]]:
        async with AsyncConnectionPool(database_url, min_size=1, max_size=1, open=False) as pool:
            job = ReminderScheduler(pool, 3600, days_before=3, timezone="UTC")
            return await job.run_once(today)

    with psycopg.connect(database_url, autocommit=True) as listener:
        listener.execute(f"LISTEN {CHANGE_CHANNEL}")
        first = [r for r in asyncio.run(run_job(TODAY)) if r["id"] in mine]
        notices = [json.loads(n.payload) for n in listener.notifies(timeout=2.0, stop_after=20)]
    assert sorted(r["id"] for r in first) == sorted([soon, major, overdue])
    assert any(n["layer"] == REMINDER_LAYER and ent["id"] in n.get("ids", []) for n in notices), (
        notices
    )
    stamped = dict(
        db.execute(
            "SELECT id, reminded_at FROM hidden_dangers WHERE id = ANY(%s)", (list(mine),)
        ).fetchall()
    )
    for _ in range(3):  # the same day, and the day after: nothing new
        assert [r for r in asyncio.run(run_job(TODAY)) if r["id"] in mine] == []
    assert [r for r in asyncio.run(run_job(TODAY + dt.timedelta(days=1))) if r["id"] in mine] == []
    again = dict(
        db.execute(
            "SELECT id, reminded_at FROM hidden_dangers WHERE id = ANY(%s)", (list(mine),)
        ).fetchall()
    )
    assert again == stamped
    item = next(d for d in client.get(path).json()["items"] if d["id"] == soon)
    assert item["reminded_for"] == (TODAY + dt.timedelta(days=2)).isoformat()

    # A moved deadline earns one new reminder, once it draws near.
    moved = (TODAY + dt.timedelta(days=8)).isoformat()
    assert client.patch(f"/api/hidden-dangers/{soon}", json={"deadline": moved}).status_code == 200
    assert [r["id"] for r in asyncio.run(run_job(TODAY)) if r["id"] in mine] == []
    near = TODAY + dt.timedelta(days=7)  # soon (day 8) and later (day 10) within 3 days
    assert sorted(r["id"] for r in asyncio.run(run_job(near)) if r["id"] in mine) == sorted(
        [soon, later]
    )
    assert [r for r in asyncio.run(run_job(near)) if r["id"] in mine] == []


# -- inspection tasks on risk-unit controls ---------------------------------------------------
def test_recurring_task_on_a_control_counts_rounds_due_and_done(
    client: httpx.Client, plant: Plant
) -> None:
    ent = plant("M15-B", unit=True)
    neighbour = plant("M15-B", unit=True)
    path = f"/api/enterprises/{ent['id']}/inspection-tasks"
    first_due = TODAY - dt.timedelta(days=14)
    body = {
        "title": "紧急切断阀周检",
        "due_date": first_due.isoformat(),
        "frequency": "weekly",
        "assignee": "张工",
        "risk_unit_id": ent["unit"],
        "control_index": 0,
    }
    for bad, field in (
        ({"risk_unit_id": neighbour["unit"]}, "risk_unit_id"),
        ({"control_index": 2}, "control_index"),
        ({"risk_unit_id": None}, "control_index"),
        ({"frequency": "hourly"}, "frequency"),
    ):
        answer = client.post(path, json={**body, **bad})
        assert answer.status_code == 422, (bad, answer.text)
        assert answer.json()["errors"][0]["field"] == field
    created = client.post(path, json=body)
    assert created.status_code == 201, created.text
    task = created.json()
    assert (task["frequency"], task["assignee"], task["control_index"]) == ("weekly", "张工", 0)

    # Rounds due by today: first_due, +7, +14 (= today) → 3 due, none done.
    rates = client.get(f"/api/enterprises/{ent['id']}/prevention").json()
    assert rates["inspection_task_completion"] == {"done": 0, "of": 3, "rate": 0.0}

    done = client.post(f"/api/inspection-tasks/{task['id']}/done")  # the current round: today
    assert done.status_code == 200, done.text
    assert [r["due_date"] for r in done.json()["rounds"]] == [TODAY.isoformat()]
    late = {"due_date": first_due.isoformat()}
    assert client.post(f"/api/inspection-tasks/{task['id']}/done", json=late).status_code == 200
    twice = client.post(f"/api/inspection-tasks/{task['id']}/done", json=late)
    assert len(twice.json()["rounds"]) == 2  # idempotent
    off = {"due_date": (first_due + dt.timedelta(days=3)).isoformat()}
    answer = client.post(f"/api/inspection-tasks/{task['id']}/done", json=off)
    assert answer.status_code == 422 and answer.json()["errors"][0]["field"] == "due_date"
    ahead = {"due_date": (TODAY + dt.timedelta(days=7)).isoformat()}
    assert client.post(f"/api/inspection-tasks/{task['id']}/done", json=ahead).status_code == 422

    rates = client.get(f"/api/enterprises/{ent['id']}/prevention").json()
    assert rates["inspection_task_completion"] == {"done": 2, "of": 3, "rate": 0.6667}
    # As of the day before the third round: 2 due (first_due, +7), 1 of them done by then?
    # The round of first_due was recorded today, so by the end of yesterday none was done.
    yesterday = (TODAY - dt.timedelta(days=1)).isoformat()
    past = client.get(f"/api/enterprises/{ent['id']}/prevention?date={yesterday}").json()
    assert past["inspection_task_completion"] == {"done": 0, "of": 2, "rate": 0.0}


# -- ranking ---------------------------------------------------------------------------------
def test_ranking_by_the_three_rates_hand_computed(
    client: httpx.Client, live_server: LiveServer, db: psycopg.Connection, plant: Plant
) -> None:
    a = plant("M15-R", unit=True)  # risk 1/1, tasks 1/1, dangers 1/1 → 1.0
    b = plant("M15-R")  # risk 0/1, tasks 1/2 → (0 + 0.5) / 2 = 0.25
    c = plant("M15-R", unit=True)  # risk 1/1, dangers 1/2 → 0.75
    e = plant("M15-R", unit=True)  # the same as c → 0.75, shares rank 2
    d = plant("M15-R")  # risk 0/1 only → 0.0
    past = TODAY - dt.timedelta(days=3)
    found = dt.datetime.combine(past, dt.time(8), tzinfo=dt.UTC)
    for ent, tasks_done in ((a, [True]), (b, [True, False])):
        for i, is_done in enumerate(tasks_done):
            db.execute(
                "INSERT INTO inspection_tasks (enterprise_id, title, due_date, done_at)"
                " VALUES (%s, %s, %s, %s)",
                (ent["id"], f"task {i}", past, found if is_done else None),
            )
    for ent, rectified in ((a, [True]), (c, [True, False]), (e, [False, True])):
        for i, is_done in enumerate(rectified):
            db.execute(
                "INSERT INTO hidden_dangers (enterprise_id, title, status, found_at,"
                " rectified_at) VALUES (%s, %s, %s, %s, %s)",
                (
                    ent["id"],
                    f"danger {i}",
                    "rectified" if is_done else "found",
                    found,
                    found + dt.timedelta(hours=4) if is_done else None,
                ),
            )
    regulator = live_server.client(key=key_for(live_server.url, "regulator", districts=["M15-R"]))
    with regulator:
        answer = regulator.get("/api/prevention/ranking", params={"district": "M15-R"})
        assert answer.status_code == 200, answer.text
        ranked = answer.json()
        assert ranked["numberMatched"] == 5
        got = [(i["rank"], i["enterprise_id"], i["effectiveness"]) for i in ranked["items"]]
        assert got == [
            (1, a["id"], 1.0),
            (2, c["id"], 0.75),
            (2, e["id"], 0.75),
            (4, b["id"], 0.25),
            (5, d["id"], 0.0),
        ]
        second = ranked["items"][3]
        assert second["inspection_task_completion"] == {"done": 1, "of": 2, "rate": 0.5}
        assert second["hidden_danger_rectification"]["rate"] is None
        top2 = regulator.get("/api/prevention/ranking", params={"district": "M15-R", "limit": 2})
        assert [i["enterprise_id"] for i in top2.json()["items"]] == [a["id"], c["id"]]
        outside = regulator.get("/api/prevention/ranking", params={"district": "M15-A"})
        assert outside.status_code == 403 and outside.json()["errors"][0]["field"] == "district"
        mine_only = regulator.get("/api/prevention/ranking").json()
        assert {i["district"] for i in mine_only["items"]} == {"M15-R"}
    own = live_server.client(key=key_for(live_server.url, "enterprise", enterprise_id=a["id"]))
    with own:
        assert own.get("/api/prevention/ranking").status_code == 403
    bad = client.get("/api/prevention/ranking", params={"date": "yesterday"})
    assert bad.status_code == 422
