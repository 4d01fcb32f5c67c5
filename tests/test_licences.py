"""Licences, personnel certificates and the automatic job (docs/rules.md): expiry warnings 30
days ahead, one deduction per expiry however often the job runs, alarm deductions that follow
disposal (not acknowledgement) and stop at the item's cap per cycle.

Dates are chosen by the test and passed to the job (it takes ``today`` and ``now``), so nothing
depends on the real clock.
"""

from __future__ import annotations

import datetime as dt
from typing import Any
from zoneinfo import ZoneInfo

import httpx
import psycopg
import pytest

from geo_api.settings import ScoringSettings
from tests.conftest import LiveServer, key_for
from tests.scoring_support import UTC, automatic, clean, events, plant

P = "LC"
D = dt.date(2026, 6, 10)


@pytest.fixture()
def fresh(db: psycopg.Connection) -> None:
    clean(db, P)


def _certificate(db: psycopg.Connection, enterprise: int, until: dt.date, role: str) -> int:
    row = db.execute(
        "INSERT INTO certificates (enterprise_id, holder, role, valid_until)"
        " VALUES (%s, '王五', %s, %s) RETURNING id",
        (enterprise, role, until),
    ).fetchone()
    assert row is not None
    return int(row[0])


def _notices(db: psycopg.Connection, enterprise: int) -> list[tuple[Any, ...]]:
    return db.execute(
        "SELECT notice_key, subject, valid_until FROM expiry_notices WHERE enterprise_id = %s"
        " ORDER BY id",
        (enterprise,),
    ).fetchall()


def test_certificate_expiring_tomorrow_warns_today_and_deducts_once(
    database_url: str, db: psycopg.Connection, fresh: None
) -> None:
    """Valid until D (its last day): on D a warning and no deduction; from D + 1 one XS-06
    deduction of 3 points dated D + 1, however often the job runs."""
    enterprise = plant(db, P, 1)
    cert = _certificate(db, enterprise, D, "special_operations")
    key = f"certificate:{cert}:{D.isoformat()}"
    report = automatic(database_url, [enterprise], D)
    assert report.warnings == [key] and report.deductions == []
    assert _notices(db, enterprise) == [(key, "certificate", D)]
    assert automatic(database_url, [enterprise], D).warnings == []  # warned once
    tomorrow = D + dt.timedelta(days=1)
    first = automatic(database_url, [enterprise], tomorrow)
    assert first.deducted == [enterprise] and len(first.deductions) == 1
    for _ in range(3):
        again = automatic(database_url, [enterprise], tomorrow)
        assert (again.deductions, again.warnings) == ([], [])
    assert automatic(database_url, [enterprise], tomorrow + dt.timedelta(days=30)).deductions == []
    assert events(db, enterprise) == [("XS-06", 3, "auto", key, "open")]
    at = db.execute(
        "SELECT occurred_at, rule_set_version FROM score_events WHERE enterprise_id = %s",
        (enterprise,),
    ).fetchone()
    assert at == (dt.datetime(2026, 6, 11, tzinfo=UTC), 1)
    assert len(_notices(db, enterprise)) == 1


def test_thirty_day_warning_window_and_renewal(
    database_url: str, db: psycopg.Connection, fresh: None
) -> None:
    enterprise = plant(db, P, 2)
    inside = db.execute(
        "INSERT INTO licences (enterprise_id, kind, valid_until) VALUES (%s, 'hazmat_business',"
        " %s) RETURNING id",
        (enterprise, D + dt.timedelta(days=30)),
    ).fetchone()
    db.execute(
        "INSERT INTO licences (enterprise_id, kind, valid_until) VALUES (%s, 'hazmat_use', %s)",
        (enterprise, D + dt.timedelta(days=31)),
    )
    report = automatic(database_url, [enterprise], D)
    assert report.warnings == ["licence:hazmat_business:2026-07-10"]
    # Expired: XS-03 (6 points) once; renewed and expired again: once more for the new date.
    assert inside is not None
    after = D + dt.timedelta(days=31)
    assert len(automatic(database_url, [enterprise], after).deductions) == 1
    db.execute(
        "UPDATE licences SET valid_until = %s WHERE id = %s", (D + dt.timedelta(days=60), inside[0])
    )
    assert automatic(database_url, [enterprise], after).deductions == []
    later = D + dt.timedelta(days=90)
    automatic(database_url, [enterprise], later)
    keys = [e[3] for e in events(db, enterprise)]
    assert keys[0] == "licence:hazmat_business:2026-07-10"
    assert sorted(keys[1:]) == [
        "licence:hazmat_business:2026-08-09",
        "licence:hazmat_use:2026-07-11",
    ]
    assert {e[0] for e in events(db, enterprise)} == {"XS-03"}


