"""The demo city's risk registers (layers/demo_city/registers.py): what is stored, checked in
PostGIS on the rows themselves, against the ground truth and the rules the API applies.

The module seeds a database of its own: the shared test database carries units other tests
add or edit, and this module counts everything.
"""

from __future__ import annotations

import datetime as dt
import json
import re
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import numpy as np
import psycopg
import pytest
from shapely.geometry import box

from geo_api.migrate import upgrade
from layers.core.colors import RISK_COLORS
from layers.core.vocab import CONTROL_TYPES, HAZMAT_CATEGORIES, RISK_UNIT_KINDS
from layers.demo_city import seed_demo_city
from layers.demo_city.enterprises import Enterprise, HazardSource
from layers.demo_city.geography import make_districts
from layers.demo_city.registers import (
    CONTACT_ROLES,
    MAX_UNITS,
    MIN_UNITS,
    Registers,
    make_people,
    make_registers,
)
from layers.risk.units import lec, ls
from tests.conftest import TEST_SCALE, TEST_SEED

MOBILE = re.compile(r"^1[3-9]\d{9}$")


def _sibling(url: str, suffix: str) -> tuple[str, str]:
    parts = urlsplit(url)
    name = parts.path.lstrip("/") + suffix
    return urlunsplit(parts._replace(path="/" + name)), urlunsplit(parts._replace(path="/postgres"))


def _fresh(url: str, admin: str) -> None:
    name = urlsplit(url).path.lstrip("/")
    with psycopg.connect(admin, autocommit=True) as c:
        c.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        c.execute(f'CREATE DATABASE "{name}"')
    upgrade(url)


def _drop(url: str, admin: str) -> None:
    name = urlsplit(url).path.lstrip("/")
    with psycopg.connect(admin, autocommit=True) as c:
        c.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


@pytest.fixture(scope="module")
def reg_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("registers")


@pytest.fixture(scope="module")
def reg_url(database_url: str, reg_dir: Path) -> Iterator[str]:
    url, admin = _sibling(database_url, "_registers")
    _fresh(url, admin)
    seed_demo_city(url, scale=TEST_SCALE, seed=TEST_SEED, out_dir=reg_dir, progress=False)
    yield url
    _drop(url, admin)


@pytest.fixture(scope="module")
def truth(reg_url: str, reg_dir: Path) -> dict[str, Any]:
    return dict(json.loads((reg_dir / "ground_truth.json").read_text())["registers"])


@pytest.fixture(scope="module")
def conn(reg_url: str) -> Iterator[psycopg.Connection]:
    with psycopg.connect(reg_url, autocommit=True) as c:
        yield c


def _one(conn: psycopg.Connection, sql: str, params: Any = None) -> Any:
    row = conn.execute(sql, params).fetchone()
    assert row is not None
    return row[0]


# -- how many, where -------------------------------------------------------------------------


def test_every_hazmat_site_has_3_to_12_units(conn: psycopg.Connection) -> None:
    rows = conn.execute(
        "SELECT e.id, e.category, count(u.id) FROM enterprises e"
        " LEFT JOIN risk_units u ON u.enterprise_id = e.id"
        " WHERE e.is_hazmat AND e.site_geom IS NOT NULL GROUP BY e.id"
    ).fetchall()
    assert len(rows) >= 24  # Counts.for_scale's minimum of hazmat enterprises
    assert all(MIN_UNITS <= n <= MAX_UNITS for _, _, n in rows), rows
    assert {r[1] for r in rows} <= set(HAZMAT_CATEGORIES)
    assert len({n for *_, n in rows}) >= 4  # counts vary with category and site size
    others = _one(
        conn,
        "SELECT count(*) FROM risk_units u JOIN enterprises e ON e.id = u.enterprise_id"
        " WHERE NOT e.is_hazmat OR e.site_geom IS NULL",
    )
    assert others == 0


