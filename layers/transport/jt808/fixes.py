"""Decoded location reports → the tanker ingest's rows (``layers/transport/parse.Rows``), so a
terminal's fixes take exactly the path of ``POST /api/positions`` (``layers/transport/ingest``).

Speed is km/h (the protocol's 0.1 km/h units already divided), heading the direction, ``ts``
the report's time in UTC, ``alarm_bits`` the alarm flags (``positions.alarm_bits``, int4: the
u32 is stored with its bit pattern, so bit 31 reads back negative). The status flags beyond
the ones decoding needs (south, west, positioned) have no column and are not stored.
"""

from __future__ import annotations

import struct
from collections.abc import Sequence

import numpy as np

from layers.transport.jt808 import messages as m
from layers.transport.jt808.frame import Malformed
from layers.transport.jt808.messages import Location
from layers.transport.parse import Rows

#: The fixed 28 bytes of a location report (JT/T 808-2013 table 23), big-endian.
_FIXED = np.dtype(
    [
        ("alarm", ">u4"),
        ("status", ">u4"),
        ("lat", ">u4"),
        ("lon", ">u4"),
        ("altitude", ">u2"),
        ("speed", ">u2"),
        ("direction", ">u2"),
        ("time", "u1", (6,)),
    ]
)
assert _FIXED.itemsize == m.LOCATION_SIZE
#: A BCD byte's value (0–99), or 255 when a nibble is above 9.
_BCD = np.array(
    [(b >> 4) * 10 + (b & 15) if b >> 4 <= 9 and b & 15 <= 9 else 255 for b in range(256)],
    dtype=np.int64,
)


def signed32(value: int) -> int:
    """A u32 flag word as the int4 that holds its bits."""
    return value - (1 << 32) if value >= 1 << 31 else value


def to_rows(items: Sequence[tuple[int, Location]]) -> Rows:
    """``(vehicle_id, location)`` pairs → rows; a location with an ``error`` is a per-row
    error at its position in ``items``."""
    good = [(k, v, loc) for k, (v, loc) in enumerate(items) if loc.error is None]
    errors = [(k, loc.error) for k, (_, loc) in enumerate(items) if loc.error is not None]
    return Rows(
        index=np.array([k for k, _, _ in good], dtype=np.int64),
        vehicle_id=np.array([v for _, v, _ in good], dtype=np.int64),
        t=np.array([loc.t_us for _, _, loc in good], dtype=np.int64),
        lon=np.array([loc.lon for _, _, loc in good], dtype=np.float64),
        lat=np.array([loc.lat for _, _, loc in good], dtype=np.float64),
        speed=np.array([loc.speed_kmh for _, _, loc in good], dtype=np.float64),
        heading=np.array([loc.direction for _, _, loc in good], dtype=np.float64),
        alarm_bits=np.array([signed32(loc.alarm) for _, _, loc in good], dtype=np.int64),
        errors=errors,
        total=len(items),
    )


def concat_rows(parts: Sequence[Rows]) -> Rows:
    """Several submissions' rows as one batch: each part's ``index`` (and errors) shifted
    past the parts before it, so answers split back by position."""
    offsets = np.cumsum([0] + [p.total for p in parts])
    return Rows(
        index=np.concatenate([p.index + off for p, off in zip(parts, offsets, strict=False)]),
        vehicle_id=np.concatenate([p.vehicle_id for p in parts]),
        t=np.concatenate([p.t for p in parts]),
        lon=np.concatenate([p.lon for p in parts]),
        lat=np.concatenate([p.lat for p in parts]),
        speed=np.concatenate([p.speed for p in parts]),
        heading=np.concatenate([p.heading for p in parts]),
        alarm_bits=np.concatenate([p.alarm_bits for p in parts]),
        errors=[
            (k + int(off), e) for p, off in zip(parts, offsets, strict=False) for k, e in p.errors
        ],
        total=int(offsets[-1]),
    )


