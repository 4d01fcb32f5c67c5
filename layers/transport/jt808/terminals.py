"""Registration and authentication of JT/T 808 terminals (``jt808_terminals``).

Registration (0x0100) binds the terminal (its phone number) to an existing vehicle found by
plate and issues a fresh auth code; only its SHA-256 is stored (codes are 16 random hex
characters, so a fast hash is enough, as for API keys). Results (0x8100):

- 0 registered — also when this terminal registers again for the same vehicle (a terminal
  that lost its code after a reset): the new code replaces the old one;
- 1 the vehicle is bound to another terminal; 3 this terminal is bound to another vehicle
  (an operator releases a binding by deleting the row, or the terminal logs out, 0x0003);
- 2 no vehicle with that plate.

Plates compare without the separator dot, spaces, dashes and case (``浙B·D1234`` = ``浙BD1234``).
A terminal is its phone number without leading zeros (``identity``): the 2013 header's BCD[6]
and the 2019 header's BCD[10] pad the same number differently.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
from typing import Any

from psycopg import AsyncConnection, errors

from layers.transport.jt808.messages import (
    NO_SUCH_VEHICLE,
    REGISTERED,
    TERMINAL_TAKEN,
    VEHICLE_TAKEN,
    Registration,
)

#: One spelling of a plate for matching, in SQL and in Python.
PLATE_KEY_SQL = "upper(translate({}, '· -', ''))"


def identity(phone: str) -> str:
    """The phone digits as the terminal's identity, whichever edition padded them."""
    return phone.lstrip("0") or "0"


def plate_key(plate: str) -> str:
    return plate.translate(str.maketrans("", "", "· -")).upper()


def _hash(code: str) -> str:
    return hashlib.sha256(code.encode()).hexdigest()


_VEHICLE = "SELECT id FROM vehicles WHERE " + PLATE_KEY_SQL.format("plate") + " = %s ORDER BY id"
_BOUND = "SELECT phone, vehicle_id FROM jt808_terminals WHERE vehicle_id = %s OR phone = %s"
_UPSERT = (
    "INSERT INTO jt808_terminals (phone, vehicle_id, plate_colour, manufacturer, model,"
    " terminal_id, auth_hash) VALUES (%s, %s, %s, %s, %s, %s, %s)"
    " ON CONFLICT (phone) DO UPDATE SET auth_hash = EXCLUDED.auth_hash,"
    " plate_colour = EXCLUDED.plate_colour, manufacturer = EXCLUDED.manufacturer,"
    " model = EXCLUDED.model, terminal_id = EXCLUDED.terminal_id, registered_at = now(),"
    " authenticated_at = NULL"
)


async def register(
    conn: AsyncConnection[Any], phone: str, reg: Registration
) -> tuple[int, str, int | None]:
    """Bind ``phone`` to the vehicle of ``reg.plate``: (0x8100 result, auth code or "",
    vehicle id or None)."""
    phone = identity(phone)
    cur = await conn.execute(_VEHICLE, (plate_key(reg.plate),))
    row = await cur.fetchone()
    if row is None:
        return NO_SUCH_VEHICLE, "", None
    vehicle_id = int(row[0])
    cur = await conn.execute(_BOUND, (vehicle_id, phone))
    for bound_phone, bound_vehicle in await cur.fetchall():
        if bound_vehicle == vehicle_id and bound_phone != phone:
            return VEHICLE_TAKEN, "", vehicle_id
        if bound_phone == phone and bound_vehicle != vehicle_id:
            return TERMINAL_TAKEN, "", vehicle_id
    code = secrets.token_hex(8)
    params = (phone, vehicle_id, reg.plate_colour, reg.manufacturer, reg.model, reg.terminal_id)
    try:
        async with conn.transaction():
            await conn.execute(_UPSERT, (*params, _hash(code)))
    except errors.UniqueViolation:  # another terminal took the vehicle meanwhile
        return VEHICLE_TAKEN, "", vehicle_id
    return REGISTERED, code, vehicle_id


async def authenticate(conn: AsyncConnection[Any], phone: str, code: str) -> int | None:
    """The vehicle of ``phone`` when ``code`` is its current auth code, else None."""
    phone = identity(phone)
    cur = await conn.execute(
        "SELECT vehicle_id, auth_hash FROM jt808_terminals WHERE phone = %s", (phone,)
    )
    row = await cur.fetchone()
    if row is None or not hmac.compare_digest(row[1], _hash(code)):
        return None
    await conn.execute(
        "UPDATE jt808_terminals SET authenticated_at = now(), last_seen = now() WHERE phone = %s",
        (phone,),
    )
    return int(row[0])


async def logout(conn: AsyncConnection[Any], phone: str) -> bool:
    """0x0003: the terminal deregisters; it must register again (a new code) to report."""
    phone = identity(phone)
    cur = await conn.execute("DELETE FROM jt808_terminals WHERE phone = %s", (phone,))
    return cur.rowcount > 0


async def seen(conn: AsyncConnection[Any], vehicle_ids: list[int]) -> None:
    """Mark the terminals of these vehicles heard from (inside the batch's transaction)."""
    await conn.execute(
        "UPDATE jt808_terminals SET last_seen = now() WHERE vehicle_id = ANY(%s::int4[])",
        (vehicle_ids,),
    )
