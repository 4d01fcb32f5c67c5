"""Test fixtures: a real PostGIS test database, a small seeded demo city, a real HTTP server.

The test database is ``georisk_test`` in the private cluster (or ``GEORISK_TEST_DATABASE_URL``,
or DATABASE_URL's database with ``_test`` appended). It is dropped and rebuilt by migration at
the start of every session, so a run never depends on what an earlier one left behind.
"""

from __future__ import annotations

import os
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import httpx
import psycopg
import pytest
import uvicorn

from geo_api.app import create_app
from geo_api.migrate import upgrade
from geo_api.settings import (
    DatabaseSettings,
    EscalationSettings,
    MonitoringSettings,
    PreventionSettings,
    ScoringSettings,
    ServerSettings,
    Settings,
    WebhookSettings,
)
from layers.catalog import CATALOG, Catalog
from scripts.benchkit import free_port, recreate_database

TEST_SCALE = float(os.environ.get("GEORISK_TEST_SCALE", "0.02"))
TEST_SEED = 7


def _test_url() -> str:
    explicit = os.environ.get("GEORISK_TEST_DATABASE_URL")
    if explicit:
        return explicit
    base = DatabaseSettings().resolved_url()
    parts = urlsplit(base)
    name = parts.path.lstrip("/") or "georisk"
    if not name.endswith("_test"):
        name = "georisk_test" if name == "georisk" else f"{name}_test"
    return urlunsplit(parts._replace(path="/" + name))


@pytest.fixture(scope="session")
def demo_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("demo")


@pytest.fixture(scope="session")
def database_url(demo_dir: Path) -> str:
    """A fresh, fully migrated test database holding a small demo city (scale TEST_SCALE).

    Seeding comes first, always: tests add their own rows afterwards in areas and with codes
    of their own, and assert on those, so their order never matters.
    """
    from layers.demo_city import seed_demo_city

    url = _test_url()
    recreate_database(url)
    upgrade(url)
    seed_demo_city(url, scale=TEST_SCALE, seed=TEST_SEED, out_dir=demo_dir, progress=False)
    return url


@pytest.fixture(scope="session")
def seeded_url(database_url: str) -> str:
    """The same database, named for tests that read the demo city's content."""
    return database_url


_KEYS: dict[tuple[str, str], str] = {}


def key_for(url: str, role: str = "admin", **scope: Any) -> str:
    """An API key in the database at ``url``; keys without a scope are made once per session.
    Tests reach the API with real keys through the real authentication path."""
    from scripts.benchkit import make_key

    if scope:
        return make_key(url, role, f"test {role}", **scope)
    if (url, role) not in _KEYS:
        _KEYS[(url, role)] = make_key(url, role, f"test {role}")
    return _KEYS[(url, role)]


def auth(key: str) -> dict[str, str]:
    return {"X-API-Key": key}


class LiveServer:
    """uvicorn serving ``create_app`` on a free loopback port in a background thread."""

    def __init__(self, settings: Settings, catalog: Catalog = CATALOG) -> None:
        self.url = settings.db.resolved_url()
        self.port = free_port()
        config = uvicorn.Config(
            create_app(settings, catalog),
            host="127.0.0.1",
            port=self.port,
            log_level="warning",
            timeout_graceful_shutdown=2,  # an SSE stream left open must not hang teardown
        )
        self.server = uvicorn.Server(config)
        self.thread = threading.Thread(target=self.server.run, daemon=True)

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def admin_headers(self) -> dict[str, str]:
        return auth(key_for(self.url))

    def client(self, role: str = "admin", key: str | None = None, **kw: Any) -> httpx.Client:
        """An HTTP client sending a key of ``role`` (or ``key``) with every request."""
        headers = auth(key or key_for(self.url, role))
        return httpx.Client(base_url=self.base_url, headers=headers, **{"timeout": 30, **kw})

    def __enter__(self) -> LiveServer:
        self.thread.start()
        deadline = time.monotonic() + 30
        while not self.server.started:
            if time.monotonic() > deadline or not self.thread.is_alive():
                raise RuntimeError("test server did not start")
            time.sleep(0.05)
        return self

    def __exit__(self, *exc: object) -> None:
        self.server.should_exit = True
        self.thread.join(timeout=10)


def make_settings(url: str) -> Settings:
    # The clock-driven monitoring sweep is exercised by calling it with a chosen ``now``; a
    # second copy running on the real clock in the shared server would race those tests.
    # Webhooks likewise: the tests that deliver start servers with the webhook settings they
    # test (an allow-list, a fake DNS); a worker in the shared server, claiming the same
    # outbox rows under other settings, would answer for them.
    # Escalation and the scoring clock too: each runs in one process per database (a lease,
    # geo_api/leases.py), so a copy held by the shared server would keep the servers the
    # tests start for them from ever running theirs.
    # outbox rows under other settings, would answer for them. Rectification reminders too:
    # tests/test_major_hidden_dangers.py runs the job with the dates it tests.
    return Settings(
        db=DatabaseSettings(url=url, pool_max=4),
        server=ServerSettings(),
        monitoring=MonitoringSettings(sweep_enabled=False),
        webhook=WebhookSettings(enabled=False),
        escalation=EscalationSettings(enabled=False),
        scoring=ScoringSettings(enabled=False),
        prevention=PreventionSettings(reminders_enabled=False),
    )


@pytest.fixture(scope="session")
def live_server(database_url: str) -> Iterator[LiveServer]:
    """The server over the test database."""
    with LiveServer(make_settings(database_url)) as server:
        yield server


@pytest.fixture()
def client(live_server: LiveServer) -> Iterator[httpx.Client]:
    """Real HTTP against the running server (no in-process transport)."""
    with live_server.client() as http:
        yield http


@pytest.fixture()
def db(database_url: str) -> Iterator[psycopg.Connection]:
    """A direct connection for asserting what was (or was not) stored."""
    with psycopg.connect(database_url, autocommit=True) as conn:
        yield conn
