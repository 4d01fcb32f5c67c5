"""Consequence-zone lookups at their band edges, and the dissolve into overlay zones in PostGIS.

Database tests plant everything around 120.90 E, 29.30 N — outside the demo city's box
(121.2–122.2 E, 29.6–30.2 N) and south of tests/test_pipeline_risk.py's area — and remove it.
"""

from __future__ import annotations

import asyncio
import math
from collections.abc import Awaitable, Callable, Iterator
from typing import Any, TypeVar

import psycopg
import pytest
from psycopg.rows import dict_row

from layers.core.colors import RISK_COLORS
from layers.risk.consequence import (
    HAZARD_SOURCE_RADII,
    PIPELINE_RADII,
    HazardClass,
    ZoneRadii,
    hazard_class_of,
    hazard_source_radii,
    pipeline_radii,
    potential_impact_radius_m,
)
from layers.risk.overlays import dissolve_overlays, recompute_overlays
from layers.risk.pipelines import recompute_pipelines

T = TypeVar("T")
LON, LAT = 120.90, 29.30
PREFIX = "TOV-"
#: Fake source ids for hand-planted zones (consequence_zones has no foreign key).
ZONE_A, ZONE_B = 990_001, 990_002
#: A 32-gon (ST_Buffer's default 8 segments a quadrant) holds this share of its circle's area.
POLYGON_SHARE = 16 / math.pi * math.sin(math.pi / 16)

_AT = (
    "ST_Project(ST_Project(ST_SetSRID(ST_Point(%(lon)s, %(lat)s), 4326)::geography,"
    " %(east)s, radians(90)), %(north)s, 0)::geometry"
)


def _run(url: str, work: Callable[[psycopg.AsyncConnection], Awaitable[T]]) -> T:
    async def go() -> T:
        async with await psycopg.AsyncConnection.connect(url) as conn:
            return await work(conn)

    return asyncio.run(go())


def _point(db: psycopg.Connection, east: float, north: float = 0) -> str:
    row = db.execute(
        f"SELECT ST_AsEWKT({_AT})", {"lon": LON, "lat": LAT, "east": east, "north": north}
    ).fetchone()
    assert row is not None
    return str(row[0])


# -- lookup tables ---------------------------------------------------------------------------
def test_potential_impact_radius_matches_the_imperial_formula() -> None:
    # ASME B31.8S: r = 0.69 · d · √p ft; 30 in at 1,000 psi → 654.6 ft = 199.5 m.
    expected_m = 0.69 * 30 * math.sqrt(1000) * 0.3048
    assert potential_impact_radius_m(30 * 25.4, 1000 / 145.0377) == pytest.approx(expected_m)


@pytest.mark.parametrize(
    ("diameter", "pressure", "radii"),
    [
        (300, 4.0, (76, 107, 169, 190)),  # both at their upper edges: band (300, 4.0)
        (300.01, 4.0, (126, 178, 281, 316)),  # next diameter band (500, 4.0)
        (300, 4.01, (119, 169, 266, 299)),  # next pressure band (300, 10)
        (50, 0.0, (8, 12, 18, 20)),  # the smallest band (100, 0.4)
        (100, 0.4, (8, 12, 18, 20)),
        (1422, 16, (713, 1008, 1593, 1792)),  # the top band …
        (2000, 40, (713, 1008, 1593, 1792)),  # … takes everything above it
    ],
)
def test_pipeline_radii_at_band_edges(
    diameter: float, pressure: float, radii: tuple[int, ...]
) -> None:
    assert pipeline_radii(diameter, pressure) == ZoneRadii(*radii)


def test_pipeline_table_follows_the_heat_flux_levels() -> None:
    # Red at 10 kW/m², orange 5, yellow 2, blue 1.58: r = PIR · √(15.77 / q), rounded up.
    pir = potential_impact_radius_m(800, 10.0)
    got = pipeline_radii(800, 10.0)
    for color, flux in zip(RISK_COLORS, (10.0, 5.0, 2.0, 1.58), strict=True):
        assert got.of(color) == math.ceil(pir * math.sqrt(15.77 / flux))