def test_units_lie_inside_their_site_and_do_not_overlap(conn: psycopg.Connection) -> None:
    outside = conn.execute(
        "SELECT u.id FROM risk_units u JOIN enterprises e ON e.id = u.enterprise_id"
        " WHERE NOT ST_CoveredBy(u.geom, ST_Buffer(e.site_geom, 1e-7))"
        "    OR NOT ST_IsValid(u.geom) OR ST_Area(u.geom::geography) < 100"
    ).fetchall()
    assert outside == []
    # Units keep clear of the fence (FENCE_M = 2 m; 1.5 m allows for the 1e-7° rounding).
    # Metres in UTM 51N: geography's distance reads 0 for some lines 2 m apart.
    near_fence = _one(
        conn,
        "SELECT min(ST_Distance(ST_Transform(ST_Boundary(e.site_geom), 32651),"
        " ST_Transform(u.geom, 32651))) FROM risk_units u JOIN enterprises e"
        " ON e.id = u.enterprise_id",
    )
    assert near_fence > 1.5
    overlapping = conn.execute(
        "SELECT a.id, b.id FROM risk_units a JOIN risk_units b"
        " ON a.enterprise_id = b.enterprise_id AND a.id < b.id AND a.geom && b.geom"
        " WHERE ST_Intersects(a.geom, b.geom)"
    ).fetchall()
    assert overlapping == []


def test_hazard_source_units_are_their_sources(conn: psycopg.Connection) -> None:
    rows = conn.execute(
        "SELECT h.id, count(u.id), bool_and(u.enterprise_id = h.enterprise_id),"
        " bool_and(ST_Equals(u.geom, h.geom)), bool_and(ST_AsEWKB(u.geom) = ST_AsEWKB(h.geom)),"
        " array_agg(u.kind), bool_and(h.unit_kind = CASE u.kind WHEN 'tank_farm' THEN"
        " 'storage' ELSE 'production' END)"
        " FROM hazard_sources h LEFT JOIN risk_units u ON u.hazard_source_id = h.id"
        " GROUP BY h.id"
    ).fetchall()
    assert len(rows) >= 4
    for hid, n, same_enterprise, equal, same_bytes, kinds, kind_matches in rows:
        assert (n, same_enterprise, equal, same_bytes, kind_matches) == (1, True, True, True, True)
        assert kinds[0] in ("tank_farm", "process_unit"), (hid, kinds)


# -- assessment ------------------------------------------------------------------------------


def test_each_colour_is_what_lec_or_ls_gives_its_inputs(conn: psycopg.Connection) -> None:
    rows = conn.execute(
        "SELECT id, method, likelihood, exposure, consequence, severity, color, assessed_on,"
        " review_due FROM risk_units"
    ).fetchall()
    colours: Counter[str] = Counter()
    for uid, method, li, e, c, s, color, assessed_on, review_due in rows:
        if method is None:
            assert (li, e, c, s, color, assessed_on, review_due) == (None,) * 7, uid
            colours["grey"] += 1
            continue
        if method == "LEC":
            assert s is None and color == lec(li, e, c)[1], uid
        else:
            assert method == "LS" and e is None and c is None, uid
            assert color == ls(int(li), int(s))[1], uid
        assert review_due == _plus_year(assessed_on), uid
        colours[color] += 1
    assessed = sum(colours[c] for c in RISK_COLORS)
    # Mostly blue and yellow, some orange, few red; a few units not yet assessed.
    assert colours["blue"] + colours["yellow"] > 0.7 * assessed
    assert 0 < colours["orange"] < colours["yellow"] and colours["red"] < colours["orange"]
    assert colours["grey"] > 0
    methods: dict[str | None, int] = dict(
        conn.execute("SELECT method, count(*) FROM risk_units GROUP BY 1").fetchall()
    )
    assert methods.get("LEC", 0) > 0 and methods.get("LS", 0) > 0


def _plus_year(day: dt.date) -> dt.date:
    try:
        return day.replace(year=day.year + 1)
    except ValueError:
        return day.replace(year=day.year + 1, day=28)


