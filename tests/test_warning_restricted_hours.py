"""The ``restricted_hours`` warning model (issue 14 item 3): a hazmat vehicle inside a
``hazmat_restricted`` zone during its closed hours, or on a road class closed by the hours of
GEORISK_TANKER_RESTRICTED_ROADS — fixes posted over real HTTP into a real PostGIS; one alert per
(vehicle, zone, episode), threshold edges, back-filled and out-of-order fixes, routing to the
traffic police and the carrier."""

from __future__ import annotations

import datetime as dt
import math
import random
from collections.abc import Iterator
from typing import Any

import httpx
import numpy as np
import psycopg
import pytest
from pydantic import ValidationError

from geo_api.settings import TankerSettings
from layers.transport.parking import active_at, active_overlap_s
from layers.transport.warnings.restricted_hours import parse_restricted_roads
from tests.conftest import LiveServer, key_for, make_settings
from tests.planting import square_wkt

CENTRE = (127.35, 34.65)  # a city centre closed to hazmat vehicles by day
ROAD_Y = 34.60  # a local road closed at night; an arterial runs beside its east end
BESIDE_M = 15.0
CST = dt.timezone(dt.timedelta(hours=8))
DAY = dt.datetime.now(CST).date() - dt.timedelta(days=2)
VEHICLES = (
    "through",
    "after_open",
    "at_night",
    "edge_60",
    "edge_30",
    "backfill",
    "earlier",
    "road",
    "road_early",
    "road_beside",
)


def at(hour: int, minute: int = 0, day: int = 0) -> dt.datetime:
    return dt.datetime.combine(DAY + dt.timedelta(days=day), dt.time(hour, minute), CST)


@pytest.fixture(scope="module")
def area(database_url: str) -> dict[str, Any]:
    with psycopg.connect(database_url, autocommit=True) as c:
        (zone,) = c.execute(
            "INSERT INTO zones (code, name, kind, active_hours, geom) VALUES"
            " ('RH-CENTRE', '测试城区限行区', 'hazmat_restricted', '08:00-18:00',"
            " ST_GeomFromText(%s, 4326)) RETURNING id",
            (square_wkt(*CENTRE, 0.005),),
        ).fetchone()
        beside = ROAD_Y + BESIDE_M / 110_574
        c.execute(
            "INSERT INTO roads (name, road_class, geom) VALUES"
            " ('测试夜禁支路', 'local', ST_GeomFromText(%s, 4326)),"
            " ('测试并行干道', 'arterial', ST_GeomFromText(%s, 4326))",
            (
                f"LINESTRING(127.30 {ROAD_Y}, 127.40 {ROAD_Y})",
                f"LINESTRING(127.36 {beside}, 127.40 {beside})",
            ),
        )
        (carrier,) = c.execute(
            "INSERT INTO enterprises (credit_code, name, category, is_hazmat, geom) VALUES"
            " ('9133020000RH0AAA01', '测试限行危运公司', 'transport', true,"
            " ST_SetSRID(ST_Point(127.30, 34.70), 4326)) RETURNING id"
        ).fetchone()
        vehicles = {}
        for name in VEHICLES:
            (vehicles[name],) = c.execute(
                "INSERT INTO vehicles (plate, carrier, enterprise_id, hazmat_class)"
                " VALUES (%s, '测试限行危运公司', %s, '3') RETURNING id",
                (f"测RH{name}", carrier),
            ).fetchone()
    return {"zone": zone, "carrier": carrier, "v": vehicles}


@pytest.fixture(scope="module")
def night_roads(database_url: str) -> Iterator[LiveServer]:
    """A server whose city closes local roads to hazmat vehicles from 22:00 to 06:00."""
    settings = make_settings(database_url)
    settings = settings.model_copy(
        update={"tanker": TankerSettings(restricted_roads="local@22:00-06:00")}
    )
    with LiveServer(settings) as server:
        yield server


def _east(lon: float, lat: float, metres: float) -> float:
    return lon + metres / (111_320 * math.cos(math.radians(lat)))


def _fix(vid: int, t: dt.datetime, lon: float, lat: float) -> dict[str, Any]:
    return {"vehicle_id": vid, "ts": t.isoformat(), "lon": lon, "lat": lat, "speed_kmh": 20}


def cross(vid: int, start: dt.datetime, offsets_m: list[float]) -> list[dict[str, Any]]:
    """Drive east through the centre: one fix every 30 s at each offset from its middle."""
    return [
        _fix(vid, start + dt.timedelta(seconds=30 * i), _east(*CENTRE, x), CENTRE[1])
        for i, x in enumerate(offsets_m)
    ]


