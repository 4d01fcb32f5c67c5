"""One change bus per process (layers/core/changes.py) and the workers' start/stop order.

- the bus alone, on channels of its own: each notice reaches the subscribers of its channel only,
  a failing subscriber does not keep it from the others;
- a server of its own, told apart in ``pg_stat_activity`` by its ``application_name``: exactly
  one of its backends LISTENs, and a NOTIFY on that one connection purges the tile cache, re-rolls
  hexagons and reaches an open alert stream; after that connection is killed, the bus listens
  again on one connection and every subscriber catches up (cache dropped, hexagons re-rolled, an
  alert changed while nobody listened sent to the open stream);
- ``Workers`` starts in list order and stops in reverse, the app's lifespan included.
"""

from __future__ import annotations

import asyncio
import json
import queue
import threading
import time
from collections.abc import Callable, Iterator
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import httpx
import psycopg
import pytest

from geo_api.refresh import HexRefresher
from geo_api.settings import EscalationSettings, ScoringSettings, WebhookSettings
from geo_api.workers import Slot, Workers
from layers.catalog import CATALOG
from layers.core.changes import CHANGE_CHANNEL, ChangeBus
from tests.conftest import LiveServer, make_settings
from tiles.tms import tile_range

APP_NAME = "georisk-change-bus-test"


def _with_app_name(url: str, name: str) -> str:
    parts = urlsplit(url)
    query = f"{parts.query}&" if parts.query else ""
    return urlunsplit(parts._replace(query=f"{query}application_name={name}"))


def _wait(check: Callable[[], bool], timeout: float = 10.0) -> bool:
    deadline = time.monotonic() + timeout
    while not check():
        if time.monotonic() > deadline:
            return False
        time.sleep(0.05)
    return True


def _hex_holder(*servers: LiveServer) -> HexRefresher:
    """The hexagon refresher of whichever of these in-process servers holds the deployment's
    ``hex_refresh`` lease: every process hears every change, one re-rolls (geo_api/app.py)."""
    held: list[HexRefresher] = []

    def found() -> bool:
        held[:] = [
            leased.inner
            for leased in (_app(server).state.hex_refresher for server in servers)
            if leased.held
        ]
        return bool(held)

    assert _wait(found), "no server of this test process holds the hexagon lease"
    return held[0]


def _notify(db: psycopg.Connection, payload: dict[str, Any], channel: str = CHANGE_CHANNEL) -> None:
    db.execute("SELECT pg_notify(%s, %s)", (channel, json.dumps(payload)))


def _listening_backends(db: psycopg.Connection) -> list[int]:
    rows = db.execute(
        "SELECT pid FROM pg_stat_activity WHERE application_name = %s AND query ILIKE 'LISTEN %%'",
        (APP_NAME,),
    ).fetchall()
    return [int(r[0]) for r in rows]


# -- the bus alone -------------------------------------------------------------------------------
def test_the_bus_fans_each_notice_out_to_its_channel(database_url: str) -> None:
    seen: list[tuple[str, Any]] = []

    def broken(payload: dict[str, Any]) -> None:
        raise RuntimeError("a subscriber bug")

    async def scenario() -> tuple[ChangeBus, tuple[str, ...]]:
        bus = ChangeBus(database_url, name="test bus")
        bus.subscribe("broken", broken, channel="georisk_bus_test_a")  # first: others still hear
        bus.subscribe("a", lambda p: seen.append(("a", p["n"])), channel="georisk_bus_test_a")
        bus.subscribe("b", lambda p: seen.append(("b", p["n"])), channel="georisk_bus_test_b")
        with pytest.raises(ValueError, match="exists already"):
            bus.subscribe("a", lambda p: None)
        await bus.start()
        assert bus.ready.is_set()  # start() returns once LISTEN is issued
        with pytest.raises(RuntimeError, match="listening already"):
            bus.subscribe("late", lambda p: None, channel="georisk_bus_test_c")
        conn = await psycopg.AsyncConnection.connect(database_url, autocommit=True)
        async with conn:
            for channel, n in [("georisk_bus_test_a", 1), ("georisk_bus_test_b", 2)]:
                await conn.execute("SELECT pg_notify(%s, %s)", (channel, json.dumps({"n": n})))
            await conn.execute("SELECT pg_notify('georisk_bus_test_b', 'not json')")
            await conn.execute("SELECT pg_notify('georisk_bus_test_a', '7')")
        deadline = time.monotonic() + 5
        while len(seen) < 3 and time.monotonic() < deadline:
            await asyncio.sleep(0.02)
        channels = bus.channels
        await bus.stop()
        return bus, channels

    bus, channels = asyncio.run(scenario())
    assert channels == ("georisk_bus_test_a", "georisk_bus_test_b")
    # The bare value 7 arrives as {"value": 7}: "a" reads p["n"], fails, and is logged.
    assert seen == [("a", 1), ("b", 2)]
    assert bus.notices == 3 and bus.reconnects == 0  # the malformed payload is skipped
    assert not bus.ready.is_set()


