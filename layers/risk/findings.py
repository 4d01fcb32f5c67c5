"""Direct-red findings (MEM 2018 risk diagnosis guide, 应急〔2018〕19号; docs/domain.md §2.2).

A finding records one of the guide's circumstances that rate an enterprise red whatever its
score (codes: layers/core/vocab.py DIRECT_RED_FINDINGS), with its evidence, who found it and
when. While open it makes the enterprise red with its reason first (the rule lives in
layers/risk/enterprise.py); a regulator closes it, saying who, when and why. Nothing is
deleted: the register is the history, and every write is in the audit log (migration 0014).
"""

from __future__ import annotations

import datetime as dt
from typing import Annotated, Any, Final, Literal

from psycopg import AsyncConnection
from psycopg.rows import dict_row
from pydantic import AfterValidator, BaseModel, ConfigDict, Field

from layers.core.errors import FieldError, TransitionRefused
from layers.core.vocab import DIRECT_RED_FINDINGS

FindingState = Literal["open", "closed"]

#: Dates the register accepts (PostgreSQL's range is wider; a finding from year 3000 is a typo).
FIRST_DAY: Final = dt.date(1900, 1, 1)


def _known_code(value: str) -> str:
    if value not in DIRECT_RED_FINDINGS:
        raise ValueError(f"{value!r} is not one of: {', '.join(DIRECT_RED_FINDINGS)}")
    return value


def _not_future(value: dt.date) -> dt.date:
    if not FIRST_DAY <= value <= dt.datetime.now(dt.UTC).date() + dt.timedelta(days=1):
        raise ValueError(f"must be between {FIRST_DAY} and today")
    return value


Text = Annotated[str, Field(min_length=1, max_length=2000, pattern=r"\S")]


class FindingInput(BaseModel):
    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)
    code: Annotated[str, AfterValidator(_known_code)]
    evidence: Text
    evidence_url: Annotated[str, Field(max_length=2000, pattern=r"^https?://\S+$")] | None = None
    found_on: Annotated[dt.date, AfterValidator(_not_future)] | None = None  # default: today
    found_by: Annotated[str, Field(min_length=1, max_length=200, pattern=r"\S")] | None = None


class FindingClose(BaseModel):
    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)
    reason: Text


_COLUMNS = (
    "id, enterprise_id, code, evidence, evidence_url, found_on, found_by, state, closed_at,"
    " closed_by, close_reason, created_at"
)


def _out(row: dict[str, Any]) -> dict[str, Any]:
    zh, en = DIRECT_RED_FINDINGS[row["code"]]
    out = {k: v.isoformat() if isinstance(v, dt.date) else v for k, v in row.items()}
    return {**out, "text": {"zh": zh, "en": en}}


async def list_findings(conn: AsyncConnection[Any], enterprise_id: int) -> list[dict[str, Any]]:
    """Open ones first (they are what colours the enterprise), then newest first."""
    cur = conn.cursor(row_factory=dict_row)
    await cur.execute(
        f"SELECT {_COLUMNS} FROM enterprise_findings WHERE enterprise_id = %s"
        " ORDER BY state = 'closed', found_on DESC, id DESC",
        (enterprise_id,),
    )
    return [_out(r) for r in await cur.fetchall()]


async def insert_finding(
    conn: AsyncConnection[Any], enterprise_id: int, finding: FindingInput, who: str
) -> dict[str, Any]:
    cur = conn.cursor(row_factory=dict_row)
    await cur.execute(
        "INSERT INTO enterprise_findings"
        " (enterprise_id, code, evidence, evidence_url, found_on, found_by)"
        " VALUES (%s, %s, %s, %s, coalesce(%s, current_date), %s)"
        f" RETURNING {_COLUMNS}",
        (
            enterprise_id,
            finding.code,
            finding.evidence,
            finding.evidence_url,
            finding.found_on,
            finding.found_by or who,
        ),
    )
    row = await cur.fetchone()
    assert row is not None
    return _out(row)


async def close_finding(
    conn: AsyncConnection[Any], enterprise_id: int, finding_id: int, close: FindingClose, who: str
) -> dict[str, Any] | None:
    """Close an open finding; ``None`` when the enterprise has no such finding, 409 when it is
    already closed (closing twice would overwrite who closed it and why)."""
    cur = conn.cursor(row_factory=dict_row)
    await cur.execute(
        "SELECT state FROM enterprise_findings WHERE id = %s AND enterprise_id = %s FOR UPDATE",
        (finding_id, enterprise_id),
    )
    current = await cur.fetchone()
    if current is None:
        return None
    if current["state"] != "open":
        raise TransitionRefused(
            f"finding {finding_id} is already closed",
            [FieldError("state", "current state is 'closed'")],
            current="closed",
            wanted="closed",
        )
    await cur.execute(
        "UPDATE enterprise_findings SET state = 'closed', closed_at = now(), closed_by = %s,"
        f" close_reason = %s WHERE id = %s RETURNING {_COLUMNS}",
        (who, close.reason, finding_id),
    )
    row = await cur.fetchone()
    assert row is not None
    return _out(row)
