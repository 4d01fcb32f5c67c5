"""No SSRF through webhooks (issue 18 §5): real HTTP into a real server over a real PostGIS.

Refused at subscription: loopback (also as ``[::1]``, ``[::ffff:127.0.0.1]`` and a name that
resolves there), the private ranges, link-local (the cloud metadata address), and the
database's own address:port — a 422 naming ``url``, nothing stored. The allow-list opens
the ranges it names, never the database port.

Refused at delivery: the resolver is swapped for a fake DNS server (the guard's injectable
resolver, the same object the worker uses) that answers a public address while subscribing
and loopback afterwards (rebinding): the receiver on 127.0.0.1 gets nothing and the delivery
log says why. The same fake DNS shows that the worker connects to the address it checked
(a name the system cannot resolve is delivered), and a receiver's redirect to another
loopback receiver is not followed.

Alerts are planted through ``POST /api/positions`` (a 4-minute stop at a school gate) in an
area of our own, 126.0–126.15 E, 32.0–32.15 N, district ``EDG-SSRF``; subscriptions are
filtered to it so no other test's alerts reach our receivers.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import threading
from collections.abc import Callable, Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import urlsplit

import httpx
import psycopg
import pytest

from geo_api.settings import DatabaseSettings, ServerSettings, Settings, WebhookSettings
from geo_api.webhooks import pinned
from layers.alerts.targets import Target, TargetGuard, TargetRefused, special_range
from tests.conftest import LiveServer, auth, key_for
from tests.planting import square_wkt

DISTRICT = "EDG-SSRF"
SCHOOL = (126.05, 32.05)
DAY = (dt.datetime.now(dt.UTC) - dt.timedelta(hours=3)).replace(second=0, microsecond=0)
PUBLIC = "93.184.215.14"  # a public address; nothing is ever sent there by these tests


# -- the guard on its own -------------------------------------------------------------------
def _check(guard: TargetGuard, url: str) -> str:
    """ "ok <address>" or the refusal's reason."""
    try:
        return "ok " + asyncio.run(guard.check(url)).address
    except TargetRefused as exc:
        return exc.reason


@pytest.mark.parametrize(
    ("address", "word"),
    [
        ("127.0.0.1", "loopback"),
        ("127.255.0.9", "loopback"),
        ("::1", "loopback"),
        ("0.0.0.0", "unspecified"),
        ("::", "unspecified"),
        ("10.1.2.3", "private"),
        ("172.16.0.1", "private"),
        ("192.168.1.1", "private"),
        ("fd12:3456::1", "private"),  # unique-local fc00::/7
        ("169.254.169.254", "link-local"),
        ("fe80::1", "link-local"),
        ("224.0.0.1", "multicast"),
        ("ff02::1", "multicast"),
        ("240.0.0.1", "reserved"),
        ("100.64.0.1", "not globally routable"),  # carrier-grade NAT
        ("::ffff:127.0.0.1", "loopback (IPv6-embedded 127.0.0.1)"),
        ("::ffff:10.0.0.1", "private (IPv6-embedded 10.0.0.1)"),
        ("2002:a9fe:a9fe::1", "link-local (IPv6-embedded 169.254.169.254)"),  # 6to4
        (PUBLIC, None),
        ("2606:4700::1111", None),
    ],
)
def test_special_ranges(address: str, word: str | None) -> None:
    import ipaddress

    assert special_range(ipaddress.ip_address(address)) == word


def test_guard_rules_with_a_fake_dns() -> None:
    names = {"mixed.test": [PUBLIC, "10.0.0.7"], "pub.test": [PUBLIC], "in.test": ["10.9.9.9"]}

    async def resolve(host: str, port: int) -> list[str]:
        if host not in names:
            raise OSError("NXDOMAIN")
        return names[host]

    db = "postgresql://u@10.5.0.2:6543/georisk"
    guard = TargetGuard([], db, resolve)
    assert _check(guard, "http://pub.test/hook") == f"ok {PUBLIC}"
    # One refused address refuses the name: the connection could land on either.
    assert _check(guard, "http://mixed.test/") == (
        "mixed.test resolves to 10.0.0.7 (private); not on the webhook allow-list"
    )
    assert _check(guard, "http://nowhere.test/") == "nowhere.test does not resolve"
    assert _check(guard, "ftp://pub.test/") == "must be an http:// or https:// URL"
    assert _check(guard, "http://:80/") == "has no host"
    assert _check(guard, "http://pub.test:99999/").startswith("not a valid URL")
    # The allow-list opens its ranges and names, never the database's address:port.
    open_ = TargetGuard(["10.0.0.0/8", "in.test"], db, resolve)
    assert _check(open_, "http://10.1.2.3/") == "ok 10.1.2.3"
    assert _check(open_, "http://in.test/") == "ok 10.9.9.9"
    assert _check(open_, "http://10.5.0.2:6543/") == "10.5.0.2:6543, the database's own address"
    assert _check(open_, "http://[::ffff:10.5.0.2]:6543/").endswith("the database's own address")
    assert _check(open_, "http://10.5.0.2:8080/") == "ok 10.5.0.2"  # listed: another port
    # Not listed: the database host is refused on every port, even when public.
    public_db = TargetGuard([], f"postgresql://u@{PUBLIC}/georisk", resolve)
    assert _check(public_db, f"http://{PUBLIC}:8080/") == (
        f"{PUBLIC} (the database host); not on the webhook allow-list"
    )
    assert _check(public_db, f"http://{PUBLIC}:5432/").endswith("the database's own address")
    with pytest.raises(ValueError, match="neither a CIDR nor a host name"):
        TargetGuard(["10.0.0.0/8", "bad name!"])


