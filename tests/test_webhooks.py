"""Alert webhooks and escalation end to end: real PostGIS, real HTTP both ways.

An illegal stop is planted through ``POST /api/positions`` in an area of our own
(125.0–125.15 E, 32.8–32.95 N, district ``W6-TEST``), and a receiver on 127.0.0.1 (a stdlib
``http.server`` in a thread) records what it is sent. Each test starts its own server with the
settings it needs (tiny back-off, tiny deadlines), one vehicle per test so order never matters,
and subscriptions filtered to our district so the demo city's alerts never reach them.
"""

from __future__ import annotations

import asyncio
import base64
import datetime as dt
import itertools
import json
import threading
import time
from collections import defaultdict
from collections.abc import Callable, Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import httpx
import psycopg
import pytest
from standardwebhooks import Webhook, WebhookVerificationError

from geo_api.settings import (
    DatabaseSettings,
    EscalationSettings,
    ServerSettings,
    Settings,
    TankerSettings,
    WebhookSettings,
)
from layers.alerts import webhooks
from tests.conftest import LiveServer, auth, key_for
from tests.planting import square_wkt


class _Api:
    """httpx's one-shot calls with the admin key of the test database."""

    headers: dict[str, str] = {}  # noqa: RUF012 (set once per module by ``admin_key``)

    def get(self, url: str, **kw: Any) -> httpx.Response:
        return httpx.get(url, headers=self.headers, **kw)

    def post(self, url: str, **kw: Any) -> httpx.Response:
        return httpx.post(url, headers=self.headers, **kw)

    def delete(self, url: str, **kw: Any) -> httpx.Response:
        return httpx.delete(url, headers=self.headers, **kw)


api = _Api()


@pytest.fixture(scope="module", autouse=True)
def admin_key(database_url: str) -> None:
    _Api.headers = auth(key_for(database_url))


DISTRICT = "W6-TEST"
SCHOOL = (125.05, 32.85)
DAY = (dt.datetime.now(dt.UTC) - dt.timedelta(hours=2)).replace(second=0, microsecond=0)
SECRET = "w6-test-secret-0123456789"
#: A public address (nothing is sent to it: the worker is off where it is used); a name would
#: have to resolve, and ``.example`` names never do.
PUBLIC_URL = "https://93.184.215.14/x"
SHARED = tuple(f"shared{k}" for k in range(8))  # vehicles of the two-worker test


@pytest.fixture(scope="module")
def area(database_url: str) -> dict[str, Any]:
    """Our district, a school (a stop there of any length is an alert) and five tankers."""
    with psycopg.connect(database_url, autocommit=True) as c:
        c.execute(
            "INSERT INTO districts (code, name, geom) VALUES (%s, '测试区', ST_GeomFromText(%s,"
            " 4326))",
            (DISTRICT, square_wkt(125.075, 32.875, 0.075)),
        )
        c.execute(
            "INSERT INTO zones (code, name, kind, district, geom)"
            " VALUES ('W6-SCH', '测试第六小学', 'school', %s, ST_GeomFromText(%s, 4326))",
            (DISTRICT, square_wkt(*SCHOOL, 0.002)),
        )
        vehicles = {}
        for name in ("signed", "flaky", "restart", "leased", "escalate", "overdue_ack", *SHARED):
            row = c.execute(
                "INSERT INTO vehicles (plate, carrier, district) VALUES (%s, '测试危运', %s)"
                " RETURNING id",
                (f"测W6{name}", DISTRICT),
            ).fetchone()
            assert row
            vehicles[name] = int(row[0])
    return {"vehicles": vehicles}


