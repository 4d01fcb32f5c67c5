"""The planted ground truth, written beside the data so tests and benchmarks can score detection.

Times are ISO 8601 in UTC. Stop ``start``/``end`` are the first and last fix at the stop point,
overspeed ``start``/``end`` the first and last fix above the limit; ``lon``/``lat`` the stop
centroid (or the middle of the overspeed run).
"""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

ILLEGAL_KINDS = ("illegal_roadside_stop", "forbidden_zone_stop", "overspeed")


def iso(day_start_us: int, local_seconds: float) -> str:
    us = day_start_us + round(local_seconds * 1e6)
    return dt.datetime.fromtimestamp(us / 1e6, dt.UTC).isoformat()


def write(
    path: Path,
    *,
    seed: int,
    scale: float,
    day: dt.date,
    events: list[dict[str, Any]],
    noise: list[dict[str, Any]],
    zones: dict[str, int],
    sections: dict[str, Any] | None = None,
) -> None:
    counts: dict[str, int] = {}
    for e in events:
        counts[e["kind"]] = counts.get(e["kind"], 0) + 1
    noise_counts: dict[str, int] = {}
    for n in noise:
        noise_counts[n["kind"]] = noise_counts.get(n["kind"], 0) + 1
    doc = {
        "seed": seed,
        "scale": scale,
        "day": day.isoformat(),
        "timezone": "Asia/Shanghai",
        "rules": {
            "illegal_roadside_stop": "stop > 600 s, centroid >= 100 m from every designated lot "
            "and forbidden zone",
            "forbidden_zone_stop": "stop >= 240 s inside a school/hospital/residential/"
            "water_source zone during its active_hours (local time)",
            "overspeed": ">= 120 s above the road's limit (80 expressway, 60 other)",
            "short_roadside_stop": "legal: < 600 s, outside lots and forbidden zones",
            "lot_stop": "legal: inside a designated_parking zone",
        },
        "event_counts": counts,
        "noise_counts": noise_counts,
        "zone_counts": zones,
        "events": events,
        "noise": noise,
        **(sections or {}),
    }
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".tmp")
    tmp.write_text(json.dumps(doc, ensure_ascii=False, indent=None, separators=(",", ":")))
    tmp.replace(path)


def add_section(path: Path, name: str, section: dict[str, Any]) -> None:
    """Add (or replace) one top-level section of a written ground truth."""
    doc = json.loads(path.read_text())
    doc[name] = section
    tmp = path.with_suffix(".tmp")
    tmp.write_text(json.dumps(doc, ensure_ascii=False, indent=None, separators=(",", ":")))
    tmp.replace(path)


#: An alert matches a planted chain event of its vehicle when their spans overlap within this
#: slack (a derived step or a model's episode edge may sit a fix or two off the planted stop).
CHAIN_TOLERANCE = dt.timedelta(seconds=120)


@dataclass
class Score:
    """Precision and recall of alerts against planted events: ``hits`` of the ``events`` were
    alerted, ``good`` of the ``alerts`` match an event (the rest are ``false``)."""

    events: int = 0
    alerts: int = 0
    hits: int = 0
    good: int = 0
    missed: list[dict[str, Any]] = field(default_factory=list)
    false: list[tuple[Any, ...]] = field(default_factory=list)

    @property
    def recall(self) -> float:
        return self.hits / self.events if self.events else 1.0

    @property
    def precision(self) -> float:
        return self.good / self.alerts if self.alerts else 1.0


@dataclass
class ChainScore(Score):
    """One warning model's score against the planted chain scenarios."""

    rule: str = ""
    twins_alerted: int = 0


def score_chain(
    alerts: Sequence[tuple[Any, ...]], truth: dict[str, Any], rules: Sequence[str]
) -> dict[str, ChainScore]:
    """Score ``alerts`` rows ``(id, vehicle_id, rule, zone_id, episode_start, episode_end)``
    (the seeded fleet's, on the seeded day) per rule in ``rules``: an alert is good when it
    overlaps a planted event of its vehicle (and, for restricted hours, names its zone); an
    alert on an edge run (``edges``) counts neither way; an alert on a legal twin's span is
    false and also counted in ``twins_alerted``."""
    section = truth.get("chain_scenarios", {})

    def span(e: dict[str, Any]) -> tuple[dt.datetime, dt.datetime]:
        return dt.datetime.fromisoformat(e["start"]), dt.datetime.fromisoformat(e["end"])

    def match(e: dict[str, Any], a: tuple[Any, ...]) -> bool:
        s, t = span(e)
        in_time = a[4] <= t + CHAIN_TOLERANCE and (a[5] or a[4]) >= s - CHAIN_TOLERANCE
        zone_ok = e.get("zone_id") is None or a[3] == e["zone_id"]
        return a[1] == e["vehicle_id"] and in_time and zone_ok

    out: dict[str, ChainScore] = {}
    for rule in rules:
        events = [e for e in section.get("events", []) if e["rule"] == rule]
        edges = [e for e in section.get("edges", []) if e["rule"] == rule]
        twins = [e for e in section.get("must_not", []) if e["rule"] == rule]
        mine = [a for a in alerts if a[2] == rule and not any(match(e, a) for e in edges)]
        sc = ChainScore(rule=rule, events=len(events), alerts=len(mine))
        for e in events:
            if any(match(e, a) for a in mine):
                sc.hits += 1
            else:
                sc.missed.append(e)
        for a in mine:
            if any(match(e, a) for e in events):
                sc.good += 1
            else:
                sc.false.append(a)
                sc.twins_alerted += any(match(e, a) for e in twins)
        out[rule] = sc
    return out
