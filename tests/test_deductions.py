"""A deduction's life over real HTTP and PostGIS (docs/rules.md): measures and their effects,
report → accept / reject, void, earn-back, the 1 October rule, role rules, events.

Hailing enterprises are furnace-tagged ones of the demo's furnace district (330206); their
regulator is a key for that district. Expected points and colours are computed by hand from the
SAMPLE sets (Xiaoshan 6/9/12, Hailing 3/6/10, layers/prevention/data/rule_sets/).
"""

from __future__ import annotations

import asyncio
import datetime as dt
from collections.abc import Iterator
from typing import Any

import httpx
import psycopg
import pytest

from layers.demo_city.scores import FURNACE_DISTRICT
from tests.conftest import LiveServer, key_for
from tests.scoring_support import clean, colour, insert_event, plant

P = "DD"
EVIDENCE = "https://example.org/evidence/1.jpg"


@pytest.fixture()
def fresh(db: psycopg.Connection) -> None:
    clean(db, P)


@pytest.fixture()
def regulator(live_server: LiveServer, database_url: str) -> Iterator[httpx.Client]:
    key = key_for(database_url, "regulator", districts=[FURNACE_DISTRICT])
    with live_server.client(key=key) as http:
        yield http


def _deduct(http: httpx.Client, enterprise: int, item: str, **extra: Any) -> int:
    r = http.post(
        f"/api/enterprises/{enterprise}/deductions",
        json={"item_code": item, "note": f"finding {item}", **extra},
    )
    assert r.status_code == 201, r.text
    return int(r.json()["id"])


def _score(http: httpx.Client, enterprise: int) -> dict[str, Any]:
    r = http.get(f"/api/enterprises/{enterprise}/score")
    assert r.status_code == 200, r.text
    return r.json()


def _daily(client: httpx.Client, enterprise: int) -> tuple[list[str], list[str]]:
    body = client.get("/api/reports/daily").json()

    def codes(entries: list[dict[str, Any]]) -> list[str]:
        return [
            r["code"] for e in entries if e["enterprise_id"] == enterprise for r in e["reasons"]
        ]

    return codes(body["key_attention"]), codes(body["suggested_attention"])


def test_hailing_at_three_gets_its_measure_and_xiaoshan_at_three_does_not(
    client: httpx.Client, regulator: httpx.Client, db: psycopg.Connection, fresh: None
) -> None:
    hailing = plant(db, P, 1, hailing=True)
    xiaoshan = plant(db, P, 2, district=FURNACE_DISTRICT)  # same district, no furnace tag
    _deduct(regulator, hailing, "HL-03")  # 3 points
    _deduct(regulator, xiaoshan, "XS-07")  # 3 points

    h = _score(regulator, hailing)
    assert h["rule_set"]["code"] == "hailing" and h["deducted"] == 3
    assert [m["code"] for m in h["measures"]] == ["more_inspections"]
    assert h["effects"] == {
        "colour_raise": 1,
        "key_list": False,
        "inspection_every_days": 14,
        "interview": False,
        "enforcement": False,
    }
    dynamic, reasons = colour(db, hailing)
    assert dynamic == "yellow"  # inherent blue (diagnosis 95) raised one level
    assert reasons[0]["code"] == "safety_score_threshold"
    assert "more_inspections" in reasons[0]["en"] and "加密检查频次" in reasons[0]["zh"]
    risk = client.get(f"/api/enterprises/{hailing}/risk").json()
    assert risk["dynamic_color"] == "yellow"
    assert "more_inspections" in risk["reasons"][0]["en"]
    assert _daily(client, hailing) == ([], ["S1_dynamic_raised", "S4_score_inspections"])

    x = _score(regulator, xiaoshan)
    assert x["rule_set"]["code"] == "xiaoshan" and x["deducted"] == 3
    assert x["measures"] == [] and x["measure"] is None
    assert x["effects"]["colour_raise"] == 0 and x["effects"]["inspection_every_days"] is None
    dynamic, reasons = colour(db, xiaoshan)
    assert dynamic == "blue" and reasons[0]["code"] != "safety_score_threshold"
    assert _daily(client, xiaoshan) == ([], [])

    # Hailing at 3 + 6 + 1 = 10: every measure, enforcement, raised two levels, key list.
    _deduct(regulator, hailing, "HL-01")
    _deduct(regulator, hailing, "HL-06")
    h = _score(regulator, hailing)
    assert h["deducted"] == 10 and h["remaining"] == 2
    assert [m["code"] for m in h["measures"]] == [
        "more_inspections",
        "warning_interview",
        "enforcement",
    ]
    assert h["effects"] == {
        "colour_raise": 2,
        "key_list": True,
        "inspection_every_days": 7,
        "interview": True,
        "enforcement": True,
    }
    assert colour(db, hailing)[0] == "orange"
    key, _ = _daily(client, hailing)
    assert "K4_score_points" in key