def school_stop(vid: int, start: dt.datetime) -> list[dict[str, Any]]:
    """Drive in at 40 km/h, stand 4 min at the school gate, drive on: 30 s fixes."""
    out, t = [], start
    per_fix = 333.0 / 111_320 / 0.84  # ~333 m of longitude at 32.85° N
    lons = [SCHOOL[0] - per_fix * k for k in range(6, 0, -1)]
    lons += [SCHOOL[0]] * 9 + [SCHOOL[0] + per_fix * k for k in range(1, 7)]
    for lon in lons:
        speed = 0 if lon == SCHOOL[0] else 40
        fix = {"vehicle_id": vid, "ts": t.isoformat(), "lat": SCHOOL[1], "speed_kmh": speed}
        out.append({**fix, "lon": round(lon, 7)})
        t += dt.timedelta(seconds=30)
    return out


class Receiver:
    """Records every POST; ``fail_first`` answers 503 to each delivery's first n attempts."""

    def __init__(self, fail_first: int = 0, delay_s: float = 0.0) -> None:
        self.fail_first = fail_first
        self.down = False  # answer 503 to everything
        self.calls: list[dict[str, Any]] = []
        self.tries: dict[str, int] = defaultdict(int)
        self.lock = threading.Lock()
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers["Content-Length"]))
                time.sleep(delay_s)  # a slow receiver keeps claims overlapping
                delivery = self.headers[webhooks.DELIVERY_HEADER]
                with receiver.lock:
                    receiver.tries[delivery] += 1
                    ok = receiver.tries[delivery] > receiver.fail_first and not receiver.down
                    call = {"at": time.monotonic(), "headers": dict(self.headers), "ok": ok}
                    call["path"] = self.path
                    receiver.calls.append({**call, "body": body, "json": json.loads(body)})
                self.send_response(200 if ok else 503)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server.server_address[1]}/hook"

    def of_vehicle(self, vid: int) -> list[dict[str, Any]]:
        with self.lock:
            return [c for c in self.calls if c["json"]["alert"]["vehicle_id"] == vid]

    def __enter__(self) -> Receiver:
        self.thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.server.shutdown()
        self.server.server_close()


def settings_for(url: str, **over: Any) -> Settings:
    """Fast back-off and polling so the test takes seconds, not minutes; the receivers here
    listen on 127.0.0.1, which webhooks reach only through the allow-list (issue 18 §5)."""
    hook = {
        "backoff_base_s": 0.3,
        "jitter": 0.5,
        "poll_interval_s": 0.2,
        "timeout_s": 2.0,
        "allow": "127.0.0.1/32",
    }
    return Settings(
        db=DatabaseSettings(url=url, pool_max=4),
        server=ServerSettings(),
        webhook=WebhookSettings(**{**hook, **over.get("webhook", {})}),
        escalation=EscalationSettings(**over.get("escalation", {"interval_s": 0.2})),
        tanker=TankerSettings(**over.get("tanker", {})),
    )


@pytest.fixture()
def server(database_url: str) -> Iterator[Callable[..., LiveServer]]:
    """Start servers with given settings; all are stopped when the test ends."""
    started: list[LiveServer] = []

    def start(**over: Any) -> LiveServer:
        live = LiveServer(settings_for(database_url, **over)).__enter__()
        started.append(live)
        return live

    yield start
    for live in started:
        live.__exit__(None, None, None)


def subscribe(base: str, url: str, **extra: Any) -> int:
    body = {"url": url, "secret": SECRET, "districts": [DISTRICT], **extra}
    r = api.post(base + "/api/webhooks", json=body)
    assert r.status_code == 201, r.text
    # A plain secret is shown as Standard Webhooks' whsec_<base64> of the same key bytes.
    assert r.json()["secret"] == "whsec_" + base64.b64encode(SECRET.encode()).decode()
    assert r.json()["districts"] == [DISTRICT]
    return int(r.json()["id"])


def plant(base: str, vid: int) -> None:
    r = api.post(base + "/api/positions", json=school_stop(vid, DAY), timeout=30)
    assert r.status_code == 200 and r.json()["rejected"] == [], r.text


