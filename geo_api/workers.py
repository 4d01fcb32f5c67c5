"""The background workers of one API process, started in order and stopped in reverse.

Why a list: every worker (the change bus, the hexagon refresher, the webhook sender, the clocks,
the alert stream) used to be started and stopped by hand in the lifespan, each stop placed to
mirror its start. Now the order is written once: what others rely on comes first (the change
bus listens before anything that needs its notices runs) and is stopped last.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import Protocol

log = logging.getLogger("georisk.workers")


class Worker(Protocol):
    """A background task owner. ``start`` returns once it runs (it may wait for a connection
    it needs); ``stop`` returns once its tasks are gone."""

    async def start(self) -> None: ...

    async def stop(self) -> None: ...


@dataclass(frozen=True)
class Slot:
    """One worker under its ``app.state`` name; a disabled one is kept but never started."""

    name: str
    worker: Worker
    enabled: bool = True


class Workers:
    def __init__(self, slots: Sequence[Slot]) -> None:
        names = [slot.name for slot in slots]
        if len(set(names)) != len(names):
            raise ValueError(f"worker names must be unique: {names}")
        self.slots = tuple(slots)
        self._started: list[Slot] = []

    def __iter__(self) -> Iterator[Slot]:
        return iter(self.slots)

    @property
    def started(self) -> tuple[str, ...]:
        """Names of the running workers, in start order."""
        return tuple(slot.name for slot in self._started)

    async def start(self) -> None:
        """Start the enabled workers in list order; if one fails, stop it and those already
        started (in reverse: it may have left a task behind) and re-raise."""
        for slot in self.slots:
            if not slot.enabled:
                continue
            self._started.append(slot)
            try:
                await slot.worker.start()
            except BaseException:
                await self.stop()
                raise

    async def stop(self) -> None:
        """Stop the started workers in reverse order; one failing to stop does not keep the
        others running."""
        while self._started:
            slot = self._started.pop()
            try:
                await slot.worker.stop()
            except Exception:
                log.exception("stopping %s failed", slot.name)
