"""Reading the audit log (issue 8). Rows of table writes are written by triggers (migration
0008), never here: this module answers "who changed what, when, from what to what". The one
entry that is not a table write is a throttle lockout (issue 18): :func:`record_lockout`."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import Any, Final

from psycopg import AsyncConnection
from psycopg.rows import dict_row
from psycopg.types.json import Jsonb

from layers.core.vocab import AUDIT_ACTIONS

#: Tables the triggers watch (the API's ``entity`` filter accepts exactly these).
AUDITED_ENTITIES: Final = (
    "enterprises",
    "hazard_sources",
    "risk_units",
    "zones",
    "hidden_dangers",
    "score_events",
    "api_keys",
    "alerts",
    "alarms",
    # The transport chain (migration 0017): vehicles' register and qualification edits too.
    "vehicles",
    "carriers",
    "crew_members",
    "waybills",
    "waybill_events",
)
#: The entity of a lockout entry: the credentials that kept failing.
LOCKOUT_ENTITY: Final = "credentials"
#: What the API's ``entity`` and ``action`` filters accept.
ENTITIES: Final = (*AUDITED_ENTITIES, LOCKOUT_ENTITY)
ACTIONS: Final = AUDIT_ACTIONS


@dataclass(frozen=True)
class AuditQuery:
    entity: str | None = None
    entity_id: int | None = None
    actor: str | None = None
    action: str | None = None
    since: dt.datetime | None = None
    until: dt.datetime | None = None
    limit: int = 100
    offset: int = 0


async def record_lockout(conn: AsyncConnection[Any], actor: str, details: dict[str, Any]) -> None:
    """One entry per lockout: ``actor`` is who kept failing (``address:…``, ``key prefix:…``),
    ``details`` how often, over which window, for how long, on which path."""
    await conn.execute(
        "INSERT INTO audit_log (actor, action, entity, after) VALUES (%s, 'lockout', %s, %s)",
        (actor, LOCKOUT_ENTITY, Jsonb(details)),
    )


async def read_audit(conn: AsyncConnection[Any], q: AuditQuery) -> tuple[int, list[dict[str, Any]]]:
    """Matching entries, newest first, and how many match in all."""
    clauses: list[str] = []
    params: dict[str, Any] = {"limit": q.limit, "offset": q.offset}
    for column, value in (
        ("entity", q.entity),
        ("entity_id", q.entity_id),
        ("actor", q.actor),
        ("action", q.action),
    ):
        if value is not None:
            clauses.append(f"{column} = %({column})s")
            params[column] = value
    if q.since is not None:
        clauses.append("at >= %(since)s")
        params["since"] = q.since
    if q.until is not None:
        clauses.append("at < %(until)s")
        params["until"] = q.until
    where = (" WHERE " + " AND ".join(clauses)) if clauses else ""
    cur = conn.cursor(row_factory=dict_row)
    await cur.execute(f"SELECT count(*) AS n FROM audit_log{where}", params)
    total = (await cur.fetchone() or {"n": 0})["n"]
    await cur.execute(
        "SELECT id, at, actor, action, entity, entity_id, before, after"
        f" FROM audit_log{where} ORDER BY id DESC LIMIT %(limit)s OFFSET %(offset)s",
        params,
    )
    return int(total), await cur.fetchall()
