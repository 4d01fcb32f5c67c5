"""Partition maintenance, GeoParquet archive and restore of the time-series tables.

One round of ``maintain`` (the periodic job and ``georisk partitions maintain``):

1. pg_partman's ``run_maintenance`` makes the daily partitions ``premake`` days ahead;
2. every partition whose day ended before its table's retention is exported to
   ``<archive>/<table>/<YYYY-MM-DD>.parquet`` (GeoParquet 1.1: the table's columns as they are
   plus a WKB ``geometry`` in EPSG:4326 — a fix's own lon/lat, a reading's monitoring point),
   the file is read back and its row count compared with the partition's, and only then is
   the partition detached and dropped. At most ``max_days`` days per round, so a backlog
   (a first run over a long history) is worked off over several rounds instead of one long one.

pg_partman's own retention is not used: it detaches (or drops) first, and here nothing leaves
the database before its file is written and checked. ``restore_day`` attaches an archived day
again; a restored day is marked (a table comment) and kept ``restored_keep_days`` before
maintenance drops it again (its file is already there, so it is not rewritten).

Memory stays bounded at any scale: a day is exported one hour at a time (a row group each) and
restored one row group at a time.
"""

from __future__ import annotations

import datetime as dt
import functools
import io
import json
import os
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Final

import numpy as np
import pyarrow as pa
import pyarrow.csv as pacsv
import pyarrow.parquet as pq
from psycopg import Connection, sql
from psycopg.rows import tuple_row

from layers.core.partitions import (
    PARTITIONED_TABLES,
    PARTMAN_SCHEMA,
    create_partition,
    forget_partitions,
    partition_day,
    partition_name,
)
from layers.core.window import TsWindow

Say = Callable[[str], None]

#: Where a row's point comes from, per table (x, y and the join that gives them).
_GEOMETRY: Final = {
    "positions": ("t.lon", "t.lat", ""),
    "readings": (
        "ST_X(m.geom)",
        "ST_Y(m.geom)",
        "LEFT JOIN monitoring_points m ON m.id = t.point_id",
    ),
}
#: Column order inside an hour of a day's file: time first (row-group statistics on ts let a
#: reader skip hours), then the row's object.
_ORDER: Final = {"positions": "t.ts, t.vehicle_id", "readings": "t.ts, t.point_id"}
_ARROW_TYPES: Final = {
    "int2": pa.int16(),
    "int4": pa.int32(),
    "int8": pa.int64(),
    "float4": pa.float32(),
    "float8": pa.float64(),
    "bool": pa.bool_(),
    "text": pa.string(),
    "timestamptz": pa.timestamp("us", tz="UTC"),
}
RESTORED_MARK: Final = "georisk: restored from archive at "
#: Two maintainers (two API processes, or one and the CLI) never work the same round.
_LOCK_KEY: Final = "georisk partition maintenance"


class LifecycleError(ValueError):
    """A restore or archive request that cannot be carried out (the message says why)."""


def _quiet(_: str) -> None:
    pass


def archive_path(archive_dir: Path, table: str, day: dt.date) -> Path:
    partition_name(table, day)  # refuses a table that is not partitioned
    return Path(archive_dir) / table / f"{day.isoformat()}.parquet"


def archived_days(archive_dir: Path, table: str) -> list[dt.date]:
    """The days of ``table`` with a file in the archive, oldest first."""
    out = []
    for p in (Path(archive_dir) / table).glob("*.parquet"):
        try:
            out.append(dt.date.fromisoformat(p.stem))
        except ValueError:
            continue  # not ours
    return sorted(out)


@dataclass(frozen=True)
class LivePartition:
    table: str
    day: dt.date
    name: str
    restored_at: dt.datetime | None


_CHILDREN = (
    "SELECT c.relname, obj_description(c.oid, 'pg_class') FROM pg_inherits h"
    " JOIN pg_class c ON c.oid = h.inhrelid WHERE h.inhparent = %s::regclass"
)


def live_partitions(conn: Connection, table: str) -> list[LivePartition]:
    """The daily partitions of ``table``, oldest first."""
    out = []
    for name, comment in conn.execute(_CHILDREN, (f"public.{table}",)).fetchall():
        parsed = partition_day(name)
        if parsed is None:
            continue
        restored = None
        if comment and comment.startswith(RESTORED_MARK):
            restored = dt.datetime.fromisoformat(comment[len(RESTORED_MARK) :])
        out.append(LivePartition(table, parsed[1], name, restored))
    return sorted(out, key=lambda p: p.day)


def _columns(conn: Connection, table: str) -> list[tuple[str, str]]:
    """(name, udt name) of the table's columns in order."""
    rows = conn.execute(
        "SELECT column_name, udt_name FROM information_schema.columns"
        " WHERE table_schema = 'public' AND table_name = %s ORDER BY ordinal_position",
        (table,),
    ).fetchall()
    return [(str(n), str(t)) for n, t in rows]


