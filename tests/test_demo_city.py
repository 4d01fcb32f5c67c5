"""The demo city: what is stored, that the planted ground truth is exact, and determinism.

Checks go through PostGIS (geography distances, containment) on the rows actually stored, so a
generator bug that the generator's own bookkeeping would hide still fails here.
"""

from __future__ import annotations

import datetime as dt
import json
import math
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import numpy as np
import psycopg
import pytest

from geo_api.migrate import upgrade
from layers.core import pgcopy
from layers.core.vocab import CREDIT_CODE_PATTERN
from layers.demo_city import NotEmpty, database_is_empty, seed_demo_city
from layers.demo_city.config import Counts
from layers.risk.gb18218 import Substance, assess
from layers.risk.substances import BY_CAS, CATALOGUE
from layers.transport import fix_filters
from tests.conftest import TEST_SCALE, TEST_SEED

PROTECTED = ("school", "hospital", "residential", "water_source")


@pytest.fixture(scope="module")
def city_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("demo_city")


@pytest.fixture(scope="module")
def city_url(database_url: str, city_dir: Path) -> Iterator[str]:
    """A database holding nothing but the demo city: the shared test database also carries
    rows other tests add, and this module counts everything."""
    url, admin = _sibling(database_url, "_city")
    name = urlsplit(url).path.lstrip("/")
    with psycopg.connect(admin, autocommit=True) as c:
        c.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        c.execute(f'CREATE DATABASE "{name}"')
    upgrade(url)
    seed_demo_city(url, scale=TEST_SCALE, seed=TEST_SEED, out_dir=city_dir, progress=False)
    yield url
    with psycopg.connect(admin, autocommit=True) as c:
        c.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


@pytest.fixture(scope="module")
def truth(city_url: str, city_dir: Path) -> dict[str, Any]:
    return json.loads((city_dir / "ground_truth.json").read_text())


@pytest.fixture(scope="module")
def conn(city_url: str) -> Any:
    with psycopg.connect(city_url, autocommit=True) as c:
        yield c


def _one(conn: psycopg.Connection, sql: str, params: Any = None) -> Any:
    row = conn.execute(sql, params).fetchone()
    assert row is not None
    return row[0]


def _events(truth: dict[str, Any], kind: str) -> list[dict[str, Any]]:
    return [e for e in truth["events"] if e["kind"] == kind]


# -- counts and content -------------------------------------------------------------------


def test_counts_follow_the_scale(conn: psycopg.Connection) -> None:
    c = Counts.for_scale(TEST_SCALE)
    assert _one(conn, "SELECT count(*) FROM enterprises") == c.hazmat + c.others
    assert _one(conn, "SELECT count(*) FROM enterprises WHERE is_hazmat") == c.hazmat
    assert _one(conn, "SELECT count(*) FROM hazard_sources") == c.hazard_sources >= 4
    on_sources = _one(
        conn, "SELECT count(*) FROM monitoring_points WHERE hazard_source_id IS NOT NULL"
    )
    assert on_sources >= c.monitoring_min
    assert _one(conn, "SELECT count(*) FROM monitoring_points WHERE pipeline_id IS NOT NULL") > 0
    assert _one(conn, "SELECT count(*) FROM vehicles") == c.vehicles
    assert 6 <= _one(conn, "SELECT count(*) FROM districts") <= 10
    km = _one(conn, "SELECT sum(ST_Length(geom::geography)) / 1000 FROM pipelines")
    assert km >= c.pipeline_km
    kinds: dict[str, int] = dict(
        conn.execute("SELECT kind, count(*) FROM zones GROUP BY kind").fetchall()
    )
    for kind in ("designated_parking", *PROTECTED, "chemical_park"):
        assert kinds.get(kind, 0) >= 1, kind
    assert 3 <= kinds["chemical_park"] <= 4
    # Every vehicle reports every 30 s for 24 h; noise only removes a few fixes.
    fixes = _one(conn, "SELECT count(*) FROM positions")
    assert 0.995 * c.vehicles * 2880 <= fixes <= c.vehicles * 2880


