"""Where each warning type goes: the departments that act on it, the carrier, its deadlines.

The routes are data (``alert_routes``, migration 0019): a trigger routes every new alert from
the row of its rule, whatever code inserted it, so the tanker engine, the terminal alarms and
later warning models need no routing code of their own. Here: reading the table and the
administrator's edits (validated field by field; an edit applies to alerts raised after it —
an alert keeps the departments and deadlines it was raised with, like a dispatched order).
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

from psycopg import AsyncConnection
from psycopg.rows import dict_row
from pydantic import BaseModel, ConfigDict, Field

from layers.core import vocab
from layers.core.errors import FieldError, NotFound

Department = Literal[vocab.DEPARTMENTS]  # type: ignore[valid-type]
#: Deadlines between a minute and thirty days.
Seconds = Annotated[float, Field(ge=60, le=30 * 86_400)]


class RouteInput(BaseModel):
    model_config = ConfigDict(extra="forbid")
    departments: Annotated[list[Department], Field(min_length=1, max_length=4)]
    to_carrier: bool = True
    ack_s: Seconds | None = None
    dispose_s: Seconds | None = None


_COLUMNS = "rule, departments, to_carrier, ack_s, dispose_s, updated_at"


def _route(r: dict[str, Any]) -> dict[str, Any]:
    return {**r, "updated_at": r["updated_at"].isoformat()}


async def list_routes(conn: AsyncConnection[Any]) -> list[dict[str, Any]]:
    cur = conn.cursor(row_factory=dict_row)
    await cur.execute(f"SELECT {_COLUMNS} FROM alert_routes ORDER BY rule")
    return [_route(r) for r in await cur.fetchall()]


async def set_route(conn: AsyncConnection[Any], rule: str, route: RouteInput) -> dict[str, Any]:
    """Create or replace the route of ``rule`` (one of the alert rules)."""
    if rule not in vocab.ALERT_RULES:
        raise NotFound(f"no alert rule {rule}", [FieldError("rule", "not an alert rule")])
    cur = conn.cursor(row_factory=dict_row)
    await cur.execute(
        "INSERT INTO alert_routes (rule, departments, to_carrier, ack_s, dispose_s)"
        " VALUES (%s, %s, %s, %s, %s) ON CONFLICT (rule) DO UPDATE SET"
        " departments = EXCLUDED.departments, to_carrier = EXCLUDED.to_carrier,"
        " ack_s = EXCLUDED.ack_s, dispose_s = EXCLUDED.dispose_s, updated_at = now()"
        f" RETURNING {_COLUMNS}",
        (rule, sorted(set(route.departments)), route.to_carrier, route.ack_s, route.dispose_s),
    )
    row = await cur.fetchone()
    assert row is not None
    return _route(row)