@functools.cache
def _geo_metadata() -> bytes:
    """GeoParquet 1.1 file metadata: one WKB point column in EPSG:4326 (as PROJJSON)."""
    from pyproj import CRS

    column = {
        "encoding": "WKB",
        "geometry_types": ["Point"],
        "crs": CRS.from_epsg(4326).to_json_dict(),
    }
    meta = {"version": "1.1.0", "primary_column": "geometry", "columns": {"geometry": column}}
    return json.dumps(meta).encode()


def _schema(columns: list[tuple[str, str]]) -> pa.Schema:
    fields = [pa.field(n, _ARROW_TYPES[t]) for n, t in columns]
    fields.append(pa.field("geometry", pa.binary()))
    return pa.schema(fields, metadata={b"geo": _geo_metadata()})


def _count(conn: Connection, name: str) -> int:
    row = conn.execute(sql.SQL("SELECT count(*) FROM {}").format(sql.Identifier(name))).fetchone()
    return int(row[0]) if row else 0


def _hour_slice(
    conn: Connection, table: str, name: str, columns: list[tuple[str, str]], start: dt.datetime
) -> pa.Table:
    """One hour of a partition as an Arrow table of the file's schema."""
    x, y, join = _GEOMETRY[table]
    select = []
    for col, udt in columns:
        if udt not in _ARROW_TYPES:
            raise LifecycleError(f"{table}.{col}: type {udt} is not archived")
        # Times leave as µs since the epoch: exact, and no text time format to agree on.
        expr = (
            f"(extract(epoch FROM t.{col}) * 1000000)::int8" if udt == "timestamptz" else f"t.{col}"
        )
        select.append(expr)
    query = (
        f"COPY (SELECT {', '.join(select)}, {x}, {y} FROM {name} t {join}"
        f" WHERE t.ts >= %s AND t.ts < %s ORDER BY {_ORDER[table]}) TO STDOUT (FORMAT csv)"
    )
    buf = io.BytesIO()
    cur = conn.cursor()
    with cur.copy(query.encode(), (start, start + dt.timedelta(hours=1))) as copy:
        for block in copy:
            buf.write(block)
    names = [n for n, _ in columns] + ["_x", "_y"]
    types = {n: (pa.int64() if t == "timestamptz" else _ARROW_TYPES[t]) for n, t in columns}
    types.update({"_x": pa.float64(), "_y": pa.float64()})
    if buf.tell() == 0:
        return _schema(columns).empty_table()
    buf.seek(0)
    raw = pacsv.read_csv(
        buf,
        read_options=pacsv.ReadOptions(column_names=names, use_threads=False),
        convert_options=pacsv.ConvertOptions(column_types=types),
    )
    arrays = [
        raw.column(n).cast(_ARROW_TYPES[t]) if t == "timestamptz" else raw.column(n)
        for n, t in columns
    ]
    arrays.append(
        wkb_points(
            raw.column("_x").to_numpy(zero_copy_only=False),
            raw.column("_y").to_numpy(zero_copy_only=False),
        )
    )
    return pa.Table.from_arrays(arrays, schema=_schema(columns))


#: A 2D point in WKB (ISO/OGC 06-103r4 §8.2): byte order 1 (little endian), type 1, x, y.
_WKB_POINT = np.dtype([("order", "u1"), ("type", "<u4"), ("x", "<f8"), ("y", "<f8")])


def wkb_points(x: np.ndarray, y: np.ndarray) -> pa.Array:
    """WKB points as an Arrow binary array, built in numpy (a shapely object per row costs
    several times the memory at a day's scale); a NaN coordinate (a reading whose point is
    gone) is a null geometry."""
    n = len(x)
    rec = np.empty(n, dtype=_WKB_POINT)  # packed: 21 bytes a point
    rec["order"], rec["type"], rec["x"], rec["y"] = 1, 1, x, y
    offsets = np.arange(n + 1, dtype=np.int32) * _WKB_POINT.itemsize
    missing = np.isnan(x) | np.isnan(y)
    validity = pa.array(~missing).buffers()[1] if missing.any() else None
    buffers = [validity, pa.py_buffer(offsets), pa.py_buffer(rec.tobytes())]
    return pa.Array.from_buffers(pa.binary(), n, buffers, null_count=int(missing.sum()))


