"""One batch of new readings against the points' saved state: levels, debounce, flat line.

Why this shape: the level every value *raises* and *holds* is classified for the whole batch
at once (``thresholds.levels``, numpy); what remains is a tiny state machine per point over
its samples in time order — plain Python over lists, no database round-trip per reading.

Rules (docs/domain.md §2.4):
- a sample *wants* a higher level when its raise-level exceeds the confirmed level, a lower
  one when even its hold-level (set point ∓ hysteresis band) is below it;
- ``debounce_n`` consecutive samples wanting the same direction change the level — upwards to
  the lowest level all of them reached, downwards to the highest they still held — so two
  samples above and one below raise nothing, and 30 % LEL three times raises level 1 once;
- one alarm per episode: raised when the level leaves 0, escalated (never lowered) while it
  is open, cleared when the level returns to 0; its peak is the most extreme value seen;
- ``same_count`` is the run of identical values (flat line ⇒ grey, judged in ``live``).
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass, field

import numpy as np
from numpy.typing import NDArray

from layers.monitoring.thresholds import levels


@dataclass
class PointState:
    """Saved state of one point (a row of ``monitoring_state``) plus its set points."""

    point_id: int
    set_points: tuple[float, float, float, float]
    level: int = 0
    pending_level: int = 0
    pending_count: int = 0
    last_t: int | None = None  # µs since the Unix epoch
    last_value: float | None = None
    same_count: int = 0
    alarm_id: int | None = None
    alarm_level: int = 0
    peak: float | None = None


@dataclass
class Episode:
    """An alarm touched by this batch: an open one continued (``alarm_id``) or a new one."""

    point_id: int
    alarm_id: int | None
    level: int
    raised_t: int
    peak: float
    cleared_t: int | None = None


@dataclass
class BatchOutcome:
    states: list[PointState] = field(default_factory=list)
    episodes: list[Episode] = field(default_factory=list)


def _more_extreme(a: float, b: float, sp: tuple[float, float, float, float]) -> float:
    """The value farther from normal: a low alarm (below ``low1``) peaks at its minimum."""
    low = not np.isnan(sp[2]) and min(a, b) <= sp[2]
    return min(a, b) if low else max(a, b)


def evaluate(
    states: dict[int, PointState],
    pid: NDArray[np.int64],
    t: NDArray[np.int64],
    v: NDArray[np.float64],
    debounce_n: int,
    hysteresis: float,
) -> BatchOutcome:
    """Advance ``states`` over readings sorted by (point, ts); all newer than ``last_t``."""
    out = BatchOutcome()
    if len(pid) == 0:
        return out
    sp = np.array([states[int(p)].set_points for p in pid], dtype=np.float64)
    raise_lv = levels(v, sp).tolist()
    hold_lv = levels(v, sp, hysteresis).tolist()
    starts = [*np.flatnonzero(np.r_[True, pid[1:] != pid[:-1]]).tolist(), len(pid)]
    ts, vs = t.tolist(), v.tolist()
    for a, b in itertools.pairwise(starts):
        s = states[int(pid[a])]
        ep: Episode | None = None
        if s.alarm_id is not None:
            peak = s.peak if s.peak is not None else vs[a]
            ep = Episode(s.point_id, s.alarm_id, s.alarm_level, 0, peak)
        for i in range(a, b):
            x, c = vs[i], s.level
            s.same_count = s.same_count + 1 if x == s.last_value else 1
            s.last_value, s.last_t = x, ts[i]
            if raise_lv[i] > c:
                want, up = raise_lv[i], True
            elif hold_lv[i] < c:
                want, up = hold_lv[i], False
            else:
                s.pending_level, s.pending_count = c, 0
                if ep is not None and ep.cleared_t is None:
                    ep.peak = _more_extreme(ep.peak, x, s.set_points)
                continue
            if s.pending_count and (s.pending_level > c) == up:
                s.pending_level = min(s.pending_level, want) if up else max(s.pending_level, want)
                s.pending_count += 1
            else:
                s.pending_level, s.pending_count = want, 1
            if ep is not None and ep.cleared_t is None:
                ep.peak = _more_extreme(ep.peak, x, s.set_points)
            if s.pending_count < debounce_n:
                continue
            s.level, s.pending_count = s.pending_level, 0
            if ep is None or ep.cleared_t is not None:
                if s.level > 0:  # a new episode
                    if ep is not None:
                        out.episodes.append(ep)
                    ep = Episode(s.point_id, None, s.level, ts[i], x)
            elif s.level == 0:
                ep.cleared_t = ts[i]
            else:
                ep.level = max(ep.level, s.level)
        if ep is not None:
            out.episodes.append(ep)
            open_ = ep.cleared_t is None
            s.alarm_id = ep.alarm_id if open_ else None
            s.alarm_level, s.peak = (ep.level, ep.peak) if open_ else (0, None)
        out.states.append(s)
    return out