@pytest.mark.parametrize(
    ("quantity", "radii"),
    [
        (0.5, (40, 65, 170, 340)),  # band ≤ 1 t
        (1.0, (40, 65, 170, 340)),
        (1.001, (87, 141, 367, 733)),  # band ≤ 10 t
        (10.0, (87, 141, 367, 733)),
        (10.001, (148, 240, 627, 1253)),  # band ≤ 50 t
        (1000.0, (400, 650, 1700, 3400)),  # yellow = 17 · (10⁶ kg)^⅓ = 1,700 m (EPA)
        (25000.0, (400, 650, 1700, 3400)),  # capped at the single-vessel band
    ],
)
def test_flammable_gas_radii_at_quantity_edges(quantity: float, radii: tuple[int, ...]) -> None:
    assert hazard_source_radii({HazardClass.FLAMMABLE_GAS: quantity}) == ZoneRadii(*radii)


def test_class_factors_and_the_widest_class_wins() -> None:
    gas = HAZARD_SOURCE_RADII[(HazardClass.FLAMMABLE_GAS, 1)]
    toxic = hazard_source_radii({HazardClass.TOXIC_GAS: 10})
    liquid = hazard_source_radii({HazardClass.FLAMMABLE_LIQUID: 10})
    assert toxic == ZoneRadii(173, 281, 733, 1466)  # × 2 (ceil of unrounded figures)
    assert liquid == ZoneRadii(44, 71, 184, 367)  # × 0.5
    assert toxic.yellow == pytest.approx(2 * gas.yellow, abs=1)
    # A unit with 10 t of toxic gas and 900 t of a flammable liquid: the liquid reaches
    # farther (band ≤ 1,000 t × 0.5 beats band ≤ 10 t × 2); with 100 t, the gas does.
    mixed = hazard_source_radii({HazardClass.TOXIC_GAS: 10, HazardClass.FLAMMABLE_LIQUID: 900})
    assert mixed == ZoneRadii(200, 325, 850, 1700)
    mixed = hazard_source_radii({HazardClass.TOXIC_GAS: 10, HazardClass.FLAMMABLE_LIQUID: 100})
    assert mixed == toxic
    assert hazard_source_radii({}) is None
    assert hazard_source_radii({HazardClass.OTHER: 0.0}) is None


def test_every_table_entry_is_nested_red_inside_blue() -> None:
    for radii in [*PIPELINE_RADII.values(), *HAZARD_SOURCE_RADII.values()]:
        assert 0 < radii.red < radii.orange < radii.yellow < radii.blue


@pytest.mark.parametrize(
    ("code", "cas", "name", "expected"),
    [
        ("toxic_gas", "7782-50-5", "液氯", HazardClass.TOXIC_GAS),
        ("J1", None, "x", HazardClass.TOXIC_GAS),  # GB 18218 J: acute toxicity
        ("W1.1", None, "x", HazardClass.FLAMMABLE_GAS),  # explosives share the blast row
        ("W2", None, "x", HazardClass.FLAMMABLE_GAS),
        ("W5.4", None, "x", HazardClass.FLAMMABLE_LIQUID),
        ("W4", None, "x", HazardClass.OTHER),
        (None, "7664-41-7", None, HazardClass.TOXIC_GAS),  # ammonia by CAS
        (None, "67-56-1", None, HazardClass.FLAMMABLE_LIQUID),  # methanol by CAS
        (None, None, "天然气", HazardClass.FLAMMABLE_GAS),  # keyword, state unknown → gas
        (None, None, "氮气", HazardClass.OTHER),
        (None, None, "不明介质", HazardClass.TOXIC_GAS),  # unknown → the worst
    ],
)
def test_hazard_class_of(
    code: str | None, cas: str | None, name: str | None, expected: HazardClass
) -> None:
    assert hazard_class_of(code, cas, name) is expected


# -- dissolve --------------------------------------------------------------------------------
def _plant_zone(db: psycopg.Connection, source: int, color: str, east: float, r: float) -> None:
    db.execute(
        "INSERT INTO consequence_zones (source_kind, source_id, color, radius_m, geom)"
        " VALUES ('hazard_source', %s, %s, %s,"
        " ST_Multi(ST_Buffer(ST_GeomFromEWKT(%s)::geography, %s)::geometry))",
        (source, color, r, _point(db, east), r),
    )