#: 166 m a fix (20 km/h) from 1.25 km west on: fixes 5–10 inside the ~916 m wide zone.
THROUGH = [-1250.0 + 166 * k for k in range(15)]


def _post(http: httpx.Client, fixes: list[dict[str, Any]]) -> dict[str, Any]:
    r = http.post("/api/positions", json=fixes)
    assert r.status_code == 200, r.text
    body: dict[str, Any] = r.json()
    assert not body["rejected"], body
    return body


def restricted(http: httpx.Client, vid: int) -> list[dict[str, Any]]:
    r = http.get("/api/alerts", params={"vehicle_id": vid})
    assert r.status_code == 200
    return [
        f["properties"]
        for f in r.json()["features"]
        if f["properties"]["rule"] == "restricted_hours"
    ]


def test_closed_hours_are_parsed_and_judged_in_one_home(monkeypatch: pytest.MonkeyPatch) -> None:
    assert parse_restricted_roads(" local@22:00-06:00,arterial@07:00-09:00 ") == (
        ("local", "22:00-06:00"),
        ("arterial", "07:00-09:00"),
    )
    for bad, says in (
        ("lane@22:00-06:00", "ROAD_CLASS@HH:MM-HH:MM"),
        ("local22:00-06:00", "ROAD_CLASS@HH:MM-HH:MM"),
        ("local@25:00-06:00", "one HH:MM-HH:MM window"),
    ):
        monkeypatch.setenv("GEORISK_TANKER_RESTRICTED_ROADS", bad)
        with pytest.raises(ValidationError) as err:
            TankerSettings()
        assert "GEORISK_TANKER_RESTRICTED_ROADS" in str(err.value) and says in str(err.value)
    # The vectorised test agrees with the parking rule's overlap at every minute of a day.
    ts = [int((at(0) + dt.timedelta(minutes=m)).timestamp() * 1e6) for m in range(0, 1440, 7)]
    for hours in ("22:00-06:00", "08:00-18:00", "07:00-09:00,17:00-24:00", None):
        fast = active_at(hours, np.array(ts), "Asia/Shanghai").tolist()
        slow = [active_overlap_s(hours, t, t + 1, "Asia/Shanghai") > 0 for t in ts]
        assert fast == slow, hours


def test_crossing_the_centre_while_closed_is_one_alert_routed_to_police_and_carrier(
    live_server: LiveServer, client: httpx.Client, area: dict[str, Any]
) -> None:
    vid = area["v"]["through"]
    fixes = cross(vid, at(10), THROUGH)
    _post(client, fixes[:8])  # still inside: the episode is going on
    (alert,) = restricted(client, vid)
    assert alert["active"] is True and alert["details"]["ended_at"] is None
    _post(client, fixes[8:])
    (alert,) = restricted(client, vid)
    d = alert["details"]
    assert alert["active"] is False and alert["zone_id"] == area["zone"]
    assert d["restriction"] == "zone" and d["zone_name"] == "测试城区限行区"
    assert d["closed_hours"] == "08:00-18:00"
    assert d["inside_s"] == 150.0
    first_in = next(f for f in fixes if abs(float(f["lon"]) - CENTRE[0]) < 0.005)
    assert dt.datetime.fromisoformat(d["entered_at"]) == dt.datetime.fromisoformat(first_in["ts"])
    assert dt.datetime.fromisoformat(d["ended_at"]) == at(10) + dt.timedelta(seconds=30 * 11)
    assert alert["departments"] == ["traffic_police"] and alert["severity"] == "moderate"
    carrier = key_for(live_server.url, "enterprise", enterprise_id=area["carrier"])
    with live_server.client(key=carrier) as mine:
        seen = mine.get("/api/alerts", params={"vehicle_id": vid})
        assert [f["id"] for f in seen.json()["features"]] == [alert["id"]]


def test_the_same_crossing_while_open_raises_nothing(
    client: httpx.Client, area: dict[str, Any]
) -> None:
    _post(client, cross(area["v"]["after_open"], at(19), THROUGH))  # an hour after it opens
    _post(client, cross(area["v"]["at_night"], at(23, 30), THROUGH))  # closed only by day
    assert restricted(client, area["v"]["after_open"]) == []
    assert restricted(client, area["v"]["at_night"]) == []


def test_sixty_seconds_inside_is_the_edge(client: httpx.Client, area: dict[str, Any]) -> None:
    # 333 m a fix: three fixes inside span 60 s (an alert), two span 30 s (none).
    _post(client, cross(area["v"]["edge_60"], at(11), [-1332.0 + 333 * k for k in range(9)]))
    _post(client, cross(area["v"]["edge_30"], at(11), [-1166.0 + 333 * k for k in range(8)]))
    (alert,) = restricted(client, area["v"]["edge_60"])
    assert alert["details"]["inside_s"] == 60.0
    assert restricted(client, area["v"]["edge_30"]) == []


