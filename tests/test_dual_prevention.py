"""Dual prevention over real HTTP: the hidden-danger lifecycle, colours, rates, the daily list.

Everything planted here lives around 125.6–125.75 E, 33.3–33.45 N in districts H7-*, with
credit codes 91330200H7…, so the demo city and other tests never touch it.
"""

from __future__ import annotations

import csv
import datetime as dt
import io
import itertools
from collections.abc import Callable, Iterator
from typing import Any

import httpx
import psycopg
import pytest

_serial = itertools.count(1)
Plant = Callable[[str, str], int]


@pytest.fixture(scope="module")
def plant(database_url: str) -> Iterator[Plant]:
    """``plant(district, name)`` → a new enterprise (diagnosis 80, so inherent yellow)."""
    conn = psycopg.connect(database_url, autocommit=True)
    for code in ("H7-L", "H7-R", "H7-W", "H7-C", "H7-A"):
        conn.execute(
            "INSERT INTO districts (code, name, geom) VALUES (%s, %s,"
            " ST_Multi(ST_MakeEnvelope(125.6, 33.3, 125.75, 33.45, 4326)))",
            (code, f"test district {code}"),
        )

    def make(district: str, name: str) -> int:
        n = next(_serial)
        row = conn.execute(
            "INSERT INTO enterprises (credit_code, name, category, is_hazmat, diagnosis_score,"
            " district, geom) VALUES (%s, %s, 'storage', true, 80, %s,"
            " ST_SetSRID(ST_Point(%s, 33.35), 4326)) RETURNING id",
            (f"91330200H7{n:08d}", name, district, 125.6 + n * 0.001),
        ).fetchone()
        assert row is not None
        return int(row[0])

    yield make
    conn.execute("DELETE FROM enterprises WHERE credit_code LIKE '91330200H7%%'")
    conn.execute("DELETE FROM districts WHERE code LIKE 'H7-%%'")
    conn.close()


def _colours(db: psycopg.Connection, enterprise_id: int) -> tuple[str, str, list[Any]]:
    row = db.execute(
        "SELECT inherent_color, dynamic_color, risk_reasons FROM enterprises WHERE id = %s",
        (enterprise_id,),
    ).fetchone()
    assert row is not None
    return row[0], row[1], row[2]


def _danger(client: httpx.Client, enterprise_id: int, **body: Any) -> dict[str, Any]:
    response = client.post(f"/api/enterprises/{enterprise_id}/hidden-dangers", json=body)
    assert response.status_code == 201, response.text
    return dict(response.json())


def _status(client: httpx.Client, danger_id: int, status: str) -> httpx.Response:
    return client.patch(f"/api/hidden-dangers/{danger_id}", json={"status": status})


def _assessed_unit(db: psycopg.Connection, enterprise_id: int) -> None:
    db.execute(
        "INSERT INTO risk_units (enterprise_id, name, method, likelihood, severity, color, geom)"
        " VALUES (%s, 'tank farm', 'LS', 2, 2, 'blue',"
        " ST_Multi(ST_MakeEnvelope(125.70, 33.40, 125.701, 33.401, 4326)))",
        (enterprise_id,),
    )


