"""Partition maintenance on a clock (``GEORISK_LIFECYCLE_*``): days made ahead by pg_partman,
expired days archived to GeoParquet and dropped (layers/core/lifecycle.py).

The round runs in a worker thread on its own connection: exporting a day is file and CPU work
that must not hold the event loop, and the round's session settings (time zone, advisory lock)
stay off the pool's connections. Several processes may run this task: the round takes an
advisory lock, and a process that finds it held skips its round.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import logging

import psycopg

from geo_api.settings import Settings
from layers.core.lifecycle import MaintenanceReport, Say, maintain
from layers.core.periodic import PeriodicTask

log = logging.getLogger("georisk.lifecycle")


def run_maintenance(settings: Settings, say: Say | None = None) -> MaintenanceReport:
    """One round against the configured database (the CLI and the task share it)."""
    lc = settings.lifecycle
    with psycopg.connect(settings.db.resolved_url(), autocommit=True) as conn:
        return maintain(
            conn,
            lc.window(),
            lc.resolved_archive_dir(settings.db.data_dir),
            max_days=lc.lifecycle_max_days_per_run,
            restored_keep=dt.timedelta(days=lc.lifecycle_restored_keep_days),
            say=say or log.info,
        )


class LifecycleScheduler(PeriodicTask):
    name = "partition maintenance"

    def __init__(self, settings: Settings) -> None:
        super().__init__(settings.lifecycle.lifecycle_interval_s)
        self.settings = settings
        self.initial_delay_s = settings.lifecycle.lifecycle_initial_delay_s

    async def run_once(self) -> MaintenanceReport:
        return await asyncio.to_thread(run_maintenance, self.settings)

    async def _loop(self) -> None:
        # Not in the start-up burst: the first round waits a little.
        await asyncio.sleep(self.initial_delay_s)
        await super()._loop()
