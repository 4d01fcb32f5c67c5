"""Licences and personnel certificates of an enterprise (docs/rules.md "Licences").

Several licence kinds per enterprise (safety production, hazmat business, …) and the
certificates of its principal, safety managers and special-operations staff, each with
``valid_until`` — the last day it is valid. Expiry is watched by
layers/prevention/automatic.py (a warning 30 days before, a deduction after).
"""

from __future__ import annotations

import datetime as dt
from typing import Any, Final, Literal

from psycopg import AsyncConnection
from psycopg.rows import dict_row
from pydantic import BaseModel, ConfigDict, Field, model_validator

LicenceKind = Literal[
    "safety_production",
    "hazmat_business",
    "hazmat_use",
    "hazmat_registration",
    "pressure_equipment",
    "other",
]
CertificateRole = Literal["principal", "safety_manager", "special_operations"]


def _dates_in_order(issued: dt.date | None, until: dt.date | None) -> None:
    if issued is not None and until is not None and issued > until:
        raise ValueError("issued_on is after valid_until")


class LicenceInput(BaseModel):
    model_config = ConfigDict(extra="forbid")
    kind: LicenceKind
    number: str | None = Field(default=None, min_length=1, max_length=100)
    issued_on: dt.date | None = None
    valid_until: dt.date

    @model_validator(mode="after")
    def _order(self) -> LicenceInput:
        _dates_in_order(self.issued_on, self.valid_until)
        return self


class CertificateInput(BaseModel):
    model_config = ConfigDict(extra="forbid")
    holder: str = Field(min_length=1, max_length=200, pattern=r"\S")
    role: CertificateRole
    operation: str | None = Field(
        default=None, min_length=1, max_length=200, description="special operation (welding…)"
    )
    number: str | None = Field(default=None, min_length=1, max_length=100)
    issued_on: dt.date | None = None
    valid_until: dt.date

    @model_validator(mode="after")
    def _order(self) -> CertificateInput:
        _dates_in_order(self.issued_on, self.valid_until)
        return self


#: table → the columns a client writes (the input model's fields, in this order).
_TABLES: Final[dict[str, tuple[str, ...]]] = {
    "licences": ("kind", "number", "issued_on", "valid_until"),
    "certificates": ("holder", "role", "operation", "number", "issued_on", "valid_until"),
}


def _json(row: dict[str, Any], today: dt.date, warn_days: int) -> dict[str, Any]:
    until: dt.date = row["valid_until"]
    days = (until - today).days
    status = "expired" if days < 0 else ("expiring" if days <= warn_days else "valid")
    out = {
        k: (v.isoformat() if isinstance(v, dt.date | dt.datetime) else v) for k, v in row.items()
    }
    return {**out, "days_left": days, "status": status}


async def list_documents(
    conn: AsyncConnection[Any], table: str, enterprise_id: int, today: dt.date, warn_days: int
) -> list[dict[str, Any]]:
    columns = ", ".join(_TABLES[table])
    cur = conn.cursor(row_factory=dict_row)
    await cur.execute(
        f"SELECT id, enterprise_id, {columns}, created_at, updated_at FROM {table}"
        " WHERE enterprise_id = %s ORDER BY valid_until, id",
        (enterprise_id,),
    )
    return [_json(r, today, warn_days) for r in await cur.fetchall()]


async def save_document(
    conn: AsyncConnection[Any],
    table: str,
    enterprise_id: int,
    data: BaseModel,
    today: dt.date,
    warn_days: int,
    document_id: int | None = None,
) -> dict[str, Any] | None:
    """Insert (``document_id`` None) or replace one; None when the id is not this
    enterprise's. A renewed ``valid_until`` is a new expiry: warned and deducted afresh."""
    columns = _TABLES[table]
    values = [getattr(data, c) for c in columns]
    cur = conn.cursor(row_factory=dict_row)
    returning = f"RETURNING id, enterprise_id, {', '.join(columns)}, created_at, updated_at"
    if document_id is None:
        await cur.execute(
            f"INSERT INTO {table} (enterprise_id, {', '.join(columns)})"
            f" VALUES (%s, {', '.join(['%s'] * len(columns))}) {returning}",
            (enterprise_id, *values),
        )
    else:
        assignments = ", ".join(f"{c} = %s" for c in columns)
        await cur.execute(
            f"UPDATE {table} SET {assignments}, updated_at = now()"
            f" WHERE id = %s AND enterprise_id = %s {returning}",
            (*values, document_id, enterprise_id),
        )
    row = await cur.fetchone()
    return None if row is None else _json(row, today, warn_days)
