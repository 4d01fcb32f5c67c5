"""Recompute against the real PostGIS: grades stored, colours and reasons, NOTIFY payloads."""

from __future__ import annotations

import asyncio
import json
from typing import Any

import psycopg
import pytest

from layers.core.changes import CHANGE_CHANNEL
from layers.risk.recompute import RecomputeConfig, recompute

CODE = "91330200RC{:07d}X"


def _insert_enterprise(db: psycopg.Connection, n: int, score: float | None) -> int:
    row = db.execute(
        "INSERT INTO enterprises (credit_code, name, category, is_hazmat, diagnosis_score, geom)"
        " VALUES (%s, %s, 'production', true, %s, ST_SetSRID(ST_Point(%s, 29.95), 4326))"
        " RETURNING id",
        (CODE.format(n)[:18], f"recompute test {n}", score, 121.50 + n * 0.001),
    ).fetchone()
    assert row is not None
    return int(row[0])


def _insert_source(
    db: psycopg.Connection, enterprise_id: int, people: int, subs: list[tuple[Any, ...]]
) -> int:
    row = db.execute(
        "INSERT INTO hazard_sources (enterprise_id, code, unit_name, unit_kind, population_500m,"
        " geom) SELECT %s, 'HS-' || %s, 'tank farm', 'storage', %s,"
        " ST_Multi(ST_Buffer(geom::geography, 40)::geometry) FROM enterprises WHERE id = %s"
        " RETURNING id",
        (enterprise_id, enterprise_id, people, enterprise_id),
    ).fetchone()
    assert row is not None
    for name, cas, q, critical_q, hazard_class in subs:
        db.execute(
            "INSERT INTO hazard_source_substances (hazard_source_id, name, cas, q, critical_q,"
            " hazard_class) VALUES (%s, %s, %s, %s, %s, %s)",
            (row[0], name, cas, q, critical_q, hazard_class),
        )
    return int(row[0])


def _run(url: str, ids: list[int] | None) -> Any:
    async def go() -> Any:
        conn = await psycopg.AsyncConnection.connect(url)
        async with conn:
            return await recompute(conn, RecomputeConfig(), ids)

    return asyncio.run(go())


@pytest.fixture()
def planted(db: psycopg.Connection) -> dict[str, int]:
    db.execute("DELETE FROM enterprises WHERE name LIKE 'recompute test %'")
    red = _insert_enterprise(db, 1, 95)
    # Chlorine, Table 3 β = 4; Q from Table 1 (5 t); 100 people → α = 2; R = 2·4·62.5/5 = 100.
    _insert_source(db, red, 100, [("chlorine", "7782-50-5", 62.5, None, "toxic_gas")])
    yellow = _insert_enterprise(db, 2, 80)
    return {"red": red, "yellow": yellow}


def test_grade_one_source_makes_the_enterprise_red(
    database_url: str, db: psycopg.Connection, planted: dict[str, int]
) -> None:
    report = _run(database_url, [planted["red"], planted["yellow"]])
    assert report.enterprises == 2
    source = db.execute(
        "SELECT s_value, alpha, r_value, grade, color FROM hazard_sources WHERE enterprise_id = %s",
        (planted["red"],),
    ).fetchone()
    assert source == (12.5, 2.0, 100.0, 1, "red")
    enterprise = db.execute(
        "SELECT inherent_color, dynamic_color, risk_reasons FROM enterprises WHERE id = %s",
        (planted["red"],),
    ).fetchone()
    assert enterprise is not None
    assert enterprise[:2] == ("red", "red")
    assert [r["code"] for r in enterprise[2]] == ["hazard_source_grade", "diagnosis_score"]


def test_new_major_hidden_danger_raises_one_level_and_notifies(
    database_url: str, db: psycopg.Connection, planted: dict[str, int]
) -> None:
    target = planted["yellow"]
    _run(database_url, [target])
    assert db.execute(
        "SELECT inherent_color, dynamic_color FROM enterprises WHERE id = %s", (target,)
    ).fetchone() == ("yellow", "yellow")

    listener = psycopg.connect(database_url, autocommit=True)
    listener.execute(f"LISTEN {CHANGE_CHANNEL}")
    db.execute(
        "INSERT INTO hidden_dangers (enterprise_id, title, is_major, status, found_at)"
        " VALUES (%s, '储罐区可燃气体报警器失效', true, 'found', now())",
        (target,),
    )
    report = _run(database_url, [target])
    assert report.enterprises_changed == 1
    row = db.execute(
        "SELECT inherent_color, dynamic_color, risk_reasons FROM enterprises WHERE id = %s",
        (target,),
    ).fetchone()
    assert row is not None
    assert row[:2] == ("yellow", "orange")
    assert row[2][0]["code"] == "open_major_hidden_danger"
    assert "储罐区" in row[2][0]["zh"]

    # Other notices (a hexagon re-roll of the shared server, …) may arrive too: ours is the
    # enterprises one.
    payloads = [
        p
        for p in (json.loads(n.payload) for n in listener.notifies(timeout=2))
        if p.get("layer") == "enterprises"
    ]
    listener.close()
    assert payloads and payloads[0]["layer"] == "enterprises"
    assert payloads[0]["ids"] == [target]
    assert payloads[0]["bbox"] == pytest.approx([121.502, 29.95, 121.502, 29.95])


def test_unchanged_inputs_write_and_notify_nothing(
    database_url: str, planted: dict[str, int]
) -> None:
    _run(database_url, [planted["yellow"]])
    again = _run(database_url, [planted["yellow"]])
    assert again.enterprises == 1 and again.enterprises_changed == 0
