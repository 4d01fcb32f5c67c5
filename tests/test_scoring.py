"""The 12-point safety licence against the real PostGIS and real HTTP (docs/domain.md §4,
docs/rules.md): counting, cycles and the measures' effect on the colour.

Lifecycle steps are in test_deductions.py, rule-set data in test_rule_sets.py, licences,
certificates and alarms in test_licences.py.
"""

from __future__ import annotations

import asyncio
import datetime as dt

import httpx
import psycopg
import pytest

from layers.prevention.scoring import Event, compute, score_of
from tests.scoring_support import UTC, book, clean, colour, insert_event, plant, rerate

P = "TC"


@pytest.fixture()
def fresh(db: psycopg.Connection) -> None:
    clean(db, P)


def _event(i: int, day: dt.date, points: int, state: str) -> Event:
    at = dt.datetime(day.year, day.month, day.day, 10, tzinfo=UTC)
    return Event(i, "HL-03", points, "inspection", at, None, state)


def test_hailing_rollover_clears_exactly_the_accepted_points(database_url: str) -> None:
    """Hand-computed: 3 (accepted) + 2 (open) + 1 (accepted) + 6 (reported) = 12 on 30 September;
    on 1 October the accepted 3 and 1 clear and 2 + 6 carry over, plus 1 new = 9."""
    rules = book(database_url)
    hailing = rules.latest["hailing"]
    events = [
        _event(1, dt.date(2025, 11, 5), 3, "accepted"),
        _event(2, dt.date(2026, 2, 10), 2, "open"),
        _event(3, dt.date(2026, 9, 20), 1, "accepted"),
        _event(4, dt.date(2026, 9, 29), 6, "reported"),
        _event(6, dt.date(2026, 9, 1), 3, "voided"),  # never counts
    ]
    before = compute(hailing, events, dt.date(2026, 9, 30))
    assert (before.cycle_start, before.cycle_end) == (dt.date(2025, 10, 1), dt.date(2026, 9, 30))
    assert before.deducted == 12 and before.remaining == 0
    assert [m.code for m in before.measures] == [
        "more_inspections",
        "warning_interview",
        "enforcement",
    ]
    assert before.effects.colour_raise == 2 and before.effects.enforcement
    after = compute(
        hailing, [*events, _event(5, dt.date(2026, 10, 1), 1, "open")], dt.date(2026, 10, 1)
    )
    assert after.cycle_start == dt.date(2026, 10, 1)
    assert sorted(e.id for e in after.counted) == [2, 4, 5]
    assert after.deducted == 9 and after.remaining == 3
    assert after.measure is not None and after.measure.code == "warning_interview"
    # Xiaoshan clears everything at its calendar-year rollover.
    xiaoshan = compute(rules.latest["xiaoshan"], events, dt.date(2026, 1, 1))
    assert xiaoshan.deducted == 0 and xiaoshan.cycle_start == dt.date(2026, 1, 1)


def test_score_of_reads_states_from_the_database(
    database_url: str, db: psycopg.Connection, fresh: None
) -> None:
    enterprise = plant(db, P, 7, hailing=True)
    insert_event(db, enterprise, "hailing", "HL-03", 3, dt.date(2025, 3, 1), "accepted")
    insert_event(db, enterprise, "hailing", "HL-05", 2, dt.date(2025, 4, 1))

    async def go(today: dt.date) -> int:
        async with await psycopg.AsyncConnection.connect(database_url) as conn:
            result = await score_of(conn, enterprise, today)
        assert result is not None
        assert result[0].rule_set.code == "hailing"
        return result[0].deducted

    assert asyncio.run(go(dt.date(2025, 9, 30))) == 5
    assert asyncio.run(go(dt.date(2025, 10, 1))) == 2


