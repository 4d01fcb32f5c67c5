"""The 12-point safety licence against the real PostGIS and real HTTP (docs/domain.md §4).

Enterprises are planted in an area of their own (125.9–126.05 E, 33.6–33.75 N) with codes
``91330200TC…``; automatic runs are limited to them so the demo city is left alone.
"""

from __future__ import annotations

import asyncio
import datetime as dt
from typing import Any

import httpx
import psycopg
import pytest

from layers.prevention.scoring import (
    RULE_SETS,
    Event,
    compute,
    deduct_automatic,
    load_rule_sets,
    score_of,
)
from layers.risk.recompute import RecomputeConfig, recompute

CODE = "91330200TC{:07d}X"
UTC = dt.UTC


def _enterprise(db: psycopg.Connection, n: int, licence_expiry: dt.date | None = None) -> int:
    row = db.execute(
        "INSERT INTO enterprises (credit_code, name, category, is_hazmat, diagnosis_score,"
        " licence_expiry, geom) VALUES (%s, %s, 'storage', true, 95, %s,"
        " ST_SetSRID(ST_Point(%s, 33.65), 4326)) RETURNING id",
        (CODE.format(n)[:18], f"scoring test {n}", licence_expiry, 125.95 + n * 0.001),
    ).fetchone()
    assert row is not None
    return int(row[0])


def _alarm(
    db: psycopg.Connection, enterprise_id: int, deadline: dt.datetime, acked: dt.datetime | None
) -> int:
    source = db.execute(
        "INSERT INTO hazard_sources (enterprise_id, code, unit_name, unit_kind, geom)"
        " SELECT id, 'SC-HS-' || id, 'tank', 'storage',"
        " ST_Multi(ST_Buffer(geom::geography, 30)::geometry) FROM enterprises WHERE id = %s"
        " RETURNING id",
        (enterprise_id,),
    ).fetchone()
    assert source is not None
    point = db.execute(
        "INSERT INTO monitoring_points (code, hazard_source_id, kind, unit, level1, level2, geom)"
        " VALUES ('SC-MP-' || %s, %s, 'gas_flammable', '%%LEL', 25, 50,"
        " ST_SetSRID(ST_Point(125.96, 33.66), 4326)) RETURNING id",
        (enterprise_id, source[0]),
    ).fetchone()
    assert point is not None
    alarm = db.execute(
        "INSERT INTO alarms (point_id, level, color, raised_at, ack_deadline, acknowledged_at,"
        " cleared_at) VALUES (%s, 1, 'orange', %s, %s, %s, %s) RETURNING id",
        (point[0], deadline - dt.timedelta(minutes=15), deadline, acked, deadline),
    ).fetchone()
    assert alarm is not None
    return int(alarm[0])


def _run(url: str, ids: list[int], today: dt.date, now: dt.datetime | None = None) -> list[int]:
    async def go() -> list[int]:
        conn = await psycopg.AsyncConnection.connect(url)
        async with conn:
            changed = await deduct_automatic(conn, today, now, ids)
            if changed:  # what the scheduler does: the new deductions colour them
                await recompute(conn, RecomputeConfig(), changed)
            return changed

    return asyncio.run(go())


def _events(db: psycopg.Connection, enterprise_id: int) -> list[tuple[Any, ...]]:
    return db.execute(
        "SELECT item_code, points, source, note FROM score_events WHERE enterprise_id = %s"
        " ORDER BY id",
        (enterprise_id,),
    ).fetchall()


@pytest.fixture()
def clean(db: psycopg.Connection) -> None:
    db.execute("DELETE FROM enterprises WHERE name LIKE 'scoring test %'")


def test_rule_sets_load_and_validate() -> None:
    sets, assignment = load_rule_sets()
    assert set(sets) == {"xiaoshan", "hailing"}
    assert assignment.default == "xiaoshan"
    assert {i.points for i in sets["xiaoshan"].items} == {12, 6, 3, 2, 1}
    assert [m.at for m in sets["xiaoshan"].measures] == [6, 9, 12]
    assert [m.at for m in sets["hailing"].measures] == [3, 6, 10]


