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
- **Inspection-task completion**: task rounds done by the end of D ÷ rounds due on or before D.
  A one-off task is one round; a recurring one (daily, weekly, monthly, quarterly, yearly from
  its first due date) is one round per due date, each done at most once
  (``inspection_task_rounds``). A round not yet due is in neither count; one done late still
  counts as done. ``None`` when nothing was due.
- **Hidden-danger rectification**: dangers rectified by the end of D ÷ dangers found by the end
  of D; ``None`` when none was found. A major danger counts as rectified only once a regulator
  accepted it (layers/prevention/major_dangers.py): a reported rectification is still open.
  ``overdue`` counts those found but not rectified whose
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

from layers.core.errors import FieldError, Forbidden, InvalidField, TransitionRefused
from layers.core.review import review_overdue_sql
from layers.core.vocab import INSPECTION_FREQUENCIES, MAJOR_HIDDEN_DANGER_CRITERIA

HiddenDangerStatus = Literal["found", "rectifying", "rectification_reported", "rectified"]
Frequency = Literal["once", "daily", "weekly", "monthly", "quarterly", "yearly"]

#: The only moves PATCH allows; anything else is a conflict naming the current state. A MAJOR
#: danger never reaches ``rectified`` this way: it is reported with evidence and closed by a
#: regulator's acceptance (layers/prevention/major_dangers.py, docs/domain.md §5).
NEXT_STATUS: Final[dict[str, str]] = {"found": "rectifying", "rectifying": "rectified"}
#: The rule an enterprise meets when it tries to close its own major danger.
MAJOR_CLOSE_RULE: Final = (
    "a major hidden danger closes only when a regulator accepts its rectification: report it "
    "with evidence (POST /api/hidden-dangers/{id}/report), a regulator then accepts or rejects"
)
#: Fewest days between two due dates of a recurring task: bounds the series the rates expand.
MIN_DAYS: Final[dict[str, int]] = {
    "daily": 1,
    "weekly": 7,
    "monthly": 28,
    "quarterly": 89,
    "yearly": 365,
}


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


def _criterion(value: str | None) -> str | None:
    if value is not None and value not in MAJOR_HIDDEN_DANGER_CRITERIA:
        last = f"MHD{len(MAJOR_HIDDEN_DANGER_CRITERIA):02d}"
        raise ValueError(f"{value!r} is not an item of the 2017 criteria (MHD01…{last})")
    return value


#: An item of 安监总管三〔2017〕121号 (layers/core/vocab.py): giving one marks the danger major.
Criterion = Annotated[str | None, AfterValidator(_criterion)]


class HiddenDangerInput(BaseModel):
    model_config = ConfigDict(extra="forbid")
    title: str = Field(min_length=1, max_length=500, pattern=r"\S")
    is_major: bool = False
    major_criterion: Criterion = None
    deadline: Day | None = None
    found_at: Moment | None = None  # default: now; an offset is required


class HiddenDangerPatch(BaseModel):
    model_config = ConfigDict(extra="forbid")
    title: str | None = Field(default=None, min_length=1, max_length=500, pattern=r"\S")
    is_major: bool | None = None
    major_criterion: Criterion = None
    deadline: Day | None = None
    status: HiddenDangerStatus | None = None


class InspectionTaskInput(BaseModel):
    model_config = ConfigDict(extra="forbid")
    title: str = Field(min_length=1, max_length=500, pattern=r"\S")
    due_date: Day  # the (first) due date
    frequency: Frequency = "once"
    assignee: str | None = Field(default=None, min_length=1, max_length=200, pattern=r"\S")
    risk_unit_id: int | None = Field(default=None, ge=1, le=2**31 - 1)
    control_index: int | None = Field(default=None, ge=0, le=10_000)


class TaskDone(BaseModel):
    """Which round of a recurring task was done (default: the current one)."""

    model_config = ConfigDict(extra="forbid")
    due_date: Day | None = None


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


DANGER_COLUMNS: Final = (
    "id, enterprise_id, title, is_major, major_criterion, status, found_at, deadline,"
    " rectified_at, reported_at, reported_by, report_evidence, report_evidence_url,"
    " accepted_at, accepted_by, acceptance_note, rejected_at, rejected_by, rejection_reason,"
    " reminded_for, reminded_at"
)
_DANGER_COLUMNS = DANGER_COLUMNS
_TASK_COLUMNS = (
    "id, enterprise_id, title, due_date, done_at, created_at, frequency, assignee,"
    " risk_unit_id, control_index"
)


