"""Risk units inside a site (风险分级管控): LEC and LS assessments → four colours.

- LEC (作业条件危险性评价): D = L × E × C with L, E, C from fixed scales;
  D > 320 red, 160 < D ≤ 320 orange, 70 < D ≤ 160 yellow, D ≤ 70 blue.
- LS matrix (5 × 5): R = L × S; 20–25 red, 9–16 orange, 4–8 yellow, 1–3 blue.
Provinces differ at the edges, so the thresholds are a value object callers may replace.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Final

from layers.core.colors import RiskColor
from layers.core.errors import InvalidField

LEC_LIKELIHOOD: Final = (10, 6, 3, 1, 0.5, 0.2, 0.1)
LEC_EXPOSURE: Final = (10, 6, 3, 2, 1, 0.5)
LEC_CONSEQUENCE: Final = (100, 40, 15, 7, 3, 1)
LS_SCALE: Final = (1, 2, 3, 4, 5)


class UnitAssessmentError(InvalidField, ValueError):
    """A value missing or off the LEC / LS scale; ``field`` names it (a 422)."""


@dataclass(frozen=True)
class LecThresholds:
    """Strict lower bounds: D above ``red_above`` is red, and so on (docs/domain.md §2.3)."""

    red_above: float = 320
    orange_above: float = 160
    yellow_above: float = 70


@dataclass(frozen=True)
class LsThresholds:
    """Inclusive lower bounds of R = L × S."""

    red_from: int = 20
    orange_from: int = 9
    yellow_from: int = 4


def _require(field: str, value: float, allowed: tuple[float, ...]) -> None:
    if value not in allowed:
        listed = ", ".join(f"{v:g}" for v in allowed)
        raise UnitAssessmentError(field, f"{value:g} is not on the scale ({listed})")


def lec(
    likelihood: float,
    exposure: float,
    consequence: float,
    thresholds: LecThresholds | None = None,
) -> tuple[float, RiskColor]:
    """D = L × E × C and its colour."""
    _require("likelihood", likelihood, LEC_LIKELIHOOD)
    _require("exposure", exposure, LEC_EXPOSURE)
    _require("consequence", consequence, LEC_CONSEQUENCE)
    t = thresholds or LecThresholds()
    d = round(likelihood * exposure * consequence, 6)  # 0.1 × 3 × … must compare exactly
    if d > t.red_above:
        return d, "red"
    if d > t.orange_above:
        return d, "orange"
    if d > t.yellow_above:
        return d, "yellow"
    return d, "blue"


def ls(
    likelihood: int, severity: int, thresholds: LsThresholds | None = None
) -> tuple[int, RiskColor]:
    """R = L × S on the 5 × 5 matrix and its colour."""
    _require("likelihood", likelihood, LS_SCALE)
    _require("severity", severity, LS_SCALE)
    t = thresholds or LsThresholds()
    r = int(likelihood * severity)
    if r >= t.red_from:
        return r, "red"
    if r >= t.orange_from:
        return r, "orange"
    if r >= t.yellow_from:
        return r, "yellow"
    return r, "blue"