def export_day(conn: Connection, table: str, day: dt.date, path: Path) -> int:
    """Write ``day``'s partition to ``path`` (via a temporary file renamed into place);
    answers the number of rows written."""
    name = partition_name(table, day)
    columns = _columns(conn, table)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".parquet.tmp")
    start = dt.datetime.combine(day, dt.time(), tzinfo=dt.UTC)
    written = 0
    with pq.ParquetWriter(tmp, _schema(columns), compression="zstd") as writer:
        for hour in range(24):
            part = _hour_slice(conn, table, name, columns, start + dt.timedelta(hours=hour))
            if part.num_rows:
                writer.write_table(part)
                written += part.num_rows
    os.replace(tmp, path)
    return written


def file_rows(path: Path) -> int:
    """Rows in an archive file, from its footer."""
    return int(pq.ParquetFile(path).metadata.num_rows)


def _drop(conn: Connection, table: str, name: str, expected: int, lock_timeout_ms: int) -> bool:
    """Detach and drop ``name`` if it still holds ``expected`` rows; False if it changed."""
    with conn.transaction():
        conn.execute("SELECT set_config('lock_timeout', %s, true)", (f"{lock_timeout_ms}ms",))
        ident = sql.Identifier(name)
        conn.execute(sql.SQL("LOCK TABLE {} IN SHARE MODE").format(ident))
        if _count(conn, name) != expected:
            return False  # a row arrived after the export: export again next round
        conn.execute(
            sql.SQL("ALTER TABLE {} DETACH PARTITION {}").format(sql.Identifier(table), ident)
        )
        conn.execute(sql.SQL("DROP TABLE {}").format(ident))
    forget_partitions(table)
    return True


@dataclass
class MaintenanceReport:
    created: dict[str, int] = field(default_factory=dict)
    archived: list[tuple[str, dt.date, int]] = field(default_factory=list)
    skipped: list[tuple[str, dt.date, str]] = field(default_factory=list)
    remaining: int = 0  # expired days left for later rounds (the per-round bound)
    busy: bool = False  # another maintainer held the lock: nothing was done


def expired(
    partitions: Iterable[LivePartition],
    window: TsWindow,
    now: dt.datetime,
    restored_keep: dt.timedelta,
) -> list[LivePartition]:
    """Partitions whose whole day is older than their table's retention (restored days after
    their keep time), oldest first."""
    out = []
    for p in partitions:
        end = dt.datetime.combine(p.day + dt.timedelta(days=1), dt.time(), tzinfo=dt.UTC)
        if end > now - window.retention(p.table):
            continue
        if p.restored_at is not None and p.restored_at + restored_keep > now:
            continue
        out.append(p)
    return sorted(out, key=lambda p: (p.day, p.table))


def _take_lock(conn: Connection, wait_s: float) -> bool:
    deadline = time.monotonic() + wait_s
    while True:
        got = conn.execute("SELECT pg_try_advisory_lock(hashtext(%s))", (_LOCK_KEY,)).fetchone()
        if got and got[0]:
            return True
        if time.monotonic() >= deadline:
            return False
        time.sleep(0.5)


def maintain(
    conn: Connection,
    window: TsWindow,
    archive_dir: Path,
    *,
    now: dt.datetime | None = None,
    max_days: int = 7,
    restored_keep: dt.timedelta = dt.timedelta(days=7),
    lock_timeout_ms: int = 5000,
    lock_wait_s: float = 60.0,
    say: Say = _quiet,
) -> MaintenanceReport:
    """One maintenance round (see the module's docstring). ``conn`` is in autocommit mode.
    A round of another process is waited for up to ``lock_wait_s``, then this one is skipped."""
    now = now or dt.datetime.now(dt.UTC)
    report = MaintenanceReport()
    if not _take_lock(conn, lock_wait_s):
        report.busy = True
        say("another maintenance round is running: nothing done")
        return report
    try:
        conn.execute("SET timezone = 'UTC'")  # pg_partman names and bounds days in it
        for table in PARTITIONED_TABLES:
            before = len(live_partitions(conn, table))
            conn.execute(
                f"SELECT {PARTMAN_SCHEMA}.run_maintenance(%s, p_jobmon := false)",
                (f"public.{table}",),
            )
            report.created[table] = len(live_partitions(conn, table)) - before
            say(f"{table}: {report.created[table]} partitions made ahead")
        due = expired(
            [p for t in PARTITIONED_TABLES for p in live_partitions(conn, t)],
            window,
            now,
            restored_keep,
        )
        report.remaining = max(0, len(due) - max_days)
        for p in due[:max_days]:
            _archive_one(conn, p, archive_dir, lock_timeout_ms, report, say)
        if report.remaining:
            say(f"{report.remaining} expired days left for the next rounds")
    finally:
        conn.execute("SELECT pg_advisory_unlock(hashtext(%s))", (_LOCK_KEY,))
    return report


