"""Dual prevention (双重预防, docs/domain.md §5): the hidden-danger register, inspection tasks
and the three rates regulators watch.

This module is the one home of the rate definitions; the API, the daily watch list and the
district indexes all read them from ``enterprise_rates`` so a number never means two things.
All rates are taken "as of" a date D (inclusive; the day ends at midnight UTC):

- **Risk-analysis completion**: is the enterprise's risk register complete and current? Per
  enterprise 1 of 1 when it has at least one risk unit, every unit is assessed (has a colour)
  and no unit's review is overdue on D (``layers/core/review.py``: due on D is still in time),
  else 0 of 1; per district the share of its enterprises that are. (Every enterprise is
  expected to analyse its risks, so the denominator is never empty.)
- **Inspection-task completion**: tasks done by the end of D ÷ tasks due on or before D. A task
  not yet due is in neither count; a task done late still counts as done. ``None`` when nothing
  was due.
- **Hidden-danger rectification**: dangers rectified by the end of D ÷ dangers found by the end
  of D; ``None`` when none was found. ``overdue`` counts those found but not rectified whose
  deadline is before D.

District figures sum numerators and denominators over the district's enterprises (so a large
enterprise weighs by its tasks and dangers, not as one vote).
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import Annotated, Any, Final, Literal

from psycopg import AsyncConnection
from psycopg.rows import dict_row
from pydantic import AfterValidator, AwareDatetime, BaseModel, ConfigDict, Field

from layers.core.errors import FieldError, TransitionRefused
from layers.core.review import review_overdue_sql

HiddenDangerStatus = Literal["found", "rectifying", "rectified"]

#: The only moves the register allows; anything else is a conflict naming the current state.
NEXT_STATUS: Final[dict[str, str]] = {"found": "rectifying", "rectifying": "rectified"}


#: Dates the registers accept: a year-9999 time with a negative offset is year 10000 in UTC,
#: which PostgreSQL refuses (a 500 before this check).
FIRST_DAY: Final = dt.date(1900, 1, 1)
LAST_DAY: Final = dt.date(2999, 12, 31)


def _in_range(value: Any) -> Any:
    day = value.date() if isinstance(value, dt.datetime) else value
    if isinstance(day, dt.date) and not FIRST_DAY <= day <= LAST_DAY:
        raise ValueError(f"must be between {FIRST_DAY} and {LAST_DAY}")
    return value


Day = Annotated[dt.date, AfterValidator(_in_range)]
Moment = Annotated[AwareDatetime, AfterValidator(_in_range)]


class HiddenDangerInput(BaseModel):
    model_config = ConfigDict(extra="forbid")
    title: str = Field(min_length=1, max_length=500, pattern=r"\S")
    is_major: bool = False
    deadline: Day | None = None
    found_at: Moment | None = None  # default: now; an offset is required


class HiddenDangerPatch(BaseModel):
    model_config = ConfigDict(extra="forbid")
    title: str | None = Field(default=None, min_length=1, max_length=500, pattern=r"\S")
    is_major: bool | None = None
    deadline: Day | None = None
    status: HiddenDangerStatus | None = None


class InspectionTaskInput(BaseModel):
    model_config = ConfigDict(extra="forbid")
    title: str = Field(min_length=1, max_length=500, pattern=r"\S")
    due_date: Day


def _refused(current: str, wanted: str) -> TransitionRefused:
    """A status change outside found → rectifying → rectified, naming the current state."""
    allowed = NEXT_STATUS.get(current)
    hint = f"only '{allowed}' may follow" if allowed else "it is final"
    return TransitionRefused(
        f"hidden danger is '{current}': cannot become '{wanted}' ({hint})",
        [FieldError("status", f"current state is {current!r}")],
        current=current,
        wanted=wanted,
    )


_DANGER_COLUMNS = "id, enterprise_id, title, is_major, status, found_at, deadline, rectified_at"
_TASK_COLUMNS = "id, enterprise_id, title, due_date, done_at, created_at"


def _jsonable(row: dict[str, Any]) -> dict[str, Any]:
    return {k: v.isoformat() if isinstance(v, dt.date) else v for k, v in row.items()}


# -- hidden dangers ----------------------------------------------------------------------------
async def list_dangers(conn: AsyncConnection[Any], enterprise_id: int) -> list[dict[str, Any]]:
    cur = conn.cursor(row_factory=dict_row)
    await cur.execute(
        f"SELECT {_DANGER_COLUMNS} FROM hidden_dangers WHERE enterprise_id = %s"
        " ORDER BY found_at DESC, id DESC",
        (enterprise_id,),
    )
    return [_jsonable(r) for r in await cur.fetchall()]


async def insert_danger(
    conn: AsyncConnection[Any], enterprise_id: int, danger: HiddenDangerInput
) -> dict[str, Any]:
    cur = conn.cursor(row_factory=dict_row)
    await cur.execute(
        "INSERT INTO hidden_dangers (enterprise_id, title, is_major, found_at, deadline)"
        " VALUES (%s, %s, %s, coalesce(%s, now()), %s)"
        f" RETURNING {_DANGER_COLUMNS}",
        (enterprise_id, danger.title, danger.is_major, danger.found_at, danger.deadline),
    )
    row = await cur.fetchone()
    assert row is not None
    return _jsonable(row)


async def update_danger(
    conn: AsyncConnection[Any], danger_id: int, patch: HiddenDangerPatch
) -> dict[str, Any] | None:
    """Apply the fields the client sent; ``None`` when there is no such danger.

    The row is locked first so two concurrent PATCHes cannot both pass the transition check.
    Re-sending the current status is a no-op (clients may send the whole record back).
    """
    cur = conn.cursor(row_factory=dict_row)
    await cur.execute("SELECT status FROM hidden_dangers WHERE id = %s FOR UPDATE", (danger_id,))
    current = await cur.fetchone()
    if current is None:
        return None
    status: str = current["status"]
    sent = patch.model_fields_set
    if "status" in sent and patch.status is not None and patch.status != status:
        if NEXT_STATUS.get(status) != patch.status:
            raise _refused(status, patch.status)
        status = patch.status
    await cur.execute(
        "UPDATE hidden_dangers SET"
        " title = CASE WHEN %(set_title)s THEN %(title)s ELSE title END,"
        " is_major = CASE WHEN %(set_major)s THEN %(is_major)s ELSE is_major END,"
        " deadline = CASE WHEN %(set_deadline)s THEN %(deadline)s ELSE deadline END,"
        " rectified_at = CASE WHEN %(status)s = 'rectified' THEN coalesce(rectified_at, now())"
        " END,"
        " status = %(status)s"
        f" WHERE id = %(id)s RETURNING {_DANGER_COLUMNS}",
        {
            "id": danger_id,
            "set_title": "title" in sent and patch.title is not None,
            "title": patch.title,
            "set_major": "is_major" in sent and patch.is_major is not None,
            "is_major": patch.is_major,
            "set_deadline": "deadline" in sent,
            "deadline": patch.deadline,
            "status": status,
        },
    )
    row = await cur.fetchone()
    assert row is not None
    return _jsonable(row)


# -- inspection tasks --------------------------------------------------------------------------
async def list_tasks(conn: AsyncConnection[Any], enterprise_id: int) -> list[dict[str, Any]]:
    cur = conn.cursor(row_factory=dict_row)
    await cur.execute(
        f"SELECT {_TASK_COLUMNS} FROM inspection_tasks WHERE enterprise_id = %s"
        " ORDER BY due_date, id",
        (enterprise_id,),
    )
    return [_jsonable(r) for r in await cur.fetchall()]


async def insert_task(
    conn: AsyncConnection[Any], enterprise_id: int, task: InspectionTaskInput
) -> dict[str, Any]:
    cur = conn.cursor(row_factory=dict_row)
    await cur.execute(
        "INSERT INTO inspection_tasks (enterprise_id, title, due_date) VALUES (%s, %s, %s)"
        f" RETURNING {_TASK_COLUMNS}",
        (enterprise_id, task.title, task.due_date),
    )
    row = await cur.fetchone()
    assert row is not None
    return _jsonable(row)


async def mark_task_done(conn: AsyncConnection[Any], task_id: int) -> dict[str, Any] | None:
    """Idempotent: a task already done keeps its first ``done_at``."""
    cur = conn.cursor(row_factory=dict_row)
    await cur.execute(
        "UPDATE inspection_tasks SET done_at = coalesce(done_at, now()) WHERE id = %s"
        f" RETURNING {_TASK_COLUMNS}",
        (task_id,),
    )
    row = await cur.fetchone()
    return None if row is None else _jsonable(row)


# -- rates -------------------------------------------------------------------------------------
@dataclass(frozen=True)
class Rate:
    numerator: int
    denominator: int

    @property
    def value(self) -> float | None:
        return None if self.denominator == 0 else round(self.numerator / self.denominator, 4)

    def as_dict(self) -> dict[str, Any]:
        return {"done": self.numerator, "of": self.denominator, "rate": self.value}

    def __add__(self, other: Rate) -> Rate:
        return Rate(self.numerator + other.numerator, self.denominator + other.denominator)


@dataclass(frozen=True)
class PreventionRates:
    risk_analysis: Rate
    inspection: Rate
    rectification: Rate
    overdue_dangers: int

    def mean_rate(self) -> float | None:
        """The mean of the rates that have a denominator (the responsibility index's input)."""
        values = [
            r.value
            for r in (self.risk_analysis, self.inspection, self.rectification)
            if r.value is not None
        ]
        return None if not values else round(sum(values) / len(values), 4)

    def as_dict(self) -> dict[str, Any]:
        return {
            "risk_analysis_completion": self.risk_analysis.as_dict(),
            "inspection_task_completion": self.inspection.as_dict(),
            "hidden_danger_rectification": {
                **self.rectification.as_dict(),
                "overdue": self.overdue_dangers,
            },
        }

    def __add__(self, other: PreventionRates) -> PreventionRates:
        return PreventionRates(
            self.risk_analysis + other.risk_analysis,
            self.inspection + other.inspection,
            self.rectification + other.rectification,
            self.overdue_dangers + other.overdue_dangers,
        )


EMPTY_RATES: Final = PreventionRates(Rate(0, 0), Rate(0, 0), Rate(0, 0), 0)


def day_end(as_of: dt.date) -> dt.datetime:
    """The first instant after ``as_of`` (UTC): "by the end of D" means ``< day_end(D)``."""
    return dt.datetime.combine(as_of + dt.timedelta(days=1), dt.time(), tzinfo=dt.UTC)


_RATES_SQL = """
WITH target AS (
    SELECT id FROM enterprises
    WHERE (%(ids)s::int[] IS NULL OR id = ANY(%(ids)s))
      AND (%(district)s::text IS NULL OR district = %(district)s)
), units AS (
    -- complete: at least one unit (a group exists), all assessed, none overdue on D
    SELECT enterprise_id FROM risk_units
    WHERE enterprise_id IN (SELECT id FROM target)
    GROUP BY enterprise_id
    HAVING bool_and(color IS NOT NULL AND NOT {overdue})
), tasks AS (
    SELECT enterprise_id, count(*) AS due,
           count(*) FILTER (WHERE done_at < %(end)s) AS done
    FROM inspection_tasks
    WHERE due_date <= %(as_of)s AND enterprise_id IN (SELECT id FROM target)
    GROUP BY enterprise_id
), dangers AS (
    SELECT enterprise_id, count(*) AS found,
           count(*) FILTER (WHERE rectified_at < %(end)s) AS rectified,
           count(*) FILTER (WHERE (rectified_at IS NULL OR rectified_at >= %(end)s)
                              AND deadline < %(as_of)s) AS overdue
    FROM hidden_dangers
    WHERE found_at < %(end)s AND enterprise_id IN (SELECT id FROM target)
    GROUP BY enterprise_id
)
SELECT t.id, (units.enterprise_id IS NOT NULL)::int AS analysed,
       coalesce(tasks.done, 0) AS done, coalesce(tasks.due, 0) AS due,
       coalesce(dangers.rectified, 0) AS rectified, coalesce(dangers.found, 0) AS found,
       coalesce(dangers.overdue, 0) AS overdue
FROM target t
LEFT JOIN units ON units.enterprise_id = t.id
LEFT JOIN tasks ON tasks.enterprise_id = t.id
LEFT JOIN dangers ON dangers.enterprise_id = t.id
ORDER BY t.id
""".format(overdue=review_overdue_sql("review_due", "%(as_of)s"))


async def enterprise_rates(
    conn: AsyncConnection[Any],
    as_of: dt.date,
    *,
    enterprise_ids: list[int] | None = None,
    district: str | None = None,
) -> dict[int, PreventionRates]:
    """The three rates of every enterprise selected (all when no filter), keyed by id."""
    cur = conn.cursor(row_factory=dict_row)
    await cur.execute(
        _RATES_SQL,
        {
            "ids": enterprise_ids,
            "district": district,
            "as_of": as_of,
            "end": day_end(as_of),
        },
    )
    return {
        row["id"]: PreventionRates(
            Rate(row["analysed"], 1),
            Rate(row["done"], row["due"]),
            Rate(row["rectified"], row["found"]),
            row["overdue"],
        )
        for row in await cur.fetchall()
    }


def district_rates(per_enterprise: dict[int, PreventionRates]) -> PreventionRates:
    """Numerators and denominators summed over the district's enterprises."""
    total = EMPTY_RATES
    for rates in per_enterprise.values():
        total = total + rates
    return total
