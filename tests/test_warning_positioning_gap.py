"""Positioning gap (issue 14 item 3): a vehicle carrying a ``loading`` / ``in_transit`` waybill
silent for longer than ``positioning_gap_max_s`` (20 min) on the road is one alert when it
reappears, with the silence's length and the distance between the fixes around it.

Tracks go over real HTTP (``POST /api/positions``) into a real PostGIS: the silence on the road
(one alert), the same silence begun in a designated parking lot or at the waybill's origin
(none), without a waybill (none), the threshold's edge (1,200 s none, 1,201 s one), and
blind-area back-fill (0x0704) shortening the silence, then filling it. Own area: 127.5 E, 35 N.
"""

from __future__ import annotations

import datetime as dt
import math
from collections.abc import Iterator
from typing import Any

import httpx
import psycopg
import pytest

from layers.transport.fix_filters import haversine_m
from tests.conftest import LiveServer, key_for
from tests.planting import plant_chain, square_wkt

TAG = "771409"
LON, LAT = 127.5, 35.0
ROAD = (LON + 0.3, LAT)  # where tracks start: ~27 km east of the chain's sites
LOT = (LON + 0.6, LAT + 0.2)
START = (dt.datetime.now(dt.UTC) - dt.timedelta(hours=6)).replace(second=0, microsecond=0)
STEP = 30


@pytest.fixture(scope="module")
def chain(database_url: str) -> Iterator[dict[str, Any]]:
    """The chain's parties, a designated lot, and per scenario a vehicle of carrier X; all but
    ``bare`` carry an in-transit waybill (``loading`` for ``edge``), put in that state an hour
    before the tracks start (an import: no events; chain.py counts it from its state's change)."""
    with psycopg.connect(database_url, autocommit=True) as c:
        out = plant_chain(c, TAG, LON, LAT)
        c.execute(
            "INSERT INTO zones (code, name, kind, geom)"
            " VALUES ('G9-LOT', '定位测试停车场', 'designated_parking', ST_GeomFromText(%s, 4326))",
            (square_wkt(*LOT, 0.003),),
        )
        out["v"] = {}
        names = ("road", "lot", "bare", "edge", "backfill", "origin", "delivered")
        for n, name in enumerate(names):
            (vid,) = c.execute(
                "INSERT INTO vehicles (plate, carrier, enterprise_id) VALUES (%s, %s, %s)"
                " RETURNING id",
                (f"浙G{TAG[-3:]}{n}", f"承运X{TAG}", out["x"]),
            ).fetchone() or (0,)
            out["v"][name] = int(vid)
            if name == "bare":
                continue
            (wid,) = c.execute(
                "INSERT INTO waybills (code, state, shipper_id, carrier_id, consignee_id,"
                " loading_party_id, substance_name, un_number, hazmat_class, quantity_t,"
                " vehicle_id, driver_id, escort_id, origin_id, destination_id, origin_geom,"
                " destination_geom, geom, corridor_m, corridor, planned_departure,"
                " planned_arrival, state_changed_at) SELECT %(code)s, %(state)s, %(s)s, %(x)s,"
                " %(c)s, %(s)s,"
                " '汽油', '1203', '3', 20, %(v)s, %(d)s, %(e)s, %(s)s, %(c)s, so.geom, co.geom,"
                " ST_MakeLine(so.geom, co.geom), 300, ST_Multi(ST_Buffer(ST_MakeLine(so.geom,"
                " co.geom)::geography, 300)::geometry), %(t0)s, %(t1)s, %(t0)s"
                " FROM enterprises so, enterprises co WHERE so.id = %(s)s AND co.id = %(c)s"
                " RETURNING id",
                {
                    "code": f"GAP{TAG}{n}",
                    "state": "loading" if name == "edge" else "in_transit",
                    "s": out["shipper"],
                    "x": out["x"],
                    "c": out["consignee"],
                    "v": vid,
                    "d": out["driver"],
                    "e": out["escort"],
                    "t0": START - dt.timedelta(hours=1),
                    "t1": START + dt.timedelta(hours=8),
                },
            ).fetchone() or (0,)
            out.setdefault("waybill", {})[name] = (int(wid), f"GAP{TAG}{n}")
        (slon, slat) = c.execute(
            "SELECT ST_X(geom), ST_Y(geom) FROM enterprises WHERE id = %s", (out["shipper"],)
        ).fetchone() or (0.0, 0.0)
        out["origin"] = (float(slon), float(slat))
        yield out


