"""The risk surface over real HTTP: GeoTIFF georeferencing, the decay around a planted
grade-1 source, the PNG quick look, and size limits.

Data is planted around 122.45 E, 30.35 N — outside the demo city's box — and removed after.
"""

from __future__ import annotations

import datetime as dt
import math
import warnings
from collections.abc import Iterator
from typing import Any

import httpx
import numpy as np
import psycopg
import pytest
import rasterio
from fastapi import FastAPI
from rasterio.errors import NotGeoreferencedWarning
from rasterio.io import MemoryFile

from geo_api.routes import surface as surface_routes
from layers.core.colors import DISPLAY_HEX
from tests.conftest import LiveServer, make_settings

SOURCE = (122.45, 30.35)
ALARM_AT = (122.48, 30.37)
AREA = (122.40, 30.30, 122.50, 30.40)
BBOX = ",".join(str(v) for v in AREA)
NAME = "surface test enterprise"
R = 200.0


@pytest.fixture(scope="module")
def planted(database_url: str) -> Iterator[None]:
    with psycopg.connect(database_url, autocommit=True) as db:
        db.execute("DELETE FROM enterprises WHERE name = %s", (NAME,))
        row = db.execute(
            "INSERT INTO enterprises (credit_code, name, category, is_hazmat, geom)"
            " VALUES ('91330200HF00000001', %s, 'storage', true,"
            " ST_SetSRID(ST_Point(%s, %s), 4326)) RETURNING id",
            (NAME, *SOURCE),
        ).fetchone()
        assert row is not None
        source = db.execute(
            "INSERT INTO hazard_sources (enterprise_id, code, unit_name, unit_kind, geom,"
            " r_value, grade, color) VALUES (%s, 'SF-1', 'tank', 'storage',"
            " ST_Multi(ST_Buffer(ST_SetSRID(ST_Point(%s, %s), 4326)::geography, 20)::geometry),"
            " %s, 1, 'red') RETURNING id",
            (row[0], *SOURCE, R),
        ).fetchone()
        assert source is not None
        point = db.execute(
            "INSERT INTO monitoring_points (code, hazard_source_id, kind, unit, geom)"
            " VALUES ('SF-MP-1', %s, 'temperature', '°C', ST_SetSRID(ST_Point(%s, %s), 4326))"
            " RETURNING id",
            (source[0], *ALARM_AT),
        ).fetchone()
        assert point is not None
        db.execute(
            "INSERT INTO alarms (point_id, level, color, raised_at) VALUES (%s, 2, 'orange', %s)",
            (point[0], dt.datetime.now(dt.UTC)),
        )
        yield
        db.execute("DELETE FROM enterprises WHERE name = %s", (NAME,))


@pytest.fixture(scope="module")
def surface_client(database_url: str) -> Iterator[httpx.Client]:
    """A live server whose app mounts the surface router (until routes/__init__ lists it)."""
    server = LiveServer(make_settings(database_url))
    app = server.server.config.app
    assert isinstance(app, FastAPI)
    if not any(getattr(r, "path", "") == "/api/risk/surface.tif" for r in app.routes):
        app.include_router(surface_routes.router)
    with server, server.client(timeout=60) as http:
        yield http


def _pixel(transform: Any, lon: float, lat: float) -> tuple[int, int]:
    row, col = rasterio.transform.rowcol(transform, lon, lat)
    return int(row), int(col)


def test_geotiff_is_georeferenced_and_peaks_at_the_source(
    planted: None, surface_client: httpx.Client
) -> None:
    resp = surface_client.get("/api/risk/surface.tif", params={"bbox": BBOX, "width": 200})
    assert resp.status_code == 200, resp.text
    assert resp.headers["content-type"] == "image/tiff"
    with MemoryFile(resp.content) as mem, mem.open() as ds:
        assert ds.crs.to_epsg() == 4326
        assert ds.width == 200 and ds.height == 200  # the bbox is square in degrees
        assert ds.dtypes == ("float32",)
        for got, want in zip(ds.bounds, AREA, strict=True):
            assert got == pytest.approx(want, abs=1e-9)
        band = ds.read(1)
        transform = ds.transform
    row, col = _pixel(transform, *SOURCE)
    peak = np.unravel_index(np.argmax(band), band.shape)
    assert abs(int(peak[0]) - row) <= 1 and abs(int(peak[1]) - col) <= 1
    assert band[row, col] == pytest.approx(R, rel=0.1)  # within half a pixel (≈ 25 m)
    east = band[row, col : col + 80]  # 80 px ≈ 3.8 km to the east, away from the alarm's row
    assert np.all(np.diff(east) <= 1e-4)  # never increases away from the source
    # 1 km east: R · exp(-2) (pixel centres are ≈ 48 m apart, hence the tolerance).
    one_km = _pixel(
        transform, SOURCE[0] + 1000 / (111_320 * math.cos(math.radians(30.35))), SOURCE[1]
    )
    assert band[one_km] == pytest.approx(R * math.exp(-2), rel=0.15)
    assert band[-1, 0] == 0.0  # the south-west corner is ≈ 7 km from everything
    # The open level-2 alarm adds 50 at its monitoring point.
    assert band[_pixel(transform, *ALARM_AT)] == pytest.approx(50, rel=0.15)


def test_png_quick_look_uses_the_display_colours(
    planted: None, surface_client: httpx.Client
) -> None:
    resp = surface_client.get("/api/risk/surface.png", params={"bbox": BBOX, "width": 300})
    assert resp.status_code == 200, resp.text
    assert resp.headers["content-type"] == "image/png"
    with warnings.catch_warnings(), MemoryFile(resp.content) as mem, mem.open() as ds:
        warnings.simplefilter("ignore", NotGeoreferencedWarning)  # a PNG has no georeference
        assert ds.driver == "PNG"
        assert (ds.count, ds.width, ds.height) == (4, 300, 300)
        rgba = ds.read()
    transform = rasterio.transform.from_bounds(*AREA, 300, 300)
    row, col = _pixel(transform, *SOURCE)
    red = tuple(int(DISPLAY_HEX["red"][i : i + 2], 16) for i in (1, 3, 5))
    assert tuple(int(v) for v in rgba[:, row, col]) == (*red, 255)
    assert rgba[3, -1, 0] == 0  # transparent where the index is ~0


@pytest.mark.parametrize(
    ("params", "status", "field"),
    [
        ({"bbox": BBOX, "width": 5000}, 422, "width"),
        ({"bbox": BBOX, "width": 0}, 422, "width"),
        ({"bbox": "122.4,30.0,122.41,31.0", "width": 100}, 422, "width"),  # 10 000 rows
        ({"width": 100}, 400, "bbox"),
        ({"bbox": "a,b,c,d", "width": 100}, 400, "bbox"),
    ],
)
def test_bad_requests_name_the_field(
    surface_client: httpx.Client, params: dict[str, Any], status: int, field: str
) -> None:
    resp = surface_client.get("/api/risk/surface.tif", params=params)
    assert resp.status_code == status, resp.text
    assert resp.json()["errors"][0]["field"] == field
