"""A JT/T 808 terminal simulator: N terminals register, authenticate, heartbeat and report.

    python -m scripts.jt808_sim [--host 127.0.0.1] [--port 7808] [--terminals 5] [--fixes 40]
        [--interval 10] [--speed 40] [--gap 5] [--alarm emergency] [--pace 0] [--edition 2013]

Plates come from the database (``--plates`` to name them): the first N vehicles, each starting
at its last known position (the demo city's roads under ``make run``). Each terminal drives
east at ``--speed`` km/h, one fix per ``--interval`` s of event time; with ``--gap K`` the
middle K fixes are held back (a blind area) and sent afterwards as one 0x0704 back-fill; with
``--alarm`` the alarm bit is set on the second half of the fixes. With ``--pace 0`` the times
end now and fixes go as fast as the answers come; ``--pace S`` sends one fix every S seconds
with the current time (a live demo). Prints progress and counts per answer result.

The ``Terminal`` class is what the tests and ``scripts/bench_jt808.py`` drive.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import datetime as dt
import math
import sys
import time
from collections import Counter
from dataclasses import dataclass, field

from layers.transport.jt808 import messages as m
from layers.transport.jt808.frame import (
    MAX_BODY,
    Frame,
    FrameReader,
    Oversized,
    decode_frame,
    encode_frame,
)

#: JT/T 808 alarm flag bits the simulator can raise (docs/domain.md §3).
ALARMS = {"emergency": 0, "overspeed": 1, "fatigue": 2, "antenna_cut": 5, "power_cut": 8}


class Terminal:
    """One terminal on one TCP connection; ``request`` sends a message and waits for the
    platform's answer to it (matched by serial)."""

    def __init__(
        self, host: str, port: int, phone: str, plate: str, version: int | None = None
    ) -> None:
        self.host, self.port, self.phone, self.plate = host, port, phone, plate
        self.version = version  # None: 2013 headers; an int: 2019 headers with that version
        self.serial = 0
        self.auth_code = ""
        self.results: Counter[int] = Counter()
        self._reader: asyncio.StreamReader | None = None
        self._writer: asyncio.StreamWriter | None = None
        self._waiting: dict[int, asyncio.Future[Frame]] = {}
        self._task: asyncio.Task[None] | None = None

    async def __aenter__(self) -> Terminal:
        await self.connect()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()

    async def connect(self) -> None:
        self._reader, self._writer = await asyncio.open_connection(self.host, self.port)
        self._task = asyncio.create_task(self._read())

    async def close(self) -> None:
        if self._writer is not None:
            self._writer.close()
            with contextlib.suppress(Exception):
                await self._writer.wait_closed()
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task

    @property
    def closed_by_peer(self) -> bool:
        return self._task is not None and self._task.done()

    async def _read(self) -> None:
        assert self._reader is not None
        frames = FrameReader(4096)
        try:
            while data := await self._reader.read(65_536):
                for seg in frames.feed(data):
                    if isinstance(seg, Oversized):
                        continue
                    frame = decode_frame(seg)
                    serial = int.from_bytes(frame.body[:2], "big")
                    waiter = self._waiting.pop(serial, None)
                    if waiter is not None and not waiter.done():
                        waiter.set_result(frame)
        finally:  # closed or reset (a killed server): nothing in flight will be answered
            for waiter in self._waiting.values():
                if not waiter.done():
                    waiter.set_exception(ConnectionError("the platform closed the connection"))
            self._waiting.clear()

    def frame(self, msg_id: int, body: bytes = b"") -> tuple[int, bytes]:
        self.serial = (self.serial + 1) & 0xFFFF
        return self.serial, encode_frame(msg_id, self.phone, self.serial, body, self.version)

    async def raw(self, data: bytes) -> None:
        """Send bytes as they are (tests: garbage, half frames)."""
        assert self._writer is not None
        self._writer.write(data)
        await self._writer.drain()

    def send(self, msg_id: int, body: bytes = b"") -> asyncio.Future[Frame]:
        """Send without waiting: the future of the platform's answer (pipelining, as a
        terminal back-filling does); ``drain`` applies the socket's backpressure."""
        return self.send_frame(*self.frame(msg_id, body))

    def send_frame(self, serial: int, data: bytes) -> asyncio.Future[Frame]:
        """Send a frame as built (tests: inspect or break it first); the answer's future."""
        assert self._writer is not None
        waiter: asyncio.Future[Frame] = asyncio.get_running_loop().create_future()
        if self.closed_by_peer:
            waiter.set_exception(ConnectionError("the platform closed the connection"))
            return waiter
        self._waiting[serial] = waiter
        self._writer.write(data)
        return waiter

    async def drain(self) -> None:
        assert self._writer is not None
        await self._writer.drain()

    async def request(self, msg_id: int, body: bytes = b"", timeout: float = 30.0) -> Frame:
        serial, data = self.frame(msg_id, body)
        waiter: asyncio.Future[Frame] = asyncio.get_running_loop().create_future()
        self._waiting[serial] = waiter
        await self.raw(data)
        return await asyncio.wait_for(waiter, timeout)

    async def general(self, msg_id: int, body: bytes = b"") -> int:
        """Send; the result of the platform's general response (0x8001)."""
        answer = await self.request(msg_id, body)
        _, _, result = m.decode_general_response(answer.body)
        self.results[result] += 1
        return result

    async def register(self, plate_colour: int = 2) -> int:
        reg = m.Registration(33, 200, "GRSIM", "SIM-808", self.phone[-7:], plate_colour, self.plate)
        answer = await self.request(
            m.REGISTER, m.encode_registration(reg, self.version is not None)
        )
        _, result, self.auth_code = m.decode_register_response(answer.body)
        return result

    async def authenticate(self, code: str | None = None) -> int:
        edition_2019 = self.version is not None
        body = m.encode_auth(self.auth_code if code is None else code, edition_2019, "86000000")
        return await self.general(m.AUTHENTICATE, body)

    async def heartbeat(self) -> int:
        return await self.general(m.HEARTBEAT)

    async def report(self, fix: Fix) -> int:
        return await self.general(m.LOCATION, fix.body())

    async def backfill(self, fixes: list[Fix]) -> int:
        """0x0704 back-fill, in as many messages as the 1023-byte body limit needs (34 plain
        fixes each); the worst result."""
        per = (MAX_BODY - 3) // (2 + m.LOCATION_SIZE)
        results = [
            await self.general(
                m.BATCH, m.encode_batch([f.body() for f in fixes[a : a + per]], m.BACKFILL)
            )
            for a in range(0, len(fixes), per)
        ]
        return max(results, default=m.OK)

    async def logout(self) -> int:
        return await self.general(m.LOGOUT)


