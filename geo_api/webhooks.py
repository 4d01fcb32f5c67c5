"""The webhook delivery worker: one per API process, safe with many (rows are claimed with
``FOR UPDATE SKIP LOCKED``), and stateless — the outbox table is its whole state, so a restart
just carries on with whatever is due.

It wakes on ``NOTIFY georisk_webhooks`` (sent when a committed transaction queued rows; heard
through the process's change bus, layers/core/changes.py) and at least every
``poll_interval_s`` (retries that came due, rows whose lease ran out because a process died
mid-POST, or a lost notification).

No SSRF (issue 18 §5): before every POST the target is checked again by the process's
``TargetGuard`` (layers/alerts/targets.py) and the connection goes to the very address that
was checked — the URL's host is swapped for it, the Host header and the TLS server name
(SNI, and so certificate verification) keep the name — so a DNS answer that changes between
check and connect (rebinding) is never used. Redirects are not followed: a 3xx is a failed
attempt ("redirects are not followed"), since its Location would be a new, unchecked target.
Proxies from the environment are ignored for the same reason (a proxy would connect on our
behalf to whatever the name then resolves to).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import time
from typing import Any

import httpx
from psycopg_pool import AsyncConnectionPool

from geo_api.errors import database_unavailable
from geo_api.settings import WebhookSettings
from layers.alerts import webhooks as outbox
from layers.alerts.targets import Target, TargetGuard, TargetRefused
from layers.alerts.webhooks import Backoff, Delivery, Outcome
from layers.core.periodic import cancel_task

log = logging.getLogger("georisk.webhooks")


def backoff_of(settings: WebhookSettings) -> Backoff:
    return Backoff(
        base_s=settings.backoff_base_s,
        factor=settings.backoff_factor,
        max_s=settings.backoff_max_s,
        jitter=settings.jitter,
        max_attempts=settings.max_attempts,
    )


def guard_of(settings: WebhookSettings, database_url: str | None) -> TargetGuard:
    return TargetGuard(settings.allow_list, database_url, timeout_s=settings.resolve_timeout_s)


def pinned(target: Target) -> tuple[httpx.URL, dict[str, str], dict[str, Any]]:
    """URL, headers and extensions that reach ``target.address`` and nothing else, while the
    receiver still sees its own name (Host header; TLS SNI and certificate check)."""
    url = httpx.URL(target.url)
    extensions: dict[str, Any] = {}
    if target.scheme == "https" and target.host != target.address:
        extensions["sni_hostname"] = url.host
    return url.copy_with(host=target.address), {"Host": url.netloc.decode("ascii")}, extensions


class WebhookWorker:
    def __init__(
        self, pool: AsyncConnectionPool, settings: WebhookSettings, guard: TargetGuard
    ) -> None:
        self.pool = pool
        self.settings = settings
        self.guard = guard
        self.backoff = backoff_of(settings)
        self.wake = asyncio.Event()
        self.attempts_made = 0
        self._task: asyncio.Task[None] | None = None
        self._http: httpx.AsyncClient | None = None

    def on_notice(self, payload: dict[str, Any]) -> None:
        """A change bus subscriber of ``georisk_webhooks``: rows were queued, deliver now."""
        self.wake.set()

    def on_reconnect(self) -> None:
        """Wake for anything queued while the bus was not listening."""
        self.wake.set()

    async def _post(self, http: httpx.AsyncClient, d: Delivery) -> Outcome:
        body = json.dumps(
            {**d.payload, "delivery_id": d.id, "attempt": d.attempts}, ensure_ascii=False
        ).encode()
        ts = str(int(time.time()))  # this attempt's time: a retry is signed afresh
        msg_id = str(d.id)  # the outbox row: the same for every attempt of this message
        headers = {
            "Content-Type": "application/json",
            outbox.ID_HEADER: msg_id,
            outbox.STD_TIMESTAMP_HEADER: ts,
            outbox.STD_SIGNATURE_HEADER: outbox.standard_signature(
                [outbox.secret_key(d.secret)], msg_id, ts, body
            ),
            outbox.DELIVERY_HEADER: msg_id,
            outbox.EVENT_HEADER: d.event,
        }
        if self.settings.legacy_signature:
            headers[outbox.TIMESTAMP_HEADER] = ts
            headers[outbox.SIGNATURE_HEADER] = outbox.sign(d.secret, ts, body)
        try:  # again at every attempt: the name may point elsewhere since it was subscribed
            target = await self.guard.check(d.url)
        except TargetRefused as exc:
            log.warning("webhook delivery %d refused: %s", d.id, exc.reason)
            return Outcome(d, False, f"refused: {exc.reason}")
        url, host, extensions = pinned(target)
        try:
            r = await http.post(
                url, content=body, headers={**headers, **host}, extensions=extensions
            )
        except httpx.TimeoutException:
            return Outcome(d, False, "timeout")
        except httpx.HTTPError as exc:
            return Outcome(d, False, f"connection failed ({type(exc).__name__})")
        if 200 <= r.status_code < 300:
            return Outcome(d, True)
        if r.is_redirect:
            return Outcome(d, False, f"HTTP {r.status_code}: redirects are not followed")
        return Outcome(d, False, f"HTTP {r.status_code}")

    async def run_once(self) -> int:
        """Claim one batch, POST it concurrently, record the results; returns rows tried."""
        lease = self.settings.timeout_s + self.settings.lease_margin_s
        async with self.pool.connection() as conn:
            batch = await outbox.claim(conn, self.settings.batch_size, lease)
        if not batch:
            return 0
        assert self._http is not None
        outcomes = await asyncio.gather(*(self._post(self._http, d) for d in batch))
        async with self.pool.connection() as conn:
            await outbox.record(conn, outcomes, self.backoff)
        self.attempts_made += len(batch)
        failed = [o for o in outcomes if not o.ok]
        if failed:
            log.warning("%d of %d webhook deliveries failed", len(failed), len(batch))
        return len(batch)

    async def _work(self) -> None:
        while True:
            try:
                # A full batch suggests more is due: go again at once.
                while await self.run_once() >= self.settings.batch_size:
                    pass
            except Exception as exc:
                if database_unavailable(exc):  # a restart: the outbox waits, retry next round
                    log.warning("webhook delivery round: database unavailable")
                else:
                    log.exception("webhook delivery round failed")
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self.wake.wait(), self.settings.poll_interval_s)
            self.wake.clear()

    async def start(self) -> None:
        timeout = httpx.Timeout(self.settings.timeout_s)
        # No keep-alive: connections are pooled by address, and a TLS connection opened for
        # one name (its SNI) must not carry a request for another name on the same address.
        self._http = httpx.AsyncClient(
            timeout=timeout,
            follow_redirects=False,
            trust_env=False,
            limits=httpx.Limits(max_keepalive_connections=0),
        )
        self._task = asyncio.create_task(self._work())

    async def stop(self) -> None:
        await cancel_task(self._task)
        self._task = None
        if self._http is not None:
            await self._http.aclose()
            self._http = None
