"""Alert feeds end to end: SSE stream, CAP 1.2 XML, statistics, evidence.

Real HTTP into a real PostGIS. Everything planted here lives in an area of its own
(124.8–124.95 E, 32.6–32.75 N), with its own zone, carrier and vehicles, and its own server
(short keep-alive so reader threads notice when to stop).
"""

from __future__ import annotations

import asyncio
import datetime as dt
import json
import math
import queue
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import psycopg
import pytest
from lxml import etree

from geo_api.alert_stream import StreamFilter, Subscriber
from geo_api.settings import AlertStreamSettings
from tests.conftest import LiveServer, make_settings

ROADSIDE = (124.84, 32.64)
SCHOOL = (124.90, 32.70)
DAY = (dt.datetime.now(dt.UTC) - dt.timedelta(hours=2)).replace(second=0, microsecond=0)
XSD = Path(__file__).parent / "data" / "cap-1.2.xsd"
CAP = "{urn:oasis:names:tc:emergency:cap:1.2}"
VEHICLES = ("sse", "replay", "cap", "evidence")


@pytest.fixture(scope="module")
def feeds_server(database_url: str) -> Iterator[LiveServer]:
    settings = make_settings(database_url)
    settings.alert_stream = AlertStreamSettings(keepalive_s=0.5, queue_size=64)
    with LiveServer(settings) as server:
        app: Any = server.server.config.app
        bus = app.state.change_bus  # the alert stream hears changes through it
        deadline = time.monotonic() + 10
        while not bus.ready.is_set() and time.monotonic() < deadline:
            time.sleep(0.05)
        yield server


#: The admin key's header for raw stream readers (filled in by the ``http`` fixture).
ADMIN: dict[str, str] = {}


@pytest.fixture()
def http(feeds_server: LiveServer) -> Iterator[httpx.Client]:
    ADMIN.update(feeds_server.admin_headers)
    with feeds_server.client() as c:
        yield c


@pytest.fixture(scope="module")
def area(database_url: str) -> Iterator[dict[str, Any]]:
    """A school zone (always active), a carrier and one vehicle per scenario, in a district
    borrowed from the demo city (vehicles.district must name one; no new districts)."""
    with psycopg.connect(database_url, autocommit=True) as c:
        row = c.execute("SELECT code FROM districts ORDER BY code LIMIT 1").fetchone()
        assert row
        district = row[0]
        lon, lat = SCHOOL
        ring = f"{lon - 0.002} {lat - 0.002}, {lon + 0.002} {lat - 0.002}, "
        ring += f"{lon + 0.002} {lat + 0.002}, {lon - 0.002} {lat + 0.002}, "
        ring += f"{lon - 0.002} {lat - 0.002}"
        row = c.execute(
            "INSERT INTO zones (code, name, kind, geom) VALUES ('TAF-SCH', '流测试小学', 'school',"
            " ST_GeomFromText(%s, 4326)) RETURNING id",
            (f"MULTIPOLYGON((({ring})))",),
        ).fetchone()
        assert row
        school = row[0]
        row = c.execute(
            "INSERT INTO enterprises (credit_code, name, category, is_hazmat, geom) VALUES"
            " ('9133020000TAFAAA01', '流测试危运公司', 'transport', true,"
            " ST_SetSRID(ST_Point(124.82, 32.62), 4326)) RETURNING id"
        ).fetchone()
        assert row
        carrier = row[0]
        vehicles = {}
        for name in VEHICLES:
            row = c.execute(
                "INSERT INTO vehicles (plate, carrier, enterprise_id, district)"
                " VALUES (%s, '流测试危运公司', %s, %s) RETURNING id",
                (f"测TAF{name}", carrier, district),
            ).fetchone()
            assert row
            vehicles[name] = row[0]
        yield {"district": district, "school": school, "vehicles": vehicles, "carrier": carrier}


# -- fixes ------------------------------------------------------------------------------
def _offset(lon: float, lat: float, east_m: float) -> tuple[float, float]:
    return lon + east_m / (111_320 * math.cos(math.radians(lat))), lat


def _fix(vid: int, t: dt.datetime, at: tuple[float, float], speed: float) -> dict[str, Any]:
    return {
        "vehicle_id": vid,
        "ts": t.isoformat(),
        "lon": round(at[0], 7),
        "lat": round(at[1], 7),
        "speed_kmh": speed,
    }


