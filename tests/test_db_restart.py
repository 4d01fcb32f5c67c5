"""A database restart while serving recovers without manual action (issue 8).

Two parts:

- the error map: a database that cannot be reached is a 503 ``{"detail": "database unavailable;
  retry shortly", "errors": [...]}`` with ``Retry-After`` and no database text; a database too
  busy to finish in time (a statement timeout, a lock not granted, a deadlock) is a 503 "busy"
  with ``Retry-After`` — and a real write that waited too long stored nothing; any other
  OperationalError stays a logged 500;
- the small version of ``scripts/fault_db_restart.py``, in process: a server of its own over the
  test database, the private cluster stopped for a few seconds and started again under a
  client that keeps requesting, then every endpoint 2xx again, ``/healthz`` 503 while down, no
  500, writes stored, the tile cache purged by a NOTIFY after the restart and a new alert on an
  SSE stream opened before it.

Why in process rather than the script as a subprocess: the cluster restart is shared by the
whole session either way (every database in the cluster goes down for a few seconds), and in
process the test also proves that the session's own ``live_server`` — whose pool held
connections that the restart killed — answers again afterwards without being restarted. The
cluster is always started again (``restart_cluster`` starts it in a ``finally``); the test is
skipped when the test database is not in the private cluster (nothing of ours to restart).
"""

from __future__ import annotations

import asyncio
import datetime as dt
import time
from pathlib import Path
from urllib.parse import urlsplit

import httpx
import psycopg
import pytest
from fastapi import FastAPI
from psycopg import errors as pg_errors
from psycopg_pool import PoolTimeout

from geo_api.errors import DB_UNAVAILABLE, install_error_handlers
from geo_api.settings import AlertStreamSettings
from scripts.fault_db_restart import check_restart, cluster, restart_cluster
from tests.conftest import LiveServer, auth, key_for, make_settings


def _app() -> FastAPI:
    app = FastAPI()
    install_error_handlers(app)

    @app.get("/lost")
    async def lost() -> None:
        raise psycopg.OperationalError("consuming input failed: server closed the connection")

    @app.get("/shutdown")
    async def shutdown() -> None:
        raise pg_errors.AdminShutdown("terminating connection due to administrator command")

    @app.get("/pool")
    async def pool() -> None:
        raise PoolTimeout("couldn't get a connection after 10.00 sec")

    @app.get("/slow")
    async def slow() -> None:
        raise pg_errors.QueryCanceled("canceling statement due to statement timeout")

    @app.get("/locked")
    async def locked() -> None:
        raise pg_errors.LockNotAvailable("canceling statement due to lock timeout")

    @app.get("/deadlock")
    async def deadlock() -> None:
        raise pg_errors.DeadlockDetected("deadlock detected")

    @app.get("/in-use")
    async def in_use() -> None:
        raise pg_errors.ObjectInUse("database is being accessed by other users")

    return app


def _get(path: str) -> httpx.Response:
    async def go() -> httpx.Response:
        transport = httpx.ASGITransport(app=_app(), raise_app_exceptions=False)
        async with httpx.AsyncClient(transport=transport, base_url="http://app") as http:
            return await http.get(path)

    return asyncio.run(go())


@pytest.mark.parametrize("path", ["/lost", "/shutdown", "/pool"])
def test_database_unavailable_is_503_without_database_text(path: str) -> None:
    r = _get(path)
    assert r.status_code == 503
    assert r.headers["retry-after"] == "2"
    body = r.json()
    assert body == {
        "detail": DB_UNAVAILABLE,
        "errors": [{"field": "database", "reason": "unavailable"}],
    }
    assert "connection" not in r.text and "administrator" not in r.text


@pytest.mark.parametrize("path", ["/slow", "/locked", "/deadlock"])
def test_a_busy_database_is_503_busy_without_database_text(path: str) -> None:
    r = _get(path)
    assert r.status_code == 503
    assert r.headers["retry-after"] == "2"
    assert r.json()["errors"] == [{"field": "database", "reason": "busy"}]
    assert "nothing was changed" in r.json()["detail"]
    assert "statement" not in r.text and "deadlock" not in r.text and "lock" not in r.text


def test_another_operational_error_is_a_logged_500() -> None:
    r = _get("/in-use")
    assert r.status_code == 500
    assert r.json()["detail"] == "internal error; it has been logged"
    # Answered from outside every middleware, yet with the headers every answer carries.
    assert r.headers["x-content-type-options"] == "nosniff"
    assert r.headers["referrer-policy"] == "no-referrer"
    assert "database" not in r.text


