"""The tanker engine end to end: real HTTP into a real PostGIS, scenarios built from fixes.

Scenarios live in an area of their own (124.5–124.7 E, 32.3–32.5 N, far from the demo city),
with their own zones, road and vehicles; each scenario uses its own vehicle, so order never
matters. The last tests score the seeded demo city's detection against its ground truth.
"""

from __future__ import annotations

import datetime as dt
import json
import math
import random
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import psycopg
import pytest

from tests.planting import square_wkt

LOT = (124.52, 32.32)  # centre of a designated parking lot
ROADSIDE = (124.60, 32.40)
SCHOOL = (124.66, 32.46)
ROAD_Y = 32.35  # an arterial running east–west
#: Recent (the carrier's colour counts the last 24 h of parking alerts), in the past.
DAY = (dt.datetime.now(dt.UTC) - dt.timedelta(hours=3)).replace(second=0, microsecond=0)
CST = dt.timezone(dt.timedelta(hours=8))


def _school_hours() -> str:
    """Active hours around DAY, in local time (may run past midnight)."""
    a, b = DAY - dt.timedelta(hours=1), DAY + dt.timedelta(hours=1)
    return f"{a.astimezone(CST):%H:%M}-{b.astimezone(CST):%H:%M}"


@pytest.fixture(scope="module")
def area(database_url: str) -> Iterator[dict[str, Any]]:
    """Zones, a road, a carrier enterprise and one vehicle per scenario."""
    with psycopg.connect(database_url, autocommit=True) as c:
        zones = {}
        for code, kind, name, (lon, lat), hours in (
            ("T6-LOT", "designated_parking", "测试危化品停车场", LOT, None),
            ("T6-SCH", "school", "测试实验小学", SCHOOL, _school_hours()),
        ):
            row = c.execute(
                "INSERT INTO zones (code, name, kind, active_hours, geom)"
                " VALUES (%s, %s, %s, %s, ST_GeomFromText(%s, 4326)) RETURNING id",
                (code, name, kind, hours, square_wkt(lon, lat, 0.002)),
            ).fetchone()
            assert row
            zones[kind] = row[0]
        c.execute(
            "INSERT INTO roads (name, road_class, speed_limit_kmh, geom) VALUES"
            " ('测试大道', 'arterial', 60, ST_GeomFromText(%s, 4326))",
            (f"LINESTRING(124.50 {ROAD_Y}, 124.70 {ROAD_Y})",),
        )
        row = c.execute(
            "INSERT INTO enterprises (credit_code, name, category, is_hazmat, geom) VALUES"
            " ('9133020000T6AAAA01', '测试危运公司', 'transport', true,"
            " ST_SetSRID(ST_Point(124.55, 32.45), 4326)) RETURNING id"
        ).fetchone()
        assert row
        carrier = row[0]
        vehicles = {}
        for name in (
            "lot",
            "roadside",
            "school",
            "jitter",
            "shuffled",
            "jump",
            "twice",
            "speeding",
            "restart",
            "corridor",
            "recut",
        ):
            row = c.execute(
                "INSERT INTO vehicles (plate, carrier, enterprise_id) VALUES (%s, %s, %s)"
                " RETURNING id",
                (f"测T6{name}", "测试危运公司", carrier),
            ).fetchone()
            assert row
            vehicles[name] = row[0]
        yield {"zones": zones, "vehicles": vehicles, "carrier": carrier}


def _offset(lon: float, lat: float, east_m: float, north_m: float) -> tuple[float, float]:
    return (
        lon + east_m / (111_320 * math.cos(math.radians(lat))),
        lat + north_m / 110_574,
    )


