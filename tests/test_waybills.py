"""Electronic waybills (issue 14 item 2): validation naming each field, the lifecycle's allowed
and refused steps, the loading party's checks (a refused loading lists every failure and is
recorded), the parties' events, scoping, filters, imports, audit and change notices."""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path
from typing import Any

import psycopg
import pytest

from layers.imports.importer import ImportRejected, import_file
from layers.transport.qualifications import CHECKS, LoadingFacts, judge
from tests.conftest import LiveServer, key_for
from tests.planting import plant_chain

TAG = "772002"
LON, LAT = 121.30, 29.65
ROUTE = {"type": "LineString", "coordinates": [[LON, LAT], [LON + 0.1, LAT + 0.05]]}


@pytest.fixture(scope="module")
def chain(database_url: str) -> dict[str, Any]:
    with psycopg.connect(database_url, autocommit=True) as c:
        return plant_chain(c, TAG, LON, LAT)


_serial = iter(range(1, 10_000))


def _props(chain: dict[str, Any], **over: Any) -> dict[str, Any]:
    props = {
        "code": f"WB{TAG}-{next(_serial)}",
        "shipper_id": chain["shipper"],
        "carrier_id": chain["x"],
        "consignee_id": chain["consignee"],
        "loading_party_id": chain["shipper"],
        "substance_name": "汽油",
        "un_number": "1203",
        "hazmat_class": "3",
        "quantity_t": 20,
        "vehicle_id": chain["ok"],
        "driver_id": chain["driver"],
        "escort_id": chain["escort"],
        "origin_id": chain["shipper"],
        "destination_id": chain["consignee"],
        "corridor_m": 300,
        "planned_departure": "2026-12-05T08:00:00+08:00",
        "planned_arrival": "2026-12-05T11:30:00+08:00",
    }
    props.update(over)
    return props


def _feature(chain: dict[str, Any], geometry: Any = None, **over: Any) -> dict[str, Any]:
    return {"type": "Feature", "geometry": geometry or ROUTE, "properties": _props(chain, **over)}


def _create(http: Any, chain: dict[str, Any], **over: Any) -> int:
    response = http.post("/api/waybills", json=_feature(chain, **over))
    assert response.status_code == 201, response.text
    return int(response.json()["id"])


def _client(server: LiveServer, role: str, **scope: Any) -> Any:
    return server.client(key=key_for(server.url, role, **scope))


def _errors(response: Any) -> dict[tuple[int | None, str], str]:
    return {(e.get("index"), e["field"]): e["reason"] for e in response.json()["errors"]}


def test_a_waybill_is_stored_with_its_corridor_and_places(
    live_server: LiveServer, chain: dict[str, Any]
) -> None:
    with live_server.client() as http:
        wid = _create(http, chain)
        feature = http.get(f"/api/waybills/{wid}").json()
    props = feature["properties"]
    assert feature["geometry"]["type"] == "LineString"
    assert feature["geometry"]["coordinates"] == [
        pytest.approx(p, abs=1e-7) for p in ROUTE["coordinates"]
    ]
    assert props["state"] == "planned" and props["carrier_id"] == chain["x"]
    assert props["origin"]["coordinates"] == pytest.approx([LON + 0.02, LAT + 0.02], abs=1e-7)
    assert props["destination"]["coordinates"] == pytest.approx([LON + 0.05, LAT + 0.05], abs=1e-7)
    assert props["plate"] == f"浙B{TAG[-4:]}1" and props["district"] == chain["d1"]
    # The corridor is the line buffered 300 m either side: ~0.0027° of latitude.
    ring = props["corridor"]["coordinates"][0][0]
    lats = [p[1] for p in ring]
    assert min(lats) == pytest.approx(LAT - 300 / 111_000, abs=2e-4)
    assert max(lats) == pytest.approx(LAT + 0.05 + 300 / 111_000, abs=2e-4)