def wait_for(check: Callable[[], Any], timeout: float = 15.0) -> Any:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        got = check()
        if got:
            return got
        time.sleep(0.05)
    raise AssertionError("condition not met in time")


def test_subscriptions_are_validated_and_listed(server: Callable[..., LiveServer]) -> None:
    base = server(webhook={"enabled": False}).base_url
    r = api.post(base + "/api/webhooks", json={"url": "ftp://example.org/x"})
    assert r.status_code == 422 and r.json()["errors"][0]["field"] == "body.url"
    r = api.post(base + "/api/webhooks", json={"url": "http://127.0.0.1:9/x", "secret": "short"})
    assert r.status_code == 422 and r.json()["errors"][0]["field"] == "body.secret"
    r = api.post(base + "/api/webhooks", json={"url": PUBLIC_URL, "rules": ["nope"]})
    assert r.status_code == 422
    # A whsec_ secret must be base64 of 24 to 64 bytes (the Standard Webhooks range).
    for bad in ("whsec_not*base64!!!!", "whsec_" + base64.b64encode(b"k" * 16).decode()):
        r = api.post(base + "/api/webhooks", json={"url": PUBLIC_URL, "secret": bad})
        assert r.status_code == 422 and r.json()["errors"][0]["field"] == "body.secret", r.text
    r = api.post(base + "/api/webhooks", json={"url": PUBLIC_URL})
    assert r.status_code == 201
    secret = r.json()["secret"]  # generated: whsec_ and 32 random bytes
    assert secret.startswith("whsec_") and len(base64.b64decode(secret[6:])) == 32
    sid = r.json()["id"]
    listed = api.get(base + "/api/webhooks").json()["webhooks"]
    assert [w["url"] for w in listed if w["id"] == sid] == [PUBLIC_URL]
    assert all("secret" not in w for w in listed)
    assert api.delete(f"{base}/api/webhooks/{sid}").status_code == 204
    assert api.delete(f"{base}/api/webhooks/{sid}").status_code == 404
    assert sid not in [w["id"] for w in api.get(base + "/api/webhooks").json()["webhooks"]]
    assert api.get(f"{base}/api/webhooks/{sid}/deliveries").json() == {"deliveries": []}
    assert api.get(f"{base}/api/webhooks/999999/deliveries").status_code == 404