def test_overdue_alarm_deducts_once(database_url: str, db: psycopg.Connection, clean: None) -> None:
    late = _enterprise(db, 1)
    on_time = _enterprise(db, 2)
    acked_late = _enterprise(db, 3)
    deadline = dt.datetime(2026, 3, 2, 8, 0, tzinfo=UTC)
    alarm = _alarm(db, late, deadline, None)
    _alarm(db, on_time, deadline, deadline - dt.timedelta(minutes=5))
    _alarm(db, acked_late, deadline, deadline + dt.timedelta(minutes=5))
    ids = [late, on_time, acked_late]
    today, now = dt.date(2026, 3, 3), dt.datetime(2026, 3, 3, 9, 0, tzinfo=UTC)
    assert _run(database_url, ids, today, now) == [late, acked_late]
    for _ in range(3):
        assert _run(database_url, ids, today, now) == []
    assert _events(db, late) == [("XS-05", 3, "auto", f"auto:alarm_overdue:{alarm}")]
    assert len(_events(db, acked_late)) == 1
    assert _events(db, on_time) == []


def test_expired_licence_deducts_once(
    database_url: str, db: psycopg.Connection, clean: None
) -> None:
    expired = _enterprise(db, 4, dt.date(2026, 2, 1))
    valid = _enterprise(db, 5, dt.date(2026, 12, 31))
    today = dt.date(2026, 3, 3)
    assert _run(database_url, [expired, valid], today) == [expired]
    assert _run(database_url, [expired, valid], today) == []
    assert _events(db, expired) == [("XS-03", 6, "auto", "auto:licence_expired:2026-02-01")]
    assert _events(db, valid) == []


def test_unknown_item_is_422(client: httpx.Client, db: psycopg.Connection, clean: None) -> None:
    enterprise = _enterprise(db, 6)
    r = client.post(
        f"/api/enterprises/{enterprise}/deductions", json={"item_code": "NOPE", "note": "x"}
    )
    assert r.status_code == 422
    assert "NOPE" in r.text and "item_code" in r.text
    assert _events(db, enterprise) == []
    r = client.post(
        "/api/enterprises/2147483647/deductions", json={"item_code": "XS-10", "note": "x"}
    )
    assert r.status_code == 404


def _event(i: int, day: dt.date, points: int, rectified: bool) -> Event:
    at = dt.datetime(day.year, day.month, day.day, 10, tzinfo=UTC)
    return Event(i, "HL-03", points, "inspection", at, None, rectified)


def test_hailing_rollover_clears_exactly_the_rectified_points() -> None:
    hailing = RULE_SETS["hailing"]
    events = [
        _event(1, dt.date(2025, 11, 5), 3, True),
        _event(2, dt.date(2026, 2, 10), 2, False),
        _event(3, dt.date(2026, 9, 20), 1, True),
        _event(4, dt.date(2026, 9, 29), 6, False),
    ]
    before = compute(hailing, events, dt.date(2026, 9, 30))
    assert (before.cycle_start, before.cycle_end) == (dt.date(2025, 10, 1), dt.date(2026, 9, 30))
    assert before.deducted == 12 and before.remaining == 0
    assert before.measure is not None and before.measure.at == 10
    after = compute(
        hailing, [*events, _event(5, dt.date(2026, 10, 1), 1, False)], dt.date(2026, 10, 1)
    )
    assert after.cycle_start == dt.date(2026, 10, 1)
    assert sorted(e.id for e in after.counted) == [2, 4, 5]
    assert after.deducted == 9 and after.remaining == 3
    assert after.measure is not None and after.measure.code == "warning_interview"
    # Xiaoshan clears everything at its calendar-year rollover.
    xiaoshan = compute(RULE_SETS["xiaoshan"], events, dt.date(2026, 1, 1))
    assert xiaoshan.deducted == 0 and xiaoshan.cycle_start == dt.date(2026, 1, 1)