def test_the_risk_engine_rates_with_the_units(conn: psycopg.Connection) -> None:
    """Every enterprise with an assessed unit names its worst unit among its reasons, and a
    register never makes an enterprise worse than its diagnosis and hazard sources say."""
    rows = conn.execute(
        "SELECT e.id, e.inherent_color, e.risk_reasons,"
        " (SELECT color FROM risk_units u WHERE u.enterprise_id = e.id AND color IS NOT NULL"
        "  ORDER BY array_position(ARRAY['red', 'orange', 'yellow', 'blue'], color) LIMIT 1)"
        " FROM enterprises e WHERE e.is_hazmat"
    ).fetchall()
    for eid, inherent, reasons, worst_unit in rows:
        codes = {r["code"]: r for r in reasons}
        assert worst_unit is not None, eid
        assert codes["risk_unit"]["color"] == worst_unit, eid
        assert RISK_COLORS.index(worst_unit) >= RISK_COLORS.index(inherent), eid
        # A direct-red finding (the demo city plants one) rates red whatever the rest says.
        inherent_codes = ("hazard_source_grade", "diagnosis_score", "direct_red_finding")
        others = [r["color"] for r in reasons if r["code"] in inherent_codes]
        assert inherent in others, eid


def test_kinds_follow_the_category(conn: psycopg.Connection) -> None:
    kinds = {
        (eid, cat): set(ks)
        for eid, cat, ks in conn.execute(
            "SELECT e.id, e.category, array_agg(DISTINCT u.kind) FROM risk_units u"
            " JOIN enterprises e ON e.id = u.enterprise_id GROUP BY e.id"
        ).fetchall()
    }
    assert set().union(*kinds.values()) <= set(RISK_UNIT_KINDS)
    core = {
        "production": {"process_unit", "reactor"},
        "use": {"process_unit", "reactor"},
        "storage": {"tank_farm", "warehouse"},
        "trading": {"warehouse", "tank_farm"},
        "disposal": {"process_unit"},
        "transport": {"other"},  # the tankers' car park
    }
    for (eid, cat), ks in kinds.items():
        if cat in core:
            assert ks & core[cat], (eid, cat, ks)
    names = conn.execute(
        "SELECT enterprise_id, count(*), count(DISTINCT name) FROM risk_units GROUP BY 1"
    ).fetchall()
    assert all(n == distinct for _, n, distinct in names)  # names unique within a register


def test_controls_owners_and_contacts(conn: psycopg.Connection) -> None:
    rows = conn.execute("SELECT id, controls, responsible, responsible_phone FROM risk_units")
    counts: Counter[int] = Counter()
    types_seen: set[str] = set()
    for uid, controls, who, phone in rows.fetchall():
        types = [c["type"] for c in controls]
        assert 1 <= len(controls) <= 5 and len(set(types)) == len(types), uid
        assert set(types) <= set(CONTROL_TYPES), uid
        assert all(re.search(r"[\u4e00-\u9fff]", c["measure"]) for c in controls), uid
        assert who and re.fullmatch(r"[\u4e00-\u9fff]{2,3}", who) and MOBILE.match(phone), uid
        counts[len(controls)] += 1
        types_seen |= set(types)
    assert types_seen == set(CONTROL_TYPES) and len(counts) >= 4
    tank = _one(
        conn,
        "SELECT string_agg(c->>'measure', ' ') FROM risk_units u,"
        " jsonb_array_elements(u.controls) c WHERE u.kind = 'tank_farm'"
        " AND c->>'type' = 'engineering'",
    )
    assert "紧急切断阀" in tank or "液位高高联锁" in tank

    contacts = conn.execute("SELECT id, contacts FROM enterprises").fetchall()
    for eid, people in contacts:
        assert [p["role"] for p in people] == list(CONTACT_ROLES), eid
        assert all(p["name"] and MOBILE.match(p["phone"]) for p in people), eid
    # The safety manager looks after units of his own enterprise.
    shared = _one(
        conn,
        "SELECT count(DISTINCT e.id) FROM enterprises e JOIN risk_units u"
        " ON u.enterprise_id = e.id WHERE u.responsible = e.contacts->1->>'name'",
    )
    assert shared > 0


# -- completeness and the ground truth -------------------------------------------------------