def test_districts_tile_the_box(conn: psycopg.Connection) -> None:
    area = _one(conn, "SELECT ST_Area(ST_Union(geom)) FROM districts")
    assert area == pytest.approx(1.0 * 0.6, rel=1e-6)
    overlap = _one(
        conn,
        "SELECT coalesce(sum(ST_Area(ST_Intersection(a.geom, b.geom))), 0) FROM districts a"
        " JOIN districts b ON a.id < b.id AND ST_Intersects(a.geom, b.geom)",
    )
    assert overlap < 1e-9
    assert _one(conn, "SELECT count(*) FROM districts WHERE code !~ '^3302[0-9]{2}$'") == 0


def test_all_four_gb18218_grades_with_s_at_least_one(conn: psycopg.Connection) -> None:
    rows = conn.execute(
        "SELECT h.id, h.population_500m, s.cas, s.q, s.critical_q, s.beta, s.hazard_class"
        " FROM hazard_sources h JOIN hazard_source_substances s ON s.hazard_source_id = h.id"
    ).fetchall()
    units: dict[int, list[tuple[Any, ...]]] = {}
    for row in rows:
        units.setdefault(row[0], []).append(row)
    assert len(units) == _one(conn, "SELECT count(*) FROM hazard_sources")
    grades = set()
    for items in units.values():
        assert 1 <= len(items) <= 4
        for _, _, cas, _, critical, beta, cls in items:
            ref = BY_CAS[cas]  # stored Q, β and class agree with the catalogue
            assert (critical, beta, cls) == (ref.critical_q_t, ref.beta, ref.hazard_class)
        result = assess(
            items[0][1], [Substance(str(i[2]), i[3], i[4], i[5], i[6], i[2]) for i in items]
        )
        assert result.S >= 1.0
        grades.add(result.grade)
    assert grades == {1, 2, 3, 4}


def test_catalogue_has_the_standard_values() -> None:
    expected = {
        "7664-41-7": (10, 2),
        "7782-50-5": (5, 4),
        "7783-06-4": (5, 5),
        "7664-39-3": (1, 5),
        "75-44-5": (0.3, 20),
    }
    for cas, (q, beta) in expected.items():
        assert (BY_CAS[cas].critical_q_t, BY_CAS[cas].beta) == (q, beta)
    assert len({s.cas for s in CATALOGUE}) == len(CATALOGUE)


def test_enterprise_content(conn: psycopg.Connection) -> None:
    bands = conn.execute(
        "SELECT width_bucket(diagnosis_score, ARRAY[60, 75, 90]), count(*) FROM enterprises"
        " WHERE is_hazmat GROUP BY 1"
    ).fetchall()
    assert {b for b, _ in bands} == {0, 1, 2, 3}
    assert _one(conn, "SELECT count(*) FROM enterprises WHERE is_hazmat AND site_geom IS NULL") == 0
    assert _one(conn, "SELECT count(*) FROM enterprises WHERE licence_expiry < now()::date") > 0
    assert _one(conn, "SELECT count(*) FROM enterprises WHERE park IS NOT NULL") > 0
    # district = the district containing the point
    assert (
        _one(
            conn,
            "SELECT count(*) FROM enterprises e JOIN districts d ON d.code = e.district"
            " WHERE NOT ST_Covers(d.geom, e.geom)",
        )
        == 0
    )
    codes = [r[0] for r in conn.execute("SELECT credit_code FROM enterprises").fetchall()]
    assert len(set(codes)) == len(codes)
    alphabet = "0123456789ABCDEFGHJKLMNPQRTUWXY"
    import re

    for code in codes:
        assert re.match(CREDIT_CODE_PATTERN, code)
        total = sum(alphabet.index(ch) * pow(3, i, 31) for i, ch in enumerate(code[:17]))
        assert alphabet[(31 - total % 31) % 31] == code[17]