def test_illegal_stop_is_delivered_signed(
    server: Callable[..., LiveServer], db: psycopg.Connection, area: dict[str, Any]
) -> None:
    vid = area["vehicles"]["signed"]
    base = server().base_url
    with Receiver() as rx:
        sid = subscribe(base, rx.url)
        # A second subscription with a generated whsec_ secret, told apart by its path.
        r = api.post(base + "/api/webhooks", json={"url": rx.url + "2", "districts": [DISTRICT]})
        assert r.status_code == 201, r.text
        sid2, generated = r.json()["id"], r.json()["secret"]
        plant(base, vid)
        call = wait_for(lambda: [c for c in rx.of_vehicle(vid) if c["path"] == "/hook"])[0]
        other = wait_for(lambda: [c for c in rx.of_vehicle(vid) if c["path"] == "/hook2"])[0]
        headers = {k.lower(): v for k, v in call["headers"].items()}
        # Standard Webhooks, checked by the stock verifier with the secret as it was shown.
        shown = "whsec_" + base64.b64encode(SECRET.encode()).decode()
        assert Webhook(shown).verify(call["body"], headers) == call["json"]
        assert (
            headers["webhook-id"]
            == headers["x-georisk-delivery"]
            == str(call["json"]["delivery_id"])
        )
        assert abs(int(headers["webhook-timestamp"]) - time.time()) < 60
        assert headers["webhook-signature"].startswith("v1,")
        assert Webhook(generated).verify(other["body"], other["headers"]) == other["json"]
        with pytest.raises(WebhookVerificationError):  # another subscription's key
            Webhook(generated).verify(call["body"], headers)
        with pytest.raises(WebhookVerificationError):  # a tampered body
            Webhook(shown).verify(call["body"].replace(b'"revision": 1', b'"revision": 2'), headers)
        with pytest.raises(WebhookVerificationError):  # another id, same signature
            Webhook(shown).verify(call["body"], {**headers, "webhook-id": "999999"})
        # A correctly signed but old message (a replay ten minutes on) is refused too.
        old_ts = str(int(headers["webhook-timestamp"]) - 600)
        key = webhooks.secret_key(SECRET)
        replayed = {
            **headers,
            "webhook-timestamp": old_ts,
            "webhook-signature": webhooks.standard_signature(
                [key], headers["webhook-id"], old_ts, call["body"]
            ),
        }
        with pytest.raises(WebhookVerificationError, match="too old"):
            Webhook(shown).verify(call["body"], replayed)
        # Our own earlier signature is still sent for the transition (legacy setting on).
        ts, sig = headers["x-georisk-timestamp"], headers["x-georisk-signature"]
        assert ts == headers["webhook-timestamp"]
        assert webhooks.verify(SECRET, ts, call["body"], sig)
        assert not webhooks.verify("another-secret-0123456789", ts, call["body"], sig)
        api.delete(f"{base}/api/webhooks/{sid2}")
        alert = call["json"]["alert"]
        assert call["json"]["event"] == headers["x-georisk-event"] == "alert.created"
        assert alert["rule"] == "forbidden_zone_parking" and alert["zone_name"] == "测试第六小学"
        assert alert["district"] == DISTRICT and alert["revision"] == 1
        # The log says delivered at the first attempt; a replayed batch queues nothing new.
        log = wait_for(
            lambda: [
                d
                for d in api.get(f"{base}/api/webhooks/{sid}/deliveries").json()["deliveries"]
                if d["alert_id"] == alert["id"] and d["delivered_at"]
            ]
        )
        assert log[0]["attempts"] == 1 and log[0]["last_error"] is None
        count = "SELECT count(*) FROM webhook_outbox WHERE alert_id = %s"
        before = db.execute(count, (alert["id"],)).fetchone()
        plant(base, vid)
        time.sleep(0.3)
        assert db.execute(count, (alert["id"],)).fetchone() == before
        api.delete(f"{base}/api/webhooks/{sid}")


def test_failing_receiver_gets_it_on_the_third_attempt(
    server: Callable[..., LiveServer], db: psycopg.Connection, area: dict[str, Any]
) -> None:
    vid = area["vehicles"]["flaky"]
    base = server(webhook={"legacy_signature": False}).base_url
    with Receiver(fail_first=2) as rx:
        sid = subscribe(base, rx.url, rules=["forbidden_zone_parking"])
        plant(base, vid)
        calls = wait_for(lambda: [c for c in rx.of_vehicle(vid) if c["ok"]])
        delivery = calls[0]["headers"][webhooks.DELIVERY_HEADER]
        tries = [
            c for c in rx.of_vehicle(vid) if c["headers"][webhooks.DELIVERY_HEADER] == delivery
        ]
        assert [c["ok"] for c in tries] == [False, False, True]
        assert [c["json"]["attempt"] for c in tries] == [1, 2, 3]
        # One message: the same webhook-id on every attempt, each attempt signed afresh (its
        # body differs by "attempt") and each verifying; no legacy headers when switched off.
        hook = Webhook("whsec_" + base64.b64encode(SECRET.encode()).decode())
        assert {c["headers"]["webhook-id"] for c in tries} == {delivery}
        assert all(hook.verify(c["body"], c["headers"]) == c["json"] for c in tries)
        assert not any(webhooks.SIGNATURE_HEADER in c["headers"] for c in tries)
        gaps = [b["at"] - a["at"] for a, b in itertools.pairwise(tries)]
        # Base 0.3 s, factor 2, jitter 0.5: waits in [0.15, 0.3] then [0.3, 0.6] seconds.
        assert gaps[0] >= 0.14 and gaps[1] >= 0.29, gaps
        row = wait_for(
            lambda: db.execute(
                "SELECT attempts, delivered_at, next_attempt_at FROM webhook_outbox"
                " WHERE id = %s AND delivered_at IS NOT NULL",
                (int(delivery),),
            ).fetchone()
        )
        assert row[0] == 3 and row[2] is None
        api.delete(f"{base}/api/webhooks/{sid}")