def test_a_write_that_waits_too_long_is_503_and_stores_nothing(database_url: str) -> None:
    """A batch of fixes held up behind a lock past the statement timeout: 503 busy, not a
    500; nothing of it stored; the same batch re-sent once the lock is gone is stored."""
    settings = make_settings(database_url)
    settings.db = settings.db.model_copy(update={"statement_timeout_ms": 500})
    with psycopg.connect(database_url, autocommit=True) as db:
        # A minute after some vehicle's latest fix, where it was: a fix the filters accept.
        last = db.execute(
            "SELECT vehicle_id, ts, lon, lat FROM positions ORDER BY ts DESC LIMIT 1"
        ).fetchone()
    assert last is not None
    vid, ts = last[0], last[1] + dt.timedelta(seconds=60)
    fix = {"vehicle_id": vid, "ts": ts.isoformat(), "lon": last[2], "lat": last[3], "speed_kmh": 0}
    stored = "SELECT count(*) FROM positions WHERE vehicle_id = %s AND ts = %s"
    with LiveServer(settings) as server, server.client() as http:
        with psycopg.connect(database_url) as holder:
            holder.execute("LOCK TABLE positions IN SHARE MODE")  # inserts wait behind it
            r = http.post("/api/positions", json=[fix])
            holder.rollback()
        assert r.status_code == 503, r.text
        assert r.headers["retry-after"] == "2"
        assert r.json()["errors"] == [{"field": "database", "reason": "busy"}]
        with psycopg.connect(database_url, autocommit=True) as db:
            assert db.execute(stored, (vid, ts)).fetchone() == (0,)
            again = http.post("/api/positions", json=[fix])
            assert again.status_code == 200, again.text
            assert db.execute(stored, (vid, ts)).fetchone() == (1,)
            db.execute("DELETE FROM positions WHERE vehicle_id = %s AND ts = %s", (vid, ts))


def _in_private_cluster(url: str) -> bool:
    pg = cluster()
    return pg.running() and urlsplit(url).port == pg.recorded_port()


def test_database_restart_while_serving_recovers(
    database_url: str, live_server: LiveServer, tmp_path: Path
) -> None:
    if not _in_private_cluster(database_url):
        pytest.skip("the test database is not in the private cluster: nothing to restart")
    settings = make_settings(database_url)
    settings.alert_stream = AlertStreamSettings(keepalive_s=1.0)  # readers stop promptly
    headers = auth(key_for(database_url))
    with live_server.client() as shared:
        assert shared.get("/api/enterprises", params={"limit": 1}).status_code == 200
    with LiveServer(settings) as server:
        rep = check_restart(
            database_url,
            server.base_url,
            headers,
            lambda: restart_cluster(4.0),  # > /healthz's 2-s wait: it must say 503
            recover_within=30.0,
        )
    assert cluster().running()
    assert rep.failures == [], "\n".join(rep.failures + rep.lines())
    assert rep.recovered_s is not None and rep.recovered_s < 30
    assert rep.healthz_503_seen and not rep.server_errors
    # The session's server was never restarted: its pool replaced its dead connections.
    deadline = time.monotonic() + 10
    with live_server.client() as shared:
        while True:
            r = shared.get("/api/enterprises", params={"limit": 1})
            if r.status_code == 200 or time.monotonic() > deadline:
                break
            time.sleep(0.2)
        assert r.status_code == 200, r.text


def test_listeners_catch_up_after_a_reconnect_not_at_startup() -> None:
    """The change bus calls its subscribers' ``on_reconnect`` after every LISTEN but the one
    ``start`` waits for: that first is startup (nothing missed), a later one follows a lost
    connection — notifications sent meanwhile are gone."""
    from geo_api.alert_stream import AlertBroadcaster
    from geo_api.refresh import HexRefresher
    from layers.core.changes import ChangeBus

    async def scenario() -> None:
        hub = AlertBroadcaster(None, 8, 8)  # type: ignore[arg-type]
        hexes = HexRefresher(None, 0.1)  # type: ignore[arg-type]
        bus = ChangeBus("")
        bus.subscribe("alert stream", hub.on_change, on_reconnect=hub.on_reconnect)
        bus.subscribe("hexagon refresh", hexes.on_change, on_reconnect=hexes.on_reconnect)
        bus._on_connect()  # the LISTEN start() waits for
        assert not hub._rescan and hub._scan_from is None
        assert not hexes.dirty and bus.reconnects == 0
        bus._started = True  # start() returned
        bus._on_connect()  # reconnected: re-read alerts changed since the last read
        assert hub._rescan and hub._wake.is_set() and hub._scan_from is not None
        # … and every hexagon layer is rolled up again
        assert {"enterprises", "alarms", "stops"} <= hexes.dirty and hexes.wake.is_set()
        assert bus.reconnects == 1

    asyncio.run(scenario())
