"""The JT/T 808 gateway end to end: a real gateway on a real port inside the test server, the
simulator's terminals (scripts/jt808_sim.py) over real TCP, a real PostGIS behind.

Scenarios live in an area of their own (124.8–125.0 E, 32.6–32.8 N), with their own road and
vehicles, one vehicle (and one terminal phone) per scenario, so order never matters.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import math
import random
import socket
import time
from collections.abc import Coroutine, Iterator
from typing import Any, TypeVar

import httpx
import psycopg
import pytest

from geo_api.db import open_pool
from geo_api.jt808_gateway import Jt808Gateway
from geo_api.rerate import Rerater
from geo_api.settings import Jt808Settings, Settings
from layers.transport.jt808 import messages as m
from layers.transport.jt808.frame import escape, unescape
from layers.transport.warnings.terminal_alarms import episodes
from scripts.benchkit import free_port
from scripts.jt808_sim import Fix, Terminal, drive, path
from tests.conftest import LiveServer, make_settings

ROAD_Y = 32.65  # an arterial, 60 km/h
ROADSIDE = (124.90, ROAD_Y + 0.00005)
DAY = (dt.datetime.now(dt.UTC) - dt.timedelta(hours=3)).replace(second=0, microsecond=0)
NAMES = (
    "reg",
    "taken",
    "auth",
    "track",
    "backfill",
    "speeding",
    "speeding_http",
    "garbage",
    "old_time",
    "v2019",
    "alarm",
    "resend",
    "alarm2",
    "escaped",
)
T = TypeVar("T")


def run(coro: Coroutine[Any, Any, T]) -> T:
    return asyncio.run(coro)


@pytest.fixture(scope="module")
def area(database_url: str) -> Iterator[dict[str, Any]]:
    """A road, a carrier and one vehicle per scenario (plates ``测J8<name>``)."""
    with psycopg.connect(database_url, autocommit=True) as c:
        c.execute(
            "INSERT INTO roads (name, road_class, speed_limit_kmh, geom) VALUES"
            " ('测试八〇八路', 'arterial', 60, ST_GeomFromText(%s, 4326))",
            (f"LINESTRING(124.80 {ROAD_Y}, 125.00 {ROAD_Y})",),
        )
        row = c.execute(
            "INSERT INTO enterprises (credit_code, name, category, is_hazmat, geom) VALUES"
            " ('9133020000J8AAAA01', '测试八〇八危运', 'transport', true,"
            " ST_SetSRID(ST_Point(124.85, 32.75), 4326)) RETURNING id"
        ).fetchone()
        assert row
        carrier, vehicles = row[0], {}
        for name in NAMES:
            row = c.execute(
                "INSERT INTO vehicles (plate, carrier, enterprise_id) VALUES (%s, %s, %s)"
                " RETURNING id",
                (f"测J8·{name}", "测试八〇八危运", carrier),
            ).fetchone()
            assert row
            vehicles[name] = row[0]
        yield {"vehicles": vehicles}


@pytest.fixture(scope="module")
def gateway(database_url: str) -> Iterator[tuple[LiveServer, int]]:
    """The test server with its gateway on a free port (short flushes: quick answers)."""
    port = free_port()
    settings: Settings = make_settings(database_url)
    # A store blocked on a lock fails in 3 s (the resend test); everything else takes ms.
    settings.db = settings.db.model_copy(update={"statement_timeout_ms": 3000})
    settings.jt808 = Jt808Settings(port=port, flush_interval_s=0.05, max_bad_frames=20)
    with LiveServer(settings) as server:
        # The gateway listens once this process holds its lease (geo_api/leases.py): a moment
        # after the HTTP server is up.
        deadline = time.monotonic() + 20
        while True:
            try:
                socket.create_connection(("127.0.0.1", port), timeout=1).close()
                break
            except OSError:
                assert time.monotonic() < deadline, "the gateway did not start listening"
                time.sleep(0.05)
        yield server, port


@pytest.fixture()
def http(gateway: tuple[LiveServer, int]) -> Iterator[httpx.Client]:
    with gateway[0].client() as client:
        yield client


def terminal(gateway: tuple[LiveServer, int], name: str, version: int | None = None) -> Terminal:
    phone = f"{13_800_000_000 + NAMES.index(name):012d}"
    return Terminal("127.0.0.1", gateway[1], phone, f"测J8{name}", version)


async def ready(term: Terminal) -> None:
    """Register (plate without its dot: plates match without it) and authenticate."""
    assert await term.register() == m.REGISTERED and len(term.auth_code) == 16
    assert await term.authenticate() == m.OK


def positions(db: psycopg.Connection, vid: int) -> list[tuple[Any, ...]]:
    return db.execute(
        "SELECT ts, lon, lat, speed_kmh, heading, alarm_bits FROM positions"
        " WHERE vehicle_id = %s ORDER BY ts",
        (vid,),
    ).fetchall()


def alerts_of(http: httpx.Client, vid: int) -> list[dict[str, Any]]:
    r = http.get("/api/alerts", params={"vehicle_id": vid})
    assert r.status_code == 200
    return [f["properties"] for f in r.json()["features"]]


def test_registration_binds_by_plate_and_refuses_unknown_or_taken(
    gateway: Any, area: Any, db: psycopg.Connection
) -> None:
    async def scenario() -> None:
        async with Terminal("127.0.0.1", gateway[1], "013899999999", "测J8nosuch") as t:
            assert await t.register() == m.NO_SUCH_VEHICLE and t.auth_code == ""
        async with terminal(gateway, "reg") as t:
            assert await t.register() == m.REGISTERED
            first = t.auth_code
            assert await t.register() == m.REGISTERED  # again: a new code replaces the old
            assert t.auth_code != first
            assert await t.authenticate(first) == m.FAILED
            assert await t.authenticate() == m.OK
        # another terminal for the same vehicle: 1; this terminal for another vehicle: 3
        async with Terminal("127.0.0.1", gateway[1], "013899999998", "测J8reg") as t:
            assert await t.register() == m.VEHICLE_TAKEN
        async with Terminal(
            "127.0.0.1", gateway[1], terminal(gateway, "reg").phone, "测J8taken"
        ) as t:
            assert await t.register() == m.TERMINAL_TAKEN

    run(scenario())
    row = db.execute(
        "SELECT vehicle_id, auth_hash, plate_colour, authenticated_at IS NOT NULL"
        " FROM jt808_terminals WHERE phone = %s",
        (terminal(gateway, "reg").phone.lstrip("0"),),  # without the header's padding
    ).fetchone()
    assert row is not None and row[0] == area["vehicles"]["reg"]
    assert len(row[1]) == 64 and row[2] == 2 and row[3] is True  # a SHA-256, never the code


def test_nothing_is_stored_before_authentication(
    gateway: Any, area: Any, db: psycopg.Connection
) -> None:
    vid = area["vehicles"]["auth"]

    async def scenario() -> list[int]:
        async with terminal(gateway, "auth") as t:
            assert await t.register() == m.REGISTERED
            before = await t.report(Fix(*ROADSIDE, 30, DAY))
            assert await t.heartbeat() == m.OK
            wrong = await t.authenticate("0000000000000000")
            late = await t.report(Fix(*ROADSIDE, 30, DAY + dt.timedelta(seconds=30)))
            assert await t.authenticate() == m.OK
            ok = await t.report(Fix(*ROADSIDE, 30, DAY + dt.timedelta(seconds=60)))
            return [before, wrong, late, ok]

    assert run(scenario()) == [m.FAILED, m.FAILED, m.FAILED, m.OK]
    stored = positions(db, vid)
    assert [r[0] for r in stored] == [DAY + dt.timedelta(seconds=60)]


def test_reports_appear_in_the_track_with_coordinates_speed_and_time(
    gateway: Any, area: Any, http: httpx.Client, db: psycopg.Connection
) -> None:
    vid = area["vehicles"]["track"]
    fixes = path((124.82, 32.70), DAY, 8, 30, 43.2)

    async def scenario() -> None:
        async with terminal(gateway, "track") as t:
            await ready(t)
            for fix in fixes:
                assert await t.report(fix) == m.OK
                # answered after the commit: the fix is readable the moment the answer comes
                n = db.execute(
                    "SELECT count(*) FROM positions WHERE vehicle_id = %s AND ts = %s",
                    (vid, fix.when),
                ).fetchone()
                assert n is not None and n[0] == 1

    run(scenario())
    r = http.get(
        f"/api/vehicles/{vid}/track",
        params={"from": DAY.isoformat(), "to": (DAY + dt.timedelta(hours=1)).isoformat()},
    )
    assert r.status_code == 200
    line = r.json()["features"][0]
    coords = line["geometry"]["coordinates"]
    assert len(coords) == 8
    for (lon, lat), fix in zip(coords, fixes, strict=True):
        assert lon == pytest.approx(round(fix.lon, 6), abs=1e-6)
        assert lat == pytest.approx(round(fix.lat, 6), abs=1e-6)
    assert line["properties"]["speeds_kmh"] == [43.2] * 8
    assert line["properties"]["times"] == [f.when.isoformat() for f in fixes]
    assert {row[4] for row in positions(db, vid)} == {90}  # heading from the direction


def test_blind_area_back_fill_completes_a_stop_the_live_fixes_missed(
    gateway: Any, area: Any, http: httpx.Client, db: psycopg.Connection
) -> None:
    """Approach and departure arrive live; the 12-minute roadside stop between them only
    arrives afterwards in one 0x0704 back-fill, and the detector still finds it."""
    vid = area["vehicles"]["backfill"]
    west = [
        Fix(ROADSIDE[0] - 0.02 + 0.0035 * k, ROADSIDE[1], 40, DAY + dt.timedelta(seconds=30 * k))
        for k in range(6)
    ]
    t_stop = west[-1].when + dt.timedelta(seconds=30)
    stop = [Fix(*ROADSIDE, 0, t_stop + dt.timedelta(seconds=30 * k)) for k in range(25)]
    t_go = stop[-1].when + dt.timedelta(seconds=30)
    east = [
        Fix(ROADSIDE[0] + 0.0035 * (k + 1), ROADSIDE[1], 40, t_go + dt.timedelta(seconds=30 * k))
        for k in range(6)
    ]
    fixes = west + stop + east

    async def scenario() -> None:
        async with terminal(gateway, "backfill") as t:
            await ready(t)
            await drive(t, fixes, gap=len(stop), heartbeat_every=0)
            assert t.results == {m.OK: 1 + len(west) + len(east) + 1}  # auth, live, 0x0704

    assert len(fixes) == 37
    run(scenario())
    assert len(positions(db, vid)) == 37
    alerts = alerts_of(http, vid)
    assert [a["rule"] for a in alerts] == ["illegal_parking"]
    assert alerts[0]["duration_s"] >= 720
    start = dt.datetime.fromisoformat(alerts[0]["episode_start"])
    assert t_stop - dt.timedelta(seconds=30) <= start <= t_stop + dt.timedelta(seconds=30)


def _speeding(start: dt.datetime) -> list[Fix]:
    """2 min legal, 5 min at 75 km/h on the 60 km/h road, then legal again (30 s fixes)."""
    out, x = [], 124.81
    for k in range(20):
        speed = 75.0 if 4 <= k < 15 else 50.0
        out.append(Fix(x, ROAD_Y + 0.00005, speed, start + dt.timedelta(seconds=30 * k)))
        x += speed / 3.6 * 30 / (111_320 * math.cos(math.radians(ROAD_Y)))
    return out


def test_overspeed_via_0200_is_the_same_alert_as_via_post_positions(
    gateway: Any, area: Any, http: httpx.Client
) -> None:
    vid, ref = area["vehicles"]["speeding"], area["vehicles"]["speeding_http"]
    fixes = _speeding(DAY)

    async def scenario() -> None:
        async with terminal(gateway, "speeding") as t:
            await ready(t)
            for fix in fixes:
                assert await t.report(fix) == m.OK

    run(scenario())
    body = [
        {
            "vehicle_id": ref,
            "ts": f.when.isoformat(),
            "lon": round(f.lon, 6),
            "lat": round(f.lat, 6),
            "speed_kmh": f.speed_kmh,
            "heading": 90,
        }
        for f in fixes
    ]
    assert http.post("/api/positions", json=body).json()["accepted"] == 20
    got, want = alerts_of(http, vid), alerts_of(http, ref)
    assert len(got) == len(want) == 1
    assert got[0]["rule"] == "overspeed" and got[0]["details"]["limit_kmh"] == 60
    assert got[0]["details"]["peak_kmh"] == 75 and got[0]["duration_s"] == 300
    keys = ("rule", "episode_start", "episode_end", "duration_s", "active", "severity")
    assert {k: got[0][k] for k in keys} == {k: want[0][k] for k in keys}


def test_garbage_half_frames_and_bad_checks_never_stop_the_gateway(
    gateway: Any, area: Any, db: psycopg.Connection
) -> None:
    vid = area["vehicles"]["garbage"]

    async def scenario() -> tuple[int, int, int]:
        # a client that sends garbage and leaves in the middle of a frame
        async with Terminal("127.0.0.1", gateway[1], "013877777777", "x") as rude:
            await rude.raw(b"\x00\xff" * 200 + b"\x7e\x02\x00\x00\x1c\x01")
        async with terminal(gateway, "garbage") as t:
            await ready(t)
            # a location report with a broken check code: result 2, nothing stored
            serial, wire = t.frame(m.LOCATION, Fix(*ROADSIDE, 30, DAY).body())
            waiter = asyncio.get_running_loop().create_future()
            t._waiting[serial] = waiter
            inner = unescape(wire[1:-1])
            broken = b"\x7e" + escape(inner[:-1] + bytes([inner[-1] ^ 0x55])) + b"\x7e"
            await t.raw(b"junk" + broken)
            bad = m.decode_general_response((await asyncio.wait_for(waiter, 10)).body)[2]
            unknown = await t.general(0x0F0F, b"\x01\x02")  # no such message: result 3
            ok = await t.report(Fix(*ROADSIDE, 30, DAY + dt.timedelta(seconds=30)))
            return bad, unknown, ok

    assert run(scenario()) == (m.BAD_MESSAGE, m.UNSUPPORTED, m.OK)
    assert [r[0] for r in positions(db, vid)] == [DAY + dt.timedelta(seconds=30)]


def test_escaped_bytes_a_bad_check_and_a_shuffled_batch_store_exactly_the_fixes_sent(
    gateway: Any, area: Any, db: psycopg.Connection
) -> None:
    """Coordinates, speed, direction and serials whose bytes are 0x7e and 0x7d (so the frames
    carry 0x7d 0x02 and 0x7d 0x01), one report with a broken check code (result 2, nothing
    stored, then re-sent whole), and a 0x0704 whose items come in shuffled time order: the
    vehicle's positions are exactly the fixes answered 0, to the 1e-6 degree."""
    vid = area["vehicles"]["escaped"]
    lon_u, lat_u = 0x0771_7E7D, 0x01F2_7D7E  # 124.878461 E, 32.669054 N: in the test area
    # 12.6 km/h = 0x007e tenths, direction 125 = 0x007d; the lat keeps its 0x7d 0x7e bytes
    fixes = [
        Fix((lon_u - k) / 1e6, lat_u / 1e6, 12.6, DAY + dt.timedelta(seconds=30 * k), 125)
        for k in range(9)
    ]
    live, broken, batch, late = fixes[0], fixes[1], fixes[2:8], fixes[8]
    shuffled = random.Random(14).sample(batch, len(batch))
    assert [f.when for f in shuffled] != sorted(f.when for f in shuffled)

    def escaped(wire: bytes) -> bool:
        inner = wire[1:-1]
        return 0x7E not in inner and b"\x7d\x02" in inner and b"\x7d\x01" in inner

    async def scenario() -> list[int]:
        async with terminal(gateway, "escaped") as t:
            await ready(t)
            results = []
            t.serial = 0x7E7C  # the next frame's serial is 0x7e7d
            serial, wire = t.frame(m.LOCATION, live.body())
            assert serial == 0x7E7D and escaped(wire) and wire.count(b"\x7d") >= 4
            answers = [t.send_frame(serial, wire)]
            serial, wire = t.frame(m.LOCATION, broken.body())
            inner = unescape(wire[1:-1])
            bad = b"\x7e" + escape(inner[:-1] + bytes([inner[-1] ^ 0xFF])) + b"\x7e"
            answers.append(t.send_frame(serial, bad))
            serial, wire = t.frame(
                m.BATCH, m.encode_batch([f.body() for f in shuffled], m.BACKFILL)
            )
            assert escaped(wire)
            answers.append(t.send_frame(serial, wire))
            for answer in answers:
                frame = await asyncio.wait_for(answer, 10)
                results.append(m.decode_general_response(frame.body)[2])
            # the broken report was not stored: everything else answered so far was
            assert [r[0] for r in positions(db, vid)] == [f.when for f in [live, *batch]]
            results.append(await t.report(broken))  # re-sent whole: stored
            results.append(await t.report(late))
            return results

    assert run(scenario()) == [m.OK, m.BAD_MESSAGE, m.OK, m.OK, m.OK]
    stored = positions(db, vid)
    assert [r[0] for r in stored] == [f.when for f in fixes]  # each once, in event time
    for (_, lon, lat, speed, heading, alarm), f in zip(stored, fixes, strict=True):
        assert (round(lon * 1e6), round(lat * 1e6)) == (round(f.lon * 1e6), lat_u)
        assert (speed, heading, alarm) == (pytest.approx(12.6), 125, 0)


