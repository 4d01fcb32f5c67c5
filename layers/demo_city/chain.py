"""The demo city's transport chain (issue 14): carriers with licences, every linked tanker's
permit and tank inspection, drivers and escorts, and electronic waybills in every state.

Runs after the carriers are linked to their transport enterprises (``seed._link_carriers``):
every carrier that has vehicles gets a licence; every linked vehicle gets a tank, a road
transport permit and a tank inspection; each carrier gets drivers (one per vehicle and a few
spare) and escorts (one per vehicle). A few documents are expired on purpose, and ~25 % of the
linked vehicles have no waybill at all — what the later warning models look for.

Waybills go from a hazmat producer or store (the shipper, its loading party and the origin) to
a user, producer or store (the consignee and destination) along a straight corridor of
:data:`CORRIDOR_M` either side. Their states keep them off the seed's day (the day of the
tracks), whose drives they do not follow: delivered and cancelled the day before, loading and in
transit the day after, planned two days after. The day's own waybills are the scenarios'
(``layers/demo_city/scenarios.py``): planned on that day along the road path their vehicle
drives, their steps derived from its stops when the seed runs the engine; their vehicles carry
valid papers unless a scenario wants one expired. The idle vehicles (no load that day) are the
ones without waybill. Waybills that moved past ``planned`` passed the loading checks, so they
carry valid papers; planned ones may not, and the ground truth lists which checks their loading
will fail (``layers/transport/qualifications.judge``, the rule the API applies).

Everything is set-based (one COPY or ``INSERT … SELECT unnest`` per table) and sized by the
fleet, so seeding time and memory stay flat.
"""

from __future__ import annotations

import datetime as dt
from collections import Counter
from typing import Any, Final

import numpy as np
import psycopg
from shapely.geometry import LineString

from layers.catalog.props import id_card_check_char
from layers.demo_city.config import CST, to_lonlat
from layers.demo_city.registers import mobiles, person_names
from layers.demo_city.scenarios import ChainPlan, PlannedWaybill
from layers.risk.substances import CATALOGUE
from layers.transport.qualifications import LoadingFacts, judge

#: Metres either side of the planned line.
CORRIDOR_M: Final = 1000.0
#: Shares of the waybills by state (the first waybills take one state each, so all appear).
STATE_SHARES: Final = {
    "delivered": 0.35,
    "in_transit": 0.15,
    "loading": 0.05,
    "planned": 0.35,
    "cancelled": 0.10,
}
#: Share of linked vehicles with a waybill; the rest have none.
WAYBILL_SHARE: Final = 0.75
#: Shares of expired documents and of planned waybills without an escort.
EXPIRED_PERMIT: Final = 0.05
EXPIRED_INSPECTION: Final = 0.07
EXPIRED_CERTIFICATE: Final = 0.06
PLANNED_WITHOUT_ESCORT: Final = 0.08

_NAMES: Final = {s.un_number: s.name_zh for s in CATALOGUE if s.un_number} | {
    "1202": "柴油",
    "1789": "盐酸",
    "1830": "硫酸",
    "1824": "氢氧化钠溶液",
    "2014": "过氧化氢水溶液",
    "1993": "易燃液体，未另作规定的",
}
_SHIPPERS: Final = ("production", "storage", "trading")
_CONSIGNEES: Final = ("use", "production", "storage")
_BIRTH_BASE: Final = dt.date(1965, 1, 1)


def _expiry(rng: np.random.Generator, day: dt.date, n: int, expired_share: float) -> list[dt.date]:
    """Expiry dates: a share before ``day`` (1–180 days ago), the rest 20–1500 days ahead."""
    expired = rng.random(n) < expired_share
    back = rng.integers(1, 181, n)
    ahead = rng.integers(20, 1501, n)
    return [
        day - dt.timedelta(days=int(b)) if e else day + dt.timedelta(days=int(a))
        for e, b, a in zip(expired.tolist(), back.tolist(), ahead.tolist(), strict=True)
    ]


