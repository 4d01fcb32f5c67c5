"""Safety-score rule sets as data (docs/rules.md, docs/domain.md §4): the import format and its
validation with row-level errors (stored versions and assignment: layers/prevention/rule_book.py).

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
import io
from collections.abc import Sequence
from pathlib import Path
from typing import Any, Final, Literal

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
