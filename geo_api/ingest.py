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
from geo_api.errors import BadRequest, FieldError, PayloadTooLarge
from geo_api.settings import Settings
from layers.core.bodies import BodyError
from layers.core.ingest import IngestKind, R, S, ingest_batch
from layers.risk.recompute import recompute


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
    try:
        rows = kind.parse(body, request.headers.get("content-type", "application/json"))
    except BodyError as exc:
        raise BadRequest(str(exc), [FieldError("body", str(exc))]) from None
    if rows.total > max_batch:
        msg = f"body: at most {max_batch} {kind.plural} per request"
        raise PayloadTooLarge(msg, [FieldError("body", msg)])
    if check is not None:
        await check(rows)
    result = await ingest_batch(conn, kind, rows)
    if result.enterprises:  # the one place a batch re-rates enterprises
        config = settings.risk.recompute_config(settings.db.data_dir)
        await recompute(conn, config, result.enterprises)
    return JSONResponse(result.answer())
