"""Derived rows follow new features at once: POSTed enterprises are rated, hazard sources
graded, pipelines cut into coloured segments, and the CLI import does the same."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import httpx
import psycopg

# East of the demo city, so nothing planted by the seed is near.
LON, LAT = 124.6, 32.6


def _enterprise(code: str, lon: float, score: float) -> dict[str, Any]:
    return {
        "type": "Feature",
        "geometry": {"type": "Point", "coordinates": [lon, LAT]},
        "properties": {
            "credit_code": code,
            "name": f"refresh {code}",
            "category": "production",
            "diagnosis_score": score,
        },
    }


def test_posted_enterprise_and_hazard_source_are_rated(
    client: httpx.Client, db: psycopg.Connection
) -> None:
    created = client.post("/api/enterprises", json=_enterprise("91330200RF00000011", LON, 70))
    assert created.status_code == 201, created.text
    enterprise_id = created.json()["id"]
    props = client.get(f"/api/enterprises/{enterprise_id}").json()["properties"]
    assert (props["inherent_color"], props["dynamic_color"]) == ("orange", "orange")

    square = [
        [LON, LAT],
        [LON + 0.001, LAT],
        [LON + 0.001, LAT + 0.001],
        [LON, LAT + 0.001],
        [LON, LAT],
    ]
    source = {
        "type": "Feature",
        "geometry": {"type": "Polygon", "coordinates": [square]},
        "properties": {
            "enterprise_id": enterprise_id,
            "code": "HS-R1",
            "unit_name": "液氯储罐",
            "unit_kind": "storage",
            "population_500m": 100,
            "substances": [{"name": "氯", "cas": "7782-50-5", "q": 62.5}],
        },
    }
    made = client.post("/api/hazard-sources", json=source)
    assert made.status_code == 201, made.text
    graded = client.get(f"/api/hazard-sources/{made.json()['id']}").json()["properties"]
    assert (graded["R"], graded["grade"], graded["color"]) == (100.0, 1, "red")
    risk = client.get(f"/api/enterprises/{enterprise_id}/risk").json()
    assert risk["color"] == "red" and risk["reasons"][0]["code"] == "hazard_source_grade"
    # A grade-1 source draws consequence zones, dissolved into overlay polygons naming it.
    named = db.execute(
        "SELECT count(*) FROM overlay_zones WHERE sources @> %s::jsonb",
        (json.dumps([{"kind": "hazard_source", "id": made.json()["id"]}]),),
    ).fetchone()
    assert named is not None and named[0] >= 1


def test_posted_pipeline_is_cut_into_coloured_segments(
    client: httpx.Client, db: psycopg.Connection
) -> None:
    line = {
        "type": "Feature",
        "geometry": {
            "type": "LineString",
            "coordinates": [[LON, LAT - 0.05], [LON + 0.012, LAT - 0.05]],
        },
        "properties": {
            "code": "PL-REFRESH-1",
            "substance": "天然气",
            "diameter_mm": 300,
            "pressure_mpa": 4,
        },
    }
    created = client.post("/api/pipelines", json=line)
    assert created.status_code == 201, created.text
    rows = db.execute(
        "SELECT length_m, color FROM pipeline_segments WHERE pipeline_id = %s ORDER BY seq",
        (created.json()["id"],),
    ).fetchall()
    assert len(rows) == 3  # ≈ 1.13 km in pieces of at most 500 m
    assert all(length <= 500.5 and color is not None for length, color in rows)


def test_cli_import_rates_and_takes_a_declared_crs(
    database_url: str, db: psycopg.Connection, tmp_path: Path
) -> None:
    csv = tmp_path / "plants.csv"
    csv.write_text(
        "credit_code,name,category,diagnosis_score,lon,lat\n"
        f"91330200RF00000022,导入测试,storage,55,{LON + 0.02},{LAT}\n",
        encoding="utf-8",
    )
    env = {**os.environ, "DATABASE_URL": database_url}
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "geo_api.cli",
            "import",
            "enterprises",
            str(csv),
            "--crs",
            "EPSG:4490",
        ],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 0, result.stderr
    row = db.execute(
        "SELECT ST_X(geom), dynamic_color FROM enterprises WHERE credit_code = '91330200RF00000022'"
    ).fetchone()
    assert row is not None
    assert abs(row[0] - (LON + 0.02)) < 1e-9  # CGCS2000 is stored as given
    assert row[1] == "red"  # diagnosis 55 < 60
