"""The ``mixed_loading`` warning model (issue 14 item 3): a tank loaded with a class
incompatible with what it last unloaded and no washing-station stop between, or loaded while an
incompatible load is still on board — raised from the parties' events (real HTTP) and from the
loading derived from a stop at the origin (fixes posted over HTTP), routed to its departments
and the carrier. Incompatibility is the SAMPLE table of compatibility.py."""

from __future__ import annotations

import datetime as dt
from typing import Any

import psycopg
import pytest

from layers.transport.warnings.compatibility import incompatible
from tests.conftest import LiveServer, key_for
from tests.planting import plant_chain, square_wkt

TAG = "883014"
LON, LAT = 122.85, 28.15
ORIGIN = (LON + 0.02, LAT + 0.02)  # the shipper's (loading party's) site
DESTINATION = (LON + 0.05, LAT + 0.05)  # the consignee's
WASH = (LON + 0.08, LAT + 0.02)  # a washing station, far from both sites
CST = dt.timezone(dt.timedelta(hours=8))
DAY = dt.datetime.now(CST).date() - dt.timedelta(days=3)
GASOLINE = ("3", "1203", "汽油")
PEROXIDE = ("5.1", "2014", "过氧化氢水溶液")
ACID = ("8", "1830", "硫酸")


def at(hour: int, minute: int = 0) -> dt.datetime:
    return dt.datetime.combine(DAY, dt.time(hour, minute), CST)


@pytest.fixture(scope="module")
def chain(database_url: str) -> dict[str, Any]:
    """The chain's parties, a washing station, and one valid vehicle of carrier X per case."""
    with psycopg.connect(database_url, autocommit=True) as c:
        out = plant_chain(c, TAG, LON, LAT)
        c.execute(
            "INSERT INTO zones (code, name, kind, geom)"
            " VALUES (%s, '测试洗消站', 'washing_station', ST_GeomFromText(%s, 4326))",
            (f"WASH-{TAG}", square_wkt(*WASH, 0.002)),
        )
        out["v"] = {}
        for n, case in enumerate(
            ("unwashed", "washed", "washed_early", "same", "on_board", "compatible", "derived")
        ):
            (vid,) = c.execute(
                "INSERT INTO vehicles (plate, carrier, enterprise_id, hazmat_class, un_number,"
                " capacity_t, district, tank_type, tank_volume_m3, road_permit_no,"
                " road_permit_expiry, tank_inspection_expiry) SELECT %s, carrier, enterprise_id,"
                " hazmat_class, un_number, capacity_t, district, tank_type, tank_volume_m3, %s,"
                " road_permit_expiry, tank_inspection_expiry FROM vehicles WHERE id = %s"
                " RETURNING id",
                (f"浙M{TAG[-4:]}{n}", f"PM{TAG}{n}", out["ok"]),
            ).fetchone()
            out["v"][case] = vid
    return out


_serial = iter(range(1, 10_000))


def _waybill(
    http: Any,
    chain: dict[str, Any],
    vid: int,
    goods: tuple[str, str, str],
    depart: dt.datetime,
) -> tuple[int, str]:
    code = f"ML{TAG}-{next(_serial)}"
    props = {
        "code": code,
        "shipper_id": chain["shipper"],
        "carrier_id": chain["x"],
        "consignee_id": chain["consignee"],
        "loading_party_id": chain["shipper"],
        "hazmat_class": goods[0],
        "un_number": goods[1],
        "substance_name": goods[2],
        "quantity_t": 20,
        "vehicle_id": vid,
        "driver_id": chain["driver"],
        "escort_id": chain["escort"],
        "origin_id": chain["shipper"],
        "destination_id": chain["consignee"],
        "corridor_m": 500,
        "planned_departure": depart.isoformat(),
        "planned_arrival": (depart + dt.timedelta(hours=3)).isoformat(),
    }
    route = {"type": "LineString", "coordinates": [list(ORIGIN), list(DESTINATION)]}
    r = http.post("/api/waybills", json={"type": "Feature", "geometry": route, "properties": props})
    assert r.status_code == 201, r.text
    return int(r.json()["id"]), code


