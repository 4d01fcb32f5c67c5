"""The one HTTP shape of the batch ingest endpoints (``POST /api/positions``, ``/api/readings``).

Read the body (size-limited), parse it by media type, refuse an unreadable body (400) or too
many rows (413), let the route check the rows (e.g. whose points they are), run the shared
pipeline (``layers/core/ingest.py``) on the request's connection, re-rate the enterprises it
names, and answer ``{accepted, duplicates, rejected: [{index, error}]}``.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

from fastapi import Request
from fastapi.responses import JSONResponse
from psycopg import AsyncConnection

from geo_api.body import read_body
from geo_api.errors import FieldError, PayloadTooLarge
from geo_api.rerate import Rerater
from geo_api.settings import Settings
from layers.core.ingest import IngestKind, R, S, ingest_batch


async def ingest_request(
    request: Request,
    conn: AsyncConnection[Any],
    kind: IngestKind[R, S],
    max_batch: int,
    check: Callable[[R], Awaitable[None]] | None = None,
) -> JSONResponse:
    """Run one batch request of ``kind`` end to end (see the module's docstring)."""
    settings: Settings = request.app.state.settings
    body = await read_body(request, settings.server.max_body_bytes)
    # An unreadable body is a BodyError: a 400 naming ``body``.
    rows = kind.parse(body, request.headers.get("content-type", "application/json"))
    if rows.total > max_batch:
        msg = f"body: at most {max_batch} {kind.plural} per request"
        raise PayloadTooLarge(msg, [FieldError("body", msg)])
    if check is not None:
        await check(rows)
    result = await ingest_batch(conn, kind, rows, settings.lifecycle.window())
    if result.enterprises:  # the one place a batch re-rates enterprises
        rerate: Rerater = request.app.state.rerate
        await rerate(conn, result.enterprises)
    return JSONResponse(result.answer())
