"""Scenario helpers for the waybill warning models' tests: a chain planted in an area of its own,
one vehicle per scenario, and trips written as fixes (30 s apart) posted over real HTTP."""

from __future__ import annotations

import datetime as dt
import math
from typing import Any

import httpx
import psycopg

from tests.planting import plant_chain

#: The six rules of layers/transport/warnings/{unwaybilled,escort,waybill_*}.py.
RULES = (
    "moving_without_waybill",
    "loading_check_failed",
    "no_escort",
    "waybill_corridor_deviation",
    "undeclared_stop",
    "wrong_destination",
)
#: Their routes (migration 0020).
DEPARTMENTS = {
    "moving_without_waybill": ["transport", "traffic_police"],
    "loading_check_failed": ["transport", "emergency_management"],
    "no_escort": ["transport", "traffic_police"],
    "waybill_corridor_deviation": ["transport", "traffic_police"],
    "undeclared_stop": ["transport", "traffic_police"],
    "wrong_destination": ["emergency_management", "transport"],
}

Point = tuple[float, float]


def metres(a: Point, b: Point) -> float:
    dy = (b[1] - a[1]) * 111_195.0
    dx = (b[0] - a[0]) * 111_195.0 * math.cos(math.radians((a[1] + b[1]) / 2))
    return math.hypot(dx, dy)


def along(a: Point, b: Point, f: float, off_m: float = 0.0) -> Point:
    """The point a fraction ``f`` of the way from a to b, ``off_m`` metres to its left."""
    x, y = a[0] + (b[0] - a[0]) * f, a[1] + (b[1] - a[1]) * f
    if off_m:
        k = math.cos(math.radians(y))
        dx, dy = (b[0] - a[0]) * k, b[1] - a[1]
        n = math.hypot(dx, dy)
        x += -dy / n * off_m / 111_195.0 / k
        y += dx / n * off_m / 111_195.0
    return x, y


class Track:
    """A vehicle's fixes, built leg by leg."""

    def __init__(self, vehicle_id: int, t0: dt.datetime, at: Point) -> None:
        self.vehicle_id, self.t, self.at = vehicle_id, t0, at
        self.fixes: list[dict[str, Any]] = []

    def _fix(self, p: Point, speed: float) -> None:
        self.fixes.append(
            {
                "vehicle_id": self.vehicle_id,
                "ts": self.t.isoformat(),
                "lon": round(p[0], 7),
                "lat": round(p[1], 7),
                "speed_kmh": speed,
                "heading": 0,
            }
        )
        self.t += dt.timedelta(seconds=30)
        self.at = p

    def stay(self, minutes: float) -> Track:
        for _ in range(int(minutes * 2)):
            self._fix(self.at, 0)
        return self

    def path(self, points: list[Point]) -> Track:
        """One fix at each point, 30 s apart."""
        for p in points:
            self._fix(p, 40)
        return self

    def go(self, p: Point, step_m: float = 300.0) -> Track:
        """Drive to ``p`` in steps of about ``step_m`` (a stop's radius is 200 m)."""
        a = self.at
        n = max(1, math.ceil(metres(a, p) / step_m))
        for i in range(1, n + 1):
            self._fix((a[0] + (p[0] - a[0]) * i / n, a[1] + (p[1] - a[1]) * i / n), 40)
        return self


def post(http: httpx.Client, fixes: list[dict[str, Any]], size: int = 0) -> None:
    """Post ``fixes`` (in batches of ``size`` as a live terminal would; 0: at once)."""
    size = size or len(fixes)
    for k in range(0, len(fixes), size):
        part = fixes[k : k + size]
        r = http.post("/api/positions", json=part)
        assert r.status_code == 200, r.text
        assert r.json()["accepted"] == len(part), r.text


def alerts(http: httpx.Client, vehicle_id: int, rule: str | None = None) -> list[dict[str, Any]]:
    params: dict[str, Any] = {"vehicle_id": vehicle_id, "limit": 500}
    if rule:
        params["rule"] = rule
    r = http.get("/api/alerts", params=params)
    assert r.status_code == 200, r.text
    return [f["properties"] | {"geometry": f["geometry"]} for f in r.json()["features"]]


def mine(http: httpx.Client, vehicle_id: int) -> dict[str, int]:
    """The vehicle's alerts of the six rules, counted by rule."""
    out: dict[str, int] = {}
    for a in alerts(http, vehicle_id):
        if a["rule"] in RULES:
            out[a["rule"]] = out.get(a["rule"], 0) + 1
    return out


def plant(c: psycopg.Connection, tag: str, lon: float, lat: float, n: int) -> dict[str, Any]:
    """``plant_chain`` plus ``n`` more vehicles of carrier X with valid papers (``v[0..n)``),
    all without a district (this module's alerts stay out of the demo districts' counts)."""
    chain = plant_chain(c, tag, lon, lat)
    chain["origin"] = (lon + 0.02, lat + 0.02)  # the shipper (storage), who loads
    chain["destination"] = (lon + 0.05, lat + 0.05)  # the consignee (a user)
    chain["v"] = []
    for k in range(n):
        (vid,) = c.execute(
            "INSERT INTO vehicles (plate, carrier, enterprise_id, hazmat_class, un_number,"
            " capacity_t, tank_type, tank_volume_m3, road_permit_no, road_permit_expiry,"
            " tank_inspection_expiry) SELECT %s, carrier, enterprise_id, hazmat_class,"
            " un_number, capacity_t, tank_type, tank_volume_m3, %s, road_permit_expiry,"
            " tank_inspection_expiry FROM vehicles WHERE id = %s RETURNING id",
            (f"浙W{tag[-4:]}{k:02d}", f"PW{tag}{k}", chain["ok"]),
        ).fetchone()
        chain["v"].append(int(vid))
    c.execute(
        "UPDATE vehicles SET district = NULL WHERE id = ANY(%s)",
        ([chain["ok"], chain["old"], *chain["v"]],),
    )
    return chain


def waybill(
    http: httpx.Client, chain: dict[str, Any], code: str, start: dt.datetime, **over: Any
) -> int:
    """A waybill from the shipper to the consignee along the straight road between them."""
    lon, lat = chain["origin"]
    dlon, dlat = chain["destination"]
    props = {
        "code": code,
        "shipper_id": chain["shipper"],
        "carrier_id": chain["x"],
        "consignee_id": chain["consignee"],
        "loading_party_id": chain["shipper"],
        "substance_name": "汽油",
        "un_number": "1203",
        "hazmat_class": "3",
        "quantity_t": 20,
        "vehicle_id": chain["ok"],
        "driver_id": chain["driver"],
        "escort_id": chain["escort"],
        "origin_id": chain["shipper"],
        "destination_id": chain["consignee"],
        "corridor_m": 300,
        "planned_departure": start.isoformat(),
        "planned_arrival": (start + dt.timedelta(hours=4)).isoformat(),
    } | over
    geometry = {"type": "LineString", "coordinates": [[lon, lat], [dlon, dlat]]}
    r = http.post(
        "/api/waybills", json={"type": "Feature", "geometry": geometry, "properties": props}
    )
    assert r.status_code == 201, r.text
    return int(r.json()["id"])
