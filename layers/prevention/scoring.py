"""The 12-point safety licence (记销分, docs/domain.md §4): rule sets, cycles, deductions.

Why rule sets are data: cities differ in items, points, cycle start, what clears at rollover
and which measures follow which total (Xiaoshan vs Hailing), and several sets are active at
once for different enterprise groups. The files live in layers/prevention/data/score_rules/;
this module validates them once at import, so a bad file fails at start-up rather than mid-request.

Deductions are rows of ``score_events``. Automatic ones carry a stable ``note`` key
(``auto:<trigger>:<instance>``) so ``deduct_automatic`` deducts once per trigger instance
however often it runs.
"""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Final, Literal

from psycopg import AsyncConnection
from psycopg.rows import dict_row, tuple_row
from pydantic import BaseModel, ConfigDict, Field, model_validator

RULES_DIR: Final = Path(__file__).parent / "data" / "score_rules"
TOTAL_POINTS: Final = 12

#: Triggers deduct_automatic knows. ``certificate_expired`` has no table yet (no personnel
#: certificates are stored), so its items are deducted by hand until one exists.
AUTOMATIC_TRIGGERS: Final = ("licence_expired", "alarm_overdue")
Trigger = Literal["manual", "licence_expired", "alarm_overdue", "certificate_expired"]

#: Serialises concurrent deduct_automatic calls (scheduler + a manual run): NOT EXISTS alone
#: does not stop two transactions inserting the same key at once.
SCORING_LOCK: Final = 0x7363_6F72_6531  # "score1"


class Text(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)
    zh: str = Field(min_length=1)
    en: str = Field(min_length=1)


class Item(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)
    code: str = Field(min_length=1)
    points: Literal[1, 2, 3, 6, 12]
    trigger: Trigger = "manual"
    text: Text


class Measure(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)
    at: int = Field(ge=1, le=TOTAL_POINTS)
    code: str = Field(min_length=1)
    text: Text


class MonthDay(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)
    month: int = Field(ge=1, le=12)
    day: int = Field(ge=1, le=28)  # every year has it


class RuleSet(BaseModel):
    """One city's scoring rules, as stored in ``layers/prevention/data/score_rules/<code>.json``."""

    model_config = ConfigDict(extra="forbid", frozen=True)
    code: str
    name: Text
    cycle_start: MonthDay
    clear_at_rollover: Literal["all", "rectified"]
    items: tuple[Item, ...] = Field(min_length=1)
    measures: tuple[Measure, ...] = Field(min_length=1)

    @model_validator(mode="after")
    def _consistent(self) -> RuleSet:
        codes = [i.code for i in self.items]
        if len(set(codes)) != len(codes):
            raise ValueError("item codes must be unique")
        ats = [m.at for m in self.measures]
        if ats != sorted(set(ats)):
            raise ValueError("measures must be in strictly increasing order of points")
        return self

    def item(self, code: str) -> Item | None:
        return next((i for i in self.items if i.code == code), None)

    def cycle(self, today: dt.date) -> tuple[dt.date, dt.date]:
        """First and last day of the cycle containing ``today``."""
        start = dt.date(today.year, self.cycle_start.month, self.cycle_start.day)
        if start > today:
            start = start.replace(year=start.year - 1)
        return start, start.replace(year=start.year + 1) - dt.timedelta(days=1)

    def measure(self, deducted: int) -> Measure | None:
        """The highest measure whose threshold ``deducted`` has reached."""
        reached = [m for m in self.measures if deducted >= m.at]
        return reached[-1] if reached else None


class Assignment(BaseModel):
    """Which rule set scores which enterprise
    (layers/prevention/data/score_rules/assignment.json)."""

    model_config = ConfigDict(extra="ignore", frozen=True)
    default: str
    by_district: dict[str, str] = Field(default_factory=dict)
    by_category: dict[str, str] = Field(default_factory=dict)

    def rule_set_for(self, district: str | None, category: str | None) -> str:
        if district is not None and district in self.by_district:
            return self.by_district[district]
        if category is not None and category in self.by_category:
            return self.by_category[category]
        return self.default


def load_rule_sets(directory: Path = RULES_DIR) -> tuple[dict[str, RuleSet], Assignment]:
    """Read and validate every rule set and the assignment; raise on anything inconsistent."""
    sets: dict[str, RuleSet] = {}
    for path in sorted(directory.glob("*.json")):
        if path.stem == "assignment":
            continue
        rule_set = RuleSet.model_validate(json.loads(path.read_text(encoding="utf-8")))
        if rule_set.code != path.stem:
            raise ValueError(f"{path.name}: code {rule_set.code!r} differs from the file name")
        sets[rule_set.code] = rule_set
    assignment = Assignment.model_validate(
        json.loads((directory / "assignment.json").read_text(encoding="utf-8"))
    )
    named = {assignment.default, *assignment.by_district.values(), *assignment.by_category.values()}
    unknown = named - sets.keys()
    if unknown:
        raise ValueError(f"assignment.json names unknown rule sets: {sorted(unknown)}")
    return sets, assignment