def jsonable(row: dict[str, Any]) -> dict[str, Any]:
    return {k: v.isoformat() if isinstance(v, dt.date) else v for k, v in row.items()}


# -- hidden dangers ----------------------------------------------------------------------------
async def list_dangers(conn: AsyncConnection[Any], enterprise_id: int) -> list[dict[str, Any]]:
    cur = conn.cursor(row_factory=dict_row)
    await cur.execute(
        f"SELECT {_DANGER_COLUMNS} FROM hidden_dangers WHERE enterprise_id = %s"
        " ORDER BY found_at DESC, id DESC",
        (enterprise_id,),
    )
    return [jsonable(r) for r in await cur.fetchall()]


async def insert_danger(
    conn: AsyncConnection[Any], enterprise_id: int, danger: HiddenDangerInput
) -> dict[str, Any]:
    explicit = "is_major" in danger.model_fields_set
    if danger.major_criterion is not None and explicit and not danger.is_major:
        raise _criterion_needs_major()
    is_major = danger.is_major or danger.major_criterion is not None
    cur = conn.cursor(row_factory=dict_row)
    await cur.execute(
        "INSERT INTO hidden_dangers"
        " (enterprise_id, title, is_major, major_criterion, found_at, deadline)"
        " VALUES (%s, %s, %s, %s, coalesce(%s, now()), %s)"
        f" RETURNING {_DANGER_COLUMNS}",
        (
            enterprise_id,
            danger.title,
            is_major,
            danger.major_criterion,
            danger.found_at,
            danger.deadline,
        ),
    )
    row = await cur.fetchone()
    assert row is not None
    return jsonable(row)


def _criterion_needs_major() -> InvalidField:
    return InvalidField("major_criterion", "a criterion of the 2017 list makes the danger major")


async def update_danger(
    conn: AsyncConnection[Any],
    danger_id: int,
    patch: HiddenDangerPatch,
    *,
    may_downgrade: bool = True,
) -> dict[str, Any] | None:
    """Apply the fields the client sent; ``None`` when there is no such danger.

    The row is locked first so two concurrent PATCHes cannot both pass the transition check.
    Re-sending the current status is a no-op (clients may send the whole record back). A major
    danger cannot be closed here (409 naming the rule), and only a regulator
    (``may_downgrade``) may turn a major danger into an ordinary one.
    """
    cur = conn.cursor(row_factory=dict_row)
    await cur.execute(
        "SELECT status, is_major, major_criterion FROM hidden_dangers WHERE id = %s FOR UPDATE",
        (danger_id,),
    )
    current = await cur.fetchone()
    if current is None:
        return None
    sent = patch.model_fields_set
    is_major: bool = current["is_major"]
    criterion: str | None = current["major_criterion"]
    if "major_criterion" in sent:
        criterion = patch.major_criterion
        if criterion is not None:
            is_major = True
    if "is_major" in sent and patch.is_major is not None:
        if patch.is_major is False and criterion is not None and "major_criterion" in sent:
            raise _criterion_needs_major()
        is_major = patch.is_major
        if not is_major:
            criterion = None
    status: str = current["status"]
    if current["is_major"] and not is_major and not may_downgrade:
        raise Forbidden(
            "only a regulator may reclassify a major hidden danger as ordinary",
            [FieldError("is_major", "a major hidden danger stays major for this role")],
        )
    if is_major and not current["is_major"] and status == "rectified":
        raise TransitionRefused(
            "hidden danger is 'rectified': a closed danger cannot become major",
            [FieldError("is_major", "current state is 'rectified'")],
            current=status,
            wanted="major",
        )
    if "status" in sent and patch.status is not None and patch.status != status:
        if is_major and patch.status in ("rectified", "rectification_reported"):
            raise TransitionRefused(
                MAJOR_CLOSE_RULE,
                [FieldError("status", "major hidden danger: regulator acceptance required")],
                current=status,
                wanted=patch.status,
            )
        if NEXT_STATUS.get(status) != patch.status:
            raise _refused(status, patch.status)
        status = patch.status
    await cur.execute(
        "UPDATE hidden_dangers SET"
        " title = CASE WHEN %(set_title)s THEN %(title)s ELSE title END,"
        " is_major = %(is_major)s, major_criterion = %(criterion)s,"
        " deadline = CASE WHEN %(set_deadline)s THEN %(deadline)s ELSE deadline END,"
        " rectified_at = CASE WHEN %(status)s = 'rectified' THEN coalesce(rectified_at, now())"
        " END,"
        " status = %(status)s"
        f" WHERE id = %(id)s RETURNING {_DANGER_COLUMNS}",
        {
            "id": danger_id,
            "set_title": "title" in sent and patch.title is not None,
            "title": patch.title,
            "is_major": is_major,
            "criterion": criterion,
            "set_deadline": "deadline" in sent,
            "deadline": patch.deadline,
            "status": status,
        },
    )
    row = await cur.fetchone()
    assert row is not None
    return jsonable(row)


