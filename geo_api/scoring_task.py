"""Run the automatic safety-score deductions on a clock (daily by default).

Expired licences and overdue alarms produce no event at the moment they become deductible;
only a clock notices. ``deduct_automatic`` is idempotent and serialised by an advisory lock, so
several processes may run this task. Enterprises that received new deductions are re-rated
here (the scoring module only deducts: the risk engine reads its scores from there).
"""

from __future__ import annotations

import asyncio
import datetime as dt
import logging
from zoneinfo import ZoneInfo

from psycopg_pool import AsyncConnectionPool

from geo_api.rerate import Rerater
from layers.core.periodic import PeriodicTask
from layers.prevention.scoring import deduct_automatic

log = logging.getLogger("georisk.scoring")


class ScoringScheduler(PeriodicTask):
    name = "safety scoring"

    def __init__(
        self,
        pool: AsyncConnectionPool,
        rerate: Rerater,
        interval_s: float,
        timezone: str,
        initial_delay_s: float,
    ) -> None:
        super().__init__(interval_s)
        self.pool = pool
        self.rerate = rerate
        self.zone = ZoneInfo(timezone)
        self.initial_delay_s = initial_delay_s

    async def run_once(self) -> list[int]:
        today = dt.datetime.now(self.zone).date()
        async with self.pool.connection() as conn:
            ids = await deduct_automatic(conn, today)
            if ids:  # their dynamic colour follows the new deductions
                await self.rerate(conn, ids)
        if ids:
            log.info("automatic deductions for %d enterprises", len(ids))
        return ids

    async def _loop(self) -> None:
        # A start-up burst of recomputes is not wanted; the first round waits a little.
        await asyncio.sleep(self.initial_delay_s)
        await super()._loop()