def test_pending_deliveries_survive_a_restart(
    server: Callable[..., LiveServer], db: psycopg.Connection, area: dict[str, Any]
) -> None:
    vid = area["vehicles"]["restart"]
    sql = (
        "SELECT o.id, o.attempts, o.last_error, o.delivered_at FROM webhook_outbox o"
        " JOIN alerts a ON a.id = o.alert_id WHERE a.vehicle_id = %s AND o.subscription_id = %s"
    )
    with Receiver() as rx:
        rx.down = True  # the receiver is down while the first process runs
        first = server(webhook={"backoff_base_s": 1.0, "jitter": 0.0})
        sid = subscribe(first.base_url, rx.url)
        plant(first.base_url, vid)
        pending = wait_for(
            lambda: (r := db.execute(sql, (vid, sid)).fetchall()) and r[0][2] == "HTTP 503" and r
        )
        first.__exit__(None, None, None)  # stopped with the delivery still owed
        assert pending[0][2] == "HTTP 503" and pending[0][3] is None
        rx.down = False
        second = server()  # a new process finds the owed rows in the table
        calls = wait_for(lambda: [c for c in rx.of_vehicle(vid) if c["ok"]])
        assert {c["json"]["delivery_id"] for c in calls} == {r[0] for r in pending}
        assert all(c["json"]["attempt"] > pending[0][1] for c in calls)  # the count carried on
        row = wait_for(lambda: (r := db.execute(sql, (vid, sid)).fetchone()) and r[3] and r)
        assert row[2] is None
        api.delete(f"{second.base_url}/api/webhooks/{sid}")


def test_escalation_runs_on_a_clock_not_on_reads(
    server: Callable[..., LiveServer], db: psycopg.Connection, area: dict[str, Any]
) -> None:
    vid = area["vehicles"]["escalate"]
    with Receiver() as rx:
        quiet = server(escalation={"enabled": False})
        sid = subscribe(quiet.base_url, rx.url)
        plant(quiet.base_url, vid)
        # Both deadlines passed (set by SQL); a read must not escalate.
        db.execute(
            "UPDATE alerts SET ack_deadline = now() - interval '2 s',"
            " dispose_deadline = now() - interval '1 s' WHERE vehicle_id = %s",
            (vid,),
        )
        r = api.get(quiet.base_url + "/api/alerts", params={"vehicle_id": vid, "f": "json"})
        (alert,) = r.json()["alerts"]
        assert alert["escalation_level"] == 0
        quiet.__exit__(None, None, None)
        live = server()  # the scheduler catches up with what is overdue
        sql = "SELECT escalation_level, escalated_at, revision FROM alerts WHERE id = %s"
        level, at, revision = wait_for(
            lambda: (r := db.execute(sql, (alert["id"],)).fetchone()) and r[0] == 2 and r
        )
        assert at is not None and revision == alert["revision"] + 1  # one bump, straight to 2
        calls = wait_for(
            lambda: [c for c in rx.of_vehicle(vid) if c["json"]["event"] == "alert.escalated"]
        )
        assert len(calls) == 1 and calls[0]["json"]["alert"]["escalation_level"] == 2
        assert calls[0]["json"]["alert"]["revision"] == revision
        time.sleep(0.5)  # further rounds change nothing
        assert db.execute(sql, (alert["id"],)).fetchone() == (level, at, revision)
        api.delete(f"{live.base_url}/api/webhooks/{sid}")


