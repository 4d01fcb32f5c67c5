"""What a warning model is: a named judge over newly stored fixes (see the package's doc)."""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from typing import Any

from psycopg import AsyncConnection

from layers.transport.alerts import AlertChanges
from layers.transport.config import TankerRules

#: ``stored`` rows are ``(vehicle_id, t µs, lon, lat, speed km/h, alarm_bits)``, one per fix
#: this batch stored (any order). The judge runs inside the ingest transaction after the
#: detector (the batch's stops are written) and the waybills' site events.
Judge = Callable[
    [AsyncConnection[Any], Sequence[Sequence[Any]], TankerRules], Awaitable[AlertChanges]
]


@dataclass(frozen=True)
class WarningModel:
    name: str
    #: The alert rules it raises (each in ``vocab.ALERT_RULES`` with a row in alert_routes).
    rules: tuple[str, ...]
    #: Where its rule and default thresholds come from (a regulation, a standard, or "product
    #: default" with the reason in the module's doc).
    source: str
    judge: Judge
