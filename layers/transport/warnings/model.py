"""What a warning model is: a named judge over newly stored fixes (see the package's doc)."""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from functools import cached_property
from typing import Any

import numpy as np
from numpy.typing import NDArray
from psycopg import AsyncConnection

from layers.transport.alerts import AlertChanges
from layers.transport.config import TankerRules
from layers.transport.engine import NewFixes


@dataclass
class Stored(NewFixes):
    """The fixes one batch stored (any order), as numpy columns: what the detector reads
    (``NewFixes``) plus the terminals' alarm bits; what every model reads.

    Columns, not rows: a batch holds thousands of fixes and a dozen models look at them, so
    per-vehicle spans and boxes are computed once, vectorised, and columns go to SQL as binary
    arrays (``layers/core/pgarrays.py``) without a Python loop. Read-only once made (the
    cached spans assume it).
    """

    alarm_bits: NDArray[np.int64]

    @classmethod
    def of_rows(cls, rows: Sequence[Sequence[Any]]) -> Stored:
        """From ``(vehicle_id, t µs, lon, lat, speed km/h, alarm_bits)`` rows."""
        a = np.array([tuple(r[:6]) for r in rows], dtype=np.float64).reshape(-1, 6)
        return cls(
            a[:, 0].astype(np.int64),
            np.array([int(r[1]) for r in rows], dtype=np.int64),  # µs do not fit a float
            a[:, 2],
            a[:, 3],
            np.nan_to_num(a[:, 4]),
            np.nan_to_num(a[:, 5]).astype(np.int64),
        )

    def __len__(self) -> int:
        return len(self.t)

    @cached_property
    def _groups(self) -> tuple[NDArray[np.int64], NDArray[np.intp], NDArray[np.intp]]:
        """The sort by vehicle, each vehicle's first index in it, and the vehicles."""
        order = np.argsort(self.vehicle_id, kind="stable")
        v = self.vehicle_id[order]
        starts = np.flatnonzero(np.concatenate(([True], v[1:] != v[:-1]))) if len(v) else order
        return v[starts], order, starts

    def per_vehicle(self, values: NDArray[Any], reduce: np.ufunc) -> dict[int, Any]:
        """``reduce`` (np.minimum, np.maximum, np.logical_or …) of ``values`` per vehicle."""
        vehicles, order, starts = self._groups
        if not len(vehicles):
            return {}
        got = reduce.reduceat(values[order], starts)
        return dict(zip(vehicles.tolist(), got.tolist(), strict=True))

    @cached_property
    def vehicles(self) -> list[int]:
        """The batch's vehicles, ascending."""
        return self._groups[0].tolist()

    @cached_property
    def spans(self) -> dict[int, tuple[int, int]]:
        """Each vehicle's first and last new fix time (µs)."""
        lo, hi = self.per_vehicle(self.t, np.minimum), self.per_vehicle(self.t, np.maximum)
        return {v: (lo[v], hi[v]) for v in lo}

    def rows_of(self, vehicles: Sequence[int]) -> NDArray[np.intp]:
        """Indices of the fixes of ``vehicles``."""
        return np.flatnonzero(np.isin(self.vehicle_id, np.asarray(vehicles, dtype=np.int64)))


#: The judge runs inside the ingest transaction after the detector (the batch's stops are
#: written) and the waybills' site events.
Judge = Callable[[AsyncConnection[Any], Stored, TankerRules], Awaitable[AlertChanges]]


@dataclass(frozen=True)
class WarningModel:
    name: str
    #: The alert rules it raises (each in ``vocab.ALERT_RULES`` with a row in alert_routes).
    rules: tuple[str, ...]
    #: Where its rule and default thresholds come from (a regulation, a standard, or "product
    #: default" with the reason in the module's doc).
    source: str
    judge: Judge


def iso_utc(t_us: int) -> str:
    """A fix time (µs since the epoch) as an alert's details give it: UTC, to the second."""
    return np.datetime_as_string(np.datetime64(t_us, "us"), unit="s") + "Z"
