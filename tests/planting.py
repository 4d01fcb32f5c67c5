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


def id_card(first17: str) -> str:
    """A resident identity card number with its GB 11643 check character."""
    from layers.catalog.props import id_card_check_char

    return first17 + id_card_check_char(first17)


def plant_chain(c: psycopg.Connection, tag: str, lon: float, lat: float) -> dict[str, Any]:
    """The transport chain's parties for waybill tests, straight into the tables: carriers X
    (first district) and Y (second), each a transport enterprise with a licence; a shipper that
    is also the loading party, a consignee; X's vehicles ``ok`` (valid papers) and ``old``
    (tank inspection expired), X's driver, escort and ``old_escort`` (certificate expired), Y's
    vehicle and driver. ``tag`` is six digits, unique per test module (credit codes, plates,
    certificate numbers)."""
    d1, d2 = (r[0] for r in c.execute("SELECT code FROM districts ORDER BY code LIMIT 2"))
    out: dict[str, Any] = {"d1": d1, "d2": d2}

    def enterprise(n: int, name: str, category: str, district: str, dx: float) -> int:
        (eid,) = c.execute(
            "INSERT INTO enterprises (credit_code, name, category, is_hazmat, district, geom)"
            " VALUES (%s, %s, %s, true, %s, ST_SetSRID(ST_Point(%s, %s), 4326)) RETURNING id",
            (f"91330200{tag}{n:04d}", name, category, district, lon + dx, lat + dx),
        ).fetchone()
        return int(eid)

    out["x"] = enterprise(1, f"承运X{tag}", "transport", d1, 0.0)
    out["y"] = enterprise(2, f"承运Y{tag}", "transport", d2, 0.01)
    out["shipper"] = enterprise(3, f"发货{tag}", "storage", d1, 0.02)
    out["consignee"] = enterprise(4, f"收货{tag}", "use", d2, 0.05)
    for key, licence in (("x", "LX"), ("y", "LY")):
        c.execute(
            "INSERT INTO carriers (enterprise_id, licence_no, licence_expiry)"
            " VALUES (%s, %s, current_date + 365)",
            (out[key], f"{licence}{tag}"),
        )

    def vehicle(plate: str, carrier: str, inspection_days: int, district: str) -> int:
        (vid,) = c.execute(
            "INSERT INTO vehicles (plate, carrier, enterprise_id, hazmat_class, un_number,"
            " capacity_t, district, tank_type, tank_volume_m3, road_permit_no,"
            " road_permit_expiry, tank_inspection_expiry) VALUES (%s, %s, %s, '3', '1203', 30,"
            " %s, 'atmospheric', 40, %s, current_date + 200, current_date + %s) RETURNING id",
            (
                plate,
                f"承运{carrier.upper()}{tag}",
                out[carrier],
                district,
                f"P{plate}",
                inspection_days,
            ),
        ).fetchone()
        return int(vid)

    out["ok"] = vehicle(f"浙B{tag[-4:]}1", "x", 100, d1)
    out["old"] = vehicle(f"浙B{tag[-4:]}2", "x", -3, d1)
    out["y_vehicle"] = vehicle(f"浙B{tag[-4:]}3", "y", 100, d2)

    def person(n: int, carrier: str, role: str, days: int) -> int:
        (pid,) = c.execute(
            "INSERT INTO crew_members (carrier_id, name, id_card_no, role, certificate_no,"
            " certificate_expiry, phone) VALUES (%s, %s, %s, %s, %s, current_date + %s,"
            " '13800001234') RETURNING id",
            (out[carrier], f"人员{n}", id_card(f"3302031990{tag}{n}"), role, f"C{tag}{n}", days),
        ).fetchone()
        return int(pid)

    out["driver"] = person(1, "x", "driver", 300)
    out["escort"] = person(2, "x", "escort", 300)
    out["old_escort"] = person(3, "x", "escort", -10)
    out["y_driver"] = person(4, "y", "driver", 300)
    out["id_card_driver"] = id_card(f"3302031990{tag}1")
    return out