@dataclass
class Fix:
    lon: float
    lat: float
    speed_kmh: float
    when: dt.datetime
    direction: int = 90
    alarm: int = 0

    def body(self) -> bytes:
        return m.encode_location(
            self.lon, self.lat, self.speed_kmh, self.direction, self.when, alarm=self.alarm
        )


def path(
    start: tuple[float, float],
    t0: dt.datetime,
    n: int,
    interval_s: float,
    speed_kmh: float,
    alarm: int = 0,
    alarm_from: int | None = None,
) -> list[Fix]:
    """``n`` fixes driving east from ``start`` at ``speed_kmh``; ``alarm`` set from fix
    ``alarm_from`` on."""
    lon, lat = start
    step = speed_kmh / 3.6 * interval_s / (111_320 * math.cos(math.radians(lat)))
    return [
        Fix(
            lon + k * step,
            lat,
            speed_kmh,
            t0 + dt.timedelta(seconds=k * interval_s),
            alarm=alarm if alarm_from is not None and k >= alarm_from else 0,
        )
        for k in range(n)
    ]


@dataclass
class Run:
    terminals: int = 0
    registered: int = 0
    authenticated: int = 0
    fixes_sent: int = 0
    results: Counter[int] = field(default_factory=Counter)


async def drive(
    term: Terminal, fixes: list[Fix], gap: int = 0, pace_s: float = 0.0, heartbeat_every: int = 10
) -> Counter[int]:
    """Report ``fixes`` live, holding back the middle ``gap`` of them (a blind area) and
    sending those afterwards as one 0x0704 back-fill; a heartbeat every ``heartbeat_every``."""
    a = (len(fixes) - gap) // 2
    held = range(a, a + gap)
    for k, fix in enumerate(fixes):
        if k in held:
            continue
        if pace_s:
            fix.when = dt.datetime.now(dt.UTC)
            await asyncio.sleep(pace_s)
        await term.report(fix)
        if heartbeat_every and k % heartbeat_every == heartbeat_every - 1:
            await term.heartbeat()
    if gap:
        await term.backfill(fixes[a : a + gap])
    return term.results


