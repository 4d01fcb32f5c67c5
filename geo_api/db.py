"""The database pool: opened in the app's lifespan, kept on ``app.state``, lent per request."""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Annotated, Any

from fastapi import Depends, Request
from psycopg import AsyncConnection
from psycopg_pool import AsyncConnectionPool

from geo_api.settings import DatabaseSettings, TilesSettings
from tiles.engine import choose_plans


def sqlalchemy_url(url: str) -> str:
    """SQLAlchemy needs the driver named; psycopg 3 is ours."""
    for prefix in ("postgresql+psycopg://", "postgresql://", "postgres://"):
        if url.startswith(prefix):
            return "postgresql+psycopg://" + url[len(prefix) :]
    return url


#: How long a request waits for a working pooled connection; past it, ``PoolTimeout`` → 503
#: ("database unavailable; retry shortly") instead of a client hanging for psycopg's 30 s.
POOL_TIMEOUT_S = 10.0
#: How long one background reconnection keeps retrying (after 0, 1, 3, 7 and 10 s) before it
#: gives up and frees its slot; the next request that waits starts a fresh one at once. With
#: psycopg's 5 minutes the backoff doubles on (15, 31, 63 s …), so after a 30-s outage the pool
#: could stay empty for another 30 s although PostgreSQL was back; with 10 s a restart is seen
#: within ~4 s, and a server started while PostgreSQL is still starting waits up to 10 s for it.
RECONNECT_TIMEOUT_S = 10.0


def open_pool(
    settings: DatabaseSettings,
    url: str | None = None,
    name: str = "georisk",
    *,
    max_size: int | None = None,
    autocommit: bool = False,
    then: Callable[[AsyncConnection], Awaitable[None]] | None = None,
) -> AsyncConnectionPool:
    """Connections keep psycopg's default tuple rows, exactly like the CLI's and the tests', so
    domain code behaves the same everywhere; code that wants dicts asks its cursor for them.

    Every checkout is checked first (``check_connection``: one empty query; measured +65–70 µs
    per checkout on loopback, against ~200 µs for a checkout running ``SELECT 1``): after a
    database restart the idle connections are all dead, and without the check each would be
    handed to one request and fail it. With it, a dead connection is discarded and replaced
    before use, so requests recover as soon as PostgreSQL accepts connections."""

    async def configure(conn: AsyncConnection) -> None:
        await conn.execute(f"SET statement_timeout = {int(settings.statement_timeout_ms)}")
        if then is not None:  # what a pool of its own sets up besides (open_tile_pool)
            await then(conn)
        await conn.commit()

    size = max_size or settings.pool_max
    return AsyncConnectionPool(
        url or settings.resolved_url(),
        min_size=min(settings.pool_min, size),
        max_size=size,
        kwargs={"autocommit": True} if autocommit else None,
        configure=configure,
        check=AsyncConnectionPool.check_connection,
        timeout=POOL_TIMEOUT_S,
        reconnect_timeout=RECONNECT_TIMEOUT_S,
        open=False,
        name=name,
    )


def open_tile_pool(settings: DatabaseSettings, tiles: TilesSettings) -> AsyncConnectionPool:
    """The tile renders' own connections to the primary (``GEORISK_TILES_POOL_MAX`` of them).

    Why apart from the API's pool: a render is one read-only statement per layer, the same few
    statements over and over with other tile numbers. Here they run in autocommit (no
    ``BEGIN``/``COMMIT`` round trips) and psycopg keeps them prepared; with
    ``GEORISK_TILES_GENERIC_PLANS`` the renderer also has these connections reuse one generic
    plan per statement (``plan_cache_mode``, tiles/engine.py ``plan_reusable``: not for time
    windows and hexagon rollups) instead of planning each tile again, which was a third of
    PostgreSQL's time per cold tile (measured 600 → 411 µs of backend CPU a tile, the bytes
    identical). Only these connections: the API's queries keep PostgreSQL's own choice of
    plans. A tile storm also cannot take the API's connections."""

    async def generic(conn: AsyncConnection) -> None:
        await conn.execute("SET plan_cache_mode = force_generic_plan")
        choose_plans(conn, generic=True)

    return open_pool(
        settings,
        name="georisk-tiles",
        max_size=tiles.pool_max,
        autocommit=True,
        then=generic if tiles.generic_plans else None,
    )


#: Requests that may write: their transaction names its actor for the audit triggers.
WRITE_METHODS = frozenset({"POST", "PUT", "PATCH", "DELETE"})


async def connection(request: Request) -> AsyncIterator[AsyncConnection]:
    """FastAPI dependency: one pooled connection, committed on success, rolled back on error.

    For a write, the transaction's ``georisk.actor`` is set to the caller (resolved by the
    route's ``allow`` dependency, which runs first) so the audit log says who did it."""
    pool: AsyncConnectionPool = request.app.state.pool
    writing = request.method in WRITE_METHODS
    async with pool.connection() as conn:
        caller = getattr(request.state, "caller", None)
        if writing and caller is not None:
            await set_actor(conn, actor_name(caller.name, caller.role, caller.key_id))
        yield conn
    if writing:  # committed: this process's next reads must see it, replica or not
        request.app.state.reads.wrote()


async def read_connection(request: Request) -> AsyncIterator[AsyncConnection]:
    """FastAPI dependency for read-only handlers: a streaming replica that has replayed every
    change this process knows of, else the primary (geo_api/replicas.py)."""
    async with request.app.state.reads.connection() as conn:
        yield conn


def actor_name(name: str, role: str, key_id: int | None) -> str:
    """How the audit log names a caller: role, key id and the key's name."""
    return f"{role}:{key_id}:{name}" if key_id is not None else f"{role}:{name}"


async def set_actor(conn: AsyncConnection[Any], actor: str) -> None:
    """Name who writes in this transaction (``is_local``: it ends with the transaction)."""
    await conn.execute("SELECT set_config('georisk.actor', %s, true)", (actor,))


#: The connection every handler takes. ``scope="function"`` commits *before* the response is
#: sent: with the default request scope a client could read right after a 2xx and not yet see
#: its own write.
DbConn = Annotated[AsyncConnection[Any], Depends(connection, scope="function")]
#: The connection of a read-only handler (tiles, collection reads): may be a read replica.
ReadConn = Annotated[AsyncConnection[Any], Depends(read_connection, scope="function")]