RULE_SETS, ASSIGNMENT = load_rule_sets()


# -- computing a score ------------------------------------------------------------------------
@dataclass(frozen=True)
class Event:
    id: int
    item_code: str
    points: int
    source: str
    occurred_at: dt.datetime
    note: str | None
    rectified: bool


@dataclass(frozen=True)
class Score:
    rule_set: RuleSet
    cycle_start: dt.date
    cycle_end: dt.date
    deducted: int
    remaining: int
    measure: Measure | None
    counted: tuple[Event, ...]  # the events making up ``deducted``


def counts(rule_set: RuleSet, event: Event, today: dt.date) -> bool:
    """Does ``event`` count in the cycle containing ``today``?

    Events of the current cycle count (those dated after ``today`` not yet). Earlier ones are
    cleared at rollover when the set clears everything (Xiaoshan); with ``rectified``
    (Hailing) only points whose rectification passed re-inspection clear, the rest carry over.
    score_events has no rectification date, so "rectified" is judged as stored now: a point
    rectified mid-cycle stops carrying over from the cycle's start, not only from the next one.
    """
    start, _ = rule_set.cycle(today)
    day = event.occurred_at.date()
    if day > today:
        return False
    if day >= start:
        return True
    return rule_set.clear_at_rollover == "rectified" and not event.rectified


def compute(rule_set: RuleSet, events: Iterable[Event], today: dt.date) -> Score:
    """Pure: the score of one enterprise on ``today`` from its whole event history."""
    start, end = rule_set.cycle(today)
    counted = tuple(e for e in events if counts(rule_set, e, today))
    deducted = sum(e.points for e in counted)
    return Score(
        rule_set=rule_set,
        cycle_start=start,
        cycle_end=end,
        deducted=deducted,
        remaining=max(0, TOTAL_POINTS - deducted),
        measure=rule_set.measure(deducted),
        counted=counted,
    )


async def rule_set_of(conn: AsyncConnection[Any], enterprise_id: int) -> RuleSet | None:
    """The rule set scoring an enterprise, None when it does not exist."""
    cur = conn.cursor(row_factory=tuple_row)
    await cur.execute("SELECT district, category FROM enterprises WHERE id = %s", (enterprise_id,))
    row = await cur.fetchone()
    if row is None:
        return None
    return RULE_SETS[ASSIGNMENT.rule_set_for(row[0], row[1])]


async def events_of(conn: AsyncConnection[Any], enterprise_id: int) -> list[Event]:
    cur = conn.cursor(row_factory=dict_row)
    await cur.execute(
        "SELECT id, item_code, points, source, occurred_at, note, rectified FROM score_events"
        " WHERE enterprise_id = %s ORDER BY occurred_at, id",
        (enterprise_id,),
    )
    return [Event(**row) for row in await cur.fetchall()]


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
    return compute(rule_set, events, today), events


async def deduct(
    conn: AsyncConnection[Any],
    enterprise_id: int,
    rule_set: RuleSet,
    item: Item,
    occurred_at: dt.datetime,
    note: str | None,
) -> int:
    """Store a manual (inspection) deduction; the points are the rule set's, never the caller's."""
    cur = conn.cursor(row_factory=tuple_row)
    await cur.execute(
        "INSERT INTO score_events (enterprise_id, rule_set, item_code, points, source,"
        " occurred_at, note) VALUES (%s, %s, %s, %s, 'inspection', %s, %s) RETURNING id",
        (enterprise_id, rule_set.code, item.code, item.points, occurred_at, note),
    )
    row = await cur.fetchone()
    assert row is not None
    return int(row[0])


_ALL_EVENTS_SQL = """
SELECT e.id AS enterprise_id, e.district, e.category, s.id, s.item_code, s.points, s.source,
       s.occurred_at, s.note, s.rectified
FROM enterprises e
JOIN score_events s ON s.enterprise_id = e.id
WHERE %(all)s OR e.id = ANY(%(ids)s)
ORDER BY e.id, s.occurred_at, s.id
"""


async def deducted_points(
    conn: AsyncConnection[Any], enterprise_ids: Sequence[int] | None, today: dt.date
) -> dict[int, int]:
    """Points deducted on ``today`` per enterprise (all when None; absent means 0).

    The risk engine's score fact (layers/risk/recompute.py) comes from here, so the cycle, the
    carry-over and the rule-set assignment have this one home.
    """
    cur = conn.cursor(row_factory=dict_row)
    await cur.execute(
        _ALL_EVENTS_SQL, {"all": enterprise_ids is None, "ids": list(enterprise_ids or [])}
    )
    by_enterprise: dict[int, tuple[RuleSet, list[Event]]] = {}
    for row in await cur.fetchall():
        enterprise_id = row.pop("enterprise_id")
        district, category = row.pop("district"), row.pop("category")
        if enterprise_id not in by_enterprise:
            rule_set = RULE_SETS[ASSIGNMENT.rule_set_for(district, category)]
            by_enterprise[enterprise_id] = (rule_set, [])
        by_enterprise[enterprise_id][1].append(Event(**row))
    return {
        enterprise_id: compute(rule_set, events, today).deducted
        for enterprise_id, (rule_set, events) in by_enterprise.items()
    }


