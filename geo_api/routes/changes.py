"""``GET /api/changes/stream``: what changed on the map, as Server-Sent Events (issue 13).

The map page listens here and refetches just the tiles a change touches, so a colour raised
while a regulator watches appears without a pan or a reload. Events:

- ``hello`` once: ``{"version", "layers"}`` — the current version and the layers this caller
  hears about;
- ``change`` with ``id: <version>``: ``{"version", "layer", "bbox", "ts"}`` — one tile layer
  changed inside ``bbox`` (``null``: anywhere);
- ``reload``: ``{"reason"}`` — the stream cannot say exactly what changed (the client lagged,
  resumed from a version this process no longer holds, or notices were interrupted): refetch
  the whole view;
- ``: ping`` comments as heartbeats.

A reconnecting ``EventSource`` sends ``Last-Event-ID`` and gets what it missed.
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from typing import Annotated, Any

from fastapi import APIRouter, Header, Request
from fastapi.responses import JSONResponse, Response, StreamingResponse

from geo_api.auth import ANYONE, Caller, CurrentCaller, allow
from geo_api.db import DbConn
from geo_api.map_changes import Bbox, MapChange, MapChangeFeed, TooManyViewers, Viewer
from geo_api.models.streams import EventStreamResponse, MapChangeEvent
from geo_api.settings import MapChangeSettings
from layers.access import roles as access
from layers.catalog import Catalog

router = APIRouter(tags=["tiles"])


async def _area(conn: DbConn, caller: Caller) -> Bbox | None:
    """The extent of the caller's own rows: its districts, or its enterprise's site."""
    if caller.role == access.ENTERPRISE:
        if caller.enterprise_id is None:
            return (0.0, 0.0, 0.0, 0.0)  # an enterprise key without an enterprise sees nothing
        query = (
            "SELECT ST_XMin(b), ST_YMin(b), ST_XMax(b), ST_YMax(b) FROM (SELECT"
            " ST_Expand(ST_Envelope(coalesce(site_geom, geom)), 0.005) AS b"
            " FROM enterprises WHERE id = %s) x"
        )
        cur = await conn.execute(query, (caller.enterprise_id,))
    elif caller.districts is not None:
        query = (
            "SELECT ST_XMin(b), ST_YMin(b), ST_XMax(b), ST_YMax(b) FROM (SELECT"
            " ST_Extent(geom)::geometry AS b FROM districts WHERE code = ANY(%s)) x"
        )
        cur = await conn.execute(query, (sorted(caller.districts),))
    else:
        return None
    row = await cur.fetchone()
    if row is None or row[0] is None:
        return (0.0, 0.0, 0.0, 0.0)  # nothing of its own anywhere: hears only reference layers
    return (float(row[0]), float(row[1]), float(row[2]), float(row[3]))


def _scoped(caller: Caller, catalog: Catalog, layers: frozenset[str]) -> frozenset[str]:
    view = caller.tile_view
    return frozenset(
        name
        for name in layers
        if view.scoped_by_district(catalog.tiles[name])
        or view.scoped_by_enterprise(catalog.tiles[name])
    )


def _event(change: MapChange) -> bytes:
    data = json.dumps(change.as_dict(), separators=(",", ":"))
    return f"id: {change.version}\nevent: change\ndata: {data}\n\n".encode()


def _named(event: str, data: dict[str, Any]) -> bytes:
    return f"event: {event}\ndata: {json.dumps(data, separators=(',', ':'))}\n\n".encode()


async def _events(
    feed: MapChangeFeed,
    viewer: Viewer,
    hello: dict[str, Any],
    missed: list[MapChange] | None,
    keepalive_s: float,
) -> AsyncIterator[bytes]:
    try:
        yield b"retry: 2000\n\n"
        yield _named("hello", hello)
        if missed is None:
            yield _named("reload", {"reason": "resumed from a version this server no longer has"})
        else:
            for change in missed:
                yield _event(change)
        while True:
            item = await viewer.next(keepalive_s)
            if item is None:
                yield b": ping\n\n"
                continue
            kind, value = item
            if kind == "closed":
                return
            if kind == "reload":
                yield _named("reload", {"reason": value})
            else:
                yield _event(value)
    finally:
        feed.unsubscribe(viewer)


@router.get(
    "/api/changes/stream",
    response_model=MapChangeEvent,  # one event of the stream
    response_class=EventStreamResponse,
    dependencies=[allow(*ANYONE)],
)
async def map_changes(
    request: Request,
    conn: DbConn,
    caller: CurrentCaller,
    last_event_id: Annotated[str | None, Header(max_length=32)] = None,
) -> Response:
    """Server-Sent Events of map changes for the caller's view (see the module docstring)."""
    settings: MapChangeSettings = request.app.state.settings.map_changes
    feed: MapChangeFeed = request.app.state.map_changes
    catalog: Catalog = request.app.state.catalog
    layers = access.tile_layers_for(caller.role, catalog)
    area = await _area(conn, caller)
    try:
        viewer = feed.subscribe(layers, area, _scoped(caller, catalog, layers))
    except TooManyViewers as exc:  # capacity, not the client's mistake: retry later
        body = {"detail": str(exc), "errors": [{"field": "stream", "reason": "server busy"}]}
        return JSONResponse(body, status_code=503, headers={"Retry-After": "5"})
    missed: list[MapChange] | None = []
    if last_event_id is not None:
        try:
            missed = feed.missed(viewer, int(last_event_id))
        except ValueError:
            missed = None
    hello = {"version": feed.version, "layers": sorted(layers)}
    headers = {"Cache-Control": "no-cache", "X-Accel-Buffering": "no"}
    return StreamingResponse(
        _events(feed, viewer, hello, missed, settings.keepalive_s),
        media_type="text/event-stream",
        headers=headers,
    )
