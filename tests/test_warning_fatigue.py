"""Fatigue driving (issue 14 item 3): ``fatigue_continuous`` (≤ 4 h continuous driving, rest
≥ 20 min; 道路交通安全法实施条例 art. 62 item 7) and ``fatigue_daily`` (≤ 8 h a local day).

The pure timeline is tested at the thresholds' edges without a database; the rules end to end
from tracks posted over real HTTP (``POST /api/positions``) into a real PostGIS: the issue's
legal twin (4 h 10 min with a 20 min break in the middle: no alert; without it: exactly one),
the rest's edge (19 min 59 s does not reset the clock, 20 min does), out-of-order delivery,
routing and the carrier's view. Scenarios live in their own area (126.0–129 E, 34.0 N), one
vehicle each.
"""

from __future__ import annotations

import datetime as dt
import math
from collections.abc import Iterator
from typing import Any

import httpx
import psycopg
import pytest

from layers.transport.warnings import driving
from layers.transport.warnings.driving import US, Pause
from tests.conftest import LiveServer, key_for

LON, LAT = 126.0, 34.0
CST = dt.timezone(dt.timedelta(hours=8))
H, M = 3600, 60
#: Two days back, 05:00 local: every scenario ends the same local day, well before now.
DAY0 = (dt.datetime.now(CST) - dt.timedelta(days=2)).replace(
    hour=5, minute=0, second=0, microsecond=0
)
STEP = 30  # s between fixes, as a terminal reports
EAST_M = 400.0  # m per step while driving (48 km/h: under every speed cap)

# ---- the pure timeline --------------------------------------------------------------------


def _p(a_s: int, b_s: int) -> Pause:
    return Pause(a_s * US, b_s * US, LON, LAT)


def test_a_short_pause_neither_drives_nor_resets() -> None:
    limit, rest = 4 * H * US, 20 * M * US
    # 2 h, a pause of 19 min 59 s, 2 h 5 min: one stint of 4 h 5 min (the pause not counted).
    t1 = 2 * H + 1199 + 2 * H + 5 * M
    (s,) = driving.stints(0, t1 * US, [_p(2 * H, 2 * H + 1199)], rest, limit)
    assert s.driving_us == (4 * H + 5 * M) * US and not s.closed and not s.after_rest
    assert s.exceeded_at == (2 * H + 1199 + 2 * H) * US  # the moment 4 h of driving passed
    # The same with a pause of exactly 20 min: two stints, none over the limit.
    t1 = 2 * H + 1200 + 2 * H + 5 * M
    a, b = driving.stints(0, t1 * US, [_p(2 * H, 2 * H + 1200)], rest, limit)
    assert a.closed and a.end == 2 * H * US and a.rest_end == (2 * H + 1200) * US
    assert b.after_rest and b.start == (2 * H + 1200) * US and not b.closed
    assert a.exceeded_at is None and b.exceeded_at is None


def test_exactly_four_hours_is_not_more_than_four_hours() -> None:
    limit, rest = 4 * H * US, 20 * M * US
    (s,) = driving.stints(0, 4 * H * US, [], rest, limit)
    assert s.exceeded_at is None
    (s,) = driving.stints(0, (4 * H + 1) * US, [], rest, limit)
    assert s.exceeded_at == 4 * H * US


def test_a_rest_that_began_before_the_timeline_is_still_a_rest() -> None:
    # A night's stop from -10 h to +1 h, then 3 h of driving: one stint after a rest.
    (s,) = driving.stints(0, 4 * H * US, [_p(-10 * H, 1 * H)], 20 * M * US, 4 * H * US)
    assert s.after_rest and s.start == 1 * H * US and s.driving_us == 3 * H * US


def test_a_silence_can_be_a_rest_only_if_the_move_leaves_time_for_it() -> None:
    # 30 min silent, 10 km apart: at 80 km/h 7.5 min of driving, 22.5 min left → could rest.
    assert driving.could_rest(1800, 10_000, 1200, 80)
    # 30 min, 20 km: 15 min driving, 15 min left → not a rest (counted as driving).
    assert not driving.could_rest(1800, 20_000, 1200, 80)
    # 20 min at one place: exactly the rest.
    assert driving.could_rest(1200, 0, 1200, 80) and not driving.could_rest(1199, 0, 1200, 80)


def test_pauses_that_touch_are_one() -> None:
    merged = driving.merge_pauses([_p(600, 900), _p(0, 300), _p(300, 600)])
    assert [(p.start, p.end) for p in merged] == [(0, 900 * US)]


