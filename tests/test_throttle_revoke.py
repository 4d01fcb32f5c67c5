"""Throttling and revocation within seconds (issue 18 §3, §4).

Real servers over the test database, real HTTP from real client addresses: the whole of
127.0.0.0/8 is loopback, so a client bound to 127.0.0.2 is a second address the server sees as
its socket peer. Revocations come from other processes (a second app with caches of its own,
and the ``georisk`` command line) so nothing tells the first server's caches but the database.
"""

from __future__ import annotations

import os
import secrets
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from typing import Any

import httpx
import psycopg
import pytest
from pydantic import SecretStr

from geo_api.settings import Settings
from tests.conftest import LiveServer, auth, key_for, make_settings

SECRET = "s" * 48  # both servers of a test sign and check sessions with it


def wrong_key(prefix: str = "") -> str:
    """A well-formed key nobody has (``prefix`` fixes its first characters)."""
    key = "grk_" + secrets.token_urlsafe(32)
    return prefix + key[len(prefix) :] if prefix else key


def client_from(server: LiveServer, address: str, **kw: Any) -> httpx.Client:
    """A client whose connections leave from ``address`` (a loopback address of its own)."""
    transport = httpx.HTTPTransport(local_address=address)
    return httpx.Client(base_url=server.base_url, transport=transport, timeout=30, **kw)


def settings_for(url: str, **throttle: Any) -> Settings:
    settings = make_settings(url)
    settings.auth.token_secret = SecretStr(SECRET)
    for name, value in throttle.items():
        if name == "trusted_proxies":  # one list for uvicorn and the throttle
            settings.security.trusted_proxies = value
        else:
            setattr(settings.throttle, name, value)
    return settings


def lockouts(db: psycopg.Connection, actor: str, since: Any) -> list[dict[str, Any]]:
    rows = db.execute(
        "SELECT after FROM audit_log WHERE action = 'lockout' AND entity = 'credentials'"
        " AND actor = %s AND at >= %s ORDER BY id",
        (actor, since),
    ).fetchall()
    return [r[0] for r in rows]


def now(db: psycopg.Connection) -> Any:
    return db.execute("SELECT clock_timestamp()").fetchone()[0]  # type: ignore[index]


@pytest.fixture(scope="module")
def server(database_url: str) -> Iterator[LiveServer]:
    """The defaults (10 failures in 60 s lock an address or prefix out for 60 s)."""
    with LiveServer(settings_for(database_url)) as s:
        yield s


# -- throttling --------------------------------------------------------------------------------
def test_wrong_keys_from_one_address_are_throttled_and_others_are_not(
    server: LiveServer, database_url: str, db: psycopg.Connection
) -> None:
    """20 wrong keys from 127.0.0.1: 401s, then 429s with Retry-After naming the credential;
    meanwhile a valid key from 127.0.0.2 always gets its 200 — and so does a valid key from the
    locked-out address itself. The lockout is audited once, not once per request."""
    since = now(db)
    valid = auth(key_for(database_url, "regulator"))
    answers, others = [], []
    with (
        client_from(server, "127.0.0.1") as attacker,
        client_from(server, "127.0.0.2", headers=valid) as neighbour,
    ):
        for _ in range(20):
            answers.append(attacker.get("/api/risk/summary", headers=auth(wrong_key())))
            others.append(neighbour.get("/api/risk/summary").status_code)
        same_address = attacker.get("/api/risk/summary", headers=valid)
        wrong_elsewhere = neighbour.get("/api/risk/summary", headers=auth(wrong_key()))
    codes = [r.status_code for r in answers]
    assert codes == [401] * 9 + [429] * 11  # the 10th failure within the window locks out
    refused = answers[-1]
    retry = int(refused.headers["retry-after"])
    assert 1 <= retry <= 60
    body = refused.json()
    assert body["errors"][0]["field"] == "credentials" and "too many" in body["detail"]
    assert "www-authenticate" not in refused.headers
    assert others == [200] * 20  # another address is never slowed
    assert same_address.status_code == 200  # nor a valid key from the locked-out address
    assert wrong_elsewhere.status_code == 401  # the lockout is the address's, not everyone's
    entries = lockouts(db, "address:127.0.0.1", since)
    assert len(entries) == 1
    assert entries[0] == {
        "subject": "address",
        "value": "127.0.0.1",
        "failures": 10,
        "window_s": 60.0,
        "lockout_s": 60.0,
        "path": "/api/risk/summary",
    }
    with server.client() as admin:  # and administrators read it through the API
        listed = admin.get("/api/audit", params={"action": "lockout", "entity": "credentials"})
        assert listed.status_code == 200
        assert "address:127.0.0.1" in {e["actor"] for e in listed.json()["entries"]}