def test_enterprise_licence_column_and_its_licence_row_deduct_once(
    database_url: str, db: psycopg.Connection, fresh: None
) -> None:
    """``enterprises.licence_expiry`` (as imported) is the safety production licence: a row
    of that kind with the same date is the same licence."""
    expiry = dt.date(2026, 2, 1)
    enterprise = plant(db, P, 3, licence_expiry=expiry)
    db.execute(
        "INSERT INTO licences (enterprise_id, kind, valid_until) VALUES (%s, 'safety_production',"
        " %s)",
        (enterprise, expiry),
    )
    assert automatic(database_url, [enterprise], dt.date(2026, 3, 3)).deducted == [enterprise]
    assert automatic(database_url, [enterprise], dt.date(2026, 3, 3)).deducted == []
    assert events(db, enterprise) == [
        ("XS-03", 6, "auto", "licence:safety_production:2026-02-01", "open")
    ]


def _alarm(
    db: psycopg.Connection,
    enterprise: int,
    raised: dt.datetime,
    acked: dt.datetime | None,
    disposed: dt.datetime | None,
) -> int:
    source = db.execute(
        "INSERT INTO hazard_sources (enterprise_id, code, unit_name, unit_kind, geom)"
        " SELECT id, 'LC-HS-' || id || '-' || %s, 'tank', 'storage',"
        " ST_Multi(ST_Buffer(geom::geography, 30)::geometry) FROM enterprises WHERE id = %s"
        " RETURNING id",
        (raised.isoformat(), enterprise),
    ).fetchone()
    assert source is not None
    point = db.execute(
        "INSERT INTO monitoring_points (code, hazard_source_id, kind, unit, level1, level2, geom)"
        " VALUES ('LC-MP-' || %s, %s, 'gas_flammable', '%%LEL', 25, 50,"
        " ST_SetSRID(ST_Point(125.96, 33.66), 4326)) RETURNING id",
        (source[0], source[0]),
    ).fetchone()
    assert point is not None
    alarm = db.execute(
        "INSERT INTO alarms (point_id, level, color, raised_at, ack_deadline, acknowledged_at,"
        " disposed_at) VALUES (%s, 1, 'orange', %s, %s, %s, %s) RETURNING id",
        (point[0], raised, raised + dt.timedelta(minutes=15), acked, disposed),
    ).fetchone()
    assert alarm is not None
    return int(alarm[0])


def test_alarm_deductions_follow_disposal_and_stop_at_the_cap(
    database_url: str, db: psycopg.Connection, fresh: None
) -> None:
    """Disposal deadline 4 h after raising. Acknowledged at once but never disposed: deducted;
    disposed in 3 h: not; disposed after 5 h: deducted; XS-05 is 3 points capped at 6 per
    cycle, so of four late alarms two are deducted, and nothing more on later runs."""
    on_time = plant(db, P, 4)
    late = plant(db, P, 5)
    day = dt.datetime(2026, 3, 2, 8, 0, tzinfo=UTC)
    h = dt.timedelta(hours=1)
    _alarm(db, on_time, day, day + 0.1 * h, day + 3 * h)
    acked_only = _alarm(db, late, day, day + 0.1 * h, None)
    disposed_late = _alarm(db, late, day + h, day + 1.1 * h, day + 6 * h)
    _alarm(db, late, day + 2 * h, None, None)
    _alarm(db, late, day + 3 * h, None, None)
    now = day + 10 * h
    report = automatic(database_url, [on_time, late], now.date(), now)
    assert report.deducted == [late] and report.capped == 2
    for _ in range(3):
        assert automatic(database_url, [on_time, late], now.date(), now).deductions == []
    assert events(db, on_time) == []
    assert events(db, late) == [
        ("XS-05", 3, "auto", f"alarm:{acked_only}", "open"),
        ("XS-05", 3, "auto", f"alarm:{disposed_late}", "open"),
    ]
    occurred = db.execute(
        "SELECT min(occurred_at) FROM score_events WHERE enterprise_id = %s", (late,)
    ).fetchone()
    assert occurred == (day + 4 * h,)  # the disposal deadline
    # Not yet past the deadline: nothing. (A fresh enterprise, one alarm raised 3 h before now.)
    fresh_one = plant(db, P, 6)
    _alarm(db, fresh_one, now - 3 * h, None, None)
    assert automatic(database_url, [fresh_one], now.date(), now).deductions == []


