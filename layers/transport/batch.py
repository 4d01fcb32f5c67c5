"""Run the tanker engine over fixes already stored (the demo seed, a re-detection after a rule
change): the same detector and rules as the live path, fed whole vehicles at a time.

Fixes are read per block of vehicles as one bytea of fixed-width binary records (a row per
message would cost more than the detection), and blocks run on two connections at once so
PostgreSQL's spatial look-ups overlap Python's detector (2 cores: one each).

After the detector, as the live ingest does (``layers/transport/ingest.py``), the waybills'
steps are derived from the block's stops and the warning models judge its fixes — in slices of
:data:`MODEL_VEHICLES` vehicles, about one HTTP batch each, so a model sees the batch sizes it
was built for and the rows handed to it stay small.
"""

from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from psycopg import AsyncConnection
from psycopg.rows import tuple_row

from layers.core.changes import notify_change
from layers.core.pgcopy import PG_EPOCH_US
from layers.transport.config import TankerRules
from layers.transport.engine import NewFixes, process
from layers.transport.site_events import derive_site_events
from layers.transport.warnings import registry
from layers.transport.warnings.model import Stored

BLOCK_VEHICLES = 250
MODEL_VEHICLES = 20
_REC = np.dtype(
    [("v", ">i4"), ("t", ">i8"), ("lon", ">f8"), ("lat", ">f8"), ("s", ">f4"), ("a", ">i4")]
)
_READ = (
    "SELECT string_agg(int4send(vehicle_id) || timestamptz_send(ts) || float8send(lon)"
    " || float8send(lat) || float4send(speed_kmh) || int4send(coalesce(alarm_bits, 0)),"
    " ''::bytea ORDER BY vehicle_id, ts) FROM positions WHERE vehicle_id = ANY(%s)"
)


@dataclass
class BatchReport:
    fixes: int = 0
    stops: int = 0
    alerts: int = 0
    carriers: set[int] = field(default_factory=set)
    seconds: float = 0.0

    def summary(self) -> str:
        return (
            f"{self.fixes:,} fixes → {self.stops:,} stops, {self.alerts:,} alerts "
            f"({self.seconds:.1f} s)"
        )


async def _block(conn: AsyncConnection[Any], ids: list[int], rules: TankerRules) -> Any:
    cur = conn.cursor(row_factory=tuple_row, binary=True)
    await cur.execute(_READ, (ids,))
    row = await cur.fetchone()
    rec = np.frombuffer((row[0] if row else None) or b"", dtype=_REC)
    new = NewFixes(
        rec["v"].astype(np.int64),
        rec["t"].astype(np.int64) + PG_EPOCH_US,
        rec["lon"].astype(np.float64),
        rec["lat"].astype(np.float64),
        rec["s"].astype(np.float64),
    )
    async with conn.transaction():
        report = await process(conn, new, rules, notify=False)
        # One pass derives one step a waybill (its state gates the next site); a whole day
        # holds the loading and the unloading, so pass again while steps come.
        for _ in range(4):
            if not (await derive_site_events(conn, ids, rules)).steps:
                break
        v = rec["v"].astype(np.int64)
        for a in range(0, len(ids), MODEL_VEHICLES):
            part = np.flatnonzero(np.isin(v, ids[a : a + MODEL_VEHICLES]))
            if len(part) == 0:
                continue
            stored = Stored(
                v[part],
                new.t[part],
                new.lon[part],
                new.lat[part],
                new.speed[part],
                rec["a"][part].astype(np.int64),
            )
            got = await registry.judge_all(conn, stored, rules)
            report.alerts.created += got.created
            report.alerts.updated += got.updated
            report.alerts.carriers |= got.carriers
        return report


async def detect_all(urls: tuple[str, str] | str, rules: TankerRules) -> BatchReport:
    """Detect stops and alerts for every vehicle (their state must be empty: a fresh seed)."""
    started = time.perf_counter()
    pair = (urls, urls) if isinstance(urls, str) else urls
    report = BatchReport()
    conns = [await AsyncConnection.connect(u, autocommit=True) for u in pair]
    try:
        cur = conns[0].cursor(row_factory=tuple_row)
        await cur.execute("SELECT id FROM vehicles ORDER BY id")
        ids = [int(r[0]) for r in await cur.fetchall()]
        blocks = [ids[i : i + BLOCK_VEHICLES] for i in range(0, len(ids), BLOCK_VEHICLES)]
        queue: asyncio.Queue[list[int]] = asyncio.Queue()
        for b in blocks:
            queue.put_nowait(b)
        alert_ids: list[int] = []

        async def worker(conn: AsyncConnection[Any]) -> None:
            while not queue.empty():
                r = await _block(conn, queue.get_nowait(), rules)
                report.fixes += r.fixes
                report.stops += r.stops
                alert_ids.extend(r.alerts.created + r.alerts.updated)
                report.carriers |= r.alerts.carriers

        await asyncio.gather(*(worker(c) for c in conns))
        report.alerts = len(set(alert_ids))
        async with conns[0].transaction():
            await notify_change(conns[0], "alerts", "alerts", alert_ids, full=True)
    finally:
        for c in conns:
            await c.close()
    report.seconds = time.perf_counter() - started
    return report
