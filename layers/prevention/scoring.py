"""The 12-point safety licence (记销分, docs/domain.md §4, docs/rules.md): an enterprise's
score, the measures its total has reached and what they do.

The rule sets are data (layers/prevention/rule_sets.py); this module is the one home of how a
score is counted:
- a deduction counts in the cycle it falls in, whatever its state, unless it is **voided**;
- at the cycle start, earlier deductions clear when the set carries nothing over (Xiaoshan);
  with ``carry_over = unrectified`` (Hailing) only those whose rectification a regulator
  **accepted** clear, the others carry over. Acceptance is judged as stored now: a carried-over
  point accepted on 5 October stops counting from then on;
- points earned back (approved, this cycle, where the set allows it) are subtracted up to the
  set's cap; the total never goes below 0;
- every measure whose threshold the total reaches applies, each with its effects; combined, the
  colour rises by the largest raise, the key list and the flags hold if any measure sets them,
  and the inspection interval is the shortest one.

Deductions are rows of ``score_events``; their lifecycle lives in
layers/prevention/deductions.py, the automatic ones in layers/prevention/automatic.py.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any, Final

from psycopg import AsyncConnection
from psycopg.rows import dict_row

from layers.prevention.rule_book import (
    Item,
    Measure,
    RuleBook,
    RuleSet,
    load_rule_book,
)
from layers.prevention.rule_sets import TOTAL_POINTS, Effects

#: Deduction states (docs/rules.md): reported = the enterprise says it rectified, accepted =
#: a regulator re-inspected and agreed, rejected = not agreed (the enterprise may report again).
STATES: Final = ("open", "reported", "accepted", "rejected", "voided")


@dataclass(frozen=True)
class Event:
    id: int
    item_code: str
    points: int
    source: str
    occurred_at: dt.datetime
    note: str | None
    state: str = "open"
    rule_set: str | None = None
    rule_set_version: int | None = None


@dataclass(frozen=True)
class EarnBack:
    id: int
    points: int
    occurred_at: dt.datetime
    state: str


@dataclass(frozen=True)
class Score:
    rule_set: RuleSet
    cycle_start: dt.date
    cycle_end: dt.date
    gross: int  # points of the counted deductions
    earned_back: int  # approved earn-back of this cycle, capped
    deducted: int
    remaining: int
    measures: tuple[Measure, ...]  # every measure reached, lowest threshold first
    effects: Effects
    counted: tuple[Event, ...]  # the deductions making up ``gross``

    @property
    def measure(self) -> Measure | None:
        """The highest measure reached (the one the old API showed)."""
        return self.measures[-1] if self.measures else None


def counts(rule_set: RuleSet, event: Event, today: dt.date) -> bool:
    """Does ``event`` count in the cycle containing ``today``? (the module docstring)"""
    if event.state == "voided":
        return False
    start, _ = rule_set.cycle(today)
    day = event.occurred_at.astimezone(dt.UTC).date()
    if day > today:
        return False
    if day >= start:
        return True
    return rule_set.carry_over == "unrectified" and event.state != "accepted"


def combine(measures: Iterable[Measure]) -> Effects:
    """The effects of several measures at once (the module docstring)."""
    ms = list(measures)
    every = [m.effects.inspection_every_days for m in ms if m.effects.inspection_every_days]
    return Effects(
        colour_raise=max((m.effects.colour_raise for m in ms), default=0),
        key_list=any(m.effects.key_list for m in ms),
        inspection_every_days=min(every) if every else None,
        interview=any(m.effects.interview for m in ms),
        enforcement=any(m.effects.enforcement for m in ms),
    )


def compute(
    rule_set: RuleSet,
    events: Iterable[Event],
    today: dt.date,
    earn_backs: Iterable[EarnBack] = (),
) -> Score:
    """Pure: the score of one enterprise on ``today`` from its whole history."""
    start, end = rule_set.cycle(today)
    counted = tuple(e for e in events if counts(rule_set, e, today))
    gross = sum(e.points for e in counted)
    earned = 0
    if rule_set.earn_back_allowed:
        earned = sum(
            b.points
            for b in earn_backs
            if b.state == "approved" and start <= b.occurred_at.astimezone(dt.UTC).date() <= today
        )
        earned = min(earned, rule_set.earn_back_cap, gross)
    deducted = max(0, gross - earned)
    reached = rule_set.reached(deducted)
    return Score(
        rule_set=rule_set,
        cycle_start=start,
        cycle_end=end,
        gross=gross,
        earned_back=earned,
        deducted=deducted,
        remaining=max(0, TOTAL_POINTS - deducted),
        measures=reached,
        effects=combine(reached),
        counted=counted,
    )


# -- reading ---------------------------------------------------------------------------------
_EVENT_COLUMNS = (
    "id, item_code, points, source, occurred_at, note, state, rule_set, rule_set_version"
)


async def enterprise_profile(
    conn: AsyncConnection[Any], enterprise_id: int
) -> tuple[str | None, str | None, list[str]] | None:
    """(district, category, tags) of an enterprise; None when there is none."""
    cur = conn.cursor(row_factory=dict_row)
    await cur.execute(
        "SELECT district, category, tags FROM enterprises WHERE id = %s", (enterprise_id,)
    )
    row = await cur.fetchone()
    return None if row is None else (row["district"], row["category"], list(row["tags"] or []))


async def rule_set_of(
    conn: AsyncConnection[Any], enterprise_id: int, book: RuleBook | None = None
) -> RuleSet | None:
    """The set scoring an enterprise (None: no such enterprise, or no set assigned to it)."""
    profile = await enterprise_profile(conn, enterprise_id)
    if profile is None:
        return None
    book = book or await load_rule_book(conn)
    return book.set_for(*profile)


async def events_of(conn: AsyncConnection[Any], enterprise_id: int) -> list[Event]:
    cur = conn.cursor(row_factory=dict_row)
    await cur.execute(
        f"SELECT {_EVENT_COLUMNS} FROM score_events WHERE enterprise_id = %s"
        " ORDER BY occurred_at, id",
        (enterprise_id,),
    )
    return [Event(**row) for row in await cur.fetchall()]


async def earn_backs_of(conn: AsyncConnection[Any], enterprise_id: int) -> list[EarnBack]:
    cur = conn.cursor(row_factory=dict_row)
    await cur.execute(
        "SELECT id, points, occurred_at, state FROM score_earn_backs WHERE enterprise_id = %s"
        " ORDER BY occurred_at, id",
        (enterprise_id,),
    )
    return [EarnBack(**row) for row in await cur.fetchall()]


async def score_of(
    conn: AsyncConnection[Any],
    enterprise_id: int,
    today: dt.date,
    rule_set: RuleSet | None = None,
) -> tuple[Score, list[Event]] | None:
    """An enterprise's score and full history; ``rule_set`` overrides the assignment."""
    rule_set = rule_set or await rule_set_of(conn, enterprise_id)
    if rule_set is None:
        return None
    events = await events_of(conn, enterprise_id)
    backs = await earn_backs_of(conn, enterprise_id)
    return compute(rule_set, events, today, backs), events