def test_a_client_sending_only_bad_frames_is_closed(gateway: Any) -> None:
    async def scenario() -> bool:
        async with Terminal("127.0.0.1", gateway[1], "013866666666", "x") as t:
            await t.raw(b"\x7e\x01\x02\x03" * 30 + b"\x7e")  # 30 malformed frames (limit 20)
            for _ in range(100):
                if t.closed_by_peer:
                    return True
                await asyncio.sleep(0.05)
            return False

    assert run(scenario())


def test_impossible_times_are_refused_per_row(
    gateway: Any, area: Any, db: psycopg.Connection
) -> None:
    vid = area["vehicles"]["old_time"]
    good = [Fix(*ROADSIDE, 20, DAY + dt.timedelta(seconds=30 * k)) for k in range(3)]
    y2000 = Fix(*ROADSIDE, 20, dt.datetime(2000, 1, 1, tzinfo=m.CST))

    async def scenario() -> tuple[int, int]:
        async with terminal(gateway, "old_time") as t:
            await ready(t)
            single = await t.report(y2000)
            batch = await t.backfill([good[0], y2000, good[1], good[2]])
            return single, batch

    # a lone impossible fix: 2 (the message is wrong); a batch: 0 once its good rows are in
    assert run(scenario()) == (m.BAD_MESSAGE, m.OK)
    assert [r[0] for r in positions(db, vid)] == [f.when for f in good]