# -- inspection tasks --------------------------------------------------------------------------
async def list_tasks(conn: AsyncConnection[Any], enterprise_id: int) -> list[dict[str, Any]]:
    cur = conn.cursor(row_factory=dict_row)
    await cur.execute(
        f"SELECT {_TASK_COLUMNS} FROM inspection_tasks WHERE enterprise_id = %s"
        " ORDER BY due_date, id",
        (enterprise_id,),
    )
    return [jsonable(r) for r in await cur.fetchall()]


async def insert_task(
    conn: AsyncConnection[Any], enterprise_id: int, task: InspectionTaskInput
) -> dict[str, Any]:
    """Store a task; its risk unit must be the enterprise's and its control must exist (422
    naming ``risk_unit_id`` or ``control_index``)."""
    cur = conn.cursor(row_factory=dict_row)
    if task.control_index is not None and task.risk_unit_id is None:
        raise InvalidField("control_index", "give risk_unit_id: a control belongs to a risk unit")
    if task.risk_unit_id is not None:
        await cur.execute(
            "SELECT jsonb_array_length(controls) AS n FROM risk_units"
            " WHERE id = %s AND enterprise_id = %s",
            (task.risk_unit_id, enterprise_id),
        )
        unit = await cur.fetchone()
        if unit is None:
            raise InvalidField("risk_unit_id", "no risk unit of this enterprise has this id")
        if task.control_index is not None and task.control_index >= unit["n"]:
            raise InvalidField(
                "control_index", f"the risk unit has {unit['n']} control(s), counted from 0"
            )
    await cur.execute(
        "INSERT INTO inspection_tasks (enterprise_id, title, due_date, frequency, assignee,"
        " risk_unit_id, control_index) VALUES (%s, %s, %s, %s, %s, %s, %s)"
        f" RETURNING {_TASK_COLUMNS}",
        (
            enterprise_id,
            task.title,
            task.due_date,
            task.frequency,
            task.assignee,
            task.risk_unit_id,
            task.control_index,
        ),
    )
    row = await cur.fetchone()
    assert row is not None
    return jsonable(row)


def _step_sql(column: str) -> str:
    """The interval between two due dates of a task, from the vocabulary."""
    whens = " ".join(
        f"WHEN '{name}' THEN interval '{step}'"
        for name, step in INSPECTION_FREQUENCIES.items()
        if step is not None
    )
    return f"(CASE {column} {whens} END)"


def _min_days_sql(column: str) -> str:
    whens = " ".join(f"WHEN '{name}' THEN {days}" for name, days in MIN_DAYS.items())
    return f"(CASE {column} {whens} END)"


#: The due dates of recurring task ``t`` up to %(upto)s: first + k × step (k from 0; months
#: added to the first date, so a task first due on the 31st stays at the month's end).
_ROUNDS_SQL = (
    "SELECT (t.due_date + k * {step})::date AS due"
    " FROM generate_series(0, greatest(%(upto)s::date - t.due_date, 0) / {min_days}) k"
).format(step=_step_sql("t.frequency"), min_days=_min_days_sql("t.frequency"))