def _overlays_near(
    db: psycopg.Connection, east: float, radius: float, north: float = 0
) -> list[dict[str, Any]]:
    cur = db.cursor(row_factory=dict_row)
    return cur.execute(
        "SELECT id, color, sources, area_m2, ST_AsEWKB(geom) AS geom FROM overlay_zones"
        " WHERE ST_DWithin(geom::geography, ST_GeomFromEWKT(%s)::geography, %s)"
        " ORDER BY color, id",
        (_point(db, east, north), radius),
    ).fetchall()


@pytest.fixture()
def planted_zones(database_url: str, db: psycopg.Connection) -> Iterator[None]:
    def wipe() -> None:
        db.execute("DELETE FROM consequence_zones WHERE source_id = ANY(%s)", ([ZONE_A, ZONE_B],))

    wipe()
    # A: red 100 m and yellow 300 m around x = 0; B: yellow 300 m around x = 350 m.
    # B's yellow reaches x = 50 m, inside A's red (x ≤ 100 m): that overlap must be red.
    _plant_zone(db, ZONE_A, "red", 0, 100)
    _plant_zone(db, ZONE_A, "yellow", 0, 300)
    _plant_zone(db, ZONE_B, "yellow", 350, 300)
    yield
    wipe()
    _run(database_url, dissolve_overlays)


def test_overlap_takes_the_worst_colour_and_lists_its_sources(
    database_url: str, db: psycopg.Connection, planted_zones: None
) -> None:
    _run(database_url, dissolve_overlays)
    rows = _overlays_near(db, 175, 500)
    assert sorted(r["color"] for r in rows) == ["red", "yellow"]
    red = next(r for r in rows if r["color"] == "red")
    yellow = next(r for r in rows if r["color"] == "yellow")
    a, b = {"kind": "hazard_source", "id": ZONE_A}, {"kind": "hazard_source", "id": ZONE_B}
    assert red["sources"] == [a]
    assert yellow["sources"] == [a, b]

    def check(sql: str, *params: Any) -> Any:
        row = db.execute(sql, params).fetchone()
        assert row is not None
        return row[0]

    # The red polygon is A's whole red disc, overlap included.
    assert red["area_m2"] == pytest.approx(math.pi * 100**2 * POLYGON_SHARE, rel=1e-3)
    # x = 75 m lies in A's red and in B's yellow: red holds it, yellow does not.
    inside = _point(db, 75)
    assert check("SELECT ST_Intersects(%s::geometry, ST_GeomFromEWKT(%s))", red["geom"], inside)
    assert not check(
        "SELECT ST_Intersects(%s::geometry, ST_GeomFromEWKT(%s))", yellow["geom"], inside
    )
    # Yellow and red share a boundary but no area; together they cover both yellow discs.
    shared = check(
        "SELECT ST_Area(ST_Intersection(%s::geometry, %s::geometry)::geography)",
        red["geom"],
        yellow["geom"],
    )
    assert shared < 0.01
    union = check(
        "SELECT ST_Area(ST_Union(geom)::geography) FROM consequence_zones"
        " WHERE source_id = ANY(%s) AND color = 'yellow'",
        [ZONE_A, ZONE_B],
    )
    assert red["area_m2"] + yellow["area_m2"] == pytest.approx(union, rel=1e-6)
    assert yellow["area_m2"] == pytest.approx(
        check("SELECT ST_Area(%s::geometry::geography)", yellow["geom"]), rel=1e-9
    )


def test_unchanged_zones_keep_their_overlay_rows(
    database_url: str, db: psycopg.Connection, planted_zones: None
) -> None:
    _run(database_url, dissolve_overlays)
    before = [r["id"] for r in _overlays_near(db, 175, 500)]
    count, added, removed = _run(database_url, dissolve_overlays)
    assert (added, removed) == ([], [])
    assert [r["id"] for r in _overlays_near(db, 175, 500)] == before
    assert count >= 2


