"""The live map's change stream and tile caching over real HTTP (issue 13).

A change committed anywhere reaches every open map that may see it as a ``change`` event naming
the tile layer and where; a refetch of that tile then holds the new colour; callers hear only
of layers they may see; a reconnect resumes from ``Last-Event-ID``; a lagging or too-old client
is told to reload; tiles are revalidated (``no-cache`` + ETag) and vary by credential.
"""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from typing import Any

import httpx
import mapbox_vector_tile
import psycopg
import pytest

from geo_api.map_changes import MapChange, MapChangeFeed, Viewer
from layers.catalog import CATALOG
from tests.conftest import LiveServer, key_for
from tests.sse_client import Stream
from tiles.tms import Tile, tile_range

LON, LAT = 125.91, 33.62  # far from the demo city: this module's own corner
DISTRICT = "MC-1"


@pytest.fixture(scope="module")
def corner(database_url: str) -> Iterator[dict[str, Any]]:
    """A district of its own and a yellow enterprise in it (diagnosis 80, rated)."""
    conn = psycopg.connect(database_url, autocommit=True)
    conn.execute(
        "INSERT INTO districts (code, name, geom) VALUES (%s, 'map changes',"
        " ST_Multi(ST_MakeEnvelope(125.85, 33.55, 125.95, 33.65, 4326)))",
        (DISTRICT,),
    )
    row = conn.execute(
        "INSERT INTO enterprises (credit_code, name, category, is_hazmat, diagnosis_score,"
        " district, geom) VALUES ('91330200MC00000001', 'map change plant', 'storage', true,"
        " 80, %s, ST_SetSRID(ST_Point(%s, %s), 4326)) RETURNING id",
        (DISTRICT, LON, LAT),
    ).fetchone()
    assert row is not None
    yield {"id": int(row[0]), "conn": conn}
    conn.execute("DELETE FROM hidden_dangers WHERE enterprise_id = %s", (row[0],))
    conn.execute("DELETE FROM enterprises WHERE id = %s", (row[0],))
    conn.execute("DELETE FROM districts WHERE code = %s", (DISTRICT,))
    conn.close()


def _enterprise_color(client: httpx.Client, enterprise_id: int, v: str = "") -> str | None:
    z = 16
    x, y, _, _ = tile_range((LON, LAT, LON, LAT), z)
    r = client.get(f"/tiles/enterprises/{z}/{x}/{y}.mvt" + (f"?v={v}" if v else ""))
    assert r.status_code in (200, 204), r.text
    if r.status_code == 204:
        return None
    feats = mapbox_vector_tile.decode(r.content).get("enterprises", {}).get("features", [])
    ours = [f for f in feats if f["id"] == enterprise_id]
    return str(ours[0]["properties"]["color"]) if ours else None


def test_a_major_hidden_danger_reaches_an_open_map(
    live_server: LiveServer, client: httpx.Client, corner: dict[str, Any]
) -> None:
    ent = corner["id"]
    # Rate it once (a danger that is not major re-rates without raising).
    ok = client.post(f"/api/enterprises/{ent}/hidden-dangers", json={"title": "loose cover"})
    assert ok.status_code == 201, ok.text
    before = _enterprise_color(client, ent)
    assert before == "yellow"
    stream = Stream(live_server, key_for(live_server.url))
    try:
        hello, _ = stream.next("hello")
        assert "enterprises" in hello["layers"]
        filed = client.post(
            f"/api/enterprises/{ent}/hidden-dangers",
            json={"title": "no gas detection in tank area", "is_major": True},
        )
        assert filed.status_code == 201, filed.text
        change, ident = stream.next(
            "change", match=lambda d: d["layer"] == "enterprises" and d["bbox"] is not None
        )
        w, s, e, n = change["bbox"]
        assert w <= LON <= e and s <= LAT <= n
        assert ident == str(change["version"]) and change["version"] > hello["version"]
        # The tile the map refetches holds the raised colour (the cache was purged first).
        assert _enterprise_color(client, ent, str(change["version"])) == "orange"
    finally:
        stream.close()


def test_callers_hear_only_what_they_may_see(
    live_server: LiveServer, corner: dict[str, Any]
) -> None:
    conn = corner["conn"]
    reader = Stream(live_server, key_for(live_server.url, "tile_reader"))
    other = conn.execute(
        "SELECT code FROM districts WHERE code <> %s ORDER BY code LIMIT 1", (DISTRICT,)
    ).fetchone()
    assert other is not None
    elsewhere = Stream(live_server, key_for(live_server.url, "regulator", districts=[other[0]]))
    admin = Stream(live_server, key_for(live_server.url))
    try:
        assert "alerts" not in reader.next("hello")[0]["layers"]
        elsewhere.next("hello")
        admin.next("hello")
        bbox = [LON, LAT, LON, LAT]
        for layer in ("alerts", "enterprises"):
            payload = json.dumps({"layer": layer, "count": 1, "bbox": bbox})
            conn.execute("SELECT pg_notify('georisk_changes', %s)", (payload,))
        admin.next("change", match=lambda d: d["layer"] == "alerts")
        admin.next("change", match=lambda d: d["layer"] == "enterprises")
        # The tile reader hears of enterprises (public) but never of alerts.
        reader.next("change", match=lambda d: d["layer"] == "enterprises")
        seen = [reader.events.get_nowait() for _ in range(reader.events.qsize())]
        assert all(d["layer"] != "alerts" for _, d, _ in seen)
        # A regulator of another district hears nothing of this corner's enterprises (other
        # tests may change things in its own district meanwhile: only this corner matters).
        time.sleep(0.5)
        got = [elsewhere.events.get_nowait() for _ in range(elsewhere.events.qsize())]
        here = [
            d
            for kind, d, _ in got
            if kind == "change"
            and d["layer"] == "enterprises"
            and d["bbox"] is not None
            and d["bbox"][0] <= LON <= d["bbox"][2]
            and d["bbox"][1] <= LAT <= d["bbox"][3]
        ]
        assert here == []
    finally:
        for s in (reader, elsewhere, admin):
            s.close()


