"""Stored safety-score rule sets (docs/rules.md): every version, read at once, and the
assignment of sets to enterprises; storing an import as a new version.

The import format and its validation are layers/prevention/rule_sets.py; this module is what
scoring reads (layers/prevention/scoring.py) and what an import writes.
"""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Final

from psycopg import AsyncConnection
from psycopg.rows import dict_row

from layers.core.errors import FieldError, InvalidInput
from layers.prevention.rule_sets import (
    Effects,
    RuleSetDef,
    Text,
    items_from_csv,
    validate_definition,
)


@dataclass(frozen=True)
class Item:
    code: str
    text: Text
    points: int
    category: str
    tier: str
    trigger: str
    cap_per_cycle: int | None


@dataclass(frozen=True)
class Measure:
    at: int
    code: str
    text: Text
    effects: Effects

    def as_dict(self) -> dict[str, Any]:
        return {
            "at": self.at,
            "code": self.code,
            "text": self.text.model_dump(),
            "effects": self.effects.model_dump(),
        }


@dataclass(frozen=True)
class RuleSet:
    """One stored version of a set."""

    id: int
    code: str
    version: int
    title: Text
    is_sample: bool
    source_note: str | None
    cycle_start: tuple[int, int]  # (month, day)
    carry_over: str
    earn_back_allowed: bool
    earn_back_cap: int
    items: tuple[Item, ...]
    measures: tuple[Measure, ...]  # by threshold
    created_at: dt.datetime | None = None
    created_by: str | None = None

    def item(self, code: str) -> Item | None:
        return next((i for i in self.items if i.code == code), None)

    def triggered(self, trigger: str) -> Item | None:
        return next((i for i in self.items if i.trigger == trigger), None)

    def cycle(self, today: dt.date) -> tuple[dt.date, dt.date]:
        """First and last day of the cycle containing ``today``."""
        start = dt.date(today.year, *self.cycle_start)
        if start > today:
            start = start.replace(year=start.year - 1)
        return start, start.replace(year=start.year + 1) - dt.timedelta(days=1)

    def reached(self, deducted: int) -> tuple[Measure, ...]:
        """Every measure whose threshold ``deducted`` has reached, lowest first."""
        return tuple(m for m in self.measures if deducted >= m.at)

    def ref(self) -> dict[str, Any]:
        return {
            "code": self.code,
            "version": self.version,
            "name": self.title.model_dump(),
            "is_sample": self.is_sample,
        }

    def as_dict(self) -> dict[str, Any]:
        return {
            **self.ref(),
            "title": self.title.model_dump(),
            "source_note": self.source_note,
            "cycle": {
                "start_month": self.cycle_start[0],
                "start_day": self.cycle_start[1],
                "carry_over": self.carry_over,
            },
            "earn_back": {"allowed": self.earn_back_allowed, "cap": self.earn_back_cap},
            "items": [
                {
                    "code": i.code,
                    "text": i.text.model_dump(),
                    "points": i.points,
                    "category": i.category,
                    "tier": i.tier,
                    "trigger": i.trigger,
                    "cap_per_cycle": i.cap_per_cycle,
                }
                for i in self.items
            ],
            "measures": [m.as_dict() for m in self.measures],
            "created_at": self.created_at.isoformat() if self.created_at else None,
            "created_by": self.created_by,
        }


@dataclass(frozen=True)
class Assignment:
    rule_set_code: str
    category: str | None
    district: str | None
    tag: str | None
    priority: int
    id: int = 0

    def matches(self, district: str | None, category: str | None, tags: Iterable[str]) -> bool:
        return (
            (self.category is None or self.category == category)
            and (self.district is None or self.district == district)
            and (self.tag is None or self.tag in tags)
        )

    def specificity(self) -> int:
        return sum(x is not None for x in (self.category, self.district, self.tag))


