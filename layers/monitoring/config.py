"""The evaluator's tunables as a plain value, so ``layers`` never imports ``geo_api``."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class MonitoringRules:
    """Defaults mirror ``geo_api.settings.MonitoringSettings`` (no national figures exist)."""

    debounce_n: int = 3  # consecutive samples before a level is raised or lowered
    hysteresis: float = 0.10  # clear only past set point ∓ this share of it
    flat_line_n: int = 60  # identical samples in a row mean a stuck sensor (grey)
    stale_intervals: float = 3.0  # silent sampling intervals before a point is grey
    ack_deadline_s: float = 900.0