_ALL_SQL = """
SELECT e.id AS enterprise_id, e.district, e.category, e.tags,
       s.id, s.item_code, s.points, s.source, s.occurred_at, s.note, s.state, s.rule_set,
       s.rule_set_version
FROM enterprises e
JOIN score_events s ON s.enterprise_id = e.id
WHERE (%(all)s OR e.id = ANY(%(ids)s)) AND s.state <> 'voided'
ORDER BY e.id, s.occurred_at, s.id
"""


async def scores(
    conn: AsyncConnection[Any], enterprise_ids: Sequence[int] | None, today: dt.date
) -> dict[int, Score]:
    """Scores on ``today`` of the enterprises with deductions (all when None; absent: none).

    The risk engine (layers/risk/recompute.py) and the watch list read scores from here, so the
    cycle, the carry-over, the earn-back and the assignment have this one home."""
    book = await load_rule_book(conn)
    cur = conn.cursor(row_factory=dict_row)
    params = {"all": enterprise_ids is None, "ids": list(enterprise_ids or [])}
    await cur.execute(_ALL_SQL, params)
    grouped: dict[int, tuple[RuleSet | None, list[Event]]] = {}
    for row in await cur.fetchall():
        enterprise_id = row.pop("enterprise_id")
        district, category, tags = row.pop("district"), row.pop("category"), row.pop("tags")
        if enterprise_id not in grouped:
            grouped[enterprise_id] = (book.set_for(district, category, tags or []), [])
        grouped[enterprise_id][1].append(Event(**row))
    backs: dict[int, list[EarnBack]] = {}
    if grouped:
        await cur.execute(
            "SELECT enterprise_id, id, points, occurred_at, state FROM score_earn_backs"
            " WHERE state = 'approved' AND enterprise_id = ANY(%s)",
            (list(grouped),),
        )
        for row in await cur.fetchall():
            backs.setdefault(row.pop("enterprise_id"), []).append(EarnBack(**row))
    return {
        enterprise_id: compute(rule_set, events, today, backs.get(enterprise_id, []))
        for enterprise_id, (rule_set, events) in grouped.items()
        if rule_set is not None
    }


async def deducted_points(
    conn: AsyncConnection[Any], enterprise_ids: Sequence[int] | None, today: dt.date
) -> dict[int, int]:
    """Points deducted on ``today`` per enterprise (absent means 0)."""
    return {k: s.deducted for k, s in (await scores(conn, enterprise_ids, today)).items()}


