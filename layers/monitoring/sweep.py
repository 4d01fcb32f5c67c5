"""The periodic stale sweep: a silent point sends nothing, so only a clock can mark it offline.

Started in the app's lifespan; every ``interval_s`` one set-based UPDATE (``live.sweep_stale``)
marks points silent for more than N sampling intervals, recolours them (grey, or their alarm
colour while an alarm is open), NOTIFYs and re-rates their enterprises. Several processes may
run it: a point already stale is skipped.
"""

from __future__ import annotations

import logging

from psycopg_pool import AsyncConnectionPool

from layers.core.periodic import PeriodicTask
from layers.monitoring.config import MonitoringRules
from layers.monitoring.live import sweep_stale
from layers.risk.recompute import RecomputeConfig

log = logging.getLogger("georisk.monitoring")


class StaleSweeper(PeriodicTask):
    name = "stale sweep"

    def __init__(
        self,
        pool: AsyncConnectionPool,
        rules: MonitoringRules,
        config: RecomputeConfig,
        interval_s: float,
    ) -> None:
        self.pool = pool
        self.rules = rules
        self.config = config
        super().__init__(interval_s)

    async def run_once(self) -> list[int]:
        async with self.pool.connection() as conn:
            ids = await sweep_stale(conn, self.rules, self.config)
        if ids:
            log.info("%d monitoring points went stale", len(ids))
        return ids
