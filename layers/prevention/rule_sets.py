"""Safety-score rule sets as data (docs/rules.md, docs/domain.md §4): the import format, its
validation with row-level errors, versioned storage, and which set scores which enterprise.

Why data and not code: cities differ in items, points, cycle, carry-over and measures; the
official lists are loaded by a regulator (``georisk rules import`` or ``POST /api/rule-sets``),
and a new import is a new *version* of the set: deductions keep the version they were made
under, so an item reworded or re-pointed later never rewrites an old deduction.

Shipped sets (layers/prevention/data/rule_sets/) are samples: the seeds give their item counts
and point values, not the official texts. A sample must say so in its title ("SAMPLE" / "样例")
so that no screen can show it as the official list.
"""

from __future__ import annotations

import csv
import datetime as dt
import io
import json
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Final, Literal

from psycopg import AsyncConnection
from psycopg.rows import dict_row
from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from layers.core.errors import FieldError, InvalidInput

SHIPPED_DIR: Final = Path(__file__).parent / "data" / "rule_sets"
TOTAL_POINTS: Final = 12

Category = Literal[
    "unsafe_acts", "unsafe_conditions", "management", "qualifications", "monitoring", "other"
]
CATEGORIES: Final = Category.__args__  # type: ignore[attr-defined]
Tier = Literal["provincial", "district"]
Trigger = Literal["none", "licence_expired", "certificate_expired", "alarm_undisposed"]
TRIGGERS: Final = Trigger.__args__  # type: ignore[attr-defined]
CarryOver = Literal["none", "unrectified"]

#: CSV columns of an item list (docs/rules.md); ``cap_per_cycle`` may be left empty.
CSV_COLUMNS: Final = (
    "code",
    "text_zh",
    "text_en",
    "points",
    "category",
    "tier",
    "trigger",
    "cap_per_cycle",
)
#: Codes are written into URLs and keys: short and plain.
CODE_PATTERN: Final = r"^[a-z0-9][a-z0-9_-]{0,63}$"
ITEM_CODE_PATTERN: Final = r"^[A-Za-z0-9][A-Za-z0-9._-]{0,31}$"


class Text(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)
    zh: str = Field(min_length=1, max_length=500)
    en: str = Field(min_length=1, max_length=500)


class ItemDef(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)
    code: str = Field(pattern=ITEM_CODE_PATTERN)
    text: Text
    points: int = Field(ge=1, le=TOTAL_POINTS)
    category: Category
    tier: Tier
    trigger: Trigger = "none"
    cap_per_cycle: int | None = Field(default=None, ge=1, le=TOTAL_POINTS)

    @model_validator(mode="after")
    def _cap_holds_one(self) -> ItemDef:
        if self.cap_per_cycle is not None and self.cap_per_cycle < self.points:
            raise ValueError("cap_per_cycle must be at least the item's points")
        return self


class Effects(BaseModel):
    """What the system does when a total reaches the measure's threshold."""

    model_config = ConfigDict(extra="forbid", frozen=True)
    colour_raise: int = Field(default=0, ge=0, le=3)
    key_list: bool = False
    inspection_every_days: int | None = Field(default=None, ge=1, le=366)
    interview: bool = False
    enforcement: bool = False


class MeasureDef(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)
    at: int = Field(ge=1, le=TOTAL_POINTS)
    code: str = Field(pattern=ITEM_CODE_PATTERN)
    text: Text
    effects: Effects = Effects()


class AssignmentDef(BaseModel):
    """Enterprises this set scores: every given criterion must hold (none given: everyone)."""

    model_config = ConfigDict(extra="forbid", frozen=True)
    category: str | None = Field(default=None, min_length=1, max_length=64)
    district: str | None = Field(default=None, min_length=1, max_length=32)
    tag: str | None = Field(default=None, min_length=1, max_length=64)
    priority: int = Field(default=0, ge=-1000, le=1000)
    note: str | None = Field(default=None, max_length=500)


class Cycle(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)
    start_month: int = Field(ge=1, le=12)
    start_day: int = Field(ge=1, le=28)  # every year has it
    carry_over: CarryOver


class EarnBack(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)
    allowed: bool = False
    cap: int = Field(default=0, ge=0, le=TOTAL_POINTS)


class RuleSetDef(BaseModel):
    """One rule set as imported (JSON) — docs/rules.md shows a full example."""

    model_config = ConfigDict(extra="forbid", frozen=True)
    code: str = Field(pattern=CODE_PATTERN)
    title: Text
    is_sample: bool
    source_note: str | None = Field(default=None, max_length=2000)
    cycle: Cycle
    earn_back: EarnBack = EarnBack()
    items: tuple[ItemDef, ...] = Field(min_length=1, max_length=500)
    measures: tuple[MeasureDef, ...] = Field(min_length=1, max_length=20)
    #: None: keep the set's current assignments (a new version of the same set).
    assignments: tuple[AssignmentDef, ...] | None = None


