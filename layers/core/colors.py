"""The four risk levels and their display colours — the one home for both.

Red / orange / yellow / blue = 重大 major / 较大 high / 一般 moderate / 低 low (docs/domain.md §2).
Grey is not a fifth level: on a rated layer (enterprises, hazard sources) it says "not assessed"
— an input is missing, so no level can be claimed (blue would claim "assessed, low",
docs/domain.md §2.2); on a live layer (monitoring points) it says "offline / no data". Wherever
colours are combined (clusters, hexagons) grey loses to any real colour.
"""

from __future__ import annotations

from typing import Final, Literal

RiskColor = Literal["red", "orange", "yellow", "blue"]
LiveColor = Literal["red", "orange", "yellow", "blue", "grey"]
#: What a rated layer stores (enterprises, hazard sources): a level, or grey for "not assessed".
RatedColor = LiveColor

#: Ordered worst first, so ``RISK_COLORS.index(c)`` ranks severity.
RISK_COLORS: Final[tuple[RiskColor, ...]] = ("red", "orange", "yellow", "blue")
LIVE_COLORS: Final[tuple[LiveColor, ...]] = ("red", "orange", "yellow", "blue", "grey")
#: Not assessed (rated layers) or offline (live layers); ranks after every real colour.
GREY: Final[LiveColor] = "grey"

DISPLAY_HEX: Final[dict[str, str]] = {
    "red": "#E02020",
    "orange": "#FF8C00",
    "yellow": "#FFD700",
    "blue": "#1E6FD9",
    "grey": "#9E9E9E",
}

#: What each colour means, for legends (the TileJSON ``legend``, the style's metadata).
MEANING: Final[dict[str, str]] = {
    "red": "major 重大",
    "orange": "high 较大",
    "yellow": "moderate 一般",
    "blue": "low 低",
    "grey": "not assessed / offline 未评估/离线",
}


def worst(*colors: RiskColor | None) -> RiskColor | None:
    """The most severe of the given colours (never an average); ``None`` when none given."""
    present = [c for c in colors if c is not None]
    if not present:
        return None
    return min(present, key=RISK_COLORS.index)
