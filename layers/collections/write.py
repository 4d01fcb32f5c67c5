"""Writing collections — the one insert path shared by ``POST`` and ``georisk import``.

Validated records are COPYed into a temporary staging table, then every rule that needs the
database (unknown district, missing parent, duplicate key within the batch or against the
table) is checked set-based on that table, missing districts are filled from the district
polygons, and one ``INSERT … SELECT`` stores the batch. All of it runs in one transaction, so a
rejected batch leaves nothing behind.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

import shapely
from psycopg import AsyncConnection, errors
from psycopg.rows import dict_row
from psycopg.types.json import Jsonb
from shapely.geometry.base import BaseGeometry
from tqdm import tqdm

from layers.catalog.collections import Collection, UniqueKey
from layers.collections.read import registry_sql
from layers.core.changes import notify_change
from layers.core.features import FeaturesRejected, Problem, Record

STAGING = "georisk_staging"


@dataclass(frozen=True)
class StoreResult:
    ids: list[int]  # new ids, in batch order
    indexes: list[int]  # the batch index each id belongs to
    set_aside: list[Problem] = field(default_factory=list)  # partial mode: rows not stored


def _copy_value(value: Any) -> Any:
    if isinstance(value, BaseGeometry):
        # Hex EWKB: PostGIS reads it as geometry text input, SRID included.
        return shapely.to_wkb(shapely.set_srid(value, 4326), hex=True, include_srid=True)
    if isinstance(value, list | dict):
        return Jsonb(value)
    return value


async def _rows(conn: AsyncConnection[Any], text: str, params: Any = None) -> list[dict[str, Any]]:
    async with conn.cursor(row_factory=dict_row) as cur:
        await cur.execute(registry_sql(text), params)
        return await cur.fetchall() if cur.description else []


async def _stage(
    conn: AsyncConnection[Any], coll: Collection, records: Sequence[Record], progress: bool
) -> None:
    w = coll.writing
    names = [c.name for c in w.columns]
    ddl = ", ".join(f"{c.name} {c.pgtype}" for c in w.columns)
    await _rows(
        conn,
        f"CREATE TEMP TABLE {STAGING} (ord integer PRIMARY KEY, id integer, {ddl}) ON COMMIT DROP",
    )
    rows: Iterable[Record] = records
    if progress:
        rows = tqdm(records, desc=f"loading {coll.name}", unit="row")
    async with conn.cursor() as cur:
        copy_sql = f"COPY {STAGING} (ord, {', '.join(names)}) FROM STDIN"
        async with cur.copy(registry_sql(copy_sql)) as copy:
            for rec in rows:
                await copy.write_row([rec.index, *(_copy_value(rec.values.get(n)) for n in names)])


async def _check(conn: AsyncConnection[Any], coll: Collection) -> list[Problem]:
    """Every database-dependent rule, each one query over the whole batch."""
    w = coll.writing
    problems: list[Problem] = []
    for text in w.resolve_sql:
        await _rows(conn, text)
    names = {c.name for c in w.columns}
    if "district" in names:
        for r in await _rows(
            conn,
            f"SELECT s.ord, s.district FROM {STAGING} s WHERE s.district IS NOT NULL"
            " AND NOT EXISTS (SELECT 1 FROM districts d WHERE d.code = s.district)",
        ):
            problems.append(Problem(r["ord"], "district", f"unknown district code {r['district']}"))
    if w.fills_district:
        # A point-on-surface is inside exactly one district even for lines and polygons
        # that cross a boundary; the GiST index on districts.geom finds it.
        await _rows(
            conn,
            f"UPDATE {STAGING} s SET district = (SELECT d.code FROM districts d"
            " WHERE ST_Covers(d.geom, ST_PointOnSurface(s.geom)) ORDER BY d.code LIMIT 1)"
            " WHERE s.district IS NULL",
        )
    for check in w.checks:
        for r in await _rows(conn, check.sql):
            problems.append(Problem(r["ord"], check.field, check.reason.format(value=r["value"])))
    for key in w.unique_keys:
        problems.extend(await _duplicates(conn, coll, key))
    return problems


async def _duplicates(
    conn: AsyncConnection[Any], coll: Collection, key: UniqueKey
) -> list[Problem]:
    w = coll.writing
    cols = key.columns
    # The part the client chose (the rest is the scope), or what stands for it.
    value = f"s.{key.field}::text" if key.shown is None else "%(shown)s"
    not_null = " AND ".join(f"s.{c} IS NOT NULL" for c in cols)
    out: list[Problem] = []
    within = await _rows(
        conn,
        f"SELECT x.ord, x.value FROM (SELECT s.ord, {value} AS value, row_number() OVER"
        f" (PARTITION BY {', '.join(f's.{c}' for c in cols)} ORDER BY s.ord) AS n"
        f" FROM {STAGING} s WHERE {not_null}) x WHERE x.n > 1",
        {"shown": key.shown},
    )
    for r in within:
        out.append(
            Problem(r["ord"], key.field, f"{r['value']} appears more than once in this batch", True)
        )
    # A PATCH stages the row under its own id: it does not clash with itself.
    join = " AND ".join(f"t.{c} = s.{c}" for c in cols) + " AND t.id IS DISTINCT FROM s.id"
    for r in await _rows(
        conn,
        f"SELECT s.ord, {value} AS value, t.id FROM {STAGING} s JOIN {w.table} t ON {join}",
        {"shown": key.shown},
    ):
        reason = f"{r['value']} already exists ({coll.noun} id {r['id']})"
        out.append(Problem(r["ord"], key.field, reason, True))
    return out


async def _insert(conn: AsyncConnection[Any], coll: Collection) -> list[dict[str, Any]]:
    w = coll.writing
    # Ids are drawn in batch order before the insert, so the answer maps index → id exactly
    # instead of trusting the order of RETURNING.
    await _rows(
        conn,
        f"UPDATE {STAGING} s SET id = n.id FROM (SELECT o.ord,"
        " nextval(pg_get_serial_sequence(%(table)s, 'id')) AS id"
        f" FROM (SELECT ord FROM {STAGING} ORDER BY ord) o) n WHERE n.ord = s.ord",
        {"table": w.table},
    )
    cols = ", ".join(c.name for c in w.stored_columns)
    await _rows(
        conn,
        f"INSERT INTO {w.table} (id, {cols}) SELECT id, {cols} FROM {STAGING} ORDER BY ord",
    )
    for text in w.after_insert_sql:
        await _rows(conn, text)
    return await _rows(conn, f"SELECT ord, id FROM {STAGING} ORDER BY ord")


def _translate(coll: Collection, exc: errors.IntegrityError) -> FeaturesRejected:
    """A constraint tripped despite the checks (a concurrent writer): our words, not PG's."""
    w = coll.writing
    name = exc.diag.constraint_name or ""
    for key in w.unique_keys:
        if key.constraint == name:
            return FeaturesRejected(
                [Problem(None, key.field, "already exists (stored concurrently)", True)]
            )
    if isinstance(exc, errors.ForeignKeyViolation):
        fld = w.field_for_constraint.get(name, "district" if "district" in name else "id")
        return FeaturesRejected([Problem(None, fld, "refers to a record that no longer exists")])
    prefix = f"ck_{w.table}_"
    fld = name.removeprefix(prefix) if name.startswith(prefix) else "properties"
    return FeaturesRejected([Problem(None, fld, f"value not allowed for a {coll.noun}")])