def test_report_accept_reject_and_who_may(
    live_server: LiveServer,
    database_url: str,
    regulator: httpx.Client,
    db: psycopg.Connection,
    fresh: None,
) -> None:
    enterprise = plant(db, P, 3, hailing=True)
    other = plant(db, P, 4, hailing=True)
    first = _deduct(regulator, enterprise, "HL-05")
    second = _deduct(regulator, enterprise, "HL-06")
    base = f"/api/enterprises/{enterprise}/deductions"
    own = live_server.client(key=key_for(database_url, "enterprise", enterprise_id=enterprise))
    stranger = live_server.client(key=key_for(database_url, "enterprise", enterprise_id=other))
    far = live_server.client(key=key_for(database_url, "regulator", districts=["330203"]))
    report = {"note": "积水已清理", "evidence_url": EVIDENCE}
    review = {"reinspected_on": dt.date.today().isoformat(), "note": "复查合格"}
    with own, stranger, far:
        # Deducting, accepting and voiding are the regulator's; the enterprise only reports.
        assert own.post(base, json={"item_code": "HL-05", "note": "x"}).status_code == 403
        assert own.post(f"{base}/{first}/accept", json=review).status_code == 403
        assert own.post(f"{base}/{first}/void", json={"reason": "x"}).status_code == 403
        assert regulator.post(f"{base}/{first}/rectification", json=report).status_code == 403
        assert stranger.post(f"{base}/{first}/rectification", json=report).status_code == 403
        assert far.post(f"{base}/{first}/accept", json=review).status_code == 403
        # Accepting before the enterprise reports is refused, naming the state.
        r = regulator.post(f"{base}/{first}/accept", json=review)
        assert r.status_code == 409 and "open" in r.text
        r = own.post(f"{base}/{first}/rectification", json={"note": "done"})
        assert r.status_code == 422 and "evidence_url" in r.text
        r = own.post(f"{base}/{first}/rectification", json=report)
        assert r.status_code == 200 and r.json()["state"] == "reported"
        # The enterprise's word alone changes nothing: still counted, still open to review.
        assert _score(own, enterprise)["deducted"] == 3
        r = regulator.post(f"{base}/{first}/accept", json={"note": "ok"})
        assert r.status_code == 422 and "reinspected_on" in r.text
        future = {**review, "reinspected_on": "2999-01-01"}
        assert regulator.post(f"{base}/{first}/accept", json=future).status_code == 422
        r = regulator.post(f"{base}/{first}/accept", json=review)
        assert r.status_code == 200 and r.json()["state"] == "accepted"
        assert regulator.post(f"{base}/{first}/accept", json=review).status_code == 409
        # Rejected, reported again, accepted.
        assert own.post(f"{base}/{second}/rectification", json=report).status_code == 200
        reject = {**review, "note": "复查不合格"}
        assert regulator.post(f"{base}/{second}/reject", json=reject).json()["state"] == "rejected"
        assert own.post(f"{base}/{second}/rectification", json=report).status_code == 200
        assert regulator.post(f"{base}/{second}/accept", json=review).status_code == 200
        # A deduction of another enterprise is not found through this one.
        assert (
            regulator.post(
                f"/api/enterprises/{other}/deductions/{first}/void", json={"reason": "x"}
            ).status_code
            == 404
        )
        score = _score(own, enterprise)
    rows = {h["id"]: h for h in score["history"]}
    assert rows[first]["state"] == "accepted" and rows[first]["rectified"] is True
    assert rows[first]["reviewed_by"].startswith("regulator:")
    assert rows[first]["reinspected_on"] == dt.date.today().isoformat()
    assert rows[first]["report_evidence_url"] == EVIDENCE
    assert rows[second]["state"] == "accepted"
    # Accepted this cycle: they still count until the cycle ends (Hailing: 30 September).
    assert score["deducted"] == 3 and rows[first]["counts"] is True