def test_each_bad_value_is_a_422_naming_its_field(
    live_server: LiveServer, chain: dict[str, Any]
) -> None:
    bad = [
        _feature(chain, vehicle_id=chain["y_vehicle"]),
        _feature(chain, driver_id=chain["y_driver"]),
        _feature(chain, driver_id=chain["escort"], escort_id=chain["old_escort"]),
        _feature(chain, quantity_t=31),
        _feature(chain, planned_arrival="2026-12-05T07:00:00+08:00"),
        _feature(chain, un_number="12A3"),
        _feature(chain, hazmat_class="3.4"),
        _feature(chain, corridor_m=None),
        _feature(chain, origin_id=None),
        _feature(chain, carrier_id=chain["shipper"], vehicle_id=chain["ok"]),
        _feature(chain, planned_departure="2026-12-05T08:00:00"),
        _feature(chain, geometry={"type": "Point", "coordinates": [LON, LAT]}),
    ]
    with live_server.client() as http:
        response = http.post("/api/waybills", json={"type": "FeatureCollection", "features": bad})
        assert response.status_code == 422, response.text
        errors = _errors(response)
        assert "of carrier" in errors[(0, "vehicle_id")]
        assert "not of carrier" in errors[(1, "driver_id")]
        assert "registered as escort, not as driver" in errors[(2, "driver_id")]
        assert "exceeds the approved load" in errors[(3, "quantity_t")]
        assert "after planned_departure" in errors[(4, "planned_arrival")]
        assert "UN number" in errors[(5, "un_number")]
        assert "3.4" in errors[(6, "hazmat_class")]
        assert "LineString" in errors[(7, "corridor_m")]
        assert errors[(8, "origin_id")].startswith("required")
        assert "not a registered carrier" in errors[(9, "carrier_id")]
        assert "time zone" in errors[(10, "planned_departure")]
        assert "Point is not accepted" in errors[(11, "geometry")]
        listed = http.get("/api/waybills", params={"code": bad[0]["properties"]["code"]})
        assert listed.json()["numberMatched"] == 0  # all or nothing


def test_the_lifecycle_allows_its_steps_only(
    live_server: LiveServer, chain: dict[str, Any]
) -> None:
    with live_server.client() as admin:
        wid = _create(admin, chain)
    loader = _client(live_server, "enterprise", enterprise_id=chain["shipper"])
    consignee = _client(live_server, "enterprise", enterprise_id=chain["consignee"])
    carrier = _client(live_server, "enterprise", enterprise_id=chain["x"])
    with loader, consignee, carrier, live_server.client() as admin:
        events = f"/api/waybills/{wid}/events"
        # The carrier cannot report its own loading; the consignee does not load.
        assert carrier.post(events, json={"kind": "loading"}).status_code == 403
        assert consignee.post(events, json={"kind": "loading"}).status_code == 403
        early = consignee.post(events, json={"kind": "unloaded"})
        assert early.status_code == 409 and "needs a in_transit waybill" in early.text
        loading = loader.post(events, json={"kind": "loading", "lon": LON, "lat": LAT})
        assert loading.status_code == 201, loading.text
        assert loading.json()["to_state"] == "loading"
        assert loader.post(events, json={"kind": "loaded"}).json()["to_state"] == "in_transit"
        refused = carrier.post(f"/api/waybills/{wid}/transition", json={"to": "cancelled"})
        assert refused.status_code == 409
        assert _errors(refused)[(None, "to")].startswith("in_transit → cancelled is not allowed")
        arrived = consignee.post(events, json={"kind": "unloading"})
        assert arrived.json()["to_state"] == "in_transit"
        assert consignee.post(events, json={"kind": "unloaded"}).json()["to_state"] == "delivered"
        again = admin.post(f"/api/waybills/{wid}/transition", json={"to": "loading"})
        assert again.status_code == 409
        assert "delivered → loading is not allowed" in again.json()["detail"]
        assert admin.get(f"/api/waybills/{wid}").json()["properties"]["state"] == "delivered"
        history = admin.get(events).json()["items"]
        assert [(e["kind"], e["to_state"]) for e in history] == [
            ("loading", "loading"),
            ("loaded", "in_transit"),
            ("unloading", "in_transit"),
            ("unloaded", "delivered"),
        ]
        assert history[0]["lon"] == pytest.approx(LON) and history[0]["source"] == "party"
        # Cancelling a planned waybill: its carrier may, another carrier may not.
        other = _create(admin, chain)
    with _client(live_server, "enterprise", enterprise_id=chain["y"]) as y:
        assert (
            y.post(f"/api/waybills/{other}/transition", json={"to": "cancelled"}).status_code == 403
        )
    with _client(live_server, "enterprise", enterprise_id=chain["x"]) as x:
        done = x.post(f"/api/waybills/{other}/transition", json={"to": "cancelled", "note": "改期"})
        assert done.status_code == 200 and done.json()["to_state"] == "cancelled"
        bad = x.post(f"/api/waybills/{other}/transition", json={"to": "shipped"})
        assert bad.status_code == 422 and bad.json()["errors"][0]["field"] == "to"