def _event(http: Any, wid: int, kind: str, when: dt.datetime, where: Any = None) -> None:
    body: dict[str, Any] = {"kind": kind, "at": when.isoformat()}
    if where is not None:
        body |= {"lon": where[0], "lat": where[1]}
    r = http.post(f"/api/waybills/{wid}/events", json=body)
    assert r.status_code == 201, r.text


class Parties:
    def __init__(self, server: LiveServer, chain: dict[str, Any]) -> None:
        self.admin = server.client()
        self.loader = server.client(
            key=key_for(server.url, "enterprise", enterprise_id=chain["shipper"])
        )
        self.consignee = server.client(
            key=key_for(server.url, "enterprise", enterprise_id=chain["consignee"])
        )

    def delivered(self, chain: dict[str, Any], vid: int, goods: tuple[str, str, str]) -> str:
        """A load of ``goods`` carried and unloaded in the morning (06:00–09:30)."""
        wid, code = _waybill(self.admin, chain, vid, goods, at(6))
        _event(self.loader, wid, "loading", at(6), ORIGIN)
        _event(self.loader, wid, "loaded", at(6, 30), ORIGIN)
        _event(self.consignee, wid, "unloading", at(9), DESTINATION)
        _event(self.consignee, wid, "unloaded", at(9, 30), DESTINATION)
        return code

    def close(self) -> None:
        for c in (self.admin, self.loader, self.consignee):
            c.close()


@pytest.fixture()
def parties(live_server: LiveServer, chain: dict[str, Any]) -> Any:
    p = Parties(live_server, chain)
    yield p
    p.close()


def _mixed(http: Any, vid: int) -> list[dict[str, Any]]:
    r = http.get("/api/alerts", params={"vehicle_id": vid})
    assert r.status_code == 200
    return [
        f["properties"] | {"coordinates": f["geometry"]["coordinates"]}
        for f in r.json()["features"]
        if f["properties"]["rule"] == "mixed_loading"
    ]


def _stay(vid: int, t0: dt.datetime, where: tuple[float, float], minutes: int) -> list[Any]:
    return [
        {"vehicle_id": vid, "ts": (t0 + dt.timedelta(seconds=30 * i)).isoformat(),
         "lon": where[0], "lat": where[1], "speed_kmh": 0, "heading": 0}
        for i in range(minutes * 2)
    ]  # fmt: skip


def _drive(vid: int, t0: dt.datetime, a: Any, b: Any, steps: int) -> list[Any]:
    return [
        {"vehicle_id": vid, "ts": (t0 + dt.timedelta(seconds=30 * i)).isoformat(),
         "lon": a[0] + (b[0] - a[0]) * i / steps, "lat": a[1] + (b[1] - a[1]) * i / steps,
         "speed_kmh": 45, "heading": 90}
        for i in range(1, steps + 1)
    ]  # fmt: skip


def _posted(http: Any, fixes: list[Any]) -> None:
    r = http.post("/api/positions", json=fixes)
    assert r.status_code == 200, r.text
    assert r.json()["accepted"] == len(fixes), r.text


def _wash(http: Any, vid: int, start: dt.datetime) -> None:
    """Drive to the washing station, stay 8 minutes, drive off: a stop the detector makes."""
    away = (WASH[0] - 0.02, WASH[1])
    fixes = _drive(vid, start - dt.timedelta(minutes=3, seconds=30), away, WASH, 6)
    fixes += _stay(vid, start, WASH, 8)
    fixes += _drive(vid, start + dt.timedelta(minutes=8), WASH, away, 6)
    _posted(http, fixes)