def test_the_request_is_pinned_to_the_checked_address() -> None:
    """The URL's host becomes the checked address; the receiver still sees its name in the
    Host header and, over TLS, in SNI (and so in the certificate check)."""
    url, headers, ext = pinned(
        Target("https://Hooks.Test:8443/a?b=1", "https", "hooks.test", 8443, PUBLIC)
    )
    assert str(url) == f"https://{PUBLIC}:8443/a?b=1"
    assert headers == {"Host": "hooks.test:8443"} and ext == {"sni_hostname": "hooks.test"}
    url, headers, ext = pinned(Target("http://hooks.test/x", "http", "hooks.test", 80, "::1"))
    assert str(url) == "http://[::1]/x" and headers == {"Host": "hooks.test"} and ext == {}


def test_allow_list_setting_is_validated() -> None:
    assert WebhookSettings(allow=" 10.0.0.0/8, hooks.intra ").allow_list == [
        "10.0.0.0/8",
        "hooks.intra",
    ]
    with pytest.raises(ValueError, match="neither a CIDR"):
        WebhookSettings(allow="10.0.0.0/8,no/such")


# -- through the API ---------------------------------------------------------------------------
class FakeDns:
    """Names of our own first, the system's resolver for the rest (the database's host)."""

    def __init__(self, guard: TargetGuard) -> None:
        self.names: dict[str, list[str]] = {}
        self.system = guard.resolver
        guard.resolver = self.resolve

    async def resolve(self, host: str, port: int) -> list[str]:
        if host in self.names:
            return self.names[host]
        return await self.system(host, port)


class Receiver:
    """A loopback HTTP receiver answering ``status`` (with ``headers``) and recording calls."""

    def __init__(self, status: int = 200, headers: dict[str, str] | None = None) -> None:
        self.calls: list[dict[str, Any]] = []
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                self.rfile.read(int(self.headers["Content-Length"]))
                receiver.calls.append({"path": self.path, "host": self.headers["Host"]})
                self.send_response(status)
                for k, v in (headers or {}).items():
                    self.send_header(k, v)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.port = self.server.server_address[1]
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    def __enter__(self) -> Receiver:
        self.thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture(scope="module")
def vehicles(database_url: str) -> dict[str, int]:
    """Our district, a school zone in it (a stop there of any length is an alert), tankers."""
    with psycopg.connect(database_url, autocommit=True) as c:
        c.execute(
            "INSERT INTO districts (code, name, geom) VALUES (%s, '防伪造区',"
            " ST_GeomFromText(%s, 4326))",
            (DISTRICT, square_wkt(126.075, 32.075, 0.075)),
        )
        c.execute(
            "INSERT INTO zones (code, name, kind, district, geom) VALUES ('EDG-SCH',"
            " '边界测试小学', 'school', %s, ST_GeomFromText(%s, 4326))",
            (DISTRICT, square_wkt(*SCHOOL, 0.002)),
        )
        out = {}
        for name in ("rebind", "pinned", "redirect"):
            row = c.execute(
                "INSERT INTO vehicles (plate, carrier, district) VALUES (%s, '边界危运', %s)"
                " RETURNING id",
                (f"测EDG{name}", DISTRICT),
            ).fetchone()
            assert row
            out[name] = int(row[0])
    return out


