"""Weight and speed of the regulator's map: time to first drawn features and bytes transferred
for the first view of ``/`` in headless Debian chromium (issue 5 targets: ≤ 2 s, ≤ 3 MB).

By default it serves the scale-1 demo database (``georisk`` in the private cluster) itself, on a
**read-only** connection (``default_transaction_read_only``), so nothing the page or the
background workers do can write to it. ``--url`` measures an already running server instead.

Each run uses a fresh browser context (empty HTTP cache); the first run also meets a cold
server-side tile cache, later runs a warm one — both are printed.

The map needs a signed-in session (issue 8). Each context signs in before the page opens,
outside the measured view: with ``--key`` by ``POST /api/auth/session`` (the map's own sign-in;
the cookie it sets is what the page's fetches send); without it, the script's own server
(read-only: no key can be made in its database) hands the context an admin session cookie it
signed itself, and for ``--url`` the admin key ``make run`` keeps in ``<data dir>/demo_keys.json``
is used.

    .venv/bin/python -m scripts.bench_web [--runs 5] [--url http://127.0.0.1:8000] [--key grk_…]
"""

from __future__ import annotations

import argparse
import json
import logging
import socket
import statistics
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import uvicorn

from geo_api.app import create_app
from geo_api.auth import SESSION_COOKIE, Caller
from geo_api.settings import (
    DatabaseSettings,
    EscalationSettings,
    ServerSettings,
    Settings,
    WebhookSettings,
)

CHROMIUM = "/usr/bin/chromium"
FLAGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
TARGET_S, TARGET_BYTES = 2.0, 3 * 1024 * 1024


@dataclass
class Run:
    first_drawn_s: float
    bytes: int
    requests: int
    features: int
    failed: list[str]


def _read_only(url: str) -> str:
    parts = urlsplit(url)
    opt = "options=-c%20default_transaction_read_only%3Don"
    return urlunsplit(parts._replace(query=f"{parts.query}&{opt}" if parts.query else opt))


class _Server:
    """uvicorn in a thread, as the tests do, over a read-only connection."""

    def __init__(self, db_url: str) -> None:
        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            self.port = int(s.getsockname()[1])
        settings = Settings(
            db=DatabaseSettings(url=_read_only(db_url)),
            server=ServerSettings(),
            webhook=WebhookSettings(enabled=False),
            escalation=EscalationSettings(enabled=False),
        )
        self.app = create_app(settings)
        self.session_ttl_s = settings.auth.session_ttl_s
        config = uvicorn.Config(self.app, host="127.0.0.1", port=self.port, log_level="error")
        self.server = uvicorn.Server(config)
        self.thread = threading.Thread(target=self.server.run, daemon=True)

    def __enter__(self) -> str:
        self.thread.start()
        deadline = time.monotonic() + 30
        while not self.server.started:
            if time.monotonic() > deadline:
                raise RuntimeError("server did not start")
            time.sleep(0.05)
        return f"http://127.0.0.1:{self.port}"

    def __exit__(self, *exc: object) -> None:
        self.server.should_exit = True
        self.thread.join(timeout=10)

    def session_cookie(self) -> str:
        """An admin session, signed as ``POST /api/auth/session`` would sign it."""
        caller = Caller(name="bench_web", role="admin", via="session")
        return str(self.app.state.auth.issue_token(caller, self.session_ttl_s))


SignIn = Callable[[Any, str], None]  # (BrowserContext, base URL)


def sign_in_with_key(key: str) -> SignIn:
    def sign_in(context: Any, base: str) -> None:
        r = context.request.post(base + "/api/auth/session", data={"key": key})
        if not r.ok:
            raise RuntimeError(f"sign-in refused: {r.status} {r.text()[:300]}")

    return sign_in


def sign_in_with_cookie(token: str) -> SignIn:
    def sign_in(context: Any, base: str) -> None:
        context.add_cookies([{"name": SESSION_COOKIE, "value": token, "url": base + "/"}])

    return sign_in


def demo_admin_key() -> str | None:
    """The admin key ``make run`` printed and kept (layers/demo_city/keys.py), if any."""
    path = Path(DatabaseSettings().data_dir) / "demo_keys.json"
    if not path.exists():
        return None
    return next((e["key"] for e in json.loads(path.read_text()) if e["role"] == "admin"), None)