# -- lifecycle -----------------------------------------------------------------------------
def test_hidden_danger_lifecycle_and_refused_transitions(
    client: httpx.Client, plant: Plant
) -> None:
    enterprise = plant("H7-L", "lifecycle")
    danger = _danger(client, enterprise, title="valve leaking", deadline="2030-01-31")
    assert (danger["status"], danger["is_major"], danger["rectified_at"]) == ("found", False, None)
    assert danger["deadline"] == "2030-01-31"

    skipped = _status(client, danger["id"], "rectified")
    assert skipped.status_code == 409
    assert "'found'" in skipped.json()["detail"]
    assert skipped.json()["errors"][0]["field"] == "status"
    assert _status(client, danger["id"], "closed").status_code == 422

    rectifying = _status(client, danger["id"], "rectifying")
    assert rectifying.status_code == 200 and rectifying.json()["rectified_at"] is None
    backwards = _status(client, danger["id"], "found")
    assert backwards.status_code == 409 and "'rectifying'" in backwards.json()["detail"]

    done = _status(client, danger["id"], "rectified").json()
    assert done["status"] == "rectified" and done["rectified_at"] is not None
    reopened = _status(client, danger["id"], "rectifying")
    assert reopened.status_code == 409 and "'rectified'" in reopened.json()["detail"]

    moved = client.patch(f"/api/hidden-dangers/{danger['id']}", json={"deadline": None})
    assert moved.status_code == 200 and moved.json()["deadline"] is None
    listed = client.get(f"/api/enterprises/{enterprise}/hidden-dangers").json()
    assert [d["id"] for d in listed["items"]] == [danger["id"]]

    assert _status(client, 2**31 - 1, "rectifying").status_code == 404
    assert client.get("/api/enterprises/2147483647/hidden-dangers").status_code == 404
    bad = client.post(f"/api/enterprises/{enterprise}/hidden-dangers", json={"title": " "})
    assert bad.status_code == 422 and bad.json()["errors"][0]["field"] == "title"
    naive = {"title": "x", "found_at": "2026-01-01T08:00:00"}
    assert (
        client.post(f"/api/enterprises/{enterprise}/hidden-dangers", json=naive).status_code == 422
    )


def test_open_major_hidden_danger_raises_one_level_until_accepted(
    client: httpx.Client, db: psycopg.Connection, plant: Plant
) -> None:
    enterprise = plant("H7-L", "major danger")
    minor = _danger(client, enterprise, title="missing sign")
    assert _colours(db, enterprise)[:2] == ("yellow", "yellow")

    major = _danger(client, enterprise, title="no gas detection in tank area", is_major=True)
    inherent, dynamic, reasons = _colours(db, enterprise)
    assert (inherent, dynamic) == ("yellow", "orange")
    assert reasons[0]["code"] == "open_major_hidden_danger"

    assert _status(client, major["id"], "rectifying").status_code == 200
    # Closing a major danger takes a regulator's acceptance (tests/test_major_hidden_dangers.py).
    assert _status(client, major["id"], "rectified").status_code == 409
    report = {"evidence": "detectors installed"}
    assert client.post(f"/api/hidden-dangers/{major['id']}/report", json=report).status_code == 200
    assert _colours(db, enterprise)[:2] == ("yellow", "orange")
    assert client.post(f"/api/hidden-dangers/{major['id']}/accept", json={}).status_code == 200
    assert _colours(db, enterprise)[:2] == ("yellow", "yellow")

    flagged = client.patch(f"/api/hidden-dangers/{minor['id']}", json={"is_major": True})
    assert flagged.status_code == 200
    assert _colours(db, enterprise)[:2] == ("yellow", "orange")