def test_a_load_failing_the_checks_is_refused_with_every_failure_and_recorded(
    live_server: LiveServer, chain: dict[str, Any]
) -> None:
    with live_server.client() as admin:
        expired = _create(admin, chain, vehicle_id=chain["old"], escort_id=chain["old_escort"])
        lonely = _create(admin, chain, escort_id=None)
    with _client(live_server, "enterprise", enterprise_id=chain["shipper"]) as loader:
        refused = loader.post(f"/api/waybills/{expired}/events", json={"kind": "loading"})
        assert refused.status_code == 409, refused.text
        fields = {e["field"]: e["reason"] for e in refused.json()["errors"]}
        assert set(fields) == {"vehicle.tank_inspection_expiry", "escort.certificate_expiry"}
        assert "expired on" in fields["vehicle.tank_inspection_expiry"]
        no_escort = loader.post(f"/api/waybills/{lonely}/events", json={"kind": "loading"})
        assert no_escort.status_code == 409
        assert [e["field"] for e in no_escort.json()["errors"]] == ["escort_id"]
        # Loading the same waybill passes once the papers are valid (checked on the day).
    with live_server.client() as admin:
        assert admin.get(f"/api/waybills/{expired}").json()["properties"]["state"] == "planned"
        history = admin.get(f"/api/waybills/{expired}/events").json()["items"]
        assert [e["kind"] for e in history] == ["loading_refused"]
        assert {f["check"] for f in history[0]["failures"]} == {
            "tank_inspection",
            "escort_qualification",
        }
        assert history[0]["from_state"] == history[0]["to_state"] == "planned"


def test_the_checks_judge_every_document_on_the_loading_day() -> None:
    day = dt.date(2026, 12, 5)
    facts = LoadingFacts(
        waybill_id=1,
        state="loading",
        carrier_id=7,
        carrier_licence_expiry=day - dt.timedelta(days=1),
        vehicle_plate="浙B1",
        vehicle_carrier_id=8,
        road_permit_no=None,
        road_permit_expiry=day,
        tank_inspection_expiry=None,
        driver_certificate_expiry=day - dt.timedelta(days=400),
        escort_id=None,
        escort_certificate_expiry=None,
    )
    failures = judge(facts, day)
    assert [f.check for f in failures] == [
        c for c in CHECKS if c not in ("waybill", "escort_qualification")
    ]
    assert judge(None, day)[0].check == "waybill"
    valid = LoadingFacts(1, "planned", 7, day, "浙B1", 7, "P1", day, day, day, 3, day)
    assert judge(valid, day) == []  # valid through the expiry date itself
    assert {f.check for f in judge(valid, day + dt.timedelta(days=1))} == {
        "carrier_licence",
        "road_permit",
        "tank_inspection",
        "driver_qualification",
        "escort_qualification",
    }