def measure(browser: Any, base: str, sign_in: SignIn) -> Run:
    """One cold-cache first view: navigation start → first tile with features drawn."""
    context = browser.new_context(viewport={"width": 1280, "height": 800})
    sign_in(context, base)  # before the page and its counters exist: not measured
    page = context.new_page()
    cdp = context.new_cdp_session(page)
    cdp.send("Network.enable")
    cdp.send("Network.setCacheDisabled", {"cacheDisabled": True})
    sizes: dict[str, int] = {}
    cdp.on(
        "Network.loadingFinished",
        lambda e: sizes.__setitem__(e["requestId"], int(e["encodedDataLength"])),
    )
    failed: list[str] = []

    def response(e: dict[str, Any]) -> None:
        if e["response"]["status"] >= 400:
            failed.append(f"{e['response']['status']} {urlsplit(e['response']['url']).path}")

    cdp.on("Network.responseReceived", response)
    page.goto(base + "/")
    page.wait_for_function("() => window.GeoRisk && GeoRisk.stats.firstDrawnAt", timeout=30_000)
    first = float(page.evaluate("GeoRisk.stats.firstDrawnAt")) / 1000
    # The first view is complete once no new tile has arrived for a second.
    last, stable_since = -1, time.monotonic()
    while time.monotonic() - stable_since < 1.0:
        n = int(page.evaluate("GeoRisk.stats.tilesLoaded"))
        if n != last:
            last, stable_since = n, time.monotonic()
        time.sleep(0.1)
    drawn = page.evaluate("GeoRisk.stats.drawn")
    context.close()
    features = sum(int(v) for v in drawn.values())
    return Run(first, sum(sizes.values()), len(sizes), features, failed)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--url", help="an already running server (default: serve --db-url)")
    parser.add_argument("--db-url", help="PostGIS of the scale-1 demo city (default: georisk)")
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--key", help="API key to sign in with (see above for the default)")
    parser.add_argument("--verbose", action="store_true", help="show the server's error log")
    args = parser.parse_args()
    if not args.verbose:
        # Failed responses are listed below; their tracebacks would bury the table.
        logging.disable(logging.CRITICAL)

    from playwright.sync_api import sync_playwright

    def run_all(base: str, sign_in: SignIn) -> list[Run]:
        with sync_playwright() as pw:
            browser = pw.chromium.launch(executable_path=CHROMIUM, args=FLAGS)
            try:
                return [measure(browser, base, sign_in) for _ in range(args.runs)]
            finally:
                browser.close()

    if args.url:
        key = args.key or demo_admin_key()
        if not key:
            parser.error("--url needs --key (no admin key in the data dir's demo_keys.json)")
        runs = run_all(args.url.rstrip("/"), sign_in_with_key(key))
    else:
        db_url = args.db_url or DatabaseSettings(name="georisk").resolved_url()
        server = _Server(db_url)
        with server as base:
            how = sign_in_with_key(args.key) if args.key else None
            runs = run_all(base, how or sign_in_with_cookie(server.session_cookie()))

    print(f"{'run':>4} {'first features':>15} {'transferred':>12} {'requests':>9} {'features':>9}")
    for i, r in enumerate(runs, 1):
        note = "  (cold server cache)" if i == 1 else ""
        print(
            f"{i:>4} {r.first_drawn_s:>13.2f} s {r.bytes / 1e6:>9.2f} MB {r.requests:>9}"
            f" {r.features:>9}{note}"
        )
    failed = sorted({f for r in runs for f in r.failed})
    if failed:
        print("failed responses during the views (not counted as drawn):", ", ".join(failed))
    med_t = statistics.median(r.first_drawn_s for r in runs)
    med_b = statistics.median(r.bytes for r in runs)
    worst_t, worst_b = max(r.first_drawn_s for r in runs), max(r.bytes for r in runs)
    print(
        f"median: first features {med_t:.2f} s (worst {worst_t:.2f} s, target ≤ {TARGET_S:g} s,"
        f" {'met' if worst_t <= TARGET_S else 'MISSED'}); transferred {med_b / 1e6:.2f} MB"
        f" (worst {worst_b / 1e6:.2f} MB, target ≤ {TARGET_BYTES / 2**20:g} MB,"
        f" {'met' if worst_b <= TARGET_BYTES else 'MISSED'})"
    )


if __name__ == "__main__":
    main()
