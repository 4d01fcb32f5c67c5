"""Citus's rules for keys, held against a live schema from PostgreSQL's catalog.

Citus enforces a key or a foreign key only inside one shard, so (docs.citusdata.com, "Creating
and Modifying Distributed Objects" and its foreign-key checks):

1. every table takes a side in the plan (layers/core/distribution.py) — a new table forces a
   decision;
2. a distributed table's PRIMARY KEY, UNIQUE and EXCLUDE constraints and unique indexes hold
   its distribution column (the partitions of a partitioned table too); the column is NOT
   NULL (a row without a shard cannot be placed) and of one type within a colocation group;
3. a foreign key between distributed tables joins the two distribution columns (same position
   on both sides) of tables in one colocation group;
4. a foreign key holding the distribution column never sets it: no ON DELETE SET NULL / SET
   DEFAULT (with or without a column list), no ON UPDATE SET NULL / SET DEFAULT / CASCADE;
5. no foreign key from a reference table to a distributed or local one, and none between a
   distributed table and a local one, either way.

``violations`` answers with one line per breach, naming the table and the constraint.
"""

from __future__ import annotations

from typing import Any

from psycopg import Connection
from psycopg.rows import dict_row

from layers.core.distribution import PLAN, Plan

# Tables of ``schema``; partitions are checked with their parent, extension-owned tables
# (PostGIS's spatial_ref_sys) belong to the extension, which Citus installs on every node.
_TABLES = """
SELECT c.oid, c.relname FROM pg_class c
WHERE c.relnamespace = %(schema)s::regnamespace AND c.relkind IN ('r', 'p')
  AND NOT c.relispartition
  AND NOT EXISTS (SELECT 1 FROM pg_depend d WHERE d.classid = 'pg_class'::regclass
                  AND d.objid = c.oid AND d.deptype = 'e')
"""
# A table and its partitions at any depth, with the column's number and type in each.
_MEMBERS = """
SELECT t.relid::regclass::text AS rel, t.relid::oid AS oid, a.attnum,
       a.atttypid::regtype::text AS typ, a.attnotnull
FROM pg_partition_tree(%(oid)s) t
LEFT JOIN pg_attribute a ON a.attrelid = t.relid AND a.attname = %(column)s AND NOT a.attisdropped
UNION ALL
SELECT %(oid)s::regclass::text, %(oid)s::oid, a.attnum, a.atttypid::regtype::text, a.attnotnull
FROM pg_attribute a WHERE a.attrelid = %(oid)s AND a.attname = %(column)s AND NOT a.attisdropped
  AND NOT EXISTS (SELECT 1 FROM pg_partition_tree(%(oid)s))
"""
_UNIQUES = """
SELECT conname AS name, conkey::int2[] AS cols FROM pg_constraint
WHERE conrelid = %(oid)s AND contype IN ('p', 'u', 'x')
UNION ALL
SELECT i.indexrelid::regclass::text, i.indkey::int2[] FROM pg_index i
WHERE i.indrelid = %(oid)s AND i.indisunique
  AND NOT EXISTS (SELECT 1 FROM pg_constraint k WHERE k.conindid = i.indexrelid
                  AND k.conrelid = %(oid)s)
"""
# Foreign keys declared on the tables themselves (a partition's clone has a parent).
_FOREIGN_KEYS = """
SELECT k.conname AS name, c.relname AS child, p.relname AS parent,
       k.conkey::int2[] AS ckey, k.confkey::int2[] AS pkey, k.confdeltype, k.confupdtype,
       (SELECT array_agg(a.attname ORDER BY x.n) FROM unnest(k.conkey) WITH ORDINALITY x(att, n)
          JOIN pg_attribute a ON a.attrelid = k.conrelid AND a.attnum = x.att) AS ccols,
       (SELECT array_agg(a.attname ORDER BY x.n) FROM unnest(k.confkey) WITH ORDINALITY x(att, n)
          JOIN pg_attribute a ON a.attrelid = k.confrelid AND a.attnum = x.att) AS pcols
FROM pg_constraint k JOIN pg_class c ON c.oid = k.conrelid JOIN pg_class p ON p.oid = k.confrelid
WHERE k.contype = 'f' AND k.conparentid = 0
  AND c.relnamespace = %(schema)s::regnamespace AND NOT c.relispartition
"""
_ACTION = {"a": "NO ACTION", "r": "RESTRICT", "c": "CASCADE", "n": "SET NULL", "d": "SET DEFAULT"}


