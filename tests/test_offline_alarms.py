"""Offline never hides an open alarm (docs/domain.md §2.4, issue 13): real HTTP, real PostGIS.

Scenarios live in an area of their own (126.3–126.45 E, 34.0–34.15 N): enterprises with a
diagnosis score of 80 (inherent yellow), one hazard source each, detectors sampling every 10 s.
Readings are stamped a minute before the test's clock, so level-2 alarms are far from their
15-minute acknowledgement deadline; the stale sweep is run directly with a chosen ``now``.
"""

from __future__ import annotations

import asyncio
import datetime as dt
from collections.abc import Iterator
from typing import Any

import httpx
import mapbox_vector_tile
import psycopg
import pytest

from layers.monitoring.config import MonitoringRules
from layers.monitoring.live import sweep_stale
from tests.conftest import make_settings
from tiles.tms import Tile, tile_range

N = MonitoringRules().debounce_n
FLAT_N = MonitoringRules().flat_line_n
INTERVAL_S = 10
SEC = dt.timedelta(seconds=1)
LAT = 34.05


@pytest.fixture(scope="module")
def area(database_url: str) -> Iterator[dict[str, Any]]:
    """Enterprises P (a detector pair on one source), S (one detector), F (flat lines)."""
    ids: dict[str, Any] = {}
    with psycopg.connect(database_url, autocommit=True) as c:
        for key, code, lon in (
            ("P", "9133020000T8PPPP01", 126.31),
            ("S", "9133020000T8AAAA01", 126.35),
            ("F", "9133020000T8FFFF01", 126.39),
        ):
            row = c.execute(
                "INSERT INTO enterprises (credit_code, name, category, is_hazmat, diagnosis_score,"
                " geom) VALUES (%s, %s, 'storage', true, 80, ST_SetSRID(ST_Point(%s, %s), 4326))"
                " RETURNING id",
                (code, f"离线测试{key}", lon, LAT),
            ).fetchone()
            assert row
            ids[key] = row[0]
            src = c.execute(
                "INSERT INTO hazard_sources (enterprise_id, code, unit_name, unit_kind, geom)"
                " SELECT id, 'T8-HS', 'LPG tanks', 'storage',"
                " ST_Multi(ST_Buffer(geom::geography, 40)::geometry) FROM enterprises"
                " WHERE id = %s RETURNING id",
                (ids[key],),
            ).fetchone()
            assert src
            ids[key + "_src"] = src[0]
        for i, (name, ent) in enumerate(
            (("a", "P"), ("b", "P"), ("single", "S"), ("flat_alarm", "F"), ("flat_quiet", "F"))
        ):
            row = c.execute(
                "INSERT INTO monitoring_points (code, hazard_source_id, kind, unit, level1,"
                " level2, sampling_interval_s, geom) VALUES (%s, %s, 'gas_flammable', '%%LEL',"
                " 25, 50, %s, ST_SetSRID(ST_Point(%s, %s), 4326)) RETURNING id",
                (f"T8-{name}", ids[ent + "_src"], INTERVAL_S, 126.31 + 0.0004 * i, LAT + 0.001),
            ).fetchone()
            assert row
            ids[name] = row[0]
    yield ids


def _post(client: httpx.Client, rows: list[dict[str, Any]]) -> None:
    r = client.post("/api/readings", json=rows)
    assert r.status_code == 200, r.text
    assert r.json()["accepted"] == len(rows), r.text


def _rows(point: int, start: dt.datetime, values: list[float]) -> list[dict[str, Any]]:
    return [
        {"point_id": point, "ts": (start + k * SEC).isoformat(), "value": v}
        for k, v in enumerate(values)
    ]


def _point(db: psycopg.Connection, point: int) -> tuple[str, bool]:
    row = db.execute(
        "SELECT live_color, offline FROM monitoring_points WHERE id = %s", (point,)
    ).fetchone()
    assert row is not None
    return row[0], row[1]


def _enterprise(db: psycopg.Connection, ent: int) -> tuple[str, str, list[dict[str, Any]]]:
    row = db.execute(
        "SELECT inherent_color, dynamic_color, risk_reasons FROM enterprises WHERE id = %s",
        (ent,),
    ).fetchone()
    assert row is not None
    return row[0], row[1], row[2]