def test_a_missed_ack_deadline_is_level_one(
    server: Callable[..., LiveServer], db: psycopg.Connection, area: dict[str, Any]
) -> None:
    vid = area["vehicles"]["overdue_ack"]
    base = server(tanker={"ack_deadline_s": 0.5, "dispose_deadline_s": 3600}).base_url
    plant(base, vid)
    sql = "SELECT id, escalation_level, revision FROM alerts WHERE vehicle_id = %s"
    alert_id, _, revision = wait_for(
        lambda: (r := db.execute(sql, (vid,)).fetchone()) and r[1] == 1 and r
    )
    time.sleep(0.5)  # the dispose deadline is an hour away: nothing more happens
    assert db.execute(sql, (vid,)).fetchone() == (alert_id, 1, revision)
    r = api.post(f"{base}/api/alerts/{alert_id}/ack")
    assert r.status_code == 200 and r.json()["properties"]["escalation_level"] == 1


def test_two_workers_deliver_each_row_once(
    server: Callable[..., LiveServer], db: psycopg.Connection, area: dict[str, Any]
) -> None:
    vids = [area["vehicles"][name] for name in SHARED]
    fast = {"webhook": {"batch_size": 2, "poll_interval_s": 0.05}}
    with Receiver(delay_s=0.05) as rx:
        one, _ = server(**fast), server(**fast)  # two processes' workers on one outbox
        sid = subscribe(one.base_url, rx.url)
        for vid in vids:
            plant(one.base_url, vid)
        rows = db.execute(
            "SELECT count(*) FROM webhook_outbox WHERE subscription_id = %s", (sid,)
        ).fetchone()
        assert rows and rows[0] >= len(vids)
        wait_for(lambda: len(rx.calls) >= rows[0])
        time.sleep(0.5)  # any double delivery would arrive by now
        ids = [c["json"]["delivery_id"] for c in rx.calls]
        assert len(ids) == len(set(ids)) == rows[0]
        assert {c["json"]["alert"]["vehicle_id"] for c in rx.calls} == set(vids)
        api.delete(f"{one.base_url}/api/webhooks/{sid}")


async def _claim_and_die(url: str, alert_id: int, sub_id: int, lease_s: float) -> list[int]:
    """Queue a delivery and lease it in one transaction, as a worker does before its POST,
    then nothing: as if SIGKILLed mid-request. (One transaction, so no other worker of the
    test session can take the row first.)"""
    async with await psycopg.AsyncConnection.connect(url) as conn:
        assert await webhooks.enqueue(conn, [alert_id], "alert.updated") == 1
        cur = await conn.execute(
            "UPDATE webhook_outbox SET attempts = attempts + 1,"
            " next_attempt_at = now() + %s * interval '1 second'"
            " WHERE subscription_id = %s RETURNING id",
            (lease_s, sub_id),
        )
        return [int(r[0]) for r in await cur.fetchall()]


def test_a_row_claimed_by_a_dead_worker_is_retried_after_its_lease(
    server: Callable[..., LiveServer],
    db: psycopg.Connection,
    database_url: str,
    area: dict[str, Any],
) -> None:
    vid = area["vehicles"]["leased"]
    with Receiver() as rx:
        base = server().base_url
        plant(base, vid)  # before subscribing: the alert exists, nothing is queued for us
        sid = subscribe(base, rx.url)
        row = db.execute("SELECT id FROM alerts WHERE vehicle_id = %s", (vid,)).fetchone()
        assert row
        t0 = time.monotonic()
        claimed = asyncio.run(_claim_and_die(database_url, row[0], sid, 1.0))
        calls = wait_for(lambda: rx.of_vehicle(vid))  # a healthy worker waits out the lease
        assert time.monotonic() - t0 >= 0.9
        assert [c["json"]["delivery_id"] for c in calls] == claimed
        assert calls[0]["json"]["attempt"] == 2
        api.delete(f"{base}/api/webhooks/{sid}")