@dataclass(frozen=True)
class RuleBook:
    """The latest version of every set, every stored version by id, and the assignments."""

    latest: dict[str, RuleSet]
    by_id: dict[int, RuleSet]
    assignments: tuple[Assignment, ...]

    def set_for(
        self, district: str | None, category: str | None, tags: Iterable[str] = ()
    ) -> RuleSet | None:
        """The most specific matching assignment wins (more criteria), then priority, then the
        older assignment; None when nothing matches (the enterprise is not scored)."""
        tag_set = set(tags)
        best: tuple[int, int, int] | None = None
        chosen: str | None = None
        for a in self.assignments:
            if a.rule_set_code not in self.latest or not a.matches(district, category, tag_set):
                continue
            rank = (a.specificity(), a.priority, -a.id)
            if best is None or rank > best:
                best, chosen = rank, a.rule_set_code
        return self.latest[chosen] if chosen is not None else None

    def version(self, code: str, version: int | None) -> RuleSet | None:
        """A stored version (the latest when ``version`` is None or unknown)."""
        for s in self.by_id.values():
            if s.code == code and s.version == version:
                return s
        return self.latest.get(code)


_SETS_SQL = """
SELECT id, code, version, title_zh, title_en, is_sample, source_note, cycle_start_month,
       cycle_start_day, carry_over, earn_back_allowed, earn_back_cap, created_at, created_by
FROM rule_sets ORDER BY code, version
"""
_ITEMS_SQL = """
SELECT rule_set_id, code, text_zh, text_en, points, category, tier, trigger, cap_per_cycle
FROM rule_items ORDER BY rule_set_id, position
"""
_MEASURES_SQL = """
SELECT rule_set_id, at_points, code, text_zh, text_en, colour_raise, key_list,
       inspection_every_days, interview, enforcement
FROM rule_measures ORDER BY rule_set_id, at_points, id
"""


async def load_rule_book(conn: AsyncConnection[Any]) -> RuleBook:
    """Every stored set (a few sets × tens of items: one read per request is cheap, and a
    regulator's import is seen at once by every process without a cache to invalidate)."""
    cur = conn.cursor(row_factory=dict_row)
    await cur.execute(_ITEMS_SQL)
    items: dict[int, list[Item]] = {}
    for r in await cur.fetchall():
        items.setdefault(r["rule_set_id"], []).append(
            Item(
                r["code"],
                Text(zh=r["text_zh"], en=r["text_en"]),
                r["points"],
                r["category"],
                r["tier"],
                r["trigger"],
                r["cap_per_cycle"],
            )
        )
    await cur.execute(_MEASURES_SQL)
    measures: dict[int, list[Measure]] = {}
    for r in await cur.fetchall():
        measures.setdefault(r["rule_set_id"], []).append(
            Measure(
                r["at_points"],
                r["code"],
                Text(zh=r["text_zh"], en=r["text_en"]),
                Effects(
                    colour_raise=r["colour_raise"],
                    key_list=r["key_list"],
                    inspection_every_days=r["inspection_every_days"],
                    interview=r["interview"],
                    enforcement=r["enforcement"],
                ),
            )
        )
    await cur.execute(_SETS_SQL)
    by_id: dict[int, RuleSet] = {}
    latest: dict[str, RuleSet] = {}
    for r in await cur.fetchall():
        s = RuleSet(
            id=r["id"],
            code=r["code"],
            version=r["version"],
            title=Text(zh=r["title_zh"], en=r["title_en"]),
            is_sample=r["is_sample"],
            source_note=r["source_note"],
            cycle_start=(r["cycle_start_month"], r["cycle_start_day"]),
            carry_over=r["carry_over"],
            earn_back_allowed=r["earn_back_allowed"],
            earn_back_cap=r["earn_back_cap"],
            items=tuple(items.get(r["id"], [])),
            measures=tuple(measures.get(r["id"], [])),
            created_at=r["created_at"],
            created_by=r["created_by"],
        )
        by_id[s.id] = s
        latest[s.code] = s  # ordered by version: the last one wins
    await cur.execute(
        "SELECT id, rule_set_code, category, district, tag, priority FROM rule_assignments"
        " ORDER BY id"
    )
    assignments = tuple(
        Assignment(
            r["rule_set_code"], r["category"], r["district"], r["tag"], r["priority"], r["id"]
        )
        for r in await cur.fetchall()
    )
    return RuleBook(latest, by_id, assignments)


#: Serialises imports of one code: two at once must not both take version n + 1.
_IMPORT_LOCK: Final = 0x7275_6C65_7331  # "rules1"