def _sweep(database_url: str, now: dt.datetime) -> list[int]:
    settings = make_settings(database_url)
    config = settings.risk.recompute_config(settings.db.data_dir)

    async def go() -> list[int]:
        async with await psycopg.AsyncConnection.connect(database_url) as conn:
            return await sweep_stale(conn, MonitoringRules(), config, now)

    return asyncio.run(go())


def _tile_feature(client: httpx.Client, point: int, lon: float, lat: float) -> dict[str, Any]:
    x, y, _, _ = tile_range((lon, lat, lon, lat), 16)
    tile = Tile(16, x, y)
    r = client.get(f"/tiles/monitoring_points/{tile.z}/{tile.x}/{tile.y}.mvt")
    assert r.status_code == 200, r.text
    layer = mapbox_vector_tile.decode(r.content)["monitoring_points"]
    (feature,) = [f for f in layer["features"] if f["id"] == point]
    return dict(feature["properties"])


def test_silent_red_pair_keeps_its_alarm_and_raises_the_enterprise(
    client: httpx.Client, db: psycopg.Connection, area: dict[str, Any], database_url: str
) -> None:
    a, b, ent = area["a"], area["b"], area["P"]
    now = dt.datetime.now(dt.UTC).replace(microsecond=0)
    start = now - 62 * SEC
    # Both at level 2 (≥ 50 % LEL) for N samples; B goes on reporting until 5 s ago.
    _post(client, _rows(a, start, [60.0 + k for k in range(N)]))
    _post(client, [*_rows(b, start, [60.0 + k for k in range(N)]), *_rows(b, now - 5 * SEC, [61])])
    assert _point(db, a) == ("red", False) and _point(db, b) == ("red", False)
    inherent, dynamic, reasons = _enterprise(db, ent)
    assert (inherent, dynamic) == ("yellow", "orange")
    assert reasons[0]["code"] == "red_monitoring_point"

    # A falls silent (last reading 60 s before ``now``; 3 × 10 s is the limit): it keeps red,
    # offline, and still confirms B's red.
    swept = _sweep(database_url, now - 20 * SEC)
    assert a in swept and b not in swept
    assert _point(db, a) == ("red", True)
    assert _point(db, b) == ("red", False)
    inherent, dynamic, reasons = _enterprise(db, ent)
    assert [r["code"] for r in reasons[:2]] == [
        "detector_lost_during_alarm",
        "red_monitoring_point",
    ]
    assert (inherent, dynamic) == ("yellow", "orange")

    # Both silent: both stay red and offline; the enterprise's first reason is the lost
    # detectors, and its dynamic colour stays raised.
    assert b in _sweep(database_url, now + 60 * SEC)
    assert _point(db, a) == ("red", True) and _point(db, b) == ("red", True)
    inherent, dynamic, reasons = _enterprise(db, ent)
    assert (inherent, dynamic) == ("yellow", "orange")
    first = reasons[0]
    assert first["code"] == "detector_lost_during_alarm" and first["raises"] is True
    assert first["en"] == "2 detector(s) offline during an open level-2 alarm (T8-a, T8-b)"
    assert "red_monitoring_point" not in [r["code"] for r in reasons]  # counted once, as lost
    risk = client.get(f"/api/enterprises/{ent}/risk").json()
    assert risk["reasons"][0]["code"] == "detector_lost_during_alarm"
    assert risk["color"] == "orange"

    # /api/alarms: still open and red, and says the point is offline.
    alarms = client.get("/api/alarms", params={"enterprise_id": ent}).json()["features"]
    assert sorted(
        (f["properties"]["point_id"], f["properties"]["status"], f["properties"]["color"])
        for f in alarms
    ) == sorted([(a, "open", "red"), (b, "open", "red")])
    assert all(f["properties"]["point_offline"] is True for f in alarms)

    # The collection and a decoded tile carry ``offline`` next to the kept colour.
    listed = client.get("/api/monitoring-points", params={"hazard_source_id": area["P_src"]})
    props = {f["id"]: f["properties"] for f in listed.json()["features"]}
    assert {p: (props[p]["color"], props[p]["offline"]) for p in (a, b)} == {
        a: ("red", True),
        b: ("red", True),
    }
    lon, lat = db.execute(
        "SELECT ST_X(geom), ST_Y(geom) FROM monitoring_points WHERE id = %s", (a,)
    ).fetchone() or (0.0, 0.0)
    tiled = _tile_feature(client, a, lon, lat)
    assert (tiled["color"], tiled["offline"]) == ("red", True)

    # The daily watch list keeps the enterprise for that alarm.
    daily = client.get("/api/reports/daily").json()
    entry = next(e for e in daily["key_attention"] if e["enterprise_id"] == ent)
    assert "K5_detector_lost_during_alarm" in [r["code"] for r in entry["reasons"]]

    # A reading brings A back: no longer offline, still red (B's open alarm still counts).
    _post(client, _rows(a, now, [61.0]))
    assert _point(db, a) == ("red", False) and _point(db, b) == ("red", True)
    _, dynamic, reasons = _enterprise(db, ent)
    lost = next(r for r in reasons if r["code"] == "detector_lost_during_alarm")
    assert lost["en"].startswith("1 detector(s)") and "T8-b" in lost["en"]
    assert dynamic == "orange"