def test_carriers_see_their_own_waybills_and_filters_narrow_the_list(
    live_server: LiveServer, chain: dict[str, Any]
) -> None:
    with live_server.client() as admin:
        mine = _create(
            admin,
            chain,
            planned_departure="2026-11-01T08:00:00+08:00",
            planned_arrival="2026-11-01T09:00:00+08:00",
        )
        theirs = _create(
            admin,
            chain,
            carrier_id=chain["y"],
            vehicle_id=chain["y_vehicle"],
            driver_id=chain["y_driver"],
            escort_id=None,
        )
        by_vehicle = admin.get("/api/waybills", params={"vehicle_id": chain["y_vehicle"]}).json()
        assert [f["id"] for f in by_vehicle["features"]] == [theirs]
        window = admin.get(
            "/api/waybills",
            params={"carrier_id": chain["x"], "from": "2026-11-01", "to": "2026-11-02"},
        ).json()
        assert [f["id"] for f in window["features"]] == [mine]
        planned = admin.get("/api/waybills", params={"state": "planned", "limit": 1000}).json()
        assert {f["properties"]["state"] for f in planned["features"]} == {"planned"}
        assert admin.get("/api/waybills", params={"state": "lost"}).status_code == 400
        assert admin.get("/api/waybills", params={"from": "yesterday"}).status_code == 400
    with _client(live_server, "enterprise", enterprise_id=chain["x"]) as x:
        listed = x.get("/api/waybills", params={"limit": 1000}).json()["features"]
        assert mine in {f["id"] for f in listed}
        assert {f["properties"]["carrier_id"] for f in listed} == {chain["x"]}
        assert x.get(f"/api/waybills/{theirs}").status_code == 403
        assert x.get(f"/api/waybills/{theirs}/events").status_code == 403
        # A carrier files waybills for itself only.
        other = x.post(
            "/api/waybills",
            json=_feature(
                chain,
                carrier_id=chain["y"],
                vehicle_id=chain["y_vehicle"],
                driver_id=chain["y_driver"],
                escort_id=None,
            ),
        )
        assert other.status_code == 403
    with _client(live_server, "regulator", districts=[chain["d2"]]) as reg:
        assert reg.get(f"/api/waybills/{theirs}").status_code == 200
        assert reg.get(f"/api/waybills/{mine}").status_code == 403
    with _client(live_server, "officer", districts=[chain["d1"]]) as local:
        listed = local.get("/api/waybills", params={"limit": 1000}).json()["features"]
        assert mine in {f["id"] for f in listed} and theirs not in {f["id"] for f in listed}
        assert local.get(f"/api/waybills/{theirs}/events").status_code == 403
    with live_server.client("officer") as officer:
        assert officer.get(f"/api/waybills/{mine}").status_code == 200
        assert (
            officer.post(f"/api/waybills/{mine}/transition", json={"to": "cancelled"}).status_code
            == 403
        )
    with live_server.client("tile_reader") as reader:
        assert reader.get("/api/waybills").status_code == 403
        assert reader.get(f"/api/waybills/{mine}/events").status_code == 403


def test_waybill_csv_and_json_imports_report_rows(
    database_url: str, chain: dict[str, Any], tmp_path: Path
) -> None:
    columns = list(_props(chain))
    rows = [
        _props(chain),
        _props(chain, quantity_t=99),
        _props(chain, driver_id=chain["escort"], escort_id=chain["old_escort"]),
    ]
    wkt = f"LINESTRING({LON} {LAT}, {LON + 0.1} {LAT + 0.05})"
    lines = [",".join([*columns, "wkt"])]
    for row in rows:
        lines.append(
            ",".join([*("" if row[c] is None else str(row[c]) for c in columns), f'"{wkt}"'])
        )
    path = tmp_path / "waybills.csv"
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    with pytest.raises(ImportRejected) as caught:
        import_file(database_url, "waybills", path, progress=False)
    assert sorted((e.row, e.field) for e in caught.value.errors) == [
        (2, "quantity_t"),
        (3, "driver_id"),
    ]
    as_json = tmp_path / "waybills.json"
    as_json.write_text(json.dumps([{**rows[0], "geometry": wkt}], ensure_ascii=False))
    report = import_file(database_url, "waybills", as_json, progress=False)
    assert report.inserted == 1
    with psycopg.connect(database_url) as c:
        (when,) = c.execute(
            "SELECT planned_departure FROM waybills WHERE id = %s", (report.ids[0],)
        ).fetchone()
    assert when == dt.datetime(2026, 12, 5, 0, 0, tzinfo=dt.UTC)