def test_geometry_nesting(conn: psycopg.Connection) -> None:
    assert (
        _one(
            conn,
            "SELECT count(*) FROM hazard_sources h JOIN enterprises e ON e.id = h.enterprise_id"
            " WHERE NOT ST_Within(h.geom, e.site_geom)",
        )
        == 0
    )
    assert (
        _one(
            conn,
            "SELECT count(*) FROM monitoring_points m"
            " JOIN hazard_sources h ON h.id = m.hazard_source_id"
            " WHERE NOT ST_Within(m.geom, h.geom)",
        )
        == 0
    )
    assert (
        _one(
            conn,
            "SELECT count(*) FROM enterprises e JOIN zones z ON z.kind = 'chemical_park'"
            " AND z.name = e.park WHERE NOT ST_Within(e.geom, z.geom)",
        )
        == 0
    )
    # Schools and hospitals each sit inside their forbidden zone.
    assert (
        _one(
            conn,
            "SELECT count(*) FROM enterprises e WHERE e.category IN ('school', 'hospital')"
            " AND NOT EXISTS (SELECT 1 FROM zones z"
            " WHERE z.kind = e.category AND ST_Within(e.geom, z.geom))",
        )
        == 0
    )


def test_monitoring_limits_are_realistic(conn: psycopg.Connection) -> None:
    bad = _one(
        conn,
        "SELECT count(*) FROM monitoring_points WHERE"
        " (kind = 'gas_flammable' AND (unit <> '%LEL' OR level1 NOT BETWEEN 20 AND 25"
        "   OR level2 NOT BETWEEN 40 AND 50))"
        " OR (kind = 'oxygen' AND (limit_l <> 19.5 OR limit_h <> 23.5))"
        " OR (kind = 'gas_toxic' AND level2 <> 2 * level1)"
        " OR sampling_interval_s NOT BETWEEN 5 AND 60",
    )
    assert bad == 0
    kinds = {r[0] for r in conn.execute("SELECT DISTINCT kind FROM monitoring_points")}
    assert {"gas_flammable", "gas_toxic", "temperature", "pressure", "level"} <= kinds


def test_roads_and_vehicles(conn: psycopg.Connection) -> None:
    limits: dict[str, float] = dict(
        conn.execute("SELECT road_class, max(speed_limit_kmh) FROM roads GROUP BY 1")
    )
    assert limits == {"expressway": 80, "arterial": 60, "local": 60}
    plates = [r[0] for r in conn.execute("SELECT plate FROM vehicles")]
    assert all(p.startswith("浙B·") and len(p) == 8 for p in plates)
    assert _one(conn, "SELECT count(*) FROM vehicles WHERE capacity_t NOT BETWEEN 5 AND 40") == 0
    assert _one(conn, "SELECT count(DISTINCT carrier) FROM vehicles") >= 4


# -- the planted ground truth ---------------------------------------------------------------


def test_ground_truth_has_every_kind(truth: dict[str, Any]) -> None:
    assert truth["seed"] == TEST_SEED and truth["scale"] == TEST_SCALE
    kinds = {e["kind"] for e in truth["events"]}
    assert kinds >= {
        "lot_stop",
        "short_roadside_stop",
        "illegal_roadside_stop",
        "forbidden_zone_stop",
        "overspeed",
    }
    assert {n["kind"] for n in truth["noise"]} == {"jump", "zero", "duplicate", "out_of_order"}


def _clear_of_zones(conn: psycopg.Connection, lon: float, lat: float) -> int:
    return _one(
        conn,
        "SELECT count(*) FROM zones WHERE kind IN ('designated_parking', 'school', 'hospital',"
        " 'residential', 'water_source') AND ST_DWithin(geom::geography,"
        " ST_SetSRID(ST_MakePoint(%s, %s), 4326)::geography, 100)",
        (lon, lat),
    )