def school_stop(vid: int) -> list[dict[str, Any]]:
    """Drive in at 40 km/h, stand 4 min at the school gate, drive on: 30 s fixes."""
    step = 333.0 / 111_320 / 0.85
    lons = [SCHOOL[0] - step * k for k in range(6, 0, -1)]
    lons += [SCHOOL[0]] * 9 + [SCHOOL[0] + step * k for k in range(1, 7)]
    return [
        {
            "vehicle_id": vid,
            "ts": (DAY + dt.timedelta(seconds=30 * i)).isoformat(),
            "lon": round(lon, 7),
            "lat": SCHOOL[1],
            "speed_kmh": 0 if lon == SCHOOL[0] else 40,
        }
        for i, lon in enumerate(lons)
    ]


@pytest.fixture()
def start(database_url: str) -> Iterator[Callable[..., LiveServer]]:
    """Servers with the given webhook settings; stopped when the test ends."""
    started: list[LiveServer] = []

    def run(**webhook: Any) -> LiveServer:
        # ``allow`` explicit: an allow-list exported in the shell must not open these tests.
        hook: dict[str, Any] = {"backoff_base_s": 0.3, "poll_interval_s": 0.2, "timeout_s": 2.0}
        hook["allow"] = ""
        hook.update(webhook)
        settings = Settings(
            db=DatabaseSettings(url=database_url, pool_max=4),
            server=ServerSettings(),
            webhook=WebhookSettings(**hook),
        )
        live = LiveServer(settings).__enter__()
        started.append(live)
        return live

    yield run
    for live in started:
        live.__exit__(None, None, None)


def _guard(live: LiveServer) -> TargetGuard:
    app: Any = live.server.config.app
    guard: TargetGuard = app.state.webhook_guard
    assert app.state.webhooks.guard is guard  # the worker checks with the very same guard
    return guard


def _subscribe(live: LiveServer, url: str) -> httpx.Response:
    body = {"url": url, "districts": [DISTRICT]}
    return httpx.post(live.base_url + "/api/webhooks", json=body, headers=live.admin_headers)


def _deliveries(live: LiveServer, sid: int) -> list[dict[str, Any]]:
    r = httpx.get(f"{live.base_url}/api/webhooks/{sid}/deliveries", headers=live.admin_headers)
    assert r.status_code == 200, r.text
    rows: list[dict[str, Any]] = r.json()["deliveries"]
    return rows


def _plant(live: LiveServer, vid: int) -> None:
    r = httpx.post(
        live.base_url + "/api/positions",
        json=school_stop(vid),
        headers=auth(key_for(live.url)),
        timeout=30,
    )
    assert r.status_code == 200 and r.json()["rejected"] == [], r.text


def _wait(check: Callable[[], Any], timeout: float = 15.0) -> Any:
    import time

    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        got = check()
        if got:
            return got
        time.sleep(0.05)
    raise AssertionError("condition not met in time")


def _refusal(r: httpx.Response) -> str:
    assert r.status_code == 422, (r.status_code, r.text)
    (error,) = r.json()["errors"]
    assert error["field"] == "body.url", error
    reason: str = error["reason"]
    return reason


def test_internal_targets_are_refused_at_subscription(
    start: Callable[..., LiveServer], db: psycopg.Connection
) -> None:
    live = start(enabled=False)
    FakeDns(_guard(live)).names["hooks.evil.test"] = ["127.0.0.1"]
    db_port = urlsplit(live.url).port
    before = db.execute("SELECT count(*) FROM webhook_subscriptions").fetchone()
    cases = {
        f"http://127.0.0.1:{db_port}/": f"127.0.0.1:{db_port}, the database's own address",
        "http://10.1.2.3/": "10.1.2.3 (private)",
        "http://10.255.0.1:8080/x": "10.255.0.1 (private)",
        "http://169.254.169.254/latest/meta-data/": "169.254.169.254 (link-local)",
        "http://169.254.0.1/": "169.254.0.1 (link-local)",
        "http://[::1]/": "::1 (loopback",
        "http://[::ffff:127.0.0.1]:8080/": "(IPv6-embedded 127.0.0.1)",
        "http://localhost:8080/": "localhost resolves to ",  # 127.0.0.1 or ::1: loopback
        "https://hooks.evil.test/": "hooks.evil.test resolves to 127.0.0.1 (loopback",
        "http://2130706433/": "2130706433 resolves to 127.0.0.1 (loopback",  # 127.0.0.1 too
        "http://no-such-host.invalid/": "no-such-host.invalid does not resolve",
    }
    for url, words in cases.items():
        reason = _refusal(_subscribe(live, url))
        assert words in reason, (url, reason)
        assert "localhost" not in url or "(loopback" in reason, reason
    assert "allow-list" in _refusal(_subscribe(live, "http://10.1.2.3/"))
    # Odd spellings are 4xx naming url too, never a 500 (the fuzzer's kind of input).
    for url in ("http://a..b/", "http://" + "x" * 70 + ".com/", "http://0x7f.1/", "http://0/"):
        assert _refusal(_subscribe(live, url)), url
    r = _subscribe(live, "http://[::1/")
    assert r.status_code == 422 and r.json()["errors"][0]["field"] == "body.url", r.text
    after = db.execute("SELECT count(*) FROM webhook_subscriptions").fetchone()
    assert after == before  # nothing was stored


