"""Driving time from a vehicle's pauses: the pure part of the fatigue models (``fatigue.py``).

A vehicle's timeline runs from its first known fix to its latest one. It is *paused* inside a
detector stop (all fixes of ≥ ``stop_min_s`` within ``stop_radius_m``, docs/domain.md §3) and
inside a positioning gap that could hide a legal rest (:func:`could_rest`); everywhere else it
is *driving*. A pause of at least ``rest_min_s`` is a rest: it ends a driving stint. A shorter
pause neither counts as driving nor resets the clock (the regulation counts driving time, and a
red light or a 5-minute halt is no rest).

Times are µs since the Unix epoch, as everywhere in the engine.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from dataclasses import dataclass
from zoneinfo import ZoneInfo

US = 1_000_000


@dataclass(frozen=True)
class Pause:
    """A stop, or a silence that could have been a rest; ``lon``/``lat`` where it happened."""

    start: int
    end: int
    lon: float
    lat: float


def could_rest(gap_s: float, distance_m: float, rest_min_s: float, cap_kmh: float) -> bool:
    """Whether a silence of ``gap_s`` between fixes ``distance_m`` apart can hide a rest of
    ``rest_min_s``: even driving the whole distance at the hazmat speed cap leaves that much
    standing time. Benefit of the doubt: a fatigue alert must be provable from the track, and
    a terminal that powers down with the engine is common (the silence is the positioning-gap
    model's business). A silence at one place is a detector stop already (its fixes before and
    after lie within the stop radius), so this adds the silences that also moved a little."""
    return gap_s - distance_m / (cap_kmh / 3.6) >= rest_min_s


def merge_pauses(pauses: Sequence[Pause]) -> list[Pause]:
    """Sorted, with overlapping or touching pauses joined (a stop and the silence after it)."""
    out: list[Pause] = []
    for p in sorted(pauses, key=lambda q: (q.start, q.end)):
        if out and p.start <= out[-1].end:
            last = out[-1]
            out[-1] = Pause(last.start, max(last.end, p.end), last.lon, last.lat)
        else:
            out.append(p)
    return out


@dataclass(frozen=True)
class Stint:
    """Driving between two rests (``closed``: the rest after it has happened)."""

    start: int  # the end of the rest before it, or the timeline's start
    end: int  # the start of the rest after it, or the timeline's end
    after_rest: bool  # False: no rest seen since the timeline's start (first fix / lookback)
    closed: bool
    driving_us: int
    exceeded_at: int | None  # when driving passed the limit (None: it never did)
    last_driving: int  # the end of its last driving span
    rest_end: int  # the end of the rest that closed it (the timeline's end when open)
    lon: float | None  # where the closing rest was (None when open)
    lat: float | None


def _spans(t0: int, t1: int, pauses: Sequence[Pause]) -> list[tuple[int, int, Pause | None]]:
    """Driving spans of [t0, t1] in order, each with the pause that follows it (or None)."""
    out: list[tuple[int, int, Pause | None]] = []
    cursor = t0
    for p in pauses:
        if p.end <= cursor:
            continue
        if p.start >= t1:
            break
        out.append((cursor, max(cursor, p.start), p))
        cursor = p.end
    if cursor < t1:
        out.append((cursor, t1, None))
    return out


def stints(
    t0: int, t1: int, pauses: Sequence[Pause], rest_min_us: int, limit_us: int
) -> list[Stint]:
    """The driving stints of the timeline [t0, t1] (``pauses`` merged, any may reach past t0:
    a rest is judged on its whole length, so a night's stop that began before t0 is a rest)."""
    out: list[Stint] = []
    start, driving, exceeded, last = t0, 0, None, t0
    # A rest that ended at or before t0 means the timeline starts rested.
    after_rest = any(q.end <= t0 and q.end - q.start >= rest_min_us for q in pauses)
    for a, b, p in _spans(t0, t1, pauses):
        if b > a:
            driving += b - a
            last = b
            if exceeded is None and driving > limit_us:
                exceeded = b - (driving - limit_us)
        if p is not None and p.end - p.start >= rest_min_us:
            if driving > 0:
                out.append(
                    Stint(start, b, after_rest, True, driving, exceeded, last, p.end, p.lon, p.lat)
                )
            start, after_rest, driving, exceeded, last = p.end, True, 0, None, p.end
    if driving > 0:
        out.append(Stint(start, t1, after_rest, False, driving, exceeded, last, t1, None, None))
    return out


@dataclass(frozen=True)
class Day:
    """Driving in one local calendar day."""

    day: dt.date
    start: int  # local midnight
    end: int  # the next local midnight
    driving_us: int
    exceeded_at: int | None
    last_driving: int


def local_midnight(t: int, tz: str) -> int:
    """The local midnight at or before ``t`` (µs), in ``tz``."""
    local = dt.datetime.fromtimestamp(t / US, dt.UTC).astimezone(ZoneInfo(tz))
    return int(dt.datetime.combine(local.date(), dt.time(), tzinfo=local.tzinfo).timestamp() * US)


def days(t0: int, t1: int, pauses: Sequence[Pause], tz: str, limit_us: int) -> list[Day]:
    """Each local day of [t0, t1] with its driving time and when it passed ``limit_us``."""
    spans = [(a, b) for a, b, _ in _spans(t0, t1, pauses) if b > a]
    zone = ZoneInfo(tz)
    out: list[Day] = []
    day = dt.datetime.fromtimestamp(t0 / US, dt.UTC).astimezone(zone).date()
    while True:
        ds = int(dt.datetime.combine(day, dt.time(), tzinfo=zone).timestamp() * US)
        if ds > t1:
            break
        nxt = day + dt.timedelta(days=1)
        de = int(dt.datetime.combine(nxt, dt.time(), tzinfo=zone).timestamp() * US)
        driving, exceeded, last = 0, None, ds
        for a, b in spans:
            a, b = max(a, ds), min(b, de)
            if b <= a:
                continue
            driving += b - a
            last = b
            if exceeded is None and driving > limit_us:
                exceeded = b - (driving - limit_us)
        out.append(Day(day, ds, de, driving, exceeded, last))
        day = nxt
    return out