def _rows(conn: Connection[Any], query: str, **params: Any) -> list[dict[str, Any]]:
    cur = conn.cursor(row_factory=dict_row)
    cur.execute(query.encode(), params)
    return cur.fetchall()


def _coverage(tables: dict[str, int], plan: Plan) -> list[str]:
    out = []
    for name in sorted(tables):
        sides = [
            side
            for side, members in (
                ("distributed", plan.distributed),
                ("reference", plan.reference),
                ("local", plan.local),
            )
            if name in members
        ]
        if len(sides) != 1:
            where = " and ".join(sides) if sides else "none of distributed/reference/local"
            out.append(f"{name}: declared in {where} (layers/core/distribution.py)")
    declared = set(plan.distributed) | set(plan.reference) | set(plan.local)
    out += [f"{name}: declared but not in the database" for name in sorted(declared - set(tables))]
    return out


def _distributed_keys(conn: Connection[Any], tables: dict[str, int], plan: Plan) -> list[str]:
    out: list[str] = []
    types: dict[str, dict[str, str]] = {}
    for name, sharding in plan.distributed.items():
        if name not in tables:
            continue
        for m in _rows(conn, _MEMBERS, oid=tables[name], column=sharding.column):
            if m["attnum"] is None:
                out.append(f"{m['rel']}: no distribution column {sharding.column}")
                continue
            types.setdefault(sharding.group, {})[m["rel"]] = m["typ"]
            if not m["attnotnull"]:
                out.append(f"{m['rel']}.{sharding.column}: the distribution column is nullable")
            for key in _rows(conn, _UNIQUES, oid=m["oid"]):
                if m["attnum"] not in key["cols"]:
                    out.append(
                        f"{m['rel']}: unique {key['name']} lacks the distribution column"
                        f" {sharding.column}"
                    )
    for group, by_table in types.items():
        if len(set(by_table.values())) > 1:
            listed = ", ".join(f"{t} {typ}" for t, typ in sorted(by_table.items()))
            out.append(f"colocation group {group}: distribution columns differ in type ({listed})")
    return out


def _foreign_key(fk: dict[str, Any], plan: Plan) -> list[str]:
    child, parent, name = fk["child"], fk["parent"], fk["name"]
    kinds = plan.kind(child), plan.kind(parent)
    if None in kinds:
        return []  # reported by the coverage rule
    if kinds[0] == "reference" and kinds[1] != "reference":
        return [f"{child}: {name} points from a reference table to {kinds[1]} table {parent}"]
    if {"distributed", "local"} == set(kinds):
        return [f"{child}: {name} links {kinds[0]} {child} and {kinds[1]} {parent}"]
    if kinds[0] != "distributed":
        return []
    out = []
    mine = plan.distributed[child]
    if mine.column in fk["ccols"]:
        if fk["confdeltype"] in ("n", "d"):
            out.append(
                f"{child}: {name} holds the distribution column and has ON DELETE "
                f"{_ACTION[fk['confdeltype']]}, which Citus refuses"
            )
        if fk["confupdtype"] in ("n", "d", "c"):
            out.append(
                f"{child}: {name} holds the distribution column and has ON UPDATE "
                f"{_ACTION[fk['confupdtype']]}, which Citus refuses"
            )
    if kinds[1] == "distributed":
        theirs = plan.distributed[parent]
        if theirs.group != mine.group:
            out.append(f"{child}: {name} links colocation groups {mine.group} and {theirs.group}")
        pairs = list(zip(fk["ccols"], fk["pcols"], strict=True))
        if (mine.column, theirs.column) not in pairs:
            out.append(
                f"{child}: {name} does not join {child}.{mine.column} to {parent}.{theirs.column}"
            )
    return out


def violations(conn: Connection[Any], plan: Plan = PLAN, schema: str = "public") -> list[str]:
    """Every breach of Citus's key rules by the tables of ``schema`` under ``plan``."""
    tables = {r["relname"]: r["oid"] for r in _rows(conn, _TABLES, schema=schema)}
    out = _coverage(tables, plan)
    out += _distributed_keys(conn, tables, plan)
    for fk in _rows(conn, _FOREIGN_KEYS, schema=schema):
        out += _foreign_key(fk, plan)
    return out
