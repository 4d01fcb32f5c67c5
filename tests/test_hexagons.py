"""H3 rollups against the real PostGIS and over real HTTP: worst colour, counts, outlines,
bbox filter, validation, on-demand rollup of fixes.

Data is planted around 122.45 E, 30.45 N — outside the demo city's box — and removed after.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import math
from collections.abc import Iterator
from typing import Any

import h3
import httpx
import numpy as np
import psycopg
import pytest
from fastapi import FastAPI
from shapely.geometry import Point, Polygon, shape

from geo_api.routes import hexagons as hexagon_routes
from layers.core.partitions import ensure_daily_partitions
from layers.risk import hexagons
from layers.risk.surface import D0_M
from tests.conftest import LiveServer, make_settings

LON, LAT = 122.45, 30.45
AREA = (122.40, 30.40, 122.56, 30.56)
BBOX = ",".join(str(v) for v in AREA)
NAME = "h3 test enterprise"
VEHICLES = (990_001, 990_002, 990_003)
# Inside the fixes' retention window (older days have no partition and are refused).
FIX_DAY = dt.datetime.now(dt.UTC).date() - dt.timedelta(days=3)
FIXES_PER_VEHICLE = 19


def _code(n: int) -> str:
    return f"91330200HX{n:08d}"


def _near(n: int) -> tuple[float, float]:
    """Eleven points within ≈ 40 m of the centre, all in the centre's resolution-8 cell."""
    angle = 2 * math.pi * n / 11
    return LON + 0.0004 * math.cos(angle), LAT + 0.0003 * math.sin(angle)


def _rollup(url: str, layer: str, resolutions: list[int]) -> int:
    async def go() -> int:
        async with await psycopg.AsyncConnection.connect(url) as conn:
            return await hexagons.rollup(conn, layer, resolutions)

    return asyncio.run(go())


@pytest.fixture(scope="module")
def planted(database_url: str) -> Iterator[dict[str, Any]]:
    with psycopg.connect(database_url, autocommit=True) as db:
        _cleanup(db)
        points = []
        for n in range(11):
            lon, lat = _near(n)
            color = "red" if n == 0 else "blue"
            db.execute(
                "INSERT INTO enterprises (credit_code, name, category, is_hazmat, geom,"
                " inherent_color, dynamic_color)"
                " VALUES (%s, %s, 'storage', true, ST_SetSRID(ST_Point(%s, %s), 4326), %s, %s)",
                (_code(n), NAME, lon, lat, color, color),
            )
            points.append((lon, lat))
        far = (122.52, 30.52)
        row = db.execute(
            "INSERT INTO enterprises (credit_code, name, category, is_hazmat, geom,"
            " inherent_color, dynamic_color) VALUES (%s, %s, 'storage', true,"
            " ST_SetSRID(ST_Point(%s, %s), 4326), 'yellow', 'yellow') RETURNING id",
            (_code(99), NAME, *far),
        ).fetchone()
        assert row is not None
        db.execute(
            "INSERT INTO hazard_sources (enterprise_id, code, unit_name, unit_kind, geom,"
            " r_value, grade, color) VALUES (%s, 'H3-1', 'tank', 'storage',"
            " ST_Multi(ST_Buffer(ST_SetSRID(ST_Point(%s, %s), 4326)::geography, 30)::geometry),"
            " 150, 1, 'red')",
            (row[0], *far),
        )
        ensure_daily_partitions(db, "positions", [FIX_DAY])
        start = dt.datetime.combine(FIX_DAY, dt.time(1), tzinfo=dt.UTC)
        fixes = [
            (v, start + dt.timedelta(seconds=30 * i), 122.42 + 0.003 * i, 30.42 + 0.001 * k, 50.0)
            for k, v in enumerate(VEHICLES)
            for i in range(FIXES_PER_VEHICLE)
        ]
        with db.cursor().copy(
            "COPY positions (vehicle_id, ts, lon, lat, speed_kmh) FROM STDIN"
        ) as copy:
            for fix in fixes:
                copy.write_row(fix)
        yield {"points": points, "far": far, "fixes": fixes}
        _cleanup(db)


def _cleanup(db: psycopg.Connection) -> None:
    db.execute("DELETE FROM enterprises WHERE name = %s", (NAME,))
    db.execute("DELETE FROM positions WHERE vehicle_id = ANY(%s)", (list(VEHICLES),))
    db.execute("DELETE FROM h3_cells WHERE geom && ST_MakeEnvelope(%s, %s, %s, %s, 4326)", AREA)


