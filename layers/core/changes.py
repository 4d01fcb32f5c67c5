"""Change notifications: every engine that rewrites derived rows says what changed and where.

``NOTIFY georisk_changes`` with a JSON payload ``{"layer", "count", "ids"?, "bbox"?, "full"?}``
is sent inside the writer's transaction, so listeners (tile cache purge, hexagon refresh, live
push) hear of a change only once it is committed.
"""

from __future__ import annotations

import asyncio
import json
import logging
from collections.abc import Callable, Iterable
from typing import Any, Final

import psycopg
from psycopg import AsyncConnection, sql
from psycopg.rows import tuple_row

log = logging.getLogger("georisk.changes")

#: PostgreSQL channel every engine notifies on.
CHANGE_CHANNEL: Final = "georisk_changes"
#: NOTIFY payloads must stay under 8000 bytes; past this many ids we send the bbox only.
MAX_IDS_IN_PAYLOAD: Final = 500


async def notify_change(
    conn: AsyncConnection, layer: str, table: str, ids: Iterable[int], full: bool = False
) -> dict[str, Any] | None:
    """NOTIFY ``georisk_changes`` with the layer, the ids (when few) and their bbox.

    ``table`` must be a constant from the caller (it names the geometry's table).
    """
    id_list = sorted(set(ids))
    if not id_list:
        return None
    cur = conn.cursor(row_factory=tuple_row)
    await cur.execute(
        f"SELECT ST_XMin(x), ST_YMin(x), ST_XMax(x), ST_YMax(x)"
        f" FROM (SELECT ST_Extent(geom)::geometry AS x FROM {table} WHERE id = ANY(%s)) b",
        (id_list,),
    )
    row = await cur.fetchone()
    payload: dict[str, Any] = {"layer": layer, "count": len(id_list)}
    if full:
        payload["full"] = True
    if row and row[0] is not None:
        payload["bbox"] = [round(float(v), 7) for v in row]
    if len(id_list) <= MAX_IDS_IN_PAYLOAD:
        payload["ids"] = id_list
    await conn.execute("SELECT pg_notify(%s, %s)", (CHANGE_CHANNEL, json.dumps(payload)))
    return payload


async def listen(
    url: str,
    channel: str,
    on_payload: Callable[[dict[str, Any]], None],
    *,
    name: str,
    ready: asyncio.Event | None = None,
    on_connect: Callable[[], None] | None = None,
    retry_s: float = 2.0,
) -> None:
    """LISTEN on ``channel`` forever and hand each JSON object payload to ``on_payload``.

    Reconnects after a lost connection (a database restart), calling ``on_connect`` each time
    it is listening again — the place to drop whatever may have been missed meanwhile — and
    keeps ``ready`` set only while it is listening. An empty payload is passed as ``{}``, a
    bare JSON value as ``{"value": …}``; a malformed one is logged and skipped. The one home of
    this loop for every listener.
    """
    failures = 0
    while True:
        try:
            conn = await psycopg.AsyncConnection.connect(url, autocommit=True)
            async with conn:
                await conn.execute(sql.SQL("LISTEN {}").format(sql.Identifier(channel)))
                if failures:
                    log.warning("%s is listening again (%d failed attempts)", name, failures)
                    failures = 0
                if on_connect is not None:
                    on_connect()
                if ready is not None:
                    ready.set()
                async for note in conn.notifies():
                    try:
                        payload = json.loads(note.payload) if note.payload else {}
                    except ValueError:
                        log.warning("%s ignored a malformed payload %r", name, note.payload)
                        continue
                    # A bare value (e.g. a count) still wakes the listener.
                    on_payload(payload if isinstance(payload, dict) else {"value": payload})
        except (psycopg.OperationalError, OSError) as exc:
            # The database restarted or is unreachable: expected; one line per outage.
            if ready is not None:
                ready.clear()
            if not failures:
                log.warning(
                    "%s lost its database connection (%s); retrying every %g s",
                    name,
                    type(exc).__name__,
                    retry_s,
                )
            failures += 1
            await asyncio.sleep(retry_s)
        except psycopg.Error:
            if ready is not None:
                ready.clear()
            log.exception("%s failed; retrying in %g s", name, retry_s)
            failures += 1
            await asyncio.sleep(retry_s)
