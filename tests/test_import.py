"""``georisk import`` against a real PostGIS: files written here with geopandas, loaded through
``layers.imports.importer`` and the CLI, and checked by SQL — counts, coordinates and row errors.

The tests use their own district far from the demo city (110–111 E, 35–36 N) and their own
credit codes, so they need no seed and do not see the API tests' data.
"""

from __future__ import annotations

import itertools
import math
import os
import subprocess
import sys
from pathlib import Path

import geopandas as gpd
import psycopg
import pytest
from shapely.geometry import Point, Polygon

from layers.imports.importer import ImportRejected, RowError, import_file

_serial = itertools.count(1)
DISTRICT = "T-IMP"
MERCATOR_R = 6378137.0


def credit_code() -> str:
    return f"91330200MB{next(_serial):08d}"


@pytest.fixture()
def district(db: psycopg.Connection) -> str:
    db.execute(
        "INSERT INTO districts (code, name, geom)"
        " VALUES (%s, 'Import test district', ST_Multi(ST_MakeEnvelope(110, 35, 111, 36, 4326)))"
        " ON CONFLICT (code) DO NOTHING",
        (DISTRICT,),
    )
    return DISTRICT


def stored(db: psycopg.Connection, codes: list[str]) -> list[tuple[str, float, float, str]]:
    return db.execute(
        "SELECT credit_code, ST_X(geom), ST_Y(geom), district FROM enterprises"
        " WHERE credit_code = ANY(%s) ORDER BY credit_code",
        (codes,),
    ).fetchall()


def enterprises_frame(n: int, *, lon0: float = 110.1, lat0: float = 35.1) -> gpd.GeoDataFrame:
    codes = [credit_code() for _ in range(n)]
    return gpd.GeoDataFrame(
        {
            "credit_code": codes,
            "name": [f"Plant {i}" for i in range(n)],
            "category": ["production" if i % 2 else "school" for i in range(n)],
            "diagnosis_score": [80.5 + i for i in range(n)],
        },
        geometry=[Point(lon0 + i * 0.01, lat0 + i * 0.01) for i in range(n)],
        crs="EPSG:4326",
    )


def test_geopackage_import(
    tmp_path: Path, db: psycopg.Connection, district: str, database_url: str
) -> None:
    frame = enterprises_frame(4)
    path = tmp_path / "plants.gpkg"
    frame.to_file(path, driver="GPKG", engine="pyogrio")
    report = import_file(database_url, "enterprises", path, progress=False)
    assert (report.rows, report.inserted, len(report.ids)) == (4, 4, 4)
    assert "imported 4 of 4 rows into enterprises" in report.summary()
    rows = stored(db, list(frame.credit_code))
    assert [(r[0], round(r[1], 7), round(r[2], 7), r[3]) for r in rows] == [
        (c, round(110.1 + i * 0.01, 7), round(35.1 + i * 0.01, 7), district)
        for i, c in enumerate(frame.credit_code)
    ]
    hazmat = db.execute(
        "SELECT credit_code, is_hazmat, diagnosis_score::float8 FROM enterprises"
        " WHERE credit_code = ANY(%s) ORDER BY credit_code",
        (list(frame.credit_code),),
    ).fetchall()
    assert [(h[1], h[2]) for h in hazmat] == [
        (False, 80.5),
        (True, 81.5),
        (False, 82.5),
        (True, 83.5),
    ]


def test_csv_import_with_lon_lat_columns(
    tmp_path: Path, db: psycopg.Connection, district: str, database_url: str
) -> None:
    codes = [credit_code() for _ in range(3)]
    path = tmp_path / "plants.csv"
    path.write_text(
        "credit_code,name,category,longitude,latitude,note\n"
        f"{codes[0]},A Chem,production,110.5,35.5,first\n"
        f"{codes[1]},B School,school,110.6,35.6,\n"
        f"{codes[2]},C Trading,trading,110.7,35.7,third\n",
        encoding="utf-8",
    )
    report = import_file(database_url, "enterprises", path, progress=False)
    assert report.inserted == 3
    assert report.ignored_columns == ("note",)
    assert "ignored columns: note" in report.summary()
    assert [(r[1], r[2], r[3]) for r in stored(db, codes)] == [
        (110.5, 35.5, district),
        (110.6, 35.6, district),
        (110.7, 35.7, district),
    ]


