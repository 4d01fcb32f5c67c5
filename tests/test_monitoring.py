"""Live monitoring end to end: real HTTP into a real PostGIS, scenarios built from readings.

Scenarios live in an area of their own (125.3–125.45 E, 33.0–33.15 N) with their own
enterprises, hazard sources and one point per scenario, so order never matters. Timestamps
are recent and distinct per scenario; the stale sweep is run directly with a given ``now``.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import json
from collections.abc import Iterator
from typing import Any

import httpx
import psycopg
import pytest

from layers.monitoring.config import MonitoringRules
from layers.monitoring.live import sweep_stale
from tests.conftest import make_settings

#: Six hours back: the scenarios' times reach T0 + 2,003 steps (5.6 h), and a reading later
#: than the clock (plus GEORISK_TS_MAX_FUTURE_SKEW_S) is refused.
T0 = (dt.datetime.now(dt.UTC) - dt.timedelta(hours=6)).replace(microsecond=0)
STEP = dt.timedelta(seconds=10)  # readings 10 s apart
#: The server's own stale sweep runs on the real clock every second; points sample once a day
#: (readings of six hours ago stay live) except the silent one, which samples hourly and whose
#: readings end an hour ago — only the test's sweeps, with their given ``now``, grey it.
DAY_S = 86_400
HOUR = dt.timedelta(hours=1)
INTERVALS = {"silent": 3600}
N = MonitoringRules().debounce_n


def _ts(k: int, base: dt.datetime = T0) -> str:
    return (base + k * STEP).isoformat()


@pytest.fixture(scope="module")
def area(database_url: str) -> Iterator[dict[str, Any]]:
    """Two enterprises: A (one hazard source, a point per scenario), B (two points, red)."""
    ids: dict[str, Any] = {}
    with psycopg.connect(database_url, autocommit=True) as c:
        for key, code, lon in (
            ("ent_a", "9133020000T7AAAA01", 125.32),
            ("ent_b", "9133020000T7BBBB01", 125.42),
            ("ent_c", "9133020000T7CCCC01", 125.44),
        ):
            row = c.execute(
                "INSERT INTO enterprises (credit_code, name, category, is_hazmat, geom) VALUES"
                " (%s, %s, 'storage', true, ST_SetSRID(ST_Point(%s, 33.05), 4326)) RETURNING id",
                (code, f"测试储罐公司{key}", lon),
            ).fetchone()
            assert row
            ids[key] = row[0]
            src = c.execute(
                "INSERT INTO hazard_sources (enterprise_id, code, unit_name, unit_kind, geom)"
                " SELECT id, 'T7-HS', 'LPG tanks', 'storage',"
                " ST_Multi(ST_Buffer(geom::geography, 40)::geometry) FROM enterprises"
                " WHERE id = %s RETURNING id",
                (ids[key],),
            ).fetchone()
            assert src
            ids[key + "_src"] = src[0]
        points = {
            "hys": "ent_a",
            "deb": "ent_a",
            "silent": "ent_a",
            "dup": "ent_a",
            "ack": "ent_a",
            "red1": "ent_b",
            "red2": "ent_b",
            "overdue": "ent_c",
        }
        for i, (name, ent) in enumerate(points.items()):
            row = c.execute(
                "INSERT INTO monitoring_points (code, hazard_source_id, kind, unit, level1,"
                " level2, sampling_interval_s, geom) VALUES (%s, %s, 'gas_flammable', '%%LEL',"
                " 25, 50, %s, ST_SetSRID(ST_Point(%s, 33.1), 4326)) RETURNING id",
                (f"T7-{name}", ids[ent + "_src"], INTERVALS.get(name, DAY_S), 125.31 + 0.01 * i),
            ).fetchone()
            assert row
            ids[name] = row[0]
    yield ids


def _post(client: httpx.Client, rows: list[dict[str, Any]]) -> dict[str, Any]:
    r = client.post("/api/readings", json=rows)
    assert r.status_code == 200, r.text
    body: dict[str, Any] = r.json()
    return body


def _alarms(db: psycopg.Connection, point: int) -> list[tuple[Any, ...]]:
    return db.execute(
        "SELECT id, level, color, cleared_at, peak_value FROM alarms WHERE point_id = %s"
        " ORDER BY id",
        (point,),
    ).fetchall()


def _color(db: psycopg.Connection, point: int) -> str | None:
    row = db.execute("SELECT live_color FROM monitoring_points WHERE id = %s", (point,)).fetchone()
    return row[0] if row else None


def _offline(db: psycopg.Connection, point: int) -> bool | None:
    row = db.execute("SELECT offline FROM monitoring_points WHERE id = %s", (point,)).fetchone()
    return row[0] if row else None


def test_level1_alarm_once_and_hysteresis(
    client: httpx.Client, db: psycopg.Connection, area: dict[str, Any]
) -> None:
    p = area["hys"]
    rows = [{"point_id": p, "ts": _ts(k), "value": 30.0 + 0.1 * k} for k in range(N)]
    assert _post(client, rows)["accepted"] == N
    alarms = _alarms(db, p)
    assert len(alarms) == 1 and alarms[0][1] == 1 and alarms[0][3] is None
    assert _color(db, p) == "yellow"
    # More samples above the set point: still that one alarm, its peak follows.
    _post(client, [{"point_id": p, "ts": _ts(N + k), "value": 32.0} for k in range(N)])
    alarms = _alarms(db, p)
    assert len(alarms) == 1 and alarms[0][4] == pytest.approx(32.0)
    # Below 25 but inside the band (25 − 10 % = 22.5): held, not cleared.
    _post(
        client, [{"point_id": p, "ts": _ts(2 * N + k), "value": 23.0 + 0.1 * k} for k in range(N)]
    )
    assert _alarms(db, p)[0][3] is None and _color(db, p) == "yellow"
    # Below the band for N samples: cleared, blue, still exactly one alarm.
    _post(
        client, [{"point_id": p, "ts": _ts(3 * N + k), "value": 20.0 + 0.1 * k} for k in range(N)]
    )
    alarms = _alarms(db, p)
    assert len(alarms) == 1 and alarms[0][3] is not None
    assert _color(db, p) == "blue"


def test_debounce_two_above_one_below(
    client: httpx.Client, db: psycopg.Connection, area: dict[str, Any]
) -> None:
    p = area["deb"]
    values = [30.0, 31.0, 10.0] + [30.0] * (N - 1) + [11.0]
    rows = [{"point_id": p, "ts": _ts(k), "value": v} for k, v in enumerate(values)]
    assert _post(client, rows)["accepted"] == len(rows)
    assert _alarms(db, p) == []
    assert _color(db, p) == "blue"


def test_silent_point_turns_grey(
    client: httpx.Client, db: psycopg.Connection, area: dict[str, Any], database_url: str
) -> None:
    p = area["silent"]
    base = dt.datetime.now(dt.UTC).replace(microsecond=0) - 3 * HOUR
    _post(
        client,
        [{"point_id": p, "ts": (base + k * HOUR).isoformat(), "value": 1.0 + k} for k in range(3)],
    )
    last = base + 2 * HOUR
    settings = make_settings(database_url)
    config = settings.risk.recompute_config(settings.db.data_dir)

    async def sweep(now: dt.datetime) -> list[int]:
        async with await psycopg.AsyncConnection.connect(database_url) as conn:
            return await sweep_stale(conn, MonitoringRules(), config, now)

    assert p not in asyncio.run(sweep(last + 2 * HOUR))
    assert (_color(db, p), _offline(db, p)) == ("blue", False)
    assert p in asyncio.run(sweep(last + 4 * HOUR))
    # No open alarm: grey, and marked offline.
    assert (_color(db, p), _offline(db, p)) == ("grey", True)
    assert p not in asyncio.run(sweep(last + 5 * HOUR))  # idempotent
    # A new reading brings it back.
    _post(client, [{"point_id": p, "ts": (last + 30 * STEP).isoformat(), "value": 2.5}])
    assert (_color(db, p), _offline(db, p)) == ("blue", False)


def test_rejections_per_row(client: httpx.Client, area: dict[str, Any]) -> None:
    p = area["dup"]
    rows: list[Any] = [
        {"point_id": p, "ts": _ts(1000), "value": 1.0},
        {"point_id": 2_000_000_000, "ts": _ts(1001), "value": 1.0},
        {"point_id": p, "ts": _ts(1002), "value": "abc"},
        {"point_id": p, "ts": "yesterday", "value": 1.0},
    ]
    body = _post(client, rows)
    assert body["accepted"] == 1
    errors = {r["index"]: r["error"] for r in body["rejected"]}
    assert set(errors) == {1, 2, 3}
    assert "unknown monitoring point" in errors[1]
    assert errors[2].startswith("value:")
    assert errors[3].startswith("ts:")


def test_same_batch_twice(
    client: httpx.Client, db: psycopg.Connection, area: dict[str, Any]
) -> None:
    p = area["dup"]
    csv = "point_id,ts,value\n" + "".join(
        f"{p},{_ts(k)},{k - 1960}\n" for k in range(2000, 2001 + N)
    )
    r = client.post("/api/readings", content=csv, headers={"content-type": "text/csv"})
    assert r.json() == {"accepted": N + 1, "duplicates": 0, "rejected": []}
    before = _alarms(db, p)
    assert len(before) == 1
    r = client.post("/api/readings", content=csv, headers={"content-type": "text/csv"})
    assert r.json() == {"accepted": 0, "duplicates": N + 1, "rejected": []}
    assert _alarms(db, p) == before


def test_level2_on_two_points_is_red(
    client: httpx.Client, db: psycopg.Connection, area: dict[str, Any]
) -> None:
    a, b = area["red1"], area["red2"]
    nd = "\n".join(
        json.dumps({"point_id": p, "ts": _ts(k), "value": 60.0 + k})
        for p in (a, b)
        for k in range(N)
    )
    r = client.post("/api/readings", content=nd, headers={"content-type": "application/x-ndjson"})
    assert r.json()["accepted"] == 2 * N
    assert _color(db, a) == "red" and _color(db, b) == "red"
    assert [x[1:3] for x in _alarms(db, a)] == [(2, "red")]
    row = db.execute(
        "SELECT inherent_color, dynamic_color, risk_reasons FROM enterprises WHERE id = %s",
        (area["ent_b"],),
    ).fetchone()
    assert row is not None
    # Enterprise B has nothing assessed (its hazard source has no substances): inherent grey,
    # and the live condition gives it yellow, the lowest level raised once (issue 13).
    assert (row[0], row[1]) == ("grey", "yellow")
    reason = next(r for r in row[2] if r["code"] == "red_monitoring_point")
    assert reason["raises"] is True


def test_ack_and_dispose(
    client: httpx.Client, db: psycopg.Connection, area: dict[str, Any]
) -> None:
    p = area["ack"]
    _post(client, [{"point_id": p, "ts": _ts(k), "value": 55.0} for k in range(N)])
    (alarm,) = _alarms(db, p)
    aid = alarm[0]
    assert alarm[1] == 2
    assert client.post(f"/api/alarms/{aid}/dispose").status_code == 409
    r = client.post(f"/api/alarms/{aid}/ack")
    assert r.status_code == 200 and r.json()["properties"]["status"] == "acknowledged"
    first = r.json()["properties"]["acknowledged_at"]
    assert client.post(f"/api/alarms/{aid}/ack").json()["properties"]["acknowledged_at"] == first
    r = client.post(f"/api/alarms/{aid}/dispose")
    assert r.status_code == 200 and r.json()["properties"]["status"] == "disposed"
    assert client.post("/api/alarms/999999999/ack").status_code == 404
    r = client.get("/api/alarms", params={"status": "disposed", "enterprise_id": area["ent_a"]})
    assert r.status_code == 200
    feats = r.json()["features"]
    assert [f["id"] for f in feats] == [aid]
    assert feats[0]["geometry"]["type"] == "Point"
    r = client.get(
        "/api/alarms", params={"level": 2, "enterprise_id": area["ent_a"], "status": "open"}
    )
    assert aid not in [f["id"] for f in r.json()["features"]]
    assert client.get("/api/alarms", params={"status": "bogus"}).status_code == 400


def test_overdue_level2_alarm_rates_once_and_ack_lowers(
    client: httpx.Client, db: psycopg.Connection, area: dict[str, Any], database_url: str
) -> None:
    """Raised six hours ago with a 15-minute ack deadline: overdue at once."""
    p, ent = area["overdue"], area["ent_c"]
    _post(client, [{"point_id": p, "ts": _ts(k), "value": 70.0 + k} for k in range(N)])
    (alarm,) = _alarms(db, p)

    def reasons() -> list[str]:
        row = db.execute("SELECT risk_reasons FROM enterprises WHERE id = %s", (ent,)).fetchone()
        return [r["code"] for r in (row[0] if row else [])]

    def overdue_noted() -> bool:
        row = db.execute(
            "SELECT alarm_overdue FROM monitoring_state WHERE point_id = %s", (p,)
        ).fetchone()
        return bool(row and row[0])

    assert "level2_alarm_overdue" in reasons()
    settings = make_settings(database_url)
    config = settings.risk.recompute_config(settings.db.data_dir)

    async def sweep() -> None:
        async with await psycopg.AsyncConnection.connect(database_url) as conn:
            await sweep_stale(conn, MonitoringRules(), config, dt.datetime.now(dt.UTC))

    assert not overdue_noted()
    asyncio.run(sweep())
    assert overdue_noted()
    asyncio.run(sweep())  # noticed once; a second round changes nothing
    assert overdue_noted()
    assert client.post(f"/api/alarms/{alarm[0]}/ack").status_code == 200
    assert "level2_alarm_overdue" not in reasons()