def test_steps_are_audited_and_announced(
    live_server: LiveServer, chain: dict[str, Any], database_url: str
) -> None:
    with live_server.client() as admin:
        wid = _create(admin, chain)
        with psycopg.connect(database_url, autocommit=True) as listener:
            listener.execute("LISTEN georisk_changes")
            step = admin.post(f"/api/waybills/{wid}/transition", json={"to": "cancelled"})
            assert step.status_code == 200
            heard = [json.loads(n.payload) for n in listener.notifies(timeout=5, stop_after=1)]
        assert heard and heard[0]["layer"] == "waybills" and wid in heard[0]["ids"]
    with psycopg.connect(database_url) as c:
        audited = c.execute(
            "SELECT entity, action, actor FROM audit_log WHERE (entity = 'waybills'"
            " AND entity_id = %s) OR (entity = 'waybill_events' AND after->>'waybill_id' = %s)"
            " ORDER BY id",
            (wid, str(wid)),
        ).fetchall()
    assert [(e, a) for e, a, _ in audited] == [
        ("waybills", "insert"),
        ("waybills", "update"),
        ("waybill_events", "insert"),
    ]
    assert all(actor.startswith("admin:") for _, _, actor in audited)
    with live_server.client() as admin:
        listed = admin.get("/api/audit", params={"entity": "waybills", "entity_id": wid})
        assert listed.status_code == 200, listed.text
        assert {e["action"] for e in listed.json()["entries"]} == {"insert", "update"}


def test_the_demo_city_chain_agrees_with_the_loading_rule(seeded_url: str, demo_dir: Path) -> None:
    import asyncio

    from layers.core.vocab import WAYBILL_STATES
    from layers.transport.qualifications import loading_facts

    doc = json.loads((demo_dir / "ground_truth.json").read_text())
    chain = doc["transport_chain"]
    assert set(chain["waybills_by_state"]) == set(WAYBILL_STATES)
    with psycopg.connect(seeded_url) as c:
        stored = dict(
            c.execute(
                "SELECT state, count(*) FROM waybills WHERE code LIKE 'YD%%' GROUP BY state"
            ).fetchall()
        )
        unlinked = c.execute(
            "SELECT count(*) FROM waybills w JOIN vehicles v ON v.id = w.vehicle_id"
            " WHERE v.enterprise_id IS DISTINCT FROM w.carrier_id"
        ).fetchone()
        ids = dict(c.execute("SELECT code, id FROM waybills WHERE code LIKE 'YD%%'").fetchall())
    assert stored == chain["waybills_by_state"]
    assert unlinked == (0,)
    assert chain["planned_refused_at_loading"], "some planned loads must fail their checks"
    loading_day = dt.date.fromisoformat(doc["day"]) + dt.timedelta(days=2)

    async def judged() -> dict[str, list[str]]:
        out = {}
        async with await psycopg.AsyncConnection.connect(seeded_url) as conn:
            for code, wid in ids.items():
                facts = await loading_facts(conn, wid)
                if facts is not None and facts.state == "planned":
                    failures = [f.check for f in judge(facts, loading_day)]
                    if failures:
                        out[code] = failures
        return out

    assert asyncio.run(judged()) == chain["planned_refused_at_loading"]


CST = dt.timezone(dt.timedelta(hours=8))


def _stay(vid: int, t0: dt.datetime, lon: float, lat: float, minutes: int) -> list[dict[str, Any]]:
    return [
        {"vehicle_id": vid, "ts": (t0 + dt.timedelta(seconds=30 * i)).isoformat(),
         "lon": lon, "lat": lat, "speed_kmh": 0, "heading": 0}
        for i in range(minutes * 2)
    ]  # fmt: skip