_RULE_SQL = """
SELECT e.id, e.district, count(u.id) AS units,
       count(*) FILTER (WHERE u.color = 'red') AS red,
       count(*) FILTER (WHERE u.color = 'orange') AS orange,
       count(*) FILTER (WHERE u.color = 'yellow') AS yellow,
       count(*) FILTER (WHERE u.color = 'blue') AS blue,
       count(*) FILTER (WHERE u.id IS NOT NULL AND u.color IS NULL) AS grey,
       count(*) FILTER (WHERE u.hazard_source_id IS NOT NULL) AS source_units,
       coalesce(bool_or(u.review_due < %(as_of)s), false) AS overdue
FROM enterprises e LEFT JOIN risk_units u ON u.enterprise_id = e.id
GROUP BY e.id
"""


def _judged(conn: psycopg.Connection, as_of: dt.date) -> dict[int, dict[str, Any]]:
    """Each enterprise judged by the completion rule, straight from the stored rows."""
    out = {}
    cur = conn.cursor(row_factory=psycopg.rows.dict_row)
    for r in cur.execute(_RULE_SQL, {"as_of": as_of}).fetchall():
        r["complete"] = r["units"] >= 1 and r["grey"] == 0 and not r["overdue"]
        out[r["id"]] = r
    return out


def test_ground_truth_matches_the_database(conn: psycopg.Connection, truth: dict[str, Any]) -> None:
    as_of = dt.date.fromisoformat(truth["as_of"])
    judged = _judged(conn, as_of)
    registered = {eid: j for eid, j in judged.items() if j["units"]}
    assert {str(eid) for eid in registered} == set(truth["enterprises"])
    for eid, j in registered.items():
        t = truth["enterprises"][str(eid)]
        assert t["units"] == j["units"] and t["source_units"] == j["source_units"], eid
        assert t["colors"] == {c: j[c] for c in (*RISK_COLORS, "grey")}, eid
        assert t["district"] == j["district"], eid
        assert (t["incomplete"], t["overdue"], t["complete"]) == (
            j["grey"] > 0,
            j["overdue"],
            j["complete"],
        ), eid
    assert truth["units"] == _one(conn, "SELECT count(*) FROM risk_units")
    for code, d in truth["districts"].items():
        mine = [j for j in judged.values() if j["district"] == code]
        done = sum(j["complete"] for j in mine)
        assert d["risk_analysis_completion"] == {
            "done": done,
            "of": len(mine),
            "rate": round(done / len(mine), 4),
        }, code
    # The verdicts hold across the whole window the truth promises, and not beyond it.
    start = dt.date.fromisoformat(truth["valid_from"])
    end = dt.date.fromisoformat(truth["valid_until"])
    assert start <= as_of <= end
    for day in (start, end):
        assert {e: j["complete"] for e, j in _judged(conn, day).items() if j["units"]} == {
            int(e): t["complete"] for e, t in truth["enterprises"].items()
        }
    after = _judged(conn, end + dt.timedelta(days=1))
    assert sum(j["complete"] for j in after.values()) < truth["complete"]


def test_completion_differs_by_district(conn: psycopg.Connection, truth: dict[str, Any]) -> None:
    assert truth["incomplete"] > 0 and truth["overdue"] > 0 and truth["complete"] > 0
    judged = _judged(conn, dt.date.fromisoformat(truth["as_of"]))
    hazmat: dict[str, list[bool]] = {}
    for j in judged.values():
        if j["units"]:
            hazmat.setdefault(j["district"], []).append(j["complete"])
    rates = {code: sum(v) / len(v) for code, v in hazmat.items()}
    assert len(rates) >= 2 and len(set(rates.values())) >= 2, rates


