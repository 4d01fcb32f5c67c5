"""A background task that runs ``run_once`` every ``interval_s`` until stopped.

Clock-driven rules (stale sensors, overdue alerts) have no event to react to; this is the one
loop they share. A failing round is logged and the next one still runs.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from typing import Any

from psycopg import OperationalError
from psycopg_pool import PoolTimeout

log = logging.getLogger("georisk.periodic")


async def cancel_task(task: asyncio.Task[Any] | None) -> None:
    """Cancel a background task and wait until it is gone (its CancelledError is expected)."""
    if task is None:
        return
    task.cancel()
    with contextlib.suppress(asyncio.CancelledError):
        await task


class PeriodicTask:
    name = "periodic task"

    def __init__(self, interval_s: float) -> None:
        self.interval_s = interval_s
        self._task: asyncio.Task[None] | None = None

    async def run_once(self) -> Any:
        raise NotImplementedError

    async def _loop(self) -> None:
        while True:
            try:
                await self.run_once()
            except (OperationalError, PoolTimeout) as exc:
                # The database is restarting or out of reach: the next round retries; one line
                # per round, not a traceback every interval for the length of an outage.
                log.warning("%s round skipped: database unavailable (%s)", self.name, exc)
            except Exception:
                log.exception("%s round failed", self.name)
            await asyncio.sleep(self.interval_s)

    async def start(self) -> None:
        self._task = asyncio.create_task(self._loop())

    async def stop(self) -> None:
        await cancel_task(self._task)
        self._task = None
