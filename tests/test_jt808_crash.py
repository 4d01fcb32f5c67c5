"""SIGKILL of the server while terminals stream loses no acknowledged fix (issue 14, Checked by).

A real ``georisk serve`` subprocess with its JT/T 808 gateway on a port, over a database of
this module's own (migrated, not seeded). 24 simulated terminals, each bound to a vehicle of
its own, stream their fixes as 0x0200 reports and 0x0704 batches, several messages in flight
at a time (as a terminal back-filling does). Each terminal notes which fixes the platform
acknowledged (0x8001 result 0). Once enough are acknowledged the server's process group is
SIGKILLed mid-stream; before anything is re-sent, SQL shows every acknowledged fix stored.
Then the server restarts on the same ports, the terminals reconnect, authenticate with the
code they hold, re-send every unacknowledged message (some of which the dead server had
stored without answering) plus their last acknowledged ones, and finish; SQL shows every fix
stored exactly once.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import os
import signal
import socket
import subprocess
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import psycopg
import pytest

from geo_api.migrate import upgrade
from layers.transport.jt808 import messages as m
from scripts.benchkit import drop_database, free_port, recreate_database, start_server
from scripts.jt808_sim import Fix, Terminal, path

TERMINALS = 24
FIXES = 90  # per terminal
WINDOW = 3  # messages in flight per terminal
KILL_AFTER = 600  # acknowledged fixes before the SIGKILL
T0 = (dt.datetime.now(dt.UTC) - dt.timedelta(hours=6)).replace(second=0, microsecond=0)


@pytest.fixture(scope="module")
def own_url(database_url: str) -> Iterator[str]:
    url = database_url.rsplit("/", 1)[0] + "/georisk_test_jt808_crash"
    recreate_database(url)
    upgrade(url)
    yield url
    drop_database(url)


@dataclass
class Message:
    """One frame's worth of fixes: a lone 0x0200, or a 0x0704 of several."""

    fixes: list[int]  # indexes into the terminal's fixes
    acked: bool = False


@dataclass
class Sim:
    """One terminal: its vehicle, fixes, messages, and what the platform acknowledged."""

    k: int
    vid: int
    plate: str
    fixes: list[Fix]
    messages: list[Message] = field(default_factory=list)
    auth_code: str = ""
    connections: int = 0

    def __post_init__(self) -> None:
        # 1 report, a batch of 2, 1 report, a batch of 4, … : both kinds all along the stream
        k, size = 0, 1
        while k < len(self.fixes):
            self.messages.append(Message(list(range(k, min(k + size, len(self.fixes))))))
            k += size
            size = 1 if size > 1 else 2 + (k % 3) * 2

    @property
    def acked(self) -> set[int]:
        return {i for msg in self.messages if msg.acked for i in msg.fixes}

    def body(self, msg: Message) -> tuple[int, bytes]:
        if len(msg.fixes) == 1:
            return m.LOCATION, self.fixes[msg.fixes[0]].body()
        items = [self.fixes[i].body() for i in msg.fixes]
        return m.BATCH, m.encode_batch(items, m.BACKFILL)