def _stop_fixes(conn: psycopg.Connection, e: dict[str, Any]) -> list[tuple[Any, ...]]:
    """Stored fixes of the vehicle in [start, end], with distance (m) to the stop point."""
    return conn.execute(
        "SELECT ts, speed_kmh, ST_Distance(ST_SetSRID(ST_MakePoint(lon, lat), 4326)::geography,"
        " ST_SetSRID(ST_MakePoint(%s, %s), 4326)::geography) FROM positions"
        " WHERE vehicle_id = %s AND ts BETWEEN %s AND %s ORDER BY ts",
        (e["lon"], e["lat"], e["vehicle_id"], e["start"], e["end"]),
    ).fetchall()


def _check_stop(conn: psycopg.Connection, e: dict[str, Any]) -> float:
    fixes = _stop_fixes(conn, e)
    seconds = (
        dt.datetime.fromisoformat(e["end"]) - dt.datetime.fromisoformat(e["start"])
    ).total_seconds()
    assert len(fixes) == round(seconds / 30) + 1, e  # no gaps inside a planted stop
    assert max(f[2] for f in fixes) < 20 and max(f[1] for f in fixes) == 0, e
    return seconds


def test_illegal_roadside_stops_are_exact(conn: psycopg.Connection, truth: dict[str, Any]) -> None:
    events = _events(truth, "illegal_roadside_stop")
    assert events
    for e in events:
        assert _clear_of_zones(conn, e["lon"], e["lat"]) == 0, e
        assert _check_stop(conn, e) > 600
        # The vehicle drove in and drove out: the fixes around the stop are moving.
        around = conn.execute(
            "(SELECT speed_kmh FROM positions WHERE vehicle_id = %s AND ts < %s"
            "  ORDER BY ts DESC LIMIT 1) UNION ALL (SELECT speed_kmh FROM positions"
            "  WHERE vehicle_id = %s AND ts > %s ORDER BY ts LIMIT 1)",
            (e["vehicle_id"], e["start"], e["vehicle_id"], e["end"]),
        ).fetchall()
        assert len(around) == 2 and min(r[0] for r in around) > 5, e


def test_short_roadside_stops_are_legal(conn: psycopg.Connection, truth: dict[str, Any]) -> None:
    events = _events(truth, "short_roadside_stop")
    assert events
    for e in events:
        assert _clear_of_zones(conn, e["lon"], e["lat"]) == 0, e
        assert 180 <= _check_stop(conn, e) < 600


def test_forbidden_zone_stops_are_inside_during_active_hours(
    conn: psycopg.Connection, truth: dict[str, Any]
) -> None:
    events = _events(truth, "forbidden_zone_stop")
    assert events
    for e in events:
        kind, hours, inside = (
            conn.execute(
                "SELECT kind, active_hours, ST_Within(ST_SetSRID(ST_MakePoint(%s, %s), 4326), geom)"
                " FROM zones WHERE id = %s",
                (e["lon"], e["lat"], e["zone_id"]),
            ).fetchone()
            or (None,) * 3
        )
        assert inside and kind == e["zone_kind"] and kind in PROTECTED, e
        assert _check_stop(conn, e) >= 240
        assert (
            _one(
                conn,
                "SELECT count(*) FROM zones WHERE kind = 'designated_parking' AND"
                " ST_DWithin(geom::geography, ST_SetSRID(ST_MakePoint(%s, %s), 4326)::geography,"
                " 100)",
                (e["lon"], e["lat"]),
            )
            == 0
        )
        if hours:
            local = [
                dt.datetime.fromisoformat(e[k]).astimezone(dt.timezone(dt.timedelta(hours=8)))
                for k in ("start", "end")
            ]
            lo, hi = hours.split("-")
            assert lo <= local[0].strftime("%H:%M") and local[1].strftime("%H:%M") < hi, e