def test_a_reconnect_resumes_and_an_unknown_version_reloads(
    live_server: LiveServer, corner: dict[str, Any]
) -> None:
    conn = corner["conn"]
    key = key_for(live_server.url)
    first = Stream(live_server, key)
    hello, _ = first.next("hello")
    first.close()
    payload = json.dumps({"layer": "zones", "count": 1, "bbox": [LON, LAT, LON, LAT]})
    conn.execute("SELECT pg_notify('georisk_changes', %s)", (payload,))
    time.sleep(0.5)  # delivered to the server while no stream of ours is open
    resumed = Stream(live_server, key, last_id=str(hello["version"]))
    try:
        change, _ = resumed.next("change", match=lambda d: d["layer"] == "zones")
        assert change["version"] > hello["version"]
    finally:
        resumed.close()
    stale = Stream(live_server, key, last_id="1")
    try:
        reason, _ = stale.next("reload")
        assert "version" in reason["reason"]
    finally:
        stale.close()


def test_a_lagging_map_is_told_to_reload() -> None:
    feed = MapChangeFeed(CATALOG, history=4, queue_size=2, max_viewers=10)
    viewer = feed.subscribe(frozenset({"enterprises"}), None)
    for _ in range(3):
        feed.on_change({"layer": "enterprises", "bbox": [1, 1, 2, 2]})
    assert viewer.reload_reason == "lagging" and not viewer.events
    # History is bounded: a resume from before it cannot be told, one inside it can.
    assert feed.missed(viewer, feed.version - 10) is None
    assert [c.version for c in feed.missed(viewer, feed.version - 2) or []] == [
        feed.version - 1,
        feed.version,
    ]


def test_scoped_viewers_filter_by_area_reference_layers_do_not() -> None:
    viewer = Viewer(
        frozenset({"enterprises", "zones"}), (0, 0, 1, 1), frozenset({"enterprises"}), 8
    )
    far = (5.0, 5.0, 6.0, 6.0)
    assert not viewer.wants(MapChange(1, "enterprises", far, ""))
    assert viewer.wants(MapChange(2, "enterprises", (0.5, 0.5, 0.5, 0.5), ""))
    assert viewer.wants(MapChange(3, "zones", far, ""))  # the same for everyone
    assert viewer.wants(MapChange(4, "enterprises", None, ""))  # unknown extent: tell
    assert not viewer.wants(MapChange(5, "alerts", None, ""))  # not its layer


def test_tiles_are_revalidated_and_vary_by_credential(
    live_server: LiveServer, client: httpx.Client, corner: dict[str, Any]
) -> None:
    z = 16
    x, y, _, _ = tile_range((LON, LAT, LON, LAT), z)
    path = f"/tiles/enterprises/{z}/{x}/{y}.mvt"
    first = client.get(path)
    assert first.status_code == 200
    assert first.headers["cache-control"] == "private, no-cache"
    assert {"Authorization", "X-API-Key", "Cookie"} <= {
        v.strip() for v in first.headers["vary"].split(",")
    }
    again = client.get(path, headers={"If-None-Match": first.headers["etag"]})
    assert again.status_code == 304
    # The fast path takes the live map's cache-buster: same bytes, same ETag.
    busted = client.get(path + "?v=123")
    assert busted.status_code == 200 and busted.headers["etag"] == first.headers["etag"]
    assert Tile(z, x, y).check() == Tile(z, x, y)


def test_hexagons_notify_when_their_rollup_changes(
    database_url: str, corner: dict[str, Any]
) -> None:
    """A rollup that changes cells NOTIFYs ``h3_<layer>`` with their bbox."""
    import asyncio

    from layers.risk.hexagons import rollup

    conn = corner["conn"]
    listener = psycopg.connect(database_url, autocommit=True)
    try:
        listener.execute("LISTEN georisk_changes")

        async def roll() -> None:
            async with await psycopg.AsyncConnection.connect(database_url) as a:
                await rollup(a, "enterprises", [8])
                await a.commit()

        asyncio.run(roll())  # whatever was pending
        listener.execute("SELECT 1")  # drain
        for _ in listener.notifies(timeout=0.2):
            pass
        conn.execute("UPDATE enterprises SET dynamic_color = 'red' WHERE id = %s", (corner["id"],))
        asyncio.run(roll())
        notices = [json.loads(n.payload) for n in listener.notifies(timeout=2.0, stop_after=5)]
        h3 = [p for p in notices if p.get("layer") == "h3_enterprises"]
        assert h3, notices
        w, s, e, n = h3[0]["bbox"]
        assert w <= LON <= e and s <= LAT <= n
        # Nothing changed since: a second rollup says nothing.
        asyncio.run(roll())
        again = [json.loads(n.payload) for n in listener.notifies(timeout=0.5)]
        assert not [p for p in again if p.get("layer") == "h3_enterprises"]
        assert "h3_enterprises" in {
            t.name for t in CATALOG.tile_layers_for_change("h3_enterprises")
        }
    finally:
        listener.close()
