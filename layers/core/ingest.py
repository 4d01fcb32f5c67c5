"""One shape for the batch ingest paths (tanker fixes, sensor readings): a driver that runs
the same steps for every kind of batch, and the kinds supply only what differs.

A batch, once parsed (``layers/core/bodies.py``: numpy columns plus per-row errors):

1. rows whose ``ts`` lies outside the table's window (older than its retention, or further
   ahead of the clock than the skew: ``layers/core/window.py``) are per-row rejections; the
   daily partitions the other rows need, each in its own short transaction
   (``layers/core/partitions.py``);
2. then one transaction: ``lock`` the state of the batch's objects (vehicles, points) in id
   order, so concurrent batches of the same objects queue instead of deadlocking — rows of an
   unknown object are per-row rejections; ``screen`` the rest (noise filters; default: keep
   every known row); binary COPY of the kept rows into a temp table and
   ``INSERT … ON CONFLICT DO NOTHING`` into the partitioned table (idempotent on its key: a
   re-sent batch reports duplicates and stores nothing); ``evaluate`` only the newly stored
   rows (detector, alarm evaluator), which also notifies the map of what changed, and names
   the enterprises to re-rate after the commit.

Per-row problems are reported as ``{"index", "error"}`` (index into the body), never raised.
"""

from __future__ import annotations

import datetime as dt
from abc import ABC, abstractmethod
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any, Generic, Protocol, TypeVar

import numpy as np
from numpy.typing import NDArray
from psycopg import AsyncConnection
from psycopg.rows import tuple_row

from layers.core import pgcopy
from layers.core.partitions import ensure_partitions_async
from layers.core.window import DEFAULT_WINDOW, TsWindow


class Batch(Protocol):
    """Parsed rows of a body: ``index`` maps each to its position in the body (0-based), ``t``
    is µs since the Unix epoch, ``errors`` the rows that could not be read, ``total`` all rows."""

    index: NDArray[np.int64]
    t: NDArray[np.int64]
    errors: list[tuple[int, str]]
    total: int


R = TypeVar("R", bound=Batch)
S = TypeVar("S")


@dataclass
class Target:
    """Where kept rows go: a daily-partitioned ``table`` through the session temp table
    ``temp``, whose ``columns`` (name, PostgreSQL type) are the binary COPY's, in order.
    ``select`` is the INSERT's select list over the temp table (default: the columns as they
    are); ``returning`` is what each newly stored row hands to ``evaluate``."""

    table: str
    temp: str
    columns: tuple[tuple[str, str], ...]
    returning: str
    select: str = ""
    create_sql: bytes = field(init=False, repr=False)
    copy_sql: bytes = field(init=False, repr=False)
    insert_sql: bytes = field(init=False, repr=False)

    def __post_init__(self) -> None:
        names = ", ".join(name for name, _ in self.columns)
        self.create_sql = (
            f"CREATE TEMP TABLE IF NOT EXISTS {self.temp}"
            f" ({', '.join(f'{name} {pg_type}' for name, pg_type in self.columns)})"
            " ON COMMIT DELETE ROWS"
        ).encode()
        self.copy_sql = f"COPY {self.temp} FROM STDIN (FORMAT BINARY)".encode()
        self.insert_sql = (
            f"INSERT INTO {self.table} ({names}) SELECT {self.select or names} FROM {self.temp}"
            f" ON CONFLICT DO NOTHING RETURNING {self.returning}"
        ).encode()


@dataclass
class Screened:
    """What ``screen`` keeps (``good``, over all parsed rows) and why it drops the others:
    ``rejected`` as (row, message) and ``duplicates`` (repeats within the batch)."""

    good: NDArray[np.bool_]
    rejected: list[tuple[int, str]] = field(default_factory=list)
    duplicates: int = 0


@dataclass
class IngestResult:
    accepted: int = 0
    duplicates: int = 0
    rejected: list[dict[str, Any]] = field(default_factory=list)
    enterprises: list[int] = field(default_factory=list)  # to re-rate after the commit

    def answer(self) -> dict[str, Any]:
        """The HTTP answer: ``{accepted, duplicates, rejected: [{index, error}]}``."""
        return {"accepted": self.accepted, "duplicates": self.duplicates, "rejected": self.rejected}


def row_errors(errors: Sequence[tuple[int, str]]) -> list[dict[str, Any]]:
    """Per-row problems as the answer lists them."""
    return [{"index": i, "error": e} for i, e in errors]


