"""Time-series lifecycle end to end (issue 17 item 3), on the real PostGIS with pg_partman.

Partitions made ahead, the ts window refusing rows per row (and never making a partition for
them), an expired day archived to GeoParquet (read back by GDAL through pyogrio, by DuckDB and
by geopandas) and dropped, an alert in that day keeping its evidence, and the day restored.

The scenario has its own area (125.4 E, 33.4 N), zone and vehicle. Its day is three days ago:
inside the default retention, so it is planted through the real ingest route; maintenance is
then run with a two-day retention, which expires that day (and any older one) but not the
demo city's (yesterday, local time).
"""

from __future__ import annotations

import datetime as dt
import glob
import math
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import duckdb
import geopandas as gpd
import httpx
import psycopg
import pyogrio
import pytest

from geo_api.settings import LifecycleSettings
from layers.core.lifecycle import (
    LifecycleError,
    archive_path,
    live_partitions,
    maintain,
    restore_day,
)
from layers.core.partitions import ensure_daily_partitions, partition_name
from layers.core.window import OutOfWindow, TsWindow
from tests.conftest import LiveServer, make_settings
from tests.planting import square_wkt

SCHOOL = (125.40, 33.40)
TODAY = dt.datetime.now(dt.UTC).date()
DAY = TODAY - dt.timedelta(days=3)
SHORT = TsWindow({"positions": 2, "readings": 400})
CHECKSUM = (
    "SELECT count(*), md5(string_agg(concat_ws('|', vehicle_id, ts, lon, lat, speed_kmh, heading,"
    " alarm_bits, h3_r8), ',' ORDER BY vehicle_id, ts)) FROM {}"
)


@pytest.fixture(scope="module")
def archive_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("archive")


@pytest.fixture(scope="module")
def server(database_url: str, archive_dir: Path) -> Iterator[LiveServer]:
    """A server reading the test's archive; its own maintenance clock off (the test runs it)."""
    settings = make_settings(database_url)
    settings.lifecycle = LifecycleSettings(archive_dir=archive_dir, lifecycle_enabled=False)
    with LiveServer(settings) as live:
        yield live


@pytest.fixture()
def http(server: LiveServer) -> Iterator[httpx.Client]:
    with server.client() as c:
        yield c


@pytest.fixture(scope="module")
def area(database_url: str) -> dict[str, Any]:
    """An always-active school zone, a carrier and one vehicle, in a borrowed district."""
    with psycopg.connect(database_url, autocommit=True) as c:
        district = c.execute("SELECT code FROM districts ORDER BY code LIMIT 1").fetchone()
        assert district
        zone = c.execute(
            "INSERT INTO zones (code, name, kind, geom) VALUES ('TLC-SCH', '归档测试小学',"
            " 'school', ST_Multi(ST_GeomFromText(%s, 4326))) RETURNING id",
            (square_wkt(*SCHOOL, 0.002),),
        ).fetchone()
        carrier = c.execute(
            "INSERT INTO enterprises (credit_code, name, category, is_hazmat, geom) VALUES"
            " ('9133020000TLCAAA01', '归档测试危运', 'transport', true,"
            " ST_SetSRID(ST_Point(125.45, 33.45), 4326)) RETURNING id"
        ).fetchone()
        assert zone and carrier
        vehicles = []
        for plate in ("测TLC001", "测TLC002"):  # the window's, the archived stop's
            row = c.execute(
                "INSERT INTO vehicles (plate, carrier, enterprise_id, district)"
                " VALUES (%s, '归档测试危运', %s, %s) RETURNING id",
                (plate, carrier[0], district[0]),
            ).fetchone()
            assert row
            vehicles.append(row[0])
        point = c.execute("SELECT id FROM monitoring_points ORDER BY id LIMIT 1").fetchone()
        assert point
        return {"zone": zone[0], "window": vehicles[0], "vehicle": vehicles[1], "point": point[0]}


def _fix(vid: int, t: dt.datetime, lon: float, lat: float, speed: float) -> dict[str, Any]:
    return {"vehicle_id": vid, "ts": t.isoformat(), "lon": lon, "lat": lat, "speed_kmh": speed}


