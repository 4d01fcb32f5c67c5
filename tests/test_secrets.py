"""Credentials stay secret (issue 18 §1): no key or token in a log line or an error body, and no
long-lived key in a URL we hand out — TileJSON, the style and the map carry short-lived tile
tokens bound to the caller's view, accepted on tile requests only.

Two enterprises of our own stand side by side far from the demo city (128.2 E, 35.2 N).
"""

from __future__ import annotations

import io
import logging
import os
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

import httpx
import jwt
import psycopg
import pytest

from geo_api.auth import Caller
from geo_api.redaction import redact
from geo_api.tile_tokens import AUDIENCE, TileTokens
from scripts.benchkit import free_port
from tests.conftest import LiveServer, key_for, make_settings
from tests.test_tiles import decode, features, tile_of

LON, LAT = 128.20, 35.20
Z = 15


@pytest.fixture(scope="module")
def pair(database_url: str) -> Iterator[dict[str, Any]]:
    """Enterprises A (district d1) and B (district d2) ~80 m apart: one tile holds both."""
    out: dict[str, Any] = {}
    with psycopg.connect(database_url, autocommit=True) as c:
        d1, d2 = (r[0] for r in c.execute("SELECT code FROM districts ORDER BY code LIMIT 2"))
        out["d1"], out["d2"] = d1, d2
        for name, code, dx, district in (
            ("a", "9133020000CRED0A01", 0.0, d1),
            ("b", "9133020000CRED0B01", 0.0007, d2),
        ):
            (eid,) = c.execute(
                "INSERT INTO enterprises (credit_code, name, category, is_hazmat, district, geom)"
                " VALUES (%s, %s, 'storage', true, %s, ST_SetSRID(ST_Point(%s, %s), 4326))"
                " RETURNING id",
                (code, f"凭据测试公司{name.upper()}", district, LON + dx, LAT + dx),
            ).fetchone()
            out[name] = eid
        yield out
        c.execute("DELETE FROM enterprises WHERE id IN (%s, %s)", (out["a"], out["b"]))


@pytest.fixture(scope="module")
def keys(database_url: str, pair: dict[str, Any]) -> dict[str, str]:
    return {
        "admin": key_for(database_url),
        "ent_a": key_for(database_url, "enterprise", enterprise_id=pair["a"]),
        "reg_d1": key_for(database_url, "regulator", districts=[pair["d1"]]),
        "tiles": key_for(database_url, "tile_reader"),
    }


def _token_of(url: str) -> str:
    return parse_qs(urlsplit(url).query)["t"][0]


def _claims(token: str) -> dict[str, Any]:
    claims: dict[str, Any] = jwt.decode(token, options={"verify_signature": False})
    return claims


def _tile_path(layers: str) -> str:
    tile = tile_of(LON, LAT, Z)
    return f"/tiles/{layers}/{tile.z}/{tile.x}/{tile.y}.mvt"


def _enterprise_ids(body: bytes) -> set[int]:
    return {int(f["properties"]["id"]) for f in features(decode(body), "enterprises")}


# -- the access log of a real server process -------------------------------------------------
@pytest.fixture()
def served(database_url: str, tmp_path: Path) -> Iterator[tuple[str, Path]]:
    """``georisk serve`` in a process of its own, its stdout and stderr (access log included)
    captured in a file."""
    port = free_port()
    log_path = tmp_path / "server.log"
    env = {
        **os.environ,
        "GEORISK_DATABASE_URL": database_url,
        "GEORISK_DATA_DIR": str(Path(".data").resolve()),  # the tests' token secret
        "GEORISK_LOG_LEVEL": "info",
        "GEORISK_MONITORING_SWEEP_ENABLED": "false",
        "GEORISK_SCORING_ENABLED": "false",
        "GEORISK_ESCALATION_ENABLED": "false",
        "GEORISK_WEBHOOK_ENABLED": "false",
    }
    with log_path.open("wb") as out:
        proc = subprocess.Popen(
            [sys.executable, "-m", "geo_api.cli", "serve", "--port", str(port)],
            stdout=out,
            stderr=subprocess.STDOUT,
            env=env,
        )
        base = f"http://127.0.0.1:{port}"
        try:
            deadline = time.monotonic() + 60
            while True:
                try:
                    if httpx.get(base + "/healthz", timeout=2).status_code == 200:
                        break
                except httpx.TransportError:
                    pass
                assert proc.poll() is None, log_path.read_text()
                assert time.monotonic() < deadline, "server did not start"
                time.sleep(0.2)
            yield base, log_path
        finally:
            proc.terminate()
            try:
                proc.wait(timeout=15)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()