def test_a_2019_edition_terminal_registers_and_reports(
    gateway: Any, area: Any, db: psycopg.Connection
) -> None:
    vid = area["vehicles"]["v2019"]

    async def scenario() -> tuple[int, int]:
        async with terminal(gateway, "v2019", version=1) as t:
            await ready(t)
            first = await t.report(Fix(124.83, 32.71, 12.3, DAY))
        # the same terminal with 2013 headers (its phone padded to 12 digits, not 20): the
        # same identity, so its code still holds
        code = t.auth_code
        assert len(t.phone) == 12
        async with terminal(gateway, "v2019") as t2013:
            assert await t2013.authenticate(code) == m.OK
            return first, await t2013.report(
                Fix(124.831, 32.71, 12.3, DAY + dt.timedelta(seconds=30))
            )

    assert run(scenario()) == (m.OK, m.OK)
    [(ts, lon, lat, speed, _, _), _] = positions(db, vid)
    assert (
        ts == DAY and (lon, lat) == pytest.approx((124.83, 32.71)) and speed == pytest.approx(12.3)
    )


def test_alarm_flags_are_kept_with_the_fix(gateway: Any, area: Any, db: psycopg.Connection) -> None:
    vid = area["vehicles"]["alarm"]
    fixes = path((124.84, 32.72), DAY, 4, 30, 30, alarm=(1 << 0) | (1 << 8), alarm_from=2)
    fixes[3].alarm |= 1 << 31  # the reserved top bit survives as int4's sign

    async def scenario() -> None:
        async with terminal(gateway, "alarm") as t:
            await ready(t)
            for fix in fixes:
                assert await t.report(fix) == m.OK

    run(scenario())
    assert [r[5] for r in positions(db, vid)] == [0, 0, 0x101, 0x101 - (1 << 31)]


