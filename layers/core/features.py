"""What validation yields: a good record, or problems that name the row, the field and why.

Shared by ``POST`` and imports (``layers/imports``) and by the one insert path
(``layers/collections/write.py``); nothing here knows about HTTP.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from layers.core.errors import BadField


@dataclass(frozen=True)
class Problem:
    """One thing wrong with one feature or row: where (index), what (field) and why (reason)."""

    index: int | None  # 0-based position in the batch; None when it concerns the whole batch
    field: str
    reason: str
    conflict: bool = False  # a duplicate of something that exists, not an impossible value


class FeaturesRejected(Exception):
    """The batch cannot be stored as given; nothing was stored."""

    def __init__(self, problems: list[Problem]) -> None:
        self.problems = sorted(problems, key=lambda p: (p.index is None, p.index or 0, p.field))
        first = self.problems[0] if self.problems else Problem(None, "body", "rejected")
        where = "" if first.index is None else f"feature {first.index}: "
        more = f" (and {len(self.problems) - 1} more)" if len(self.problems) > 1 else ""
        super().__init__(f"{where}{first.field}: {first.reason}{more}")

    @property
    def is_conflict(self) -> bool:
        """Only duplicates: the client's data is fine but clashes with what is stored (409)."""
        return bool(self.problems) and all(p.conflict for p in self.problems)


class MalformedPayload(BadField, ValueError):
    """The body is not the shape we accept at all (not a Feature, not an object …)."""


@dataclass
class Record:
    """A validated feature: stored column values, geometries as WGS 84 shapely objects."""

    index: int
    values: dict[str, Any] = field(default_factory=dict)
