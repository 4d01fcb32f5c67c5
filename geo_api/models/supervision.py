"""Supervision answers: direct-red findings (MEM 2018 guide), inspection tasks with their rounds
and the effectiveness ranking (layers/risk/findings.py, layers/prevention/)."""

from __future__ import annotations

from pydantic import Field

from geo_api.models.base import Body, IsoDate, IsoTime, Number
from geo_api.models.prevention import Bilingual
from layers.prevention.dual import Frequency
from layers.risk.findings import FindingState


class Finding(Body):
    """One finding of the register; while ``open`` it rates the enterprise red."""

    id: int
    enterprise_id: int
    code: str = Field(description="a direct-red circumstance (layers/core/vocab.py)")
    text: Bilingual
    evidence: str
    evidence_url: str | None
    found_on: IsoDate
    found_by: str
    state: FindingState
    closed_at: IsoTime | None
    closed_by: str | None
    close_reason: str | None
    created_at: IsoTime


class FindingList(Body):
    items: list[Finding]
    numberMatched: int


class TaskRound(Body):
    due_date: IsoDate
    done_at: IsoTime
    done_by: str | None


class InspectionTask(Body):
    """A task, once or recurring from ``due_date`` at ``frequency``, on a risk unit's control."""

    id: int
    enterprise_id: int
    title: str
    due_date: IsoDate
    frequency: Frequency
    assignee: str | None
    risk_unit_id: int | None
    control_index: int | None
    done_at: IsoTime | None = Field(description="a one-off task: when it was done")
    created_at: IsoTime
    rounds: list[TaskRound] | None = Field(
        default=None, description="a recurring task: its latest done rounds"
    )


class RateFigure(Body):
    done: int
    of: int
    rate: Number | None


class RectificationFigure(RateFigure):
    overdue: int


class RankingEntry(Body):
    rank: int = Field(description="1 = most effective; ties share a rank")
    enterprise_id: int
    name: str
    district: str | None
    effectiveness: Number | None = Field(description="mean of the rates that have a denominator")
    risk_analysis_completion: RateFigure
    inspection_task_completion: RateFigure
    hidden_danger_rectification: RectificationFigure


class Ranking(Body):
    """``GET /api/prevention/ranking``: enterprises by dual-prevention effectiveness."""

    date: IsoDate
    numberMatched: int
    items: list[RankingEntry]