def test_sign_in_is_throttled_but_a_good_key_still_signs_in(
    database_url: str, db: psycopg.Connection
) -> None:
    """Failed sign-ins (unknown keys and things that are no key at all) count; the lockout
    answers 429 naming ``key``; a valid key signs in from the same address all the same."""
    settings = settings_for(database_url, max_failures=4, lockout_s=30)
    good = key_for(database_url, "officer")
    since = now(db)
    with LiveServer(settings) as s, client_from(s, "127.0.0.3") as browser:
        tries = [
            browser.post("/api/auth/session", json={"key": k})
            for k in ("hunter2", wrong_key(), wrong_key(), wrong_key(), wrong_key())
        ]
        assert [r.status_code for r in tries] == [422, 401, 401, 429, 429]
        assert tries[1].json()["errors"][0]["field"] == "key"
        assert tries[-1].json()["errors"][0]["field"] == "key"
        assert 1 <= int(tries[-1].headers["retry-after"]) <= 30
        # Exchanging a key for a token is a sign-in too: the same lockout answers it.
        token = browser.post("/api/auth/token", headers=auth(wrong_key()))
        assert token.status_code == 429 and token.json()["errors"][0]["field"] == "credentials"
        assert browser.post("/api/auth/token", headers=auth(good)).status_code == 200
        signed = browser.post("/api/auth/session", json={"key": good})
        assert signed.status_code == 200 and signed.json()["role"] == "officer"
        assert browser.get("/api/auth/whoami").json()["via"] == "session"
    assert len(lockouts(db, "address:127.0.0.3", since)) == 1


def test_forwarded_addresses_count_only_behind_a_trusted_proxy(
    database_url: str, db: psycopg.Connection
) -> None:
    """Behind a trusted proxy (127.0.0.1) each X-Forwarded-For client is its own subject; from
    any other peer the header is ignored (a client cannot dodge its lockout by naming itself
    someone else). One key prefix tried from many addresses is locked out by itself."""
    settings = settings_for(database_url, max_failures=3, trusted_proxies="127.0.0.1/32")
    valid = auth(key_for(database_url, "regulator"))
    since = now(db)
    with LiveServer(settings) as s:

        def ask(http: httpx.Client, client: str, key: dict[str, str]) -> int:
            headers = {**key, "X-Forwarded-For": f"10.9.9.9, {client}"}
            return http.get("/api/risk/summary", headers=headers).status_code

        with client_from(s, "127.0.0.1") as proxy:
            first = [ask(proxy, "203.0.113.7", auth(wrong_key())) for _ in range(4)]
            assert first == [401, 401, 429, 429]
            assert ask(proxy, "203.0.113.8", auth(wrong_key())) == 401  # another client
            assert ask(proxy, "203.0.113.7", valid) == 200
            # One prefix from ever new addresses: the prefix locks out.
            prefix = "grk_SAMEpref"
            spread = [ask(proxy, f"198.51.100.{i}", auth(wrong_key(prefix))) for i in range(4)]
            assert spread == [401, 401, 429, 429]
        with client_from(s, "127.0.0.4") as direct:  # not a trusted proxy
            spoofed = [ask(direct, f"192.0.2.{i}", auth(wrong_key())) for i in range(4)]
            assert spoofed == [401, 401, 429, 429]
    assert len(lockouts(db, "address:203.0.113.7", since)) == 1
    assert len(lockouts(db, "key prefix:grk_SAMEpref", since)) == 1
    assert len(lockouts(db, "address:127.0.0.4", since)) == 1
    assert lockouts(db, "address:10.9.9.9", since) == []  # the forged left part is never used


def test_tokens_and_missing_credentials_are_not_counted(database_url: str) -> None:
    """Only unknown keys and failed sign-ins count: no credentials, a stale token or a bad
    cookie are a browser's state, not a guess (after a secret change every open map would
    lock its office out otherwise)."""
    settings = settings_for(database_url, max_failures=2)
    with LiveServer(settings) as s, client_from(s, "127.0.0.5") as http:
        for _ in range(5):
            assert http.get("/api/risk/summary").status_code == 401
            bad = http.get("/api/risk/summary", headers={"Authorization": "Bearer not.a.token"})
            assert bad.status_code == 401
        assert len(s.server.config.app.state.auth.throttle.addresses) == 0  # type: ignore[attr-defined]


