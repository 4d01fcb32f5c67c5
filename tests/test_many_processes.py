"""Several server processes against one database (issue 17 §1).

Three ``georisk serve`` processes share a database of this module's own (migrated, not seeded,
so the periodic jobs that really run here — on the real clock, every half second — have
nothing of the shared test city to change). Checked: a change made through one process is
purged from every process's tile cache and reaches the SSE clients of all three; each periodic
job is held by exactly one process; SIGKILL of the holder moves every job to a survivor within
10 s. And ``georisk serve --workers 2`` answers from two processes that share the jobs the
same way.
"""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import time
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import mapbox_vector_tile
import psutil
import pytest

from geo_api.migrate import upgrade
from scripts.benchkit import drop_database, free_port, recreate_database, start_server
from tests.conftest import auth, key_for
from tests.sse_client import Stream
from tiles.tms import Tile, tile_range

#: The jobs that must run once in the whole deployment (geo_api/app.py ``once``).
LEASED_JOBS = {
    "escalation",
    "stale_sweeper",
    "scoring",
    "bulletin",
    "reminders",
    "lifecycle",
    "demo_feed",
    "hex_refresh",  # not a clock, but its re-rolls write rows every process shares
}
LON, LAT = 121.3, 29.1
DISTRICT = "MP-1"
#: Every clock on, fast, so a lease that moved shows quickly; the demo feed finds no demo
#: city here and only logs that each round.
ENV = {
    "GEORISK_LEASE_RETRY_S": "0.5",
    "GEORISK_ESCALATION_INTERVAL_S": "0.5",
    "GEORISK_MONITORING_SWEEP_INTERVAL_S": "0.5",
    "GEORISK_SCORING_INTERVAL_S": "3600",
    "GEORISK_SCORING_INITIAL_DELAY_S": "3600",
    "GEORISK_DEMO_FEED_ENABLED": "true",
    "GEORISK_WEBHOOK_ENABLED": "false",
}


@dataclass
class Server:
    proc: subprocess.Popen[bytes]
    port: int

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}"


@pytest.fixture(scope="module")
def own_url(database_url: str) -> Iterator[str]:
    url = database_url.rsplit("/", 1)[0] + "/georisk_test_processes"
    recreate_database(url)
    upgrade(url)
    yield url
    drop_database(url)


def _kill(proc: subprocess.Popen[bytes]) -> None:
    if proc.poll() is None:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait(timeout=10)