def test_no_answer_without_a_commit_and_the_resend_is_stored_once(
    gateway: Any, area: Any, database_url: str, db: psycopg.Connection
) -> None:
    """The store fails (the vehicle's state is locked past the statement timeout): no answer,
    nothing stored; the terminal re-sends once the database is back and gets 0, one row."""
    vid = area["vehicles"]["resend"]
    fix = Fix(*ROADSIDE, 25, DAY)
    gw = gateway[0].server.config.app.state.jt808.inner  # the gateway inside its lease

    async def scenario() -> int:
        async with terminal(gateway, "resend") as t:
            await ready(t)
            with psycopg.connect(database_url) as locker:
                locker.execute(
                    "INSERT INTO vehicle_state (vehicle_id) VALUES (%s) ON CONFLICT DO NOTHING",
                    (vid,),
                )
                locker.commit()
                locker.execute(
                    "SELECT 1 FROM vehicle_state WHERE vehicle_id = %s FOR UPDATE", (vid,)
                )
                failures = gw.batcher.stats.failures
                with pytest.raises(TimeoutError):
                    await t.request(m.LOCATION, fix.body(), timeout=6)
                assert gw.batcher.stats.failures == failures + 1
                assert positions(db, vid) == []
            return await t.report(fix)  # the lock is gone: re-sent, stored, answered

    assert run(scenario()) == m.OK
    assert [r[0] for r in positions(db, vid)] == [DAY]


