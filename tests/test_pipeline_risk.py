"""Pipeline segments against the real PostGIS: 500 m cuts, targets, colours, live override.

Everything is planted around 120.90 E, 29.40 N — outside the demo city's box (121.2–122.2 E,
29.6–30.2 N), so a seeded city sharing the database cannot reach it — and removed afterwards.
"""

from __future__ import annotations

import asyncio
import itertools
import json
import math
from collections.abc import Awaitable, Callable, Iterator
from typing import Any, TypeVar

import psycopg
import pytest

from layers.core.changes import CHANGE_CHANNEL
from layers.risk.consequence import SubstanceHazard, pipeline_radii, substance_hazard
from layers.risk.pipeline_rules import DEFAULT_RULES, SegmentFacts, likelihood_of, rate_segment
from layers.risk.pipelines import MAX_SEGMENT_M, recompute_pipelines

T = TypeVar("T")
LON, LAT = 120.90, 29.40
PREFIX = "TPR-"

#: A point ``east`` m east and ``north`` m north of (LON, LAT), geodesically.
_AT = (
    "ST_Project(ST_Project(ST_SetSRID(ST_Point(%(lon)s, %(lat)s), 4326)::geography,"
    " %(east)s, radians(90)), %(north)s, 0)::geometry"
)


def _run(url: str, work: Callable[[psycopg.AsyncConnection], Awaitable[T]]) -> T:
    async def go() -> T:
        async with await psycopg.AsyncConnection.connect(url) as conn:
            return await work(conn)

    return asyncio.run(go())


def _recompute(url: str, ids: list[int] | None) -> tuple[int, list[int]]:
    return _run(url, lambda conn: recompute_pipelines(conn, ids))


def _point(db: psycopg.Connection, east: float, north: float) -> str:
    """EWKT of a planted point (kept as text so it can be bound back in)."""
    row = db.execute(
        f"SELECT ST_AsEWKT({_AT})", {"lon": LON, "lat": LAT, "east": east, "north": north}
    ).fetchone()
    assert row is not None
    return str(row[0])


def _pipeline(
    db: psycopg.Connection,
    code: str,
    corners: list[tuple[float, float]],
    substance: str = "天然气",
    cas: str | None = None,
    diameter_mm: float = 300,
    pressure_mpa: float = 2.5,
) -> int:
    points = [_point(db, e, n) for e, n in corners]
    row = db.execute(
        "INSERT INTO pipelines (code, name, substance, cas, diameter_mm, pressure_mpa, geom)"
        " SELECT %s, %s, %s, %s, %s, %s, ST_MakeLine(array_agg(ST_GeomFromEWKT(p) ORDER BY i))"
        " FROM unnest(%s::text[]) WITH ORDINALITY AS u(p, i) RETURNING id",
        (PREFIX + code, f"test {code}", substance, cas, diameter_mm, pressure_mpa, points),
    ).fetchone()
    assert row is not None
    return int(row[0])


def _segments(db: psycopg.Connection, pipeline_id: int) -> list[dict[str, Any]]:
    cur = db.cursor(row_factory=psycopg.rows.dict_row)
    return cur.execute(
        "SELECT id, seq, length_m, likelihood, severity, sensitive_target, color, reasons,"
        " ST_AsEWKT(ST_StartPoint(geom)) AS a, ST_AsEWKT(ST_EndPoint(geom)) AS b"
        " FROM pipeline_segments WHERE pipeline_id = %s ORDER BY seq",
        (pipeline_id,),
    ).fetchall()


def _geodesic_length(db: psycopg.Connection, pipeline_id: int) -> float:
    row = db.execute(
        "SELECT ST_Length(geom::geography) FROM pipelines WHERE id = %s", (pipeline_id,)
    ).fetchone()
    assert row is not None
    return float(row[0])


@pytest.fixture()
def clean(db: psycopg.Connection) -> Iterator[None]:
    def wipe() -> None:
        db.execute("DELETE FROM pipelines WHERE code LIKE %s", (PREFIX + "%",))
        db.execute("DELETE FROM zones WHERE code LIKE %s", (PREFIX + "%",))

    wipe()
    yield
    wipe()


