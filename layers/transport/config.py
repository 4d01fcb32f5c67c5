"""Thresholds of the tanker rules, with the defaults of docs/domain.md §3.

One frozen dataclass so the detector and the rules are pure functions of their inputs; the
service builds it from ``TankerSettings`` (``GEORISK_TANKER_*``), tests and the seed directly.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class TankerRules:
    #: A vehicle is stopped once all fixes of a window of at least ``stop_min_s`` stay within
    #: ``stop_radius_m`` of the window's first fix; it moves again once a fix is at least
    #: ``stop_radius_m`` from the stop's centroid (the best open tracker's rule; the radius is
    #: well over twice the ≤ 15 m GNSS accuracy).
    stop_radius_m: float = 200.0
    stop_min_s: float = 180.0
    #: Allowed dwell outside designated parking before a stop is illegal; a zone's
    #: ``max_dwell_s`` overrides it for stops whose centroid lies in that zone.
    max_dwell_s: float = 600.0
    #: Hazmat tanker speed caps by road class (≤ 80 km/h expressway, ≤ 60 km/h elsewhere); a
    #: road's own lower posted limit and a zone's ``speed_limit_kmh`` win over them.
    expressway_kmh: float = 80.0
    other_road_kmh: float = 60.0
    #: A fix takes the most permissive road within this distance (benefit of the doubt where
    #: an expressway runs beside a local road), else the "elsewhere" cap.
    road_snap_m: float = 30.0
    #: An overspeed or corridor episode needs this long between its first and last fix.
    overspeed_min_s: float = 60.0
    corridor_min_s: float = 120.0
    #: Local time zone of zones' ``active_hours`` (China has no daylight saving).
    timezone: str = "Asia/Shanghai"
    #: Officers' deadlines; overdue alerts escalate one level per missed deadline.
    ack_deadline_s: float = 1800.0
    dispose_deadline_s: float = 4 * 3600.0
    #: A stop is at a waybill's origin or destination when its centroid is within this of the
    #: declared point (or inside the enterprise's site polygon), and it begins within
    #: ``site_window_s`` of the planned departure / arrival (layers/transport/site_events.py).
    site_radius_m: float = 300.0
    site_window_s: float = 12 * 3600.0