class IngestKind(ABC, Generic[R, S]):
    """What one kind of batch supplies to ``ingest_batch``. ``S`` is its locked state."""

    target: Target
    #: The column naming each row's object and the object's name, for "point_id: unknown
    #: monitoring point 7"; ``plural`` names the rows ("at most 50000 fixes per request").
    key: str
    noun: str
    plural: str

    @abstractmethod
    def parse(self, body: bytes, content_type: str) -> R:
        """The body as columns plus per-row errors (``BodyError`` when unreadable as a whole)."""

    @abstractmethod
    def ids(self, rows: R) -> NDArray[np.int64]:
        """Each row's object id (the ``key`` column)."""

    @abstractmethod
    async def lock(self, conn: AsyncConnection[Any], ids: list[int]) -> tuple[S, NDArray[Any]]:
        """Lock and load the state of the objects among ``ids`` (sorted, unique) that exist, in
        id order; answers the state and the ids that exist."""

    async def screen(
        self, conn: AsyncConnection[Any], rows: R, state: S, known: NDArray[np.bool_]
    ) -> Screened:
        """Which known rows to store; by default all of them."""
        return Screened(known)

    @abstractmethod
    def columns(self, rows: R, good: NDArray[np.bool_]) -> list[np.ndarray]:
        """The kept rows' values of ``target.columns``, in order."""

    @abstractmethod
    async def evaluate(self, conn: AsyncConnection[Any], stored: list[Any], state: S) -> list[int]:
        """Judge the newly stored rows (as ``target.returning`` gives them), save the state,
        notify; answers the enterprises to re-rate after the commit."""


async def copy_new(
    conn: AsyncConnection[Any], target: Target, values: Sequence[np.ndarray]
) -> list[Any]:
    """Binary COPY of ``values`` into the temp table, then insert what is new; answers the
    stored rows (``target.returning``). Runs inside the caller's transaction."""
    await conn.execute(target.create_sql)
    block = pgcopy.encode(
        [(pg_type, v) for (_, pg_type), v in zip(target.columns, values, strict=True)]
    )
    cur = conn.cursor(row_factory=tuple_row)
    async with cur.copy(target.copy_sql) as copy:
        await copy.write(block)
    await cur.execute(target.insert_sql)
    return await cur.fetchall()


async def ingest_batch(
    conn: AsyncConnection[Any],
    kind: IngestKind[R, S],
    rows: R,
    window: TsWindow = DEFAULT_WINDOW,
    now: dt.datetime | None = None,
) -> IngestResult:
    """Store and judge one parsed batch; per-row problems are reported, never raised.
    ``window`` is the configured one (GEORISK_RETENTION_*, GEORISK_TS_MAX_FUTURE_SKEW_S)."""
    out = IngestResult(rejected=row_errors(rows.errors))
    if len(rows.t) == 0:
        return out
    table = kind.target.table
    inside = window.inside_us(table, rows.t, now)
    if not inside.all():
        msg = window.message(table, now)
        out.rejected += [
            {"index": int(rows.index[j]), "error": msg} for j in np.flatnonzero(~inside)
        ]
    if not inside.any():
        out.rejected.sort(key=lambda r: r["index"])
        return out
    await ensure_partitions_async(conn, table, rows.t[inside])
    async with conn.transaction():
        ids = kind.ids(rows)
        state, existing = await kind.lock(conn, np.unique(ids[inside]).tolist())
        present = np.isin(ids, existing)
        for j in np.flatnonzero(inside & ~present).tolist():
            msg = f"{kind.key}: unknown {kind.noun} {int(ids[j])}"
            out.rejected.append({"index": int(rows.index[j]), "error": msg})
        # Rows outside the window are screened out like rows of unknown objects.
        screened = await kind.screen(conn, rows, state, present & inside)
        out.rejected += [{"index": int(rows.index[j]), "error": e} for j, e in screened.rejected]
        good = screened.good
        stored = await copy_new(conn, kind.target, kind.columns(rows, good)) if good.any() else []
        out.accepted = len(stored)
        out.duplicates = screened.duplicates + int(good.sum()) - len(stored)
        if stored:
            out.enterprises = await kind.evaluate(conn, stored, state)
    out.rejected.sort(key=lambda r: r["index"])
    return out