def _id_card(region: str, index: int) -> str:
    # Birth dates spread by index and a sequence number. (index * 7919) % 12000 alone repeats
    # after 12,000 people, and a scale-4 fleet has ≈ 30,000 crew: each further block of
    # 12,000 shifts its dates by one day more, which keeps them unique past 2 million.
    birth = _BIRTH_BASE + dt.timedelta(days=(index * 7919 + index // 12_000) % 12_000)
    first17 = f"{region}{birth:%Y%m%d}{index % 1000:03d}"
    return first17 + id_card_check_char(first17)


def seed_chain(
    conn: psycopg.Connection, rng: np.random.Generator, day: dt.date, plan: ChainPlan | None = None
) -> tuple[dict[str, int], dict[str, Any]]:
    """Write the chain into the seeded city; (counts for the summary, ground-truth section)."""
    fleet = conn.execute(
        "SELECT v.id, v.enterprise_id, v.capacity_t, v.hazmat_class, v.un_number, e.district"
        " FROM vehicles v JOIN enterprises e ON e.id = v.enterprise_id ORDER BY v.id"
    ).fetchall()
    carriers = sorted({row[1] for row in fleet})
    district_of = {row[1]: row[5] or "330200" for row in fleet}
    licences = _expiry(rng, day, len(carriers), 0.0)
    conn.execute(
        "INSERT INTO carriers (enterprise_id, licence_no, licence_expiry)"
        " SELECT * FROM unnest(%s::int[], %s::text[], %s::date[])",
        (carriers, [f"浙交运管许可甬字{3302000000 + c}号" for c in carriers], licences),
    )

    vids = [row[0] for row in fleet]
    permits = _expiry(rng, day, len(fleet), EXPIRED_PERMIT)
    inspections = _expiry(rng, day, len(fleet), EXPIRED_INSPECTION)
    plans = plan.plans if plan else {}
    for k, v in enumerate(vids):
        if v in plans:  # a scenario's papers are valid unless it plants an expired one
            permits[k] = day + dt.timedelta(days=400)
            expired = plans[v].expired == "tank_inspection"
            inspections[k] = day + dt.timedelta(days=-30 if expired else 400)
    cryo = rng.random(len(fleet)) < 0.2
    tanks = [
        ("cryogenic" if c else "pressure") if (cls or "").startswith("2") else "atmospheric"
        for (_, _, _, cls, _, _), c in zip(fleet, cryo.tolist(), strict=True)
    ]
    volumes = [
        round(min(200.0, float(row[2] or 20) * f), 1)
        for row, f in zip(fleet, rng.uniform(1.1, 1.5, len(fleet)).tolist(), strict=True)
    ]
    conn.execute(
        "UPDATE vehicles v SET tank_type = u.tank, tank_volume_m3 = u.volume,"
        " road_permit_no = u.permit, road_permit_expiry = u.permit_expiry,"
        " tank_inspection_expiry = u.inspection FROM unnest(%s::int[], %s::text[],"
        " %s::float8[], %s::text[], %s::date[], %s::date[])"
        " AS u(id, tank, volume, permit, permit_expiry, inspection) WHERE v.id = u.id",
        (vids, tanks, volumes, [f"浙交运{330200000000 + v}" for v in vids], permits, inspections),
    )
    vehicle_papers = {v: (p, i) for v, p, i in zip(vids, permits, inspections, strict=True)}

    # Drivers: one per vehicle and one spare per five; escorts: one per vehicle.
    per_carrier = Counter(row[1] for row in fleet)
    crew_carrier: list[int] = []
    crew_role: list[str] = []
    for c in carriers:
        n = per_carrier[c]
        crew_carrier += [c] * (n + (n + 4) // 5) + [c] * n
        crew_role += ["driver"] * (n + (n + 4) // 5) + ["escort"] * n
    n_crew = len(crew_carrier)
    certificates = _expiry(rng, day, n_crew, EXPIRED_CERTIFICATE)
    rows = conn.execute(
        "INSERT INTO crew_members (carrier_id, name, id_card_no, role, certificate_no,"
        " certificate_expiry, phone) SELECT * FROM unnest(%s::int[], %s::text[], %s::text[],"
        " %s::text[], %s::text[], %s::date[], %s::text[]) RETURNING id, carrier_id, role,"
        " certificate_expiry",
        (
            crew_carrier,
            person_names(rng, n_crew),
            [_id_card(district_of[c], i) for i, c in enumerate(crew_carrier)],
            crew_role,
            [f"{'JS' if r == 'driver' else 'YY'}{3302000000 + i}" for i, r in enumerate(crew_role)],
            certificates,
            mobiles(rng, n_crew),
        ),
    ).fetchall()
    crew: dict[tuple[int, str], list[tuple[int, dt.date]]] = {}
    for pid, carrier, role, expiry in rows:
        crew.setdefault((carrier, role), []).append((pid, expiry))

    ents = conn.execute(
        "SELECT id, category FROM enterprises WHERE category = ANY(%s) ORDER BY id",
        (sorted(set(_SHIPPERS + _CONSIGNEES)),),
    ).fetchall()
    shippers = [e for e, cat in ents if cat in _SHIPPERS]
    consignees = [e for e, cat in ents if cat in _CONSIGNEES]
    idle = plan.idle if plan else set()
    with_waybill = [row for row in fleet if row[0] not in idle and row[0] not in plans]
    states = list(STATE_SHARES)
    drawn = rng.choice(len(states), size=len(with_waybill), p=list(STATE_SHARES.values()))
    waybills: list[dict[str, Any]] = []
    refused: dict[str, list[str]] = {}
    with_plan = {v for v, p in plans.items() if p.has_waybill}
    without = sorted(set(vids) - {row[0] for row in with_waybill} - with_plan)
    for i, (vid, carrier, capacity, cls, un, _) in enumerate(with_waybill):
        state = states[i] if i < len(states) else states[int(drawn[i])]
        permit, inspection = vehicle_papers[vid]
        offset = {"delivered": -1, "cancelled": -1, "loading": 1, "in_transit": 1, "planned": 2}
        load_day = day + dt.timedelta(days=offset[state])
        moved = state in ("loading", "in_transit", "delivered")
        if moved and (permit < load_day or inspection < load_day):
            state, load_day = "planned", day + dt.timedelta(days=2)
            moved = False
        drivers = crew[(carrier, "driver")]
        escorts = crew[(carrier, "escort")]
        if moved:  # it passed the loading checks: valid people
            drivers = [d for d in drivers if d[1] >= load_day] or drivers
            escorts = [e for e in escorts if e[1] >= load_day] or escorts
        driver = drivers[int(rng.integers(len(drivers)))]
        escort: tuple[int, dt.date] | None = escorts[int(rng.integers(len(escorts)))]
        if state == "planned" and rng.random() < PLANNED_WITHOUT_ESCORT:
            escort = None
        if moved and (driver[1] < load_day or (escort is not None and escort[1] < load_day)):
            state, load_day, moved = "planned", day + dt.timedelta(days=2), False
        shipper = shippers[int(rng.integers(len(shippers)))]
        consignee = consignees[int(rng.integers(len(consignees)))]
        if consignee == shipper:
            consignee = consignees[(consignees.index(consignee) + 1) % len(consignees)]
        depart = dt.datetime.combine(load_day, dt.time(7), CST) + dt.timedelta(
            minutes=int(rng.integers(0, 300))
        )
        arrive = depart + dt.timedelta(minutes=int(rng.integers(60, 240)))
        code = f"YD{day:%Y%m%d}{i + 1:05d}"
        quantity = round(float(capacity or 20) * float(rng.uniform(0.6, 0.95)), 2)
        waybills.append(
            {
                "code": code,
                "state": state,
                "shipper": shipper,
                "carrier": carrier,
                "consignee": consignee,
                "substance": _NAMES.get(un or "", "危险货物"),
                "un": un or "1993",
                "cls": cls if cls else "3",
                "quantity": quantity,
                "vehicle": vid,
                "driver": driver[0],
                "escort": escort[0] if escort else None,
                "depart": depart,
                "arrive": arrive,
            }
        )
        if state == "planned":
            facts = LoadingFacts(
                0, "planned", carrier, licences[carriers.index(carrier)], "", carrier,
                "permit", permit, inspection, driver[1],
                escort[0] if escort else None, escort[1] if escort else None,
            )  # fmt: skip
            failures = judge(facts, load_day)
            if failures:
                refused[code] = [f.check for f in failures]

    if waybills:
        _insert_waybills(conn, waybills)
        _insert_events(conn)
    planted = [w for p in plans.values() for w in p.waybills]
    if planted:
        _insert_scenario_waybills(conn, day, planted, crew)
    by_state = Counter(w["state"] for w in waybills)
    counts = {
        "carriers": len(carriers),
        "crew_members": n_crew,
        "waybills": len(waybills),
    }
    truth = {
        "rules": {
            "loading_checks": "layers/transport/qualifications.py: carrier licence, road "
            "permit, tank inspection, driver and escort certificates valid on the loading's "
            "local day, an escort named, the waybill planned",
            "corridor_m": CORRIDOR_M,
        },
        "carriers": len(carriers),
        "drivers": crew_role.count("driver"),
        "escorts": crew_role.count("escort"),
        "expired_certificates": sorted(pid for pid, _, _, expiry in rows if expiry < day),
        "expired_road_permits": sorted(v for v, (p, _) in vehicle_papers.items() if p < day),
        "expired_tank_inspections": sorted(v for v, (_, i) in vehicle_papers.items() if i < day),
        "vehicles_without_waybill": without,
        "scenario_waybills": [w.code for w in planted],
        "waybills_by_state": dict(sorted(by_state.items())),
        "planned_refused_at_loading": refused,
    }
    return counts, truth


def _insert_waybills(conn: psycopg.Connection, waybills: list[dict[str, Any]]) -> None:
    def col(key: str) -> list[Any]:
        return [w[key] for w in waybills]

    conn.execute(
        "INSERT INTO waybills (code, state, state_changed_at, shipper_id, carrier_id,"
        " consignee_id, loading_party_id, substance_name, un_number, hazmat_class, quantity_t,"
        " vehicle_id, driver_id, escort_id, origin_id, destination_id, origin_geom,"
        " destination_geom, geom, corridor_m, corridor, planned_departure, planned_arrival)"
        " SELECT u.code, u.state, CASE u.state WHEN 'delivered' THEN u.arrive"
        " WHEN 'cancelled' THEN u.depart - interval '2 hours' WHEN 'planned' THEN now()"
        " ELSE u.depart END, u.shipper, u.carrier, u.consignee, u.shipper, u.substance, u.un,"
        " u.cls, u.quantity, u.vehicle, u.driver, u.escort, u.shipper, u.consignee, o.geom,"
        " d.geom, r.line, %s, ST_Multi(ST_Buffer(r.line::geography, %s)::geometry),"
        " u.depart, u.arrive"
        " FROM unnest(%s::text[], %s::text[], %s::int[], %s::int[], %s::int[], %s::text[],"
        " %s::text[], %s::text[], %s::float8[], %s::int[], %s::int[], %s::int[],"
        " %s::timestamptz[], %s::timestamptz[], %s::text[]) AS u(code, state, shipper, carrier,"
        " consignee, substance, un, cls, quantity, vehicle, driver, escort, depart, arrive, route)"
        " JOIN enterprises o ON o.id = u.shipper JOIN enterprises d ON d.id = u.consignee"
        # The planned road path when there is one (scenarios), else the straight line.
        " CROSS JOIN LATERAL (SELECT coalesce(ST_GeomFromText(u.route, 4326),"
        " ST_MakeLine(o.geom, d.geom)) AS line) r",
        (
            CORRIDOR_M,
            CORRIDOR_M,
            col("code"),
            col("state"),
            col("shipper"),
            col("carrier"),
            col("consignee"),
            col("substance"),
            col("un"),
            col("cls"),
            col("quantity"),
            col("vehicle"),
            col("driver"),
            col("escort"),
            col("depart"),
            col("arrive"),
            col("route") if "route" in waybills[0] else [None] * len(waybills),
        ),
    )


def _insert_events(conn: psycopg.Connection) -> None:
    # The parties' events of each waybill's history so far (what the API would have recorded).
    event = (
        "INSERT INTO waybill_events (waybill_id, kind, from_state, to_state, at, geom, source,"
        " actor) SELECT w.id, '{kind}', '{frm}', '{to}', {at}, {geom}, 'party', 'demo:seed'"
        " FROM waybills w WHERE w.state IN ({states})"
    )
    for kind, frm, to, at, geom, states in (
        ("loading", "planned", "loading", "w.planned_departure - interval '40 minutes'",
         "w.origin_geom", "'loading', 'in_transit', 'delivered'"),
        ("loaded", "loading", "in_transit", "w.planned_departure", "w.origin_geom",
         "'in_transit', 'delivered'"),
        ("unloading", "in_transit", "in_transit", "w.planned_arrival - interval '30 minutes'",
         "w.destination_geom", "'delivered'"),
        ("unloaded", "in_transit", "delivered", "w.planned_arrival", "w.destination_geom",
         "'delivered'"),
    ):  # fmt: skip
        conn.execute(event.format(kind=kind, frm=frm, to=to, at=at, geom=geom, states=states))
    conn.execute(
        "INSERT INTO waybill_events (waybill_id, kind, from_state, to_state, at, source, actor,"
        " note) SELECT w.id, 'transition', 'planned', 'cancelled', w.state_changed_at, 'api',"
        " 'demo:seed', '客户取消' FROM waybills w WHERE w.state = 'cancelled'"
    )


def _insert_scenario_waybills(
    conn: psycopg.Connection,
    day: dt.date,
    planted: list[PlannedWaybill],
    crew: dict[tuple[int, str], list[tuple[int, dt.date]]],
) -> None:
    """The scenarios' waybills: on the seed's day, along their planned road path, crewed by
    people whose certificates are valid; an ``in_transit`` one (imported) gets the party's
    loading and loaded events at the times its vehicle stood at the origin."""
    carrier_of: dict[int, int] = dict(
        conn.execute("SELECT id, enterprise_id FROM vehicles").fetchall()
    )
    midnight = dt.datetime.combine(day, dt.time(), CST)
    rows: list[dict[str, Any]] = []
    for w in planted:
        carrier = carrier_of[w.vehicle]
        valid = [c for c in crew[(carrier, "driver")] if c[1] >= day + dt.timedelta(days=2)]
        escorts = [c for c in crew[(carrier, "escort")] if c[1] >= day + dt.timedelta(days=2)]
        xs, ys = to_lonlat(np.array([p[0] for p in w.route]), np.array([p[1] for p in w.route]))
        line = LineString(
            list(zip(np.round(xs, 6).tolist(), np.round(ys, 6).tolist(), strict=True))
        )
        rows.append(
            {
                "code": w.code,
                "state": w.state,
                "shipper": w.origin.id,
                "carrier": carrier,
                "consignee": w.destination.id,
                "substance": w.load[2],
                "un": w.load[0],
                "cls": w.load[1],
                "quantity": 20.0,
                "vehicle": w.vehicle,
                "driver": (valid or crew[(carrier, "driver")])[0][0],
                "escort": (escorts or crew[(carrier, "escort")])[0][0] if w.escort else None,
                "depart": midnight + dt.timedelta(seconds=w.depart_s),
                "arrive": midnight + dt.timedelta(seconds=w.arrive_s),
                "route": line.wkt,
            }
        )
    _insert_waybills(conn, rows)
    for w in planted:
        if w.state == "in_transit" and w.loaded:
            for kind, frm, to, t in (("loading", "planned", "loading", w.loaded[0]),
                                     ("loaded", "loading", "in_transit", w.loaded[1])):  # fmt: skip
                conn.execute(
                    "INSERT INTO waybill_events (waybill_id, kind, from_state, to_state, at,"
                    " geom, source, actor) SELECT id, %s, %s, %s, %s, origin_geom, 'party',"
                    " 'demo:seed' FROM waybills WHERE code = %s",
                    (kind, frm, to, midnight + dt.timedelta(seconds=t), w.code),
                )
            conn.execute(
                "UPDATE waybills SET state_changed_at = %s WHERE code = %s",
                (midnight + dt.timedelta(seconds=w.loaded[1]), w.code),
            )
