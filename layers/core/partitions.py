"""Daily range partitions of the time-series tables (``positions``, ``readings``).

pg_partman (migration 0015) makes each day's partition ahead of time (``premake`` days) and
names it its way, ``positions_p2026_05_01``. Writers still call ``ensure_daily_partitions``
before a load, as a guard for back-fill within the window (yesterday's late fixes, the demo
city's seeded history): it creates a missing day through pg_partman's own function, and refuses
a day outside the table's window (layers/core/window.py) instead of creating it — a fix dated
2001 must never make a partition for 2001.
"""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Iterable
from typing import Any, Final

import numpy as np
from psycopg import AsyncConnection, Connection
from psycopg.pq import TransactionStatus
from psycopg.rows import tuple_row

from layers.core.window import DEFAULT_WINDOW, TsWindow

#: Only these tables are partitioned; the name is interpolated, so it must come from here.
PARTITIONED_TABLES = ("positions", "readings")
#: pg_partman's schema (migration 0015) and its daily suffix, ``_pYYYY_MM_DD``.
PARTMAN_SCHEMA: Final = "partman"

_PARTITION_NAME = re.compile(
    r"^(" + "|".join(PARTITIONED_TABLES) + r")_p([0-9]{4})_([0-9]{2})_([0-9]{2})$"
)

#: Create the partition of one UTC day through pg_partman (its naming, its template table).
#: Its names and bounds follow the session's time zone, hence UTC for the transaction.
_CREATE = (
    "SELECT set_config('timezone', 'UTC', true),"
    f" {PARTMAN_SCHEMA}.create_partition_time(%s, ARRAY[%s]::timestamptz[], false)"
)


def is_partition_name(name: str | None) -> bool:
    """True for the daily partitions, which migrations must never try to drop."""
    return bool(name and _PARTITION_NAME.match(name))


def partition_day(name: str) -> tuple[str, dt.date] | None:
    """(table, day) of a daily partition's name; None for any other name."""
    m = _PARTITION_NAME.match(name)
    if m is None:
        return None
    return m.group(1), dt.date(int(m.group(2)), int(m.group(3)), int(m.group(4)))


def partition_name(table: str, day: dt.date) -> str:
    if table not in PARTITIONED_TABLES:
        raise ValueError(f"{table} is not a partitioned table")
    return f"{table}_p{day:%Y_%m_%d}"


def _day_start(day: dt.date) -> dt.datetime:
    return dt.datetime.combine(day, dt.time(), tzinfo=dt.UTC)


def create_partition(conn: Connection, table: str, day: dt.date) -> None:
    """Create ``day``'s partition whatever the window (restore of an archived day uses this
    directly); idempotent. Runs in the caller's transaction."""
    partition_name(table, day)  # refuses a table that is not ours
    # Concurrent creators could still race on the catalog; the advisory lock serialises
    # partition creation only, not the loads themselves.
    conn.execute("SELECT pg_advisory_xact_lock(hashtext(%s))", (table,))
    conn.execute(_CREATE, (f"public.{table}", _day_start(day)))


def ensure_daily_partitions(
    conn: Connection,
    table: str,
    days: Iterable[dt.date],
    window: TsWindow = DEFAULT_WINDOW,
    now: dt.datetime | None = None,
) -> None:
    """Create the missing daily partitions of ``days`` (idempotent); a day outside the window
    raises ``OutOfWindow`` before anything is created."""
    wanted = set(days)
    window.check_days(table, wanted, now)
    for day in sorted(wanted):
        create_partition(conn, table, day)


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
#: Bounded by the window: only in-window days are ever added, and maintenance clears a table's
#: entries when it drops partitions (``forget_partitions``).
_KNOWN_DAYS: dict[tuple[str, int, str, str], set[dt.date]] = {}


def forget_partitions(table: str) -> None:
    """Drop what this process believes exists for ``table`` (after partitions were dropped)."""
    for key in [k for k in _KNOWN_DAYS if k[3] == table]:
        del _KNOWN_DAYS[key]


async def ensure_partitions_async(conn: AsyncConnection[Any], table: str, t_us: Any) -> None:
    """Create the daily partitions that ``t_us`` (µs since the epoch, already inside the
    window) needs, each in its own short transaction before the batch's own."""
    days = {
        dt.datetime.fromtimestamp(int(d) * 86400, dt.UTC).date()
        for d in np.unique(np.asarray(t_us) // 86_400_000_000)
    }
    info = conn.info
    known = _KNOWN_DAYS.setdefault((info.host, info.port, info.dbname, table), set())
    # Inside a caller's open transaction ``conn.transaction()`` is only a savepoint: the new
    # partition is visible to this transaction alone until the caller commits. Remembering it
    # then would let a concurrent request of this process skip the check and insert into a
    # partition it cannot see yet ("no partition … found for row", a 500). So a day is
    # remembered only once its partition is committed; until then every request checks (and
    # waits on the creator's advisory lock).
    committed = info.transaction_status == TransactionStatus.IDLE
    for day in sorted(days - known):
        async with conn.transaction():
            cur = conn.cursor(row_factory=tuple_row)
            await cur.execute("SELECT to_regclass(%s)", (partition_name(table, day),))
            row = await cur.fetchone()
            if not (row and row[0]):
                await conn.execute("SELECT pg_advisory_xact_lock(hashtext(%s))", (table,))
                await conn.execute(_CREATE, (f"public.{table}", _day_start(day)))
        if committed:
            known.add(day)