def test_hailing_rollover_from_the_database(
    database_url: str, db: psycopg.Connection, clean: None
) -> None:
    enterprise = _enterprise(db, 7)
    for day, points, rectified in [((2026, 3, 1), 3, True), ((2026, 4, 1), 2, False)]:
        db.execute(
            "INSERT INTO score_events (enterprise_id, rule_set, item_code, points, source,"
            " occurred_at, rectified) VALUES (%s, 'hailing', 'HL-03', %s, 'inspection', %s, %s)",
            (enterprise, points, dt.datetime(*day, 10, tzinfo=UTC), rectified),
        )

    async def go(today: dt.date) -> int:
        conn = await psycopg.AsyncConnection.connect(database_url)
        async with conn:
            result = await score_of(conn, enterprise, today, RULE_SETS["hailing"])
        assert result is not None
        return result[0].deducted

    assert asyncio.run(go(dt.date(2026, 9, 30))) == 5
    assert asyncio.run(go(dt.date(2026, 10, 1))) == 2


def test_measure_at_six_raises_the_dynamic_colour(
    client: httpx.Client, db: psycopg.Connection, clean: None
) -> None:
    enterprise = _enterprise(db, 8)
    r = client.post(
        f"/api/enterprises/{enterprise}/deductions", json={"item_code": "XS-10", "note": "signs"}
    )
    assert r.status_code == 201
    before = db.execute(
        "SELECT dynamic_color, risk_reasons FROM enterprises WHERE id = %s", (enterprise,)
    ).fetchone()
    assert before is not None
    assert "safety_score_threshold" not in [x["code"] for x in before[1] or []]
    r = client.post(
        f"/api/enterprises/{enterprise}/deductions",
        json={
            "item_code": "XS-04",
            "note": "hazard source not filed",
            "evidence_url": "https://example.org/photo.jpg",
            "points": 1,  # the client never sets points: unknown fields are refused
        },
    )
    assert r.status_code == 422
    r = client.post(
        f"/api/enterprises/{enterprise}/deductions",
        json={
            "item_code": "XS-04",
            "note": "hazard source not filed",
            "evidence_url": "https://example.org/photo.jpg",
        },
    )
    assert r.status_code == 201, r.text
    assert r.json()["points"] == 6
    after = db.execute(
        "SELECT dynamic_color, risk_reasons FROM enterprises WHERE id = %s", (enterprise,)
    ).fetchone()
    assert after is not None
    order = ["blue", "yellow", "orange", "red"]
    assert order.index(after[0]) > order.index(before[0])
    assert "safety_score_threshold" in [x["code"] for x in after[1]]
    score = client.get(f"/api/enterprises/{enterprise}/score").json()
    assert score["rule_set"]["code"] == "xiaoshan"
    assert (score["deducted"], score["remaining"]) == (7, 5)
    assert score["measure"]["code"] == "key_supervision"
    assert score["cycle_start"].endswith("-01-01") and score["cycle_end"].endswith("-12-31")
    assert [h["item_code"] for h in score["history"]] == ["XS-04", "XS-10"]
    assert "example.org" in score["history"][0]["note"]
    assert score["history"][0]["item_text"]["en"]


def test_recompute_takes_its_points_from_the_rule_set(
    database_url: str, db: psycopg.Connection, clean: None, monkeypatch: pytest.MonkeyPatch
) -> None:
    """One home for cycles: last cycle's unrectified 6 points clear under Xiaoshan and carry
    over under Hailing, and the risk engine follows whichever set scores the enterprise."""
    import layers.prevention.scoring as scoring

    enterprise = _enterprise(db, 9)
    db.execute(
        "INSERT INTO score_events (enterprise_id, rule_set, item_code, points, source,"
        " occurred_at) VALUES (%s, 'hailing', 'HL-01', 6, 'inspection', %s)",
        (enterprise, dt.datetime(2025, 9, 15, 10, tzinfo=UTC)),
    )

    def reasons() -> list[str]:
        async def go() -> None:
            conn = await psycopg.AsyncConnection.connect(database_url)
            async with conn:
                await recompute(conn, RecomputeConfig(), [enterprise])

        asyncio.run(go())
        row = db.execute("SELECT risk_reasons FROM enterprises WHERE id = %s", (enterprise,))
        return [r["code"] for r in (row.fetchone() or [[]])[0]]

    assert "safety_score_threshold" not in reasons()  # default: Xiaoshan, calendar year
    monkeypatch.setattr(scoring, "ASSIGNMENT", scoring.Assignment(default="hailing"))
    assert "safety_score_threshold" in reasons()
    db.execute("UPDATE score_events SET rectified = true WHERE enterprise_id = %s", (enterprise,))
    assert "safety_score_threshold" not in reasons()