def test_the_access_log_holds_no_key_nor_token(
    served: tuple[str, Path], keys: dict[str, str]
) -> None:
    base, log_path = served
    key = keys["reg_d1"]
    secret_part = key[12:]  # what the redacted form leaves out (the prefix is listed anyway)
    with httpx.Client(base_url=base, timeout=30) as http:
        doc = http.get("/tiles/enterprises.json", params={"key": key})
        assert doc.status_code == 200
        tile_token = _token_of(doc.json()["tiles"][0])
        assert http.get(_tile_path("enterprises"), params={"key": key}).status_code in (200, 204)
        assert http.get(_tile_path("enterprises"), params={"t": tile_token}).status_code in (
            200,
            204,
        )
        assert http.get("/api/enterprises", params={"key": key}).status_code == 401
        bearer = {"Authorization": f"Bearer {key}"}
        assert http.get("/api/auth/whoami", headers=bearer).status_code == 200
        assert http.get("/api/auth/whoami", headers={"X-API-Key": key}).status_code == 200
        token = http.post("/api/auth/token", headers=bearer).json()["access_token"]
        assert http.get("/api/auth/whoami", headers={"Authorization": f"Bearer {token}"}).is_success
        # Credentials where they do not belong are still never written down.
        assert http.get("/api/alerts", params={"access_token": token}).status_code == 401
        assert http.get(f"/tiles/{key}.json", headers=bearer).status_code == 404
    time.sleep(0.5)  # the access log is written after each answer; let the last lines land
    text = log_path.read_text(encoding="utf-8")
    # The requests were logged — with the credentials cut to what an operator may see.
    assert f"/tiles/enterprises.json?key={key[:12]}…" in text, text
    assert "/api/auth/whoami" in text and "t=…" in text and "access_token=…" in text
    assert text.count('HTTP/1.1" ') >= 9
    for secret in (key, secret_part, token, tile_token, token.split(".")[2]):
        assert secret not in text


def test_log_records_are_redacted_whoever_logs_them(live_server: LiveServer) -> None:
    """Installed by create_app for every logger: messages, arguments and tracebacks."""
    key = key_for(live_server.url, "tile_reader")
    jwt_like = jwt.encode({"sub": "x"}, "s" * 32, algorithm="HS256")
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    logger = logging.getLogger("georisk.test_secrets")
    logger.addHandler(handler)
    try:
        logger.warning("headers %s", {"authorization": f"Bearer {jwt_like}", "x-api-key": key})
        logger.warning(f"called with X-API-Key: {key} and cookie georisk_session={jwt_like}")
        try:
            raise ValueError(f"cannot use {key}")
        except ValueError:
            logger.exception("failed on /tiles/a.json?key=%s", key)
    finally:
        logger.removeHandler(handler)
    text = stream.getvalue()
    assert key not in text and key[12:] not in text and jwt_like not in text
    assert text.count(f"{key[:12]}…") == 4  # the dict, the header, the traceback, the query
    assert "'authorization': 'Bearer …'" in text and "georisk_session=…" in text
    assert "ValueError: cannot use" in text  # the traceback is still there


def test_redaction_rules() -> None:
    key = "grk_ABCDEFGHijklmnopqrstuvwxyz0123456789abcdef"
    assert redact(f"GET /x?v=2&key={key}&z=1") == "GET /x?v=2&key=grk_ABCDEFGH…&z=1"
    assert redact("postgresql://georisk:hunter22@db:5432/g") == "postgresql://georisk:…@db:5432/g"
    assert redact("/tiles/a/1/2/3.mvt?t=abc.def.ghi&v=3") == "/tiles/a/1/2/3.mvt?t=…&v=3"
    assert redact("Authorization: Basic dXNlcjpwYXNz") == "Authorization: Basic …"
    # Words that merely look alike are left alone.
    assert redact("at=2024-05-01&from=x&state=ok") == "at=2024-05-01&from=x&state=ok"