def _visit(vid: int, start: dt.datetime) -> list[dict[str, Any]]:
    """Drive in from 2 km west at 40 km/h, stop 5 min at the school, drive on east."""
    lon, lat = SCHOOL
    step = 333.0 / (111_320 * math.cos(math.radians(lat)))
    out, t = [], start
    for k in [*range(-6, 0), *([0] * 11), *range(1, 7)]:
        out.append(_fix(vid, t, round(lon + k * step, 7), lat, 0 if k == 0 else 40))
        t += dt.timedelta(seconds=30)
    return out


def _children(db: psycopg.Connection, table: str) -> list[tuple[str, str]]:
    return db.execute(
        "SELECT c.relname, pg_get_expr(c.relpartbound, c.oid) FROM pg_inherits h"
        " JOIN pg_class c ON c.oid = h.inhrelid WHERE h.inhparent = %s::regclass",
        (table,),
    ).fetchall()


def test_partitions_exist_days_ahead_and_no_default(
    database_url: str, db: psycopg.Connection, archive_dir: Path
) -> None:
    with psycopg.connect(database_url, autocommit=True) as conn:
        report = maintain(conn, TsWindow(), archive_dir)
    assert not report.busy and report.archived == []
    for table in ("positions", "readings"):
        names = {name for name, _ in _children(db, table)}
        for ahead in range(8):  # today and premake = 7 days ahead
            assert partition_name(table, TODAY + dt.timedelta(days=ahead)) in names
        assert all(bound != "DEFAULT" for _, bound in _children(db, table))
    config = db.execute(
        "SELECT parent_table, partition_interval, premake, infinite_time_partitions, retention"
        " FROM partman.part_config ORDER BY parent_table"
    ).fetchall()
    assert config == [
        ("public.positions", "1 day", 7, True, None),
        ("public.readings", "1 day", 7, True, None),
    ]


def test_out_of_window_fixes_are_rejected_per_row(
    http: httpx.Client, db: psycopg.Connection, area: dict[str, Any]
) -> None:
    vid = area["window"]
    now = dt.datetime.now(dt.UTC).replace(microsecond=0)
    body = [
        _fix(vid, dt.datetime(2001, 3, 4, 5, 6, tzinfo=dt.UTC), 125.3, 33.3, 10),
        _fix(vid, now + dt.timedelta(days=1), 125.3, 33.3, 10),
        _fix(vid, now - dt.timedelta(minutes=10), 125.31, 33.31, 10),
        _fix(vid, now - dt.timedelta(days=181), 125.3, 33.3, 10),
    ]
    r = http.post("/api/positions", json=body)
    assert r.status_code == 200, r.text
    answer = r.json()
    assert answer["accepted"] == 1
    assert [e["index"] for e in answer["rejected"]] == [0, 1, 3]
    for e in answer["rejected"]:
        assert e["error"].startswith("ts: outside the accepted window ")
        assert "fixes are kept 180 days" in e["error"] and "300 s ahead" in e["error"]
    stored = db.execute(
        "SELECT lon, lat FROM positions WHERE vehicle_id = %s AND ts > now() - interval '1 day'",
        (vid,),
    ).fetchall()
    assert stored == [(125.31, 33.31)]
    assert db.execute("SELECT to_regclass('positions_p2001_03_04')").fetchone() == (None,)
    oldest = min(p.day for p in live_partitions(db, "positions"))
    assert oldest >= TODAY - dt.timedelta(days=181)
    db.execute("DELETE FROM positions WHERE vehicle_id = %s", (vid,))


def test_out_of_window_readings_are_rejected_per_row(
    http: httpx.Client, db: psycopg.Connection, area: dict[str, Any]
) -> None:
    pid = area["point"]
    now = dt.datetime.now(dt.UTC).replace(microsecond=0)
    late = now - dt.timedelta(days=2, seconds=7)  # stored, not judged: older than the last one
    body = [
        {"point_id": pid, "ts": "2001-03-04T05:06:00Z", "value": 1.0},
        {"point_id": pid, "ts": late.isoformat(), "value": 1.0},
        {"point_id": pid, "ts": (now - dt.timedelta(days=401)).isoformat(), "value": 1.0},
    ]
    r = http.post("/api/readings", json=body)
    assert r.status_code == 200, r.text
    answer = r.json()
    assert answer["accepted"] == 1
    assert [e["index"] for e in answer["rejected"]] == [0, 2]
    assert all("readings are kept 400 days" in e["error"] for e in answer["rejected"])
    assert all(e["error"].startswith("ts: ") for e in answer["rejected"])
    assert db.execute("SELECT to_regclass('readings_p2001_03_04')").fetchone() == (None,)
    db.execute("DELETE FROM readings WHERE point_id = %s AND ts = %s", (pid, late))