@pytest.fixture(scope="module")
def three(own_url: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[list[Server]]:
    logs = tmp_path_factory.mktemp("processes")
    servers: list[Server] = []
    try:
        for i in range(3):
            port = free_port()
            proc = start_server(own_url, port, logs / f"server{i}.log", ENV)
            servers.append(Server(proc, port))
        yield servers
    finally:
        for s in servers:
            _kill(s.proc)


def _cluster(base_url: str, key: str) -> dict[str, Any]:
    r = httpx.get(f"{base_url}/api/cluster", headers=auth(key), timeout=10)
    assert r.status_code == 200, r.text
    return r.json()


def _holders(base_url: str, key: str) -> dict[str, str]:
    """lease → host:pid of its holder, asserting no lease has two."""
    held = _cluster(base_url, key)["holders"]
    names = [h["lease"] for h in held]
    assert len(names) == len(set(names)), held  # a job held twice would run twice
    return {h["lease"]: h["process"] for h in held}


def _wait_for(what: str, check: Any, timeout: float) -> Any:
    deadline = time.monotonic() + timeout
    while True:
        result = check()
        if result:
            return result
        if time.monotonic() > deadline:
            raise AssertionError(f"{what} not within {timeout} s")
        time.sleep(0.2)


def _zone_names_in_tile(base_url: str, key: str, z: int, x: int, y: int) -> set[str]:
    r = httpx.get(f"{base_url}/tiles/zones/{z}/{x}/{y}.mvt", headers=auth(key), timeout=10)
    assert r.status_code in (200, 204), r.text
    if r.status_code == 204 or not r.content:
        return set()
    layer = mapbox_vector_tile.decode(r.content).get("zones", {"features": []})
    return {f["properties"].get("name") for f in layer["features"]}


def test_every_process_hears_a_change_made_through_one(three: list[Server], own_url: str) -> None:
    key = key_for(own_url, "admin")
    first = three[0]
    with httpx.Client(base_url=first.base_url, headers=auth(key), timeout=30) as http:
        district = {
            "type": "Feature",
            "geometry": _square_geojson(LON, LAT, 0.1),
            "properties": {"code": DISTRICT, "name": "多进程区"},
        }
        r = http.post("/api/districts", json=district)
        assert r.status_code == 201, r.text
    x, y, _, _ = tile_range((LON, LAT, LON, LAT), 14)
    tile = Tile(14, x, y)
    # Every process renders and caches the tile while it holds no zone.
    for s in three:
        assert _zone_names_in_tile(s.base_url, key, tile.z, tile.x, tile.y) == set()
    streams = [Stream(s, key) for s in three]
    try:
        for stream in streams:
            stream.next("hello")
        with httpx.Client(base_url=first.base_url, headers=auth(key), timeout=30) as http:
            zone = {
                "type": "Feature",
                "geometry": _square_geojson(LON, LAT, 0.002, multi=False),
                "properties": {
                    "code": "MP-SCHOOL",
                    "name": "多进程学校",
                    "kind": "school",
                    "district": DISTRICT,
                },
            }
            assert http.post("/api/zones", json=zone).status_code == 201
        # The SSE clients of all three processes hear of it …
        for stream in streams:
            stream.next("change", match=lambda d: d["layer"] == "zones")
        # … and by then every process has dropped its cached tile: the refetch holds the zone.
        for s in three:
            codes = _zone_names_in_tile(s.base_url, key, tile.z, tile.x, tile.y)
            assert codes == {"多进程学校"}, (s.port, codes)
    finally:
        for stream in streams:
            stream.close()


def test_each_job_runs_in_one_process_and_moves_when_it_dies(
    three: list[Server], own_url: str
) -> None:
    key = key_for(own_url, "admin")
    pids = {s.proc.pid: s for s in three}
    holders = _wait_for(
        "every job leased",
        lambda: (h := _holders(three[0].base_url, key)).keys() >= LEASED_JOBS and h,
        15,
    )
    # Any process gives the same picture (it comes from the database's lock table).
    assert _holders(three[2].base_url, key) == holders
    assert {int(p.rsplit(":", 1)[1]) for p in holders.values()} <= set(pids)
    victim_pid = int(next(iter(holders.values())).rsplit(":", 1)[1])
    victim_jobs = {job for job, p in holders.items() if int(p.rsplit(":", 1)[1]) == victim_pid}
    here = _cluster(pids[victim_pid].base_url, key)
    assert set(here["leases_here"]) == victim_jobs
    _kill(pids[victim_pid].proc)
    killed_at = time.monotonic()
    survivor = next(s for s in three if s.proc.pid != victim_pid)

    def moved() -> dict[str, str] | None:
        now = _holders(survivor.base_url, key)
        ok = now.keys() >= LEASED_JOBS and all(
            int(p.rsplit(":", 1)[1]) != victim_pid for p in now.values()
        )
        return now if ok else None

    after = _wait_for("jobs moved to a survivor", moved, 10)
    assert time.monotonic() - killed_at < 10
    assert {int(p.rsplit(":", 1)[1]) for p in after.values()} <= set(pids) - {victim_pid}


def test_serve_with_two_workers_shares_the_port_and_the_jobs(
    three: list[Server], own_url: str, tmp_path: Path
) -> None:
    for s in three:  # the three servers leave first: their leases go with them
        _kill(s.proc)
    key = key_for(own_url, "admin")
    port = free_port()
    proc = start_server(own_url, port, tmp_path / "workers.log", ENV, ["--workers", "2"])
    base = f"http://127.0.0.1:{port}"
    try:
        seen: set[str] = set()

        def two_answered() -> bool:
            seen.add(_cluster(base, key)["process"])  # a new connection each time
            return len(seen) >= 2

        _wait_for("answers from two processes", two_answered, 30)
        holders = _wait_for(
            "every job leased by a worker",
            lambda: (
                (h := _holders(base, key)).keys() >= LEASED_JOBS and set(h.values()) <= seen and h
            ),
            15,
        )
        assert holders
    finally:
        _kill(proc)


def _process_answering(port: int, sock: socket.socket, key: str) -> str:
    """Send /api/cluster on an open connection; the process (host:pid) that answered."""
    sock.sendall(
        f"GET /api/cluster HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nX-API-Key: {key}\r\n"
        "Connection: close\r\n\r\n".encode()
    )
    answer = b""
    while chunk := sock.recv(65536):
        answer += chunk
    head, _, body = answer.partition(b"\r\n\r\n")
    assert head.startswith(b"HTTP/1.1 200"), head
    return str(json.loads(body)["process"])


def _listening_sockets(server_pid: int, port: int) -> dict[int, set[str]]:
    """worker pid → the kernel sockets (``socket:[inode]``) it listens on ``port`` with."""
    found: dict[int, set[str]] = {}
    for child in psutil.Process(server_pid).children(recursive=True):
        for conn in child.net_connections("tcp"):
            if conn.status == psutil.CONN_LISTEN and conn.laddr.port == port:
                found.setdefault(child.pid, set()).add(
                    os.readlink(f"/proc/{child.pid}/fd/{conn.fd}")
                )
    return found


def test_two_workers_share_a_burst_of_connections(own_url: str, tmp_path: Path) -> None:
    """32 connections opened at once are spread over both workers (each listens on its own
    SO_REUSEPORT socket). On one shared socket the first worker to wake accepted them all,
    and for as long as they stayed open the other idled (geo_api/serve_workers.py)."""
    key = key_for(own_url, "admin")
    port = free_port()
    proc = start_server(
        own_url, port, tmp_path / "burst.log", ENV, ["--workers", "2"], timeout_s=120
    )
    try:
        seen: set[str] = set()

        def both_listen() -> bool:  # a worker binds once its app has started
            seen.add(_cluster(f"http://127.0.0.1:{port}", key)["process"])
            return len(seen) >= 2

        _wait_for("both workers listening", both_listen, 60)
        listening = _listening_sockets(proc.pid, port)
        assert len(listening) == 2, listening  # each worker a socket of its own
        assert not set.intersection(*listening.values()), listening
        burst = [socket.create_connection(("127.0.0.1", port), timeout=30) for _ in range(32)]
        try:
            served = Counter(_process_answering(port, s, key) for s in burst)
        finally:
            for s in burst:
                s.close()
        assert set(served) == seen, served
        # An even split is 16/16; below 4 has a chance of about 1 in 200,000 by the hash.
        assert min(served.values()) >= 4, served
    finally:
        _kill(proc)


def _square_geojson(lon: float, lat: float, half: float, multi: bool = True) -> dict[str, Any]:
    a, b, c, d = lon - half, lat - half, lon + half, lat + half
    ring = [[a, b], [c, b], [c, d], [a, d], [a, b]]
    if multi:
        return {"type": "MultiPolygon", "coordinates": [[ring]]}
    return {"type": "Polygon", "coordinates": [ring]}