def test_unknown_item_is_422(client: httpx.Client, db: psycopg.Connection, fresh: None) -> None:
    enterprise = plant(db, P, 6)
    r = client.post(
        f"/api/enterprises/{enterprise}/deductions", json={"item_code": "NOPE", "note": "x"}
    )
    assert r.status_code == 422
    assert "NOPE" in r.text and "item_code" in r.text
    # A Hailing item is unknown to a Xiaoshan enterprise.
    r = client.post(
        f"/api/enterprises/{enterprise}/deductions", json={"item_code": "HL-03", "note": "x"}
    )
    assert r.status_code == 422 and "xiaoshan" in r.text
    r = client.post(
        f"/api/enterprises/{enterprise}/deductions",
        json={"item_code": "XS-10", "note": "x", "evidence_url": "ftp://x"},
    )
    assert r.status_code == 422 and "evidence_url" in r.text
    assert db.execute(
        "SELECT count(*) FROM score_events WHERE enterprise_id = %s", (enterprise,)
    ).fetchone() == (0,)
    r = client.post(
        "/api/enterprises/2147483647/deductions", json={"item_code": "XS-10", "note": "x"}
    )
    assert r.status_code == 404


def test_measure_at_six_raises_the_dynamic_colour(
    client: httpx.Client, db: psycopg.Connection, fresh: None
) -> None:
    enterprise = plant(db, P, 8)
    r = client.post(
        f"/api/enterprises/{enterprise}/deductions", json={"item_code": "XS-10", "note": "signs"}
    )
    assert r.status_code == 201
    before, reasons = colour(db, enterprise)
    assert before == "blue"
    assert "safety_score_threshold" not in [x["code"] for x in reasons]
    body = {"item_code": "XS-04", "note": "hazard source not filed"}
    r = client.post(f"/api/enterprises/{enterprise}/deductions", json={**body, "points": 1})
    assert r.status_code == 422  # the client never sets points: unknown fields are refused
    r = client.post(
        f"/api/enterprises/{enterprise}/deductions",
        json={**body, "evidence_url": "https://example.org/photo.jpg"},
    )
    assert r.status_code == 201, r.text
    assert (r.json()["points"], r.json()["rule_set_version"], r.json()["is_sample"]) == (6, 1, True)
    after, reasons = colour(db, enterprise)
    assert after == "yellow"  # blue raised by key supervision's one level
    score_reason = next(x for x in reasons if x["code"] == "safety_score_threshold")
    assert "key_supervision" in score_reason["en"] and "7 points" in score_reason["en"]
    assert "列为重点监管对象" in score_reason["zh"]
    score = client.get(f"/api/enterprises/{enterprise}/score").json()
    assert score["rule_set"]["code"] == "xiaoshan" and score["is_sample"] is True
    assert "SAMPLE" in score["rule_set"]["name"]["en"]
    assert (score["deducted"], score["remaining"]) == (7, 5)
    assert score["measure"]["code"] == "key_supervision"
    assert score["effects"] == {
        "colour_raise": 1,
        "key_list": True,
        "inspection_every_days": 30,
        "interview": False,
        "enforcement": False,
    }
    assert score["cycle_start"].endswith("-01-01") and score["cycle_end"].endswith("-12-31")
    assert [h["item_code"] for h in score["history"]] == ["XS-04", "XS-10"]
    assert score["history"][0]["evidence_url"] == "https://example.org/photo.jpg"
    assert score["history"][0]["item_text"]["en"]
    assert [h["state"] for h in score["history"]] == ["open", "open"]


def test_recompute_follows_the_set_of_each_enterprise(
    database_url: str, db: psycopg.Connection, fresh: None
) -> None:
    """One home for cycles: last cycle's open 6 points clear under Xiaoshan and carry over
    under Hailing (raising its colour); accepted, they clear there too."""
    xiaoshan = plant(db, P, 9)
    hailing = plant(db, P, 10, hailing=True)
    last_year = dt.date(dt.date.today().year - 1, 3, 15)
    insert_event(db, xiaoshan, "xiaoshan", "XS-04", 6, last_year)
    event = insert_event(db, hailing, "hailing", "HL-01", 6, last_year)
    rerate(database_url, [xiaoshan, hailing])
    assert colour(db, xiaoshan)[0] == "blue"
    assert colour(db, hailing)[0] == "yellow"
    db.execute("UPDATE score_events SET state = 'accepted' WHERE id = %s", (event,))
    rerate(database_url, [hailing])
    assert colour(db, hailing)[0] == "blue"