def test_bulk_writers_refuse_a_day_outside_the_window(db: psycopg.Connection) -> None:
    """The demo city's seeding and other bulk loads ask the same window, as a whole day."""
    old = r"day 2001-03-04: ts: outside the accepted window"
    with pytest.raises(OutOfWindow, match=old), db.transaction():
        ensure_daily_partitions(db, "positions", [TODAY, dt.date(2001, 3, 4)])
    with pytest.raises(OutOfWindow, match="readings are kept 400 days"), db.transaction():
        ensure_daily_partitions(db, "readings", [TODAY + dt.timedelta(days=30)])
    assert db.execute("SELECT to_regclass('positions_p2001_03_04')").fetchone() == (None,)


@pytest.fixture(scope="module")
def archived(
    server: LiveServer, database_url: str, area: dict[str, Any], archive_dir: Path
) -> dict[str, Any]:
    """An illegal stop three days ago, planted through the API, then the day archived."""
    vid = area["vehicle"]
    fixes = _visit(vid, dt.datetime.combine(DAY, dt.time(10), tzinfo=dt.UTC))
    with server.client() as c:
        r = c.post("/api/positions", json=fixes)
        assert r.status_code == 200 and r.json()["accepted"] == len(fixes), r.text
        alerts = c.get("/api/alerts", params={"vehicle_id": vid, "f": "json"}).json()["alerts"]
    assert len(alerts) == 1
    name = partition_name("positions", DAY)
    with psycopg.connect(database_url, autocommit=True) as conn:
        before = conn.execute(CHECKSUM.format(name)).fetchone()
        lines: list[str] = []
        report = maintain(conn, SHORT, archive_dir, say=lines.append)
    assert ("positions", DAY, before[0]) in report.archived
    return {"fixes": fixes, "alert": alerts[0], "before": before, "report": report, "say": lines}


def test_an_expired_day_is_archived_then_dropped(
    archived: dict[str, Any], db: psycopg.Connection, archive_dir: Path, area: dict[str, Any]
) -> None:
    path = archive_path(archive_dir, "positions", DAY)
    assert path == archive_dir / "positions" / f"{DAY.isoformat()}.parquet" and path.exists()
    assert db.execute("SELECT to_regclass(%s)", (partition_name("positions", DAY),)).fetchone() == (
        None,
    )
    assert any(f"{DAY}: {archived['before'][0]} rows written" in s for s in archived["say"])
    # Nothing younger than the retention went: yesterday's demo fixes are still live.
    assert partition_name("positions", TODAY - dt.timedelta(days=1)) in {
        p.name for p in live_partitions(db, "positions")
    }
    # GDAL (pyogrio) reads it, through its ADBC driver over DuckDB's library (the wheels'
    # GDAL has no Arrow/Parquet driver of its own), as GeoParquet: points in EPSG:4326.
    duck_lib = glob.glob(os.path.join(os.path.dirname(duckdb.__file__), "..", "_duckdb*.so"))
    frame = pyogrio.read_dataframe(f"ADBC:{path}", ADBC_DRIVER=duck_lib[0])
    assert len(frame) == archived["before"][0]
    mine = frame[frame["vehicle_id"] == area["vehicle"]].sort_values("ts")
    expected = [(f["lon"], f["lat"]) for f in archived["fixes"]]
    assert [(g.x, g.y) for g in mine.geometry] == expected
    assert list(mine["lon"]) == [x for x, _ in expected]
    # geopandas reads the GeoParquet metadata (CRS) and the columns as they were.
    gdf = gpd.read_parquet(path)
    assert gdf.crs is not None and gdf.crs.to_epsg() == 4326
    assert list(gdf.columns)[:8] == [
        "vehicle_id",
        "ts",
        "lon",
        "lat",
        "speed_kmh",
        "heading",
        "alarm_bits",
        "h3_r8",
    ]
    assert str(gdf["ts"].dtype) == "datetime64[us, UTC]"
    # DuckDB reads it as plain Parquet.
    row = (
        duckdb.connect()
        .execute(
            f"SELECT count(*), min(epoch_us(ts)) FROM read_parquet('{path}')"
            f" WHERE vehicle_id = {area['vehicle']}"
        )
        .fetchone()
    )
    first = dt.datetime.fromisoformat(archived["fixes"][0]["ts"])
    assert row == (len(archived["fixes"]), int(first.timestamp()) * 1_000_000)