def test_error_bodies_never_echo_a_credential(
    live_server: LiveServer, keys: dict[str, str]
) -> None:
    key = keys["admin"]
    with live_server.client(key=key) as http:
        r = http.get(f"/tiles/{key}/1/0/0.mvt")  # the "layer" named in the 404 is the key
        assert r.status_code == 404 and r.json()["errors"][0]["field"] == "layer"
        assert key not in r.text and f"{key[:12]}…" in r.text


# -- tile tokens ---------------------------------------------------------------------------------
def test_tilejson_and_style_carry_a_token_never_the_key(
    live_server: LiveServer, keys: dict[str, str]
) -> None:
    base, key = live_server.base_url, keys["reg_d1"]
    doc = httpx.get(base + "/tiles/enterprises,districts.json", params={"key": key})
    assert doc.status_code == 200 and key not in doc.text
    assert doc.headers["cache-control"] == "private, no-store"
    claims = _claims(_token_of(doc.json()["tiles"][0]))
    assert claims["aud"] == AUDIENCE and claims["role"] == "regulator"
    assert claims["lyr"] == ["districts", "enterprises"] and isinstance(claims["kid"], int)
    assert claims["exp"] - claims["iat"] == live_server_ttl(live_server)
    # A track's time window stays in the tile URLs; the key does not.
    tracks = httpx.get(
        base + "/tiles/tanker_tracks.json",
        params={"key": key, "from": "2026-01-01T00:00:00Z", "to": "2026-01-01T01:00:00Z"},
    ).json()["tiles"][0]
    assert "from=2026-01-01" in tracks and "key=" not in tracks and "t=" in tracks

    style = httpx.get(base + "/styles/risk.json", params={"key": key})
    assert style.status_code == 200 and key not in style.text
    sources = style.json()["sources"]
    tokens = {_token_of(source["tiles"][0]) for source in sources.values()}
    assert len(tokens) == 1  # one token for the whole style …
    assert set(_claims(tokens.pop())["lyr"]) == set(sources)  # … naming each of its layers


def live_server_ttl(server: LiveServer) -> int:
    ttl: int = server.server.config.app.state.tile_tokens.ttl_s
    return ttl


def test_a_token_reads_tiles_and_nothing_else(
    live_server: LiveServer, keys: dict[str, str], pair: dict[str, Any]
) -> None:
    base = live_server.base_url
    with live_server.client(key=keys["admin"]) as admin:
        issued = admin.get("/tiles/token", params={"layers": "enterprises"})
    assert issued.status_code == 200 and issued.json()["layers"] == ["enterprises"]
    token = issued.json()["token"]
    with httpx.Client(base_url=base, timeout=30) as anonymous:
        tile = anonymous.get(_tile_path("enterprises"), params={"t": token})
        assert tile.status_code == 200
        assert {pair["a"], pair["b"]} <= _enterprise_ids(tile.content)
        # The route (another parameter) and the fast path (``v=`` only) agree.
        routed = anonymous.get(_tile_path("enterprises"), params={"t": token, "at": "2026-01-01"})
        assert routed.status_code == 200
        assert _enterprise_ids(routed.content) == _enterprise_ids(tile.content)
        # Nowhere else: not the API, not TileJSON, not a successor token, not as a bearer.
        for path in ("/api/enterprises", "/tiles/enterprises.json", "/tiles/token", "/tiles"):
            r = anonymous.get(path, params={"t": token})
            assert r.status_code == 401 and r.json()["errors"][0]["field"] == "credentials"
        r = anonymous.get("/api/auth/whoami", headers={"Authorization": f"Bearer {token}"})
        assert r.status_code == 401 and r.json()["errors"][0]["field"] == "token"
        r = anonymous.get(_tile_path("enterprises"), headers={"Authorization": f"Bearer {token}"})
        assert r.status_code == 401
        # Nor is a bearer token a tile token.
        with live_server.client(key=keys["admin"]) as admin:
            bearer = admin.post("/api/auth/token").json()["access_token"]
        r = anonymous.get(_tile_path("enterprises"), params={"t": bearer})
        assert r.status_code == 401 and r.json()["errors"] == [
            {"field": "t", "reason": "not a tile token signed by this server"}
        ]