def visit(
    vid: int, at: tuple[float, float], start: dt.datetime, stay_s: int, jitter_m: float = 0.0
) -> list[dict[str, Any]]:
    """Drive in from 2 km west at 40 km/h, stay ``stay_s``, drive on east: 30 s fixes."""
    rnd = random.Random(vid)
    out: list[dict[str, Any]] = []
    t = start
    for k in range(6, 0, -1):  # approach, ~333 m per fix
        out.append(_fix(vid, t, *_offset(*at, -333.0 * k, 0), 40))
        t += dt.timedelta(seconds=30)
    for _ in range(stay_s // 30 + 1):
        j = (rnd.uniform(-jitter_m, jitter_m), rnd.uniform(-jitter_m, jitter_m))
        out.append(_fix(vid, t, *_offset(*at, *j), 0))
        t += dt.timedelta(seconds=30)
    for k in range(1, 7):
        out.append(_fix(vid, t, *_offset(*at, 333.0 * k, 0), 40))
        t += dt.timedelta(seconds=30)
    return out


def _fix(vid: int, t: dt.datetime, lon: float, lat: float, speed: float) -> dict[str, Any]:
    return {
        "vehicle_id": vid,
        "ts": t.isoformat(),
        "lon": round(lon, 7),
        "lat": round(lat, 7),
        "speed_kmh": speed,
        "heading": 90,
    }


def post(client: httpx.Client, fixes: list[dict[str, Any]]) -> dict[str, Any]:
    r = client.post("/api/positions", json=fixes)
    assert r.status_code == 200, r.text
    body: dict[str, Any] = r.json()
    return body


def alerts_of(client: httpx.Client, vid: int) -> list[dict[str, Any]]:
    r = client.get("/api/alerts", params={"vehicle_id": vid})
    assert r.status_code == 200
    assert r.headers["content-type"].startswith("application/geo+json")
    return [f["properties"] for f in r.json()["features"]]


def stops_of(db: psycopg.Connection, vid: int) -> list[tuple[Any, ...]]:
    return db.execute(
        "SELECT start_ts, end_ts, fix_count, zone_id, is_open FROM stops WHERE vehicle_id = %s"
        " ORDER BY start_ts",
        (vid,),
    ).fetchall()


def test_twelve_minutes_in_a_lot_is_no_alert(client: httpx.Client, db: Any, area: Any) -> None:
    vid = area["vehicles"]["lot"]
    body = post(client, visit(vid, LOT, DAY, 720))
    assert body["accepted"] == 37 and body["duplicates"] == 0 and body["rejected"] == []
    stops = stops_of(db, vid)
    assert len(stops) == 1
    assert stops[0][3] == area["zones"]["designated_parking"]
    assert (stops[0][1] - stops[0][0]).total_seconds() >= 720
    assert alerts_of(client, vid) == []


def test_twelve_minutes_at_a_roadside_is_one_alert(
    client: httpx.Client, db: Any, area: Any
) -> None:
    vid = area["vehicles"]["roadside"]
    fixes = visit(vid, ROADSIDE, DAY, 720)
    for a in range(0, len(fixes), 5):  # delivered as a live terminal would, 5 fixes a time
        post(client, fixes[a : a + 5])
    alerts = alerts_of(client, vid)
    assert len(alerts) == 1
    a = alerts[0]
    assert a["rule"] == "illegal_parking" and a["status"] == "new" and a["active"] is False
    assert a["enterprise_id"] == area["carrier"]
    assert 720 <= a["duration_s"] <= 760
    assert a["revision"] > 1  # updated while the stop grew, then closed
    risk = client.get(f"/api/enterprises/{area['carrier']}/risk").json()
    assert any("illegal-parking" in json.dumps(r, ensure_ascii=False) for r in risk["reasons"])


def test_three_minutes_at_a_school_gate_names_the_school(client: httpx.Client, area: Any) -> None:
    vid = area["vehicles"]["school"]
    post(client, visit(vid, SCHOOL, DAY, 180))
    alerts = alerts_of(client, vid)
    assert [a["rule"] for a in alerts] == ["forbidden_zone_parking"]
    assert alerts[0]["zone_id"] == area["zones"]["school"]
    assert alerts[0]["zone_name"] == "测试实验小学"
    assert alerts[0]["details"]["zone_name"] == "测试实验小学"


def test_jitter_while_parked_is_still_one_stop(client: httpx.Client, db: Any, area: Any) -> None:
    vid = area["vehicles"]["jitter"]
    post(client, visit(vid, ROADSIDE, DAY + dt.timedelta(hours=2), 720, jitter_m=30))
    assert len(stops_of(db, vid)) == 1
    assert [a["rule"] for a in alerts_of(client, vid)] == ["illegal_parking"]


def test_out_of_order_delivery_gives_the_same_result(
    client: httpx.Client, db: Any, area: Any
) -> None:
    vid, ref = area["vehicles"]["shuffled"], area["vehicles"]["roadside"]
    fixes = visit(vid, ROADSIDE, DAY, 720)
    # The stop's fixes arrive late and scrambled, after the departure was already seen.
    head, stop, tail = fixes[:8], fixes[8:-6], fixes[-6:]
    random.Random(3).shuffle(stop)
    for part in (head, tail, stop[:10], stop[10:]):
        post(client, part)
    got = [(s[0], s[1], s[2]) for s in stops_of(db, vid)]
    want = [(s[0], s[1], s[2]) for s in stops_of(db, ref)]
    assert got == want and len(got) == 1
    alerts = alerts_of(client, vid)
    assert len(alerts) == 1 and alerts[0]["rule"] == "illegal_parking"
    assert alerts[0]["episode_start"] == alerts_of(client, ref)[0]["episode_start"]


def test_a_late_fix_recuts_the_stop_and_its_alert_follows(
    client: httpx.Client, db: Any, area: Any
) -> None:
    """The replay deletes and re-makes the stop; the alert's link to it (vehicle_id, stop_id),
    which has no ON DELETE action (Citus, migration 0021), is cleared and set to the new row."""
    vid = area["vehicles"]["recut"]
    fixes = visit(vid, ROADSIDE, DAY, 720)
    late = fixes.pop(12)  # a fix in the middle of the stop arrives last
    post(client, fixes)
    sql = "SELECT id, fix_count FROM stops WHERE vehicle_id = %s"
    ((old_stop, n),) = db.execute(sql, (vid,)).fetchall()
    (before,) = alerts_of(client, vid)
    assert before["stop_id"] == old_stop
    assert post(client, [late])["accepted"] == 1
    ((new_stop, m),) = db.execute(sql, (vid,)).fetchall()
    assert new_stop != old_stop and m == n + 1  # recut, with the late fix in it
    (after,) = alerts_of(client, vid)
    assert after["id"] == before["id"] and after["stop_id"] == new_stop
    assert after["episode_start"] == before["episode_start"]


def test_a_500_km_jump_is_dropped_with_a_reason(client: httpx.Client, db: Any, area: Any) -> None:
    vid = area["vehicles"]["jump"]
    fixes = visit(vid, ROADSIDE, DAY, 60)
    far = _offset(ROADSIDE[0], ROADSIDE[1], 500_000, 0)
    fixes[7] = _fix(vid, dt.datetime.fromisoformat(fixes[7]["ts"]), *far, 0)
    body = post(client, fixes)
    assert body["accepted"] == len(fixes) - 1
    assert [r["index"] for r in body["rejected"]] == [7]
    assert body["rejected"][0]["error"].startswith("jump")
    row = db.execute(
        "SELECT reason, lon FROM position_rejects WHERE vehicle_id = %s", (vid,)
    ).fetchone()
    assert row is not None and row[0] == "jump" and abs(row[1] - far[0]) < 1e-6


def test_the_same_batch_twice_stores_nothing_new(client: httpx.Client, db: Any, area: Any) -> None:
    vid = area["vehicles"]["twice"]
    fixes = visit(vid, ROADSIDE, DAY, 720)
    first, second = post(client, fixes), post(client, fixes)
    assert first["accepted"] == len(fixes)
    assert second == {"accepted": 0, "duplicates": len(fixes), "rejected": []}
    n = db.execute("SELECT count(*) FROM positions WHERE vehicle_id = %s", (vid,)).fetchone()
    assert n is not None and n[0] == len(fixes)
    assert len(alerts_of(client, vid)) == 1


def test_five_minutes_of_speeding_is_one_alert(client: httpx.Client, area: Any) -> None:
    vid = area["vehicles"]["speeding"]
    t, fixes, x = DAY, [], 124.51
    for k in range(20):  # 2 min legal, 5 min at 75 km/h, then legal again
        speed = 75.0 if 4 <= k < 15 else 50.0
        fixes.append(_fix(vid, t, x, ROAD_Y + 0.00005, speed))
        x += speed / 3.6 * 30 / (111_320 * math.cos(math.radians(ROAD_Y)))
        t += dt.timedelta(seconds=30)
    post(client, fixes)
    alerts = alerts_of(client, vid)
    assert len(alerts) == 1
    a = alerts[0]
    assert a["rule"] == "overspeed" and a["details"]["limit_kmh"] == 60
    assert a["details"]["peak_kmh"] == 75 and a["duration_s"] == 300 and a["active"] is False


def test_unknown_vehicle_and_bad_rows_are_per_row(client: httpx.Client, area: Any) -> None:
    good = _fix(area["vehicles"]["jump"], DAY - dt.timedelta(days=2), *ROADSIDE, 0)
    body = post(client, [good, {**good, "vehicle_id": 2_000_000_000}, {**good, "ts": "noon"}])
    assert body["accepted"] == 1
    assert [r["index"] for r in body["rejected"]] == [1, 2]
    assert "unknown vehicle" in body["rejected"][0]["error"]
    assert body["rejected"][1]["error"].startswith("ts")


def test_ndjson_and_csv_bodies(client: httpx.Client, area: Any) -> None:
    vid = area["vehicles"]["restart"]
    fixes = visit(vid, LOT, DAY - dt.timedelta(days=1), 60)
    nd = "\n".join(json.dumps(f) for f in fixes[:10])
    r = client.post("/api/positions", content=nd, headers={"content-type": "application/x-ndjson"})
    assert r.json()["accepted"] == 10
    lines = ["vehicle_id,ts,lon,lat,speed_kmh"]
    lines += [f"{f['vehicle_id']},{f['ts']},{f['lon']},{f['lat']},{f['speed_kmh']}" for f in fixes]
    r = client.post(
        "/api/positions", content="\n".join(lines), headers={"content-type": "text/csv"}
    )
    assert r.json() == {"accepted": len(fixes) - 10, "duplicates": 10, "rejected": []}


def test_alert_lifecycle(client: httpx.Client, area: Any) -> None:
    alert = alerts_of(client, area["vehicles"]["jitter"])[0]
    url = f"/api/alerts/{alert['id']}"
    r = client.post(url + "/dispose", json={"outcome": "disposed", "note": "x"})
    assert r.status_code == 409 and "new" in r.json()["detail"]
    r = client.post(url + "/ack")
    assert r.status_code == 200
    props = r.json()["properties"]
    assert props["status"] == "acknowledged" and props["acknowledged_by"] == "test admin"
    assert props["acknowledged_at"]
    r = client.post(url + "/ack")
    assert r.status_code == 409 and "acknowledged" in r.json()["detail"]
    r = client.post(url + "/dispose", json={"outcome": "false_alarm", "note": "维修停车"})
    props = r.json()["properties"]
    assert props["status"] == "false_alarm" and props["note"] == "维修停车"
    assert props["disposed_by"] == "test admin"
    r = client.post(url + "/dispose", json={"outcome": "disposed"})
    assert r.status_code == 409 and "false_alarm" in r.json()["detail"]
    assert client.post("/api/alerts/999999999/ack").status_code == 404
    assert client.post(url + "/dispose", json={"outcome": "maybe"}).status_code == 422
    listed = client.get("/api/alerts", params={"status": "false_alarm", "f": "json"}).json()
    assert alert["id"] in [a["id"] for a in listed["alerts"]]


def test_track_is_geojson_with_times(client: httpx.Client, area: Any) -> None:
    vid = area["vehicles"]["lot"]
    r = client.get(
        f"/api/vehicles/{vid}/track",
        params={"from": DAY.isoformat(), "to": (DAY + dt.timedelta(hours=1)).isoformat()},
    )
    assert r.status_code == 200
    feats = r.json()["features"]
    line = feats[0]
    assert line["geometry"]["type"] == "LineString"
    assert len(line["properties"]["times"]) == len(line["geometry"]["coordinates"]) == 37
    assert line["properties"]["times"][0] == DAY.isoformat()
    assert [f["properties"]["kind"] for f in feats[1:]] == ["stop"]


# -- the seeded demo city ------------------------------------------------------------------
KINDS = {
    "illegal_roadside_stop": "illegal_parking",
    "forbidden_zone_stop": "forbidden_zone_parking",
    "overspeed": "overspeed",
}


@pytest.mark.parametrize("kind", list(KINDS))
def test_seeded_city_planted_events_are_detected(
    db: psycopg.Connection, demo_dir: Path, kind: str
) -> None:
    from scripts.bench_ingest import score

    truth = json.loads((demo_dir / "ground_truth.json").read_text())
    result = score(db, truth)[kind]
    assert result.events > 0
    assert result.recall == 1.0, result.missed
    assert result.precision == 1.0, result.false


def test_leaving_the_planned_corridor_is_one_alert_and_state_is_listed(
    client: httpx.Client, db: Any, area: Any
) -> None:
    vid = area["vehicles"]["corridor"]
    start = DAY - dt.timedelta(hours=2)  # in the past: fixes from the future are refused
    db.execute(
        "INSERT INTO vehicle_routes (vehicle_id, name, valid_from, valid_to, corridor_m, geom)"
        " VALUES (%s, '测试路线', %s, %s, 300, ST_GeomFromText(%s, 4326))",
        (
            vid,
            start - dt.timedelta(hours=1),
            start + dt.timedelta(hours=2),
            f"LINESTRING(124.50 {ROAD_Y}, 124.70 {ROAD_Y})",
        ),
    )
    fixes: list[dict[str, Any]] = []
    t = start
    # 3 min on the route, then 1 km north at 40 km/h (≈ 333 m a fix), 5 min along there —
    # outside the 300 m corridor — and back: realistic speeds, so no fix is a "jump".
    north = 1000 / 110_574
    lon = 124.52
    path = [(0.0, 6), (1 / 3, 1), (2 / 3, 1), (1.0, 10), (2 / 3, 1), (1 / 3, 1), (0.0, 6)]
    for share, count in path:
        for _ in range(count):
            fixes.append(_fix(vid, t, lon, ROAD_Y + share * north, 40))
            t += dt.timedelta(seconds=30)
            lon += 0.0015 if share in (0.0, 1.0) else 0.0
    assert post(client, fixes)["accepted"] == len(fixes)
    alerts = [a for a in alerts_of(client, vid) if a["rule"] == "corridor_deviation"]
    assert len(alerts) == 1
    assert alerts[0]["active"] is False  # back on the route: the episode is closed
    # GET /api/vehicles lists the detector's state beside the latest fix.
    listed = client.get("/api/vehicles", params={"carrier": "测试危运公司", "limit": 100}).json()
    mine = next(f for f in listed["features"] if f["id"] == vid)
    assert mine["properties"]["state"] == "moving"
    assert mine["geometry"]["coordinates"] == [fixes[-1]["lon"], fixes[-1]["lat"]]
