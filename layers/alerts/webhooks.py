"""Alert webhooks through a persisted outbox (issue 6): the SQL and the rules, no HTTP server.

Why an outbox: an alert change and the deliveries it causes are written in the same
transaction (``enqueue`` is called by whoever bumps an alert's revision), so a crash can never
leave an alert without its webhooks or a webhook for an alert that was rolled back. The unique
(subscription, alert, revision) key makes a replayed batch enqueue nothing new. Delivery is
at-least-once: receivers dedupe by ``webhook-id`` (= ``X-GeoRisk-Delivery``, the outbox row:
the same across retries) or by (alert id, revision).

Signatures follow Standard Webhooks (issue 16 §5), so receivers can use a stock verifier:
``webhook-signature: v1,<base64 HMAC-SHA256(key, "<webhook-id>.<webhook-timestamp>.<body>")>``
where the key is the bytes behind the ``whsec_<base64>`` secret shown at subscription. The
header is a space-separated list so that, once secrets can be rotated, old and new keys can
sign side by side (``standard_signature`` already takes several keys). Our earlier
``X-GeoRisk-Signature`` (hex HMAC keyed by the secret's text) is still sent while
``GEORISK_WEBHOOK_LEGACY_SIGNATURE`` is on, for receivers written against it.

A claimed row is leased (``next_attempt_at`` moved past the HTTP timeout) in a short
transaction of its own, so no transaction stays open during a POST, and a process killed
mid-POST leaves a row that simply becomes due again when the lease runs out.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import random
import secrets
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any, Final

from psycopg import AsyncConnection
from psycopg.rows import dict_row, tuple_row
from psycopg.types.json import Jsonb

#: Channel the worker LISTENs on, so a committed enqueue is delivered without waiting a poll.
WEBHOOK_CHANNEL: Final = "georisk_webhooks"
# Standard Webhooks headers (lower case, as the spec writes them; HTTP names are caseless).
ID_HEADER: Final = "webhook-id"
STD_TIMESTAMP_HEADER: Final = "webhook-timestamp"
STD_SIGNATURE_HEADER: Final = "webhook-signature"
SECRET_PREFIX: Final = "whsec_"
#: Key sizes the spec allows for a ``whsec_`` secret (24 to 64 bytes).
KEY_BYTES: Final = (24, 64)
# Ours before Standard Webhooks: sent for a transition while the legacy setting is on.
SIGNATURE_HEADER: Final = "X-GeoRisk-Signature"
TIMESTAMP_HEADER: Final = "X-GeoRisk-Timestamp"
DELIVERY_HEADER: Final = "X-GeoRisk-Delivery"
EVENT_HEADER: Final = "X-GeoRisk-Event"

# The alert as receivers see it: a snapshot of this revision, built where the row is.
_ALERT_JSON = """json_build_object(
  'id', a.id, 'revision', a.revision, 'rule', a.rule, 'status', a.status,
  'severity', a.severity, 'active', a.active, 'district', a.district,
  'vehicle_id', a.vehicle_id, 'plate', v.plate, 'carrier', v.carrier,
  'enterprise_id', a.enterprise_id, 'zone_id', a.zone_id, 'zone_name', z.name,
  'zone_kind', z.kind, 'stop_id', a.stop_id, 'episode_start', a.episode_start,
  'episode_end', a.episode_end, 'lon', ST_X(a.geom), 'lat', ST_Y(a.geom),
  'details', a.details, 'ack_deadline', a.ack_deadline,
  'dispose_deadline', a.dispose_deadline, 'escalation_level', a.escalation_level,
  'escalated_at', a.escalated_at, 'acknowledged_at', a.acknowledged_at,
  'acknowledged_by', a.acknowledged_by, 'disposed_at', a.disposed_at,
  'outcome', a.outcome, 'note', a.note, 'updated_at', a.updated_at,
  'departments', a.departments, 'carrier_notified', a.carrier_notified)"""

_ENQUEUE = (
    "WITH e AS (SELECT a.*, coalesce(%(event)s::text, CASE WHEN a.revision = 1"
    " THEN 'alert.created' ELSE 'alert.updated' END) AS event FROM alerts a"
    " WHERE a.id = ANY(%(ids)s::int8[]))"
    " INSERT INTO webhook_outbox (subscription_id, alert_id, revision, event, payload)"
    " SELECT s.id, a.id, a.revision, a.event,"
    " jsonb_build_object('event', a.event, 'alert', " + _ALERT_JSON.replace("\n", " ") + ")"
    " FROM e a JOIN webhook_subscriptions s ON s.active"
    " AND (s.districts IS NULL OR a.district = ANY(s.districts))"
    " AND (s.rules IS NULL OR a.rule = ANY(s.rules))"
    " LEFT JOIN vehicles v ON v.id = a.vehicle_id LEFT JOIN zones z ON z.id = a.zone_id"
    " ON CONFLICT (subscription_id, alert_id, revision) DO NOTHING"
    " RETURNING id"
)

# SKIP LOCKED: several worker processes claim disjoint rows without waiting on each other.
_CLAIM = (
    "UPDATE webhook_outbox o SET attempts = o.attempts + 1,"
    " next_attempt_at = now() + %(lease)s * interval '1 second'"
    " FROM (SELECT o2.id FROM webhook_outbox o2"
    " JOIN webhook_subscriptions s ON s.id = o2.subscription_id AND s.active"
    " WHERE o2.next_attempt_at <= now() ORDER BY o2.next_attempt_at, o2.id"
    " LIMIT %(limit)s FOR UPDATE OF o2 SKIP LOCKED) due, webhook_subscriptions s"
    " WHERE o.id = due.id AND s.id = o.subscription_id"
    " RETURNING o.id, o.alert_id, o.revision, o.event, o.payload, o.attempts, s.url, s.secret"
)

# Guarded by the lease: a row re-claimed by another worker after our lease ran out has a
# higher ``attempts`` and is not overwritten by our late result.
_RECORD = (
    "UPDATE webhook_outbox o SET"
    " delivered_at = CASE WHEN r.ok THEN now() END,"
    " next_attempt_at = CASE WHEN r.ok OR r.delay_s IS NULL THEN NULL"
    " ELSE now() + r.delay_s * interval '1 second' END,"
    " last_error = r.error"
    " FROM unnest(%(id)s::int8[], %(attempts)s::int4[], %(ok)s::bool[], %(delay)s::float8[],"
    " %(error)s::text[]) AS r(id, attempts, ok, delay_s, error)"
    " WHERE o.id = r.id AND o.attempts = r.attempts AND o.delivered_at IS NULL"
)

_SUB_COLUMNS = "id, url, districts, rules, active, created_at"


@dataclass(frozen=True)
class Delivery:
    """A claimed outbox row: what to POST, where, and with which key."""

    id: int
    alert_id: int | None  # None: a non-alert event (enqueue_event)
    revision: int
    event: str
    payload: dict[str, Any]
    attempts: int
    url: str
    secret: str


@dataclass(frozen=True)
class Outcome:
    """What one attempt came to; ``error`` is our own short words ("HTTP 503", "timeout")."""

    delivery: Delivery
    ok: bool
    error: str | None = None


@dataclass(frozen=True)
class Backoff:
    """Exponential back-off with jitter, capped; after ``max_attempts`` the row is given up."""

    base_s: float = 2.0
    factor: float = 2.0
    max_s: float = 3600.0
    jitter: float = 0.5
    max_attempts: int = 10

    def delay(self, attempts: int, rnd: random.Random | None = None) -> float | None:
        """Seconds until the next try after ``attempts`` failures, or None to give up.

        The jitter scatters the retries of many rows that failed together (a receiver that
        was down) so they do not all hit it again in the same instant.
        """
        if attempts >= self.max_attempts:
            return None
        raw = min(self.max_s, self.base_s * self.factor ** max(0, attempts - 1))
        return raw * (1.0 - self.jitter * (rnd or random).random())


def new_secret() -> str:
    """A Standard Webhooks secret: ``whsec_`` and the base64 of 32 random bytes."""
    return SECRET_PREFIX + base64.b64encode(secrets.token_bytes(32)).decode("ascii")


def secret_key(secret: str) -> bytes:
    """The HMAC key behind a stored secret: the bytes a ``whsec_`` secret encodes, or the UTF-8
    of a plain one (subscriptions made before Standard Webhooks, or given by the client)."""
    if secret.startswith(SECRET_PREFIX):
        return base64.b64decode(secret[len(SECRET_PREFIX) :], validate=True)
    return secret.encode()


def shown_secret(secret: str) -> str:
    """The secret as a receiver's stock verifier takes it: always ``whsec_<base64 of the key>``
    (a plain secret is shown by the same key, so both signatures keep verifying)."""
    if secret.startswith(SECRET_PREFIX):
        return secret
    return SECRET_PREFIX + base64.b64encode(secret.encode()).decode("ascii")


def check_secret(secret: str) -> str | None:
    """Why a client-given secret is unusable, or None. A ``whsec_`` secret must be base64 of
    24–64 bytes (the spec's range); any other text is a plain key (16+ characters elsewhere)."""
    if not secret.startswith(SECRET_PREFIX):
        return None
    try:
        key = base64.b64decode(secret[len(SECRET_PREFIX) :], validate=True)
    except (binascii.Error, ValueError):
        return "whsec_ must be followed by base64"
    if not KEY_BYTES[0] <= len(key) <= KEY_BYTES[1]:
        return f"whsec_ key must be {KEY_BYTES[0]} to {KEY_BYTES[1]} bytes, not {len(key)}"
    return None


def standard_signature(keys: Sequence[bytes], msg_id: str, timestamp: str, body: bytes) -> str:
    """The ``webhook-signature`` value: one ``v1,<base64 HMAC-SHA256>`` per key, space-separated.

    What is signed is ``<id>.<timestamp>.<body>``: the timestamp, so a captured request cannot
    be replayed later under a fresh one; the id, so it cannot be passed off as another message.
    """
    signed = msg_id.encode() + b"." + timestamp.encode() + b"." + body
    return " ".join(
        "v1," + base64.b64encode(hmac.new(key, signed, hashlib.sha256).digest()).decode("ascii")
        for key in keys
    )


def sign(secret: str, timestamp: str, body: bytes) -> str:
    """Legacy ``X-GeoRisk-Signature``: ``sha256=<hex>`` of ``timestamp.body`` keyed by the
    secret's text, exactly as before Standard Webhooks (kept for a transition)."""
    mac = hmac.new(secret.encode(), timestamp.encode() + b"." + body, hashlib.sha256)
    return "sha256=" + mac.hexdigest()


def verify(secret: str, timestamp: str, body: bytes, signature: str) -> bool:
    return hmac.compare_digest(sign(secret, timestamp, body), signature)


async def enqueue(
    conn: AsyncConnection[Any], alert_ids: Iterable[int], event: str | None = None
) -> int:
    """Queue the current revision of ``alert_ids`` for every matching active subscription.

    Must run in the transaction that changed the alerts. ``event`` defaults to
    ``alert.created`` for revision 1 and ``alert.updated`` otherwise. Returns rows queued.
    """
    ids = sorted(set(alert_ids))
    if not ids:
        return 0
    cur = conn.cursor(row_factory=tuple_row)
    await cur.execute(_ENQUEUE.encode(), {"ids": ids, "event": event})
    queued = len(await cur.fetchall())
    if queued:
        await cur.execute("SELECT pg_notify(%s, %s)", (WEBHOOK_CHANNEL, str(queued)))
    return queued


#: Non-alert events (safety scores, licences: layers/prevention/events.py). A subscription
#: with a ``rules`` list receives such an event only when the list names it.
_ENQUEUE_EVENT = (
    "INSERT INTO webhook_outbox (subscription_id, alert_id, revision, event, payload, event_key)"
    " SELECT s.id, NULL, 0, %(event)s, %(payload)s, %(key)s FROM webhook_subscriptions s"
    " WHERE s.active AND (s.districts IS NULL OR %(district)s::text = ANY(s.districts))"
    " AND (s.rules IS NULL OR %(event)s = ANY(s.rules))"
    " ON CONFLICT (subscription_id, event_key) WHERE event_key IS NOT NULL DO NOTHING"
    " RETURNING id"
)


async def enqueue_event(
    conn: AsyncConnection[Any], event: str, key: str, district: str | None, body: dict[str, Any]
) -> int:
    """Queue a non-alert event (``score.deducted``, ``licence.expiring``…) once per ``key``
    for every matching subscription, in the caller's transaction. Returns rows queued."""
    cur = conn.cursor(row_factory=tuple_row)
    payload = Jsonb({"event": event, **body})
    await cur.execute(
        _ENQUEUE_EVENT, {"event": event, "payload": payload, "key": key, "district": district}
    )
    queued = len(await cur.fetchall())
    if queued:
        await cur.execute("SELECT pg_notify(%s, %s)", (WEBHOOK_CHANNEL, str(queued)))
    return queued


async def claim(conn: AsyncConnection[Any], limit: int, lease_s: float) -> list[Delivery]:
    """Take up to ``limit`` due rows for this worker (commit right after, then POST)."""
    cur = conn.cursor(row_factory=tuple_row)
    await cur.execute(_CLAIM.encode(), {"limit": limit, "lease": lease_s})
    return [Delivery(*row) for row in await cur.fetchall()]


async def record(conn: AsyncConnection[Any], outcomes: Sequence[Outcome], backoff: Backoff) -> None:
    """Write the attempts' results in one statement: delivered, retry later, or give up."""
    if not outcomes:
        return
    delays = [None if o.ok else backoff.delay(o.delivery.attempts) for o in outcomes]
    errors = [
        o.error if o.ok or d is not None else f"{o.error}; gave up"
        for o, d in zip(outcomes, delays, strict=True)
    ]
    params = {
        "id": [o.delivery.id for o in outcomes],
        "attempts": [o.delivery.attempts for o in outcomes],
        "ok": [o.ok for o in outcomes],
        "delay": delays,
        "error": errors,
    }
    await conn.execute(_RECORD.encode(), params)


# -- subscriptions -------------------------------------------------------------------------
async def create_subscription(
    conn: AsyncConnection[Any],
    url: str,
    secret: str,
    districts: Sequence[str] | None,
    rules: Sequence[str] | None,
) -> dict[str, Any]:
    cur = conn.cursor(row_factory=dict_row)
    await cur.execute(
        "INSERT INTO webhook_subscriptions (url, secret, districts, rules)"
        f" VALUES (%s, %s, %s, %s) RETURNING {_SUB_COLUMNS}",
        (url, secret, list(districts) if districts else None, list(rules) if rules else None),
    )
    row = await cur.fetchone()
    assert row is not None
    return row


async def list_subscriptions(conn: AsyncConnection[Any]) -> list[dict[str, Any]]:
    """Active subscriptions; secrets are shown only once, when a subscription is created."""
    cur = conn.cursor(row_factory=dict_row)
    await cur.execute(f"SELECT {_SUB_COLUMNS} FROM webhook_subscriptions WHERE active ORDER BY id")
    return await cur.fetchall()


async def deactivate(conn: AsyncConnection[Any], sub_id: int) -> bool:
    """Stop delivering; undelivered rows stay in the log, marked, and leave the due index."""
    cur = conn.cursor(row_factory=tuple_row)
    await cur.execute(
        "UPDATE webhook_subscriptions SET active = false WHERE id = %s AND active RETURNING id",
        (sub_id,),
    )
    if await cur.fetchone() is None:
        return False
    await cur.execute(
        "UPDATE webhook_outbox SET next_attempt_at = NULL, last_error = 'unsubscribed'"
        " WHERE subscription_id = %s AND next_attempt_at IS NOT NULL",
        (sub_id,),
    )
    return True


async def deliveries(
    conn: AsyncConnection[Any], sub_id: int, limit: int, offset: int
) -> list[dict[str, Any]] | None:
    """The subscription's delivery log, newest first; None if there is no such subscription."""
    cur = conn.cursor(row_factory=dict_row)
    await cur.execute("SELECT 1 FROM webhook_subscriptions WHERE id = %s", (sub_id,))
    if await cur.fetchone() is None:
        return None
    await cur.execute(
        "SELECT id, alert_id, revision, event, attempts, next_attempt_at, delivered_at,"
        " last_error, created_at FROM webhook_outbox WHERE subscription_id = %s"
        " ORDER BY id DESC LIMIT %s OFFSET %s",
        (sub_id, limit, offset),
    )
    return await cur.fetchall()