def _drive(
    vid: int, t0: dt.datetime, a: tuple[float, float], b: tuple[float, float], steps: int
) -> list[dict[str, Any]]:
    return [
        {"vehicle_id": vid, "ts": (t0 + dt.timedelta(seconds=30 * i)).isoformat(),
         "lon": a[0] + (b[0] - a[0]) * i / steps, "lat": a[1] + (b[1] - a[1]) * i / steps,
         "speed_kmh": 45, "heading": 45}
        for i in range(1, steps + 1)
    ]  # fmt: skip


def _posted(http: Any, fixes: list[dict[str, Any]]) -> None:
    response = http.post("/api/positions", json=fixes)
    assert response.status_code == 200, response.text
    assert response.json()["accepted"] == len(fixes), response.text


def test_a_stop_at_the_declared_sites_is_the_loading_and_the_unloading(
    live_server: LiveServer, chain: dict[str, Any]
) -> None:
    origin = (LON + 0.02, LAT + 0.02)  # the shipper's location
    destination = (LON + 0.05, LAT + 0.05)  # the consignee's
    t0 = dt.datetime(2026, 11, 20, 8, 0, tzinfo=CST)
    vid = chain["ok"]
    with live_server.client() as admin:
        wid = _create(
            admin,
            chain,
            planned_departure="2026-11-20T08:30:00+08:00",
            planned_arrival="2026-11-20T11:00:00+08:00",
        )
        _posted(admin, _stay(vid, t0, *origin, 8))
        assert admin.get(f"/api/waybills/{wid}").json()["properties"]["state"] == "loading"
        leave = t0 + dt.timedelta(minutes=8)
        _posted(admin, _drive(vid, leave, origin, destination, 14))
        assert admin.get(f"/api/waybills/{wid}").json()["properties"]["state"] == "in_transit"
        arrive = leave + dt.timedelta(minutes=7, seconds=30)
        _posted(admin, _stay(vid, arrive, *destination, 8))
        away = (destination[0] + 0.02, destination[1] + 0.02)
        _posted(admin, _drive(vid, arrive + dt.timedelta(minutes=8), destination, away, 6))
        history = admin.get(f"/api/waybills/{wid}/events").json()["items"]
        assert admin.get(f"/api/waybills/{wid}").json()["properties"]["state"] == "delivered"
    assert [(e["kind"], e["source"]) for e in history] == [
        ("loading", "derived"),
        ("loaded", "derived"),
        ("unloading", "derived"),
        ("unloaded", "derived"),
    ]
    assert dt.datetime.fromisoformat(history[0]["at"]) == t0
    assert history[2]["lon"] == pytest.approx(destination[0], abs=1e-6)

    # A vehicle whose tank inspection expired a month ago stops at the origin two days ago:
    # the loading is refused, and recorded once for the stop however many batches show it.
    with psycopg.connect(live_server.url, autocommit=True) as c:
        (lapsed,) = c.execute(
            "INSERT INTO vehicles (plate, carrier, enterprise_id, capacity_t, district,"
            " road_permit_no, road_permit_expiry, tank_inspection_expiry)"
            " SELECT %s, carrier, enterprise_id, 30, district, 'P-LAPSED', current_date + 90,"
            " current_date - 30 FROM vehicles WHERE id = %s RETURNING id",
            (f"浙B{TAG[-4:]}5", vid),
        ).fetchone()
    day = dt.datetime.now(CST).date() - dt.timedelta(days=2)
    t1 = dt.datetime.combine(day, dt.time(8), CST)
    with live_server.client() as admin:
        refused = _create(
            admin,
            chain,
            vehicle_id=lapsed,
            planned_departure=t1.isoformat(),
            planned_arrival=(t1 + dt.timedelta(hours=3)).isoformat(),
        )
        fixes = _stay(lapsed, t1, *origin, 8)
        _posted(admin, fixes[:8])
        _posted(admin, fixes[8:])
        history = admin.get(f"/api/waybills/{refused}/events").json()["items"]
        assert admin.get(f"/api/waybills/{refused}").json()["properties"]["state"] == "planned"
    assert [(e["kind"], e["source"]) for e in history] == [("loading_refused", "derived")]
    assert [f["check"] for f in history[0]["failures"]] == ["tank_inspection"]