def test_the_sample_table_pairs_classes_and_divisions() -> None:
    assert incompatible("3", "5.1") and incompatible("5.1", "3")
    assert not incompatible("3", "3") and not incompatible("5.1", "5.1")
    assert incompatible("5", "3")  # a bare class may be either of its divisions
    assert incompatible("4", "8") and not incompatible("4.1", "8")
    assert incompatible("1.1", "9") and not incompatible("1.1", "1.4")
    assert not incompatible("3", "8") and not incompatible("2.2", "5.1")


def test_an_unwashed_tank_loaded_with_an_incompatible_class_is_one_alert(
    live_server: LiveServer, chain: dict[str, Any], parties: Parties
) -> None:
    vid = chain["v"]["unwashed"]
    before = parties.delivered(chain, vid, GASOLINE)
    assert _mixed(parties.admin, vid) == []  # a first load after an empty history: nothing
    wid, code = _waybill(parties.admin, chain, vid, PEROXIDE, at(13))
    _event(parties.loader, wid, "loading", at(13), ORIGIN)
    _event(parties.loader, wid, "loaded", at(13, 40), ORIGIN)  # the same loading, judged again
    (alert,) = _mixed(parties.admin, vid)
    d = alert["details"]
    assert d["findings"] == ["unwashed_tank"] and d["washing_station_stop"] is False
    assert d["loaded"] == {
        "waybill": code, "hazmat_class": "5.1", "un_number": "2014", "substance": "过氧化氢水溶液"
    }  # fmt: skip
    assert d["previous"]["waybill"] == before and d["previous"]["hazmat_class"] == "3"
    assert d["previous"]["un_number"] == "1203" and d["previous"]["substance"] == "汽油"
    assert dt.datetime.fromisoformat(d["previous"]["unloaded_at"]) == at(9, 30)
    assert d["previous"]["unload_lon"] == pytest.approx(DESTINATION[0])
    assert dt.datetime.fromisoformat(alert["episode_start"]) == at(13)
    assert alert["zone_id"] is None and alert["severity"] == "severe"
    assert sorted(alert["departments"]) == ["market_regulation", "transport"]
    # The carrier reads it with its own key; the consignee (not the carrier) does not.
    with live_server.client(
        key=key_for(live_server.url, "enterprise", enterprise_id=chain["x"])
    ) as carrier:
        mine = carrier.get("/api/alerts", params={"vehicle_id": vid})
        assert mine.status_code == 200
        assert [f["id"] for f in mine.json()["features"]] == [alert["id"]]


def test_a_washing_station_stop_between_makes_it_legal_but_only_after_the_unloading(
    chain: dict[str, Any], parties: Parties
) -> None:
    washed, early = chain["v"]["washed"], chain["v"]["washed_early"]
    for vid, wash_at in ((washed, at(11)), (early, at(7, 30))):
        parties.delivered(chain, vid, GASOLINE)
        _wash(parties.admin, vid, wash_at)
        wid, _ = _waybill(parties.admin, chain, vid, PEROXIDE, at(13))
        _event(parties.loader, wid, "loading", at(13), ORIGIN)
    assert _mixed(parties.admin, washed) == []
    # Washed while still loaded, before unloading the gasoline: the tank was not cleaned.
    (alert,) = _mixed(parties.admin, early)
    assert alert["details"]["findings"] == ["unwashed_tank"]


def test_the_same_class_twice_is_legal(chain: dict[str, Any], parties: Parties) -> None:
    vid = chain["v"]["same"]
    parties.delivered(chain, vid, GASOLINE)
    wid, _ = _waybill(parties.admin, chain, vid, GASOLINE, at(13))
    _event(parties.loader, wid, "loading", at(13), ORIGIN)
    _event(parties.loader, wid, "loaded", at(13, 30), ORIGIN)
    assert _mixed(parties.admin, vid) == []