class Crash:
    """The server process, its ports, and the moment to kill it."""

    def __init__(self, url: str, log: Path, reuse_port: bool = False) -> None:
        self.url, self.log, self.reuse_port = url, log, reuse_port
        self.http_port, self.gw_port = free_port(), free_port()
        self.acked = 0
        self.killed = asyncio.Event()
        self.restarted = asyncio.Event()
        self.proc: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        env = {
            "GEORISK_JT808_PORT": str(self.gw_port),
            "GEORISK_JT808_FLUSH_INTERVAL_S": "0.05",
            "GEORISK_DEMO_FEED_ENABLED": "0",
            "GEORISK_WEBHOOK_ENABLED": "false",
            "GEORISK_LEASE_RETRY_S": "0.5",
            "GEORISK_JT808_REUSE_PORT": "true" if self.reuse_port else "false",
        }
        self.proc = start_server(self.url, self.http_port, self.log, env)
        deadline = time.monotonic() + 30  # the gateway listens once its lease is held
        while True:
            try:
                socket.create_connection(("127.0.0.1", self.gw_port), timeout=1).close()
                return
            except OSError:
                assert time.monotonic() < deadline, "the gateway did not start listening"
                time.sleep(0.1)

    def kill(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            os.killpg(self.proc.pid, signal.SIGKILL)
            self.proc.wait(timeout=10)


def _stored(url: str) -> dict[tuple[int, dt.datetime], int]:
    with psycopg.connect(url) as c:
        rows = c.execute("SELECT vehicle_id, ts, count(*) FROM positions GROUP BY 1, 2").fetchall()
    return {(v, ts): n for v, ts, n in rows}


async def _stream(sim: Sim, crash: Crash, resend_acked: int) -> None:
    """Send every unacknowledged message, ``WINDOW`` in flight; on a lost connection wait,
    reconnect and start again from the first unacknowledged one (after re-sending the last
    ``resend_acked`` acknowledged ones: a terminal that is not sure)."""
    while not all(msg.acked for msg in sim.messages):
        try:
            await _connection(sim, crash, resend_acked)
        except (ConnectionError, OSError, TimeoutError):
            await asyncio.sleep(0.2)


async def _connection(sim: Sim, crash: Crash, resend_acked: int) -> None:
    phone = f"{13_500_000_000 + sim.k:012d}"
    async with Terminal("127.0.0.1", crash.gw_port, phone, sim.plate) as t:
        sim.connections += 1
        if not sim.auth_code:
            assert await t.register() == m.REGISTERED
            sim.auth_code = t.auth_code
        assert await t.authenticate(sim.auth_code) == m.OK  # the code outlives the server
        todo = [msg for msg in sim.messages if not msg.acked]
        if sim.connections > 1:
            done = [msg for msg in sim.messages if msg.acked]
            todo = done[len(done) - resend_acked :] + todo
        in_flight: set[asyncio.Future[None]] = set()

        async def one(msg: Message) -> None:
            answer = await asyncio.wait_for(t.send(*sim.body(msg)), 30)
            _, _, result = m.decode_general_response(answer.body)
            assert result == m.OK, (sim.plate, msg, result)
            if not msg.acked:
                msg.acked = True
                crash.acked += len(msg.fixes)

        try:
            for msg in todo:
                while len(in_flight) >= WINDOW:
                    done_now, in_flight = await asyncio.wait(
                        in_flight, return_when=asyncio.FIRST_COMPLETED
                    )
                    lost = [e for d in done_now if (e := d.exception()) is not None]
                    if lost:  # a lost connection ends this connection's round
                        raise lost[0]
                in_flight.add(asyncio.ensure_future(one(msg)))
                await t.drain()
            for d in asyncio.as_completed(in_flight):
                await d
        finally:  # the round is over: what is still in flight is not answered on it
            for d in in_flight:
                if d.done() and not d.cancelled():
                    d.exception()
                else:
                    d.cancel()


async def _scenario(url: str, sims: list[Sim], crash: Crash) -> dict[str, object]:
    out: dict[str, object] = {}

    async def killer() -> None:
        while crash.acked < KILL_AFTER:
            await asyncio.sleep(0.01)
        crash.kill()  # mid-stream: every terminal has messages in flight
        acked = {(s.vid, s.fixes[i].when) for s in sims for i in s.acked}
        out["acked_at_kill"] = acked
        out["unacked_at_kill"] = sum(len(s.fixes) - len(s.acked) for s in sims)
        out["stored_at_kill"] = await asyncio.to_thread(_stored, url)
        await asyncio.to_thread(crash.start)

    await asyncio.gather(killer(), *(_stream(s, crash, resend_acked=2) for s in sims))
    return out


def test_sigkill_while_terminals_stream_loses_no_acknowledged_fix(
    own_url: str, tmp_path: Path
) -> None:
    with psycopg.connect(own_url, autocommit=True) as c:
        vids = [
            r[0]
            for r in c.execute(
                "INSERT INTO vehicles (plate, carrier) SELECT '测J8·K' || lpad(g::text, 3, '0'),"
                " '崩溃测试' FROM generate_series(1, %s) g ORDER BY g RETURNING id",
                (TERMINALS,),
            ).fetchall()
        ]
    sims = [
        Sim(k, vid, f"测J8K{k + 1:03d}", path((126.0, 34.0 + 0.01 * k), T0, FIXES, 10, 40))
        for k, vid in enumerate(vids)
    ]
    assert {len(msg.fixes) for msg in sims[0].messages} == {1, 2, 4}
    crash = Crash(own_url, tmp_path / "server.log")
    crash.start()
    try:
        out = asyncio.run(_scenario(own_url, sims, crash))
    finally:
        crash.kill()

    acked, stored = out["acked_at_kill"], out["stored_at_kill"]
    assert isinstance(acked, set) and isinstance(stored, dict)
    # The kill landed mid-stream: many fixes acknowledged, many not yet.
    assert len(acked) >= KILL_AFTER and isinstance(out["unacked_at_kill"], int)
    assert out["unacked_at_kill"] >= TERMINALS
    # Every fix acknowledged before the kill was stored before anything was re-sent.
    assert acked - stored.keys() == set()
    assert set(stored.values()) == {1}
    # Every terminal reconnected and finished: each fix stored exactly once, nothing else.
    assert all(s.connections >= 2 for s in sims)
    final = _stored(own_url)
    sent = {(s.vid, f.when) for s in sims for f in s.fixes}
    assert final.keys() == sent and set(final.values()) == {1}
    assert len(final) == TERMINALS * FIXES
    # The stored fixes are the ones sent: coordinates and speed of a sample, to the 1e-6°.
    with psycopg.connect(own_url) as c:
        rows = c.execute(
            "SELECT ts, lon, lat, speed_kmh FROM positions WHERE vehicle_id = %s ORDER BY ts",
            (sims[5].vid,),
        ).fetchall()
    assert [r[0] for r in rows] == [f.when for f in sims[5].fixes]
    for (_, lon, lat, speed), f in zip(rows, sims[5].fixes, strict=True):
        assert (lon, lat) == pytest.approx((round(f.lon, 6), round(f.lat, 6)), abs=1e-6)
        assert speed == pytest.approx(40.0)
    assert "Traceback" not in crash.log.read_text(errors="replace")


def test_server_processes_share_the_gateway_port(own_url: str, tmp_path: Path) -> None:
    """``GEORISK_JT808_REUSE_PORT``: two ``georisk serve`` processes (as ``--workers 2`` runs
    them, but each its own, so no supervisor's start-up deadline is in play) listen on one
    gateway port and the kernel spreads the terminals; every fix of every terminal is answered
    and stored once, whichever process took its connection."""
    with psycopg.connect(own_url, autocommit=True) as c:
        vids = [
            r[0]
            for r in c.execute(
                "INSERT INTO vehicles (plate, carrier) SELECT '测J8·P' || lpad(g::text, 3, '0'),"
                " '端口测试' FROM generate_series(1, 40) g ORDER BY g RETURNING id"
            ).fetchall()
        ]
    first = Crash(own_url, tmp_path / "first.log", reuse_port=True)
    second = Crash(own_url, tmp_path / "second.log", reuse_port=True)
    second.gw_port = first.gw_port

    async def terminal(k: int) -> int:
        phone = f"{13_400_000_000 + k:012d}"
        fixes = path((126.5, 34.0 + 0.01 * k), T0, 6, 10, 40)
        async with Terminal("127.0.0.1", first.gw_port, phone, f"测J8P{k + 1:03d}") as t:
            assert await t.register() == m.REGISTERED
            assert await t.authenticate() == m.OK
            return await t.backfill(fixes)

    async def fleet() -> list[int]:
        return await asyncio.gather(*(terminal(k) for k in range(len(vids))))

    try:
        first.start()
        second.start()  # listening on the port the first one holds: both bound it shared
        assert asyncio.run(fleet()) == [m.OK] * len(vids)
    finally:
        first.kill()
        second.kill()
    stored = _stored(own_url)
    assert set(stored.values()) == {1}
    assert sum(1 for v, _ in stored if v in set(vids)) == 6 * len(vids)
    # each process listened (and neither failed to bind the shared port)
    for log in (first.log, second.log):
        text = log.read_text(errors="replace")
        assert "JT/T 808 gateway listening" in text and "Traceback" not in text
