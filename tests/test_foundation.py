"""Health, schema constraints, partitions and migrations — against the real test PostGIS."""

from __future__ import annotations

import datetime as dt
import os
import subprocess
import sys
from urllib.parse import urlsplit, urlunsplit

import httpx
import psycopg
import pytest

from geo_api.migrate import downgrade, upgrade
from layers.core.partitions import ensure_daily_partitions, partition_name


def head_revision() -> str:
    from alembic.script import ScriptDirectory

    from geo_api.migrate import alembic_config

    head = ScriptDirectory.from_config(alembic_config("unused")).get_current_head()
    assert head is not None
    return head


ENTERPRISE = "INSERT INTO enterprises (credit_code, name, category, is_hazmat, geom) VALUES"


def point(lon: float, lat: float) -> str:
    return f"ST_SetSRID(ST_Point({lon}, {lat}), 4326)"


def test_healthz_names_postgis_version(
    client: httpx.Client, db: psycopg.Connection, database_url: str
) -> None:
    response = client.get("/healthz")
    assert response.status_code == 200
    body = response.json()
    expected = db.execute("SELECT postgis_lib_version()").fetchone()
    assert expected is not None
    assert body["status"] == "ok"
    assert body["postgis"] == expected[0]
    assert body["postgis"].startswith("3.")
    assert body["schema_revision"] == head_revision()
    # The server really talks to the database the settings named, not a default one.
    assert body["database"] == urlsplit(database_url).path.lstrip("/")


def test_openapi_lists_health(client: httpx.Client) -> None:
    spec = client.get("/openapi.json").json()
    assert "/healthz" in spec["paths"]


def test_unknown_route_is_json_404(client: httpx.Client) -> None:
    response = client.get("/no/such/thing")
    assert response.status_code == 404
    assert response.json()["detail"]


@pytest.mark.parametrize(
    ("sql", "constraint"),
    [
        (
            f"{ENTERPRISE} ('91330200MA2AAAAA1X', 'x', 'production', true, {point(121.5, 95)})",
            "ck_enterprises_geom_range",
        ),
        (
            f"{ENTERPRISE} ('91330200MA2AAAAA1X', 'x', 'school', true, {point(121.5, 29.9)})",
            "ck_enterprises_is_hazmat",
        ),
        (
            f"{ENTERPRISE} ('not-a-code', 'x', 'school', false, {point(121.5, 29.9)})",
            "ck_enterprises_credit_code",
        ),
        (
            "INSERT INTO zones (name, kind, geom) VALUES ('bow tie', 'school',"
            " ST_GeomFromText('MULTIPOLYGON(((0 0, 1 1, 1 0, 0 1, 0 0)))', 4326))",
            "ck_zones_geom_valid",
        ),
        (
            "INSERT INTO zones (name, kind, active_hours, geom) VALUES ('z', 'school', '7-18',"
            " ST_GeomFromText('MULTIPOLYGON(((0 0, 1 0, 1 1, 0 1, 0 0)))', 4326))",
            "ck_zones_active_hours",
        ),
        (
            "INSERT INTO pipelines (code, substance, diameter_mm, pressure_mpa, geom) VALUES"
            " ('P', 'gas', -5, 1, ST_GeomFromText('LINESTRING(0 0, 1 1)', 4326))",
            "ck_pipelines_diameter_mm",
        ),
    ],
)
def test_check_constraints_reject_impossible_rows(
    db: psycopg.Connection, sql: str, constraint: str
) -> None:
    with pytest.raises(psycopg.errors.CheckViolation) as caught:
        db.execute(sql)
    assert caught.value.diag.constraint_name == constraint