def test_an_incompatible_load_still_on_board_is_mixed_loading(
    chain: dict[str, Any], parties: Parties
) -> None:
    vid, twin = chain["v"]["on_board"], chain["v"]["compatible"]
    first = {}
    for v in (vid, twin):
        wid, first[v] = _waybill(parties.admin, chain, v, GASOLINE, at(6))
        _event(parties.loader, wid, "loading", at(6), ORIGIN)
        _event(parties.loader, wid, "loaded", at(6, 30), ORIGIN)
    wid, code = _waybill(parties.admin, chain, vid, PEROXIDE, at(8))
    _event(parties.loader, wid, "loading", at(8), ORIGIN)
    (alert,) = _mixed(parties.admin, vid)
    d = alert["details"]
    assert d["findings"] == ["incompatible_on_board"] and d["loaded"]["waybill"] == code
    assert d["on_board"] == [
        {"waybill": first[vid], "hazmat_class": "3", "un_number": "1203", "substance": "汽油"}
    ]
    # Gasoline with sulphuric acid is not a pair of the table: nothing.
    wid, _ = _waybill(parties.admin, chain, twin, ACID, at(8))
    _event(parties.loader, wid, "loading", at(8), ORIGIN)
    assert _mixed(parties.admin, twin) == []


def test_a_loading_derived_from_a_stop_at_the_origin_is_judged_too(
    chain: dict[str, Any], parties: Parties
) -> None:
    vid = chain["v"]["derived"]
    parties.delivered(chain, vid, GASOLINE)
    wid, code = _waybill(parties.admin, chain, vid, PEROXIDE, at(14))
    t0 = at(13, 50)
    stay = _stay(vid, t0, ORIGIN, 8)
    leave = _drive(vid, t0 + dt.timedelta(minutes=8), ORIGIN, DESTINATION, 10)
    _posted(parties.admin, stay)
    assert parties.admin.get(f"/api/waybills/{wid}").json()["properties"]["state"] == "loading"
    _posted(parties.admin, leave)
    replay = parties.admin.post("/api/positions", json=stay + leave).json()
    assert replay["duplicates"] == len(stay + leave)  # a replay adds nothing
    assert parties.admin.get(f"/api/waybills/{wid}").json()["properties"]["state"] == "in_transit"
    (alert,) = _mixed(parties.admin, vid)
    assert alert["details"]["loaded"]["waybill"] == code
    assert dt.datetime.fromisoformat(alert["episode_start"]) == t0
    assert alert["coordinates"] == pytest.approx(list(ORIGIN), abs=1e-4)  # where it loaded
    assert alert["revision"] == 1


def test_the_pure_judge_needs_an_incompatible_unwashed_previous_load_or_a_clash() -> None:
    from layers.transport.warnings.mixed_loading import judge_loading

    base = {
        "vehicle_id": 1, "code": "W2", "hazmat_class": "5.1", "un_number": "2014",
        "substance_name": "过氧化氢水溶液", "load_at": at(13), "lon": ORIGIN[0], "lat": ORIGIN[1],
        "prev_code": "W1", "prev_class": "3", "prev_un": "1203", "prev_substance": "汽油",
        "unloaded_at": at(9, 30), "unload_lon": 0.0, "unload_lat": 0.0, "washed": False,
        "on_board": [],
    }  # fmt: skip
    hit = judge_loading(base)
    assert (
        hit is not None
        and hit.start_us == hit.end_us
        and hit.details["findings"] == ["unwashed_tank"]
    )
    assert judge_loading(base | {"washed": True}) is None
    assert judge_loading(base | {"prev_class": "5.1"}) is None
    assert judge_loading(base | {"prev_class": None}) is None
    clash = [{"waybill": "W0", "hazmat_class": "4.2", "un_number": "1361", "substance": "碳"}]
    both = judge_loading(base | {"on_board": clash})
    assert both is not None
    assert both.details["findings"] == ["unwashed_tank", "incompatible_on_board"]
    fine = [{"waybill": "W0", "hazmat_class": "8", "un_number": "1830", "substance": "硫酸"}]
    assert judge_loading(base | {"washed": True, "on_board": fine}) is None
