"""A cold tile's round trips and plans: renders borrow from a pool of their own (geo_api/db.py
``open_tile_pool``) whose connections read in autocommit and reuse one generic plan per layer
statement; any other connection lent to a render goes back exactly as it was lent
(tiles/service.py ``autocommit``).

Each render used to open a transaction (``BEGIN``) and close it (``COMMIT``) around its one
statement per layer: two round trips per tile that read nothing. These tests hold the render
to reading outside any transaction, to giving the connection back in the pool's own mode (the
API's handlers rely on transactions), to joining a transaction that a caller already opened
(a replica asked for its replay position first), and to leaving a usable connection behind
when a statement fails.
"""

from __future__ import annotations

import asyncio
from typing import Any

import mapbox_vector_tile
import psycopg
import pytest
from psycopg import AsyncConnection
from psycopg.pq import TransactionStatus
from psycopg_pool import AsyncConnectionPool

from geo_api.db import open_pool, open_tile_pool
from geo_api.replicas import PrimaryVia
from geo_api.settings import DatabaseSettings, TilesSettings
from layers.catalog import CATALOG
from tests.conftest import LiveServer
from tiles.engine import RenderedTile, Renderer, TileRequest
from tiles.service import TileService, autocommit
from tiles.tms import Tile, tile_range

IDLE, INTRANS = TransactionStatus.IDLE, TransactionStatus.INTRANS


class Watching(Renderer):
    """The renderer, noting the connection's transaction state right after each render."""

    def __init__(self) -> None:
        super().__init__()
        self.states: list[TransactionStatus] = []

    async def render(self, conn: AsyncConnection[Any], req: TileRequest) -> RenderedTile:
        rendered = await super().render(conn, req)
        self.states.append(conn.info.transaction_status)
        return rendered


@pytest.fixture(scope="module")
def enterprise_tile(seeded_url: str) -> tuple[int, Tile]:
    with psycopg.connect(seeded_url) as conn:
        row = conn.execute(
            "SELECT id, ST_X(geom), ST_Y(geom) FROM enterprises ORDER BY id LIMIT 1"
        ).fetchone()
    assert row is not None
    x, y, _, _ = tile_range((row[1], row[2], row[1], row[2]), 15)
    return row[0], Tile(15, x, y)


def _service(pool: AsyncConnectionPool) -> tuple[TileService, Watching]:
    service = TileService(pool, cache_bytes=0, live_ttl_s=5)
    watching = Watching()
    service.renderer = watching
    return service, watching


def _enterprises(tile: Tile) -> TileRequest:
    return TileRequest((CATALOG.tiles["enterprises"],), tile)


def _ids(data: bytes) -> set[int]:
    decoded = mapbox_vector_tile.decode(data)
    return {f["id"] for f in decoded["enterprises"]["features"]}


def test_a_render_reads_outside_a_transaction_and_returns_the_connection_as_lent(
    seeded_url: str, enterprise_tile: tuple[int, Tile]
) -> None:
    enterprise_id, tile = enterprise_tile
    req = _enterprises(tile)

    async def work() -> None:
        async with AsyncConnectionPool(seeded_url, min_size=1, max_size=1, open=False) as pool:
            service, watching = _service(pool)
            first = await service.tile(req)
            again = await service.tile(req)
            assert enterprise_id in _ids(first.body)
            assert again.body == first.body and again.etag == first.etag
            # No transaction was left open by the layer statements: they ran in autocommit.
            assert watching.states == [IDLE, IDLE]
            async with pool.connection() as conn:  # the one connection of the pool
                assert conn.autocommit is False
                assert conn.info.transaction_status == IDLE
                await conn.execute("SELECT 1")
                assert conn.info.transaction_status == INTRANS  # the API's handlers get this

    asyncio.run(work())


def test_a_render_joins_a_transaction_the_caller_already_opened(
    seeded_url: str, enterprise_tile: tuple[int, Tile]
) -> None:
    enterprise_id, tile = enterprise_tile
    req = _enterprises(tile)

    async def work() -> None:
        async with await AsyncConnection.connect(seeded_url) as conn:
            await conn.execute("SELECT pg_current_wal_lsn()")  # as the replica router does
            assert conn.info.transaction_status == INTRANS
            watching = Watching()
            async with autocommit(conn):
                rendered = await watching.render(conn, req)
            assert enterprise_id in _ids(rendered.data)
            assert watching.states == [INTRANS]
            assert conn.autocommit is False and conn.info.transaction_status == INTRANS

    asyncio.run(work())