def test_same_seed_same_registers(reg_url: str, truth: dict[str, Any], tmp_path: Path) -> None:
    other, admin = _sibling(reg_url, "_again")
    _fresh(other, admin)
    checksum = (
        "SELECT md5(string_agg(concat_ws('|', id, enterprise_id, name, kind, hazard_source_id,"
        " method, likelihood, exposure, consequence, severity, controls, color, responsible,"
        " responsible_phone, assessed_on, review_due, ST_AsEWKB(geom)), ',' ORDER BY id))"
        " FROM risk_units"
    )
    contacts = "SELECT md5(string_agg(contacts::text, ',' ORDER BY id)) FROM enterprises"
    try:
        report = seed_demo_city(
            other,
            scale=TEST_SCALE,
            seed=TEST_SEED,
            out_dir=tmp_path,
            progress=False,
            day=dt.date.fromisoformat(truth["as_of"]),
        )
        again = json.loads(report.ground_truth.read_text())["registers"]
        assert again == truth
        with psycopg.connect(reg_url) as a, psycopg.connect(other) as b:
            assert _one(a, checksum) == _one(b, checksum)
            assert _one(a, contacts) == _one(b, contacts)
    finally:
        _drop(other, admin)


# -- the generator at the edges of what the city draws (no database) --------------------------


def _tight_city() -> tuple[list[Enterprise], list[HazardSource]]:
    """The smallest plain site make_hazmat draws (60 × 50 m), one per category, and the
    tightest sites make_hazard_sources draws for 1–4 sources (12 m side and 10 m top and
    bottom margins)."""
    ents = [
        Enterprise(
            i + 1,
            "",
            f"plain {cat}",
            cat,
            0.0,
            0.0,
            "330203",
            site=(1000.0 * i, 0.0, 1000.0 * i + 60, 50.0),
            diagnosis_score=95.0,
        )
        for i, cat in enumerate(HAZMAT_CATEGORIES)
    ]
    sources: list[HazardSource] = []
    for k in range(1, 5):
        eid = len(ents) + 1
        hx, hy, x, y = 90 * k**0.5 + 40, 80.0, 1000.0 * eid, 5000.0
        site = (x - hx, y - hy, x + hx, y + hy)
        ents.append(Enterprise(eid, "", "host", "production", x, y, "330205", site=site))
        cell = 2 * hx / k
        for j in range(k):
            rect = (
                site[0] + j * cell + 12,
                site[1] + 10,
                site[0] + (j + 1) * cell - 12,
                site[3] - 10,
            )
            sources.append(
                HazardSource(len(sources) + 1, eid, "", "甲醇储罐区", "storage", rect, grade=1 + j)
            )
    return ents, sources


def test_generator_fits_the_tightest_sites_and_follows_its_seed() -> None:
    ents, sources = _tight_city()
    districts = make_districts()
    day = dt.date(2028, 2, 29)

    def generate(seed: int) -> Registers:
        rng = np.random.default_rng([seed, 17])
        people = make_people(np.random.default_rng([seed, 18]), ents)
        return make_registers(rng, ents, sources, districts, day, people)

    regs = generate(1)
    by_ent: dict[int, list[Any]] = {}
    for row, geom in zip(regs.rows, regs.geoms, strict=True):
        by_ent.setdefault(row[1], []).append((row, geom))
    assert set(by_ent) == {e.id for e in ents}
    for e in ents:
        units = by_ent[e.id]
        assert MIN_UNITS <= len(units) <= MAX_UNITS, e.id
        assert e.site is not None
        inner = box(*e.site).buffer(-1.99, join_style="mitre")
        assert all(inner.contains(g) for _, g in units), e.id
        geoms = [g for _, g in units]
        assert not any(a.intersects(b) for i, a in enumerate(geoms) for b in geoms[i + 1 :]), e.id
    for s in sources:
        (g,) = [g for row, g in zip(regs.rows, regs.geoms, strict=True) if row[4] == s.id]
        assert g.equals(box(*s.rect)), s.id
    # Reviews fall due a year after the assessment (one made on 29 February: on 28 February).
    assert all(r[-1] == _plus_year(r[-2]) for r in regs.rows if r[-2] is not None)

    again, other = generate(1), generate(2)
    assert again.rows == regs.rows and again.truth == regs.truth
    assert [g.wkb for g in again.geoms] == [g.wkb for g in regs.geoms]
    assert other.rows != regs.rows
