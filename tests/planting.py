"""Shared planting for access tests: two hazmat enterprises side by side in two districts.

Enterprise A sits in the first district, B in the second; each has a hazard source holding a
substance inventory and an R value (what a tile reader must never see) and an assessed risk
unit (what only the site's own and its regulators may see). Credit codes carry ``tag`` so each
test module plants its own pair.
"""

from __future__ import annotations

from typing import Any

import psycopg


def plant_two_sites(
    c: psycopg.Connection,
    tag: str,
    name: str,
    lon: float,
    lat: float,
    step: float,
    substance: str = "液氯",
) -> dict[str, Any]:
    """Plant A at (lon, lat) and B ``step`` degrees north-east; returns
    ``{"d1", "d2", "a": {...}, "b": {...}}`` with each site's id, hazard source, unit and
    position."""
    d1, d2 = (r[0] for r in c.execute("SELECT code FROM districts ORDER BY code LIMIT 2"))
    out: dict[str, Any] = {"d1": d1, "d2": d2}
    for key, dx, district in (("a", 0.0, d1), ("b", step, d2)):
        x, y = lon + dx, lat + dx
        (eid,) = c.execute(
            "INSERT INTO enterprises (credit_code, name, category, is_hazmat, district, geom)"
            " VALUES (%s, %s, 'storage', true, %s, ST_SetSRID(ST_Point(%s, %s), 4326))"
            " RETURNING id",
            (f"9133020000{tag}0{key.upper()}01", f"{name}{key.upper()}", district, x, y),
        ).fetchone()
        (hid,) = c.execute(
            "INSERT INTO hazard_sources (enterprise_id, code, unit_name, unit_kind, geom,"
            " r_value, grade, color) VALUES (%s, %s, '储罐区', 'storage',"
            " ST_Multi(ST_Buffer(ST_SetSRID(ST_Point(%s, %s), 4326)::geography, 25)::geometry),"
            " 12.5, 3, 'yellow') RETURNING id",
            (eid, f"{tag}-HS", x, y),
        ).fetchone()
        c.execute(
            "INSERT INTO hazard_source_substances (hazard_source_id, name, cas, q, critical_q)"
            " VALUES (%s, %s, '7782-50-5', 12.5, 5)",
            (hid, f"{substance}{key.upper()}"),
        )
        (uid,) = c.execute(
            "INSERT INTO risk_units (enterprise_id, name, method, likelihood, exposure,"
            " consequence, color, geom) VALUES (%s, '装卸区', 'LEC', 3, 6, 7,"
            " 'yellow', ST_Multi(ST_Buffer(ST_SetSRID(ST_Point(%s, %s), 4326)::geography,"
            " 10)::geometry)) RETURNING id",
            (eid, x, y),
        ).fetchone()
        out[key] = {"id": eid, "hs": hid, "unit": uid, "lon": x, "lat": y}
    return out


def square_wkt(lon: float, lat: float, half: float) -> str:
    """A square MULTIPOLYGON of ``half`` degrees around (lon, lat), as WKT (districts, zones)."""
    a, b, c, d = lon - half, lat - half, lon + half, lat + half
    return f"MULTIPOLYGON((({a} {b}, {c} {b}, {c} {d}, {a} {d}, {a} {b})))"
