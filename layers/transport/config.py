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

    # ---- the warning models of the transport chain (issue 14 item 3) --------------------
    # One module each under layers/transport/warnings/; each names its source there. Defaults
    # are the product's where no rule fixes a number (docs/transport.md §4 lists them).
    #: moving_without_waybill: a vehicle counts as loaded after a stop of at least
    #: ``site_loading_min_s`` inside a hazmat enterprise's site (or a waybill's loading) until
    #: it unloads; moving loaded this long and this far with no active waybill raises it.
    site_loading_min_s: float = 900.0
    unwaybilled_min_s: float = 300.0
    unwaybilled_min_m: float = 2000.0
    #: no_escort: hazmat classes that may travel without an escort (none by default: the 2019
    #: rules require one on every road hazmat vehicle).
    escort_exempt_classes: tuple[str, ...] = ()
    #: undeclared_stop: a vehicle with a waybill in transit stopped this long somewhere that is
    #: neither its origin, its destination, designated parking nor a washing station.
    undeclared_stop_max_s: float = 1800.0
    #: wrong_destination: a stop this long inside another hazmat enterprise's site (or within
    #: ``site_radius_m`` of one) than the declared consignee, while in transit.
    wrong_destination_min_s: float = 900.0
    #: Fatigue (Road Traffic Safety Law implementing regulations art. 62: ≤ 4 h continuous
    #: driving, rest ≥ 20 min); a day's driving over ``daily_drive_max_s`` (local day).
    continuous_drive_max_s: float = 4 * 3600.0
    rest_min_s: float = 20 * 60.0
    daily_drive_max_s: float = 8 * 3600.0
    #: positioning_gap: a loaded vehicle in transit silent this long outside a lot.
    positioning_gap_max_s: float = 1200.0
    #: restricted_hours: road classes closed to hazmat vehicles by local hours, as
    #: ``(road_class, "HH:MM-HH:MM")`` pairs (zones carry their own ``active_hours``); an entry
    #: counts once the vehicle stays this long.
    restricted_roads: tuple[tuple[str, str], ...] = ()
    restricted_min_s: float = 60.0