# -- automatic deductions ---------------------------------------------------------------------
# Each statement inserts one row per trigger instance not yet deducted. The key is
# (enterprise, item, note); ``note`` names the instance (the licence expiry date, the alarm id).
_LICENCE_SQL = """
INSERT INTO score_events (enterprise_id, rule_set, item_code, points, source, occurred_at, note)
SELECT e.id, %(rule_set)s, %(item)s, %(points)s, 'auto',
       (e.licence_expiry + 1)::timestamp AT TIME ZONE 'UTC',
       'auto:licence_expired:' || e.licence_expiry
FROM enterprises e
WHERE e.id = ANY(%(ids)s) AND e.licence_expiry < %(today)s
  AND NOT EXISTS (
      SELECT 1 FROM score_events s
      WHERE s.enterprise_id = e.id AND s.item_code = %(item)s
        AND s.note = 'auto:licence_expired:' || e.licence_expiry)
RETURNING enterprise_id
"""

_ALARM_SQL = """
INSERT INTO score_events (enterprise_id, rule_set, item_code, points, source, occurred_at, note)
SELECT h.enterprise_id, %(rule_set)s, %(item)s, %(points)s, 'auto', a.ack_deadline,
       'auto:alarm_overdue:' || a.id
FROM alarms a
JOIN monitoring_points mp ON mp.id = a.point_id
JOIN hazard_sources h ON h.id = mp.hazard_source_id
WHERE h.enterprise_id = ANY(%(ids)s) AND a.ack_deadline < %(now)s
  AND (a.acknowledged_at IS NULL OR a.acknowledged_at > a.ack_deadline)
  AND NOT EXISTS (
      SELECT 1 FROM score_events s
      WHERE s.enterprise_id = h.enterprise_id AND s.item_code = %(item)s
        AND s.note = 'auto:alarm_overdue:' || a.id)
RETURNING enterprise_id
"""

_TRIGGER_SQL: Final = {"licence_expired": _LICENCE_SQL, "alarm_overdue": _ALARM_SQL}


async def _ids_by_rule_set(
    conn: AsyncConnection[Any], only: Sequence[int] | None
) -> dict[str, list[int]]:
    cur = conn.cursor(row_factory=tuple_row)
    await cur.execute(
        "SELECT id, district, category FROM enterprises WHERE %(all)s OR id = ANY(%(ids)s)",
        {"all": only is None, "ids": list(only or [])},
    )
    groups: dict[str, list[int]] = {code: [] for code in RULE_SETS}
    for enterprise_id, district, category in await cur.fetchall():
        groups[ASSIGNMENT.rule_set_for(district, category)].append(int(enterprise_id))
    return groups


async def deduct_automatic(
    conn: AsyncConnection[Any],
    today: dt.date,
    now: dt.datetime | None = None,
    enterprise_ids: Sequence[int] | None = None,
) -> list[int]:
    """Deduct every automatic item due on ``today`` (alarm deadlines against ``now``).

    ``enterprise_ids`` limits the run to those enterprises (None: all of them).

    Idempotent: an item deducts once per trigger instance. Returns the ids of the enterprises
    that received new deductions: the caller re-rates them (layers/risk/recompute.py reads its
    score facts from this module, so this module must not call it).
    """
    now = now or dt.datetime.now(dt.UTC)
    deducted: set[int] = set()
    async with conn.transaction():
        await conn.execute("SELECT pg_advisory_xact_lock(%s)", (SCORING_LOCK,))
        groups = await _ids_by_rule_set(conn, enterprise_ids)
        for code, ids in groups.items():
            if not ids:
                continue
            for item in RULE_SETS[code].items:
                query = _TRIGGER_SQL.get(item.trigger)
                if query is None:
                    continue
                cur = conn.cursor(row_factory=tuple_row)
                await cur.execute(
                    query,
                    {
                        "rule_set": code,
                        "item": item.code,
                        "points": item.points,
                        "ids": ids,
                        "today": today,
                        "now": now,
                    },
                )
                deducted.update(int(r[0]) for r in await cur.fetchall())
    return sorted(deducted)


def history(events: Sequence[Event], score: Score) -> list[dict[str, Any]]:
    """Events as JSON, newest first, with the item text and whether each counts now."""
    counted = {e.id for e in score.counted}
    out = []
    for e in reversed(events):
        item = score.rule_set.item(e.item_code)
        out.append(
            {
                "id": e.id,
                "item_code": e.item_code,
                "item_text": item.text.model_dump() if item else None,
                "points": e.points,
                "source": e.source,
                "occurred_at": e.occurred_at.isoformat(),
                "note": e.note,
                "rectified": e.rectified,
                "counts": e.id in counted,
            }
        )
    return out
