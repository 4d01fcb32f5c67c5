"""Loads without a waybill and failed loading checks (layers/transport/warnings/unwaybilled.py,
loading_checks.py): fixes posted over real HTTP, alerts read back through GET /api/alerts.

The chain lives in an area of its own (127.5 E, 36.5 N): the shipper (a store, where loads are
filled) at S, the consignee (a user) at C, about 4.3 km apart; one vehicle per scenario.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

import httpx
import psycopg
import pytest

from layers.transport.config import TankerRules
from layers.transport.warnings.trips import SiteStop, Trip, loaded_trips
from layers.transport.warnings.unwaybilled import Moves, moving_candidates
from tests.conftest import LiveServer, key_for
from tests.wbtrips import DEPARTMENTS, Track, alerts, metres, mine, plant, post, waybill

TAG = "773101"
LON, LAT = 127.50, 36.50
#: Yesterday, on the minute (the loading's local day is the day the papers are judged on).
T0 = (dt.datetime.now(dt.UTC) - dt.timedelta(hours=20)).replace(second=0, microsecond=0)


@pytest.fixture(scope="module")
def chain(database_url: str) -> dict[str, Any]:
    with psycopg.connect(database_url, autocommit=True) as c:
        out = plant(c, TAG, LON, LAT, 6)
        # v[4]'s tank inspection lapsed: its loadings are refused.
        c.execute(
            "UPDATE vehicles SET tank_inspection_expiry = current_date - 5 WHERE id = %s",
            (out["v"][4],),
        )
    return out


def _away(chain: dict[str, Any]) -> tuple[float, float]:
    d = chain["destination"]
    return d[0] + 0.02, d[1] + 0.02


def _delivery(vid: int, chain: dict[str, Any], load_min: float = 20) -> Track:
    """Load at S, drive to C, unload there, drive on."""
    return (
        Track(vid, T0, chain["origin"])
        .stay(load_min)
        .go(chain["destination"])
        .stay(20)
        .go(_away(chain))
    )


def _us(iso: str) -> dt.datetime:
    return dt.datetime.fromisoformat(iso)


def test_a_load_driven_without_a_waybill_is_one_alert_per_trip(
    live_server: LiveServer, client: httpx.Client, chain: dict[str, Any]
) -> None:
    vid = chain["v"][0]
    track = _delivery(vid, chain)
    post(client, track.fixes, size=10)  # as a live terminal delivers
    got = alerts(client, vid, "moving_without_waybill")
    assert len(got) == 1
    a = got[0]
    d = a["details"]
    assert d["loading_site"] == f"发货{TAG}" and d["unloading_site"] == f"收货{TAG}"
    assert d["waybill"] is None
    assert d["max_distance_m"] == pytest.approx(
        metres(chain["origin"], chain["destination"]), abs=60
    )
    # The episode runs from leaving the loading stop (its last fix) to the unloading stop.
    left = T0 + dt.timedelta(seconds=30 * 39)
    assert _us(a["episode_start"]) == left
    assert a["active"] is False and a["severity"] == "severe"
    assert sorted(a["departments"]) == sorted(DEPARTMENTS["moving_without_waybill"])
    # No waybill names an escort; its papers were valid: no failed check.
    assert mine(client, vid) == {"moving_without_waybill": 1, "no_escort": 1}
    lonely = alerts(client, vid, "no_escort")[0]
    assert lonely["details"]["reason"] == "no waybill names an escort"
    assert _us(lonely["episode_start"]) == left
    # The carrier reads it with its own key.
    carrier = key_for(live_server.url, "enterprise", enterprise_id=chain["x"])
    with live_server.client(key=carrier) as x:
        r = x.get("/api/alerts", params={"vehicle_id": vid, "rule": "moving_without_waybill"})
        assert r.status_code == 200
        assert [f["id"] for f in r.json()["features"]] == [a["id"]]
    other = key_for(live_server.url, "enterprise", enterprise_id=chain["y"])
    with live_server.client(key=other) as y:
        assert y.get(f"/api/alerts/{a['id']}").status_code == 403
    queue = client.get("/api/alerts", params={"department": "transport", "vehicle_id": vid})
    assert a["id"] in {f["id"] for f in queue.json()["features"]}


def test_short_loads_and_short_moves_raise_nothing_until_the_thresholds(
    client: httpx.Client, chain: dict[str, Any]
) -> None:
    # 14 min at the store is no loading (site_loading_min_s = 15 min).
    brief = chain["v"][1]
    post(client, _delivery(brief, chain, load_min=14).fixes)
    assert mine(client, brief) == {}
    # Loaded, 1.5 km from the store and parked there: not yet on the road (2 km).
    v = chain["v"][2]
    s = chain["origin"]
    near, far = (s[0] - 0.0135, s[1] - 0.0135), (s[0] - 0.0225, s[1] - 0.0225)
    track = Track(v, T0, s).stay(20).go(near).stay(20)
    post(client, track.fixes)
    assert 1400 < metres(s, near) < 2000 < metres(s, far)
    assert mine(client, v) == {}
    start = len(track.fixes)
    post(client, track.go(far).fixes[start:])
    got = alerts(client, v, "moving_without_waybill")
    assert len(got) == 1 and got[0]["active"] is True  # still on the road, loaded
    assert got[0]["details"]["max_distance_m"] > 2000
    assert "unloading_site" not in got[0]["details"]


def _stop(k: int, start: int, end: int, category: str = "storage", site: int = 1) -> SiteStop:
    return SiteStop(k, 9, start, end, False, 0.0, 0.0, site, f"site{site}", category)


def test_the_thresholds_edges_and_the_trip_machine() -> None:
    rules = TankerRules()
    load = _stop(1, 0, 900_000_000)
    trip = Trip(load, None)
    s = int(rules.unwaybilled_min_s * 1e6)
    at = load.end_us

    def raised(moved_us: int, far: float) -> list[str]:
        moves = Moves(at + moved_us, far, 0.0, 0.0)
        return [c.rule for c in moving_candidates(trip, None, moves, "3", rules)]

    assert raised(s - 1, 5000) == []
    assert raised(s, rules.unwaybilled_min_m - 0.1) == []
    assert raised(s, rules.unwaybilled_min_m) == ["moving_without_waybill", "no_escort"]
    exempt = TankerRules(escort_exempt_classes=("3",))
    moves = Moves(at + s, 3000, 0.0, 0.0)
    assert [c.rule for c in moving_candidates(trip, None, moves, "3", exempt)] == [
        "moving_without_waybill"
    ]
    # empty → loaded at a store; a stop at a user unloads; a user's site never loads.
    h = 3600 * 10**6
    stops = [
        _stop(1, 0, h, "use", 5),
        _stop(2, 2 * h, 3 * h, "storage", 1),
        _stop(3, 4 * h, 5 * h, "use", 2),
        _stop(4, 6 * h, 7 * h, "trading", 3),
        _stop(5, 8 * h, 9 * h, "trading", 3),  # back at the same site: reloaded
    ]
    trips = loaded_trips(stops)
    assert [(t.load.id, t.unload.id if t.unload else None) for t in trips] == [
        (2, 3),
        (4, 5),
        (5, None),
    ]


def test_a_back_filled_loading_gives_the_same_single_alert(
    client: httpx.Client, chain: dict[str, Any]
) -> None:
    vid = chain["v"][3]
    fixes = _delivery(vid, chain).fixes
    post(client, fixes[40:])  # the drive and the unloading first, live
    assert mine(client, vid) == {}
    post(client, fixes[:40])  # then the loading stop, from the terminal's blind-area memory
    got = alerts(client, vid, "moving_without_waybill")
    assert len(got) == 1 and got[0]["active"] is False
    assert _us(got[0]["episode_start"]) == T0 + dt.timedelta(seconds=30 * 39)
    post_again = client.post("/api/positions", json=fixes[30:60])
    assert post_again.status_code == 200 and post_again.json()["duplicates"] == 30
    assert mine(client, vid) == {"moving_without_waybill": 1, "no_escort": 1}


def test_loading_with_an_expired_tank_inspection_and_no_waybill(
    client: httpx.Client, chain: dict[str, Any]
) -> None:
    vid = chain["old"]  # tank inspection expired three days ago
    post(client, _delivery(vid, chain).fixes, size=25)
    got = alerts(client, vid, "loading_check_failed")
    assert len(got) == 1
    d = got[0]["details"]
    assert d["checks"] == ["tank_inspection"] and d["waybill"] is None
    assert "expired on" in d["failures"][0]["reason"]
    assert d["loading_site"] == f"发货{TAG}"
    # The episode is the loading stop: from its first fix to its last.
    assert _us(got[0]["episode_start"]) == T0
    assert _us(got[0]["episode_end"]) == T0 + dt.timedelta(seconds=30 * 39)
    assert sorted(got[0]["departments"]) == sorted(DEPARTMENTS["loading_check_failed"])
    assert got[0]["geometry"]["coordinates"] == pytest.approx(list(chain["origin"]), abs=1e-5)
    assert mine(client, vid) == {
        "loading_check_failed": 1,
        "moving_without_waybill": 1,
        "no_escort": 1,
    }


def test_a_refused_loading_is_one_alert_per_stop_however_often_refused(
    live_server: LiveServer, client: httpx.Client, chain: dict[str, Any]
) -> None:
    vid = chain["v"][4]  # tank inspection lapsed five days ago
    wid = waybill(client, chain, f"WB{TAG}-R", T0, vehicle_id=vid)
    # At the origin within the planned window: the loading is derived, and refused.
    track = Track(vid, T0, chain["origin"]).stay(8)
    post(client, track.fixes)
    got = alerts(client, vid, "loading_check_failed")
    assert len(got) == 1
    a = got[0]
    assert a["details"]["waybill"] == f"WB{TAG}-R" and a["details"]["waybill_id"] == wid
    assert a["details"]["checks"] == ["tank_inspection"]
    assert a["details"]["source"] == "derived"
    assert _us(a["episode_start"]) == T0
    assert sorted(a["departments"]) == sorted(DEPARTMENTS["loading_check_failed"])
    # The loading party tries again while the vehicle still stands there: refused again,
    # recorded again, but the same alert (updated), not a second one.
    loader = key_for(live_server.url, "enterprise", enterprise_id=chain["shipper"])
    with live_server.client(key=loader) as party:
        again = party.post(
            f"/api/waybills/{wid}/events",
            json={"kind": "loading", "at": (T0 + dt.timedelta(minutes=6)).isoformat()},
        )
        assert again.status_code == 409
    events = client.get(f"/api/waybills/{wid}/events").json()["items"]
    assert [e["kind"] for e in events] == ["loading_refused", "loading_refused"]
    got = alerts(client, vid, "loading_check_failed")
    assert len(got) == 1 and got[0]["id"] == a["id"]
    assert got[0]["details"]["source"] == "party" and got[0]["revision"] > a["revision"]
    # Refused, it leaves empty after 20 min at the store: no load moved without a waybill.
    n = len(track.fixes)
    post(client, track.stay(12).go(chain["destination"]).fixes[n:])
    assert mine(client, vid) == {"loading_check_failed": 1}
    # The carrier is told.
    carrier = key_for(live_server.url, "enterprise", enterprise_id=chain["x"])
    with live_server.client(key=carrier) as x:
        ids = {f["id"] for f in x.get("/api/alerts", params={"vehicle_id": vid}).json()["features"]}
        assert a["id"] in ids


def test_a_refusal_through_the_api_alone_stands_at_the_loading_place(
    live_server: LiveServer, client: httpx.Client, chain: dict[str, Any]
) -> None:
    vid = chain["v"][5]
    wid = waybill(client, chain, f"WB{TAG}-A", T0, vehicle_id=vid, escort_id=None)
    loader = key_for(live_server.url, "enterprise", enterprise_id=chain["shipper"])
    at = T0 + dt.timedelta(minutes=3)
    with live_server.client(key=loader) as party:
        r = party.post(
            f"/api/waybills/{wid}/events",
            json={"kind": "loading", "at": at.isoformat(), "lon": 127.6, "lat": 36.6},
        )
        assert r.status_code == 409
    got = alerts(client, vid, "loading_check_failed")
    assert len(got) == 1
    assert got[0]["details"]["checks"] == ["escort"]
    assert got[0]["details"]["source"] == "party"
    assert _us(got[0]["episode_start"]) == at and got[0]["active"] is False
    assert got[0]["geometry"]["coordinates"] == pytest.approx([127.6, 36.6])
    # A loading with every paper valid raises nothing (the twin of the refusals above).
    ok = chain["ok"]
    good = waybill(client, chain, f"WB{TAG}-OK", T0, vehicle_id=ok)
    with live_server.client(key=loader) as party:
        r = party.post(
            f"/api/waybills/{good}/events", json={"kind": "loading", "at": at.isoformat()}
        )
        assert r.status_code == 201, r.text
    assert mine(client, ok) == {}
