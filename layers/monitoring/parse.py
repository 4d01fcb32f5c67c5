"""Request bodies of ``POST /api/readings`` → numpy columns plus per-row errors.

A JSON array of objects, NDJSON or CSV with a header, each row ``point_id, ts, value``; ``ts``
is ISO 8601 with an offset. A malformed row is that row's error, never a failed batch.
"""

from __future__ import annotations

import csv
import datetime as dt
import io
import json
import math
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from numpy.typing import NDArray

REQUIRED = ("point_id", "ts", "value")
INT32_MAX = 2**31 - 1
EPOCH = dt.datetime(1970, 1, 1, tzinfo=dt.UTC)


class BodyError(ValueError):
    """The body as a whole cannot be read (not JSON, not an array, no CSV header)."""


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
    x = float(v)
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
    if not math.isfinite(x):
        raise ValueError("value: must be finite")
    return x


def _ts(value: Any) -> int:
    if not isinstance(value, str):
        raise ValueError("ts: must be an ISO 8601 string")
    try:
        t = dt.datetime.fromisoformat(value)
    except ValueError:
        raise ValueError("ts: not an ISO 8601 date-time") from None
    if t.tzinfo is None:
        raise ValueError("ts: needs a UTC offset (e.g. Z or +08:00)")
    return (t - EPOCH) // dt.timedelta(microseconds=1)


def _rows(items: list[Any]) -> Rows:
    n = len(items)
    idx, pid, t = np.zeros(n, np.int64), np.zeros(n, np.int64), np.zeros(n, np.int64)
    val = np.zeros(n)
    errors: list[tuple[int, str]] = []
    k = 0
    for i, row in enumerate(items):
        try:
            if not isinstance(row, dict):
                raise ValueError("row: must be an object")
            missing = [f for f in REQUIRED if f not in row]
            if missing:
                raise ValueError(f"{missing[0]}: required")
            pid[k], t[k], val[k] = _point(row["point_id"]), _ts(row["ts"]), _value(row["value"])
        except (ValueError, TypeError, OverflowError) as exc:
            errors.append((i, str(exc)))
            continue
        idx[k] = i
        k += 1
    return Rows(idx[:k], pid[:k], t[:k], val[:k], errors, n)


def parse_body(body: bytes, content_type: str) -> Rows:
    """Dispatch on the media type: ``text/csv``, ``application/(x-)ndjson``, else JSON."""
    kind = content_type.split(";")[0].strip().lower()
    try:
        text = body.decode("utf-8-sig")
    except UnicodeDecodeError:
        raise BodyError("body: not UTF-8") from None
    if kind == "text/csv":
        reader = csv.DictReader(io.StringIO(text))
        if not reader.fieldnames or not set(REQUIRED) <= set(reader.fieldnames):
            raise BodyError(f"body: CSV header must name {', '.join(REQUIRED)}")
        return _rows(list(reader))
    if kind in ("application/x-ndjson", "application/ndjson", "application/jsonl"):
        items: list[Any] = []
        for line in text.splitlines():
            if line.strip():
                try:
                    items.append(json.loads(line))
                except json.JSONDecodeError:
                    items.append(None)  # reported as that row's error
        return _rows(items)
    try:
        doc = json.loads(text)
    except json.JSONDecodeError as exc:
        raise BodyError(f"body: not valid JSON ({exc.msg})") from None
    if not isinstance(doc, list):
        raise BodyError("body: must be a JSON array of readings (or NDJSON / CSV)")
    return _rows(doc)
