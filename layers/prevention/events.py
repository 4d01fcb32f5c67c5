"""Safety-score events out: the change stream and the webhooks (docs/rules.md "Events").

Every step of a deduction's life (deducted, rectification reported / accepted / rejected,
voided), an earn-back's, and every expiry warning is told twice, in the writer's transaction:
``NOTIFY georisk_changes`` with layer ``safety_scores`` (listeners hear it once committed) and a
webhook outbox row per matching subscription, keyed so a repeated step queues nothing new.
"""

from __future__ import annotations

from typing import Any, Final

from psycopg import AsyncConnection
from psycopg.rows import tuple_row

from layers.alerts.webhooks import enqueue_event
from layers.core.changes import notify_change

#: The change-stream layer of these events (no tile layer listens to it: colours follow
#: through the risk engine's own ``enterprises`` notices).
LAYER: Final = "safety_scores"
EVENTS: Final = (
    "score.deducted",
    "score.rectification_reported",
    "score.rectification_accepted",
    "score.rectification_rejected",
    "score.deduction_voided",
    "score.earn_back_requested",
    "score.earn_back_approved",
    "score.earn_back_rejected",
    "licence.expiring",
    "certificate.expiring",
)


async def publish(
    conn: AsyncConnection[Any], event: str, enterprise_id: int, key: str, body: dict[str, Any]
) -> None:
    """Tell the change stream and the webhooks; ``key`` makes the webhook once-only."""
    if event not in EVENTS:
        raise ValueError(f"unknown event {event}")
    cur = conn.cursor(row_factory=tuple_row)
    await cur.execute("SELECT district FROM enterprises WHERE id = %s", (enterprise_id,))
    row = await cur.fetchone()
    district = row[0] if row else None
    await notify_change(conn, LAYER, "enterprises", [enterprise_id])
    await enqueue_event(
        conn, event, f"{event}:{key}", district, {"enterprise_id": enterprise_id, **body}
    )