# -- rates ---------------------------------------------------------------------------------
def test_three_rates_per_enterprise_and_district(
    client: httpx.Client, db: psycopg.Connection, plant: Plant
) -> None:
    today = dt.datetime.now(dt.UTC).date()
    busy, idle = plant("H7-R", "rates busy"), plant("H7-R", "rates idle")
    _assessed_unit(db, busy)

    tasks = []
    for offset in (-10, -5, 0, 10):
        due = (today + dt.timedelta(days=offset)).isoformat()
        response = client.post(
            f"/api/enterprises/{busy}/inspection-tasks", json={"title": "patrol", "due_date": due}
        )
        assert response.status_code == 201, response.text
        tasks.append(response.json()["id"])
    for task in (tasks[0], tasks[1], tasks[3]):  # the last one is done early: not yet due
        assert client.post(f"/api/inspection-tasks/{task}/done").status_code == 200
    assert client.post("/api/inspection-tasks/2147483647/done").status_code == 404
    again = client.post(f"/api/inspection-tasks/{tasks[0]}/done").json()
    listed = client.get(f"/api/enterprises/{busy}/inspection-tasks").json()
    assert listed["numberMatched"] == 4 and listed["items"][0]["done_at"] == again["done_at"]

    past = (dt.datetime.now(dt.UTC) - dt.timedelta(days=20)).isoformat()
    future = (dt.datetime.now(dt.UTC) + dt.timedelta(days=3)).isoformat()
    yesterday = (today - dt.timedelta(days=1)).isoformat()
    fixed = _danger(client, busy, title="d1", found_at=past)
    late = _danger(client, busy, title="d2", found_at=past, deadline=yesterday)
    _danger(client, busy, title="d3", found_at=past, deadline=(today + dt.timedelta(5)).isoformat())
    _danger(client, busy, title="d4", found_at=past)
    _danger(client, busy, title="not found yet by D", found_at=future)
    for status in ("rectifying", "rectified"):
        assert _status(client, fixed["id"], status).status_code == 200
    assert _status(client, late["id"], "rectifying").status_code == 200

    body = client.get(f"/api/enterprises/{busy}/prevention", params={"date": today}).json()
    assert body["risk_analysis_completion"] == {"done": 1, "of": 1, "rate": 1.0}
    assert body["inspection_task_completion"] == {"done": 2, "of": 3, "rate": 0.6667}
    assert body["hidden_danger_rectification"] == {
        "done": 1,
        "of": 4,
        "rate": 0.25,
        "overdue": 1,
    }

    empty = client.get(f"/api/enterprises/{idle}/prevention", params={"date": today}).json()
    assert empty["risk_analysis_completion"]["rate"] == 0.0
    assert empty["inspection_task_completion"] == {"done": 0, "of": 0, "rate": None}

    district = client.get("/api/districts/H7-R/prevention", params={"date": today}).json()
    assert district["enterprises"] == 2
    assert district["risk_analysis_completion"] == {"done": 1, "of": 2, "rate": 0.5}
    assert district["inspection_task_completion"]["rate"] == 0.6667
    assert district["hidden_danger_rectification"]["overdue"] == 1
    assert client.get("/api/districts/H7-NOPE/prevention").status_code == 404


def _unit(
    db: psycopg.Connection,
    enterprise_id: int,
    color: str | None = "blue",
    review_due: dt.date | None = None,
) -> None:
    """A unit assessed by LS (``color``) or registered only (``None``), reviewed by
    ``review_due``."""
    assessed = color is not None
    db.execute(
        "INSERT INTO risk_units (enterprise_id, name, method, likelihood, severity, color,"
        " review_due, geom) VALUES (%s, 'unit', %s, %s, %s, %s, %s,"
        " ST_Multi(ST_MakeEnvelope(125.70, 33.40, 125.701, 33.401, 4326)))",
        (
            enterprise_id,
            "LS" if assessed else None,
            2 if assessed else None,
            2 if assessed else None,
            color,
            review_due,
        ),
    )


def test_risk_analysis_is_complete_only_with_every_unit_assessed_and_reviewed_in_time(
    client: httpx.Client, db: psycopg.Connection, plant: Plant
) -> None:
    """Complete = at least one unit, every unit assessed, none past its review date on D (a
    review due on D itself is still in time)."""
    day = dt.date(2030, 6, 15)
    complete = plant("H7-A", "all assessed, reviewed in time")
    _unit(db, complete, "red", review_due=day)  # due on D: in time
    _unit(db, complete, "blue")  # no review date: never overdue
    half = plant("H7-A", "one unit not assessed")
    _unit(db, half, "yellow", review_due=day + dt.timedelta(days=300))
    _unit(db, half, None)
    late = plant("H7-A", "one review overdue")
    _unit(db, late, "orange", review_due=day - dt.timedelta(days=1))
    _unit(db, late, "blue", review_due=day + dt.timedelta(days=30))
    plant("H7-A", "no units at all")

    def analysed(enterprise: int, on: dt.date) -> int:
        body = client.get(f"/api/enterprises/{enterprise}/prevention", params={"date": on})
        assert body.status_code == 200, body.text
        return int(body.json()["risk_analysis_completion"]["done"])

    assert analysed(complete, day) == 1
    assert analysed(complete, day + dt.timedelta(days=1)) == 0  # the red unit's review lapsed
    assert analysed(half, day) == 0
    assert analysed(late, day) == 0
    assert analysed(late, day - dt.timedelta(days=1)) == 1  # the day it was still due
    district = client.get("/api/districts/H7-A/prevention", params={"date": day}).json()
    assert district["risk_analysis_completion"] == {"done": 1, "of": 4, "rate": 0.25}


