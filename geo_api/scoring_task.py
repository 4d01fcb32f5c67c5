"""Run the automatic safety-score deductions and expiry warnings on a clock (daily by default).

Expired licences and certificates and alarms left undisposed produce no event at the moment
they become deductible; only a clock notices (layers/prevention/automatic.py). The run is
idempotent and serialised by an advisory lock, so several processes may run this task.
Enterprises that received new deductions are re-rated here (the scoring modules only deduct:
the risk engine reads its scores from there).
"""

from __future__ import annotations

import asyncio
import datetime as dt
import logging
from zoneinfo import ZoneInfo

from psycopg_pool import AsyncConnectionPool

from geo_api.rerate import Rerater
from geo_api.settings import ScoringSettings
from layers.core.periodic import PeriodicTask
from layers.prevention.automatic import AutoReport, run_automatic

log = logging.getLogger("georisk.scoring")


class ScoringScheduler(PeriodicTask):
    name = "safety scoring"

    def __init__(
        self, pool: AsyncConnectionPool, rerate: Rerater, settings: ScoringSettings
    ) -> None:
        super().__init__(settings.interval_s)
        self.pool = pool
        self.rerate = rerate
        self.settings = settings
        self.zone = ZoneInfo(settings.timezone)
        self.initial_delay_s = settings.initial_delay_s

    async def run_once(self) -> AutoReport:
        now = dt.datetime.now(dt.UTC)
        async with self.pool.connection() as conn:
            report = await run_automatic(
                conn,
                now.astimezone(self.zone).date(),
                now,
                warn_days=self.settings.warn_days,
                dispose_within=dt.timedelta(hours=self.settings.alarm_dispose_hours),
            )
            if report.deducted:  # their dynamic colour follows the new deductions
                await self.rerate(conn, report.deducted)
        if report.deductions or report.warnings:
            log.info(
                "automatic deductions: %d for %d enterprises; %d expiry warnings; %d capped",
                len(report.deductions),
                len(report.deducted),
                len(report.warnings),
                report.capped,
            )
        return report

    async def _loop(self) -> None:
        # A start-up burst of recomputes is not wanted; the first round waits a little.
        await asyncio.sleep(self.initial_delay_s)
        await super()._loop()
