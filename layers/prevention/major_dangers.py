"""Closing a MAJOR hidden danger (重大隐患销号) and reminding before rectification deadlines.

docs/domain.md §5: a major hidden danger closes only after the regulator accepts its
rectification. The enterprise reports it rectified with evidence → ``rectification_reported``
(still open: the dynamic colour stays raised) → a regulator of its district (or an admin)
accepts — who, when, a note → ``rectified`` (closed; the colour drops) — or rejects with a
reason → back to ``rectifying``. The report is the enterprise's word; only acceptance counts.
Ordinary dangers keep the plain found → rectifying → rectified flow of
``layers/prevention/dual.py``, where a PATCH that would close a major one is refused.

Reminders: once per danger and deadline, ``days_before`` days ahead of it (or at once when
the deadline is nearer or already past), an open danger is marked reminded (``reminded_for``
= the deadline); a moved deadline earns a new reminder. The caller announces the batch.
"""

from __future__ import annotations

import datetime as dt
from typing import Annotated, Any

from psycopg import AsyncConnection
from psycopg.rows import dict_row
from pydantic import BaseModel, ConfigDict, Field

from layers.core.errors import FieldError, TransitionRefused
from layers.prevention.dual import DANGER_COLUMNS, jsonable

Note = Annotated[str, Field(min_length=1, max_length=2000, pattern=r"\S")]
Url = Annotated[str, Field(max_length=2000, pattern=r"^https?://\S+$")]


class RectificationReport(BaseModel):
    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)
    evidence: Note
    evidence_url: Url | None = None


class Acceptance(BaseModel):
    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)
    note: Note | None = None


class Rejection(BaseModel):
    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)
    reason: Note


async def _lock(conn: AsyncConnection[Any], danger_id: int) -> dict[str, Any] | None:
    cur = conn.cursor(row_factory=dict_row)
    await cur.execute(
        "SELECT status, is_major FROM hidden_dangers WHERE id = %s FOR UPDATE", (danger_id,)
    )
    return await cur.fetchone()


def _refused(danger_id: int, current: str, wanted: str, why: str) -> TransitionRefused:
    return TransitionRefused(
        f"hidden danger {danger_id} is '{current}': cannot {wanted} ({why})",
        [FieldError("status", f"current state is {current!r}")],
        current=current,
        wanted=wanted,
    )


async def _update(conn: AsyncConnection[Any], sql: str, params: dict[str, Any]) -> dict[str, Any]:
    cur = conn.cursor(row_factory=dict_row)
    await cur.execute(f"{sql} WHERE id = %(id)s RETURNING {DANGER_COLUMNS}", params)
    row = await cur.fetchone()
    assert row is not None
    return jsonable(row)


async def report_rectified(
    conn: AsyncConnection[Any], danger_id: int, report: RectificationReport, who: str
) -> dict[str, Any] | None:
    """The enterprise's report: found or rectifying → rectification_reported. ``None``: no
    such danger."""
    current = await _lock(conn, danger_id)
    if current is None:
        return None
    if not current["is_major"]:
        raise _refused(
            danger_id,
            current["status"],
            "report",
            "an ordinary danger is closed with PATCH status 'rectified'",
        )
    if current["status"] not in ("found", "rectifying"):
        raise _refused(
            danger_id, current["status"], "report", "only an open, unreported danger is reported"
        )
    return await _update(
        conn,
        "UPDATE hidden_dangers SET status = 'rectification_reported', reported_at = now(),"
        " reported_by = %(who)s, report_evidence = %(evidence)s,"
        " report_evidence_url = %(url)s",
        {"id": danger_id, "who": who, "evidence": report.evidence, "url": report.evidence_url},
    )


async def _decide(conn: AsyncConnection[Any], danger_id: int, step: str) -> bool:
    current = await _lock(conn, danger_id)
    if current is None:
        return False
    if current["status"] != "rectification_reported":
        raise _refused(
            danger_id, current["status"], step, "only a reported rectification is decided"
        )
    return True


async def accept_rectification(
    conn: AsyncConnection[Any], danger_id: int, acceptance: Acceptance, who: str
) -> dict[str, Any] | None:
    """A regulator's acceptance closes the danger (销号)."""
    if not await _decide(conn, danger_id, "accept"):
        return None
    return await _update(
        conn,
        "UPDATE hidden_dangers SET status = 'rectified', rectified_at = now(),"
        " accepted_at = now(), accepted_by = %(who)s, acceptance_note = %(note)s",
        {"id": danger_id, "who": who, "note": acceptance.note},
    )


async def reject_rectification(
    conn: AsyncConnection[Any], danger_id: int, rejection: Rejection, who: str
) -> dict[str, Any] | None:
    """A regulator sends it back to rectifying; the last rejection is kept on the row, every
    one in the audit log."""
    if not await _decide(conn, danger_id, "reject"):
        return None
    return await _update(
        conn,
        "UPDATE hidden_dangers SET status = 'rectifying', rejected_at = now(),"
        " rejected_by = %(who)s, rejection_reason = %(reason)s",
        {"id": danger_id, "who": who, "reason": rejection.reason},
    )


async def send_reminders(
    conn: AsyncConnection[Any], today: dt.date, days_before: int
) -> list[dict[str, Any]]:
    """Mark every open danger whose deadline is within ``days_before`` days of ``today`` (or
    past) and not yet reminded for that deadline; answers them (``id``, ``enterprise_id``,
    ``deadline``). Idempotent: a second run the same day — or any later one — finds nothing
    until a deadline moves."""
    cur = conn.cursor(row_factory=dict_row)
    await cur.execute(
        "UPDATE hidden_dangers SET reminded_for = deadline, reminded_at = now()"
        " WHERE status <> 'rectified' AND deadline IS NOT NULL"
        " AND deadline <= %s AND reminded_for IS DISTINCT FROM deadline"
        " RETURNING id, enterprise_id, deadline, is_major",
        (today + dt.timedelta(days=days_before),),
    )
    return [jsonable(r) for r in await cur.fetchall()]
