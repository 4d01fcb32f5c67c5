"""The planted ground truth, written beside the data so tests and benchmarks can score detection.

Times are ISO 8601 in UTC. Stop ``start``/``end`` are the first and last fix at the stop point,
overspeed ``start``/``end`` the first and last fix above the limit; ``lon``/``lat`` the stop
centroid (or the middle of the overspeed run).
"""

from __future__ import annotations

import datetime as dt
import json
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