def test_overspeed_episodes_are_exact(conn: psycopg.Connection, truth: dict[str, Any]) -> None:
    events = _events(truth, "overspeed")
    assert events
    for e in events:
        assert e["limit_kmh"] == (80 if e["road_class"] == "expressway" else 60)
        fixes = conn.execute(
            "SELECT ts, speed_kmh FROM positions WHERE vehicle_id = %s AND ts BETWEEN"
            " %s::timestamptz - interval '30 s' AND %s::timestamptz + interval '30 s' ORDER BY ts",
            (e["vehicle_id"], e["start"], e["end"]),
        ).fetchall()
        inside, edges = fixes[1:-1], (fixes[0], fixes[-1])
        assert all(s > e["limit_kmh"] for _, s in inside), e
        assert all(s <= e["limit_kmh"] for _, s in edges), e
        assert (inside[-1][0] - inside[0][0]).total_seconds() >= 120
        # The nearest road to the episode's middle has the recorded class.
        road = _one(
            conn,
            "SELECT road_class FROM roads ORDER BY geom <-> ST_SetSRID(ST_MakePoint(%s, %s), 4326)"
            " LIMIT 1",
            (e["lon"], e["lat"]),
        )
        assert road == e["road_class"]


def test_lot_stops_are_inside_lots(conn: psycopg.Connection, truth: dict[str, Any]) -> None:
    for e in _events(truth, "lot_stop")[:300]:
        assert _one(
            conn,
            "SELECT ST_Within(ST_SetSRID(ST_MakePoint(%s, %s), 4326), geom) FROM"
            " zones WHERE id = %s AND kind = 'designated_parking'",
            (e["lon"], e["lat"], e["zone_id"]),
        )


def test_noise_fixes_are_rejected_with_their_reason(
    conn: psycopg.Connection, truth: dict[str, Any]
) -> None:
    stored = {
        (v, ts.isoformat(), r)
        for v, ts, r in conn.execute("SELECT vehicle_id, ts, reason FROM position_rejects")
    }
    expected = {
        (n["vehicle_id"], dt.datetime.fromisoformat(n["ts"]).isoformat(), n["reason"])
        for n in truth["noise"]
        if "reason" in n
    }
    assert expected and stored == expected
    late = [n for n in truth["noise"] if n["kind"] == "out_of_order"]
    kept = _one(
        conn,
        "SELECT count(*) FROM positions p JOIN unnest(%s::int[], %s::timestamptz[])"
        " AS l(v, ts) ON p.vehicle_id = l.v AND p.ts = l.ts",
        ([n["vehicle_id"] for n in late], [n["ts"] for n in late]),
    )
    assert kept == len(late)  # late delivery is not a reason to drop a fix
    dup = next(n for n in truth["noise"] if n["kind"] == "duplicate")
    assert (
        _one(
            conn,
            "SELECT count(*) FROM positions WHERE vehicle_id = %s AND ts = %s",
            (dup["vehicle_id"], dup["ts"]),
        )
        == 1
    )


def test_tracks_are_physically_plausible(conn: psycopg.Connection) -> None:
    """Consecutive stored fixes never imply > 110 km/h and headings follow the motion."""
    worst = _one(
        conn,
        "SELECT max(d / 30 * 3.6) FROM (SELECT ST_Distance(ST_SetSRID(ST_MakePoint(lon, lat),"
        " 4326)::geography, ST_SetSRID(ST_MakePoint(lag(lon) OVER w, lag(lat) OVER w), 4326)"
        "::geography) d, ts - lag(ts) OVER w AS gap FROM positions WHERE vehicle_id <= 10"
        " WINDOW w AS (PARTITION BY vehicle_id ORDER BY ts)) x WHERE gap = interval '30 s'",
    )
    assert 40 < worst < 110
    rows = conn.execute(
        "SELECT lon, lat, heading, lead(lon) OVER w, lead(lat) OVER w, speed_kmh FROM positions"
        " WHERE vehicle_id = 5 WINDOW w AS (ORDER BY ts) ORDER BY ts"
    ).fetchall()
    agree = total = 0
    for lon, lat, heading, nlon, nlat, speed in rows:
        if nlon is None or speed < 20:
            continue
        dx = (nlon - lon) * math.cos(math.radians(lat))
        bearing = math.degrees(math.atan2(dx, nlat - lat)) % 360
        total += 1
        agree += min(abs(bearing - heading), 360 - abs(bearing - heading)) < 45
    assert total == 0 or agree / total > 0.8