def batch_rows(vehicle_id: int, body: bytes) -> Rows:
    """A 0x0704 body straight to rows, every item's fixed part decoded at once with numpy
    (per-report objects cost more than the ingest of the fix). Same outcome as
    ``messages.decode_batch`` + ``to_rows``: ``Malformed`` for a broken layout, a per-item
    error for an unreadable item, an impossible time or no GNSS fix — those few items are
    decoded one by one, so their messages are exactly the single report's."""
    if len(body) < 3:
        raise Malformed("batch body shorter than 3 bytes")
    count = struct.unpack_from(">H", body, 0)[0]
    errors: list[tuple[int, str]] = []
    if len(body) == 3 + count * (2 + m.LOCATION_SIZE):  # the usual: every item 28 bytes
        grid = np.frombuffer(body, np.uint8, offset=3).reshape(count, 2 + m.LOCATION_SIZE)
        if ((grid[:, 0] == 0) & (grid[:, 1] == m.LOCATION_SIZE)).all():
            rec = np.ascontiguousarray(grid[:, 2:]).view(_FIXED).reshape(count)
            at = 5 + np.arange(count, dtype=np.int64) * (2 + m.LOCATION_SIZE)
            return _rows(vehicle_id, body, rec, np.arange(count, dtype=np.int64), at, errors)
    pos, starts = 3, []
    for k in range(count):
        if pos + 2 > len(body):
            raise Malformed(f"batch says {count} items, the body ends in item {k}")
        size = (body[pos] << 8) | body[pos + 1]
        pos += 2
        if pos + size > len(body):
            raise Malformed(f"batch item {k} of {size} bytes runs past the body")
        if size < m.LOCATION_SIZE:
            errors.append(
                (k, f"location body of {size} bytes, at least {m.LOCATION_SIZE} expected")
            )
        else:
            starts.append((k, pos))
        pos += size
    if pos != len(body):
        raise Malformed(f"batch has {len(body) - pos} bytes after its {count} items")
    items = np.array([k for k, _ in starts], dtype=np.int64)
    at = np.array([p for _, p in starts], dtype=np.int64)
    raw = np.frombuffer(body, np.uint8)[at[:, None] + np.arange(m.LOCATION_SIZE)]
    rec = np.ascontiguousarray(raw).view(_FIXED).reshape(len(at))
    return _rows(vehicle_id, body, rec, items, at, errors)


def _rows(
    vehicle_id: int,
    body: bytes,
    rec: np.ndarray,
    items: np.ndarray,
    at: np.ndarray,
    errors: list[tuple[int, str]],
) -> Rows:
    """Rows from the items' fixed parts ``rec`` (item numbers ``items``, at byte ``at``)."""
    count = int(struct.unpack_from(">H", body, 0)[0])
    status = rec["status"].astype(np.int64)
    digits = _BCD[rec["time"]]  # YY MM DD hh mm ss; 255 where a nibble is above 9
    good = (digits < 100).all(axis=1) & (status & m.POSITIONED != 0)
    good &= (digits[:, 3] <= 23) & (digits[:, 4] <= 59) & (digits[:, 5] <= 59)
    day = digits[:, 0] * 10_000 + digits[:, 1] * 100 + digits[:, 2]
    day_us = np.zeros(len(at), dtype=np.int64)
    for d in np.unique(day[good]).tolist():  # a stream of fixes names one day or two
        try:
            day_us[day == d] = m.local_day_us(f"{d:06d}")
        except ValueError:
            good &= day != d
    t = day_us + ((digits[:, 3] * 60 + digits[:, 4]) * 60 + digits[:, 5]) * 1_000_000
    t -= m.CST_US
    good &= t >= m.EARLIEST_US
    # The rare doubtful item: decoded alone, for the single report's exact message (and its
    # values, should it be fine after all).
    fixed: list[tuple[int, Location]] = []
    for j in np.flatnonzero(~good).tolist():
        loc = m.decode_location(body[int(at[j]) : int(at[j]) + m.LOCATION_SIZE])
        if loc.error is not None:
            errors.append((int(items[j]), loc.error))
        else:
            fixed.append((int(items[j]), loc))
    pick = slice(None) if not errors and not fixed and len(t) == count else good
    lat = rec["lat"][pick] / 1e6
    lon = rec["lon"][pick] / 1e6
    lat[status[pick] & m.SOUTH != 0] *= -1
    lon[status[pick] & m.WEST != 0] *= -1
    rows = Rows(
        index=items[pick],
        vehicle_id=np.full(len(lat), vehicle_id, dtype=np.int64),
        t=t[pick],
        lon=lon,
        lat=lat,
        speed=rec["speed"][pick] / 10,
        heading=rec["direction"][pick].astype(np.float64),
        # the u32 as the int4 that holds its bits (``signed32``): a wrapping cast
        alarm_bits=rec["alarm"][pick].astype(np.uint32).view(np.int32).astype(np.int64),
        errors=sorted(errors),
        total=count,
    )
    if fixed:  # back in item order with the rest
        extra = to_rows([(vehicle_id, loc) for _, loc in fixed])
        extra.index = np.array([k for k, _ in fixed], dtype=np.int64)
        rows = _merge(rows, extra)
    return rows


def _merge(a: Rows, b: Rows) -> Rows:
    """Two parts of one batch's rows (their own ``index`` values), sorted by item."""
    order = np.argsort(np.concatenate([a.index, b.index]), kind="stable")

    def col(name: str) -> np.ndarray:
        return np.concatenate([getattr(a, name), getattr(b, name)])[order]

    return Rows(
        index=col("index"),
        vehicle_id=col("vehicle_id"),
        t=col("t"),
        lon=col("lon"),
        lat=col("lat"),
        speed=col("speed"),
        heading=col("heading"),
        alarm_bits=col("alarm_bits"),
        errors=a.errors,
        total=a.total,
    )