def _archive_one(
    conn: Connection,
    p: LivePartition,
    archive_dir: Path,
    lock_timeout_ms: int,
    report: MaintenanceReport,
    say: Say,
) -> None:
    path = archive_path(archive_dir, p.table, p.day)
    live = _count(conn, p.name)
    if path.exists() and file_rows(path) == live:
        say(f"{p.table} {p.day}: archive {path} already holds its {live} rows")
    else:
        written = export_day(conn, p.table, p.day, path)
        if written != live or file_rows(path) != live:
            report.skipped.append((p.table, p.day, "row count of the file differs"))
            say(f"{p.table} {p.day}: file has {file_rows(path)} rows, partition {live}: kept")
            return
        say(f"{p.table} {p.day}: {live} rows written to {path}")
    if _drop(conn, p.table, p.name, live, lock_timeout_ms):
        report.archived.append((p.table, p.day, live))
        say(f"{p.table} {p.day}: partition {p.name} dropped")
    else:
        report.skipped.append((p.table, p.day, "rows arrived after the export"))
        say(f"{p.table} {p.day}: rows arrived after the export: kept for the next round")


def restore_day(
    conn: Connection, archive_dir: Path, table: str, day: dt.date, say: Say = _quiet
) -> int:
    """Attach ``day`` of ``table`` again from its archive file; answers the rows now live.

    Idempotent: a partition already holding exactly the file's rows is left as it is. A
    partition holding other rows is refused (LifecycleError), never merged into."""
    path = archive_path(archive_dir, table, day)
    if not path.exists():
        raise LifecycleError(f"day: no archive of {table} for {day} ({path} does not exist)")
    expected = file_rows(path)
    name = partition_name(table, day)
    exists = conn.execute("SELECT to_regclass(%s)", (name,)).fetchone()
    if exists and exists[0]:
        live = _count(conn, name)
        if live == expected:
            say(f"{table} {day}: already live with the file's {live} rows: nothing to do")
            return live
        if live:
            raise LifecycleError(
                f"day: partition {name} exists with {live} rows (the file has {expected}):"
                " refusing to merge"
            )
    table_columns = {n for n, _ in _columns(conn, table)}
    parquet = pq.ParquetFile(path)
    names = [n for n in parquet.schema_arrow.names if n in table_columns]
    copy_sql = sql.SQL("COPY {} ({}) FROM STDIN (FORMAT csv)").format(
        sql.Identifier(name), sql.SQL(", ").join(map(sql.Identifier, names))
    )
    with conn.transaction():
        conn.execute("SET LOCAL timezone = 'UTC'")
        create_partition(conn, table, day)
        cur = conn.cursor(row_factory=tuple_row)
        with cur.copy(copy_sql) as copy:
            for i in range(parquet.num_row_groups):
                buf = io.BytesIO()
                group = parquet.read_row_group(i, columns=names)
                pacsv.write_csv(group, buf, pacsv.WriteOptions(include_header=False))
                copy.write(buf.getvalue())
        mark = RESTORED_MARK + dt.datetime.now(dt.UTC).isoformat()
        conn.execute(
            sql.SQL("COMMENT ON TABLE {} IS {}").format(sql.Identifier(name), sql.Literal(mark))
        )
        live = _count(conn, name)
    say(f"{table} {day}: {live} rows restored from {path} into {name}")
    return live


def archived_track(
    archive_dir: Path,
    days: Iterable[dt.date],
    vehicle_id: int,
    start: dt.datetime,
    end: dt.datetime,
) -> list[tuple[dt.datetime, float, float, float]]:
    """A vehicle's fixes in [start, end] from the archived ``days`` (those whose partition is
    gone), as (ts, lon, lat, speed_kmh) in time order. Reads only the needed columns and row
    groups (the files are ordered by time)."""
    out: list[tuple[dt.datetime, float, float, float]] = []
    for day in sorted(set(days)):
        path = archive_path(archive_dir, "positions", day)
        if not path.exists():
            continue
        t = pq.read_table(
            path,
            columns=["ts", "lon", "lat", "speed_kmh"],
            filters=[("vehicle_id", "=", vehicle_id), ("ts", ">=", start), ("ts", "<=", end)],
        )
        for ts, lon, lat, speed in zip(*(t.column(i).to_pylist() for i in range(4)), strict=True):
            out.append((ts, float(lon), float(lat), float(speed)))
    return sorted(out, key=lambda r: r[0])


def archive_listing(conn: Connection, archive_dir: Path) -> dict[str, dict[str, Any]]:
    """Per table: live partition days (restored ones marked) and archived days."""
    out: dict[str, dict[str, Any]] = {}
    for table in PARTITIONED_TABLES:
        out[table] = {
            "live": live_partitions(conn, table),
            "archived": archived_days(archive_dir, table),
        }
    return out