def _vehicles(plates: list[str] | None, n: int) -> list[tuple[str, tuple[float, float]]]:
    """Plates and start points from the database: the named plates, or the first ``n``."""
    import psycopg

    from geo_api.settings import DatabaseSettings

    sql = (
        "SELECT v.plate, coalesce(s.last_lon, 121.55), coalesce(s.last_lat, 29.87)"
        " FROM vehicles v LEFT JOIN vehicle_state s ON s.vehicle_id = v.id"
    )
    with psycopg.connect(DatabaseSettings().resolved_url()) as conn:
        if plates:
            rows = conn.execute(sql + " WHERE v.plate = ANY(%s) ORDER BY v.id", (plates,))
        else:
            rows = conn.execute(sql + " ORDER BY v.id LIMIT %s", (n,))
        return [(p, (float(lon), float(lat))) for p, lon, lat in rows.fetchall()]


async def simulate(args: argparse.Namespace) -> Run:
    run = Run()
    vehicles = _vehicles(args.plates, args.terminals)
    version = 1 if args.edition == 2019 else None
    now = dt.datetime.now(dt.UTC).replace(microsecond=0)
    t0 = now - dt.timedelta(seconds=args.interval * args.fixes)
    alarm = 1 << ALARMS[args.alarm] if args.alarm else 0

    async def one(k: int, plate: str, start: tuple[float, float]) -> None:
        phone = f"{13_900_000_000 + k:012d}"
        async with Terminal(args.host, args.port, phone, plate, version) as term:
            run.terminals += 1
            result = await term.register()
            if result != m.REGISTERED:
                print(f"{plate}: registration refused, result {result}", file=sys.stderr)
                return
            run.registered += 1
            if await term.authenticate() != m.OK:
                print(f"{plate}: authentication refused", file=sys.stderr)
                return
            run.authenticated += 1
            fixes = path(start, t0, args.fixes, args.interval, args.speed, alarm, args.fixes // 2)
            await drive(term, fixes, args.gap, args.pace)
            run.fixes_sent += len(fixes)
            run.results.update(term.results)
            print(f"{plate}: {len(fixes)} fixes, answers {dict(term.results)}")

    started = time.perf_counter()
    await asyncio.gather(*(one(k, p, s) for k, (p, s) in enumerate(vehicles)))
    wall = time.perf_counter() - started
    print(
        f"{run.terminals} terminals, {run.registered} registered, {run.authenticated} "
        f"authenticated, {run.fixes_sent} fixes in {wall:.1f} s; answers by result "
        f"{dict(sorted(run.results.items()))} (0 ok, 1 failed, 2 bad message, 3 unsupported)"
    )
    return run


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    p.add_argument("--host", default="127.0.0.1")
    p.add_argument("--port", type=int, default=7808)
    p.add_argument("--terminals", type=int, default=5)
    p.add_argument("--plates", nargs="*", help="plates to register (default: the first N)")
    p.add_argument("--fixes", type=int, default=40, help="fixes per terminal")
    p.add_argument("--interval", type=float, default=10.0, help="event seconds between fixes")
    p.add_argument("--speed", type=float, default=40.0, help="km/h")
    p.add_argument("--gap", type=int, default=5, help="fixes held back for a 0x0704 back-fill")
    p.add_argument("--alarm", choices=sorted(ALARMS), help="alarm bit on the second half")
    p.add_argument("--pace", type=float, default=0.0, help="real seconds between fixes")
    p.add_argument("--edition", type=int, choices=(2013, 2019), default=2013)
    run = asyncio.run(simulate(p.parse_args(argv)))
    return 0 if run.authenticated == run.terminals and run.terminals else 1


if __name__ == "__main__":
    raise SystemExit(main())
