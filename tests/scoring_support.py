"""Shared planting for the safety-score tests (test_scoring, test_rule_sets, test_deductions,
test_licences).

Enterprises are planted in an area of their own (125.9–126.05 E, 33.6–33.75 N) with credit
codes ``91330200<prefix>…`` so each module plants its own. A Hailing enterprise is a
``furnace``-tagged one in the demo's furnace district (layers/demo_city/scores.py assigns
those to the Hailing sample set); any other is scored by the Xiaoshan sample (the default).
Automatic runs are limited to the planted enterprises so the demo city is left alone.
"""

from __future__ import annotations

import asyncio
import datetime as dt
from typing import Any

import psycopg

from layers.demo_city.scores import FURNACE_DISTRICT
from layers.prevention.automatic import AutoReport, run_automatic
from layers.prevention.rule_book import RuleBook, load_rule_book
from layers.risk.recompute import RecomputeConfig, recompute

UTC = dt.UTC


def plant(
    db: psycopg.Connection,
    prefix: str,
    n: int,
    *,
    hailing: bool = False,
    district: str | None = None,
    diagnosis: float | None = 95,
    licence_expiry: dt.date | None = None,
) -> int:
    """One hazmat storage enterprise (diagnosis 95: inherent blue); Hailing's when asked."""
    assert len(prefix) == 2
    code = f"91330200{prefix}{n:08d}"
    row = db.execute(
        "INSERT INTO enterprises (credit_code, name, category, is_hazmat, diagnosis_score,"
        " licence_expiry, district, tags, geom) VALUES (%s, %s, 'storage', true, %s, %s, %s,"
        " %s, ST_SetSRID(ST_Point(%s, 33.65), 4326)) RETURNING id",
        (
            code,
            f"score test {prefix} {n}",
            diagnosis,
            licence_expiry,
            FURNACE_DISTRICT if hailing else district,
            ["furnace"] if hailing else [],
            125.9 + n * 0.0005,
        ),
    ).fetchone()
    assert row is not None
    return int(row[0])


def clean(db: psycopg.Connection, prefix: str) -> None:
    db.execute("DELETE FROM enterprises WHERE name LIKE %s", (f"score test {prefix} %",))


def book(url: str) -> RuleBook:
    async def go() -> RuleBook:
        async with await psycopg.AsyncConnection.connect(url) as conn:
            return await load_rule_book(conn)

    return asyncio.run(go())


def automatic(
    url: str, ids: list[int], today: dt.date, now: dt.datetime | None = None, **kw: Any
) -> AutoReport:
    """What the scoring clock does, limited to ``ids``: deduct, warn, re-rate."""

    async def go() -> AutoReport:
        async with await psycopg.AsyncConnection.connect(url) as conn:
            report = await run_automatic(
                conn, today, now or dt.datetime.combine(today, dt.time(12), UTC), ids, **kw
            )
            if report.deducted:
                await recompute(conn, RecomputeConfig(), report.deducted)
                await conn.commit()
            return report

    return asyncio.run(go())


def rerate(url: str, ids: list[int]) -> None:
    async def go() -> None:
        async with await psycopg.AsyncConnection.connect(url) as conn:
            await recompute(conn, RecomputeConfig(), ids)
            await conn.commit()

    asyncio.run(go())


def colour(db: psycopg.Connection, enterprise_id: int) -> tuple[str, list[dict[str, Any]]]:
    row = db.execute(
        "SELECT dynamic_color, risk_reasons FROM enterprises WHERE id = %s", (enterprise_id,)
    ).fetchone()
    assert row is not None
    return row[0], row[1] or []


def events(db: psycopg.Connection, enterprise_id: int) -> list[tuple[Any, ...]]:
    return db.execute(
        "SELECT item_code, points, source, trigger_key, state FROM score_events"
        " WHERE enterprise_id = %s ORDER BY id",
        (enterprise_id,),
    ).fetchall()


def insert_event(
    db: psycopg.Connection,
    enterprise_id: int,
    rule_set: str,
    item: str,
    points: int,
    day: dt.date,
    state: str = "open",
) -> int:
    """A deduction as stored long ago (the API dates new ones now at the latest)."""
    void = ", now(), 'test'" if state == "voided" else ", NULL, NULL"
    row = db.execute(
        "INSERT INTO score_events (enterprise_id, rule_set, rule_set_version, item_code, points,"
        " source, occurred_at, state, voided_at, void_reason) SELECT %s, %s, max(version), %s,"
        f" %s, 'inspection', %s, %s{void} FROM rule_sets WHERE code = %s RETURNING id",
        (
            enterprise_id,
            rule_set,
            item,
            points,
            dt.datetime.combine(day, dt.time(10), UTC),
            state,
            rule_set,
        ),
    ).fetchone()
    assert row is not None
    return int(row[0])