def test_lone_level2_detector_silent_raises_until_disposed_then_readings_clear(
    client: httpx.Client, db: psycopg.Connection, area: dict[str, Any], database_url: str
) -> None:
    p, ent = area["single"], area["S"]
    now = dt.datetime.now(dt.UTC).replace(microsecond=0)
    _post(client, _rows(p, now - 62 * SEC, [55.0] * N))
    assert _point(db, p) == ("orange", False)  # level 2, no second sensor: not red
    assert _enterprise(db, ent)[:2] == ("yellow", "yellow")  # an orange point raises nothing

    assert p in _sweep(database_url, now - 20 * SEC)
    assert _point(db, p) == ("orange", True)  # not grey: its alarm is open
    inherent, dynamic, reasons = _enterprise(db, ent)
    assert (inherent, dynamic) == ("yellow", "orange")
    assert reasons[0]["code"] == "detector_lost_during_alarm"

    (alarm,) = client.get("/api/alarms", params={"enterprise_id": ent}).json()["features"]
    aid = alarm["id"]
    assert client.post(f"/api/alarms/{aid}/ack").status_code == 200
    assert _enterprise(db, ent)[1] == "orange"  # acknowledged is not disposed of
    disposed = client.post(f"/api/alarms/{aid}/dispose")
    assert disposed.status_code == 200
    assert disposed.json()["properties"]["point_offline"] is True
    inherent, dynamic, reasons = _enterprise(db, ent)
    assert (inherent, dynamic) == ("yellow", "yellow")
    assert "detector_lost_during_alarm" not in [r["code"] for r in reasons]
    assert _point(db, p) == ("orange", True)  # the alarm is not cleared: the map keeps it

    # Readings below the hysteresis band clear the alarm: blue and online again.
    _post(client, _rows(p, now, [5.0, 6.0, 7.0]))
    assert _point(db, p) == ("blue", False)


def test_flat_line_keeps_an_open_alarm_and_greys_a_quiet_point(
    client: httpx.Client, db: psycopg.Connection, area: dict[str, Any]
) -> None:
    start = dt.datetime.now(dt.UTC).replace(microsecond=0) - dt.timedelta(minutes=10)
    _post(client, _rows(area["flat_alarm"], start, [55.0] * FLAT_N))
    _post(client, _rows(area["flat_quiet"], start, [5.0] * FLAT_N))
    assert _point(db, area["flat_alarm"]) == ("orange", True)
    assert _point(db, area["flat_quiet"]) == ("grey", True)
    _, dynamic, reasons = _enterprise(db, area["F"])
    assert dynamic == "orange" and reasons[0]["code"] == "detector_lost_during_alarm"
    assert "T8-flat_alarm" in reasons[0]["en"] and "T8-flat_quiet" not in reasons[0]["en"]
    # One different value ends the flat line.
    _post(client, _rows(area["flat_quiet"], start + FLAT_N * SEC, [5.5]))
    assert _point(db, area["flat_quiet"]) == ("blue", False)