def test_a_token_is_bound_to_its_view_and_layers(
    live_server: LiveServer, keys: dict[str, str], pair: dict[str, Any]
) -> None:
    base = live_server.base_url
    with live_server.client(key=keys["ent_a"]) as ent_a:
        token = ent_a.get("/tiles/token").json()["token"]
        only_enterprises = _token_of(ent_a.get("/tiles/enterprises.json").json()["tiles"][0])
    claims = _claims(token)
    assert claims["role"] == "enterprise" and claims["ent"] == pair["a"]
    with httpx.Client(base_url=base, timeout=30) as anonymous:
        # Enterprise A's token shows A's site and never B's, though the tile holds both.
        tile = anonymous.get(_tile_path("enterprises"), params={"t": token})
        assert tile.status_code == 200 and _enterprise_ids(tile.content) == {pair["a"]}
        # A TileJSON's token reads that TileJSON's layers only.
        r = anonymous.get(_tile_path("enterprises"), params={"t": only_enterprises})
        assert r.status_code == 200
        r = anonymous.get(_tile_path("hazard_sources"), params={"t": only_enterprises})
        assert r.status_code == 403 and r.json()["errors"] == [
            {"field": "layer", "reason": "hazard_sources: not covered by this tile token"}
        ]
        # A layer the role may not read stays closed, whatever a token says.
        r = anonymous.get(_tile_path("tankers"), params={"t": token})
        assert r.status_code == 403 and r.json()["errors"][0]["field"] == "layer"
        # Changing the view inside the token breaks its signature.
        head, _, rest = token.partition(".")
        forged_claims = {**claims, "role": "admin"}
        forged_claims.pop("ent")
        body = jwt.encode(forged_claims, "x" * 32, algorithm="HS256").split(".")[1]
        forged = f"{head}.{body}.{rest.split('.')[1]}"
        r = anonymous.get(_tile_path("enterprises"), params={"t": forged})
        assert r.status_code == 401 and r.json()["errors"][0]["field"] == "t"
        assert r.headers["www-authenticate"].startswith("Bearer")


def test_an_expired_or_revoked_token_is_refused(
    live_server: LiveServer, keys: dict[str, str]
) -> None:
    app = live_server.server.config.app
    tokens: TileTokens = app.state.tile_tokens
    with live_server.client(key=keys["admin"]) as http:
        listed = http.get("/api/keys").json()["keys"]
    kid = next(k["id"] for k in listed if keys["admin"].startswith(k["prefix"]))
    admin = Caller(name="test admin", role="admin", key_id=kid)  # an active key
    expired, _ = tokens.issue(admin, ["enterprises"], now=time.time() - 3600, ttl_s=600)
    with httpx.Client(base_url=live_server.base_url, timeout=30) as anonymous:
        r = anonymous.get(_tile_path("enterprises"), params={"t": expired})
        assert r.status_code == 401
        assert r.json()["errors"][0]["field"] == "t" and "expired" in r.json()["detail"]
        # A token cached as valid still ends at its expiry.
        short, expires = tokens.issue(admin, ["enterprises"], ttl_s=2)
        assert anonymous.get(_tile_path("enterprises"), params={"t": short}).status_code == 200
        time.sleep(max(0.0, expires - time.time()) + 0.2)
        assert anonymous.get(_tile_path("enterprises"), params={"t": short}).status_code == 401
        # Revocation: the authenticator's key_id_active (issue 18 §4) is asked on every use.
        live, _ = tokens.issue(admin, ["enterprises"])
        assert anonymous.get(_tile_path("enterprises"), params={"t": live}).status_code == 200
        auth = app.state.auth
        had = "key_id_active" in vars(auth)
        original = vars(auth).get("key_id_active")

        async def revoked(key_id: int) -> bool:
            return key_id != kid

        auth.key_id_active = revoked
        try:
            r = anonymous.get(_tile_path("enterprises"), params={"t": live})
            assert r.status_code == 401 and r.json()["errors"] == [
                {"field": "t", "reason": "its key has been revoked"}
            ]
        finally:
            if had:
                auth.key_id_active = original
            else:
                del auth.key_id_active


def test_the_anonymous_public_map_gets_no_token(database_url: str) -> None:
    """Its tile URLs need no credential; a token would split shared caches per visitor."""
    settings = make_settings(database_url)
    settings.auth.anonymous_role = "tile_reader"
    with LiveServer(settings) as server, httpx.Client(base_url=server.base_url) as anonymous:
        assert anonymous.get("/tiles/token").json()["token"] is None
        url = anonymous.get("/tiles/districts.json").json()["tiles"][0]
        assert "t=" not in url and "?" not in url
        tile = anonymous.get(_tile_path("districts"))
        assert tile.headers["cache-control"].startswith("public")
