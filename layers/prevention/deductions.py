"""A deduction's life and earned-back points (docs/rules.md, docs/domain.md §4).

    open ──report──▶ reported ──accept──▶ accepted
      ▲                 │
      └─── rejected ◀───┘ reject        (a rejected one may be reported again)
    any state but voided ──void──▶ voided

Who may take which step is the HTTP layer's rule (geo_api/routes/scores.py): the enterprise
reports on its own deductions; regulators of its district (or an admin) deduct, accept,
reject and void. Here: which step each state allows, and what is written. Every step is an
UPDATE of ``score_events``, so the audit log (migration 0008's triggers) keeps who did what,
when, from what to what — a voided deduction leaves its row, its reason and that entry.
"""

from __future__ import annotations

import datetime as dt
from typing import Any, Final

from psycopg import AsyncConnection
from psycopg.rows import dict_row

from layers.core.errors import FieldError, InvalidField, NotFound, TransitionRefused
from layers.prevention.events import publish
from layers.prevention.rule_book import RuleSet

#: step → (states it starts from, state it leads to, event)
STEPS: Final[dict[str, tuple[tuple[str, ...], str, str]]] = {
    "report": (("open", "rejected"), "reported", "score.rectification_reported"),
    "accept": (("reported",), "accepted", "score.rectification_accepted"),
    "reject": (("reported",), "rejected", "score.rectification_rejected"),
    "void": (("open", "reported", "accepted", "rejected"), "voided", "score.deduction_voided"),
}

_SET: Final = {
    "report": "reported_at = %(now)s, reported_by = %(actor)s, report_note = %(note)s,"
    " report_evidence_url = %(evidence_url)s",
    "accept": "reviewed_at = %(now)s, reviewed_by = %(actor)s, review_note = %(note)s,"
    " reinspected_on = %(reinspected_on)s",
    "reject": "reviewed_at = %(now)s, reviewed_by = %(actor)s, review_note = %(note)s,"
    " reinspected_on = %(reinspected_on)s",
    "void": "voided_at = %(now)s, voided_by = %(actor)s, void_reason = %(note)s",
}


async def step(
    conn: AsyncConnection[Any],
    enterprise_id: int,
    deduction_id: int,
    action: str,
    actor: str,
    note: str,
    evidence_url: str | None = None,
    reinspected_on: dt.date | None = None,
    now: dt.datetime | None = None,
    today: dt.date | None = None,
) -> dict[str, Any]:
    """Take ``action`` on one deduction of ``enterprise_id``; the updated row.

    404 for a deduction of another enterprise (its id says nothing to this caller);
    ``TransitionRefused`` (409) naming the current state for a step it does not allow."""
    starts, target, event = STEPS[action]
    if action == "accept" and reinspected_on is None:
        raise InvalidField("reinspected_on", "a regulator accepts after re-inspection: its date")
    now = now or dt.datetime.now(dt.UTC)
    # ``today`` is the regulator's calendar day (the scoring zone's): by the UTC date, a visit
    # entered between midnight and 08:00 in China would be "in the future".
    if reinspected_on is not None and reinspected_on > (today or now.date()):
        raise InvalidField("reinspected_on", "is in the future")
    async with conn.transaction():
        cur = conn.cursor(row_factory=dict_row)
        await cur.execute(
            "SELECT state, occurred_at FROM score_events WHERE id = %s AND enterprise_id = %s"
            " FOR UPDATE",
            (deduction_id, enterprise_id),
        )
        row = await cur.fetchone()
        if row is None:
            raise NotFound(
                f"deduction {deduction_id} not found",
                [FieldError("deduction_id", "no such deduction of this enterprise")],
            )
        if row["state"] not in starts:
            reason = f"a {row['state']} deduction cannot be {target} (from {', '.join(starts)})"
            raise TransitionRefused(
                reason, [FieldError("state", reason)], current=row["state"], wanted=target
            )
        if reinspected_on is not None and reinspected_on < row["occurred_at"].date():
            raise InvalidField("reinspected_on", "is before the deduction")
        await cur.execute(
            f"UPDATE score_events SET state = %(target)s, {_SET[action]}"
            " WHERE id = %(id)s RETURNING id, enterprise_id, item_code, points, state",
            {
                "target": target,
                "now": now,
                "actor": actor,
                "note": note,
                "evidence_url": evidence_url,
                "reinspected_on": reinspected_on,
                "id": deduction_id,
            },
        )
        updated = await cur.fetchone()
        assert updated is not None
        await publish(
            conn,
            event,
            enterprise_id,
            f"{deduction_id}:{target}:{now.isoformat()}",
            {"deduction": _public(updated), "by": actor},
        )
    return updated


