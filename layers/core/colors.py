"""The four risk levels and their display colours — the one home for both.

Red / orange / yellow / blue = 重大 major / 较大 high / 一般 moderate / 低 low (docs/domain.md §2);
grey marks "no data / offline" where a live value is missing.
"""

from __future__ import annotations

from typing import Final, Literal

RiskColor = Literal["red", "orange", "yellow", "blue"]
LiveColor = Literal["red", "orange", "yellow", "blue", "grey"]

#: Ordered worst first, so ``RISK_COLORS.index(c)`` ranks severity.
RISK_COLORS: Final[tuple[RiskColor, ...]] = ("red", "orange", "yellow", "blue")
LIVE_COLORS: Final[tuple[LiveColor, ...]] = ("red", "orange", "yellow", "blue", "grey")

DISPLAY_HEX: Final[dict[str, str]] = {
    "red": "#E02020",
    "orange": "#FF8C00",
    "yellow": "#FFD700",
    "blue": "#1E6FD9",
    "grey": "#9E9E9E",
}


def worst(*colors: RiskColor | None) -> RiskColor | None:
    """The most severe of the given colours (never an average); ``None`` when none given."""
    present = [c for c in colors if c is not None]
    if not present:
        return None
    return min(present, key=RISK_COLORS.index)
