"""Risk units of an enterprise's register: validate, colour (LEC / LS) and store.

The colour always comes from layers/risk/units.py, never from the client, so a unit's colour
can be explained from its stored L, E, C or L, S values.

Every write here announces itself (``NOTIFY georisk_changes``, layer ``risk_units``) inside the
writer's transaction, like every other layer: the tile cache purges the unit's tiles, the
hexagon refresher re-rolls ``h3_risk_units`` and open maps refetch the touched tiles.
"""

from __future__ import annotations

import datetime as dt
from typing import Any, Literal

from psycopg import AsyncConnection
from psycopg.rows import tuple_row
from psycopg.types.json import Jsonb
from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator
from shapely.geometry.base import BaseGeometry

from layers.core import vocab
from layers.core.changes import notify_change
from layers.core.colors import RiskColor
from layers.core.errors import InvalidField
from layers.core.geometry import AREA, GeometryProblem, clean_geometry
from layers.risk.units import lec, ls

ControlType = Literal["engineering", "management", "training", "ppe", "emergency"]
UnitKind = Literal[
    "process_unit", "reactor", "tank_farm", "warehouse", "loading_bay", "utilities", "other"
]
assert set(ControlType.__args__) == set(vocab.CONTROL_TYPES)  # type: ignore[attr-defined]
assert set(UnitKind.__args__) == set(vocab.RISK_UNIT_KINDS)  # type: ignore[attr-defined]


class Control(BaseModel):
    """One control measure of a unit, by type (vocab.CONTROL_TYPES)."""

    model_config = ConfigDict(extra="forbid")

    type: ControlType
    measure: str = Field(min_length=1, max_length=1000)


class RiskUnitInput(BaseModel):
    """Properties of a risk unit feature (the geometry is validated separately)."""

    model_config = ConfigDict(extra="forbid")

    name: str = Field(min_length=1, max_length=200)
    kind: UnitKind = "other"
    hazard_source_id: int | None = Field(default=None, ge=1, le=2**31 - 1)
    # None: registered but not assessed yet (grey on the map); its inputs are then not kept.
    method: Literal["LEC", "LS"] | None
    likelihood: float | None = None
    exposure: float | None = None
    consequence: float | None = None
    severity: float | None = None
    # A plain string (the register's first format) is read as one management measure.
    controls: list[Control] = Field(default_factory=list, max_length=100)
    responsible: str | None = Field(default=None, max_length=200)
    responsible_phone: str | None = Field(default=None, max_length=40)
    assessed_on: dt.date | None = None
    review_due: dt.date | None = None

    @field_validator("controls", mode="before")
    @classmethod
    def _legacy_text(cls, value: Any) -> Any:
        if value is None:
            return []
        if isinstance(value, str):
            return [{"type": "management", "measure": value.strip()}] if value.strip() else []
        return value

    @model_validator(mode="after")
    def _review_after_assessment(self) -> RiskUnitInput:
        if self.assessed_on and self.review_due and self.review_due < self.assessed_on:
            raise ValueError("review_due must not be before assessed_on")
        return self

    @field_validator("name")
    @classmethod
    def _not_blank(cls, value: str) -> str:
        if not value.strip():
            raise ValueError("must not be blank")
        return value.strip()


class EmergencyContact(BaseModel):
    """One of the enterprise's emergency contacts (the book's cover): a role such as 主要负责人,
    安全管理人员 or 应急值班, a name and a phone number."""

    model_config = ConfigDict(extra="forbid")

    role: str = Field(min_length=1, max_length=100)
    name: str = Field(min_length=1, max_length=200)
    phone: str = Field(min_length=3, max_length=40, pattern=r"^[0-9+()\- ]+$")

    @field_validator("role", "name")
    @classmethod
    def _not_blank(cls, value: str) -> str:
        if not value.strip():
            raise ValueError("must not be blank")
        return value.strip()


