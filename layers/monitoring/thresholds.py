"""Set points per monitoring-point kind — the one place GB/T 50493-2019's figures live.

Every kind is reduced to four set points: high level 1/2 and low level 1/2 (NaN = none), so
the evaluator classifies a whole batch with a few numpy comparisons whatever the mix of kinds.

- Flammable gas (% LEL): level 1 at the point's ``level1`` (≤ 25 % LEL), level 2 at ``level2``
  (≤ 50 % LEL); the standard's ceilings are the defaults when a point carries none.
- Toxic gas: level 1/2 at the point's ``level1``/``level2`` (100 % / 200 % OEL in its unit).
- Oxygen (% vol): low 19.5 via ``limit_l``, high 23.5 via ``limit_h``; LL/HH when given.
- Temperature, pressure, level, flow, leak: the unit's own H/HH and L/LL.
"""

from __future__ import annotations

import math
from typing import Final

import numpy as np
from numpy.typing import NDArray

FLAMMABLE_LEVEL1_LEL: Final = 25.0
FLAMMABLE_LEVEL2_LEL: Final = 50.0
OXYGEN_LOW: Final = 19.5
OXYGEN_HIGH: Final = 23.5

NAN = math.nan


def _f(v: float | None, default: float = NAN) -> float:
    return default if v is None else float(v)


def set_points(
    kind: str,
    level1: float | None,
    level2: float | None,
    limit_h: float | None,
    limit_hh: float | None,
    limit_l: float | None,
    limit_ll: float | None,
) -> tuple[float, float, float, float]:
    """``(high1, high2, low1, low2)`` for one point; NaN where the kind has no such limit."""
    if kind == "gas_flammable":
        return _f(level1, FLAMMABLE_LEVEL1_LEL), _f(level2, FLAMMABLE_LEVEL2_LEL), NAN, NAN
    if kind == "gas_toxic":
        h1 = _f(level1)
        return h1, _f(level2, 2 * h1), NAN, NAN
    if kind == "oxygen":
        return _f(limit_h, OXYGEN_HIGH), _f(limit_hh), _f(limit_l, OXYGEN_LOW), _f(limit_ll)
    return _f(limit_h), _f(limit_hh), _f(limit_l), _f(limit_ll)


def levels(v: NDArray[np.float64], sp: NDArray[np.float64], band: float = 0.0) -> NDArray[np.int8]:
    """Alarm level 0/1/2 of each value against its row of set points ``sp`` (n × 4).

    ``band`` > 0 widens every set point towards normal by that share of itself: the level a
    value still *holds* (hysteresis), as opposed to the level it *raises* (``band`` = 0).
    """
    h1, h2, l1, l2 = (sp[:, k] for k in range(4))
    if band:
        h1, h2 = h1 - band * np.abs(h1), h2 - band * np.abs(h2)
        l1, l2 = l1 + band * np.abs(l1), l2 + band * np.abs(l2)
    with np.errstate(invalid="ignore"):
        two = (v >= h2) | (v <= l2)
        one = (v >= h1) | (v <= l1)
    return np.where(two, 2, np.where(one, 1, 0)).astype(np.int8)
