"""Remind enterprises of hidden-danger rectification deadlines on a clock (docs/domain.md §5).

A deadline drawing near produces no event; only a clock notices. ``send_reminders`` marks each
open danger once per deadline (idempotent however often this runs, in however many
processes: the marking UPDATE is the claim), and this task announces the batch on the change
bus (layer ``hidden_danger_reminders``, the enterprises' ids and extent) and in the log.
"""

from __future__ import annotations

import datetime as dt
import logging
from typing import Any
from zoneinfo import ZoneInfo

from psycopg_pool import AsyncConnectionPool

from layers.core.changes import notify_change
from layers.core.periodic import PeriodicTask
from layers.prevention.major_dangers import send_reminders

log = logging.getLogger("georisk.reminders")

#: The change-bus layer of a reminder batch (no tile layer listens: it is a notice).
REMINDER_LAYER = "hidden_danger_reminders"


class ReminderScheduler(PeriodicTask):
    name = "rectification reminders"

    def __init__(
        self, pool: AsyncConnectionPool, interval_s: float, days_before: int, timezone: str
    ) -> None:
        super().__init__(interval_s)
        self.pool = pool
        self.days_before = days_before
        self.zone = ZoneInfo(timezone)

    async def run_once(self, today: dt.date | None = None) -> list[dict[str, Any]]:
        today = today or dt.datetime.now(self.zone).date()
        async with self.pool.connection() as conn, conn.transaction():
            sent = await send_reminders(conn, today, self.days_before)
            await notify_change(
                conn, REMINDER_LAYER, "enterprises", [r["enterprise_id"] for r in sent]
            )
        for r in sent:
            log.info(
                "reminder: hidden danger %s of enterprise %s is due %s",
                r["id"],
                r["enterprise_id"],
                r["deadline"],
            )
        return sent