async def mark_task_done(
    conn: AsyncConnection[Any],
    task_id: int,
    today: dt.date,
    who: str | None = None,
    done: TaskDone | None = None,
) -> dict[str, Any] | None:
    """A one-off task: ``done_at`` (idempotent, the first one stays). A recurring one: its
    round due on ``done.due_date`` — by default the current round, the first due on or after
    ``today`` — is recorded once (idempotent too); a date that is not one of its due dates,
    or lies beyond the current round, is a 422 naming ``due_date``."""
    cur = conn.cursor(row_factory=dict_row)
    await cur.execute("SELECT frequency FROM inspection_tasks WHERE id = %s", (task_id,))
    task = await cur.fetchone()
    if task is None:
        return None
    if task["frequency"] == "once":
        await cur.execute(
            "UPDATE inspection_tasks SET done_at = coalesce(done_at, now()) WHERE id = %s"
            f" RETURNING {_TASK_COLUMNS}",
            (task_id,),
        )
        row = await cur.fetchone()
        return None if row is None else jsonable(row)
    # Rounds up to one step past today: the current round is among them.
    await cur.execute(
        f"SELECT r.due FROM inspection_tasks t CROSS JOIN LATERAL ({_ROUNDS_SQL}) r"
        " WHERE t.id = %(id)s ORDER BY r.due",
        {"id": task_id, "upto": today + dt.timedelta(days=366)},
    )
    rounds = [r["due"] for r in await cur.fetchall()]
    current = next(d for d in rounds if d >= today)
    wanted = done.due_date if done is not None and done.due_date is not None else current
    if wanted not in rounds or wanted > current:
        raise InvalidField(
            "due_date", f"not a due date of this {task['frequency']} task up to {current}"
        )
    await cur.execute(
        "INSERT INTO inspection_task_rounds (task_id, due_date, done_by) VALUES (%s, %s, %s)"
        " ON CONFLICT (task_id, due_date) DO NOTHING",
        (task_id, wanted, who),
    )
    await cur.execute(f"SELECT {_TASK_COLUMNS} FROM inspection_tasks WHERE id = %s", (task_id,))
    row = await cur.fetchone()
    assert row is not None
    await cur.execute(
        "SELECT due_date, done_at, done_by FROM inspection_task_rounds WHERE task_id = %s"
        " ORDER BY due_date DESC LIMIT 20",
        (task_id,),
    )
    return {**jsonable(row), "rounds": [jsonable(r) for r in await cur.fetchall()]}


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
      AND (%(districts)s::text[] IS NULL OR district = ANY(%(districts)s))
), units AS (
    -- complete: at least one unit (a group exists), all assessed, none overdue on D
    SELECT enterprise_id FROM risk_units
    WHERE enterprise_id IN (SELECT id FROM target)
    GROUP BY enterprise_id
    HAVING bool_and(color IS NOT NULL AND NOT {overdue})
), rounds AS (
    -- one-off tasks are one round; recurring ones one round per due date up to D
    SELECT t.enterprise_id, t.done_at
    FROM inspection_tasks t
    WHERE t.frequency = 'once' AND t.due_date <= %(as_of)s
      AND t.enterprise_id IN (SELECT id FROM target)
    UNION ALL
    SELECT t.enterprise_id, done.done_at
    FROM inspection_tasks t
    CROSS JOIN LATERAL ({rounds}) r
    LEFT JOIN inspection_task_rounds done ON done.task_id = t.id AND done.due_date = r.due
    WHERE t.frequency <> 'once' AND t.due_date <= %(as_of)s AND r.due <= %(as_of)s
      AND t.enterprise_id IN (SELECT id FROM target)
), tasks AS (
    SELECT enterprise_id, count(*) AS due,
           count(*) FILTER (WHERE done_at < %(end)s) AS done
    FROM rounds
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
""".format(
    overdue=review_overdue_sql("review_due", "%(as_of)s"),
    rounds=_ROUNDS_SQL.replace("%(upto)s", "%(as_of)s"),
)


async def enterprise_rates(
    conn: AsyncConnection[Any],
    as_of: dt.date,
    *,
    enterprise_ids: list[int] | None = None,
    district: str | None = None,
    districts: list[str] | None = None,
) -> dict[int, PreventionRates]:
    """The three rates of every enterprise selected (all when no filter), keyed by id."""
    cur = conn.cursor(row_factory=dict_row)
    await cur.execute(
        _RATES_SQL,
        {
            "ids": enterprise_ids,
            "district": district,
            "districts": districts,
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