def _public(row: dict[str, Any]) -> dict[str, Any]:
    return {
        k: (v.isoformat() if isinstance(v, dt.date | dt.datetime) else v) for k, v in row.items()
    }


async def deducted_event(
    conn: AsyncConnection[Any], enterprise_id: int, deduction_id: int, by: str
) -> None:
    """Tell the stream and webhooks of a new deduction (manual or automatic)."""
    cur = conn.cursor(row_factory=dict_row)
    await cur.execute(
        "SELECT id, enterprise_id, rule_set, rule_set_version, item_code, points, source,"
        " occurred_at, state FROM score_events WHERE id = %s",
        (deduction_id,),
    )
    row = await cur.fetchone()
    if row is not None:
        await publish(
            conn,
            "score.deducted",
            enterprise_id,
            str(deduction_id),
            {"deduction": _public(row), "by": by},
        )


# -- earning points back -----------------------------------------------------------------------
async def request_earn_back(
    conn: AsyncConnection[Any],
    enterprise_id: int,
    rule_set: RuleSet,
    points: int,
    reason: str,
    note: str,
    evidence_url: str | None,
    occurred_at: dt.datetime,
    actor: str,
) -> dict[str, Any]:
    """A request to earn points back (training, a verified improvement), to be approved."""
    if not rule_set.earn_back_allowed:
        raise InvalidField("points", f"rule set {rule_set.code} does not allow earning back")
    if points > rule_set.earn_back_cap:
        raise InvalidField(
            "points", f"at most {rule_set.earn_back_cap} per cycle in rule set {rule_set.code}"
        )
    cur = conn.cursor(row_factory=dict_row)
    await cur.execute(
        "INSERT INTO score_earn_backs (enterprise_id, rule_set, rule_set_version, points, reason,"
        " note, evidence_url, occurred_at, requested_by)"
        " VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s)"
        " RETURNING id, enterprise_id, points, reason, state, occurred_at",
        (
            enterprise_id,
            rule_set.code,
            rule_set.version,
            points,
            reason,
            note,
            evidence_url,
            occurred_at,
            actor,
        ),
    )
    row = await cur.fetchone()
    assert row is not None
    await publish(
        conn,
        "score.earn_back_requested",
        enterprise_id,
        str(row["id"]),
        {"earn_back": _public(row)},
    )
    return row


async def review_earn_back(
    conn: AsyncConnection[Any],
    enterprise_id: int,
    earn_back_id: int,
    approve: bool,
    actor: str,
    note: str | None,
) -> dict[str, Any]:
    """Approve or reject a requested earn-back (once). The cap is applied when counting."""
    target = "approved" if approve else "rejected"
    async with conn.transaction():
        cur = conn.cursor(row_factory=dict_row)
        await cur.execute(
            "SELECT state FROM score_earn_backs WHERE id = %s AND enterprise_id = %s FOR UPDATE",
            (earn_back_id, enterprise_id),
        )
        row = await cur.fetchone()
        if row is None:
            raise NotFound(
                f"earn-back {earn_back_id} not found",
                [FieldError("earn_back_id", "no such earn-back of this enterprise")],
            )
        if row["state"] != "requested":
            reason = f"an earn-back {row['state']} already cannot be {target}"
            raise TransitionRefused(
                reason, [FieldError("state", reason)], current=row["state"], wanted=target
            )
        await cur.execute(
            "UPDATE score_earn_backs SET state = %s, reviewed_by = %s, reviewed_at = now(),"
            " review_note = %s WHERE id = %s"
            " RETURNING id, enterprise_id, points, reason, state, occurred_at",
            (target, actor, note, earn_back_id),
        )
        updated = await cur.fetchone()
        assert updated is not None
        await publish(
            conn,
            f"score.earn_back_{target}",
            enterprise_id,
            str(earn_back_id),
            {"earn_back": _public(updated), "by": actor},
        )
    return updated
