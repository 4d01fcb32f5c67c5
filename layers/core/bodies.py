"""Batch bodies of the ingest endpoints (tanker fixes, sensor readings): one parser for the
three accepted forms, one loop from rows to numpy columns with per-row errors, and one rule
for timestamps, so both paths refuse the same things."""

from __future__ import annotations

import csv
import datetime as dt
import io
import json
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, Final, Literal, TypeVar

import numpy as np
from numpy.typing import DTypeLike

from layers.core.errors import BadRequest, FieldError

EPOCH: Final = dt.datetime(1970, 1, 1, tzinfo=dt.UTC)
#: Accepted ``ts`` range. Rows land in daily partitions, and a year-9999 time (or one that
#: becomes year 10000 in UTC) cannot even be named as a partition: refuse it as a row error.
TS_MIN: Final = dt.datetime(2000, 1, 1, tzinfo=dt.UTC)
TS_MAX: Final = dt.datetime(2100, 1, 1, tzinfo=dt.UTC)
NDJSON_TYPES: Final = ("application/x-ndjson", "application/ndjson", "application/jsonl")
INT32_MAX: Final = 2**31 - 1


class BodyError(BadRequest, ValueError):
    """The body as a whole cannot be read (not JSON, not an array, no CSV header): a 400
    naming ``body``, the message being the reason."""

    def __init__(self, message: str) -> None:
        super().__init__(message, [FieldError("body", message)])


def body_items(body: bytes, content_type: str, required: Sequence[str], noun: str) -> list[Any]:
    """The rows of a body by media type: ``text/csv``, NDJSON, else a JSON array. A line of
    NDJSON that is not JSON becomes ``None``, reported later as that row's error."""
    kind = content_type.split(";")[0].strip().lower()
    try:
        text = body.decode("utf-8-sig")
    except UnicodeDecodeError:
        raise BodyError("body: not UTF-8") from None
    if kind == "text/csv":
        reader = csv.DictReader(io.StringIO(text))
        if not reader.fieldnames or not set(required) <= set(reader.fieldnames):
            raise BodyError(f"body: CSV header must name {', '.join(required)}")
        return list(reader)
    if kind in NDJSON_TYPES:
        items: list[Any] = []
        for line in text.splitlines():
            if not line.strip():
                continue
            try:
                items.append(json.loads(line))
            except (json.JSONDecodeError, RecursionError):
                items.append(None)
        return items
    try:
        doc = json.loads(text)
    except json.JSONDecodeError as exc:
        raise BodyError(f"body: not valid JSON ({exc.msg})") from None
    except RecursionError:
        raise BodyError("body: JSON nested too deeply") from None
    if not isinstance(doc, list):
        raise BodyError(f"body: must be a JSON array of {noun} (or NDJSON / CSV)")
    return doc


def timestamp_us(value: Any) -> int:
    """An ISO 8601 time with an explicit offset as µs since the epoch (naive times refused:
    a terminal's local clock is not guessed)."""
    if not isinstance(value, str):
        raise ValueError("ts: must be an ISO 8601 string")
    try:
        t = dt.datetime.fromisoformat(value)
    except ValueError:
        raise ValueError("ts: not an ISO 8601 date-time") from None
    if t.tzinfo is None:
        raise ValueError("ts: needs a UTC offset (e.g. Z or +08:00)")
    if not TS_MIN <= t < TS_MAX:
        raise ValueError(f"ts: outside {TS_MIN:%Y}..{TS_MAX.year - 1}")
    return (t - EPOCH) // dt.timedelta(microseconds=1)


T = TypeVar("T")


@dataclass(frozen=True)
class Field:
    """One column of a body's rows as the fast path of ``read_columns`` reads it: an
    ``integer`` in [``low``, INT32_MAX], a finite ``number`` or an ISO 8601 ``ts``
    (``timestamp_us``); ``default`` when absent or null (None: required)."""

    name: str
    kind: Literal["integer", "number", "ts"]
    low: int = 0
    default: float | None = None