@pytest.fixture(scope="module")
def h3_client(database_url: str) -> Iterator[httpx.Client]:
    """A live server whose app mounts the hexagon router (until routes/__init__ lists it)."""
    server = LiveServer(make_settings(database_url))
    app = server.server.config.app
    assert isinstance(app, FastAPI)
    if not any(getattr(r, "path", "") == "/api/h3/{layer}" for r in app.routes):
        app.include_router(hexagon_routes.router)
    with server, server.client(timeout=60) as http:
        yield http


def _features(client: httpx.Client, layer: str, res: int, bbox: str = BBOX) -> list[dict]:
    resp = client.get(f"/api/h3/{layer}", params={"res": res, "bbox": bbox})
    assert resp.status_code == 200, resp.text
    assert resp.headers["content-type"].startswith("application/geo+json")
    body = resp.json()
    assert body["type"] == "FeatureCollection"
    return list(body["features"])


def test_worst_colour_wins_never_the_average(
    planted: dict[str, Any], database_url: str, h3_client: httpx.Client
) -> None:
    cell = h3.latlng_to_cell(LAT, LON, 8)
    assert all(h3.latlng_to_cell(lat, lon, 8) == cell for lon, lat in planted["points"])
    _rollup(database_url, "enterprises", [8, 9])
    by_h3 = {f["properties"]["h3"]: f for f in _features(h3_client, "enterprises", 8)}
    props = by_h3[cell]["properties"]
    assert props == {**props, "color": "red", "count": 11, "res": 8, "layer": "enterprises"}
    far_cell = h3.latlng_to_cell(planted["far"][1], planted["far"][0], 8)
    assert by_h3[far_cell]["properties"]["color"] == "yellow"
    assert by_h3[far_cell]["properties"]["count"] == 1
    assert len(by_h3) == 2


def test_cells_contain_their_points_and_follow_h3_outlines(
    planted: dict[str, Any], database_url: str, h3_client: httpx.Client
) -> None:
    _rollup(database_url, "enterprises", [9])
    features = _features(h3_client, "enterprises", 9)
    polygons = {f["properties"]["h3"]: shape(f["geometry"]) for f in features}
    for lon, lat in [*planted["points"], planted["far"]]:
        cell = h3.latlng_to_cell(lat, lon, 9)
        assert polygons[cell].contains(Point(lon, lat))
        expected = Polygon([(x, y) for y, x in h3.cell_to_boundary(cell)])
        assert polygons[cell].hausdorff_distance(expected) < 1e-6  # GeoJSON keeps 7 decimals
    assert sum(f["properties"]["count"] for f in features) == 12


def test_bbox_filters_cells(
    planted: dict[str, Any], database_url: str, h3_client: httpx.Client
) -> None:
    _rollup(database_url, "enterprises", [8])
    lon, lat = planted["far"]
    only_far = _features(h3_client, "enterprises", 8, f"{lon - 0.001},{lat - 0.001},{lon},{lat}")
    assert [f["properties"]["h3"] for f in only_far] == [h3.latlng_to_cell(lat, lon, 8)]
    assert _features(h3_client, "enterprises", 8, "122.41,30.60,122.42,30.61") == []


def test_hazard_source_cell_is_red_and_scored_by_decayed_r(
    planted: dict[str, Any], database_url: str, h3_client: httpx.Client
) -> None:
    _rollup(database_url, "hazard_sources", [10])
    lon, lat = planted["far"]
    cell = h3.latlng_to_cell(lat, lon, 10)
    props = {
        f["properties"]["h3"]: f["properties"] for f in _features(h3_client, "hazard_sources", 10)
    }
    assert props[cell]["color"] == "red"
    # Score = 150 · exp(-d / 500 m) at the cell centre; the centre is within one cell (≈ 70 m).
    clat, clon = h3.cell_to_latlng(cell)
    d = math.hypot((clon - lon) * 111_320 * math.cos(math.radians(lat)), (clat - lat) * 110_900)
    assert props[cell]["score"] == pytest.approx(150 * math.exp(-d / D0_M), rel=0.01)
    # The 30 m buffer may overlap neighbours: every overlapped cell is red, none elsewhere.
    assert {p["color"] for p in props.values()} == {"red"}


