"""Throttling failed sign-ins and unknown keys (issue 18 §3).

What counts as a failure: an unknown, revoked or expired API key on any route (header or
``?key=``) and a failed sign-in (``POST /api/auth/session``). Signed tokens and the session
cookie do not count: a forged HS256 token cannot be guessed, and an expired one, or one whose key
was revoked, is a stale browser tab, not an attack. Sending no credentials is no failure either.

Each failure is charged to two subjects: the **client address** (the socket peer; the
``X-Forwarded-For`` address only when the peer is a configured trusted proxy, so a client cannot
name itself someone else) and the **key prefix** presented (its first twelve characters, the
part key listings show). A scanner on one address is stopped by the first; a revoked key still
sent by a fleet of devices, by the second.

A subject keeps the times of its last ``max_failures`` failures (a sliding window); when they
all fall within ``window_s`` it is locked out for ``lockout_s``. While locked out, its failures
are answered 429 with ``Retry-After``, and the lockout is audited once (``Authenticator``).

Successful callers are never counted and never slowed: credentials are still checked during a
lockout and valid ones pass. Keys carry 256 random bits, so the lockout is not what stops a
guess; it stops floods of wrong keys, tells misconfigured clients to back off, and makes
scanners visible — without locking out the people behind the same NAT as a scanner.

Memory is bounded: at most ``max_entries`` addresses and as many prefixes, each with at most
``max_failures`` times; the least recently failing are forgotten first. The state is per
process: N processes allow up to N times the failures before every one of them has locked out.
"""

from __future__ import annotations

import ipaddress
import math
import time
from collections import OrderedDict, deque
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Final

from starlette.requests import HTTPConnection

from geo_api.settings import ThrottleSettings

ADDRESS: Final = "address"
KEY_PREFIX: Final = "key prefix"


@dataclass
class _Record:
    times: deque[float]
    locked_until: float = 0.0


@dataclass(frozen=True)
class Lockout:
    """A subject just locked out: what the audit log and the server log record."""

    subject: str  # ADDRESS or KEY_PREFIX
    value: str
    failures: int
    window_s: float
    lockout_s: float


@dataclass
class FailureLog:
    """One kind of subject: a bounded LRU of subject → its recent failures and lockout."""

    max_entries: int
    max_failures: int
    window_s: float
    lockout_s: float
    _records: OrderedDict[str, _Record] = field(default_factory=OrderedDict)

    def __len__(self) -> int:
        return len(self._records)

    def fail(self, subject: str, now: float) -> tuple[float, bool]:
        """Count a failure of ``subject``: (seconds it stays locked out, 0 if not; whether
        this failure started the lockout)."""
        record = self._records.get(subject)
        if record is None:
            record = _Record(deque(maxlen=self.max_failures))
            self._records[subject] = record
            while len(self._records) > self.max_entries:
                self._records.popitem(last=False)
        else:
            self._records.move_to_end(subject)
        if record.locked_until > now:
            return record.locked_until - now, False
        record.times.append(now)
        if len(record.times) == self.max_failures and now - record.times[0] <= self.window_s:
            record.locked_until = now + self.lockout_s
            record.times.clear()  # after the lockout, a fresh window
            return self.lockout_s, True
        return 0.0, False


class Throttle:
    """Failures per client address and per key prefix; one per app."""

    def __init__(
        self,
        settings: ThrottleSettings,
        proxies: tuple[ipaddress.IPv4Network | ipaddress.IPv6Network, ...] = (),
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.settings = settings
        self.enabled = settings.enabled
        self.clock = clock
        #: GEORISK_SECURITY_TRUSTED_PROXIES, the list uvicorn believes too (one setting).
        self.proxies = proxies
        logs = (settings.max_entries, settings.max_failures, settings.window_s, settings.lockout_s)
        self.addresses = FailureLog(*logs)
        self.prefixes = FailureLog(*logs)

    def failed(self, address: str, prefix: str | None) -> tuple[float, list[Lockout]]:
        """Count one failure: (seconds the caller is locked out, 0 if not; new lockouts)."""
        now = self.clock()
        wait, lockouts = 0.0, []
        for subject, log, value in (
            (ADDRESS, self.addresses, address),
            (KEY_PREFIX, self.prefixes, prefix),
        ):
            if value is None:
                continue
            left, started = log.fail(value, now)
            wait = max(wait, left)
            if started:
                s = self.settings
                lockouts.append(Lockout(subject, value, s.max_failures, s.window_s, s.lockout_s))
        return wait, lockouts

    def _trusted(self, address: str) -> bool:
        try:
            ip = ipaddress.ip_address(address)
        except ValueError:
            return False
        return any(ip in network for network in self.proxies)

    def client_address(self, conn: HTTPConnection) -> str:
        """The socket peer; behind trusted proxies, the nearest address in X-Forwarded-For
        that is not one of them (read right to left: the left part is whatever the client
        wrote)."""
        peer = conn.client.host if conn.client is not None else "unknown"
        if not self.proxies or not self._trusted(peer):
            return peer
        hops = [h.strip() for v in conn.headers.getlist("x-forwarded-for") for h in v.split(",")]
        client = peer
        for hop in reversed(hops):
            try:
                client = str(ipaddress.ip_address(hop))
            except ValueError:
                break  # garbage: trust nothing further left
            if not self._trusted(client):
                break
        return client


def retry_after(seconds: float) -> int:
    """Whole seconds for ``Retry-After`` (RFC 9110 §10.2.3), at least 1."""
    return max(1, math.ceil(seconds))