# -- segmentation ----------------------------------------------------------------------------
def test_1200_m_bent_pipeline_gives_three_segments_that_add_up(
    database_url: str, db: psycopg.Connection, clean: None
) -> None:
    pid = _pipeline(db, "bent", [(0, 0), (700, 0), (700, 500)])  # 700 m east, 500 m north
    total = _geodesic_length(db, pid)
    assert total == pytest.approx(1200, abs=0.01)

    count, changed = _recompute(database_url, [pid])
    segs = _segments(db, pid)
    assert count == 3 and [s["seq"] for s in segs] == [1, 2, 3]
    assert sorted(changed) == sorted(s["id"] for s in segs)
    assert all(s["length_m"] <= MAX_SEGMENT_M for s in segs)
    assert [s["length_m"] for s in segs] == pytest.approx([400, 400, 400], abs=0.01)
    assert math.fsum(s["length_m"] for s in segs) == pytest.approx(total, rel=1e-9)
    # Contiguous, from the pipeline's first vertex to its last, the bend kept inside seq 2.
    assert segs[0]["a"] == _point(db, 0, 0) and segs[-1]["b"] == _point(db, 700, 500)
    for left, right in itertools.pairwise(segs):
        assert left["b"] == right["a"]
    bend = db.execute(
        "SELECT ST_DWithin(geom::geography, ST_GeomFromEWKT(%s)::geography, 0.001)"
        " FROM pipeline_segments WHERE pipeline_id = %s AND seq = 2",
        (_point(db, 700, 0), pid),
    ).fetchone()
    assert bend == (True,)


def test_unchanged_pipeline_writes_nothing_and_a_longer_one_keeps_its_ids(
    database_url: str, db: psycopg.Connection, clean: None
) -> None:
    pid = _pipeline(db, "grow", [(0, 0), (1200, 0)])
    _recompute(database_url, [pid])
    before = {s["seq"]: s["id"] for s in _segments(db, pid)}
    assert _recompute(database_url, [pid]) == (3, [])

    db.execute(
        f"UPDATE pipelines SET geom = ST_MakeLine(ST_StartPoint(geom), {_AT}) WHERE id = %(id)s",
        {"lon": LON, "lat": LAT, "east": 1600, "north": 0, "id": pid},
    )
    count, changed = _recompute(database_url, [pid])
    after = _segments(db, pid)
    assert count == 4
    assert {s["seq"]: s["id"] for s in after if s["seq"] <= 3} == before
    assert sorted(changed) == sorted(s["id"] for s in after)  # all four were re-cut
    assert [s["length_m"] for s in after] == pytest.approx([400] * 4, abs=0.01)


def test_long_winding_pipeline_never_exceeds_500_m(
    database_url: str, db: psycopg.Connection, clean: None
) -> None:
    # 23 legs of 180–800 m zigzagging north-east: edges of every length relative to the cuts.
    corners = [(0.0, 0.0)]
    for i in range(23):
        e, n = corners[-1]
        leg = 180 + (i * 137) % 620
        corners.append((e + leg, n + (leg if i % 2 else -leg / 3)))
    pid = _pipeline(db, "zigzag", corners)
    total = _geodesic_length(db, pid)
    count, _ = _recompute(database_url, [pid])
    lengths = [s["length_m"] for s in _segments(db, pid)]
    assert count == math.ceil(total / MAX_SEGMENT_M) == len(lengths)
    assert max(lengths) <= MAX_SEGMENT_M
    assert lengths == pytest.approx([total / count] * count, abs=0.01)
    assert math.fsum(lengths) == pytest.approx(total, rel=1e-9)


# -- colours ---------------------------------------------------------------------------------
def _school(db: psycopg.Connection, east: float, north: float, radius_m: float) -> None:
    db.execute(
        "INSERT INTO zones (code, name, kind, geom) VALUES (%s, '测试小学', 'school',"
        " ST_Multi(ST_Buffer(ST_GeomFromEWKT(%s)::geography, %s)::geometry))",
        (PREFIX + "school", _point(db, east, north), radius_m),
    )


