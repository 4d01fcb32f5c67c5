"""The time window a row of a time-series table may belong to (issue 17 item 3).

A fix or reading is kept for its table's retention (fixes 180 days, readings 400 by default),
then archived and its day's partition dropped. A row older than that, or further ahead of the
server's clock than a small skew, has no partition to go to and must not make one: a terminal
with a reset clock sending "2001-01-01" would otherwise create a partition for 2001, which the
next maintenance would archive and drop again. Such rows are per-row rejections naming ``ts``
and the window; the rest of the batch is stored. This module is the one home of that rule: the
ingest pipeline and every bulk writer (the demo city's seeding) ask it.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field
from typing import Final

import numpy as np
from numpy.typing import NDArray

DEFAULT_RETENTION_DAYS: Final = {"positions": 180, "readings": 400}
DEFAULT_FUTURE_SKEW_S: Final = 300.0
#: What each table's rows are called in messages.
NOUNS: Final = {"positions": "fixes", "readings": "readings"}

_EPOCH: Final = dt.datetime(1970, 1, 1, tzinfo=dt.UTC)


class OutOfWindow(ValueError):
    """A bulk writer asked for a day outside the window (the message names it)."""


def _iso(t: dt.datetime) -> str:
    return t.astimezone(dt.UTC).isoformat(timespec="seconds").replace("+00:00", "Z")


@dataclass(frozen=True)
class TsWindow:
    """Retention per partitioned table (days) and the allowed clock skew ahead of now."""

    retention_days: dict[str, int] = field(default_factory=lambda: dict(DEFAULT_RETENTION_DAYS))
    future_skew_s: float = DEFAULT_FUTURE_SKEW_S

    def retention(self, table: str) -> dt.timedelta:
        return dt.timedelta(days=self.retention_days[table])

    def bounds(self, table: str, now: dt.datetime | None = None) -> tuple[dt.datetime, dt.datetime]:
        """[oldest, latest] accepted time of a row of ``table`` at ``now``."""
        now = now or dt.datetime.now(dt.UTC)
        return now - self.retention(table), now + dt.timedelta(seconds=self.future_skew_s)

    def message(self, table: str, now: dt.datetime | None = None) -> str:
        """The per-row error: names ``ts``, the window and why it is that wide."""
        lo, hi = self.bounds(table, now)
        return (
            f"ts: outside the accepted window {_iso(lo)} .. {_iso(hi)} ({NOUNS[table]} are kept"
            f" {self.retention_days[table]} days; at most {self.future_skew_s:g} s ahead of the"
            " server clock)"
        )

    def inside_us(
        self, table: str, t_us: NDArray[np.int64], now: dt.datetime | None = None
    ) -> NDArray[np.bool_]:
        """Which times (µs since the Unix epoch) lie in the window."""
        lo, hi = self.bounds(table, now)
        lo_us = (lo - _EPOCH) // dt.timedelta(microseconds=1)
        hi_us = (hi - _EPOCH) // dt.timedelta(microseconds=1)
        t = np.asarray(t_us, dtype=np.int64)
        return (t >= lo_us) & (t <= hi_us)

    def day_inside(self, table: str, day: dt.date, now: dt.datetime | None = None) -> bool:
        """Whether any instant of the UTC ``day`` lies in the window (its partition may exist)."""
        lo, hi = self.bounds(table, now)
        start = dt.datetime.combine(day, dt.time(), tzinfo=dt.UTC)
        return start <= hi and start + dt.timedelta(days=1) > lo

    def check_days(self, table: str, days: set[dt.date], now: dt.datetime | None = None) -> None:
        """Raise OutOfWindow naming the first day a bulk writer may not write."""
        for day in sorted(days):
            if not self.day_inside(table, day, now):
                raise OutOfWindow(f"day {day}: {self.message(table, now)}")


#: The defaults, for writers not handed the configured window (the settings are
#: GEORISK_RETENTION_FIXES_DAYS, GEORISK_RETENTION_READINGS_DAYS, GEORISK_TS_MAX_FUTURE_SKEW_S).
DEFAULT_WINDOW: Final = TsWindow()