class ContactsInput(BaseModel):
    """The whole list at once (``PUT``): the form edits and saves it as one."""

    model_config = ConfigDict(extra="forbid")

    contacts: list[EmergencyContact] = Field(max_length=30)


async def read_contacts(conn: AsyncConnection, enterprise_id: int) -> list[Any] | None:
    rows = await _first_column(
        conn, "SELECT contacts FROM enterprises WHERE id = %s", (enterprise_id,)
    )
    return list(rows[0]) if rows else None


async def store_contacts(
    conn: AsyncConnection, enterprise_id: int, contacts: list[EmergencyContact]
) -> list[Any] | None:
    rows = await _first_column(
        conn,
        "UPDATE enterprises SET contacts = %s WHERE id = %s RETURNING contacts",
        (Jsonb([c.model_dump() for c in contacts]), enterprise_id),
    )
    return list(rows[0]) if rows else None


def assess_unit(unit: RiskUnitInput) -> tuple[float | None, RiskColor | None]:
    """(score, colour), both None for a unit not assessed yet; raises UnitAssessmentError naming
    the missing or off-scale field."""
    from layers.risk.units import UnitAssessmentError

    if unit.method is None:
        return None, None
    if unit.likelihood is None:
        raise UnitAssessmentError("likelihood", f"required for {unit.method}")
    if unit.method == "LEC":
        if unit.exposure is None:
            raise UnitAssessmentError("exposure", "required for LEC")
        if unit.consequence is None:
            raise UnitAssessmentError("consequence", "required for LEC")
        return lec(unit.likelihood, unit.exposure, unit.consequence)
    if unit.severity is None:
        raise UnitAssessmentError("severity", "required for LS")
    if not (float(unit.likelihood).is_integer() and float(unit.severity).is_integer()):
        raise UnitAssessmentError("likelihood", "LS uses whole numbers 1–5")
    return ls(int(unit.likelihood), int(unit.severity))


def unit_geometry(value: Any) -> BaseGeometry:
    try:
        return clean_geometry(value, AREA)
    except GeometryProblem as exc:
        raise InvalidField("geometry", str(exc)) from None


_FEATURE_SQL = """
SELECT json_build_object(
    'type', 'Feature', 'id', u.id,
    'geometry', ST_AsGeoJSON(u.geom, 7)::json,
    'properties', json_build_object(
        'id', u.id, 'enterprise_id', u.enterprise_id, 'name', u.name, 'kind', u.kind,
        'hazard_source_id', u.hazard_source_id, 'method', u.method,
        'likelihood', u.likelihood, 'exposure', u.exposure, 'consequence', u.consequence,
        'severity', u.severity, 'controls', u.controls, 'color', u.color,
        'responsible', u.responsible, 'responsible_phone', u.responsible_phone,
        'assessed_on', u.assessed_on, 'review_due', u.review_due,
        'score', CASE u.method WHEN 'LEC' THEN u.likelihood * u.exposure * u.consequence
                               ELSE u.likelihood * u.severity END))
FROM risk_units u
"""


async def _first_column(conn: AsyncConnection, query: str, params: tuple[Any, ...]) -> list[Any]:
    """Run ``query`` and return its first column, whatever row factory the pool set."""
    cur = conn.cursor(row_factory=tuple_row)
    await cur.execute(query, params)
    return [row[0] for row in await cur.fetchall()]


async def unit_features(conn: AsyncConnection, enterprise_id: int) -> list[Any]:
    query = _FEATURE_SQL + " WHERE u.enterprise_id = %s ORDER BY u.id"
    return await _first_column(conn, query, (enterprise_id,))


async def unit_feature(conn: AsyncConnection, unit_id: int) -> Any | None:
    rows = await _first_column(conn, _FEATURE_SQL + " WHERE u.id = %s", (unit_id,))
    return rows[0] if rows else None