def test_segment_passing_a_school_is_worse_than_the_same_segment_in_open_land(
    database_url: str, db: psycopg.Connection, clean: None
) -> None:
    # Natural gas (flammable by keyword), DN 300, 2.5 MPa: L = 3 (high-pressure class 3,
    # no small-bore step, flammable 0). Yellow zone of the (300 mm, 4.0 MPa) band: 169 m.
    assert pipeline_radii(300, 2.5).yellow == 169
    near = _pipeline(db, "near", [(0, 0), (1200, 0)])
    far = _pipeline(db, "far", [(0, 5000), (1200, 5000)])
    # A school of radius 20 m straddling the line at 600 m: its edge is 180 m from the
    # first and last segments (outside their 169 m zone), inside the middle one.
    _school(db, 600, 0, 20)
    _recompute(database_url, [near, far])
    near_segs, far_segs = _segments(db, near), _segments(db, far)

    middle = near_segs[1]
    assert middle["sensitive_target"] == "school"
    # S = 2 (flammable) + 3 (school) = 5; R = 15 → orange.
    assert (middle["likelihood"], middle["severity"], middle["color"]) == (3, 5, "orange")
    codes = [r["code"] for r in middle["reasons"]]
    assert codes[0] == "ls_matrix" and "sensitive_target" in codes
    target = next(r for r in middle["reasons"] if r["code"] == "sensitive_target")
    assert "测试小学" in target["zh"] and "school" in target["en"]

    open_land = far_segs[1]
    assert open_land["sensitive_target"] is None
    # S = 2; R = 6 → yellow.
    assert (open_land["likelihood"], open_land["severity"], open_land["color"]) == (
        3,
        2,
        "yellow",
    )
    assert "no_sensitive_target" in [r["code"] for r in open_land["reasons"]]
    # The segments next to the school are out of reach of its zone.
    assert [s["sensitive_target"] for s in near_segs] == [None, "school", None]


def test_open_pressure_alarm_forces_red_with_its_reason_and_clearing_restores(
    database_url: str, db: psycopg.Connection, clean: None
) -> None:
    pid = _pipeline(db, "alarm", [(0, 10000), (1200, 10000)])
    _recompute(database_url, [pid])
    assert {s["color"] for s in _segments(db, pid)} == {"yellow"}

    point = db.execute(
        "INSERT INTO monitoring_points (code, pipeline_id, kind, unit, limit_h, limit_hh, geom)"
        " VALUES (%s, %s, 'pressure', 'MPa', 2.6, 2.8, ST_GeomFromEWKT(%s)) RETURNING id",
        (PREFIX + "MP1", pid, _point(db, 0, 10000)),
    ).fetchone()
    assert point is not None
    alarm = db.execute(
        "INSERT INTO alarms (point_id, level, color, raised_at, peak_value)"
        " VALUES (%s, 1, 'yellow', now(), 2.65) RETURNING id",
        (point[0],),
    ).fetchone()
    assert alarm is not None

    listener = psycopg.connect(database_url, autocommit=True)
    listener.execute(f"LISTEN {CHANGE_CHANNEL}")
    count, changed = _recompute(database_url, [pid])
    segs = _segments(db, pid)
    assert count == 3 and sorted(changed) == sorted(s["id"] for s in segs)
    for seg in segs:
        assert seg["color"] == "red"
        assert (seg["likelihood"], seg["severity"]) == (3, 2)  # the matrix alone says yellow
        first = seg["reasons"][0]
        assert first["code"] == "live_alarm" and PREFIX + "MP1" in first["en"]
        assert seg["reasons"][1]["code"] == "ls_matrix" and "yellow" in seg["reasons"][1]["en"]
    notes = [  # other notices (hexagon re-rolls of the shared server) may arrive too
        p
        for p in (json.loads(n.payload) for n in listener.notifies(timeout=2))
        if p.get("layer") == "pipeline_segments"
    ]
    listener.close()
    assert notes[0]["layer"] == "pipeline_segments"
    assert notes[0]["ids"] == sorted(s["id"] for s in segs)

    db.execute("UPDATE alarms SET cleared_at = now() WHERE id = %s", (alarm[0],))
    _recompute(database_url, [pid])
    assert {s["color"] for s in _segments(db, pid)} == {"yellow"}