def test_a_wrong_tile_key_counts_once(database_url: str) -> None:
    """``?key=`` on a tile goes through the tile fast path and then the route: one request is
    one failure, however many places look at its key."""
    settings = settings_for(database_url, max_failures=3)
    with LiveServer(settings) as s, client_from(s, "127.0.0.6") as gis:
        codes = [
            gis.get("/tiles/enterprises/12/3420/1700.mvt", params={"key": wrong_key()}).status_code
            for _ in range(3)
        ]
        assert codes == [401, 401, 429]
        valid = key_for(database_url, "tile_reader")
        tile = gis.get("/tiles/enterprises/12/3420/1700.mvt", params={"key": valid})
        assert tile.status_code in (200, 204)


def test_the_throttle_and_key_cache_memory_is_bounded() -> None:
    """At most ``max_entries`` addresses (and prefixes) are remembered, the least recently
    failing forgotten first; a flood of unknown keys never evicts a known one."""
    from geo_api.auth import Caller, KeyCache
    from geo_api.settings import ThrottleSettings
    from geo_api.throttle import Throttle

    clock = [1000.0]
    throttle = Throttle(
        ThrottleSettings(max_entries=3, max_failures=2, window_s=10, lockout_s=5),
        clock=lambda: clock[0],
    )
    for i in range(50):
        throttle.failed(f"192.0.2.{i}", f"grk_{i:08d}")
    assert len(throttle.addresses) == 3 and len(throttle.prefixes) == 3
    # A sliding window: two failures 11 s apart do not lock out, two within 10 s do.
    assert throttle.failed("198.51.100.1", None)[0] == 0
    clock[0] += 11
    assert throttle.failed("198.51.100.1", None)[0] == 0
    clock[0] += 1
    wait, started = throttle.failed("198.51.100.1", None)
    assert wait == 5 and [lock.value for lock in started] == ["198.51.100.1"]
    clock[0] += 2
    assert throttle.failed("198.51.100.1", None) == (3, [])  # locked: no second audit
    clock[0] += 4
    assert throttle.failed("198.51.100.1", None)[0] == 0  # over: a fresh window

    cache = KeyCache(size=2, ttl_s=30)
    cache.put("grk_known", Caller("k", "admin", key_id=1))
    for i in range(100):
        cache.put(f"grk_guess{i}", None)
    assert len(cache.unknown) == 2
    found, caller = cache.get("grk_known")
    assert found and caller is not None and caller.key_id == 1


# -- revocation --------------------------------------------------------------------------------
def _new_key(admin: httpx.Client, name: str, role: str = "regulator") -> tuple[str, int]:
    made = admin.post("/api/keys", json={"name": name, "role": role})
    assert made.status_code == 201, made.text
    return made.json()["key"], made.json()["id"]


def _sign_in(server: LiveServer, key: str) -> httpx.Client:
    browser = httpx.Client(base_url=server.base_url, timeout=30)
    assert browser.post("/api/auth/session", json={"key": key}).status_code == 200
    return browser


@pytest.fixture(scope="module")
def pair(database_url: str) -> Iterator[tuple[LiveServer, LiveServer]]:
    """Two app processes' worth of caches over one database: ``a`` holds the sessions with
    short revocation caches (1 s), ``b`` revokes."""
    settings = settings_for(database_url)
    settings.auth.revocation_ttl_s = 1.0
    settings.auth.key_cache_ttl_s = 1.0
    with LiveServer(settings) as a, LiveServer(settings_for(database_url)) as b:
        yield a, b


