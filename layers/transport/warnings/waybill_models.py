"""The waybill warning models run as one (issue 14 item 3; docs/transport.md §8): loads
without a waybill (``unwaybilled.py``), no escort (``escort.py``), the waybill's corridor
(``waybill_corridor.py``), undeclared stops and the wrong destination (``waybill_stops.py``).

Each module is a model of its own (its ``MODEL`` judges a batch alone, as the tests' unit
checks use them); the ingest runs them through this one so that a batch's waybills are read
once for all of them and their alerts are merged in one pass — four reads and four merges per
batch would cost more than the judging. Refused loadings raise ``loading_check_failed`` where
they are recorded (``loading_checks.py``, from ``waybills.apply_step``).
"""

from __future__ import annotations

from typing import Any, Final

from psycopg import AsyncConnection

from layers.transport.alerts import AlertChanges
from layers.transport.config import TankerRules
from layers.transport.warnings import chain, escort, unwaybilled, waybill_corridor, waybill_stops
from layers.transport.warnings.model import Stored, WarningModel

PARTS: Final = (unwaybilled, escort, waybill_corridor, waybill_stops)


async def judge(conn: AsyncConnection[Any], stored: Stored, rules: TankerRules) -> AlertChanges:
    batch = chain.Batch.of(stored)
    found = chain.Found()
    if not batch.span:
        return AlertChanges()
    for part in PARTS:
        found.extend(await part.find(conn, batch, rules))
    return await chain.merge_found(conn, found, rules)


MODEL = WarningModel(
    "waybills",
    tuple(dict.fromkeys(r for part in PARTS for r in part.MODEL.rules)),
    "; ".join(part.MODEL.source for part in PARTS),
    judge,
)