# -- the rule table, without a database ------------------------------------------------------
FLAMMABLE = SubstanceHazard(flammable=True, toxic=False, basis="catalogue")


@pytest.mark.parametrize(
    ("pressure", "expected"),
    [(0.0, 1), (0.4, 1), (0.41, 2), (1.6, 2), (1.61, 3), (4.0, 3), (4.01, 4), (10.0, 4),
     (10.01, 5), (16.0, 5), (60.0, 5)],
)  # fmt: skip
def test_likelihood_pressure_edges_are_inclusive_upper_bounds(
    pressure: float, expected: int
) -> None:
    assert likelihood_of(pressure, 300, FLAMMABLE, DEFAULT_RULES)[0] == expected


def test_likelihood_small_bore_and_substance_steps() -> None:
    assert likelihood_of(1.0, 126.9, FLAMMABLE, DEFAULT_RULES)[0] == 3  # 2 + small bore
    assert likelihood_of(1.0, 127.0, FLAMMABLE, DEFAULT_RULES)[0] == 2
    chlorine = substance_hazard(None, "7782-50-5")
    assert likelihood_of(1.0, 100, chlorine, DEFAULT_RULES)[0] == 4  # 2 + 1 + toxic 1
    nitrogen = substance_hazard("氮气", None)
    assert (nitrogen.flammable, nitrogen.toxic) == (False, False)
    assert likelihood_of(0.3, 200, nitrogen, DEFAULT_RULES)[0] == 1  # 1 − 1, clamped to 1
    assert likelihood_of(20.0, 50, chlorine, DEFAULT_RULES)[0] == 5  # 5 + 1 + 1, clamped


@pytest.mark.parametrize(
    ("substance", "cas", "target", "severity", "color"),
    [
        ("液氯", "7782-50-5", "residential", 5, "red"),  # L 4 × S 5 = 20
        ("液氯", "7782-50-5", None, 3, "orange"),  # 4 × 3 = 12
        ("天然气", None, "hospital", 5, "orange"),  # 3 × 5 = 15
        ("天然气", None, "water_source", 3, "orange"),  # 3 × 3 = 9
        ("氮气", None, "school", 4, "yellow"),  # L 2 × S (inert 1 + 3) = 8
        ("不明介质", None, None, 3, "orange"),  # unknown = toxic and flammable: 4 × 3
    ],
)
def test_worked_examples_of_the_matrix(
    substance: str, cas: str | None, target: str | None, severity: int, color: str
) -> None:
    # DN 100 at 1.0 MPa: pressure class 2 + small bore 1 = 3, + 1 if toxic, − 1 if inert.
    facts = SegmentFacts(1, substance, cas, 100, 1.0, target_kind=target, target_name="x")
    rating = rate_segment(facts)
    flags = substance_hazard(substance, cas)
    likelihood = 3 + (1 if flags.toxic else 0) - (1 if not (flags.toxic or flags.flammable) else 0)
    assert (rating.likelihood, rating.severity) == (likelihood, severity)
    assert rating.color == color
    assert rating.sensitive_target == target


def test_live_red_point_forces_red_and_is_listed_first() -> None:
    facts = SegmentFacts(1, "氮气", None, 200, 0.3, red_points=1, red_point="MP9")
    rating = rate_segment(facts)
    assert (rating.likelihood, rating.severity, rating.color) == (1, 1, "red")
    assert [r["code"] for r in rating.reasons][:2] == ["live_point_red", "ls_matrix"]
    assert all(set(r) == {"code", "zh", "en"} for r in rating.reasons)
