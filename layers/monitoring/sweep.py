"""The periodic stale sweep: a silent point sends nothing, so only a clock can turn it grey.

Started in the app's lifespan; every ``interval_s`` one set-based UPDATE (``live.sweep_stale``)
marks points silent for more than N sampling intervals, recolours, NOTIFYs and re-rates their
enterprises. Several processes may run it: a point already stale is skipped.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging

from psycopg_pool import AsyncConnectionPool

from layers.monitoring.config import MonitoringRules
from layers.monitoring.live import sweep_stale
from layers.recompute import RecomputeConfig

log = logging.getLogger("georisk.monitoring")


class StaleSweeper:
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
        self.interval_s = interval_s
        self._task: asyncio.Task[None] | None = None

    async def run_once(self) -> list[int]:
        async with self.pool.connection() as conn:
            ids = await sweep_stale(conn, self.rules, self.config)
        if ids:
            log.info("%d monitoring points went stale", len(ids))
        return ids

    async def _loop(self) -> None:
        while True:
            try:
                await self.run_once()
            except Exception:
                log.exception("stale sweep failed")
            await asyncio.sleep(self.interval_s)

    def start(self) -> None:
        self._task = asyncio.create_task(self._loop())

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
