"""The warning models the ingest runs over every batch of fixes, in this order."""

from __future__ import annotations

from typing import Any

from psycopg import AsyncConnection

from layers.transport.alerts import AlertChanges
from layers.transport.config import TankerRules
from layers.transport.warnings import fatigue, positioning_gap, terminal_alarms, waybill_models
from layers.transport.warnings.mixed_loading import MODEL as MIXED_LOADING
from layers.transport.warnings.model import Stored, WarningModel
from layers.transport.warnings.restricted_hours import MODEL as RESTRICTED_HOURS

MODELS: tuple[WarningModel, ...] = (
    terminal_alarms.MODEL,
    waybill_models.MODEL,
    fatigue.MODEL,
    positioning_gap.MODEL,
    RESTRICTED_HOURS,
    MIXED_LOADING,
)


async def judge_all(conn: AsyncConnection[Any], stored: Stored, rules: TankerRules) -> AlertChanges:
    """Every model over one batch; the alerts each created or updated, together."""
    out = AlertChanges()
    for model in MODELS:
        got = await model.judge(conn, stored, rules)
        out.created += got.created
        out.updated += got.updated
        out.carriers |= got.carriers
    return out