# -- writing ---------------------------------------------------------------------------------
async def deduct(
    conn: AsyncConnection[Any],
    enterprise_id: int,
    rule_set: RuleSet,
    item: Item,
    occurred_at: dt.datetime,
    note: str | None,
    evidence_url: str | None = None,
    actor: str | None = None,
) -> int:
    """Store a manual (inspection) deduction; the points are the set's, never the caller's,
    and the deduction keeps the set's version."""
    cur = conn.cursor(row_factory=dict_row)
    await cur.execute(
        "INSERT INTO score_events (enterprise_id, rule_set, rule_set_version, item_code, points,"
        " source, occurred_at, note, evidence_url, created_by)"
        " VALUES (%s, %s, %s, %s, %s, 'inspection', %s, %s, %s, %s) RETURNING id",
        (
            enterprise_id,
            rule_set.code,
            rule_set.version,
            item.code,
            item.points,
            occurred_at,
            note,
            evidence_url,
            actor,
        ),
    )
    row = await cur.fetchone()
    assert row is not None
    return int(row["id"])


# -- answering -------------------------------------------------------------------------------
_HISTORY_SQL = """
SELECT id, item_code, points, source, occurred_at, note, state, rule_set, rule_set_version,
       evidence_url, created_by, reported_at, reported_by, report_note, report_evidence_url,
       reviewed_at, reviewed_by, review_note, reinspected_on, voided_at, voided_by, void_reason
FROM score_events WHERE enterprise_id = %s ORDER BY occurred_at DESC, id DESC
"""

_EARN_BACK_SQL = """
SELECT id, rule_set, rule_set_version, points, reason, note, evidence_url, occurred_at, state,
       requested_by, reviewed_by, reviewed_at, review_note
FROM score_earn_backs WHERE enterprise_id = %s ORDER BY occurred_at DESC, id DESC
"""


def _iso(value: Any) -> Any:
    return value.isoformat() if isinstance(value, dt.date | dt.datetime) else value


def deduction_json(row: dict[str, Any], book: RuleBook, counted: set[int]) -> dict[str, Any]:
    """One deduction as the API shows it: item text of the version it was made under."""
    version = book.version(row["rule_set"], row["rule_set_version"]) if row["rule_set"] else None
    item = version.item(row["item_code"]) if version else None
    out = {k: _iso(v) for k, v in row.items()}
    out["item_text"] = item.text.model_dump() if item else None
    out["item_category"] = item.category if item else None
    out["rectified"] = row["state"] == "accepted"  # the field the old API had
    out["counts"] = row["id"] in counted
    return out


async def score_json(
    conn: AsyncConnection[Any], enterprise_id: int, today: dt.date
) -> dict[str, Any] | None:
    """``GET /api/enterprises/{id}/score``: None when the enterprise has no set (or none)."""
    book = await load_rule_book(conn)
    rule_set = await rule_set_of(conn, enterprise_id, book)
    if rule_set is None:
        return None
    result = await score_of(conn, enterprise_id, today, rule_set)
    assert result is not None
    score, _ = result
    cur = conn.cursor(row_factory=dict_row)
    await cur.execute(_HISTORY_SQL, (enterprise_id,))
    counted = {e.id for e in score.counted}
    history = [deduction_json(r, book, counted) for r in await cur.fetchall()]
    await cur.execute(_EARN_BACK_SQL, (enterprise_id,))
    backs = [{k: _iso(v) for k, v in r.items()} for r in await cur.fetchall()]
    await cur.execute(
        "SELECT notice_key, subject, label, valid_until, created_at FROM expiry_notices"
        " WHERE enterprise_id = %s AND valid_until >= %s ORDER BY valid_until, notice_key",
        (enterprise_id, today),
    )
    warnings = [{k: _iso(v) for k, v in r.items()} for r in await cur.fetchall()]
    measure = score.measure
    return {
        "enterprise_id": enterprise_id,
        "rule_set": {**rule_set.ref(), "cycle_carry_over": rule_set.carry_over},
        "is_sample": rule_set.is_sample,
        "cycle_start": score.cycle_start.isoformat(),
        "cycle_end": score.cycle_end.isoformat(),
        "gross": score.gross,
        "earned_back": score.earned_back,
        "deducted": score.deducted,
        "remaining": score.remaining,
        "measure": None
        if measure is None
        else {"at": measure.at, "code": measure.code, "text": measure.text.model_dump()},
        "measures": [m.as_dict() for m in score.measures],
        "effects": score.effects.model_dump(),
        "history": history,
        "earn_backs": backs,
        "expiry_warnings": warnings,
    }