def visit(vid: int, at: tuple[float, float], start: dt.datetime, stay_s: int) -> list[Any]:
    """Drive in from 2 km west at 40 km/h, stay ``stay_s``, drive on east: 30 s fixes."""
    out, t = [], start
    for k in range(6, 0, -1):
        out.append(_fix(vid, t, _offset(*at, -333.0 * k), 40))
        t += dt.timedelta(seconds=30)
    for _ in range(stay_s // 30 + 1):
        out.append(_fix(vid, t, at, 0))
        t += dt.timedelta(seconds=30)
    for k in range(1, 7):
        out.append(_fix(vid, t, _offset(*at, 333.0 * k), 40))
        t += dt.timedelta(seconds=30)
    return out


def post(http: httpx.Client, fixes: list[Any]) -> None:
    r = http.post("/api/positions", json=fixes)
    assert r.status_code == 200 and r.json()["rejected"] == [], r.text


def alerts_of(http: httpx.Client, vid: int) -> list[dict[str, Any]]:
    r = http.get("/api/alerts", params={"vehicle_id": vid, "f": "json"})
    assert r.status_code == 200
    out: list[dict[str, Any]] = r.json()["alerts"]
    return out


# -- an SSE reader ------------------------------------------------------------------------
class SseReader(threading.Thread):
    """Reads one stream in a thread, parsing events into a queue until told to stop."""

    def __init__(self, base: str, params: dict[str, str], headers: dict[str, str] | None = None):
        super().__init__(daemon=True)
        self.base, self.params = base, params
        self.headers = {**ADMIN, **(headers or {})}
        self.events: queue.Queue[dict[str, str]] = queue.Queue()
        self.connected = threading.Event()
        self.stopping = threading.Event()
        self.status = 0
        self.content_type = ""
        self.comments = 0

    def run(self) -> None:
        timeout = httpx.Timeout(10, read=5)
        with (
            httpx.Client(base_url=self.base, timeout=timeout) as c,
            c.stream("GET", "/api/alerts/stream", params=self.params, headers=self.headers) as r,
        ):
            self.status, self.content_type = r.status_code, r.headers["content-type"]
            self.connected.set()
            event: dict[str, str] = {}
            for line in r.iter_lines():
                if self.stopping.is_set():
                    return
                if line.startswith(":"):
                    self.comments += 1
                elif line == "":
                    if "data" in event:
                        self.events.put(event)
                    event = {}
                else:
                    name, _, value = line.partition(":")
                    event[name] = value.removeprefix(" ")

    def __enter__(self) -> SseReader:
        self.start()
        assert self.connected.wait(10), "stream did not open"
        return self

    def __exit__(self, *exc: object) -> None:
        self.stopping.set()
        self.join(timeout=5)

    def wait_for(self, vid: int, timeout: float) -> list[dict[str, str]]:
        """Events about vehicle ``vid`` until one arrives and the stream falls quiet."""
        got: list[dict[str, str]] = []
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            try:
                ev = self.events.get(timeout=0.5 if got else max(0.01, deadline - time.monotonic()))
            except queue.Empty:
                if got:
                    break
                continue
            if (
                ev.get("event") == "alert"
                and json.loads(ev["data"])["properties"]["vehicle_id"] == vid
            ):
                got.append(ev)
        return got


# -- SSE ----------------------------------------------------------------------------------
def test_an_illegal_stop_appears_on_the_stream_and_filters_apply(
    feeds_server: LiveServer, http: httpx.Client, area: dict[str, Any]
) -> None:
    vid = area["vehicles"]["sse"]
    base = feeds_server.base_url
    mine = {"district": f"{area['district']},nowhere", "rule": "illegal_parking,overspeed"}
    with (
        SseReader(base, mine) as matching,
        SseReader(base, {"district": "TAF-NOWHERE"}) as other,
        SseReader(base, {"status": "disposed"}) as closed_only,
    ):
        assert matching.status == 200 and matching.content_type.startswith("text/event-stream")
        post(http, visit(vid, ROADSIDE, DAY, 720))  # completes a 12 min roadside stop
        events = matching.wait_for(vid, timeout=3.0)
        assert events, "no alert on the stream within 3 s"
        time.sleep(0.5)
        assert other.wait_for(vid, timeout=0.1) == []
        assert closed_only.wait_for(vid, timeout=0.1) == []
    hub = feeds_server.server.config.app.state.alert_stream  # type: ignore[union-attr]
    deadline = time.monotonic() + 5
    while hub.subscribers and time.monotonic() < deadline:
        time.sleep(0.05)
    assert not hub.subscribers  # a closed client leaves no queue behind
    last = events[-1]
    feature = json.loads(last["data"])
    props = feature["properties"]
    assert last["event"] == "alert" and last["id"] == f"{props['id']}:{props['revision']}"
    assert props["rule"] == "illegal_parking" and props["district"] == area["district"]
    assert feature == http.get(f"/api/alerts/{props['id']}").json()


def test_replay_by_since_and_last_event_id(
    feeds_server: LiveServer, http: httpx.Client, area: dict[str, Any]
) -> None:
    vid = area["vehicles"]["replay"]
    before = dt.datetime.now(dt.UTC) - dt.timedelta(seconds=1)
    post(http, visit(vid, ROADSIDE, DAY + dt.timedelta(hours=1), 720))
    alert = alerts_of(http, vid)[0]
    base = feeds_server.base_url
    with SseReader(base, {"since": before.isoformat(), "rule": "illegal_parking"}) as r:
        got = r.wait_for(vid, timeout=3.0)
    assert [e["id"] for e in got] == [f"{alert['id']}:{alert['revision']}"]
    # A client that saw revision 1 and reconnects is given the alert's later revision.
    with SseReader(
        base, {"district": area["district"]}, {"Last-Event-ID": f"{alert['id']}:1"}
    ) as r:
        got = r.wait_for(vid, timeout=3.0)
    assert got and got[-1]["id"] == f"{alert['id']}:{alert['revision']}"
    bad = http.get("/api/alerts/stream", headers={"Last-Event-ID": "x"})
    assert bad.status_code == 400 and "Last-Event-ID" in bad.json()["detail"]
    bad = http.get("/api/alerts/stream", params={"rule": "parking"})
    assert bad.status_code == 400 and bad.json()["errors"][0]["field"] == "rule"


def test_a_slow_subscriber_loses_its_oldest_events_and_is_told() -> None:
    async def scenario() -> list[Any]:
        sub = Subscriber(StreamFilter(rules=frozenset({"overspeed"})), size=3)
        for i in range(1, 6):
            props = {"id": i, "rule": "overspeed", "district": None, "status": "new"}
            if StreamFilter(rules=frozenset({"overspeed"})).matches(props):
                sub.offer({"properties": props})
        out = [await sub.next(0.01) for _ in range(5)]
        sub.close()
        out.append(await sub.next(0.01))
        return out

    got = asyncio.run(scenario())
    assert got[0] == ("lagged", 2)
    assert [x[1]["properties"]["id"] for x in got[1:4] if x] == [3, 4, 5]
    assert got[4] is None and got[5] == ("closed", None)
    assert len(Subscriber(StreamFilter(), size=3).events) == 0


# -- CAP ----------------------------------------------------------------------------------
def _cap(http: httpx.Client, alert_id: int) -> etree._Element:
    r = http.get(f"/api/alerts/{alert_id}.cap")
    assert r.status_code == 200, r.text
    assert r.headers["content-type"].startswith("application/cap+xml")
    doc = etree.fromstring(r.content)
    schema = etree.XMLSchema(etree.parse(str(XSD)))
    assert schema.validate(doc), schema.error_log
    return doc


def _text(doc: etree._Element, path: str) -> str:
    found = doc.findtext(_p(path))
    assert found is not None, path
    return found


def _p(path: str) -> str:
    return "/".join(CAP + part for part in path.split("/"))


def test_cap_alert_update_cancel_validate_and_reference_the_original(
    http: httpx.Client, area: dict[str, Any]
) -> None:
    vid = area["vehicles"]["cap"]
    fixes = visit(vid, SCHOOL, DAY, 600)
    post(http, fixes[:13])  # approach, then 3.5 min at the school gate: the stop is judged
    (alert,) = alerts_of(http, vid)
    assert alert["rule"] == "forbidden_zone_parking" and alert["revision"] == 1
    first = _cap(http, alert["id"])
    assert _text(first, "msgType") == "Alert"
    assert _text(first, "identifier") == f"georisk-alert-{alert['id']}-r1"
    assert first.find(_p("references")) is None
    assert _text(first, "status") == "Actual" and _text(first, "scope") == "Restricted"
    sent = _text(first, "sent")
    assert sent.endswith("+08:00") and len(sent) == 25
    infos = first.findall(_p("info"))
    assert [i.findtext(_p("language")) for i in infos] == ["zh-CN", "en-US"]
    zh = infos[0]
    assert zh.findtext(_p("category")) == "Transport"
    assert (zh.findtext(_p("urgency")), zh.findtext(_p("certainty"))) == ("Immediate", "Likely")
    assert zh.findtext(_p("severity")) == "Severe"
    params = {
        p.findtext(_p("valueName")): p.findtext(_p("value")) for p in zh.findall(_p("parameter"))
    }
    assert params["plate"] == "测TAFcap" and params["zone"] == "流测试小学"
    assert params["carrier"] == "流测试危运公司" and params["rule"] == "forbidden_zone_parking"
    polygon = zh.findtext(_p("area/polygon"))
    assert polygon
    pairs = polygon.split()
    assert len(pairs) == 5 and pairs[0] == pairs[-1]
    lat, lon = map(float, pairs[0].split(","))
    assert abs(lat - (SCHOOL[1] - 0.002)) < 1e-5 and abs(lon - (SCHOOL[0] - 0.002)) < 1e-5
    circle = zh.findtext(_p("area/circle"))
    assert circle and circle.endswith(" 0.2") and circle.startswith(f"{SCHOOL[1]:.6f},")
    original = f"{_text(first, 'sender')},{_text(first, 'identifier')},{sent}"

    post(http, fixes[13:])  # the stop grows, then the tanker leaves: Update
    (grown,) = alerts_of(http, vid)
    assert grown["revision"] > 1 and grown["id"] == alert["id"]
    update = _cap(http, alert["id"])
    assert _text(update, "msgType") == "Update"
    assert _text(update, "identifier") == f"georisk-alert-{alert['id']}-r{grown['revision']}"
    assert _text(update, "references") == original
    assert update.findtext(_p("info/urgency")) == "Expected"  # over, not yet closed

    assert http.post(f"/api/alerts/{alert['id']}/ack").status_code == 200
    r = http.post(f"/api/alerts/{alert['id']}/dispose", json={"outcome": "false_alarm"})
    assert r.status_code == 200
    cancel = _cap(http, alert["id"])
    assert _text(cancel, "msgType") == "Cancel"
    assert _text(cancel, "references") == original
    assert cancel.findtext(_p("info/certainty")) == "Unlikely"
    assert cancel.findtext(_p("info/urgency")) == "Past"
    ids = {_text(d, "identifier") for d in (first, update, cancel)}
    assert len(ids) == 3
    assert http.get("/api/alerts/999999999.cap").status_code == 404


def test_the_xsd_rejects_what_cap_forbids(http: httpx.Client, area: dict[str, Any]) -> None:
    """The schema is a real check: a "Z" time and an unknown category both fail."""
    alert = alerts_of(http, area["vehicles"]["sse"])[0]
    body = http.get(f"/api/alerts/{alert['id']}.cap").content
    schema = etree.XMLSchema(etree.parse(str(XSD)))
    assert schema.validate(etree.fromstring(body))
    bad_time = body.replace(b"+08:00</sent>", b"Z</sent>")
    bad_cat = body.replace(b">Transport<", b">Traffic<", 1)
    assert not schema.validate(etree.fromstring(bad_time))
    assert not schema.validate(etree.fromstring(bad_cat))


# -- statistics ----------------------------------------------------------------------------
def test_stats_for_a_planted_set(http: httpx.Client, db: psycopg.Connection) -> None:
    t = (dt.datetime.now(dt.UTC) - dt.timedelta(days=2)).replace(microsecond=0)
    rows = db.execute(
        "INSERT INTO vehicles (plate, carrier)"
        " VALUES ('测TAFst1', '统计甲'), ('测TAFst2', '统计乙') RETURNING id"
    ).fetchall()
    va, vb = (r[0] for r in rows)
    # (vehicle, status, seconds to ack, seconds to close)
    planted = [
        (va, "disposed", 60, 600),
        (va, "disposed", 180, 900),
        (vb, "false_alarm", 120, 300),
        (vb, "new", None, None),
    ]
    for k, (vid, status, ack, close) in enumerate(planted):
        db.execute(
            "INSERT INTO alerts (vehicle_id, rule, episode_start, status, district, created_at,"
            " updated_at, acknowledged_at, disposed_at, outcome)"
            " VALUES (%s, 'illegal_parking', %s, %s, 'TAF-STATS', %s, %s, %s, %s, %s)",
            (
                vid,
                t + dt.timedelta(minutes=k),
                status,
                t,
                t,
                t + dt.timedelta(seconds=ack) if ack else None,
                t + dt.timedelta(seconds=close) if close else None,
                status if close else None,
            ),
        )
    window = {
        "from": (t - dt.timedelta(hours=1)).isoformat(),
        "to": (t + dt.timedelta(hours=1)).isoformat(),
    }
    r = http.get("/api/alerts/stats", params={**window, "district": "TAF-STATS"})
    assert r.status_code == 200, r.text
    body = r.json()
    o = body["overall"]
    assert o["total"] == 4
    assert o["by_status"] == {"new": 1, "acknowledged": 0, "disposed": 2, "false_alarm": 1}
    assert o["time_to_acknowledge_s"] == {"median": 120.0, "p90": 168.0}  # 60, 120, 180
    assert o["time_to_dispose_s"] == {"median": 600.0, "p90": 840.0}  # 300, 600, 900
    assert o["disposal_rate_of_closed"] == round(2 / 3, 4)
    assert o["disposal_rate_of_all"] == 0.5
    assert [d["district"] for d in body["by_district"]] == ["TAF-STATS"]
    carriers = {c["carrier"]: c for c in body["by_carrier"]}
    assert carriers["统计甲"]["time_to_acknowledge_s"]["median"] == 120.0  # 60 and 180
    assert carriers["统计甲"]["disposal_rate_of_all"] == 1.0
    assert carriers["统计乙"]["by_status"]["false_alarm"] == 1
    assert carriers["统计乙"]["disposal_rate_of_closed"] == 0.0
    r = http.get("/api/alerts/stats", params={"from": window["to"], "to": window["from"]})
    assert r.status_code == 400
    r = http.get("/api/alerts/stats", params={**window, "district": "TAF-NONE"})
    assert r.json()["overall"]["total"] == 0


# -- evidence ------------------------------------------------------------------------------
def test_evidence_has_track_stop_and_zone(http: httpx.Client, area: dict[str, Any]) -> None:
    vid = area["vehicles"]["evidence"]
    fixes = visit(vid, SCHOOL, DAY + dt.timedelta(hours=1), 300)
    post(http, fixes)
    (alert,) = alerts_of(http, vid)
    r = http.get(f"/api/alerts/{alert['id']}/evidence")
    assert r.status_code == 200 and r.headers["content-type"].startswith("application/geo+json")
    body = r.json()
    assert body["type"] == "FeatureCollection" and body["alert_id"] == alert["id"]
    kinds = {f["properties"]["kind"]: f for f in body["features"]}
    assert set(kinds) == {"track", "stop", "zone"}
    track = kinds["track"]
    assert track["geometry"]["type"] == "LineString"
    coords, times = track["geometry"]["coordinates"], track["properties"]["times"]
    assert len(coords) == len(times) == len(fixes)  # all within 15 min of the episode
    assert dt.datetime.fromisoformat(times[0]) == dt.datetime.fromisoformat(fixes[0]["ts"])
    assert times == sorted(times)
    stop = kinds["stop"]
    assert stop["geometry"]["type"] == "Point"
    assert stop["properties"]["duration_s"] >= 300 and stop["properties"]["start"]
    assert stop["properties"]["end"]
    zone = kinds["zone"]
    assert zone["geometry"]["type"] == "Polygon" and zone["id"] == area["school"]
    assert zone["properties"]["name"] == "流测试小学"
    assert http.get("/api/alerts/999999999/evidence").status_code == 404