def _stored_values(unit: RiskUnitInput, geom: BaseGeometry, color: str | None) -> tuple[Any, ...]:
    """Column values in ``_UNIT_COLUMNS`` order; inputs of the other method, or of any method
    when the unit is not assessed, are not kept (the table's check wants them NULL then)."""
    lec_unit = unit.method == "LEC"
    ls_unit = unit.method == "LS"
    return (
        unit.name,
        unit.kind,
        unit.hazard_source_id,
        unit.method,
        unit.likelihood if unit.method else None,
        unit.exposure if lec_unit else None,
        unit.consequence if lec_unit else None,
        unit.severity if ls_unit else None,
        Jsonb([c.model_dump() for c in unit.controls]),
        color,
        unit.responsible,
        unit.responsible_phone,
        unit.assessed_on,
        unit.review_due,
        geom.wkt,
    )


_UNIT_COLUMNS = (
    "name, kind, hazard_source_id, method, likelihood, exposure, consequence, severity, controls,"
    " color, responsible, responsible_phone, assessed_on, review_due, geom"
)
_UNIT_VALUES = "%s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, ST_GeomFromText(%s, 4326)"


async def check_hazard_source(
    conn: AsyncConnection, enterprise_id: int, unit: RiskUnitInput
) -> None:
    """A unit may stand on a hazard source of its own enterprise only (a 422 naming the field,
    not a foreign-key error from the database)."""
    if unit.hazard_source_id is None:
        return
    owners = await _first_column(
        conn, "SELECT enterprise_id FROM hazard_sources WHERE id = %s", (unit.hazard_source_id,)
    )
    if owners != [enterprise_id]:
        raise InvalidField("hazard_source_id", "not a hazard source of this enterprise")


async def unit_enterprise(conn: AsyncConnection, unit_id: int) -> int | None:
    rows = await _first_column(
        conn, "SELECT enterprise_id FROM risk_units WHERE id = %s", (unit_id,)
    )
    return int(rows[0]) if rows else None


#: The change notice of a register write (the catalogue layer ``risk_units`` depends on it).
UNITS_NOTICE = "risk_units"


async def _announce(conn: AsyncConnection, unit_id: int) -> None:
    """Notify where the unit stands now; sent at commit, so only committed changes are heard."""
    await notify_change(conn, UNITS_NOTICE, "risk_units", [unit_id])


async def insert_unit(
    conn: AsyncConnection,
    enterprise_id: int,
    unit: RiskUnitInput,
    geom: BaseGeometry,
    color: str | None,
) -> int:
    rows = await _first_column(
        conn,
        f"INSERT INTO risk_units (enterprise_id, {_UNIT_COLUMNS})"
        f" VALUES (%s, {_UNIT_VALUES}) RETURNING id",
        (enterprise_id, *_stored_values(unit, geom, color)),
    )
    await _announce(conn, int(rows[0]))
    return int(rows[0])


async def update_unit(
    conn: AsyncConnection, unit_id: int, unit: RiskUnitInput, geom: BaseGeometry, color: str | None
) -> int | None:
    """Replace a unit; returns its enterprise id, or None when it does not exist."""
    # Where it stood and where it stands: a moved unit leaves tiles behind. (PostgreSQL drops
    # the second notice of a transaction when it is identical, i.e. when nothing moved.)
    await _announce(conn, unit_id)
    rows = await _first_column(
        conn,
        f"UPDATE risk_units SET ({_UNIT_COLUMNS}) = ROW({_UNIT_VALUES})"
        " WHERE id = %s RETURNING enterprise_id",
        (*_stored_values(unit, geom, color), unit_id),
    )
    if rows:
        await _announce(conn, unit_id)
    return int(rows[0]) if rows else None


async def delete_unit(conn: AsyncConnection, unit_id: int) -> int | None:
    await _announce(conn, unit_id)  # before the row (and its extent) is gone
    rows = await _first_column(
        conn, "DELETE FROM risk_units WHERE id = %s RETURNING enterprise_id", (unit_id,)
    )
    return int(rows[0]) if rows else None