def test_a_failed_render_leaves_a_usable_connection_in_the_pools_mode(
    seeded_url: str, enterprise_tile: tuple[int, Tile]
) -> None:
    enterprise_id, tile = enterprise_tile
    req = _enterprises(tile)

    async def work() -> None:
        async with AsyncConnectionPool(seeded_url, min_size=1, max_size=1, open=False) as pool:
            service, _ = _service(pool)
            async with pool.connection() as conn:
                # PostGIS and the tables cannot be found: the statement fails inside the render.
                await conn.execute("SET search_path = pg_catalog")
            with pytest.raises(psycopg.ProgrammingError):
                await service.tile(req)
            async with pool.connection() as conn:
                assert conn.autocommit is False
                assert conn.info.transaction_status == IDLE
                await conn.execute("RESET search_path")
            rendered = await service.tile(req)
            assert enterprise_id in _ids(rendered.body)

    asyncio.run(work())


async def _setting(pool: AsyncConnectionPool) -> tuple[str, bool]:
    async with pool.connection() as conn:
        row = await (await conn.execute("SELECT current_setting('plan_cache_mode')")).fetchone()
        assert row is not None
        return str(row[0]), conn.autocommit


def test_the_tile_pool_reuses_generic_plans_and_the_api_pool_keeps_its_own(
    seeded_url: str, enterprise_tile: tuple[int, Tile]
) -> None:
    enterprise_id, tile = enterprise_tile
    db = DatabaseSettings(url=seeded_url, pool_max=2)
    # Six tiles around the enterprise: one statement, other numbers (psycopg prepares a
    # statement on its sixth use; generic plans are what a prepared statement can reuse).
    tiles = [Tile(15, tile.x + dx, tile.y + dy) for dx in (-1, 0, 1) for dy in (0, 1)] * 2
    reqs = [_enterprises(t) for t in tiles]

    async def work() -> None:
        async with open_tile_pool(db, TilesSettings(pool_max=1)) as pool:
            assert await _setting(pool) == ("force_generic_plan", True)
            service, watching = _service(pool)
            generic = [(await service.tile(req)).body for req in reqs]
            async with pool.connection() as conn:
                cur = await conn.execute(
                    "SELECT sum(generic_plans), sum(custom_plans) FROM pg_prepared_statements"
                )
                plans = await cur.fetchone()
            assert plans is not None and plans[0] >= 1 and plans[1] == 0
            assert set(watching.states) == {IDLE}
            # A time window over the partitioned fixes is planned for its own values (a generic
            # plan keeps every partition), and the next enterprise tile reuses its plan again.
            tracks = TileRequest((CATALOG.tiles["tanker_tracks"],), tile)
            await service.tile(tracks)
            assert await _setting(pool) == ("auto", True)
            assert (await service.tile(reqs[0])).body == generic[0]
            assert await _setting(pool) == ("force_generic_plan", True)
        async with open_tile_pool(db, TilesSettings(pool_max=1, generic_plans=False)) as pool:
            assert await _setting(pool) == ("auto", True)
            service, _ = _service(pool)
            await service.tile(reqs[0])
            assert await _setting(pool) == ("auto", True)
        async with open_pool(db) as pool:  # the API's: PostgreSQL's own choice, transactions
            assert await _setting(pool) == ("auto", False)
            service, _ = _service(pool)
            chosen = [(await service.tile(req)).body for req in reqs]
            assert await _setting(pool) == ("auto", False)  # rendering never changes it
        assert generic == chosen  # the same bytes, whichever plan ran
        assert enterprise_id in _ids(generic[reqs.index(TileRequest(reqs[0].layers, tile))])

    asyncio.run(work())


def test_the_app_renders_tiles_from_its_tile_pool(live_server: LiveServer) -> None:
    app: Any = live_server.server.config.app
    source = app.state.tiles.pool
    assert isinstance(source, PrimaryVia)
    assert source.router is app.state.reads  # replicas and read-your-writes as for any read
    assert source.primary is not app.state.pool
    assert source.primary.max_size == app.state.settings.tiles.pool_max