def test_the_allow_list_opens_its_ranges_but_never_the_database_port(
    start: Callable[..., LiveServer],
) -> None:
    live = start(enabled=False, allow="127.0.0.1/32,10.0.0.0/8")
    db_port = urlsplit(live.url).port
    made = [_subscribe(live, u) for u in ("http://127.0.0.1:9/hook", "http://10.1.2.3/")]
    assert [r.status_code for r in made] == [201, 201], [r.text for r in made]
    reason = _refusal(_subscribe(live, f"http://127.0.0.1:{db_port}/"))
    assert reason == f"127.0.0.1:{db_port}, the database's own address"
    assert "169.254.169.254 (link-local)" in _refusal(_subscribe(live, "http://169.254.169.254/"))
    for r in made:
        httpx.delete(f"{live.base_url}/api/webhooks/{r.json()['id']}", headers=live.admin_headers)


def test_a_name_rebound_to_loopback_is_not_called(
    start: Callable[..., LiveServer], vehicles: dict[str, int]
) -> None:
    live = start()  # no allow-list: loopback is refused
    dns = FakeDns(_guard(live))
    with Receiver() as rx:
        dns.names["rebind.test"] = [PUBLIC]  # public while the admin subscribes …
        r = _subscribe(live, f"http://rebind.test:{rx.port}/hook")
        assert r.status_code == 201, r.text
        sid = int(r.json()["id"])
        dns.names["rebind.test"] = ["127.0.0.1"]  # … loopback when the worker delivers
        _plant(live, vehicles["rebind"])
        refused = _wait(lambda: [d for d in _deliveries(live, sid) if d["last_error"]])
        error = refused[0]["last_error"]
        assert error.startswith("refused: rebind.test resolves to 127.0.0.1 (loopback"), error
        assert error.endswith("not on the webhook allow-list"), error
        assert refused[0]["delivered_at"] is None and refused[0]["attempts"] >= 1
        _wait(lambda: _deliveries(live, sid)[0]["attempts"] >= 2)  # retried, refused again
        assert rx.calls == []
        httpx.delete(f"{live.base_url}/api/webhooks/{sid}", headers=live.admin_headers)


def test_the_worker_connects_to_the_checked_address(
    start: Callable[..., LiveServer], vehicles: dict[str, int]
) -> None:
    """``hooks.test`` exists only in the guard's DNS: the delivery arrives, so the connection
    went to the address the guard checked, while the receiver still sees its name."""
    live = start(allow="127.0.0.1/32")
    FakeDns(_guard(live)).names["hooks.test"] = ["127.0.0.1"]
    with Receiver() as rx:
        r = _subscribe(live, f"http://hooks.test:{rx.port}/in")
        assert r.status_code == 201, r.text
        sid = int(r.json()["id"])
        _plant(live, vehicles["pinned"])
        delivered = _wait(lambda: [d for d in _deliveries(live, sid) if d["delivered_at"]])
        assert delivered[0]["last_error"] is None
        assert rx.calls[0] == {"path": "/in", "host": f"hooks.test:{rx.port}"}
        httpx.delete(f"{live.base_url}/api/webhooks/{sid}", headers=live.admin_headers)


def test_a_redirect_is_not_followed(
    start: Callable[..., LiveServer], vehicles: dict[str, int]
) -> None:
    """The receiver (allowed) answers 302 to another loopback receiver: not followed, the
    attempt failed with the reason, the second receiver never called."""
    live = start(allow="127.0.0.1/32")
    with Receiver() as inner:
        redirect = {"Location": f"http://127.0.0.1:{inner.port}/stolen"}
        with Receiver(302, redirect) as outer:
            r = _subscribe(live, f"http://127.0.0.1:{outer.port}/hook")
            assert r.status_code == 201, r.text
            sid = int(r.json()["id"])
            _plant(live, vehicles["redirect"])
            failed = _wait(lambda: [d for d in _deliveries(live, sid) if d["last_error"]])
            assert failed[0]["last_error"] == "HTTP 302: redirects are not followed"
            assert failed[0]["delivered_at"] is None
            assert len(outer.calls) >= 1 and inner.calls == []
            httpx.delete(f"{live.base_url}/api/webhooks/{sid}", headers=live.admin_headers)
