"""The daily bulletin and its inputs (layers/prevention/bulletin.py, sanctions.py)."""

from __future__ import annotations

from typing import Literal

from pydantic import Field

from geo_api.models.base import Body, IsoDate, IsoTime
from geo_api.models.prevention import DistrictIndexes, WatchReason


class BulletinAction(Body):
    id: int
    kind: Literal["interview", "inspection", "enforcement", "other"]
    taken_on: IsoDate
    note: str
    actor: str
    recorded_at: IsoTime


class BulletinEntry(Body):
    rank: int = Field(description="1 = first to look at: key attention first, then by colour")
    enterprise_id: int
    name: str
    district: str | None
    dynamic_color: str | None = Field(description="as on the day it was issued")
    department: str
    reasons: list[WatchReason]
    actions: list[BulletinAction]


class DepartmentIndex(Body):
    department: str
    key_entries: int
    acted_in_time: int
    index: float | None = Field(description="acted_in_time / key_entries")
    mean_days_to_act: float | None


class Bulletin(Body):
    number: str = Field(description="YYYY-DDD: the year and the day of the year")
    date: IsoDate
    issued_at: IsoTime
    issued_by: str
    rules: dict[str, float]
    key_attention: list[BulletinEntry]
    suggested_attention: list[BulletinEntry]
    districts: list[DistrictIndexes]
    departments: list[DepartmentIndex]


class BulletinSummary(Body):
    number: str
    date: IsoDate
    issued_at: IsoTime
    key_attention: int
    suggested_attention: int
    actions: int


class BulletinList(Body):
    items: list[BulletinSummary]


class BulletinHistoryItem(Body):
    number: str
    date: IsoDate
    attention: Literal["key", "suggested"]
    rank: int
    dynamic_color: str | None
    department: str
    reasons: list[WatchReason]
    actions: list[dict[str, object]]


class BulletinHistory(Body):
    enterprise_id: int
    items: list[BulletinHistoryItem]


class Penalty(Body):
    id: int
    enterprise_id: int
    decided_on: IsoDate
    decision_no: str
    authority: str
    amount_yuan: float | None
    reason: str


class PenaltyList(Body):
    items: list[Penalty]


class Accident(Body):
    id: int
    enterprise_id: int
    occurred_on: IsoDate
    grade: Literal["general", "larger", "major", "especially_major"]
    deaths: int
    injuries: int
    description: str


class AccidentList(Body):
    items: list[Accident]
