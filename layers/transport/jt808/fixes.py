"""Decoded location reports → the tanker ingest's rows (``layers/transport/parse.Rows``), so a
terminal's fixes take exactly the path of ``POST /api/positions`` (``layers/transport/ingest``).

Speed is km/h (the protocol's 0.1 km/h units already divided), heading the direction, ``ts``
the report's time in UTC, ``alarm_bits`` the alarm flags (``positions.alarm_bits``, int4: the
u32 is stored with its bit pattern, so bit 31 reads back negative). The status flags beyond
the ones decoding needs (south, west, positioned) have no column and are not stored.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from layers.transport.jt808.messages import Location
from layers.transport.parse import Rows


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
