"""Request bodies of ``POST /api/readings`` → numpy columns plus per-row errors.

A JSON array of objects, NDJSON or CSV with a header, each row ``point_id, ts, value``; ``ts``
is ISO 8601 with an offset. A malformed row is that row's error, never a failed batch.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from numpy.typing import NDArray

from layers.core.bodies import INT32_MAX, Field, read_columns, timestamp_us

REQUIRED = ("point_id", "ts", "value")


@dataclass
class Rows:
    """Parsed rows; ``index`` maps each to its position in the body (0-based)."""

    index: NDArray[np.int64]
    point_id: NDArray[np.int64]
    t: NDArray[np.int64]  # µs since the Unix epoch
    value: NDArray[np.float64]
    errors: list[tuple[int, str]] = field(default_factory=list)
    total: int = 0


def _point(v: Any) -> int:
    if isinstance(v, bool) or v is None or v == "":
        raise ValueError("point_id: must be an integer")
    try:
        x = float(v)
    except OverflowError:  # an integer beyond any float: out of range too
        x = math.inf
    if not x.is_integer() or not 1 <= x <= INT32_MAX:
        raise ValueError(f"point_id: must be an integer between 1 and {INT32_MAX}")
    return int(x)


def _value(v: Any) -> float:
    if isinstance(v, bool) or v is None or v == "":
        raise ValueError("value: must be a number")
    try:
        x = float(v)
    except (TypeError, ValueError):
        raise ValueError(f"value: must be a number, got {str(v)[:40]!r}") from None
    except OverflowError:  # an integer beyond any float
        raise ValueError("value: must be finite") from None
    if not math.isfinite(x):
        raise ValueError("value: must be finite")
    return x


def _reading(row: dict[str, Any]) -> tuple[int, int, float]:
    return _point(row["point_id"]), timestamp_us(row["ts"]), _value(row["value"])


_DTYPES = (np.int64, np.int64, np.float64)
#: ``_reading``'s columns for the fast path (layers/core/bodies.py): the same rules.
_FIELDS = (Field("point_id", "integer", low=1), Field("ts", "ts"), Field("value", "number"))


def parse_body(body: bytes, content_type: str) -> Rows:
    """Dispatch on the media type: ``text/csv``, ``application/(x-)ndjson``, else JSON."""
    return read_columns(body, content_type, REQUIRED, "readings", _reading, _DTYPES, Rows, _FIELDS)