def test_positions_partitions_created_on_demand_and_unique(db: psycopg.Connection) -> None:
    # A back-filled day inside the retention window that pg_partman did not make ahead.
    day = dt.datetime.now(dt.UTC).date() - dt.timedelta(days=100)
    with db.transaction():
        ensure_daily_partitions(db, "positions", [day, day])
    exists = db.execute("SELECT to_regclass(%s)", (partition_name("positions", day),)).fetchone()
    assert exists is not None and exists[0] is not None
    ts = dt.datetime.combine(day, dt.time(3, 4, 5), tzinfo=dt.UTC)
    insert = (
        "INSERT INTO positions (vehicle_id, ts, lon, lat, speed_kmh) VALUES (999999, %s, 121.5,"
        " 29.9, 50)"
    )
    db.execute(insert, (ts,))
    with pytest.raises(psycopg.errors.UniqueViolation):
        db.execute(insert, (ts,))
    # A day without a partition is refused rather than silently stored somewhere else.
    with pytest.raises(psycopg.errors.CheckViolation):
        db.execute(insert, (ts + dt.timedelta(days=400),))
    db.execute("DELETE FROM positions WHERE vehicle_id = 999999")


def test_migration_chain_downgrades_and_upgrades(database_url: str) -> None:
    parts = urlsplit(database_url)
    scratch = urlunsplit(parts._replace(path=parts.path + "_migr"))
    admin = urlunsplit(parts._replace(path="/postgres"))
    name = scratch.rsplit("/", 1)[1]
    with psycopg.connect(admin, autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}"')
        conn.execute(f'CREATE DATABASE "{name}"')
    try:
        upgrade(scratch)
        downgrade(scratch, "base")
        with psycopg.connect(scratch) as conn:
            left = conn.execute("SELECT to_regclass('enterprises')").fetchone()
        assert left == (None,)
        upgrade(scratch)
        with psycopg.connect(scratch) as conn:
            tables = {
                r[0]
                for r in conn.execute(
                    "SELECT tablename FROM pg_tables WHERE schemaname = 'public'"
                ).fetchall()
            }
        assert {"enterprises", "hazard_sources", "zones", "vehicles", "alerts"} <= tables
    finally:
        with psycopg.connect(admin, autocommit=True) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{name}"')


def test_cli_migrate_is_idempotent(database_url: str) -> None:
    env = {**os.environ, "DATABASE_URL": database_url}
    result = subprocess.run(
        [sys.executable, "-m", "geo_api.cli", "migrate"],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 0, result.stderr
    assert "schema at head" in result.stdout


def test_map_page_is_self_contained(client: httpx.Client) -> None:
    page = client.get("/")
    assert page.status_code == 200
    assert "/static/vendor/leaflet/leaflet.js" in page.text
    # Offline by design: nothing on the page is fetched from another host.
    assert "http://" not in page.text and "https://" not in page.text
    script = client.get("/static/vendor/leaflet/leaflet.js")
    assert script.status_code == 200 and "Leaflet" in script.text[:500]
    app_js = client.get("/static/app.js").text
    assert "https://" not in app_js and "http://" not in app_js


def test_models_and_migrations_agree(database_url: str) -> None:
    """The GeoAlchemy2 models and the Alembic chain describe the same schema."""
    from alembic.autogenerate import compare_metadata
    from alembic.migration import MigrationContext
    from sqlalchemy import create_engine

    from geo_api.db import sqlalchemy_url
    from layers.core.partitions import include_in_autogenerate
    from layers.core.schema import Base

    engine = create_engine(sqlalchemy_url(database_url))
    with engine.connect() as conn:
        context = MigrationContext.configure(
            conn,
            opts={"include_object": include_in_autogenerate, "compare_type": True},
        )
        differences = compare_metadata(context, Base.metadata)
    engine.dispose()
    assert differences == []


def test_npm_working_files_are_not_served(client: httpx.Client) -> None:
    assert client.get("/static/package.json").status_code == 404
    assert client.get("/static/node_modules/leaflet/package.json").status_code == 404
    assert client.get("/static/vendor/leaflet/leaflet.css").status_code == 200
