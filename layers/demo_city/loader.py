"""Database side of the seed: emptiness check, truncation, COPY of every table, sequences.

Small tables go through text COPY with geometries as hex EWKB (``shapely.to_wkb``, vectorised);
tanker fixes go through binary COPY built by ``layers.core.pgcopy`` and are written by a background
thread so that PostgreSQL ingests one chunk while Python generates the next (2 cores: one each).
"""

from __future__ import annotations

import datetime as dt
import queue
import threading
from collections.abc import Iterable, Sequence
from typing import Any

import numpy as np
import psycopg
import shapely
from psycopg import sql
from shapely.geometry.base import BaseGeometry

from layers.core import pgcopy
from layers.demo_city.config import to_lonlat
from layers.demo_city.registers import UNIT_COLUMNS, Registers
from layers.risk.hexagons import fix_cells

#: Every data table (not alembic_version, not spatial_ref_sys); children before parents.
DATA_TABLES = (
    "waybill_events",
    "waybills",
    "crew_members",
    "carriers",
    "score_events",
    "hidden_dangers",
    "risk_units",
    "alerts",
    "stops",
    "vehicle_state",
    "position_rejects",
    "positions",
    "readings",
    "vehicles",
    "roads",
    "monitoring_points",
    "pipelines",
    "hazard_source_substances",
    "hazard_sources",
    "zones",
    "enterprises",
    "districts",
)

#: Tables whose ids the seed writes explicitly; their sequences are moved past the max id.
ID_TABLES = (
    "districts",
    "enterprises",
    "hazard_sources",
    "hazard_source_substances",
    "pipelines",
    "monitoring_points",
    "zones",
    "roads",
    "vehicles",
    "risk_units",
)


#: The database setting the seed leaves (``ALTER DATABASE … SET``: no schema change, so
#: migrations and autogenerate never see it): what tells the demo feed
#: (layers/demo_city/feed.py) that this database holds the generated city, not real data.
DEMO_SETTING = "georisk.demo_city"


class NotEmpty(RuntimeError):
    pass


def database_is_empty(url: str) -> bool:
    """True when no enterprise is stored (what ``georisk seed --if-empty`` checks)."""
    with psycopg.connect(url) as conn:
        row = conn.execute("SELECT EXISTS (SELECT 1 FROM enterprises)").fetchone()
    return not (row and row[0])


def mark_demo(conn: psycopg.Connection, seed: int, scale: float, day: dt.date) -> None:
    """Leave the demo marker on the database; skipped (with a note) where the seeding role
    may not alter the database — the feed then recognises the city by its roads."""
    text = f"seed={int(seed)} scale={float(scale):g} day={day.isoformat()}"
    statement = sql.SQL("ALTER DATABASE {} SET {} = {}").format(
        sql.Identifier(conn.info.dbname), sql.SQL(DEMO_SETTING), sql.Literal(text)
    )
    try:
        with conn.transaction():
            conn.execute(statement)
    except psycopg.errors.InsufficientPrivilege:
        print(f"note: no demo marker ({DEMO_SETTING}): this role may not alter the database")


def prepare(conn: psycopg.Connection, replace: bool) -> None:
    row = conn.execute("SELECT EXISTS (SELECT 1 FROM enterprises)").fetchone()
    if row and row[0] and not replace:
        raise NotEmpty(
            "the database already holds data (enterprises exist); "
            "use `georisk seed --replace` (replace=True) to delete it and seed again"
        )
    if replace:
        conn.execute(f"TRUNCATE {', '.join(DATA_TABLES)} RESTART IDENTITY CASCADE")


def wkb_hex(geoms: Sequence[BaseGeometry]) -> list[str]:
    """Metric-plane geometries → WGS 84 hex EWKB (SRID 4326), coordinates rounded to 1e-7°."""

    def project(coords: np.ndarray) -> np.ndarray:
        lon, lat = to_lonlat(coords[:, 0], coords[:, 1])
        return np.column_stack((np.round(lon, 7), np.round(lat, 7)))

    arr = shapely.transform(np.asarray(geoms, dtype=object), project)
    arr = shapely.set_srid(arr, 4326)
    return list(shapely.to_wkb(arr, hex=True, include_srid=True))


def copy_rows(
    conn: psycopg.Connection, table: str, columns: Sequence[str], rows: Iterable[Sequence[Any]]
) -> int:
    n = 0
    with conn.cursor() as cur, cur.copy(f"COPY {table} ({', '.join(columns)}) FROM STDIN") as cp:
        for row in rows:
            cp.write_row(row)
            n += 1
    return n


def copy_registers(conn: psycopg.Connection, regs: Registers) -> int:
    """COPY the risk units (after their enterprises and hazard sources); returns how many."""
    return copy_rows(
        conn, "risk_units", (*UNIT_COLUMNS, "geom"), regs.unit_rows(wkb_hex(regs.geoms))
    )


def fix_sequences(conn: psycopg.Connection) -> None:
    for table in ID_TABLES:
        conn.execute(
            f"SELECT setval(pg_get_serial_sequence('{table}', 'id'),"
            f" COALESCE((SELECT max(id) FROM {table}), 0) + 1, false)"
        )


POSITION_COLUMNS = "vehicle_id, ts, lon, lat, speed_kmh, heading, alarm_bits, h3_r8"


class PositionStream:
    """Binary COPY into ``positions`` fed from a queue by a writer thread.

    The connection belongs to the writer thread until ``close``; the caller must not use it.
    """

    def __init__(self, conn: psycopg.Connection, depth: int = 2) -> None:
        self._conn = conn
        self._q: queue.Queue[bytes | None] = queue.Queue(maxsize=depth)
        self._error: BaseException | None = None
        self.rows = 0
        self._thread = threading.Thread(target=self._run, name="positions-copy", daemon=True)
        self._thread.start()

    def _run(self) -> None:
        try:
            with (
                self._conn.cursor() as cur,
                cur.copy(f"COPY positions ({POSITION_COLUMNS}) FROM STDIN (FORMAT BINARY)") as cp,
            ):
                cp.write(pgcopy.HEADER)
                while True:
                    block = self._q.get()
                    if block is None:
                        break
                    cp.write(block)
                cp.write(pgcopy.TRAILER)
        except BaseException as exc:  # surfaced to the caller in put/close
            self._error = exc
            while self._q.get() is not None:  # drain so the producer never blocks
                pass

    def put(
        self,
        vehicle_id: np.ndarray,
        ts_us: np.ndarray,
        lon: np.ndarray,
        lat: np.ndarray,
        speed: np.ndarray,
        heading: np.ndarray,
    ) -> None:
        if self._error:
            raise self._error
        block = pgcopy.encode_rows(
            [
                ("int4", vehicle_id),
                ("timestamptz", ts_us),
                ("float8", lon),
                ("float8", lat),
                ("float4", speed),
                ("int2", heading),
                ("int4", np.zeros(len(lon), dtype=np.int32)),
                ("int8", fix_cells(lon, lat)),
            ]
        )
        self.rows += len(lon)
        self._q.put(block)

    def close(self) -> None:
        self._q.put(None)
        self._thread.join()
        if self._error:
            raise self._error
