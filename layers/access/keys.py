"""API keys: made, looked up, listed and revoked (issue 8).

A key is ``grk_`` + 32 random bytes (URL-safe base64). Only its SHA-256 is stored: the key has
256 bits of entropy, so a slow password hash would add nothing but latency, and a copy of the
table gives nobody a usable key. The first twelve characters (``prefix``) are kept in clear so
people can tell their keys apart in a listing.

A key's ``name`` is its user (a person or a system): a user is signed out everywhere when their
last key is revoked, because every session and token names the key it was made from (``kid``)
and is refused once that key is revoked (geo_api/auth.py).
"""

from __future__ import annotations

import datetime as dt
import hashlib
import secrets
from dataclasses import dataclass
from typing import Any, Final

from psycopg import AsyncConnection
from psycopg.rows import dict_row

from layers.core import vocab
from layers.core.errors import InvalidField

KEY_PREFIX: Final = "grk_"
SHOWN_CHARS: Final = 12


class KeyProblem(InvalidField, ValueError):
    """A key that cannot be made as asked; ``field`` names the culprit (a 422)."""


@dataclass(frozen=True)
class KeyIdentity:
    """Who a valid key stands for."""

    id: int
    name: str
    role: str
    enterprise_id: int | None
    districts: frozenset[str] | None
    carriers: frozenset[str] | None = None


def new_key() -> str:
    return KEY_PREFIX + secrets.token_urlsafe(32)


def hash_key(key: str) -> bytes:
    return hashlib.sha256(key.encode()).digest()


def looks_like_key(text: str) -> bool:
    return text.startswith(KEY_PREFIX) and 20 <= len(text) <= 100


async def _check(
    conn: AsyncConnection[Any],
    name: str,
    role: str,
    enterprise_id: int | None,
    districts: list[str] | None,
    carriers: list[str] | None = None,
) -> None:
    if not name.strip():
        raise KeyProblem("name", "must not be blank")
    if role not in vocab.ROLES:
        raise KeyProblem("role", f"must be one of {', '.join(vocab.ROLES)}")
    if (role == "enterprise") != (enterprise_id is not None):
        raise KeyProblem("enterprise_id", "required for the enterprise role and only for it")
    if enterprise_id is not None:
        cur = await conn.execute("SELECT 1 FROM enterprises WHERE id = %s", (enterprise_id,))
        if await cur.fetchone() is None:
            raise KeyProblem("enterprise_id", f"no enterprise {enterprise_id}")
    if districts is not None:
        if role not in vocab.DISTRICT_ROLES:
            raise KeyProblem("districts", "only regulator, officer and ingest keys have districts")
        if not districts:
            raise KeyProblem("districts", "give at least one district, or leave it out for all")
        cur = await conn.execute(
            "SELECT array_agg(d) FROM unnest(%s::text[]) d"
            " WHERE NOT EXISTS (SELECT 1 FROM districts x WHERE x.code = d)",
            (districts,),
        )
        row = await cur.fetchone()
        if row and row[0]:
            raise KeyProblem("districts", f"unknown district(s): {', '.join(row[0])}")
    if carriers is not None:
        if role not in vocab.CARRIER_ROLES:
            raise KeyProblem("carriers", "only ingest keys have carriers")
        if not carriers or not all(c.strip() for c in carriers):
            raise KeyProblem("carriers", "give at least one carrier, or leave it out for all")
        cur = await conn.execute(
            "SELECT array_agg(c) FROM unnest(%s::text[]) c"
            " WHERE NOT EXISTS (SELECT 1 FROM vehicles v WHERE v.carrier = c)",
            (carriers,),
        )
        row = await cur.fetchone()
        if row and row[0]:
            raise KeyProblem("carriers", f"no vehicle of carrier(s): {', '.join(row[0])}")


async def create_key(
    conn: AsyncConnection[Any],
    name: str,
    role: str,
    enterprise_id: int | None = None,
    districts: list[str] | None = None,
    expires_at: dt.datetime | None = None,
    carriers: list[str] | None = None,
) -> tuple[dict[str, Any], str]:
    """Store a new key; returns its listing row and the key itself (shown only this once)."""
    await _check(conn, name, role, enterprise_id, districts, carriers)
    key = new_key()
    cur = conn.cursor(row_factory=dict_row)
    await cur.execute(
        "INSERT INTO api_keys (name, role, enterprise_id, districts, carriers, prefix, key_hash,"
        f" expires_at) VALUES (%s, %s, %s, %s, %s, %s, %s, %s) RETURNING {_LISTED}",
        (
            name.strip(),
            role,
            enterprise_id,
            districts,
            [c.strip() for c in carriers] if carriers is not None else None,
            key[:SHOWN_CHARS],
            hash_key(key),
            expires_at,
        ),
    )
    row = await cur.fetchone()
    assert row is not None
    return row, key


_LISTED = (
    "id, name, role, enterprise_id, districts, carriers, prefix, created_at, expires_at,"
    " revoked_at,"
    " (revoked_at IS NULL AND (expires_at IS NULL OR expires_at > now())) AS active"
)


async def lookup(conn: AsyncConnection[Any], key: str) -> KeyIdentity | None:
    """The identity of a key that exists, is not revoked and has not expired."""
    cur = await conn.execute(
        "SELECT id, name, role, enterprise_id, districts, carriers FROM api_keys"
        " WHERE key_hash = %s"
        " AND revoked_at IS NULL AND (expires_at IS NULL OR expires_at > now())",
        (hash_key(key),),
    )
    row = await cur.fetchone()
    if row is None:
        return None
    return KeyIdentity(
        id=row[0],
        name=row[1],
        role=row[2],
        enterprise_id=row[3],
        districts=frozenset(row[4]) if row[4] is not None else None,
        carriers=frozenset(row[5]) if row[5] is not None else None,
    )


async def is_active(conn: AsyncConnection[Any], key_id: int) -> bool:
    """Is key ``key_id`` neither revoked nor expired? (Sessions and tokens ask, by ``kid``.)"""
    cur = await conn.execute(
        "SELECT 1 FROM api_keys WHERE id = %s AND revoked_at IS NULL"
        " AND (expires_at IS NULL OR expires_at > now())",
        (key_id,),
    )
    return await cur.fetchone() is not None


async def list_keys(conn: AsyncConnection[Any]) -> list[dict[str, Any]]:
    cur = conn.cursor(row_factory=dict_row)
    await cur.execute(f"SELECT {_LISTED} FROM api_keys ORDER BY id")
    return await cur.fetchall()


async def revoke(conn: AsyncConnection[Any], key_id: int) -> bool:
    """Revoke a key (kept for the audit trail); False when there is no such active key."""
    cur = await conn.execute(
        "UPDATE api_keys SET revoked_at = now() WHERE id = %s AND revoked_at IS NULL", (key_id,)
    )
    return cur.rowcount == 1


async def revoke_user(conn: AsyncConnection[Any], name: str) -> list[int]:
    """Revoke every active key of user ``name`` (signing them out everywhere); the ids."""
    cur = await conn.execute(
        "UPDATE api_keys SET revoked_at = now() WHERE name = %s AND revoked_at IS NULL"
        " RETURNING id",
        (name.strip(),),
    )
    return sorted(int(r[0]) for r in await cur.fetchall())
