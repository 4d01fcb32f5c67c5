"""``GET /healthz``: is the database reachable, and which PostGIS does it run."""

from __future__ import annotations

import logging
from typing import Any

import psycopg
from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse
from psycopg.rows import dict_row

from geo_api.models.health import Health, HealthUnavailable

router = APIRouter(tags=["health"])
log = logging.getLogger("georisk")

#: How long /healthz waits for a working connection: a probe wants a quick 503, not a hang.
HEALTH_TIMEOUT_S = 2.0


@router.get(
    "/healthz",
    response_model=Health,
    responses={503: {"model": HealthUnavailable, "description": "database unreachable"}},
)
async def healthz(request: Request) -> JSONResponse:
    """200 with versions when PostGIS answers; 503 (no database text) when it does not."""
    try:
        async with request.app.state.pool.connection(timeout=HEALTH_TIMEOUT_S) as conn:
            cur = conn.cursor(row_factory=dict_row)
            row: Any = await (
                await cur.execute(
                    "SELECT postgis_lib_version() AS postgis,"
                    " current_setting('server_version') AS pg, current_database() AS database,"
                    " to_regclass('alembic_version') IS NOT NULL AS migrated"
                )
            ).fetchone()
            revision = None
            if row["migrated"]:
                await cur.execute("SELECT version_num FROM alembic_version")
                rev: Any = await cur.fetchone()
                revision = rev["version_num"] if rev else None
    except (psycopg.OperationalError, OSError) as exc:
        # The database is down or restarting: expected, transient, no traceback needed.
        log.warning("health check: database unreachable (%s)", type(exc).__name__)
        return _unavailable()
    except Exception:
        log.exception("health check failed")
        return _unavailable()
    return JSONResponse(
        {
            "status": "ok",
            "postgis": row["postgis"],
            "postgresql": row["pg"],
            "database": row["database"],
            "schema_revision": revision,
            "version": request.app.version,
        }
    )


def _unavailable() -> JSONResponse:
    return JSONResponse(
        {"status": "unavailable", "detail": "database unreachable; see the server log"},
        status_code=503,
        headers={"Retry-After": "2"},
    )