async def update_record(
    conn: AsyncConnection[Any], coll: Collection, item_id: int, record: Record, version: int
) -> int:
    """Store a validated edit of row ``item_id`` (a PATCH's merged result) through the same
    staging and checks as an insert; returns the new version.

    The caller holds the row lock and has checked ``version``; the ``WHERE version`` here makes
    the write refuse anything else even so (it would be a 0-row update: a ``LookupError``).
    """
    w = coll.writing
    cols = [c.name for c in w.stored_columns]
    try:
        async with conn.transaction():
            await _stage(conn, coll, [record], False)
            await _rows(conn, f"UPDATE {STAGING} SET id = %(id)s", {"id": item_id})
            problems = await _check(conn, coll)
            if problems:
                raise FeaturesRejected(
                    [Problem(None, p.field, p.reason, p.conflict) for p in problems]
                )
            sets = ", ".join(f"{c} = s.{c}" for c in cols)
            updated = await _rows(
                conn,
                f"UPDATE {w.table} t SET {sets}, version = t.version + 1 FROM {STAGING} s"
                " WHERE t.id = %(id)s AND t.version = %(v)s RETURNING t.version",
                {"id": item_id, "v": version},
            )
            if not updated:
                raise LookupError(f"{coll.noun} {item_id} is not at version {version}")
            for text in w.after_update_sql:
                await _rows(conn, text)
    except errors.IntegrityError as exc:
        raise _translate(coll, exc) from None
    except errors.DataError:
        reason = "a value cannot be stored (a NUL character, or a number out of range)"
        raise FeaturesRejected([Problem(None, "properties", reason)]) from None
    return int(updated[0]["version"])


async def store_records(
    conn: AsyncConnection[Any],
    coll: Collection,
    records: Sequence[Record],
    known: Sequence[Problem] = (),
    *,
    partial: bool = False,
    progress: bool = False,
) -> StoreResult:
    """Store a validated batch all-or-nothing (or, with ``partial``, the rows that pass).

    ``known`` are the problems validation already found; they are reported together with the
    database-dependent ones so the client sees every bad feature at once.
    """
    whole_batch = [p for p in known if p.index is None]
    if whole_batch or (known and not partial and not records):
        raise FeaturesRejected(list(known))
    if not records:
        return StoreResult([], [], list(known))
    try:
        async with conn.transaction():
            await _stage(conn, coll, records, progress)
            problems = list(known) + await _check(conn, coll)
            if problems and not partial:
                raise FeaturesRejected(problems)
            bad = sorted({p.index for p in problems if p.index is not None})
            if bad:
                await _rows(conn, f"DELETE FROM {STAGING} WHERE ord = ANY(%(bad)s)", {"bad": bad})
            stored = await _insert(conn, coll)
            await announce(conn, coll, [r["id"] for r in stored])
    except errors.IntegrityError as exc:
        raise _translate(coll, exc) from None
    except errors.DataError:
        # Validation bounds every number; what is left is text PostgreSQL cannot hold.
        reason = "a value cannot be stored (a NUL character, or a number out of range)"
        raise FeaturesRejected([Problem(None, "properties", reason)]) from None
    problems.sort(key=lambda p: (p.index is None, p.index or 0))
    return StoreResult([r["id"] for r in stored], [r["ord"] for r in stored], problems)


async def announce(conn: AsyncConnection[Any], coll: Collection, ids: list[int]) -> None:
    """A change notice with the rows' current extent, inside the writer's transaction (a
    rolled-back batch says nothing): after a create or import, and before and after an edit,
    so every process drops the tiles of the old place and the new one and open maps refetch
    them. Tables without a geometry of their own (vehicles) draw nothing from their rows."""
    if any(c.geometry and c.name == "geom" for c in coll.writing.columns):
        await notify_change(conn, coll.layer, coll.writing.table, ids)