# -- a server of its own -------------------------------------------------------------------------
class StreamReader(threading.Thread):
    """Alert events of one open ``/api/alerts/stream``, by alert id."""

    def __init__(self, base: str, headers: dict[str, str]) -> None:
        super().__init__(daemon=True)
        self.base, self.headers = base, headers
        self.alerts: queue.Queue[int] = queue.Queue()
        self.connected = threading.Event()
        self.stopping = threading.Event()

    def run(self) -> None:
        timeout = httpx.Timeout(10, read=5)
        with (
            httpx.Client(base_url=self.base, timeout=timeout) as c,
            c.stream("GET", "/api/alerts/stream", headers=self.headers) as r,
        ):
            assert r.status_code == 200
            self.connected.set()
            event: dict[str, str] = {}
            for line in r.iter_lines():
                if self.stopping.is_set():
                    return
                if line == "":
                    if event.get("event") == "alert":
                        self.alerts.put(int(json.loads(event["data"])["properties"]["id"]))
                    event = {}
                elif not line.startswith(":"):
                    name, _, value = line.partition(":")
                    event[name] = value.removeprefix(" ")

    def __enter__(self) -> StreamReader:
        self.start()
        assert self.connected.wait(10), "stream did not open"
        return self

    def __exit__(self, *exc: object) -> None:
        self.stopping.set()
        self.join(timeout=5)

    def wait_for(self, alert_id: int, timeout: float) -> bool:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            try:
                if self.alerts.get(timeout=max(0.01, deadline - time.monotonic())) == alert_id:
                    return True
            except queue.Empty:
                break
        return False


@pytest.fixture(scope="module")
def tile_path(database_url: str) -> str:
    """A z12 enterprises tile holding a demo enterprise (so it has content to cache)."""
    with psycopg.connect(database_url) as c:
        row = c.execute("SELECT ST_X(geom), ST_Y(geom) FROM enterprises ORDER BY id").fetchone()
    assert row is not None
    x, y, _, _ = tile_range((row[0], row[1], row[0], row[1]), 12)
    return f"/tiles/enterprises/12/{x}/{y}.mvt"


@pytest.fixture(scope="module")
def bus_server(database_url: str) -> Iterator[LiveServer]:
    settings = make_settings(_with_app_name(database_url, APP_NAME))
    settings.server.hex_refresh_delay_s = 0.1
    settings.alert_stream.keepalive_s = 0.5  # the reader sees its stop flag promptly
    settings.webhook = WebhookSettings(enabled=True)  # off in the shared server; on here
    with LiveServer(settings) as server:
        yield server


def _app(server: LiveServer) -> Any:
    return server.server.config.app


def test_one_listen_connection_serves_every_consumer(
    bus_server: LiveServer, live_server: LiveServer, db: psycopg.Connection, tile_path: str
) -> None:
    state = _app(bus_server).state
    bus: ChangeBus = state.change_bus
    assert bus.ready.is_set()
    assert len(_listening_backends(db)) == 1  # was one per consumer
    names = {sub.name: sub.channel for sub in bus.subscriptions}
    assert names == {
        "read replicas": "georisk_changes",
        "tile cache": "georisk_changes",
        "hexagon refresh": "georisk_changes",
        "alert stream": "georisk_changes",
        "map changes": "georisk_changes",
        "webhook worker": "georisk_webhooks",
    }
    assert bus.channels == ("georisk_changes", "georisk_webhooks")

    row = db.execute("SELECT min(id) FROM alerts").fetchone()
    assert row and row[0] is not None, "the demo city has alerts"
    alert_id = int(row[0])
    cache = state.tiles.cache
    with bus_server.client() as http:
        assert http.get(tile_path).status_code == 200
        assert http.get(tile_path).status_code == 200
    assert len(cache) >= 1
    roller = _hex_holder(bus_server, live_server)
    rollups, notes = roller.rollups_done, state.tiles.purge.notes
    with StreamReader(bus_server.base_url, bus_server.admin_headers) as stream:
        # A change of enterprises somewhere over the whole map (not ``full``: hexagons follow).
        _notify(db, {"layer": "enterprises", "count": 1, "bbox": [-180, -85, 180, 85]})
        _notify(db, {"layer": "alerts", "count": 1, "ids": [alert_id]})
        assert stream.wait_for(alert_id, 5.0), "the alert stream did not hear the NOTIFY"
    assert _wait(lambda: state.tiles.purge.notes >= notes + 2)
    assert len(cache) == 0  # the cached tile touched the bbox: purged
    assert _wait(lambda: roller.rollups_done > rollups), "no hexagon re-roll"
    assert len(_listening_backends(db)) == 1