def test_on_1_october_only_accepted_rectifications_clear(
    client: httpx.Client, regulator: httpx.Client, db: psycopg.Connection, fresh: None
) -> None:
    """Deductions of Hailing's previous cycle (before the latest 1 October), by hand:
    3 accepted + 2 reported + 6 rejected + 1 open + 3 voided → 2 + 6 + 1 = 9 carry over."""
    enterprise = plant(db, P, 5, hailing=True)
    today = dt.date.today()
    start = dt.date(today.year if today >= dt.date(today.year, 10, 1) else today.year - 1, 10, 1)
    last = start - dt.timedelta(days=30)
    accepted = insert_event(db, enterprise, "hailing", "HL-03", 3, last)
    base = f"/api/enterprises/{enterprise}/deductions"
    review = {"reinspected_on": (last + dt.timedelta(days=5)).isoformat(), "note": "复查"}
    report = {"note": "已整改", "evidence_url": EVIDENCE}
    # admin: reports on the enterprise's behalf too
    assert client.post(f"{base}/{accepted}/rectification", json=report).status_code == 200
    assert regulator.post(f"{base}/{accepted}/accept", json=review).status_code == 200
    reported = insert_event(db, enterprise, "hailing", "HL-05", 2, last)
    assert client.post(f"{base}/{reported}/rectification", json=report).status_code == 200
    rejected = insert_event(db, enterprise, "hailing", "HL-01", 6, last)
    assert client.post(f"{base}/{rejected}/rectification", json=report).status_code == 200
    assert regulator.post(f"{base}/{rejected}/reject", json=review).status_code == 200
    opened = insert_event(db, enterprise, "hailing", "HL-06", 1, last)
    insert_event(db, enterprise, "hailing", "HL-11", 3, last, "voided")
    score = _score(regulator, enterprise)
    assert score["cycle_start"] == start.isoformat()
    assert score["deducted"] == 9 and score["remaining"] == 3
    counted = {h["id"] for h in score["history"] if h["counts"]}
    assert counted == {reported, rejected, opened}
    assert score["measure"]["code"] == "warning_interview"


def test_a_voided_deduction_leaves_no_points_and_an_audit_entry(
    database_url: str, regulator: httpx.Client, db: psycopg.Connection, fresh: None
) -> None:
    enterprise = plant(db, P, 6, hailing=True)
    sub = db.execute(
        "INSERT INTO webhook_subscriptions (url, secret, districts, rules) VALUES"
        " ('https://example.org/hook', 'rules-test-secret-0123456789', %s,"
        " ARRAY['score.deducted', 'score.deduction_voided']) RETURNING id",
        ([FURNACE_DISTRICT],),
    ).fetchone()
    assert sub is not None
    try:
        with psycopg.connect(database_url, autocommit=True) as listener:
            listener.execute("LISTEN georisk_changes")
            deduction = _deduct(regulator, enterprise, "HL-01", evidence_url=EVIDENCE)
            assert colour(db, enterprise)[0] == "yellow"
            base = f"/api/enterprises/{enterprise}/deductions/{deduction}/void"
            assert regulator.post(base, json={}).status_code == 422  # a reason is required
            r = regulator.post(base, json={"reason": "误扣：记录属于另一企业"})
            assert r.status_code == 200 and r.json()["state"] == "voided"
            layers = [
                n.payload
                for n in listener.notifies(timeout=2.0, stop_after=20)
                if '"safety_scores"' in n.payload
            ]
        assert len(layers) >= 2 and all(f'"ids": [{enterprise}]' in p for p in layers)
        assert regulator.post(base, json={"reason": "again"}).status_code == 409
        score = _score(regulator, enterprise)
        assert (score["deducted"], score["measures"]) == (0, [])
        assert score["history"][0]["state"] == "voided"
        assert score["history"][0]["counts"] is False
        assert score["history"][0]["void_reason"] == "误扣：记录属于另一企业"
        assert colour(db, enterprise)[0] == "blue"
        audit = db.execute(
            "SELECT actor, before->>'state', after->>'state', after->>'void_reason' FROM audit_log"
            " WHERE entity = 'score_events' AND entity_id = %s AND action = 'update'",
            (deduction,),
        ).fetchall()
        assert len(audit) == 1
        actor, before, after, reason = audit[0]
        assert actor.startswith("regulator:") and (before, after) == ("open", "voided")
        assert reason == "误扣：记录属于另一企业"
        hooks = db.execute(
            "SELECT event, payload->'deduction'->>'id' FROM webhook_outbox"
            " WHERE subscription_id = %s ORDER BY id",
            (sub[0],),
        ).fetchall()
        assert hooks == [
            ("score.deducted", str(deduction)),
            ("score.deduction_voided", str(deduction)),
        ]
    finally:
        db.execute("DELETE FROM webhook_subscriptions WHERE id = %s", (sub[0],))


