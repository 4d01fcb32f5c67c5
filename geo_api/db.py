"""The database pool: opened in the app's lifespan, kept on ``app.state``, lent per request."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Annotated, Any

from fastapi import Depends, Request
from psycopg import AsyncConnection
from psycopg_pool import AsyncConnectionPool

from geo_api.settings import DatabaseSettings


def sqlalchemy_url(url: str) -> str:
    """SQLAlchemy needs the driver named; psycopg 3 is ours."""
    for prefix in ("postgresql+psycopg://", "postgresql://", "postgres://"):
        if url.startswith(prefix):
            return "postgresql+psycopg://" + url[len(prefix) :]
    return url


def open_pool(settings: DatabaseSettings) -> AsyncConnectionPool:
    """Connections keep psycopg's default tuple rows, exactly like the CLI's and the tests', so
    domain code behaves the same everywhere; code that wants dicts asks its cursor for them."""

    async def configure(conn: AsyncConnection) -> None:
        await conn.execute(f"SET statement_timeout = {int(settings.statement_timeout_ms)}")
        await conn.commit()

    return AsyncConnectionPool(
        settings.resolved_url(),
        min_size=settings.pool_min,
        max_size=settings.pool_max,
        configure=configure,
        open=False,
        name="georisk",
    )


async def connection(request: Request) -> AsyncIterator[AsyncConnection]:
    """FastAPI dependency: one pooled connection, committed on success, rolled back on error."""
    pool: AsyncConnectionPool = request.app.state.pool
    async with pool.connection() as conn:
        yield conn


#: The connection every handler takes. ``scope="function"`` commits *before* the response is
#: sent: with the default request scope a client could read right after a 2xx and not yet see
#: its own write.
DbConn = Annotated[AsyncConnection[Any], Depends(connection, scope="function")]