def test_evidence_of_an_alert_in_an_archived_day_keeps_its_track(
    archived: dict[str, Any], http: httpx.Client
) -> None:
    r = http.get(f"/api/alerts/{archived['alert']['id']}/evidence")
    assert r.status_code == 200, r.text
    kinds = {f["properties"]["kind"]: f for f in r.json()["features"]}
    assert {"track", "stop", "zone"} <= set(kinds)
    track = kinds["track"]
    fixes = archived["fixes"]
    assert track["geometry"]["coordinates"] == [[f["lon"], f["lat"]] for f in fixes]
    times = [dt.datetime.fromisoformat(t) for t in track["properties"]["times"]]
    assert times == [dt.datetime.fromisoformat(f["ts"]) for f in fixes]


def _cli(database_url: str, archive_dir: Path, *args: str) -> subprocess.CompletedProcess[str]:
    env = {
        **os.environ,
        "GEORISK_DATABASE_URL": database_url,
        "GEORISK_ARCHIVE_DIR": str(archive_dir),
    }
    cli = [sys.executable, "-c", "from geo_api.cli import main; main()", "partitions", *args]
    return subprocess.run(cli, env=env, capture_output=True, text=True, timeout=120)


def test_restore_brings_back_the_same_rows_and_is_idempotent(
    archived: dict[str, Any], database_url: str, db: psycopg.Connection, archive_dir: Path
) -> None:
    listed = _cli(database_url, archive_dir, "list")
    assert listed.returncode == 0, listed.stderr
    assert f"archived  {DAY}" in listed.stdout and f"live      {DAY}" not in listed.stdout
    done = _cli(database_url, archive_dir, "restore", "positions", DAY.isoformat())
    assert done.returncode == 0, done.stderr
    assert f"{archived['before'][0]} rows restored" in done.stdout
    name = partition_name("positions", DAY)
    assert db.execute(CHECKSUM.format(name)).fetchone() == archived["before"]
    # Again: nothing to do, same rows.
    assert restore_day(db, archive_dir, "positions", DAY) == archived["before"][0]
    assert db.execute(CHECKSUM.format(name)).fetchone() == archived["before"]
    # A restored day is kept for a while, then dropped again without rewriting its file.
    path = archive_path(archive_dir, "positions", DAY)
    mtime = path.stat().st_mtime_ns
    kept = maintain(db, SHORT, archive_dir)
    assert ("positions", DAY) not in {(t, d) for t, d, _ in kept.archived}
    again = maintain(db, SHORT, archive_dir, restored_keep=dt.timedelta(0))
    assert ("positions", DAY, archived["before"][0]) in again.archived
    assert path.stat().st_mtime_ns == mtime
    # A partition holding other rows is never merged into.
    restore_day(db, archive_dir, "positions", DAY)
    db.execute(f"DELETE FROM {name} WHERE ts = (SELECT min(ts) FROM {name})")
    with pytest.raises(LifecycleError, match="refusing to merge"):
        restore_day(db, archive_dir, "positions", DAY)
    refused = _cli(database_url, archive_dir, "restore", "positions", DAY.isoformat())
    assert refused.returncode == 1 and "refusing to merge" in refused.stderr
    missing = _cli(database_url, archive_dir, "restore", "positions", "2001-03-04")
    assert missing.returncode == 1 and "no archive of positions for 2001-03-04" in missing.stderr