class Track:
    """Fixes every 30 s driving east at 48 km/h, standing, or silent for a while."""

    def __init__(self, vid: int, at: tuple[float, float], start: dt.datetime = START) -> None:
        self.vid, self.t, (self.lon, self.lat) = vid, start, at
        self.fixes: list[dict[str, Any]] = []

    def fix(self, speed: float) -> None:
        self.fixes.append(
            {
                "vehicle_id": self.vid,
                "ts": self.t.isoformat(),
                "lon": round(self.lon, 7),
                "lat": round(self.lat, 7),
                "speed_kmh": speed,
            }
        )

    def move(self, seconds: float) -> None:
        self.t += dt.timedelta(seconds=seconds)
        self.lon += seconds / 3.6 * 48 / (111_320 * math.cos(math.radians(self.lat)))

    def drive(self, seconds: int) -> Track:
        for _ in range(seconds // STEP):
            self.move(STEP)
            self.fix(48)
        return self

    def silent(self, seconds: int, moving: bool = True) -> Track:
        """No fix for ``seconds``; the next fix is where driving on (or standing) took it."""
        if moving:
            self.move(seconds - STEP)
        else:
            self.t += dt.timedelta(seconds=seconds - STEP)
        return self


def post(client: httpx.Client, fixes: list[dict[str, Any]]) -> None:
    r = client.post("/api/positions", json=fixes)
    assert r.status_code == 200, r.text
    assert r.json()["rejected"] == [] and r.json()["accepted"] == len(fixes), r.text


def gaps(client: httpx.Client, vid: int) -> list[dict[str, Any]]:
    r = client.get("/api/alerts", params={"vehicle_id": vid, "rule": "positioning_gap"})
    assert r.status_code == 200
    return [f["properties"] for f in r.json()["features"]]


def _ts(fix: dict[str, Any]) -> dt.datetime:
    return dt.datetime.fromisoformat(fix["ts"])


def test_25_minutes_silent_in_transit_is_one_alert_with_length_and_distance(
    client: httpx.Client, live_server: LiveServer, chain: dict[str, Any]
) -> None:
    vid = chain["v"]["road"]
    track = Track(vid, ROAD).drive(600)
    post(client, track.fixes)  # live: what came before the silence …
    before = track.fixes[-1]
    track.silent(25 * 60).drive(600)
    after = track.fixes[len(track.fixes) - 20]
    post(client, track.fixes[len(track.fixes) - 20 :])  # … and the reappearance
    (a,) = gaps(client, vid)
    d = a["details"]
    assert d["gap_s"] == 25 * 60
    expected = haversine_m(before["lon"], before["lat"], after["lon"], after["lat"])
    assert abs(d["distance_m"] - float(expected)) <= 1 and 19_000 < d["distance_m"] < 21_000
    assert d["waybill_code"] == chain["waybill"]["road"][1]
    assert d["waybill_state"] == "in_transit" and d["filled_by_backfill"] is False
    assert d["last_fix_before"]["lon"] == before["lon"]
    assert d["first_fix_after"]["lon"] == after["lon"]
    assert dt.datetime.fromisoformat(a["episode_start"]) == _ts(before)
    assert dt.datetime.fromisoformat(a["episode_end"]) == _ts(after)
    assert a["active"] is False and a["severity"] == "moderate"
    assert a["departments"] == ["transport"]
    # Re-sending the same fixes changes nothing (duplicates), and the carrier sees it.
    post_again = client.post("/api/positions", json=track.fixes[-20:])
    assert post_again.json()["duplicates"] == 20
    assert len(gaps(client, vid)) == 1
    key = key_for(live_server.url, "enterprise", enterprise_id=chain["x"])
    with live_server.client(key=key) as mine:
        got = mine.get("/api/alerts", params={"rule": "positioning_gap", "vehicle_id": vid})
        assert [f["id"] for f in got.json()["features"]] == [a["id"]]


def test_the_same_silence_begun_in_a_designated_lot_is_none(
    client: httpx.Client, chain: dict[str, Any]
) -> None:
    vid = chain["v"]["lot"]
    track = Track(vid, LOT)
    for _ in range(10):  # standing in the lot, then silent (terminal off with the engine)
        track.t += dt.timedelta(seconds=STEP)
        track.fix(0)
    track.silent(25 * 60).drive(600)
    post(client, track.fixes)
    assert gaps(client, vid) == []


def test_the_same_silence_begun_at_the_waybills_origin_is_none(
    client: httpx.Client, chain: dict[str, Any]
) -> None:
    vid = chain["v"]["origin"]
    track = Track(vid, chain["origin"])
    for _ in range(10):
        track.t += dt.timedelta(seconds=STEP)
        track.fix(0)
    track.silent(25 * 60).drive(600)
    post(client, track.fixes)
    assert gaps(client, vid) == []


def test_without_a_waybill_a_silence_is_none(client: httpx.Client, chain: dict[str, Any]) -> None:
    vid = chain["v"]["bare"]
    track = Track(vid, ROAD).drive(600).silent(25 * 60).drive(600)
    post(client, track.fixes)
    assert gaps(client, vid) == []


def test_the_limit_is_more_than_1200_s(client: httpx.Client, chain: dict[str, Any]) -> None:
    """While loading too: 1,200 s of silence is none, 1,201 s is one."""
    vid = chain["v"]["edge"]
    track = Track(vid, ROAD).drive(600).silent(1200).drive(600).silent(1201).drive(300)
    post(client, track.fixes)
    (a,) = gaps(client, vid)
    assert a["details"]["gap_s"] == 1201 and a["details"]["waybill_state"] == "loading"


def test_back_fill_shortens_then_fills_the_silence(
    client: httpx.Client, chain: dict[str, Any]
) -> None:
    vid = chain["v"]["backfill"]
    track = Track(vid, ROAD).drive(600)
    n_before = len(track.fixes)
    # What the terminal stored while out of coverage: a fix every 30 s through the silence.
    track.drive(25 * 60 - STEP)
    blind = track.fixes[n_before:]
    track.drive(600)
    live = track.fixes[:n_before] + track.fixes[n_before + len(blind) :]
    post(client, live)
    (a,) = gaps(client, vid)
    assert a["details"]["gap_s"] == 25 * 60 and a["revision"] == 1
    # The first 3 minutes of the blind area arrive (0x0704): 22 minutes remain silent.
    post(client, blind[:6])
    (b,) = gaps(client, vid)
    assert b["id"] == a["id"] and b["revision"] == 2
    assert b["details"]["gap_s"] == 25 * 60 - 6 * STEP
    assert b["details"]["filled_by_backfill"] is False
    assert dt.datetime.fromisoformat(b["episode_start"]) == _ts(blind[5])
    # The rest arrives: no silence over the limit is left; the alert says so, once.
    post(client, blind[6:])
    (c,) = gaps(client, vid)
    assert c["id"] == a["id"] and c["revision"] == 3
    assert c["details"]["filled_by_backfill"] is True


def test_a_silence_begun_in_transit_counts_though_the_waybill_was_delivered_during_it(
    client: httpx.Client, chain: dict[str, Any], database_url: str
) -> None:
    """The loading party reports the delivery while the terminal is silent; the vehicle then
    reappears. The silence began in transit, so it is one alert (judged in event time: the
    waybill's state now is ``delivered``)."""
    vid = chain["v"]["delivered"]
    track = Track(vid, ROAD).drive(600)
    post(client, track.fixes)
    silent_from = _ts(track.fixes[-1])
    delivered_at = silent_from + dt.timedelta(minutes=15)
    with psycopg.connect(database_url, autocommit=True) as c:
        wid = chain["waybill"]["delivered"][0]
        c.execute(  # its departure, then the delivery during the silence
            "INSERT INTO waybill_events (waybill_id, kind, from_state, to_state, at, source,"
            " actor) VALUES (%(w)s, 'loaded', 'loading', 'in_transit', %(t0)s, 'party', 'test'),"
            " (%(w)s, 'unloaded', 'in_transit', 'delivered', %(t1)s, 'party', 'test')",
            {"w": wid, "t0": START - dt.timedelta(hours=1), "t1": delivered_at},
        )
        c.execute(
            "UPDATE waybills SET state = 'delivered', state_changed_at = %s WHERE id = %s",
            (delivered_at, wid),
        )
    n = len(track.fixes)
    track.silent(25 * 60).drive(300)
    post(client, track.fixes[n:])
    (a,) = gaps(client, vid)
    assert a["details"]["gap_s"] == 25 * 60
    assert a["details"]["waybill_code"] == chain["waybill"]["delivered"][1]
    assert a["details"]["waybill_state"] == "in_transit"  # as it was when the silence began
    assert dt.datetime.fromisoformat(a["episode_start"]) == silent_from
