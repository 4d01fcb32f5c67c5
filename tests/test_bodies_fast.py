"""The ingest bodies' fast path (layers/core/bodies.py ``_fast_columns``) reads exactly what the
row-by-row path reads: for plain batches it runs and gives the same columns; for every kind of
row it does not handle it steps aside, and the row-by-row path names the errors."""

from __future__ import annotations

import json
import random
from typing import Any

import numpy as np
import pytest

from layers.core import bodies
from layers.monitoring import parse as readings
from layers.transport import parse as fixes


def _fix(i: int) -> dict[str, Any]:
    rng = random.Random(i)
    row: dict[str, Any] = {
        "vehicle_id": rng.randint(0, 2**31 - 1),
        "ts": f"2026-11-{rng.randint(1, 28):02d}T{rng.randint(0, 23):02d}:{i % 60:02d}:07"
        + rng.choice(["Z", "+08:00", ".250000Z", "-03:30"]),
        "lon": rng.uniform(-180, 180),
        "lat": rng.choice([rng.uniform(-90, 90), 30]),  # ints are numbers too
        "speed_kmh": rng.choice([0, 59.5, 80]),
    }
    if i % 3:
        row["heading"] = rng.choice([0, 359, 180.5, None])
    if i % 4:
        row["alarm_bits"] = rng.choice([0, 1, 2**31 - 1, None])
    return row


def _slow(body: bytes, parse: Any) -> Any:
    """The row-by-row path alone (no fields: no fast path)."""
    return bodies.read_columns(
        body, "application/json", parse.REQUIRED, "rows", parse._fix, parse._DTYPES, parse.Rows
    )


def _same(a: Any, b: Any) -> None:
    assert a.errors == b.errors and a.total == b.total
    for name in a.__dataclass_fields__:
        x, y = getattr(a, name), getattr(b, name)
        if isinstance(x, np.ndarray):
            assert x.dtype == y.dtype, name
            np.testing.assert_array_equal(x, y, err_msg=name)


def test_plain_batch_takes_the_fast_path_and_reads_the_same() -> None:
    rows = [_fix(i) for i in range(500)]
    items = json.loads(json.dumps(rows))
    assert bodies._fast_columns(items, fixes._FIELDS) is not None
    body = json.dumps(rows).encode()
    got = fixes.parse_body(body, "application/json")
    _same(got, _slow(body, fixes))
    assert got.total == 500 and not got.errors
    assert np.isnan(got.heading[0]) and got.alarm_bits[0] == 0  # row 0: neither given


ODD_ROWS: list[tuple[str, Any, str | None]] = [
    # (field, value, the row-by-row error or None when the row is fine that way too)
    ("vehicle_id", "12", None),  # a string number: accepted, by the slow path
    ("vehicle_id", 12.0, None),
    ("vehicle_id", True, "vehicle_id: must be an integer"),
    ("vehicle_id", -1, "vehicle_id: must be an integer between 0 and 2147483647"),
    ("vehicle_id", 2**31, "vehicle_id: must be an integer between 0 and 2147483647"),
    ("vehicle_id", 10**30, "vehicle_id: must be an integer between 0 and 2147483647"),
    ("vehicle_id", 10**400, "vehicle_id: must be an integer between 0 and 2147483647"),
    ("lon", "121.5", None),
    ("lon", None, "lon: must be a number"),
    ("lon", float("nan"), "lon: must be finite"),
    ("lat", 10**400, "lat: must be finite"),
    ("speed_kmh", False, "speed_kmh: must be a number"),
    ("heading", "", None),
    ("alarm_bits", 1.5, "alarm_bits: must be an integer between 0 and 2147483647"),
    ("ts", "2026-11-05T06:00:00", "ts: needs a UTC offset (e.g. Z or +08:00)"),
    ("ts", 1700000000, "ts: must be an ISO 8601 string"),
    ("ts", "1999-12-31T23:59:59Z", "ts: outside 2000..2099"),
]


@pytest.mark.parametrize(("field", "value", "error"), ODD_ROWS)
def test_a_row_the_fast_path_does_not_take_is_read_row_by_row(
    field: str, value: Any, error: str | None
) -> None:
    rows = [_fix(i) for i in range(50)]
    rows[7][field] = value
    text = json.dumps(rows)
    assert bodies._fast_columns(json.loads(text), fixes._FIELDS) is None
    got = fixes.parse_body(text.encode(), "application/json")
    _same(got, _slow(text.encode(), fixes))
    if error is None:
        assert got.total == 50 and not got.errors
    else:
        assert got.errors == [(7, error)] and len(got.index) == 49


def test_missing_field_and_non_object_rows_step_aside() -> None:
    rows: list[Any] = [_fix(i) for i in range(10)]
    del rows[2]["lat"]
    rows[5] = [1, 2]
    got = fixes.parse_body(json.dumps(rows).encode(), "application/json")
    assert got.errors == [(2, "lat: required"), (5, "row: must be an object")]
    assert got.index.tolist() == [0, 1, 3, 4, 6, 7, 8, 9]


def test_readings_fast_path_reads_the_same() -> None:
    rows = [
        {"point_id": i + 1, "ts": "2026-11-05T06:00:00+08:00", "value": i / 3} for i in range(100)
    ]
    body = json.dumps(rows).encode()
    assert bodies._fast_columns(json.loads(body), readings._FIELDS) is not None
    got = readings.parse_body(body, "application/json")
    slow = bodies.read_columns(
        body, "application/json", readings.REQUIRED, "readings", readings._reading,
        readings._DTYPES, readings.Rows,
    )  # fmt: skip
    _same(got, slow)
    rows[3]["point_id"] = 0  # point ids start at 1
    got = readings.parse_body(json.dumps(rows).encode(), "application/json")
    assert got.errors == [(3, "point_id: must be an integer between 1 and 2147483647")]
