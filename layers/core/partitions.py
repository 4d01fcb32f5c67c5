"""Daily range partitions for the time-series tables, created on demand before a load.

PostgreSQL 15 does not create partitions by itself; a missing one makes the whole COPY fail,
so every writer calls ``ensure_daily_partitions`` with the days its batch touches.
"""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Iterable
from typing import Any

import numpy as np
from psycopg import AsyncConnection, Connection
from psycopg.rows import tuple_row

#: Only these tables are partitioned; the name is interpolated, so it must come from here.
PARTITIONED_TABLES = ("positions", "readings")


_PARTITION_NAME = re.compile(r"^(" + "|".join(PARTITIONED_TABLES) + r")_[0-9]{8}$")


def is_partition_name(name: str | None) -> bool:
    """True for the daily partitions, which migrations must never try to drop."""
    return bool(name and _PARTITION_NAME.match(name))


def partition_name(table: str, day: dt.date) -> str:
    return f"{table}_{day:%Y%m%d}"


def partition_ddl(table: str, day: dt.date) -> str:
    if table not in PARTITIONED_TABLES:
        raise ValueError(f"{table} is not a partitioned table")
    start = dt.datetime.combine(day, dt.time(), tzinfo=dt.UTC)
    end = start + dt.timedelta(days=1)
    return (
        f"CREATE TABLE IF NOT EXISTS {partition_name(table, day)} PARTITION OF {table} "
        f"FOR VALUES FROM ('{start.isoformat()}') TO ('{end.isoformat()}')"
    )


def ensure_daily_partitions(conn: Connection, table: str, days: Iterable[dt.date]) -> None:
    """Create the missing daily partitions (idempotent; safe under concurrent writers)."""
    for day in sorted(set(days)):
        # Concurrent CREATE ... IF NOT EXISTS can still race on the catalog; the advisory
        # lock serialises partition creation only, not the loads themselves.
        conn.execute("SELECT pg_advisory_xact_lock(hashtext(%s))", (table,))
        conn.execute(partition_ddl(table, day))


def include_in_autogenerate(obj: object, name: str | None, type_: str, *args: object) -> bool:
    """Alembic ``include_object`` hook: PostGIS's own tables and our partitions are not ours."""
    from geoalchemy2 import alembic_helpers

    if type_ == "table" and is_partition_name(name):
        return False
    table_name = getattr(getattr(obj, "table", None), "name", None)
    if type_ == "index" and is_partition_name(table_name):
        return False
    return bool(alembic_helpers.include_object(obj, name, type_, *args))


#: Days known to have a partition, per database and table, so a hot ingest path skips the
#: catalog lookup (keyed by database: one process may write to several, e.g. in tests).
_KNOWN_DAYS: dict[tuple[str, int, str, str], set[dt.date]] = {}


async def ensure_partitions_async(conn: AsyncConnection[Any], table: str, t_us: Any) -> None:
    """Create the daily partitions that ``t_us`` (µs since the epoch) needs, each in its own
    short transaction before the batch's own, serialised by an advisory lock per table."""
    days = {
        dt.datetime.fromtimestamp(int(d) * 86400, dt.UTC).date()
        for d in np.unique(np.asarray(t_us) // 86_400_000_000)
    }
    info = conn.info
    known = _KNOWN_DAYS.setdefault((info.host, info.port, info.dbname, table), set())
    for day in sorted(days - known):
        async with conn.transaction():
            cur = conn.cursor(row_factory=tuple_row)
            await cur.execute("SELECT to_regclass(%s)", (partition_name(table, day),))
            row = await cur.fetchone()
            if not (row and row[0]):
                await conn.execute("SELECT pg_advisory_xact_lock(hashtext(%s))", (table,))
                await conn.execute(partition_ddl(table, day).encode())
        known.add(day)