def test_file_with_one_bad_row_is_rejected_whole(
    tmp_path: Path, db: psycopg.Connection, database_url: str
) -> None:
    codes = [credit_code() for _ in range(3)]
    path = tmp_path / "bad.csv"
    path.write_text(
        "credit_code,name,category,lon,lat\n"
        f"{codes[0]},A,production,110.5,35.5\n"
        f"{codes[1]},B,production,110.6,95\n"
        f"{codes[2]},C,production,110.7,35.7\n",
        encoding="utf-8",
    )
    with pytest.raises(ImportRejected) as caught:
        import_file(database_url, "enterprises", path, progress=False)
    assert caught.value.errors == [RowError(2, "geometry", "latitude 95 is outside -90..90")]
    assert stored(db, codes) == []


def test_partial_mode_loads_the_good_rows(
    tmp_path: Path, db: psycopg.Connection, database_url: str
) -> None:
    codes = [credit_code() for _ in range(3)]
    path = tmp_path / "partial.csv"
    path.write_text(
        "credit_code,name,category,lng,lat\n"
        f"{codes[0]},A,production,110.5,35.5\n"
        f"{codes[1]},B,brewery,110.6,35.6\n"
        f"{codes[2]},C,production,abc,35.7\n",
        encoding="utf-8",
    )
    report = import_file(database_url, "enterprises", path, all_or_nothing=False, progress=False)
    assert report.inserted == 1
    assert [(e.row, e.field) for e in report.rejected] == [(2, "category"), (3, "lng")]
    assert "'abc' is not a number" in report.rejected[1].reason
    assert [r[0] for r in stored(db, codes)] == [codes[0]]


def test_duplicate_codes_within_the_file_and_against_the_database(
    tmp_path: Path, db: psycopg.Connection, database_url: str
) -> None:
    existing = enterprises_frame(1, lon0=110.2)
    first = tmp_path / "first.geojson"
    existing.to_file(first, driver="GeoJSON", engine="pyogrio")
    assert import_file(database_url, "enterprises", first, progress=False).inserted == 1

    fresh = credit_code()
    path = tmp_path / "dups.csv"
    path.write_text(
        "credit_code,name,category,x,y\n"
        f"{fresh},A,production,110.5,35.5\n"
        f"{existing.credit_code[0]},B,production,110.6,35.6\n"
        f"{fresh},C,production,110.7,35.7\n",
        encoding="utf-8",
    )
    with pytest.raises(ImportRejected) as caught:
        import_file(database_url, "enterprises", path, progress=False)
    errors = caught.value.errors
    assert [(e.row, e.field) for e in errors] == [(2, "credit_code"), (3, "credit_code")]
    assert "already exists" in errors[0].reason
    assert "more than once" in errors[1].reason
    assert stored(db, [fresh]) == []


# Writing credit_code to a .shp truncates it to credit_cod: the importer maps it back.
@pytest.mark.filterwarnings("ignore:Column names longer:UserWarning")
@pytest.mark.filterwarnings("ignore:Normalized/laundered:RuntimeWarning")
def test_shapefile_in_web_mercator_is_reprojected(
    tmp_path: Path, db: psycopg.Connection, database_url: str
) -> None:
    lonlat = [(110.25, 35.25), (110.75, 35.8)]
    # Spherical Mercator by formula, so the check does not rely on the code under test.
    xy = [
        (
            MERCATOR_R * math.radians(lon),
            MERCATOR_R * math.log(math.tan(math.pi / 4 + math.radians(lat) / 2)),
        )
        for lon, lat in lonlat
    ]
    codes = [credit_code() for _ in lonlat]
    frame = gpd.GeoDataFrame(
        {"credit_code": codes, "name": ["M1", "M2"], "category": ["storage", "use"]},
        geometry=[Point(x, y) for x, y in xy],
        crs="EPSG:3857",
    )
    path = tmp_path / "mercator.shp"
    frame.to_file(path, engine="pyogrio")
    report = import_file(database_url, "enterprises", path, progress=False)
    assert report.inserted == 2
    assert "3857" in report.source_crs
    rows = stored(db, codes)
    for (lon, lat), row in zip(lonlat, rows, strict=True):
        assert row[1] == pytest.approx(lon, abs=1e-7)
        assert row[2] == pytest.approx(lat, abs=1e-7)


def test_cgcs2000_csv_keeps_coordinates_and_offsets_are_refused(
    tmp_path: Path, db: psycopg.Connection, database_url: str
) -> None:
    code = credit_code()
    path = tmp_path / "cgcs.csv"
    path.write_text(
        f"credit_code,name,category,lon,lat\n{code},A,production,110.1234567,35.7654321\n",
        encoding="utf-8",
    )
    with pytest.raises(ImportRejected) as caught:
        import_file(database_url, "enterprises", path, progress=False, crs="GCJ-02")
    (error,) = caught.value.errors
    assert (error.row, error.field) == (0, "crs")
    assert "consumer map offsets" in error.reason
    import_file(database_url, "enterprises", path, progress=False, crs="EPSG:4490")
    ((_, x, y, _),) = stored(db, [code])
    assert (x, y) == (pytest.approx(110.1234567, abs=1e-9), pytest.approx(35.7654321, abs=1e-9))