def test_earn_back_is_approved_and_capped(
    live_server: LiveServer,
    database_url: str,
    regulator: httpx.Client,
    db: psycopg.Connection,
    fresh: None,
) -> None:
    """Hailing allows 3 points back per cycle: 9 deducted − (2 + 2 approved, capped at 3) = 6."""
    enterprise = plant(db, P, 7, hailing=True)
    for item in ("HL-01", "HL-03"):
        _deduct(regulator, enterprise, item)
    own = live_server.client(key=key_for(database_url, "enterprise", enterprise_id=enterprise))
    base = f"/api/enterprises/{enterprise}/earn-backs"
    ask = {"points": 2, "reason": "training", "note": "16 学时培训", "evidence_url": EVIDENCE}
    with own:
        r = own.post(base, json={**ask, "points": 4})
        assert r.status_code == 422 and "at most 3" in r.text
        first = own.post(base, json=ask).json()
        assert first["state"] == "requested"
        assert own.post(f"{base}/{first['id']}/review", json={"approve": True}).status_code == 403
        assert _score(own, enterprise)["deducted"] == 9  # asked is not approved
        r = regulator.post(f"{base}/{first['id']}/review", json={"approve": True})
        assert r.status_code == 200 and r.json()["state"] == "approved"
        assert _score(own, enterprise)["deducted"] == 7
        second = own.post(base, json={**ask, "reason": "improvement"}).json()
        assert regulator.post(f"{base}/{second['id']}/review", json={"approve": True}).is_success
        assert (
            regulator.post(f"{base}/{second['id']}/review", json={"approve": True}).status_code
            == 409
        )
        score = _score(own, enterprise)
    assert (score["earned_back"], score["deducted"]) == (3, 6)
    assert [m["code"] for m in score["measures"]] == ["more_inspections", "warning_interview"]
    # Xiaoshan allows no earning back.
    xiaoshan = plant(db, P, 8)
    with live_server.client() as admin:
        r = admin.post(f"/api/enterprises/{xiaoshan}/earn-backs", json=ask)
    assert r.status_code == 422 and "does not allow" in r.text