# -- API behaviour --------------------------------------------------------------------------


def test_seeding_a_loaded_database_needs_replace(city_url: str, tmp_path: Path) -> None:
    assert not database_is_empty(city_url)
    with pytest.raises(NotEmpty, match="--replace"):
        seed_demo_city(city_url, scale=TEST_SCALE, seed=TEST_SEED, out_dir=tmp_path, progress=False)


def _sibling(url: str, suffix: str) -> tuple[str, str]:
    parts = urlsplit(url)
    name = parts.path.lstrip("/") + suffix
    return urlunsplit(parts._replace(path="/" + name)), urlunsplit(parts._replace(path="/postgres"))


CHECKSUMS = {
    "enterprises": "SELECT md5(string_agg(concat_ws('|', id, credit_code, name, category,"
    " district, park, ST_AsEWKB(geom), ST_AsEWKB(site_geom), licence_expiry, diagnosis_score),"
    " ',' ORDER BY id)) FROM enterprises",
    "substances": "SELECT md5(string_agg(concat_ws('|', hazard_source_id, cas, q), ','"
    " ORDER BY id)) FROM hazard_source_substances",
    "zones": "SELECT md5(string_agg(concat_ws('|', id, kind, ST_AsEWKB(geom)), ',' ORDER BY id))"
    " FROM zones",
    "positions": "SELECT md5(string_agg(concat_ws('|', vehicle_id, ts, lon, lat, speed_kmh,"
    " heading), ',' ORDER BY vehicle_id, ts)) FROM positions",
}


def test_same_seed_same_city(city_url: str, truth: dict[str, Any], tmp_path: Path) -> None:
    other, admin = _sibling(city_url, "_det")
    name = urlsplit(other).path.lstrip("/")
    with psycopg.connect(admin, autocommit=True) as c:
        c.execute(f'DROP DATABASE IF EXISTS "{name}"')
        c.execute(f'CREATE DATABASE "{name}"')
    try:
        upgrade(other)
        assert database_is_empty(other)
        report = seed_demo_city(
            other,
            scale=TEST_SCALE,
            seed=TEST_SEED,
            out_dir=tmp_path,
            progress=False,
            day=dt.date.fromisoformat(truth["day"]),
        )
        again = json.loads(report.ground_truth.read_text())
        assert again["events"] == truth["events"] and again["noise"] == truth["noise"]
        with psycopg.connect(city_url) as a, psycopg.connect(other) as b:
            for table, sql in CHECKSUMS.items():
                assert _one(a, sql) == _one(b, sql), table
        # A different seed gives a different city.
        seed_demo_city(
            other,
            scale=TEST_SCALE,
            seed=TEST_SEED + 1,
            out_dir=tmp_path / "x",
            progress=False,
            replace=True,
            day=dt.date.fromisoformat(truth["day"]),
        )
        with psycopg.connect(city_url) as a, psycopg.connect(other) as b:
            assert _one(a, CHECKSUMS["enterprises"]) != _one(b, CHECKSUMS["enterprises"])
            assert _one(b, "SELECT count(*) FROM enterprises") == _one(
                a, "SELECT count(*) FROM enterprises"
            )
    finally:
        with psycopg.connect(admin, autocommit=True) as c:
            c.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def test_population_raster(city_dir: Path) -> None:
    import rasterio

    with rasterio.open(city_dir / "population.tif") as src:
        assert src.crs.to_epsg() == 4326
        assert src.res == pytest.approx((0.001, 0.001))
        assert src.bounds.left == pytest.approx(121.2) and src.bounds.top == pytest.approx(30.2)
        people = src.read(1)
    assert people.min() >= 0 and people.max() > 100 and people.sum() > 1e6


# -- the filters and the COPY encoder on their own ------------------------------------------


