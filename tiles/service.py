"""The tile service an API process keeps: cache, renderer, change purge, single flight.

A cache hit takes no database connection at all (that is what makes warm tiles cheap); a miss
borrows one from the pool only while its statements run. Concurrent misses for the same tile
share one render.

A render runs in autocommit: its statements only read, each in its own snapshot either way
(READ COMMITTED), so a ``BEGIN`` before and a ``COMMIT`` after are two round trips per tile for
nothing (measured 797 → 662 µs a tile on one connection, the bytes identical). The app's tile
pool lends autocommit connections (geo_api/db.py ``open_tile_pool``); any other connection —
a replica's — is switched for the render by :func:`autocommit`. psycopg keeps the layer
statements prepared on each connection across renders.
"""

from __future__ import annotations

import asyncio
import gzip
import hashlib
import time
from collections.abc import AsyncIterator
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from pathlib import Path
from typing import Any, Protocol

from psycopg import AsyncConnection
from psycopg.pq import TransactionStatus

from layers.catalog import CATALOG, Catalog
from tiles.cache import Entry, TileCache
from tiles.engine import ClusterGrid, Renderer, TileRequest
from tiles.invalidate import TilePurge


class TileConfig(Protocol):
    """What the service reads from ``geo_api.settings.TilesSettings`` (kept structural, so the
    engine does not import the web layer)."""

    cache_bytes: int
    cache_dir: Path | None
    live_ttl_s: float
    feature_caps: dict[str, int]
    gzip_level: int
    cluster_px: int
    city_cluster_px: int
    city_cluster_zoom: int


def etag_for(data: bytes) -> str:
    return 'W/"' + hashlib.blake2b(data, digest_size=10).hexdigest() + '"'


class ConnectionSource(Protocol):
    """Lends a connection for a read: a pool, or the app's replica router."""

    def connection(self) -> AbstractAsyncContextManager[AsyncConnection[Any]]: ...


@asynccontextmanager
async def autocommit(conn: AsyncConnection[Any]) -> AsyncIterator[AsyncConnection[Any]]:
    """``conn`` in autocommit while the block runs, then as it was (a pooled connection goes
    back as the pool lent it). Switching is local to psycopg — no round trip. A connection
    that already holds a transaction (a replica asked for its replay position first) is left
    as it is: its statements join that transaction, as before."""
    if conn.autocommit or conn.info.transaction_status != TransactionStatus.IDLE:
        yield conn
        return
    await conn.set_autocommit(True)
    try:
        yield conn
    finally:
        # A broken connection is not idle: the pool discards it, whatever its mode.
        if conn.info.transaction_status == TransactionStatus.IDLE:
            await conn.set_autocommit(False)


class TileService:
    def __init__(
        self,
        pool: ConnectionSource,
        *,
        cache_bytes: int,
        live_ttl_s: float,
        caps: dict[str, int] | None = None,
        disk_dir: Path | None = None,
        gzip_level: int = 5,
        catalog: Catalog = CATALOG,
        clusters: ClusterGrid | None = None,
    ) -> None:
        self.pool = pool
        self.catalog = catalog
        self.cache = TileCache(cache_bytes, disk_dir)
        self.renderer = Renderer(caps, clusters)
        self.live_ttl_s = live_ttl_s
        self.gzip_level = gzip_level
        #: Subscribed to the change bus by the app (nothing purges a service nobody wires).
        self.purge = TilePurge(self.cache, catalog)
        self._inflight: dict[str, asyncio.Future[Entry]] = {}

    async def tile(self, req: TileRequest) -> Entry:
        """The tile's entry; ``body`` is gzip when the cache is on, raw MVT when it is off."""
        key = req.key
        if self.cache.enabled:
            hit = self.cache.get(key)
            if hit is not None:
                return hit
            pending = self._inflight.get(key)
            if pending is not None:
                return await asyncio.shield(pending)
        future: asyncio.Future[Entry] = asyncio.get_running_loop().create_future()
        self._inflight[key] = future
        try:
            entry = await self._render(req, key)
            future.set_result(entry)
            return entry
        except BaseException as exc:
            future.set_exception(exc)
            future.exception()  # retrieved: waiters re-raise it, nobody logs it twice
            raise
        finally:
            self._inflight.pop(key, None)

    async def _render(self, req: TileRequest, key: str) -> Entry:
        names = tuple(layer.name for layer in req.layers)
        generations = self.cache.generations(names)
        async with self.pool.connection() as conn, autocommit(conn):
            rendered = await self.renderer.render(conn, req)
        live = any(layer.cache_class == "live" for layer in req.layers)
        data = rendered.data
        body = data
        if self.cache.enabled and data:
            body = gzip.compress(data, compresslevel=self.gzip_level, mtime=0)
        entry = Entry(
            body=body,
            etag=etag_for(data),
            truncated=rendered.truncated,
            layers=names,
            tile=req.tile,
            expires=time.monotonic() + self.live_ttl_s if live else None,
        )
        if self.cache.enabled:
            self.cache.put(key, entry, generations)
        return entry

    @classmethod
    def from_settings(
        cls, cfg: TileConfig, pool: ConnectionSource, catalog: Catalog = CATALOG
    ) -> TileService:
        return cls(
            pool,
            catalog=catalog,
            cache_bytes=cfg.cache_bytes,
            live_ttl_s=cfg.live_ttl_s,
            caps=dict(cfg.feature_caps),
            disk_dir=cfg.cache_dir,
            gzip_level=cfg.gzip_level,
            clusters=ClusterGrid(cfg.cluster_px, cfg.city_cluster_px, cfg.city_cluster_zoom),
        )

    @property
    def compressed(self) -> bool:
        return self.cache.enabled