def test_back_filled_fixes_extend_and_end_one_episode(
    client: httpx.Client, area: dict[str, Any]
) -> None:
    vid = area["v"]["backfill"]
    fixes = cross(vid, at(12), THROUGH)
    inside = [k for k, x in enumerate(THROUGH) if abs(x) < 458]
    gap = inside[2:]  # a blind area: these come later, in a 0x0704 batch
    _post(client, [f for k, f in enumerate(fixes) if k not in gap])
    assert restricted(client, vid) == []  # 30 s inside as far as the platform knows
    shuffled = [fixes[k] for k in gap]
    random.Random(7).shuffle(shuffled)
    _post(client, shuffled)
    (alert,) = restricted(client, vid)
    assert alert["active"] is False and alert["details"]["inside_s"] == 150.0
    replay = client.post("/api/positions", json=fixes).json()
    assert replay["duplicates"] == len(fixes)
    assert [a["id"] for a in restricted(client, vid)] == [alert["id"]]

    # Late fixes from before an open episode move its start, on the same alert.
    vid = area["v"]["earlier"]
    fixes = cross(vid, at(13), THROUGH)
    _post(client, fixes[inside[2] :])
    (late,) = restricted(client, vid)
    assert dt.datetime.fromisoformat(late["episode_start"]) == dt.datetime.fromisoformat(
        fixes[inside[2]]["ts"]
    )
    _post(client, fixes[: inside[2]])
    (alert,) = restricted(client, vid)
    assert alert["id"] == late["id"] and alert["revision"] == late["revision"] + 1
    assert dt.datetime.fromisoformat(alert["episode_start"]) == dt.datetime.fromisoformat(
        fixes[inside[0]]["ts"]
    )
    assert alert["details"]["inside_s"] == 150.0


def along(vid: int, start: dt.datetime, lon0: float, n: int) -> list[dict[str, Any]]:
    """Drive east along the local road from ``lon0``: 250 m a fix, one every 30 s."""
    return [
        _fix(vid, start + dt.timedelta(seconds=30 * k), _east(lon0, ROAD_Y, 250 * k), ROAD_Y)
        for k in range(n)
    ]


def test_a_road_class_closed_at_night_is_one_alert_naming_the_road(
    night_roads: LiveServer, area: dict[str, Any]
) -> None:
    with night_roads.client() as http:
        # 23:58 to 00:02: the closure runs past midnight; four minutes on the local road.
        _post(http, along(area["v"]["road"], at(23, 58), 127.31, 9))
        _post(http, along(area["v"]["road_early"], at(21, 0), 127.31, 9))  # before it closes
        # Where the arterial runs 15 m beside it the tanker gets the benefit of the doubt.
        _post(http, along(area["v"]["road_beside"], at(23, 0), 127.365, 9))
        (alert,) = restricted(http, area["v"]["road"])
        assert restricted(http, area["v"]["road_early"]) == []
        assert restricted(http, area["v"]["road_beside"]) == []
    d = alert["details"]
    assert alert["zone_id"] is None and d["restriction"] == "road_class"
    assert d["road_class"] == "local" and d["road_name"] == "测试夜禁支路"
    assert d["closed_hours"] == "22:00-06:00" and d["inside_s"] == 240.0
    assert alert["active"] is True and alert["departments"] == ["traffic_police"]


def test_the_box_pre_test_keeps_every_fix_that_can_be_inside(
    database_url: str, area: dict[str, Any], monkeypatch: pytest.MonkeyPatch
) -> None:
    """Only fixes inside a restricted zone's box go on to the GiST test — the zone's corner is
    in, a fix just outside every box is not; above MAX_BOXES zones every fix goes on."""
    import asyncio

    from layers.transport.warnings import restricted_hours
    from layers.transport.warnings.model import Stored

    half = 0.005  # square_wkt's half side for the centre zone
    lon = np.array([CENTRE[0], CENTRE[0] - half, CENTRE[0] + half + 1e-4, 150.0])
    lat = np.array([CENTRE[1], CENTRE[1] - half, CENTRE[1], 10.0])
    n = len(lon)
    fixes = Stored(np.full(n, 1), np.arange(n), lon, lat, np.zeros(n), np.zeros(n, np.int64))

    async def mask() -> list[bool]:
        async with await psycopg.AsyncConnection.connect(database_url) as conn:
            return [bool(x) for x in await restricted_hours._in_boxes(conn, fixes)]

    assert asyncio.run(mask()) == [True, True, False, False]
    monkeypatch.setattr(restricted_hours, "MAX_BOXES", 0)
    assert asyncio.run(mask()) == [True, True, True, True]