def test_fix_filters_reason_codes() -> None:
    t0 = np.datetime64("2026-01-01T00:00:00", "s")
    ts = t0 + np.array([0, 30, 60, 90, 60, 120, 150, 10**6], dtype="timedelta64[s]")
    lon = np.array([121.5, 121.5003, 121.9, 121.5009, 121.5006, 0.0, 121.5015, 121.5])
    lat = np.full(8, 29.9)
    lat[5] = 0.0
    vid = np.ones(8, dtype=np.int64)
    codes = fix_filters.classify_fixes(vid, ts, lon, lat, now=t0 + np.timedelta64(1000, "s"))
    names = [fix_filters.REASONS[c] for c in codes]
    # index 2 jumps ~38 km; index 3 is judged against index 1 (the last good fix), not the jump;
    # index 4 repeats the (vehicle, ts) of index 2, received later: a duplicate.
    assert names == ["ok", "ok", "jump", "ok", "duplicate", "invalid_coordinates", "ok", "future"]
    # Exact duplicate received later, and a fix delivered out of order: first copy wins.
    codes = fix_filters.classify_fixes(
        np.array([1, 1, 1, 2]),
        ts[[1, 0, 1, 0]],
        lon[[1, 0, 1, 0]],
        lat[[1, 0, 1, 0]],
        now=t0 + 10**4,
    )
    assert [fix_filters.REASONS[c] for c in codes] == ["ok", "ok", "duplicate", "ok"]
    codes = fix_filters.classify_fixes(
        np.array([3]),
        ts[:1],
        lon[:1],
        lat[:1],
        now=t0 + 10**4,
        last_good={3: (t0 - np.timedelta64(30, "s"), 122.1, 29.9)},
    )
    assert fix_filters.REASONS[codes[0]] == "jump"


def test_pgcopy_round_trip(database_url: str) -> None:
    ts = np.array(["2026-01-01T00:00:00.5", "1999-12-31T23:59:59"], dtype="datetime64[us]")
    data = pgcopy.encode(
        [
            ("int4", np.array([1, -2], dtype=np.int32)),
            ("timestamptz", ts),
            ("float8", np.array([121.123456789, -0.5])),
            ("float4", np.array([1.5, 400.0], dtype=np.float32)),
            ("int2", np.array([359, 0], dtype=np.int16)),
            ("int8", np.array([2**40, 7])),
            ("bool", np.array([True, False])),
        ]
    )
    with psycopg.connect(database_url) as c:
        c.execute(
            "CREATE TEMP TABLE t (a int, b timestamptz, c float8, d real, e smallint,"
            " f bigint, g bool)"
        )
        with c.cursor() as cur, cur.copy("COPY t FROM STDIN (FORMAT BINARY)") as cp:
            cp.write(data)
        rows = c.execute("SELECT * FROM t ORDER BY a DESC").fetchall()
    utc = dt.UTC
    assert rows == [
        (
            1,
            dt.datetime(2026, 1, 1, 0, 0, 0, 500000, tzinfo=utc),
            121.123456789,
            1.5,
            359,
            2**40,
            True,
        ),
        (-2, dt.datetime(1999, 12, 31, 23, 59, 59, tzinfo=utc), -0.5, 400.0, 0, 7, False),
    ]


def test_fixes_carry_their_resolution_8_cell(conn: psycopg.Connection) -> None:
    import h3

    rows = conn.execute(
        "SELECT lon, lat, h3_r8 FROM positions ORDER BY vehicle_id, ts LIMIT 2000"
    ).fetchall()
    assert rows and all(r[2] is not None for r in rows)
    for lon, lat, cell in rows:
        assert h3.int_to_str(cell) == h3.latlng_to_cell(lat, lon, 8)
    assert _one(conn, "SELECT count(*) FROM positions WHERE h3_r8 IS NULL") == 0


# -- the live layer (layers/demo_city/live.py) ---------------------------------------------


