"""numpy arrays as query parameters, sent as binary PostgreSQL arrays.

Why: the ingest and the warning models pass per-fix columns (2,000 values a batch, a dozen
arrays) to ``unnest(...)``. psycopg adapts a Python list element by element to the *text*
array format; a list of 2,000 floats costs ~1.7 ms that way, and it was the largest single
cost of a batch in the server process (profiled: ~30 % of its CPU). A numpy array of a fixed-
width type already holds the values; the binary array format only interleaves a length before
each big-endian value, which one structured-array copy produces (~20 µs for 2,000 values).

Registered on psycopg's global adapters at import (so every connection made afterwards, and
the pools', dump ``np.ndarray`` this way); lists keep psycopg's own dumpers. Only 1-D arrays of
int16/32/64, float32/64 and bool, with no NULLs: a column with missing values stays a list.
The SQL casts as before (``%(v)s::int4[]``); an int64 array arrives as int8[] and the cast
narrows it, so callers need not mind the width.

Format (PostgreSQL's ``array_send``): int32 dimensions (1, or 0 when empty), int32 has-null
flag (0), the element type's OID, then per dimension int32 length and int32 lower bound (1);
then per element an int32 byte length followed by the value in network byte order.
"""

from __future__ import annotations

from typing import Any, Final

import numpy as np
import psycopg
from psycopg.adapt import Dumper
from psycopg.pq import Format

#: numpy dtype kind+size → (element OID, array OID, big-endian wire dtype).
_TYPES: Final[dict[str, tuple[int, int, str]]] = {
    "i2": (21, 1005, ">i2"),
    "i4": (23, 1007, ">i4"),
    "i8": (20, 1016, ">i8"),
    "f4": (700, 1021, ">f4"),
    "f8": (701, 1022, ">f8"),
    "b1": (16, 1000, "?"),
}


def _key(a: np.ndarray) -> str:
    return f"{a.dtype.kind}{a.dtype.itemsize}"


def encode(a: np.ndarray) -> bytes:
    """``a`` (1-D, a type of ``_TYPES``) in PostgreSQL's binary array format."""
    key = _key(a)
    if a.ndim != 1 or key not in _TYPES:
        raise TypeError(f"cannot send a {a.ndim}-D {a.dtype} array as a PostgreSQL array")
    elem_oid, _, wire = _TYPES[key]
    n = len(a)
    if n == 0:
        return np.array([0, 0, elem_oid], dtype=">i4").tobytes()
    head = np.array([1, 0, elem_oid, n, 1], dtype=">i4").tobytes()
    body = np.empty(n, dtype=[("len", ">i4"), ("value", wire)])
    body["len"] = a.dtype.itemsize
    body["value"] = a
    return head + body.tobytes()


class _ArrayDumper(Dumper):
    """One instance per element type (``upgrade``), so the parameter's OID is exact."""

    format = Format.BINARY

    def __init__(self, cls: type, context: Any = None, key: str = "f8") -> None:
        super().__init__(cls, context)
        self.oid = _TYPES[key][1]

    def get_key(self, obj: Any, format: Any) -> Any:
        return (self.cls, _key(obj))

    def upgrade(self, obj: Any, format: Any) -> Dumper:
        key = _key(obj)
        if key not in _TYPES:
            raise psycopg.DataError(f"cannot send a {obj.dtype} array as a PostgreSQL array")
        return _ArrayDumper(self.cls, None, key)

    def dump(self, obj: Any) -> bytes:
        return encode(obj)


psycopg.adapters.register_dumper(np.ndarray, _ArrayDumper)