def test_the_demo_city_exercises_every_part(client: httpx.Client, db: psycopg.Connection) -> None:
    """Both SAMPLE sets assigned, deductions in every state, earn-backs, expired and expiring
    certificates with their automatic deductions and warnings (layers/demo_city/scores.py)."""
    demo = db.execute(
        "SELECT DISTINCT rule_set, state FROM score_events WHERE note = '演示数据'"
    ).fetchall()
    assert {s for _, s in demo} == {"open", "reported", "accepted", "rejected", "voided"}
    assert {r for r, _ in demo} == {"xiaoshan", "hailing"}
    furnace = db.execute(
        "SELECT min(e.id) FROM enterprises e JOIN score_events s ON s.enterprise_id = e.id"
        " WHERE 'furnace' = ANY(e.tags) AND s.rule_set = 'hailing'"
    ).fetchone()
    assert furnace is not None and furnace[0] is not None
    score = _score(client, furnace[0])
    assert score["rule_set"]["code"] == "hailing" and score["is_sample"] is True
    backs = db.execute("SELECT DISTINCT state FROM score_earn_backs").fetchall()
    assert {"approved", "requested"} <= {b[0] for b in backs}
    today = dt.date.today()
    expired, soon = db.execute(
        "SELECT count(*) FILTER (WHERE valid_until < %s),"
        " count(*) FILTER (WHERE valid_until BETWEEN %s AND %s) FROM certificates",
        (today, today, today + dt.timedelta(days=30)),
    ).fetchone() or (0, 0)
    assert expired > 0 and soon > 0
    auto = db.execute(
        "SELECT count(*) FROM score_events"
        " WHERE source = 'auto' AND trigger_key LIKE 'certificate:%'"
    ).fetchone()
    assert auto is not None and auto[0] > 0
    warned = db.execute(
        "SELECT count(*) FROM expiry_notices WHERE subject = 'certificate'"
    ).fetchone()
    assert warned is not None and warned[0] > 0


def test_a_score_event_is_delivered_signed(
    database_url: str, db: psycopg.Connection, fresh: None
) -> None:
    """Through the real webhook worker: a subscription naming ``score.deducted`` gets the
    deduction, signed as every delivery is (Standard Webhooks)."""
    from standardwebhooks import Webhook

    from tests.test_webhooks import SECRET, Receiver, settings_for, wait_for

    enterprise = plant(db, P, 9, hailing=True)
    with Receiver() as rx, LiveServer(settings_for(database_url)) as live, live.client() as admin:
        r = admin.post(
            "/api/webhooks",
            json={
                "url": rx.url,
                "secret": SECRET,
                "districts": [FURNACE_DISTRICT],
                "rules": ["score.deducted"],
            },
        )
        assert r.status_code == 201, r.text
        try:
            deduction = _deduct(admin, enterprise, "HL-05", evidence_url=EVIDENCE)
            calls = wait_for(
                lambda: [
                    c for c in rx.calls if c["json"].get("deduction", {}).get("id") == deduction
                ]
            )
        finally:
            admin.delete(f"/api/webhooks/{r.json()['id']}")
    call = calls[0]
    assert Webhook(r.json()["secret"]).verify(call["body"], call["headers"]) == call["json"]
    body = call["json"]
    assert body["event"] == "score.deducted" and body["enterprise_id"] == enterprise
    assert (body["deduction"]["item_code"], body["deduction"]["points"]) == ("HL-05", 2)
    assert body["deduction"]["rule_set"] == "hailing" and body["by"].startswith("admin:")


def test_a_reinspection_is_dated_by_the_regulators_calendar(
    live_server: LiveServer,
    database_url: str,
    regulator: httpx.Client,
    db: psycopg.Connection,
    fresh: None,
) -> None:
    """At 01:00 in China it is still yesterday in UTC: the visit of the Chinese day is not
    "in the future" (the route passes the scoring zone's day), the next day is."""
    from layers.core.errors import InvalidField
    from layers.prevention.deductions import step

    enterprise = plant(db, P, 9, hailing=True)
    first = _deduct(regulator, enterprise, "HL-05")
    own = live_server.client(key=key_for(database_url, "enterprise", enterprise_id=enterprise))
    with own:
        report = {"note": "积水已清理", "evidence_url": EVIDENCE}
        r = own.post(f"/api/enterprises/{enterprise}/deductions/{first}/rectification", json=report)
        assert r.status_code == 200, r.text
    utc_evening = dt.datetime(2026, 12, 5, 17, 0, tzinfo=dt.UTC)  # 01:00 on 6 December in China
    china_day = dt.date(2026, 12, 6)

    async def accept(on: dt.date) -> dict[str, Any]:
        async with await psycopg.AsyncConnection.connect(database_url) as conn:
            return await step(
                conn, enterprise, first, "accept", "regulator", "复查合格",
                reinspected_on=on, now=utc_evening, today=china_day,
            )  # fmt: skip

    with pytest.raises(InvalidField, match="is in the future"):
        asyncio.run(accept(china_day + dt.timedelta(days=1)))
    assert asyncio.run(accept(china_day))["state"] == "accepted"