async def store_rule_set(conn: AsyncConnection[Any], d: RuleSetDef) -> tuple[int, int]:
    """Store ``d`` as the next version of its code; (id, version). The caller commits."""
    async with conn.transaction():
        await conn.execute("SELECT pg_advisory_xact_lock(%s)", (_IMPORT_LOCK,))
        cur = conn.cursor(row_factory=dict_row)
        await cur.execute(
            "SELECT coalesce(max(version), 0) + 1 AS v FROM rule_sets WHERE code = %s", (d.code,)
        )
        version = int((await cur.fetchone() or {"v": 1})["v"])
        await cur.execute(
            "INSERT INTO rule_sets (code, version, title_zh, title_en, is_sample, source_note,"
            " cycle_start_month, cycle_start_day, carry_over, earn_back_allowed, earn_back_cap)"
            " VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s) RETURNING id",
            (
                d.code,
                version,
                d.title.zh,
                d.title.en,
                d.is_sample,
                d.source_note,
                d.cycle.start_month,
                d.cycle.start_day,
                d.cycle.carry_over,
                d.earn_back.allowed,
                d.earn_back.cap,
            ),
        )
        set_id = int((await cur.fetchone() or {"id": 0})["id"])
        await cur.executemany(
            "INSERT INTO rule_items (rule_set_id, code, text_zh, text_en, points, category, tier,"
            " trigger, cap_per_cycle, position) VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s, %s)",
            [
                (
                    set_id,
                    i.code,
                    i.text.zh,
                    i.text.en,
                    i.points,
                    i.category,
                    i.tier,
                    i.trigger,
                    i.cap_per_cycle,
                    pos,
                )
                for pos, i in enumerate(d.items)
            ],
        )
        await cur.executemany(
            "INSERT INTO rule_measures (rule_set_id, at_points, code, text_zh, text_en,"
            " colour_raise, key_list, inspection_every_days, interview, enforcement)"
            " VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s, %s)",
            [
                (
                    set_id,
                    m.at,
                    m.code,
                    m.text.zh,
                    m.text.en,
                    m.effects.colour_raise,
                    m.effects.key_list,
                    m.effects.inspection_every_days,
                    m.effects.interview,
                    m.effects.enforcement,
                )
                for m in d.measures
            ],
        )
        if d.assignments is not None:
            await conn.execute("DELETE FROM rule_assignments WHERE rule_set_code = %s", (d.code,))
            await cur.executemany(
                "INSERT INTO rule_assignments (rule_set_code, category, district, tag, priority,"
                " note) VALUES (%s, %s, %s, %s, %s, %s)",
                [
                    (d.code, a.category, a.district, a.tag, a.priority, a.note)
                    for a in d.assignments
                ],
            )
    return set_id, version


def definition_from_file(path: Path, base: RuleSet | None = None, **meta: Any) -> RuleSetDef:
    """A JSON definition, or a CSV item list completed from ``base`` (its cycle, measures and
    earn-back carry over) and ``meta`` (code, title, is_sample, source_note).

    Raises ``InvalidInput`` (rows and fields named) on anything wrong; nothing is stored."""
    text = path.read_text(encoding="utf-8-sig")
    if path.suffix.lower() == ".json":
        try:
            doc = json.loads(text)
        except json.JSONDecodeError as exc:
            raise InvalidInput(
                f"{path.name}: not JSON ({exc.msg}, line {exc.lineno})",
                [FieldError("file", f"not JSON: {exc.msg} at line {exc.lineno}")],
            ) from None
        return validate_definition(doc)
    if path.suffix.lower() != ".csv":
        raise InvalidInput(
            f"{path.name}: a rule set is a .json or .csv file",
            [FieldError("file", "expected .json or .csv")],
        )
    if base is None:
        reason = "a CSV item list needs --set naming the stored set it replaces the items of"
        raise InvalidInput(reason, [FieldError("set", reason)])
    doc = definition_doc(base)
    doc["items"] = items_from_csv(text)
    doc.pop("assignments", None)  # a new version keeps the set's assignments
    doc.update({k: v for k, v in meta.items() if v is not None})
    return validate_definition(doc)


def definition_doc(s: RuleSet) -> dict[str, Any]:
    """A stored set as an import document (the round trip of ``RuleSet.as_dict``)."""
    full = s.as_dict()
    return {
        "code": s.code,
        "title": full["title"],
        "is_sample": s.is_sample,
        "source_note": s.source_note,
        "cycle": full["cycle"],
        "earn_back": full["earn_back"],
        "items": [{k: v for k, v in i.items() if v is not None} for i in full["items"]],
        "measures": [
            {k: m[k] for k in ("at", "code", "text", "effects")} for m in full["measures"]
        ],
    }
