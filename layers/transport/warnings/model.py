"""What a warning model is: a named judge over newly stored fixes (see the package's doc)."""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
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


def vehicle_spans(stored: Sequence[Sequence[Any]]) -> dict[int, tuple[int, int]]:
    """Each vehicle's first and last new fix time (µs) in a batch of ``stored`` rows."""
    out: dict[int, tuple[int, int]] = {}
    for row in stored:
        v, t = int(row[0]), int(row[1])
        lo, hi = out.get(v, (t, t))
        out[v] = (min(lo, t), max(hi, t))
    return out


def iso_utc(t_us: int) -> str:
    """A fix time (µs since the epoch) as an alert's details give it: UTC, to the second."""
    return np.datetime_as_string(np.datetime64(t_us, "us"), unit="s") + "Z"
