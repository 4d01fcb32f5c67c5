"""Trips under a waybill (layers/transport/warnings/{escort,waybill_corridor,waybill_stops}.py):
no escort, off the waybill's corridor, stops at undeclared places and at the wrong enterprise —
fixes posted over real HTTP, alerts read back through GET /api/alerts.

The chain lives in an area of its own (128.5 E, 37.5 N): the shipper at S, the consignee at C
about 4.3 km away, the waybills' corridor 300 m either side of the straight road between them;
along it a washing station, a designated lot and another hazmat store; one vehicle per trip.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

import httpx
import psycopg
import pytest

from layers.transport.config import TankerRules
from layers.transport.warnings.chain import NEVER, Waybill
from layers.transport.warnings.escort import exempt, judge_trip
from layers.transport.warnings.waybill_corridor import Earlier, candidate, runs
from tests.conftest import LiveServer, key_for
from tests.planting import square_wkt
from tests.wbtrips import DEPARTMENTS, Track, alerts, along, mine, plant, post, waybill

TAG = "773202"
LON, LAT = 128.50, 37.50
T0 = (dt.datetime.now(dt.UTC) - dt.timedelta(hours=20)).replace(second=0, microsecond=0)


@pytest.fixture(scope="module")
def chain(database_url: str) -> dict[str, Any]:
    with psycopg.connect(database_url, autocommit=True) as c:
        out = plant(c, TAG, LON, LAT, 5)
        s, d = out["origin"], out["destination"]
        out["wash"], out["lot"], out["other"] = (along(s, d, f) for f in (0.3, 0.45, 0.6))
        for code, kind, name, p in (
            (f"W{TAG}", "washing_station", "测试洗消站", out["wash"]),
            (f"P{TAG}", "designated_parking", "测试危化品停车场", out["lot"]),
        ):
            c.execute(
                "INSERT INTO zones (code, name, kind, geom)"
                " VALUES (%s, %s, %s, ST_GeomFromText(%s, 4326))",
                (code, name, kind, square_wkt(*p, 0.0015)),
            )
        (out["other_id"],) = c.execute(
            "INSERT INTO enterprises (credit_code, name, category, is_hazmat, geom) VALUES"
            " (%s, %s, 'storage', true, ST_SetSRID(ST_Point(%s, %s), 4326)) RETURNING id",
            (f"91330200{TAG}0009", f"别家仓储{TAG}", *out["other"]),
        ).fetchone()
    return out


def _on(chain: dict[str, Any], f: float, off_m: float = 0.0) -> tuple[float, float]:
    return along(chain["origin"], chain["destination"], f, off_m)


def _away(chain: dict[str, Any]) -> tuple[float, float]:
    d = chain["destination"]
    return d[0] + 0.02, d[1] + 0.02


def _us(iso: str) -> dt.datetime:
    return dt.datetime.fromisoformat(iso)


def test_a_loaded_vehicle_with_a_valid_waybill_on_its_corridor_raises_nothing(
    client: httpx.Client, chain: dict[str, Any]
) -> None:
    vid = chain["v"][0]
    wid = waybill(client, chain, f"WB{TAG}-0", T0, vehicle_id=vid)
    track = (
        Track(vid, T0, chain["origin"]).stay(20).go(chain["destination"]).stay(20).go(_away(chain))
    )
    post(client, track.fixes, size=20)
    events = client.get(f"/api/waybills/{wid}/events").json()["items"]
    assert [e["kind"] for e in events] == ["loading", "loaded", "unloading", "unloaded"]
    assert mine(client, vid) == {}


def _excursions(vid: int, chain: dict[str, Any]) -> Track:
    """Load at S; 60 s off the corridor (too short), later 210 s off it 1.2 km from the road;
    deliver at C."""
    track = Track(vid, T0, chain["origin"]).stay(8).go(_on(chain, 0.25))
    track.path([_on(chain, f, 800) for f in (0.26, 0.27, 0.28)]).path([_on(chain, 0.29)])
    track.go(_on(chain, 0.39))
    track.path([_on(chain, 0.40 + f / 50, 1200) for f in range(8)]).path([_on(chain, 0.56)])
    return track.go(chain["destination"]).stay(20).go(_away(chain))


def test_leaving_the_waybills_corridor_is_one_alert_per_episode(
    client: httpx.Client, chain: dict[str, Any]
) -> None:
    vid = chain["v"][1]
    wid = waybill(client, chain, f"WB{TAG}-1", T0, vehicle_id=vid)
    track = _excursions(vid, chain)
    post(client, track.fixes, size=10)
    got = alerts(client, vid, "waybill_corridor_deviation")
    assert len(got) == 1
    a = got[0]
    assert a["details"]["waybill"] == f"WB{TAG}-1" and a["details"]["waybill_id"] == wid
    assert a["details"]["duration_s"] == 210 and a["details"]["fixes"] == 8
    # 1.2 km from the road is 900 m beyond the 300 m corridor.
    assert a["details"]["max_distance_m"] == pytest.approx(900, abs=25)
    assert a["active"] is False
    assert sorted(a["departments"]) == sorted(DEPARTMENTS["waybill_corridor_deviation"])
    assert mine(client, vid) == {"waybill_corridor_deviation": 1}
    # The planned-route rule (vehicle_routes) is another rule and stays silent.
    assert alerts(client, vid, "corridor_deviation") == []


def test_a_back_filled_excursion_joins_the_trip(
    client: httpx.Client, chain: dict[str, Any]
) -> None:
    vid = chain["v"][2]
    waybill(client, chain, f"WB{TAG}-2", T0, vehicle_id=vid)
    fixes = _excursions(vid, chain).fixes
    k = next(i for i, f in enumerate(fixes) if f["lon"] == round(_on(chain, 0.40, 1200)[0], 7))
    blind = fixes[k : k + 8]
    post(client, [f for f in fixes if f not in blind], size=50)
    assert mine(client, vid) == {}
    post(client, blind[::-1])  # the blind-area batch, out of order, after delivery
    got = alerts(client, vid, "waybill_corridor_deviation")
    assert len(got) == 1 and got[0]["active"] is False
    assert got[0]["details"]["duration_s"] == 210
    assert _us(got[0]["episode_start"]) == _us(blind[0]["ts"])


def test_a_waybill_in_transit_without_an_escort_is_one_alert_until_delivered(
    live_server: LiveServer, client: httpx.Client, chain: dict[str, Any], db: psycopg.Connection
) -> None:
    vid = chain["v"][3]
    wid = waybill(client, chain, f"WB{TAG}-3", T0, vehicle_id=vid, escort_id=None)
    # Loaded by an import that skipped the loading party's checks (as the seed files do).
    loaded = T0 + dt.timedelta(minutes=10)
    db.execute("UPDATE waybills SET state = 'in_transit', state_changed_at = %s WHERE id = %s",
               (loaded, wid))  # fmt: skip
    db.execute(
        "INSERT INTO waybill_events (waybill_id, kind, from_state, to_state, at, source, actor)"
        " VALUES (%s, 'loading', 'planned', 'loading', %s, 'api', 'test'),"
        " (%s, 'loaded', 'loading', 'in_transit', %s, 'api', 'test')",
        (wid, T0, wid, loaded),
    )
    track = Track(vid, loaded, chain["origin"]).go(_on(chain, 0.5))
    post(client, track.fixes, size=4)
    got = alerts(client, vid, "no_escort")
    assert len(got) == 1
    a = got[0]
    assert a["active"] is True and _us(a["episode_start"]) == loaded
    assert a["details"]["waybill"] == f"WB{TAG}-3" and a["details"]["escort"] is None
    assert a["details"]["hazmat_class"] == "3" and a["details"]["un_number"] == "1203"
    assert sorted(a["departments"]) == sorted(DEPARTMENTS["no_escort"])
    n = len(track.fixes)
    post(client, track.go(_on(chain, 0.7)).fixes[n:], size=3)
    again = alerts(client, vid, "no_escort")
    assert [x["id"] for x in again] == [a["id"]] and again[0]["revision"] == a["revision"]
    # The consignee reports it delivered; the next fixes close the alert.
    done = track.t
    consignee = key_for(live_server.url, "enterprise", enterprise_id=chain["consignee"])
    with live_server.client(key=consignee) as party:
        r = party.post(f"/api/waybills/{wid}/events",
                       json={"kind": "unloaded", "at": done.isoformat()})  # fmt: skip
        assert r.status_code == 201, r.text
    n = len(track.fixes)
    post(client, track.go(_away(chain)).fixes[n:])
    closed = alerts(client, vid, "no_escort")
    assert len(closed) == 1 and closed[0]["active"] is False
    assert _us(closed[0]["episode_end"]) == done
    carrier = key_for(live_server.url, "enterprise", enterprise_id=chain["x"])
    with live_server.client(key=carrier) as x:
        listed = x.get("/api/alerts", params={"vehicle_id": vid, "rule": "no_escort"}).json()
        assert [f["id"] for f in listed["features"]] == [a["id"]]


def test_stops_in_transit_undeclared_and_at_the_wrong_enterprise(
    client: httpx.Client, chain: dict[str, Any]
) -> None:
    vid = chain["v"][4]
    waybill(client, chain, f"WB{TAG}-4", T0, vehicle_id=vid)
    track = Track(vid, T0, chain["origin"]).stay(8)
    track.go(_on(chain, 0.15)).stay(25)  # a roadside, 25 min: under the 30 min allowed
    track.go(chain["wash"]).stay(40)  # a washing station: allowed
    track.go(chain["lot"]).stay(40)  # designated parking, 40 min: allowed
    track.go(chain["other"]).stay(20)  # another store's gate, 20 min: the wrong place
    track.go(_on(chain, 0.8))
    r2 = track.fixes[-1]["ts"]
    track.stay(35)  # a roadside, 35 min: undeclared
    track.go(chain["destination"]).stay(20).go(_away(chain))
    post(client, track.fixes, size=20)
    assert mine(client, vid) == {"undeclared_stop": 1, "wrong_destination": 1}
    (u,) = alerts(client, vid, "undeclared_stop")
    assert _us(u["episode_start"]) == _us(r2) and u["active"] is False
    assert u["details"]["duration_s"] == 35 * 60 and u["details"]["waybill"] == f"WB{TAG}-4"
    assert u["geometry"]["coordinates"] == pytest.approx(list(_on(chain, 0.8)), abs=1e-5)
    assert sorted(u["departments"]) == sorted(DEPARTMENTS["undeclared_stop"])
    assert u["stop_id"] is not None
    (w,) = alerts(client, vid, "wrong_destination")
    assert w["details"]["enterprise_name"] == f"别家仓储{TAG}"
    assert w["details"]["enterprise_id"] == chain["other_id"]
    assert w["details"]["consignee_name"] == f"收货{TAG}"
    assert w["details"]["consignee_id"] == chain["consignee"]
    assert w["details"]["duration_s"] == 20 * 60
    assert w["severity"] == "severe"
    assert sorted(w["departments"]) == sorted(DEPARTMENTS["wrong_destination"])
    # Its CAP 1.2 message names the event and carries the severity.
    cap = client.get(f"/api/alerts/{w['id']}.cap")
    assert cap.status_code == 200
    assert "<severity>Severe</severity>" in cap.text
    assert "危化品运输车辆到达非申报收货单位" in cap.text or "other than the declared" in cap.text


def _waybill(**over: Any) -> Waybill:
    base: dict[str, Any] = {
        "id": 1, "code": "W1", "vehicle_id": 9, "state": "in_transit", "escort_id": None,
        "driver_id": 3, "hazmat_class": "2.2", "un_number": "1066", "substance": "氮",
        "origin_id": 1, "destination_id": 2, "consignee_id": 2, "consignee_name": "C",
        "origin": (0.0, 0.0), "destination": (1.0, 1.0), "has_corridor": True,
        "active_from": 0, "transit_from": 10, "active_to": NEVER,
    }  # fmt: skip
    return Waybill(**(base | over))


def test_escort_exemptions_and_the_corridor_minimum() -> None:
    rules = TankerRules()
    assert judge_trip(_waybill(), [(20, 0.0, 0.0)], rules) is not None
    gases = TankerRules(escort_exempt_classes=("2",))
    assert exempt("2.2", gases) and exempt("2", gases) and not exempt("3", gases)
    assert not exempt("2.2", TankerRules(escort_exempt_classes=("2.1",)))
    assert judge_trip(_waybill(), [(20, 0.0, 0.0)], gases) is None
    assert judge_trip(_waybill(escort_id=4), [(20, 0.0, 0.0)], rules) is None
    assert judge_trip(_waybill(), [(5, 0.0, 0.0)], rules) is None  # before the transit
    s = int(rules.corridor_min_s * 1e6)
    w = _waybill()

    def run(last: int, earlier: tuple[Earlier, ...] = ()) -> list[Any]:
        fixes = [(0, 0.0, 0.0, 0.0), (1, 0.0, 0.0, 50.0), (1 + last, 0.0, 0.0, 80.0)]
        found = runs(w, [*fixes, (2 + last, 0.0, 0.0, 0.0)], 0, 2 + last, earlier)
        return [c for r in found if (c := candidate(r, rules)) is not None]

    assert run(s - 1) == []
    (e,) = run(s)
    assert (e.start_us, e.end_us, e.active) == (1, 1 + s, False)
    assert e.details["max_distance_m"] == 80.0
    # A run read from the window's first fix continues an earlier alert reaching it.
    w = _waybill()
    before = Earlier(-s, 0, 120.0, 5.0, 6.0)
    found = runs(w, [(1, 0.0, 0.0, 80.0), (10, 0.0, 0.0, 70.0)], 1, 10, [before])
    (c,) = [candidate(r, rules) for r in found]
    assert c is not None and c.start_us == -s and c.active is True
    assert c.details["max_distance_m"] == 120.0 and (c.lon, c.lat) == (5.0, 6.0)