def test_eight_hours_a_day_is_not_more_than_eight_hours() -> None:
    tz, limit = "Asia/Shanghai", 8 * H * US
    start = int(DAY0.timestamp() * US)  # 05:00 local; an hour's rest at 09:00
    rest = [_p(start // US + 4 * H, start // US + 5 * H)]
    (d,) = driving.days(start, start + 9 * H * US, rest, tz, limit)
    assert d.driving_us == limit and d.exceeded_at is None
    (d,) = driving.days(start, start + (9 * H + 1) * US, rest, tz, limit)
    assert d.exceeded_at == start + 9 * H * US and d.last_driving == start + (9 * H + 1) * US


def test_daily_driving_splits_at_local_midnight() -> None:
    tz = "Asia/Shanghai"
    midnight = driving.local_midnight(int(DAY0.timestamp() * US), tz)
    assert midnight == int(DAY0.replace(hour=0).timestamp() * US)
    # 22:00 → 06:00 local without pause: 2 h on the first day, 6 h on the second.
    t0, t1 = midnight - 2 * H * US, midnight + 6 * H * US
    d1, d2 = driving.days(t0, t1, [], tz, 5 * H * US)
    assert d1.driving_us == 2 * H * US and d1.exceeded_at is None
    assert d2.driving_us == 6 * H * US and d2.exceeded_at == midnight + 5 * H * US
    assert d2.day == DAY0.date()


# ---- end to end over HTTP -----------------------------------------------------------------


@pytest.fixture(scope="module")
def fleet(database_url: str) -> Iterator[dict[str, Any]]:
    """A carrier enterprise and one vehicle per scenario."""
    with psycopg.connect(database_url, autocommit=True) as c:
        row = c.execute(
            "INSERT INTO enterprises (credit_code, name, category, is_hazmat, geom) VALUES"
            " ('9133020000F7AAAA01', '疲劳测试危运公司', 'transport', true,"
            " ST_SetSRID(ST_Point(%s, %s), 4326)) RETURNING id",
            (LON, LAT + 0.5),
        ).fetchone()
        assert row
        carrier = int(row[0])
        vehicles = {}
        for name in ("twin", "nonstop", "rest1959", "rest2000", "shuffled", "daily", "daily_ok"):
            row = c.execute(
                "INSERT INTO vehicles (plate, carrier, enterprise_id) VALUES (%s, %s, %s)"
                " RETURNING id",
                (f"测F7{name}", "疲劳测试危运公司", carrier),
            ).fetchone()
            assert row
            vehicles[name] = int(row[0])
        yield {"carrier": carrier, "vehicles": vehicles}


class Track:
    """A vehicle's fixes built leg by leg: driving east at 48 km/h, or standing still."""

    def __init__(self, vid: int, start: dt.datetime, lat: float = LAT) -> None:
        self.vid, self.t, self.lon, self.lat = vid, start, LON, lat
        self.fixes: list[dict[str, Any]] = []

    def _fix(self, speed: float) -> None:
        self.fixes.append(
            {
                "vehicle_id": self.vid,
                "ts": self.t.isoformat(),
                "lon": round(self.lon, 7),
                "lat": self.lat,
                "speed_kmh": speed,
                "heading": 90,
            }
        )

    def drive(self, seconds: int) -> Track:
        """Fixes every 30 s for ``seconds`` (the first one step after the last fix)."""
        for _ in range(seconds // STEP):
            self.t += dt.timedelta(seconds=STEP)
            self.lon += EAST_M / (111_320 * math.cos(math.radians(self.lat)))
            self._fix(48)
        return self

    def halt(self, seconds: int) -> Track:
        """Standing at the next place: first fix there one step on, last ``seconds`` later,
        so the detector's stop lasts exactly ``seconds``."""
        self.drive(STEP)
        first = self.t
        for k in [*range(STEP, seconds, STEP), seconds]:
            self.t = first + dt.timedelta(seconds=k)
            self._fix(0)
        return self


def post(client: httpx.Client, fixes: list[dict[str, Any]], size: int = 120) -> None:
    """Delivered as a terminal's gateway would: in batches, in the order given."""
    for a in range(0, len(fixes), size):
        r = client.post("/api/positions", json=fixes[a : a + size])
        assert r.status_code == 200, r.text
        assert r.json()["rejected"] == [], r.text


def alerts(client: httpx.Client, vid: int, rule: str | None = None) -> list[dict[str, Any]]:
    r = client.get("/api/alerts", params={"vehicle_id": vid})
    assert r.status_code == 200
    out = [f["properties"] for f in r.json()["features"]]
    return [a for a in out if rule is None or a["rule"] == rule]


def _fatigue(client: httpx.Client, vid: int) -> list[dict[str, Any]]:
    return [a for a in alerts(client, vid) if a["rule"].startswith("fatigue")]


def test_legal_twin_a_break_in_the_middle_raises_nothing(
    client: httpx.Client, fleet: dict[str, Any]
) -> None:
    vid = fleet["vehicles"]["twin"]
    track = Track(vid, DAY0).drive(2 * H + 5 * M).halt(20 * M).drive(2 * H + 5 * M)
    post(client, track.fixes)
    assert _fatigue(client, vid) == []


def test_four_hours_ten_without_a_break_is_exactly_one_alert(
    client: httpx.Client, live_server: LiveServer, fleet: dict[str, Any]
) -> None:
    vid = fleet["vehicles"]["nonstop"]
    track = Track(vid, DAY0).drive(4 * H + 10 * M)
    post(client, track.fixes, size=10)  # 5 minutes a batch: live
    (a,) = _fatigue(client, vid)
    assert a["rule"] == "fatigue_continuous" and a["active"] is True
    d = a["details"]
    # Driving from the first fix (30 s after DAY0) to the last: 4 h 9 min 30 s.
    assert d["driving_s"] == 4 * H + 10 * M - STEP
    assert d["limit_s"] == 4 * H and d["rest_min_s"] == 20 * M
    assert d["last_rest_end"] is None  # no rest known: the stint starts at its first fix
    first = DAY0 + dt.timedelta(seconds=STEP)
    assert dt.datetime.fromisoformat(d["stint_start"]) == first
    assert dt.datetime.fromisoformat(d["exceeded_at"]) == first + dt.timedelta(hours=4)
    assert dt.datetime.fromisoformat(a["episode_start"]) == first + dt.timedelta(hours=4)
    assert a["revision"] > 1  # updated as the stint went on, never a second alert
    # Routing: traffic police and transport, and the carrier reads it with its own key.
    assert sorted(a["departments"]) == ["traffic_police", "transport"]
    key = key_for(live_server.url, "enterprise", enterprise_id=fleet["carrier"])
    with live_server.client(key=key) as mine:
        got = mine.get("/api/alerts", params={"rule": "fatigue_continuous"})
        assert got.status_code == 200
        seen = {f["properties"]["vehicle_id"] for f in got.json()["features"]}
        assert vid in seen and seen <= set(fleet["vehicles"].values())
    # A 20-minute rest closes it: no longer active, the rest's start recorded.
    done = len(track.fixes)
    post(client, track.halt(20 * M).fixes[done:])
    (a,) = _fatigue(client, vid)
    assert a["active"] is False and a["details"]["rested_at"] is not None
    assert a["details"]["driving_s"] == 4 * H + 10 * M  # including the drive into the rest


@pytest.mark.parametrize(
    ("name", "rest_s", "raised"), [("rest1959", 1199, 1), ("rest2000", 1200, 0)]
)
def test_a_rest_of_19_min_59_s_does_not_reset_20_min_does(
    client: httpx.Client, fleet: dict[str, Any], name: str, rest_s: int, raised: int
) -> None:
    vid = fleet["vehicles"][name]
    track = Track(vid, DAY0).drive(2 * H + 5 * M).halt(rest_s).drive(2 * H + 5 * M)
    post(client, track.fixes)
    got = _fatigue(client, vid)
    assert len(got) == raised
    if raised:
        # The short stop is not driving: 2 h 5 min + 30 s into the stop + 2 h 5 min.
        assert got[0]["details"]["driving_s"] == 4 * H + 10 * M
        assert got[0]["rule"] == "fatigue_continuous"


def test_out_of_order_delivery_gives_one_alert(
    client: httpx.Client, db: psycopg.Connection, fleet: dict[str, Any]
) -> None:
    """The last hours arrive first, the start later (blind-area back-fill): one alert."""
    vid = fleet["vehicles"]["shuffled"]
    fixes = Track(vid, DAY0).drive(4 * H + 10 * M).fixes
    chunks = [fixes[a : a + 100] for a in range(0, len(fixes), 100)]
    for chunk in reversed(chunks):
        post(client, chunk)
    (a,) = _fatigue(client, vid)
    assert a["details"]["driving_s"] == 4 * H + 10 * M - STEP
    first = DAY0 + dt.timedelta(seconds=STEP)
    assert dt.datetime.fromisoformat(a["episode_start"]) == first + dt.timedelta(hours=4)
    (n,) = db.execute(
        "SELECT count(*) FROM alerts WHERE vehicle_id = %s AND rule LIKE 'fatigue%%'", (vid,)
    ).fetchone() or (0,)
    assert n == 1


def test_more_than_eight_hours_in_a_local_day_is_one_daily_alert(
    client: httpx.Client, fleet: dict[str, Any]
) -> None:
    # Four legs of 2 h 15 min with 30-minute rests: 9 h of driving, never 4 h in one go.
    vid = fleet["vehicles"]["daily"]
    track = Track(vid, DAY0)
    for leg in range(4):
        track.drive(2 * H + 15 * M - (STEP if leg else 0))
        if leg < 3:
            track.halt(30 * M)
    post(client, track.fixes)
    got = _fatigue(client, vid)
    assert [a["rule"] for a in got] == ["fatigue_daily"]
    d = got[0]["details"]
    assert d["day"] == DAY0.date().isoformat() and d["timezone"] == "Asia/Shanghai"
    # 9 h less the first step before the first fix; the 30 s into each stop count as driving.
    assert d["driving_s"] == 9 * H - STEP
    assert d["limit_s"] == 8 * H
    assert got[0]["departments"] == ["transport"]
    # The legal twin: three such legs (6 h 45 min) raise nothing.
    vid = fleet["vehicles"]["daily_ok"]
    track = Track(vid, DAY0)
    for leg in range(3):
        track.drive(2 * H + 15 * M)
        if leg < 2:
            track.halt(30 * M)
    post(client, track.fixes)
    assert _fatigue(client, vid) == []