def _consistency(d: RuleSetDef) -> list[FieldError]:
    """Cross-row rules a single row cannot check, each naming its row."""
    errors: list[FieldError] = []
    seen: dict[str, int] = {}
    for i, item in enumerate(d.items):
        if item.code in seen:
            errors.append(FieldError("code", f"duplicates item {seen[item.code]}", index=i))
        seen.setdefault(item.code, i)
    triggers: dict[str, int] = {}
    for i, item in enumerate(d.items):
        if item.trigger == "none":
            continue
        if item.trigger in triggers:
            reason = f"trigger {item.trigger} already on item {triggers[item.trigger]}"
            errors.append(FieldError("trigger", reason, index=i))
        triggers.setdefault(item.trigger, i)
    codes: set[str] = set()
    for i, m in enumerate(d.measures):
        if m.code in codes:
            errors.append(FieldError("measures.code", f"duplicate measure {m.code}", index=i))
        codes.add(m.code)
    says_sample = "SAMPLE" in d.title.en or "样例" in d.title.zh
    if d.is_sample and ("SAMPLE" not in d.title.en or "样例" not in d.title.zh):
        reason = "a sample set says so in its title: 'SAMPLE' in en and '样例' in zh"
        errors.append(FieldError("title", reason))
    elif not d.is_sample and says_sample:
        errors.append(FieldError("title", "an official set (is_sample false) is not a SAMPLE"))
    if not d.earn_back.allowed and d.earn_back.cap:
        errors.append(FieldError("earn_back.cap", "must be 0 when earn-back is not allowed"))
    return errors


def _pydantic_errors(exc: ValidationError) -> list[FieldError]:
    out = []
    for e in exc.errors():
        loc = list(e["loc"])
        index = None
        # items.3.points → row 3, field "points": the row number is what a regulator fixes.
        if (
            len(loc) >= 2
            and loc[0] in ("items", "measures", "assignments")
            and isinstance(loc[1], int)
        ):
            index = loc[1]
            field = ".".join(str(p) for p in [loc[0], *loc[2:]])
        else:
            field = ".".join(str(p) for p in loc) or "body"
        out.append(FieldError(field, e["msg"], index=index))
    return out


def validate_definition(doc: Any) -> RuleSetDef:
    """A checked definition, or ``InvalidInput`` listing every bad row and field."""
    try:
        d = RuleSetDef.model_validate(doc)
    except ValidationError as exc:
        errors = _pydantic_errors(exc)
        raise InvalidInput(_summary(errors), errors) from None
    errors = _consistency(d)
    if errors:
        raise InvalidInput(_summary(errors), errors)
    return d


def _summary(errors: Sequence[FieldError]) -> str:
    first = errors[0]
    where = f"row {first.index}: " if first.index is not None else ""
    more = f" (and {len(errors) - 1} more)" if len(errors) > 1 else ""
    return f"{where}{first.field}: {first.reason}{more}"


def items_from_csv(text: str) -> list[dict[str, Any]]:
    """Item rows of a CSV item list as import documents; a header row names the columns.

    Row numbers in errors are the item index (0 = the first row under the header)."""
    reader = csv.DictReader(io.StringIO(text.lstrip("\ufeff")))
    header = reader.fieldnames or []
    missing = [c for c in CSV_COLUMNS if c not in header and c != "cap_per_cycle"]
    unknown = [c for c in header if c not in CSV_COLUMNS]
    if missing or unknown:
        errors = [FieldError(c, "missing column") for c in missing]
        errors += [FieldError(c, "unknown column") for c in unknown]
        raise InvalidInput(_summary(errors), errors)
    items = []
    for row in reader:
        item: dict[str, Any] = {
            "code": (row.get("code") or "").strip(),
            "text": {
                "zh": (row.get("text_zh") or "").strip(),
                "en": (row.get("text_en") or "").strip(),
            },
            "points": (row.get("points") or "").strip(),
            "category": (row.get("category") or "").strip(),
            "tier": (row.get("tier") or "").strip(),
            "trigger": (row.get("trigger") or "").strip() or "none",
        }
        cap = (row.get("cap_per_cycle") or "").strip()
        if cap:
            item["cap_per_cycle"] = cap
        items.append(item)
    return items


# -- stored sets -------------------------------------------------------------------------------
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
