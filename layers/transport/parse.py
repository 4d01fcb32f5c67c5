"""Request bodies of ``POST /api/positions`` → numpy columns plus per-row errors.

Accepted: a JSON array of objects, NDJSON (one object per line) and CSV with a header row,
all with the fields ``vehicle_id, ts, lon, lat, speed_kmh[, heading][, alarm_bits]``. ``ts`` is
ISO 8601 with a UTC offset (``Z`` or ``+08:00``); a time without one is refused rather than
guessed. A malformed row is a per-row error, never a failed batch.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from numpy.typing import NDArray

from layers.core.bodies import INT32_MAX, Field, read_columns, timestamp_us

REQUIRED = ("vehicle_id", "ts", "lon", "lat", "speed_kmh")


@dataclass
class Rows:
    """Parsed rows; ``index`` maps each to its position in the body (0-based)."""

    index: NDArray[np.int64]
    vehicle_id: NDArray[np.int64]
    t: NDArray[np.int64]  # µs since the Unix epoch
    lon: NDArray[np.float64]
    lat: NDArray[np.float64]
    speed: NDArray[np.float64]
    heading: NDArray[np.float64]  # NaN = not given
    alarm_bits: NDArray[np.int64]
    errors: list[tuple[int, str]] = field(default_factory=list)
    total: int = 0


def _number(row: dict[str, Any], key: str) -> float:
    v = row[key]
    if isinstance(v, bool) or v is None or v == "":
        raise ValueError(f"{key}: must be a number")
    try:
        x = float(v)
    except OverflowError:  # an integer beyond any float
        raise ValueError(f"{key}: must be finite") from None
    if not math.isfinite(x):
        raise ValueError(f"{key}: must be finite")
    return x


def _integer(row: dict[str, Any], key: str, default: int | None = None) -> int:
    v = row.get(key)
    if (v is None or v == "") and default is not None:
        return default
    if isinstance(v, bool) or v is None:
        raise ValueError(f"{key}: must be an integer")
    try:
        x = float(v)
    except OverflowError:  # an integer beyond any float: out of range too
        x = math.inf
    if not x.is_integer() or not 0 <= x <= INT32_MAX:
        raise ValueError(f"{key}: must be an integer between 0 and {INT32_MAX}")
    return int(x)


def _fix(row: dict[str, Any]) -> tuple[int, int, float, float, float, float, int]:
    heading = row.get("heading")
    return (
        _integer(row, "vehicle_id"),
        timestamp_us(row["ts"]),
        _number(row, "lon"),
        _number(row, "lat"),
        _number(row, "speed_kmh"),
        math.nan if heading in (None, "") else _number(row, "heading"),
        _integer(row, "alarm_bits", 0),
    )


_DTYPES = (np.int64, np.int64, np.float64, np.float64, np.float64, np.float64, np.int64)
#: ``_fix``'s columns for the fast path (layers/core/bodies.py): the same rules.
_FIELDS = (
    Field("vehicle_id", "integer"),
    Field("ts", "ts"),
    Field("lon", "number"),
    Field("lat", "number"),
    Field("speed_kmh", "number"),
    Field("heading", "number", default=math.nan),
    Field("alarm_bits", "integer", default=0),
)


def parse_body(body: bytes, content_type: str) -> Rows:
    """Dispatch on the media type: ``text/csv``, ``application/(x-)ndjson``, else JSON."""
    return read_columns(body, content_type, REQUIRED, "fixes", _fix, _DTYPES, Rows, _FIELDS)