# -- daily watch list ----------------------------------------------------------------------
def _entry(entries: list[dict[str, Any]], enterprise_id: int) -> dict[str, Any] | None:
    return next((e for e in entries if e["enterprise_id"] == enterprise_id), None)


def test_daily_list_names_key_and_suggested_enterprises_with_reasons(
    client: httpx.Client, db: psycopg.Connection, plant: Plant
) -> None:
    today = dt.datetime.now(dt.UTC).date()
    scored = plant("H7-W", "six points")
    db.execute(
        "INSERT INTO score_events (enterprise_id, rule_set, item_code, points, source,"
        " occurred_at) VALUES (%s, 'xiaoshan', 'T-4', 4, 'inspection', now()),"
        " (%s, 'xiaoshan', 'T-2', 2, 'auto', now())",
        (scored, scored),
    )
    major = plant("H7-W", "open major")
    _danger(client, major, title="no gas detection", is_major=True)
    clean = plant("H7-W", "clean")
    _assessed_unit(db, clean)
    task = client.post(
        f"/api/enterprises/{clean}/inspection-tasks",
        json={"title": "patrol", "due_date": (today - dt.timedelta(days=1)).isoformat()},
    ).json()
    client.post(f"/api/inspection-tasks/{task['id']}/done")
    lagging = plant("H7-W", "lagging")
    _danger(client, lagging, title="rusty rail", deadline=(today - dt.timedelta(1)).isoformat())

    report = client.get("/api/reports/daily", params={"date": today.isoformat()}).json()
    assert report["date"] == today.isoformat()
    key, suggested = report["key_attention"], report["suggested_attention"]

    six = _entry(key, scored)
    assert six is not None
    assert six["reasons"] == [
        {"code": "K4_score_points", "text": "6 points deducted this cycle (≥ 6)"}
    ]
    open_major = _entry(key, major)
    assert open_major is not None
    assert [r["code"] for r in open_major["reasons"]] == ["K2_open_major_danger"]
    assert _entry(key, clean) is None and _entry(suggested, clean) is None
    late = _entry(suggested, lagging)
    assert late is not None and _entry(key, lagging) is None
    assert [r["code"] for r in late["reasons"]] == ["S2_overdue_dangers", "S3_low_rectification"]

    district = next(d for d in report["districts"] if d["district"] == "H7-W")
    assert district == {
        "district": "H7-W",
        "enterprises": 4,
        "key_attention": 2,
        "enterprise_responsibility": 0.25,  # means 0, 0, 1, 0
        "territorial_control": 0.5,
    }


def test_daily_list_as_csv_parses(client: httpx.Client, plant: Plant) -> None:
    major = plant("H7-C", "csv major")
    _danger(client, major, title="exposed wiring", is_major=True)
    today = dt.datetime.now(dt.UTC).date().isoformat()
    for response in (
        client.get("/api/reports/daily", params={"date": today, "format": "csv"}),
        client.get("/api/reports/daily.csv", params={"date": today}),
    ):
        assert response.status_code == 200
        assert response.headers["content-type"].startswith("text/csv")
        rows = list(csv.DictReader(io.StringIO(response.text)))
        mine = [r for r in rows if r["enterprise_id"] == str(major)]
        assert mine == [
            {
                "date": today,
                "list": "key",
                "enterprise_id": str(major),
                "name": "csv major",
                "district": "H7-C",
                "rule": "K2_open_major_danger",
                "text": "1 open major hidden danger(s)",
            }
        ]
    assert client.get("/api/reports/daily", params={"date": "yesterday"}).status_code in (400, 422)
