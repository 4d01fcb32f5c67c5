"""Reads from a streaming replica never older than the caller's own write (issue 17 §2).

A cluster of this module's own (primary + ``georisk db replica up``'s hot standby, both real
PostgreSQL processes) serves a server whose ``GEORISK_READ_DATABASE_URL`` is the standby.
Replay on the standby is paused on purpose (``pg_wal_replay_pause()``), which makes its lag
as long as the test wants: a row written behind the server's back is then invisible through
the API (the read came from the standby), while a change made through the API is visible at
once, in the REST answer and in the tile (the read fell back to the primary, which holds it).
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import mapbox_vector_tile
import psycopg
import pytest

from geo_api.migrate import upgrade
from geo_api.pg_local import LocalCluster, LocalReplica
from geo_api.settings import DatabaseSettings
from tests.conftest import LiveServer, auth, key_for, make_settings
from tiles.tms import tile_range

LON, LAT = 122.4, 30.9
DISTRICT = "RR-1"
DB = "georisk_replica_test"


@pytest.fixture(scope="module")
def cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, str]]:
    data_dir = Path(tmp_path_factory.mktemp("replica_cluster"))
    primary = LocalCluster(data_dir)
    replica = LocalReplica(data_dir)
    try:
        primary.up((DB,))
        upgrade(primary.url(DB))
        replica.up()
        yield {"primary": primary.url(DB), "replica": replica.url(DB)}
    finally:
        replica.stop()
        primary.stop()


@pytest.fixture(scope="module")
def server(cluster: dict[str, str]) -> Iterator[LiveServer]:
    settings = make_settings(cluster["primary"])
    settings.db = DatabaseSettings(url=cluster["primary"], read_urls=cluster["replica"], pool_max=4)
    with LiveServer(settings) as live:
        yield live


@pytest.fixture(scope="module")
def plant(cluster: dict[str, str]) -> int:
    with psycopg.connect(cluster["primary"], autocommit=True) as conn:
        conn.execute(
            "INSERT INTO districts (code, name, geom) VALUES (%s, 'replica district',"
            " ST_Multi(ST_MakeEnvelope(%s, %s, %s, %s, 4326)))",
            (DISTRICT, LON - 0.1, LAT - 0.1, LON + 0.1, LAT + 0.1),
        )
        row = conn.execute(
            "INSERT INTO enterprises (credit_code, name, category, is_hazmat, diagnosis_score,"
            " district, geom) VALUES ('91330200RR00000001', 'replica plant', 'storage', true,"
            " 80, %s, ST_SetSRID(ST_Point(%s, %s), 4326)) RETURNING id",
            (DISTRICT, LON, LAT),
        ).fetchone()
    assert row is not None
    return int(row[0])


def _replay(replica_url: str, paused: bool) -> None:
    with psycopg.connect(replica_url, autocommit=True) as conn:
        conn.execute("SELECT pg_wal_replay_pause()" if paused else "SELECT pg_wal_replay_resume()")


def _caught_up(cluster: dict[str, str]) -> None:
    """Wait until the standby has replayed everything the primary has written so far."""
    with psycopg.connect(cluster["primary"], autocommit=True) as conn:
        row = conn.execute("SELECT pg_current_wal_lsn()").fetchone()
    assert row is not None
    target = row[0]
    deadline = time.monotonic() + 30
    with psycopg.connect(cluster["replica"], autocommit=True) as conn:
        while True:
            done = conn.execute("SELECT pg_last_wal_replay_lsn() >= %s", (target,)).fetchone()
            if done and done[0]:
                return
            assert time.monotonic() < deadline, "the standby did not catch up"
            time.sleep(0.1)


def _zone_names(http: httpx.Client) -> set[str]:
    bbox = f"{LON - 0.05},{LAT - 0.05},{LON + 0.05},{LAT + 0.05}"
    r = http.get("/api/zones", params={"bbox": bbox})
    assert r.status_code == 200, r.text
    return {f["properties"]["name"] for f in r.json()["features"]}


def _square(lon: float, lat: float, half: float) -> dict[str, Any]:
    a, b, c, d = lon - half, lat - half, lon + half, lat + half
    return {"type": "Polygon", "coordinates": [[[a, b], [c, b], [c, d], [a, d], [a, b]]]}


def _tile_color(http: httpx.Client, enterprise_id: int) -> str | None:
    x, y, _, _ = tile_range((LON, LAT, LON, LAT), 16)
    r = http.get(f"/tiles/enterprises/16/{x}/{y}.mvt")
    assert r.status_code in (200, 204), r.text
    if r.status_code == 204:
        return None
    feats = mapbox_vector_tile.decode(r.content).get("enterprises", {}).get("features", [])
    ours = [f for f in feats if f["id"] == enterprise_id]
    return str(ours[0]["properties"]["color"]) if ours else None


def _rest_color(http: httpx.Client, enterprise_id: int) -> Any:
    r = http.get(f"/api/enterprises/{enterprise_id}")
    assert r.status_code == 200, r.text
    return r.json()["properties"]["color"]


def test_reads_come_from_the_standby(
    cluster: dict[str, str], server: LiveServer, plant: int
) -> None:
    http = httpx.Client(
        base_url=server.base_url, headers=auth(key_for(cluster["primary"])), timeout=30
    )
    _caught_up(cluster)
    _replay(cluster["replica"], paused=True)
    try:
        # Written behind the server's back (no change notice): the primary holds it, the
        # paused standby does not — and the API answers without it.
        with psycopg.connect(cluster["primary"], autocommit=True) as conn:
            conn.execute(
                "INSERT INTO zones (code, name, kind, district, geom) VALUES"
                " ('RR-HIDDEN', '未同步', 'school', %s,"
                " ST_Multi(ST_Buffer(ST_SetSRID(ST_Point(%s, %s), 4326), 0.002)))",
                (DISTRICT, LON + 0.01, LAT + 0.01),
            )
        assert "未同步" not in _zone_names(http)
    finally:
        _replay(cluster["replica"], paused=False)
    _caught_up(cluster)
    assert "未同步" in _zone_names(http)


def test_a_write_is_read_back_at_once_while_the_standby_lags(
    cluster: dict[str, str], server: LiveServer, plant: int
) -> None:
    http = httpx.Client(
        base_url=server.base_url, headers=auth(key_for(cluster["primary"])), timeout=30
    )
    ent = plant
    rated = http.post(f"/api/enterprises/{ent}/hidden-dangers", json={"title": "loose cover"})
    assert rated.status_code == 201, rated.text
    assert _rest_color(http, ent) == "yellow"
    assert _tile_color(http, ent) == "yellow"  # cached now
    _caught_up(cluster)
    _replay(cluster["replica"], paused=True)
    try:
        filed = http.post(
            f"/api/enterprises/{ent}/hidden-dangers",
            json={"title": "no gas detection in tank area", "is_major": True},
        )
        assert filed.status_code == 201, filed.text
        # The standby still holds yellow; the answers hold the raised colour.
        assert _rest_color(http, ent) == "orange"
        assert _tile_color(http, ent) == "orange"
        zone = {
            "type": "Feature",
            "geometry": _square(LON - 0.01, LAT - 0.01, 0.002),
            "properties": {"code": "RR-NEW", "name": "新学校", "kind": "school"},
        }
        zone["properties"]["district"] = DISTRICT
        assert http.post("/api/zones", json=zone).status_code == 201
        assert "新学校" in _zone_names(http)
        with psycopg.connect(cluster["replica"]) as standby:
            row = standby.execute(
                "SELECT dynamic_color FROM enterprises WHERE id = %s", (ent,)
            ).fetchone()
        assert row is not None and row[0] == "yellow"  # the lag was real
    finally:
        _replay(cluster["replica"], paused=False)