def test_alarm_bits_open_and_end_terminal_alarm_alerts(
    gateway: Any, area: Any, http: httpx.Client
) -> None:
    """Emergency button and main power cut: the bit set opens an alert of its own kind, the
    first fix with the bit clear ends it; one alert per vehicle, alarm and episode."""
    vid = area["vehicles"]["alarm2"]
    emergency, power = 1 << 0, 1 << 8
    bits = [0, 0, emergency | power, emergency | power, emergency | power, power, power, 0, 0]
    fixes = path((124.86, 32.73), DAY, len(bits), 30, 30)
    for fix, b in zip(fixes, bits, strict=True):
        fix.alarm = b

    async def send(part: list[Fix]) -> None:
        async with terminal(gateway, "alarm2") as t:
            await ready(t)
            for fix in part:
                assert await t.report(fix) == m.OK

    def by_rule() -> dict[str, dict[str, Any]]:
        found = alerts_of(http, vid)
        assert len({a["rule"] for a in found}) == len(found)  # one per alarm
        return {a["rule"]: a for a in found}

    run(send(fixes[:4]))
    got = by_rule()
    assert set(got) == {"terminal_emergency", "terminal_power_cut"}
    assert all(a["active"] for a in got.values())
    assert got["terminal_emergency"]["episode_start"] == fixes[2].when.isoformat()
    assert got["terminal_emergency"]["severity"] == "severe"
    assert got["terminal_emergency"]["details"]["alarm"] == "emergency"
    run(send(fixes[4:]))
    got = by_rule()
    assert set(got) == {"terminal_emergency", "terminal_power_cut"}
    emergency_alert, power_alert = got["terminal_emergency"], got["terminal_power_cut"]
    assert not emergency_alert["active"] and not power_alert["active"]
    assert emergency_alert["episode_end"] == fixes[4].when.isoformat()
    assert power_alert["episode_end"] == fixes[6].when.isoformat()
    assert power_alert["details"]["fixes"] == 5 and power_alert["revision"] > 1
    cap = http.get(f"/api/alerts/{emergency_alert['id']}.cap")
    assert cap.status_code == 200 and "Hazmat tanker emergency alarm" in cap.text
    assert "<severity>Severe</severity>" in cap.text


