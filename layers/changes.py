"""Change notifications: every engine that rewrites derived rows says what changed and where.

``NOTIFY georisk_changes`` with a JSON payload ``{"layer", "count", "ids"?, "bbox"?, "full"?}``
is sent inside the writer's transaction, so listeners (tile cache purge, hexagon refresh, live
push) hear of a change only once it is committed.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from typing import Any, Final

from psycopg import AsyncConnection
from psycopg.rows import tuple_row

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