def test_zones_geojson_with_a_self_crossing_polygon(
    tmp_path: Path, db: psycopg.Connection, database_url: str
) -> None:
    good = Polygon([(110.3, 35.3), (110.31, 35.3), (110.31, 35.31), (110.3, 35.31)])
    bowtie = Polygon([(110.4, 35.4), (110.5, 35.5), (110.5, 35.4), (110.4, 35.5)])
    frame = gpd.GeoDataFrame(
        {
            "code": ["IMP-Z1", "IMP-Z2"],
            "name": ["Lot", "School"],
            "kind": ["designated_parking", "school"],
        },
        geometry=[good, bowtie],
        crs="EPSG:4326",
    )
    path = tmp_path / "zones.geojson"
    frame.to_file(path, driver="GeoJSON", engine="pyogrio")
    with pytest.raises(ImportRejected) as caught:
        import_file(database_url, "zones", path, progress=False)
    assert caught.value.errors == [
        RowError(2, "geometry", "invalid polygon: Self-intersection at 110.45 35.45")
    ]
    assert db.execute("SELECT count(*) FROM zones WHERE code LIKE 'IMP-Z%'").fetchone() == (0,)


def test_hazard_sources_csv_with_wkt_and_substances(
    tmp_path: Path, db: psycopg.Connection, database_url: str
) -> None:
    owner = enterprises_frame(1, lon0=110.9, lat0=35.9)
    owner_path = tmp_path / "owner.gpkg"
    owner.to_file(owner_path, driver="GPKG", engine="pyogrio")
    import_file(database_url, "enterprises", owner_path, progress=False)
    path = tmp_path / "sources.csv"
    substances = '"[{""name"": ""chlorine"", ""q"": 20, ""Q"": 5}]"'
    path.write_text(
        "enterprise_credit_code,code,unit_name,unit_kind,substances,wkt\n"
        f"{owner.credit_code[0]},HS1,Store,storage,{substances},"
        '"POLYGON((110.9 35.9,110.901 35.9,110.901 35.901,110.9 35.9))"\n',
        encoding="utf-8",
    )
    report = import_file(database_url, "hazard-sources", path, progress=False)
    (hs_id,) = report.ids
    row = db.execute(
        "SELECT GeometryType(h.geom), s.name, s.q, s.critical_q FROM hazard_sources h"
        " JOIN hazard_source_substances s ON s.hazard_source_id = h.id WHERE h.id = %s",
        (hs_id,),
    ).fetchone()
    assert row == ("MULTIPOLYGON", "chlorine", 20.0, 5.0)


def test_cli_prints_the_row_error_and_exits_non_zero(
    tmp_path: Path, db: psycopg.Connection, database_url: str
) -> None:
    code = credit_code()
    path = tmp_path / "cli.csv"
    path.write_text(
        f"credit_code,name,category,lon,lat\n{code},A,production,110.5,95\n", encoding="utf-8"
    )
    env = dict(os.environ, DATABASE_URL=database_url, GEORISK_DATABASE_URL=database_url)
    georisk = Path(sys.executable).with_name("georisk")
    done = subprocess.run(
        [str(georisk), "import", "enterprises", str(path)],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode != 0
    assert "rejected, nothing was stored (1 bad rows)" in done.stderr
    assert "row 1: geometry: latitude 95 is outside -90..90" in done.stderr
    assert stored(db, [code]) == []

    path.write_text(
        f"credit_code,name,category,lon,lat\n{code},A,production,110.5,35.5\n", encoding="utf-8"
    )
    done = subprocess.run(
        [str(georisk), "import", "enterprises", str(path)],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, done.stderr
    assert "imported 1 of 1 rows" in done.stdout
    # The audit log names the command line as the writer, with the row as stored.
    actor, after = db.execute(
        "SELECT a.actor, a.after FROM audit_log a JOIN enterprises e ON e.id = a.entity_id"
        " WHERE a.entity = 'enterprises' AND a.action = 'insert' AND e.credit_code = %s",
        (code,),
    ).fetchone() or (None, None)
    assert actor is not None and actor.startswith("cli:") and after["credit_code"] == code
