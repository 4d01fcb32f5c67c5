"""Escalate overdue alerts on a clock, not when someone happens to list them.

Every ``interval_s`` one set-based UPDATE (``layers.alerts.lifecycle.escalate``, the rule's
only home) raises the level of alerts past a deadline, bumps their revision, queues their
webhooks and NOTIFYs layer ``alerts`` — all in one transaction. Several processes may run the
scheduler: the UPDATE only raises a level that is still lower, so a row is never bumped twice.
"""

from __future__ import annotations

import logging

from psycopg_pool import AsyncConnectionPool

from layers.alerts.lifecycle import escalate
from layers.core.periodic import PeriodicTask

log = logging.getLogger("georisk.escalation")


class EscalationScheduler(PeriodicTask):
    name = "escalation"

    def __init__(self, pool: AsyncConnectionPool, interval_s: float) -> None:
        self.pool = pool
        super().__init__(interval_s)
        self.escalated = 0

    async def run_once(self) -> list[int]:
        async with self.pool.connection() as conn:
            ids = await escalate(conn)
        self.escalated += len(ids)
        if ids:
            log.info("escalated %d overdue alerts", len(ids))
        return ids