def test_licences_and_certificates_api_is_scoped(
    live_server: LiveServer,
    database_url: str,
    client: httpx.Client,
    db: psycopg.Connection,
    fresh: None,
) -> None:
    enterprise = plant(db, P, 7, district="330203")
    other = plant(db, P, 8, district="330203")
    # Days are counted in the scoring zone (GEORISK_SCORING_TIMEZONE), not the machine's.
    today = dt.datetime.now(ZoneInfo(ScoringSettings().timezone)).date()
    base = f"/api/enterprises/{enterprise}"
    body = {
        "kind": "safety_production",
        "number": "(浙)WH安许证字〔2026〕001",
        "valid_until": (today + dt.timedelta(days=10)).isoformat(),
    }
    r = client.post(f"{base}/licences", json=body)
    assert r.status_code == 201, r.text
    lic = r.json()
    assert (lic["status"], lic["days_left"]) == ("expiring", 10)
    r = client.post(f"{base}/licences", json={**body, "kind": "driving"})
    assert r.status_code == 422 and "kind" in r.text
    r = client.post(
        f"{base}/licences", json={**body, "issued_on": (today + dt.timedelta(days=11)).isoformat()}
    )
    assert r.status_code == 422 and "issued_on" in r.text
    cert = {"holder": "李四", "role": "safety_manager", "valid_until": "2020-01-01"}
    r = client.post(f"{base}/certificates", json=cert)
    assert r.status_code == 201 and r.json()["status"] == "expired"
    r = client.post(f"{base}/certificates", json={**cert, "role": "cook"})
    assert r.status_code == 422 and "role" in r.text
    own = live_server.client(key=key_for(database_url, "enterprise", enterprise_id=enterprise))
    stranger = live_server.client(key=key_for(database_url, "enterprise", enterprise_id=other))
    far = live_server.client(key=key_for(database_url, "regulator", districts=["330205"]))
    near = live_server.client(key=key_for(database_url, "regulator", districts=["330203"]))
    with own, stranger, far, near:
        listed = own.get(f"{base}/licences").json()["licences"]
        assert [x["number"] for x in listed] == [body["number"]]
        assert [x["role"] for x in own.get(f"{base}/certificates").json()["certificates"]] == [
            "safety_manager"
        ]
        # The enterprise cannot extend its own licence; another enterprise sees nothing.
        renewed = {**body, "valid_until": (today + dt.timedelta(days=3 * 365)).isoformat()}
        assert own.put(f"{base}/licences/{lic['id']}", json=renewed).status_code == 403
        assert stranger.get(f"{base}/licences").status_code == 403
        assert far.post(f"{base}/licences", json=body).status_code == 403
        r = near.put(f"{base}/licences/{lic['id']}", json=renewed)
        assert r.status_code == 200 and r.json()["status"] == "valid"
        r = near.put(f"/api/enterprises/{other}/licences/{lic['id']}", json=renewed)
        assert r.status_code == 404
    assert events(db, enterprise) == []  # the job deducts, never the API itself
    # Who renewed it is on record (the audit log covers licences and certificates).
    audit = client.get("/api/audit", params={"entity": "licences", "entity_id": lic["id"]})
    assert [(e["action"], e["actor"].split(":")[0]) for e in audit.json()["entries"]] == [
        ("update", "regulator"),
        ("insert", "admin"),
    ]