def test_readings_cover_the_last_24_h_every_5_minutes(
    conn: psycopg.Connection, truth: dict[str, Any]
) -> None:
    live = truth["live"]
    now = dt.datetime.fromisoformat(live["now"])
    n_points = _one(conn, "SELECT count(*) FROM monitoring_points")
    rows = conn.execute(
        "SELECT point_id, count(*), min(ts), max(ts),"
        " count(DISTINCT extract(epoch FROM ts)::int8 % 300)"
        " FROM readings GROUP BY point_id"
    ).fetchall()
    assert len(rows) == n_points
    start = now - dt.timedelta(seconds=live["cadence_s"] * (live["samples"] - 1))
    for _, n, first, last, phases in rows:
        assert (n, first, last, phases) == (live["samples"], start, now, 1)
    assert live["samples"] == 288 and live["cadence_s"] == 300


def test_planted_alarms_are_open_with_their_colour(
    conn: psycopg.Connection, truth: dict[str, Any]
) -> None:
    alarms = truth["live"]["alarms"]
    assert len(alarms) >= 3
    for a in alarms:
        color, level, n_open = conn.execute(
            "SELECT mp.live_color, s.level, (SELECT count(*) FROM alarms"
            " WHERE point_id = mp.id AND cleared_at IS NULL)"
            " FROM monitoring_points mp JOIN monitoring_state s ON s.point_id = mp.id"
            " WHERE mp.id = %s",
            (a["point_id"],),
        ).fetchone()
        assert (color, level, n_open) == (a["color"], a["level"], 1), a
    planted = [a["point_id"] for a in alarms]
    # Everything else reads normal: no other alarm, every other point blue.
    assert _one(conn, "SELECT count(*) FROM alarms WHERE NOT point_id = ANY(%s)", (planted,)) == 0
    assert (
        _one(
            conn,
            "SELECT count(*) FROM monitoring_points WHERE NOT id = ANY(%s)"
            " AND live_color IS DISTINCT FROM 'blue'",
            (planted,),
        )
        == 0
    )
    assert {a["kind"] for a in alarms} >= {"gas_flammable"}


def test_a_red_point_makes_its_enterprise_red_monitoring_point(
    conn: psycopg.Connection, truth: dict[str, Any]
) -> None:
    red = [a for a in truth["live"]["alarms"] if a["color"] == "red"]
    assert len(red) >= 2 and len({a["hazard_source_id"] for a in red}) == 1
    reasons = _one(
        conn, "SELECT risk_reasons::text FROM enterprises WHERE id = %s", (red[0]["enterprise_id"],)
    )
    assert "red_monitoring_point" in reasons


def test_hidden_dangers_tasks_and_scores_are_stored(
    conn: psycopg.Connection, truth: dict[str, Any]
) -> None:
    live = truth["live"]
    dangers = live["hidden_dangers"]
    assert len(dangers) >= 3 and any(d["is_major"] and d["status"] != "rectified" for d in dangers)
    # The supervision phase's major dangers have a section of their own (tests/test_findings.py).
    planted = [d["id"] for d in truth["supervision"]["major_dangers"]]
    stored = conn.execute(
        "SELECT enterprise_id, title, is_major, status, deadline, rectified_at IS NOT NULL"
        " FROM hidden_dangers WHERE NOT (id = ANY(%s)) ORDER BY id",
        (planted,),
    ).fetchall()
    assert [
        (d["enterprise_id"], d["title"], d["is_major"], d["status"], d["deadline"], d["rectified"])
        for d in dangers
    ] == [(e, t, m, s, dl.isoformat(), r) for e, t, m, s, dl, r in stored]
    assert _one(conn, "SELECT count(*) FROM inspection_tasks") == live["inspection_tasks"]
    got = dict(
        conn.execute(
            "SELECT enterprise_id, sum(points)::int FROM score_events"
            " WHERE rule_set = 'xiaoshan' GROUP BY enterprise_id"
        ).fetchall()
    )
    assert got == {s["enterprise_id"]: s["points"] for s in live["score"]}
    assert any(s["points"] >= 6 for s in live["score"])