def test_a_revoked_keys_sessions_and_tokens_end_in_every_process(
    pair: tuple[LiveServer, LiveServer],
) -> None:
    """Sessions and tokens carry their key's id; after a revocation in another process they
    are refused once the (here 1-s) revocation cache has run out — the default is 10 s and
    may not exceed 30 s."""
    a, b = pair
    with b.client() as admin_b:
        key, key_id = _new_key(admin_b, f"revoke-me {uuid.uuid4().hex[:6]}")
    browser = _sign_in(a, key)
    with httpx.Client(base_url=a.base_url, headers=auth(key), timeout=30) as by_key:
        token = by_key.post("/api/auth/token").json()["access_token"]
        bearer = {"Authorization": f"Bearer {token}"}
        assert browser.get("/api/risk/summary").status_code == 200
        assert by_key.get("/api/risk/summary", headers=bearer).status_code == 200
        assert by_key.get("/api/risk/summary").status_code == 200  # a's caches are warm
        with b.client() as admin_b:
            assert admin_b.delete(f"/api/keys/{key_id}").status_code == 204
            # The revoking process refuses at once.
            assert admin_b.get("/api/auth/whoami", headers=bearer).status_code == 401
        time.sleep(1.5)  # a's caches (1 s) have run out; nothing else told it
        session = browser.get("/api/risk/summary")
        assert session.status_code == 401
        assert session.json()["errors"][0]["field"] == "session"
        assert "revoked" in session.json()["detail"]
        refused = by_key.get("/api/risk/summary", headers=bearer)
        assert refused.status_code == 401 and refused.json()["errors"][0]["field"] == "token"
        assert by_key.get("/api/risk/summary").status_code == 401  # the key itself
        state = browser.get("/api/auth/session").json()
        assert state["signed_in"] is False and "revoked" in state["reason"]
    browser.close()


def test_revoking_a_users_last_key_signs_them_out_everywhere(
    pair: tuple[LiveServer, LiveServer], database_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A user (a key's name) signed in with two keys: revoking one ends that session only;
    revoking the last one — here with ``georisk keys revoke --user`` from another process —
    ends the other too."""
    a, b = pair
    user = f"user-{uuid.uuid4().hex[:8]}"
    with b.client() as admin_b:
        key1, id1 = _new_key(admin_b, user)
        key2, _ = _new_key(admin_b, user, "officer")
    laptop, phone = _sign_in(a, key1), _sign_in(a, key2)
    assert laptop.get("/api/auth/whoami").json()["name"] == user
    assert phone.get("/api/alerts", params={"limit": 1}).status_code == 200
    with b.client() as admin_b:
        assert admin_b.delete(f"/api/keys/{id1}").status_code == 204
    time.sleep(1.5)
    assert laptop.get("/api/auth/whoami").status_code == 401
    assert phone.get("/api/auth/whoami").status_code == 200  # another key of the same user
    env = {**os.environ, "DATABASE_URL": database_url}
    done = subprocess.run(
        [sys.executable, "-m", "geo_api.cli", "keys", "revoke", "--user", user],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, done.stderr
    assert "revoked key(s)" in done.stdout
    time.sleep(1.5)
    assert phone.get("/api/auth/whoami").status_code == 401
    assert phone.get("/api/alerts").status_code == 401
    with psycopg.connect(database_url) as c:
        left = c.execute(
            "SELECT count(*) FROM api_keys WHERE name = %s AND revoked_at IS NULL", (user,)
        ).fetchone()
        assert left == (0,)
        actors = c.execute(
            "SELECT DISTINCT actor FROM audit_log WHERE entity = 'api_keys' AND action = 'update'"
            " AND after->>'name' = %s",
            (user,),
        ).fetchall()
        assert {r[0].split(":")[0] for r in actors} == {"admin", "cli"}  # who revoked, audited
    laptop.close()
    phone.close()


def test_tokens_without_a_key_are_refused(pair: tuple[LiveServer, LiveServer]) -> None:
    """A token must name its key: one without ``kid`` could never be revoked."""
    import jwt

    a, _ = pair
    stamp = int(time.time())
    claims = {"iss": "georisk", "sub": "x", "role": "admin", "iat": stamp, "exp": stamp + 60}
    orphan = jwt.encode(claims, SECRET, algorithm="HS256")
    r = httpx.get(a.base_url + "/api/auth/whoami", headers={"Authorization": f"Bearer {orphan}"})
    assert r.status_code == 401 and "kid" in r.json()["detail"]
    r = httpx.get(
        a.base_url + "/api/auth/whoami",
        headers={"Authorization": f"Bearer {jwt.encode({**claims, 'kid': 2**30}, SECRET)}"},
    )
    assert r.status_code == 401 and "revoked" in r.json()["detail"]  # no such key: refused


def test_revocation_caches_may_not_outlive_30_seconds() -> None:
    from pydantic import ValidationError

    from geo_api.settings import AuthSettings

    for name in ("key_cache_ttl_s", "revocation_ttl_s"):
        with pytest.raises(ValidationError, match=name):
            AuthSettings(**{name: 31})
    assert AuthSettings().revocation_ttl_s <= 30 and AuthSettings().key_cache_ttl_s <= 30