def test_after_a_lost_connection_every_subscriber_catches_up(
    bus_server: LiveServer, db: psycopg.Connection, tile_path: str
) -> None:
    state = _app(bus_server).state
    bus: ChangeBus = state.change_bus
    (pid,) = _listening_backends(db)
    row = db.execute("SELECT id, updated_at FROM alerts ORDER BY id DESC LIMIT 1").fetchone()
    assert row is not None
    alert_id, updated_at = int(row[0]), row[1]
    with bus_server.client() as http:
        assert http.get(tile_path).status_code == 200
    assert len(state.tiles.cache) >= 1
    # Only the lease holder re-rolls; any process that lost its notices marks every layer.
    refresher: HexRefresher = state.hex_refresher.inner
    if not state.hex_refresher.held:  # its task is not running: nothing else empties the set
        refresher.dirty.clear()
    rollups, reconnects = refresher.rollups_done, bus.reconnects
    try:
        with StreamReader(bus_server.base_url, bus_server.admin_headers) as stream:
            time.sleep(0.3)  # the stream is subscribed and has read once (``since`` is set)
            _notify(db, {"layer": "alerts", "count": 0, "ids": []})
            time.sleep(0.3)
            db.execute("SELECT pg_terminate_backend(%s)", (pid,))
            # Changed while nobody listens, and no NOTIFY at all: only a catch-up finds it.
            db.execute("UPDATE alerts SET updated_at = now() WHERE id = %s", (alert_id,))
            assert _wait(lambda: bus.reconnects == reconnects + 1, 15.0), "no reconnect"
            assert stream.wait_for(alert_id, 5.0), "the alert stream did not re-read by time"
    finally:
        db.execute("UPDATE alerts SET updated_at = %s WHERE id = %s", (updated_at, alert_id))
    assert len(state.tiles.cache) == 0  # nothing cached before can be trusted
    assert _wait(
        lambda: (
            refresher.rollups_done > rollups or refresher.dirty >= set(CATALOG.refreshed_hex_layers)
        )
    ), "hexagons not marked for a re-roll"
    (again,) = _listening_backends(db)  # one listening connection, a new one
    assert again != pid and bus.ready.is_set()


# -- workers ---------------------------------------------------------------------------------
class Recorder:
    def __init__(self, name: str, log: list[str], fail_start: bool = False) -> None:
        self.name, self.log, self.fail_start = name, log, fail_start

    async def start(self) -> None:
        self.log.append(f"start {self.name}")
        if self.fail_start:
            raise RuntimeError(f"{self.name} cannot start")

    async def stop(self) -> None:
        self.log.append(f"stop {self.name}")


def test_workers_stop_in_reverse_order_of_start() -> None:
    log: list[str] = []
    workers = Workers(
        [
            Slot("a", Recorder("a", log)),
            Slot("off", Recorder("off", log), enabled=False),
            Slot("b", Recorder("b", log)),
            Slot("c", Recorder("c", log)),
        ]
    )
    asyncio.run(workers.start())
    assert workers.started == ("a", "b", "c")
    asyncio.run(workers.stop())
    assert log == ["start a", "start b", "start c", "stop c", "stop b", "stop a"]
    assert workers.started == ()

    log.clear()
    failing = Workers([Slot("a", Recorder("a", log)), Slot("b", Recorder("b", log, True))])
    with pytest.raises(RuntimeError, match="b cannot start"):
        asyncio.run(failing.start())
    assert log == ["start a", "start b", "stop b", "stop a"]

    with pytest.raises(ValueError, match="unique"):
        Workers([Slot("a", Recorder("a", log)), Slot("a", Recorder("a", log))])


def test_the_app_stops_its_workers_in_reverse_order(database_url: str) -> None:
    settings = make_settings(database_url)  # the stale sweep is off in tests
    settings.webhook = WebhookSettings(enabled=True)  # off in the shared server; on here
    settings.escalation = EscalationSettings(enabled=True)  # also off there (a lease each)
    settings.scoring = ScoringSettings(enabled=True, initial_delay_s=3600)
    stopped: list[str] = []
    with LiveServer(settings) as server:
        state = _app(server).state
        workers: Workers = state.workers
        assert [slot.name for slot in workers] == [
            "change_bus",
            "hex_refresher",
            "webhooks",
            "escalation",
            "stale_sweeper",
            "scoring",
            "bulletin",
            "reminders",  # off in tests: tests/test_major_hidden_dangers.py runs its own
            "map_changes",
            "lifecycle",  # partitions ahead, expired days archived (hourly)
            "demo_feed",  # off unless asked (GEORISK_DEMO_FEED_ENABLED)
            "jt808",  # off unless a port is set (GEORISK_JT808_PORT)
            "alert_stream",
        ]
        started = workers.started
        assert started == (
            "change_bus",
            "hex_refresher",
            "webhooks",
            "escalation",
            "scoring",
            "bulletin",
            "map_changes",
            "lifecycle",
            "alert_stream",
        )
        for slot in workers:
            assert getattr(state, slot.name) is slot.worker  # routes and tests read app.state
            original = slot.worker.stop

            async def recorded(name: str = slot.name, stop: Any = original) -> None:
                stopped.append(name)
                await stop()

            slot.worker.stop = recorded  # type: ignore[method-assign]
    assert stopped == list(reversed(started))
