"""Administrative penalties and production safety accidents: facts the daily bulletin reads.

A recent accident puts an enterprise on the key-attention list and a recent penalty suggests
it (layers/prevention/watch_list.py, K6 and S4). Both are entered by regulators: validated here
(each bad field named), stored, and read back per enterprise.
"""

from __future__ import annotations

import datetime as dt
from typing import Annotated, Any, Literal

from psycopg import AsyncConnection, errors
from psycopg.rows import dict_row
from pydantic import AfterValidator, BaseModel, ConfigDict, Field, StringConstraints

from layers.core import vocab
from layers.core.errors import Conflict, FieldError

Text = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=2000)]
ShortText = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=200)]
Grade = Literal[vocab.ACCIDENT_GRADES]  # type: ignore[valid-type]
#: Dates a register may hold: nothing in the future, nothing before the PRC's first safety law.
_EARLIEST = dt.date(1949, 10, 1)


def _in_the_past(day: dt.date) -> dt.date:
    # Tomorrow still passes: a register kept in Beijing time is a day ahead of UTC at night.
    if day > dt.datetime.now(dt.UTC).date() + dt.timedelta(days=1) or day < _EARLIEST:
        raise ValueError("must lie between 1949-10-01 and today")
    return day


PastDay = Annotated[dt.date, AfterValidator(_in_the_past)]


class _Input(BaseModel):
    model_config = ConfigDict(extra="forbid")


class PenaltyInput(_Input):
    decided_on: PastDay
    decision_no: ShortText
    authority: ShortText
    amount_yuan: Annotated[float, Field(ge=0, le=1e10)] | None = None
    reason: Text


class AccidentInput(_Input):
    occurred_on: PastDay
    grade: Grade
    deaths: Annotated[int, Field(ge=0, le=100_000)] = 0
    injuries: Annotated[int, Field(ge=0, le=100_000)] = 0
    description: Text


async def add_penalty(
    conn: AsyncConnection[Any], enterprise_id: int, p: PenaltyInput
) -> dict[str, Any]:
    cur = conn.cursor(row_factory=dict_row)
    try:
        await cur.execute(
            "INSERT INTO penalties (enterprise_id, decided_on, decision_no, authority,"
            " amount_yuan, reason) VALUES (%s, %s, %s, %s, %s, %s) RETURNING *",
            (enterprise_id, p.decided_on, p.decision_no, p.authority, p.amount_yuan, p.reason),
        )
    except errors.UniqueViolation:
        raise Conflict(
            f"decision {p.decision_no} of {p.authority} is already recorded",
            [FieldError("decision_no", "already recorded for this authority")],
        ) from None
    row = await cur.fetchone()
    assert row is not None
    return _penalty(row)


async def add_accident(
    conn: AsyncConnection[Any], enterprise_id: int, a: AccidentInput
) -> dict[str, Any]:
    cur = conn.cursor(row_factory=dict_row)
    await cur.execute(
        "INSERT INTO accidents (enterprise_id, occurred_on, grade, deaths, injuries,"
        " description) VALUES (%s, %s, %s, %s, %s, %s) RETURNING *",
        (enterprise_id, a.occurred_on, a.grade, a.deaths, a.injuries, a.description),
    )
    row = await cur.fetchone()
    assert row is not None
    return _accident(row)


async def penalties_of(conn: AsyncConnection[Any], enterprise_id: int) -> list[dict[str, Any]]:
    cur = conn.cursor(row_factory=dict_row)
    await cur.execute(
        "SELECT * FROM penalties WHERE enterprise_id = %s ORDER BY decided_on DESC, id DESC",
        (enterprise_id,),
    )
    return [_penalty(r) for r in await cur.fetchall()]


async def accidents_of(conn: AsyncConnection[Any], enterprise_id: int) -> list[dict[str, Any]]:
    cur = conn.cursor(row_factory=dict_row)
    await cur.execute(
        "SELECT * FROM accidents WHERE enterprise_id = %s ORDER BY occurred_on DESC, id DESC",
        (enterprise_id,),
    )
    return [_accident(r) for r in await cur.fetchall()]


def _penalty(r: dict[str, Any]) -> dict[str, Any]:
    return {
        "id": r["id"],
        "enterprise_id": r["enterprise_id"],
        "decided_on": r["decided_on"].isoformat(),
        "decision_no": r["decision_no"],
        "authority": r["authority"],
        "amount_yuan": r["amount_yuan"],
        "reason": r["reason"],
    }


def _accident(r: dict[str, Any]) -> dict[str, Any]:
    return {
        "id": r["id"],
        "enterprise_id": r["enterprise_id"],
        "occurred_on": r["occurred_on"].isoformat(),
        "grade": r["grade"],
        "deaths": r["deaths"],
        "injuries": r["injuries"],
        "description": r["description"],
    }