def test_alarm_episodes_from_out_of_order_fixes() -> None:
    """A back-filled fix with the bit set joins two runs; one with it clear splits nothing
    it should not: episodes are runs in event time, whatever the arrival order."""
    s = 1_000_000
    fixes = [(0, 1.0, 2.0, 0), (30 * s, 1.0, 2.0, 4), (60 * s, 1.0, 2.0, 4), (90 * s, 1.0, 2.0, 0)]
    [fatigue] = episodes(7, fixes, 60 * s, 60 * s)
    assert (fatigue.rule, fatigue.start_us, fatigue.end_us) == ("terminal_fatigue", 30 * s, 60 * s)
    assert not fatigue.active and fatigue.details["fixes"] == 2
    # the clearing fix alone is new: the episode it ends is judged again
    assert [c.rule for c in episodes(7, fixes, 90 * s, 90 * s)] == ["terminal_fatigue"]
    # a new fix far from any run changes none
    assert episodes(7, [*fixes, (500 * s, 1.0, 2.0, 0)], 500 * s, 500 * s) == []
    # still set on the latest fix: active
    [open_run] = episodes(7, fixes[:3], 60 * s, 60 * s)
    assert open_run.active and open_run.end_us == 60 * s


def test_connection_limit_idle_timeout_and_stop(database_url: str) -> None:
    """A gateway of its own (no HTTP server): the connection over the limit is closed at once,
    a silent one after the idle timeout, an open one when the gateway stops. None of these
    reach the database, so its pool is never opened."""

    async def scenario() -> tuple[bytes, bytes, bytes, int]:
        settings = make_settings(database_url)
        settings.jt808 = Jt808Settings(port=0, max_connections=1, idle_timeout_s=5)
        gw = Jt808Gateway(open_pool(settings.db), Rerater(settings), settings)
        await gw.start()
        assert gw.port
        try:
            first, _w1 = await asyncio.open_connection("127.0.0.1", gw.port)
            await asyncio.sleep(0.2)  # accepted before the second one arrives
            second, _w2 = await asyncio.open_connection("127.0.0.1", gw.port)
            refused = await asyncio.wait_for(second.read(), 10)
            idle = await asyncio.wait_for(first.read(), 30)
            third, _w3 = await asyncio.open_connection("127.0.0.1", gw.port)
            await asyncio.sleep(0.2)
        finally:
            await gw.stop()
        stopped = await asyncio.wait_for(third.read(), 10)
        return refused, idle, stopped, gw.stats.refused_connections

    assert run(scenario()) == (b"", b"", b"", 1)