def test_fixes_rollup_counts_every_fix_and_is_computed_on_demand(
    planted: dict[str, Any], database_url: str, h3_client: httpx.Client, db: psycopg.Connection
) -> None:
    db.execute("DELETE FROM h3_cells WHERE layer = 'fixes' AND res = 9")
    first = h3_client.get("/api/h3/fixes", params={"res": 9, "bbox": BBOX})
    assert first.status_code == 200
    assert first.headers["x-h3-rollup"] == "computed"
    assert sum(f["properties"]["count"] for f in first.json()["features"]) == len(planted["fixes"])
    again = h3_client.get("/api/h3/fixes", params={"res": 9, "bbox": BBOX})
    assert again.headers["x-h3-rollup"] == "stored"
    _rollup(database_url, "fixes", list(hexagons.RESOLUTIONS))
    for res in hexagons.RESOLUTIONS:
        features = _features(h3_client, "fixes", res)
        assert sum(f["properties"]["count"] for f in features) == len(planted["fixes"])
        assert all(f["properties"]["color"] is None for f in features)
        assert all(f["properties"]["score"] == f["properties"]["count"] for f in features)
    expected: dict[str, int] = {}
    for _, _, lon, lat, _ in planted["fixes"]:
        cell = h3.latlng_to_cell(lat, lon, 10)
        expected[cell] = expected.get(cell, 0) + 1
    got = {
        f["properties"]["h3"]: f["properties"]["count"] for f in _features(h3_client, "fixes", 10)
    }
    assert got == expected


@pytest.mark.parametrize(
    ("params", "status", "field"),
    [
        ({"res": 4}, 422, "res"),
        ({"res": 11}, 422, "res"),
        ({"res": "eight"}, 422, "res"),
        ({"res": 8, "bbox": "1,2,3"}, 400, "bbox"),
        ({"res": 8, "bbox": "122,31,121,30"}, 400, "bbox"),
    ],
)
def test_invalid_queries_name_the_field(
    h3_client: httpx.Client, params: dict[str, Any], status: int, field: str
) -> None:
    resp = h3_client.get("/api/h3/enterprises", params=params)
    assert resp.status_code == status
    assert resp.json()["errors"][0]["field"] == field


def test_unknown_layer_is_404_naming_it(h3_client: httpx.Client) -> None:
    resp = h3_client.get("/api/h3/volcanoes", params={"res": 8})
    assert resp.status_code == 404
    assert "volcanoes" in resp.json()["detail"]


def test_aggregate_takes_the_minimum_rank() -> None:
    cells = np.array([7, 7, 7, 3], dtype=np.uint64)
    ranks = np.array([3, 0, 3, hexagons.NO_COLOR], dtype=np.uint8)
    out = hexagons.aggregate(cells, ranks, np.array([1, 1, 0, 2], dtype=np.int64))
    assert out.ids.tolist() == [3, 7]
    assert out.count.tolist() == [2, 2]
    assert out.rank.tolist() == [hexagons.NO_COLOR, 0]


def test_open_alarm_colours_its_monitoring_point_cell(
    planted: dict[str, Any], database_url: str, h3_client: httpx.Client, db: psycopg.Connection
) -> None:
    lon, lat = planted["far"][0] + 0.0002, planted["far"][1]
    point = db.execute(
        "INSERT INTO monitoring_points (code, hazard_source_id, kind, unit, geom, live_color)"
        " SELECT 'H3-MP-1', h.id, 'temperature', '°C', ST_SetSRID(ST_Point(%s, %s), 4326), 'blue'"
        " FROM hazard_sources h WHERE h.code = 'H3-1' RETURNING id",
        (lon, lat),
    ).fetchone()
    assert point is not None
    db.execute(
        "INSERT INTO alarms (point_id, level, color, raised_at) VALUES (%s, 2, 'red', now())",
        (point[0],),
    )
    _rollup(database_url, "monitoring_points", [9])
    _rollup(database_url, "alarms", [9])
    cell = h3.latlng_to_cell(lat, lon, 9)
    points = {
        f["properties"]["h3"]: f["properties"] for f in _features(h3_client, "monitoring_points", 9)
    }
    alarms = {f["properties"]["h3"]: f["properties"] for f in _features(h3_client, "alarms", 9)}
    assert (points[cell]["color"], points[cell]["count"]) == ("red", 1)  # the point, not the alarm
    assert (alarms[cell]["color"], alarms[cell]["count"]) == ("red", 1)
    assert points[cell]["score"] > 50  # the level-2 alarm alone weighs 50 at its own spot