# -- end to end: hazard sources and pipeline segments ----------------------------------------
@pytest.fixture()
def planted_city(database_url: str, db: psycopg.Connection) -> Iterator[dict[str, int]]:
    def wipe() -> None:
        db.execute("DELETE FROM enterprises WHERE credit_code = '91330200TD0000001X'")
        db.execute("DELETE FROM pipelines WHERE code LIKE %s", (PREFIX + "%",))

    wipe()
    ent = db.execute(
        "INSERT INTO enterprises (credit_code, name, category, is_hazmat, geom)"
        " VALUES ('91330200TD0000001X', 'overlay test', 'storage', true, ST_GeomFromEWKT(%s))"
        " RETURNING id",
        (_point(db, 3000),),
    ).fetchone()
    assert ent is not None
    source = db.execute(
        "INSERT INTO hazard_sources (enterprise_id, code, unit_name, unit_kind, geom)"
        " SELECT %s, 'TOV-HS', 'LPG tanks', 'storage',"
        " ST_Multi(ST_Buffer(geom::geography, 30)::geometry) FROM enterprises WHERE id = %s"
        " RETURNING id",
        (ent[0], ent[0]),
    ).fetchone()
    assert source is not None
    db.execute(
        "INSERT INTO hazard_source_substances (hazard_source_id, name, cas, q, hazard_class)"
        " VALUES (%s, '液化石油气', '68476-85-7', 8, 'W2')",  # 8 t flammable gas: band ≤ 10 t
        (source[0],),
    )
    pipe = db.execute(
        "INSERT INTO pipelines (code, substance, diameter_mm, pressure_mpa, geom)"
        f" SELECT %(code)s, '天然气', 300, 2.5, ST_MakeLine({_AT}, %(end)s::geometry)"
        " RETURNING id",
        {"code": PREFIX + "P1", "lon": LON, "lat": LAT, "east": 3000, "north": -990,
         "end": _point(db, 3000, 990)},
    ).fetchone()  # fmt: skip
    assert pipe is not None
    yield {"source": source[0], "pipeline": pipe[0]}
    wipe()
    _run(database_url, recompute_overlays)


def test_recompute_builds_zones_from_the_lookup_and_dissolves_them(
    database_url: str, db: psycopg.Connection, planted_city: dict[str, int]
) -> None:
    _run(database_url, lambda conn: recompute_pipelines(conn, [planted_city["pipeline"]]))
    count = _run(database_url, recompute_overlays)
    assert count > 0

    zones = db.execute(
        "SELECT color, radius_m FROM consequence_zones"
        " WHERE source_kind = 'hazard_source' AND source_id = %s",
        (planted_city["source"],),
    ).fetchall()
    assert dict(zones) == dict(ZoneRadii(87, 141, 367, 733).items())
    segments = db.execute(
        "SELECT s.id, z.color, z.radius_m FROM pipeline_segments s"
        " JOIN consequence_zones z ON z.source_kind = 'pipeline_segment' AND z.source_id = s.id"
        " WHERE s.pipeline_id = %s",
        (planted_city["pipeline"],),
    ).fetchall()
    assert len({s for s, _, _ in segments}) == 4  # 1,980 m → 4 segments of 495 m
    assert {(c, r) for _, c, r in segments} == set(pipeline_radii(300, 2.5).items())

    # The tank farm sits on the pipeline: its red disc (87 m) outranks the pipe's yellow and
    # orange, and the red polygon there names both the source and the segments it overlaps.
    rows = _overlays_near(db, 3000, 1)
    assert [r["color"] for r in rows] == ["red"]
    kinds = {s["kind"] for s in rows[0]["sources"]}
    assert kinds == {"hazard_source", "pipeline_segment"}
    assert {"kind": "hazard_source", "id": planted_city["source"]} in rows[0]["sources"]
    # 200 m off the pipe and ≈ 795 m from the tank farm's edge: beyond the pipe's blue ring
    # (190 m) and the farm's (733 m) — open land, no overlay.
    assert _overlays_near(db, 3200, 0, north=800) == []
    # 150 m off the pipe's first segment, far from the farm: inside the pipe's yellow ring
    # (169 m). That yellow polygon is connected to the farm's, so it lists both sources.
    first = db.execute(
        "SELECT id FROM pipeline_segments WHERE pipeline_id = %s AND seq = 1",
        (planted_city["pipeline"],),
    ).fetchone()
    assert first is not None
    rows = _overlays_near(db, 2850, 0, north=-900)
    assert [r["color"] for r in rows] == ["yellow"]
    assert {"kind": "pipeline_segment", "id": first[0]} in rows[0]["sources"]
    assert {"kind": "hazard_source", "id": planted_city["source"]} in rows[0]["sources"]
    # A second run finds nothing to change.
    _, added, removed = _run(database_url, dissolve_overlays)
    assert (added, removed) == ([], [])