def _fast_columns(items: list[Any], fields: Sequence[Field]) -> list[np.ndarray] | None:
    """The columns of a batch whose every row is valid and plain — an object whose numbers
    are JSON numbers — read one column at a time; None as soon as any row needs the
    row-by-row path (a string number, a boolean, a missing field, a bad value), which then
    reads every row and names each error. Both paths accept the same values, so which one ran
    never changes a result; this one only skips a Python call per value (2,000 fixes: ~1 ms
    instead of ~4)."""
    if not all(type(r) is dict for r in items):
        return None
    out: list[np.ndarray] = []
    for f in fields:
        absent = None
        if f.default is None:
            try:
                col = [r[f.name] for r in items]
            except KeyError:
                return None
        else:
            col = [r.get(f.name) for r in items]
            if all(x is None for x in col):
                out.append(np.full(len(items), f.default))
                continue
            absent = np.array([x is None for x in col])
            col = [f.default if x is None else x for x in col]
        if f.kind == "ts":
            if not all(type(x) is str for x in col):
                return None
            try:
                out.append(np.array([timestamp_us(x) for x in col], dtype=np.int64))
            except ValueError:
                return None
            continue
        plain = (int,) if f.kind == "integer" else (int, float)  # bool is not int here
        if not all(type(x) in plain for x in col):
            return None
        try:
            a = np.array(col, dtype=np.int64 if f.kind == "integer" else np.float64)
        except OverflowError:
            return None
        bad = ((a < f.low) | (a > INT32_MAX)) if f.kind == "integer" else ~np.isfinite(a)
        if absent is not None:
            bad &= ~absent  # the default stands for "not given" (NaN heading)
        if bad.any():
            return None
        out.append(a)
    return out


def read_columns(
    body: bytes,
    content_type: str,
    required: Sequence[str],
    noun: str,
    convert: Callable[[dict[str, Any]], tuple[Any, ...]],
    dtypes: Sequence[DTypeLike],
    into: Callable[..., T],
    fields: Sequence[Field] = (),
) -> T:
    """The rows of a body (see ``body_items``) through ``convert`` (one object → one value per
    column, ``ValueError`` naming the field when a value is wrong) into numpy columns of
    ``dtypes``, handed over as ``into(index, *columns, errors=…, total=…)``: ``index`` maps
    each readable row to its position in the body (0-based), ``errors`` are the other rows'
    ``(position, message)`` — a row that is not an object, lacks a ``required`` field or fails
    ``convert`` is that row's error, never a failed batch — and ``total`` counts all rows.
    ``fields`` (the columns in ``convert``'s order, read by the same rules) enable the fast
    path for batches without a single bad row (``_fast_columns``)."""
    items = body_items(body, content_type, required, noun)
    fast = _fast_columns(items, fields) if fields and items else None
    if fast is not None:
        columns = [np.asarray(c, dtype=d) for c, d in zip(fast, dtypes, strict=True)]
        index_all = np.arange(len(items), dtype=np.int64)
        return into(index_all, *columns, errors=[], total=len(items))
    index: list[int] = []
    values: list[tuple[Any, ...]] = []
    errors: list[tuple[int, str]] = []
    for i, row in enumerate(items):
        try:
            if not isinstance(row, dict):
                raise ValueError("row: must be an object")
            missing = [f for f in required if f not in row]
            if missing:
                raise ValueError(f"{missing[0]}: required")
            values.append(convert(row))
        except (ValueError, TypeError, OverflowError) as exc:
            errors.append((i, str(exc)))
            continue
        index.append(i)
    by_column = list(zip(*values, strict=True)) if values else [() for _ in dtypes]
    columns = [np.array(c, dtype=d) for c, d in zip(by_column, dtypes, strict=True)]
    return into(np.array(index, dtype=np.int64), *columns, errors=errors, total=len(items))
