"""Database schema: the GeoAlchemy2 models behind the one Alembic migration chain.

Everything is stored in WGS 84 (EPSG:4326, docs/domain.md §6). CHECK constraints reject values that
cannot be true (a latitude of 95, a negative quantity, an unknown kind) so that no code path —
API, import, seed or hand-written SQL — can store them. Queries elsewhere are plain SQL text;
these models exist to define and migrate the schema.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

from geoalchemy2 import Geometry
from sqlalchemy import (
    REAL,
    BigInteger,
    Boolean,
    CheckConstraint,
    Date,
    DateTime,
    Float,
    ForeignKey,
    ForeignKeyConstraint,
    Index,
    Integer,
    LargeBinary,
    MetaData,
    Numeric,
    PrimaryKeyConstraint,
    SmallInteger,
    Text,
    UniqueConstraint,
    func,
    text,
)
from sqlalchemy.dialects.postgresql import ARRAY, JSONB
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

from layers.core import vocab
from layers.core.vocab import sql_in

SRID = 4326

NAMING = {
    "ix": "ix_%(table_name)s_%(column_0_N_name)s",
    "uq": "uq_%(table_name)s_%(column_0_N_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}


class Base(DeclarativeBase):
    metadata = MetaData(naming_convention=NAMING)


def _geom(kind: str, nullable: bool = False) -> Mapped:
    return mapped_column(Geometry(kind, srid=SRID, spatial_index=True), nullable=nullable)


def _created() -> Mapped[dt.datetime]:
    return mapped_column(DateTime(timezone=True), server_default=func.now(), nullable=False)


def _version() -> Mapped[int]:
    """The row's edit version (migration 0012): 1 when created, bumped by each PATCH or
    retirement; the item's ETag, checked against ``If-Match`` in the writing transaction."""
    return mapped_column(Integer, server_default="1", nullable=False)


def _retired() -> Mapped[dt.datetime | None]:
    """Set instead of deleting a row that history (alerts, alarms, readings, stops, fixes,
    deductions) refers to: gone from lists, maps and rules, kept for evidence (migration 0012)."""
    return mapped_column(DateTime(timezone=True))


COLOR_CHECK = "IN ('red', 'orange', 'yellow', 'blue')"
LIVE_COLOR_CHECK = "IN ('red', 'orange', 'yellow', 'blue', 'grey')"
#: Rated layers (enterprises, hazard sources) may store grey: "not assessed" (migration 0009).
RATED_COLOR_CHECK = LIVE_COLOR_CHECK


class District(Base):
    __tablename__ = "districts"
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    code: Mapped[str] = mapped_column(Text, unique=True)
    name: Mapped[str] = mapped_column(Text)
    name_en: Mapped[str | None] = mapped_column(Text)
    geom = _geom("MULTIPOLYGON")
    version = _version()
    __table_args__ = (
        CheckConstraint("version >= 1", name="version_positive"),
        CheckConstraint("ST_IsValid(geom)", name="geom_valid"),
    )


class Enterprise(Base):
    __tablename__ = "enterprises"
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    credit_code: Mapped[str] = mapped_column(Text, unique=True)
    name: Mapped[str] = mapped_column(Text)
    category: Mapped[str] = mapped_column(Text)
    is_hazmat: Mapped[bool] = mapped_column(Boolean)
    district: Mapped[str | None] = mapped_column(
        Text, ForeignKey("districts.code", onupdate="CASCADE"), index=True
    )
    park: Mapped[str | None] = mapped_column(Text)
    address: Mapped[str | None] = mapped_column(Text)
    geom = _geom("POINT")
    site_geom = _geom("MULTIPOLYGON", nullable=True)
    licence_expiry: Mapped[dt.date | None] = mapped_column(Date)
    diagnosis_score: Mapped[float | None] = mapped_column(Numeric(5, 2))
    # The last MEM risk diagnosis; older than three years it has expired (docs/domain.md §2.2).
    diagnosed_on: Mapped[dt.date | None] = mapped_column(Date)
    # Written by the risk engine (layers/risk/enterprise.py); reasons explain every colour;
    # grey = not assessed (no hazard source grade, diagnosis score or risk unit).
    inherent_color: Mapped[str | None] = mapped_column(Text, index=True)
    dynamic_color: Mapped[str | None] = mapped_column(Text, index=True)
    risk_reasons: Mapped[list | None] = mapped_column(JSONB)
    risk_updated_at: Mapped[dt.datetime | None] = mapped_column(DateTime(timezone=True))
    # Emergency contacts for the enterprise's book: [{"role", "name", "phone"}].
    contacts: Mapped[list] = mapped_column(JSONB, server_default=text("'[]'::jsonb"))
    # Free labels (e.g. ``furnace``) that rule-set assignments match (docs/rules.md).
    tags: Mapped[list[str]] = mapped_column(ARRAY(Text), server_default=text("'{}'"))
    created_at = _created()
    version = _version()
    retired_at = _retired()
    __table_args__ = (
        CheckConstraint("version >= 1", name="version_positive"),
        CheckConstraint(f"inherent_color {RATED_COLOR_CHECK}", name="inherent_color"),
        CheckConstraint("jsonb_typeof(contacts) = 'array'", name="contacts_array"),
        CheckConstraint(f"dynamic_color {RATED_COLOR_CHECK}", name="dynamic_color"),
        CheckConstraint(f"credit_code ~ '{vocab.CREDIT_CODE_PATTERN}'", name="credit_code"),
        CheckConstraint(f"category IN {sql_in(vocab.ENTERPRISE_CATEGORIES)}", name="category"),
        CheckConstraint(
            f"is_hazmat = (category IN {sql_in(vocab.HAZMAT_CATEGORIES)})", name="is_hazmat"
        ),
        CheckConstraint("length(btrim(name)) > 0", name="name_not_blank"),
        CheckConstraint("diagnosis_score BETWEEN 0 AND 100", name="diagnosis_score"),
        CheckConstraint(
            "ST_X(geom) BETWEEN -180 AND 180 AND ST_Y(geom) BETWEEN -90 AND 90", name="geom_range"
        ),
        CheckConstraint("site_geom IS NULL OR ST_IsValid(site_geom)", name="site_valid"),
    )


class HazardSource(Base):
    """A GB 18218-2018 production or storage unit identified as (or assessed for) a major hazard."""

    __tablename__ = "hazard_sources"
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    enterprise_id: Mapped[int] = mapped_column(
        ForeignKey("enterprises.id", ondelete="CASCADE"), index=True
    )
    code: Mapped[str] = mapped_column(Text)
    unit_name: Mapped[str] = mapped_column(Text)
    unit_kind: Mapped[str] = mapped_column(Text)
    population_500m: Mapped[int | None] = mapped_column(Integer)
    geom = _geom("MULTIPOLYGON")
    # GB 18218 results, written by the risk engine; population_used says which α input won.
    # colour: the grade's, NULL when assessed below S = 1, grey when it cannot be assessed.
    s_value: Mapped[float | None] = mapped_column(Float)
    alpha: Mapped[float | None] = mapped_column(Float)
    r_value: Mapped[float | None] = mapped_column(Float)
    grade: Mapped[int | None] = mapped_column(SmallInteger)
    color: Mapped[str | None] = mapped_column(Text)
    population_used: Mapped[int | None] = mapped_column(Integer)
    population_source: Mapped[str | None] = mapped_column(Text)
    created_at = _created()
    version = _version()
    retired_at = _retired()
    __table_args__ = (
        CheckConstraint("version >= 1", name="version_positive"),
        CheckConstraint("grade BETWEEN 1 AND 4", name="grade"),
        CheckConstraint(f"color {RATED_COLOR_CHECK}", name="color"),
        UniqueConstraint("enterprise_id", "code"),
        CheckConstraint(f"unit_kind IN {sql_in(vocab.HAZARD_UNIT_KINDS)}", name="unit_kind"),
        CheckConstraint("population_500m >= 0", name="population_500m"),
        CheckConstraint("ST_IsValid(geom)", name="geom_valid"),
    )


class HazardSourceSubstance(Base):
    """One substance of a unit: q (design maximum, t), Q (critical quantity, t), β and class."""

    __tablename__ = "hazard_source_substances"
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    hazard_source_id: Mapped[int] = mapped_column(
        ForeignKey("hazard_sources.id", ondelete="CASCADE"), index=True
    )
    name: Mapped[str] = mapped_column(Text)
    cas: Mapped[str | None] = mapped_column(Text)
    q: Mapped[float] = mapped_column(Float)
    critical_q: Mapped[float | None] = mapped_column(Float)
    beta: Mapped[float | None] = mapped_column(Float)
    hazard_class: Mapped[str | None] = mapped_column(Text)
    # Further GB 18218 classes of a multi-hazard substance (the lowest Q governs); a mixture is
    # assessed by its one classified class, ``hazard_class`` (docs/domain.md §2.1).
    more_classes: Mapped[list[str]] = mapped_column(
        ARRAY(Text), server_default=text("'{}'::text[]")
    )
    mixture: Mapped[bool] = mapped_column(Boolean, server_default=text("false"))
    __table_args__ = (
        CheckConstraint(
            "more_classes <@ ARRAY["
            + ", ".join(f"'{c}'" for c in (*vocab.GB18218_CLASSES, "toxic_gas", "other"))
            + "]::text[]",
            name="more_classes",
        ),
        CheckConstraint(
            "NOT mixture OR (hazard_class IS NOT NULL AND cardinality(more_classes) = 0)",
            name="mixture_class",
        ),
        CheckConstraint("q > 0", name="q_positive"),
        CheckConstraint("critical_q > 0", name="critical_q_positive"),
        CheckConstraint("beta > 0", name="beta_positive"),
        CheckConstraint(f"cas ~ '{vocab.CAS_PATTERN}'", name="cas_format"),
        CheckConstraint(f"hazard_class ~ '{vocab.HAZARD_CLASS_PATTERN}'", name="hazard_class"),
    )


class Pipeline(Base):
    __tablename__ = "pipelines"
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    code: Mapped[str] = mapped_column(Text, unique=True)
    name: Mapped[str | None] = mapped_column(Text)
    substance: Mapped[str] = mapped_column(Text)
    cas: Mapped[str | None] = mapped_column(Text)
    diameter_mm: Mapped[float] = mapped_column(Float)
    pressure_mpa: Mapped[float] = mapped_column(Float)
    operator: Mapped[str | None] = mapped_column(Text)
    district: Mapped[str | None] = mapped_column(
        Text, ForeignKey("districts.code", onupdate="CASCADE"), index=True
    )
    geom = _geom("LINESTRING")
    created_at = _created()
    version = _version()
    retired_at = _retired()
    __table_args__ = (
        CheckConstraint("version >= 1", name="version_positive"),
        CheckConstraint("diameter_mm > 0 AND diameter_mm <= 5000", name="diameter_mm"),
        CheckConstraint("pressure_mpa >= 0 AND pressure_mpa <= 100", name="pressure_mpa"),
        CheckConstraint(f"cas ~ '{vocab.CAS_PATTERN}'", name="cas_format"),
        CheckConstraint("ST_IsValid(geom) AND ST_NPoints(geom) >= 2", name="geom_valid"),
    )


class MonitoringPoint(Base):
    """A live sensor on a hazard source (or a pipeline); limits per GB/T 50493-2019 or H/HH/L/LL."""

    __tablename__ = "monitoring_points"
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    code: Mapped[str] = mapped_column(Text, unique=True)
    hazard_source_id: Mapped[int | None] = mapped_column(
        ForeignKey("hazard_sources.id", ondelete="CASCADE"), index=True
    )
    pipeline_id: Mapped[int | None] = mapped_column(
        ForeignKey("pipelines.id", ondelete="CASCADE"), index=True
    )
    kind: Mapped[str] = mapped_column(Text)
    substance: Mapped[str | None] = mapped_column(Text)
    unit: Mapped[str] = mapped_column(Text)
    level1: Mapped[float | None] = mapped_column(Float)
    level2: Mapped[float | None] = mapped_column(Float)
    limit_h: Mapped[float | None] = mapped_column(Float)
    limit_hh: Mapped[float | None] = mapped_column(Float)
    limit_l: Mapped[float | None] = mapped_column(Float)
    limit_ll: Mapped[float | None] = mapped_column(Float)
    sampling_interval_s: Mapped[int] = mapped_column(Integer, server_default="10")
    geom = _geom("POINT")
    # grey = offline with no open alarm; a silent point with an open alarm keeps the alarm's
    # colour and is marked ``offline`` (layers/monitoring/live.py, docs/domain.md §2.4).
    live_color: Mapped[str | None] = mapped_column(Text)
    offline: Mapped[bool] = mapped_column(Boolean, server_default="false")
    created_at = _created()
    version = _version()
    retired_at = _retired()
    __table_args__ = (
        CheckConstraint("version >= 1", name="version_positive"),
        CheckConstraint(f"live_color {LIVE_COLOR_CHECK}", name="live_color"),
        CheckConstraint(f"kind IN {sql_in(vocab.MONITORING_KINDS)}", name="kind"),
        CheckConstraint(
            "hazard_source_id IS NOT NULL OR pipeline_id IS NOT NULL", name="has_parent"
        ),
        CheckConstraint("sampling_interval_s > 0", name="sampling_interval"),
        CheckConstraint("level1 <= level2", name="level_order"),
        CheckConstraint("limit_h <= limit_hh", name="high_order"),
        CheckConstraint("limit_ll <= limit_l", name="low_order"),
        CheckConstraint("limit_l < limit_h", name="band_order"),
        CheckConstraint(
            "ST_X(geom) BETWEEN -180 AND 180 AND ST_Y(geom) BETWEEN -90 AND 90", name="geom_range"
        ),
    )


class Reading(Base):
    """Sensor readings, range-partitioned by time (partitions are created on demand)."""

    __tablename__ = "readings"
    point_id: Mapped[int] = mapped_column(Integer)
    ts: Mapped[dt.datetime] = mapped_column(DateTime(timezone=True))
    value: Mapped[float] = mapped_column(Float)
    __table_args__ = (
        PrimaryKeyConstraint("point_id", "ts"),
        CheckConstraint("value = value", name="value_not_nan"),  # NaN = NaN is true in PG
        Index("ix_readings_ts_brin", "ts", postgresql_using="brin"),
        {"postgresql_partition_by": "RANGE (ts)"},
    )


class Zone(Base):
    """Designated parking lots, protected targets that forbid stops, and chemical parks."""

    __tablename__ = "zones"
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    code: Mapped[str | None] = mapped_column(Text, unique=True)
    name: Mapped[str] = mapped_column(Text)
    kind: Mapped[str] = mapped_column(Text, index=True)
    district: Mapped[str | None] = mapped_column(
        Text, ForeignKey("districts.code", onupdate="CASCADE"), index=True
    )
    max_dwell_s: Mapped[int | None] = mapped_column(Integer)
    active_hours: Mapped[str | None] = mapped_column(Text)
    speed_limit_kmh: Mapped[float | None] = mapped_column(Float)
    population: Mapped[int | None] = mapped_column(Integer)
    geom = _geom("MULTIPOLYGON")
    created_at = _created()
    version = _version()
    retired_at = _retired()
    __table_args__ = (
        CheckConstraint("version >= 1", name="version_positive"),
        CheckConstraint(f"kind IN {sql_in(vocab.ZONE_KINDS)}", name="kind"),
        CheckConstraint("max_dwell_s >= 0", name="max_dwell_s"),
        CheckConstraint(f"active_hours ~ '{vocab.ACTIVE_HOURS_PATTERN}'", name="active_hours"),
        CheckConstraint("speed_limit_kmh > 0 AND speed_limit_kmh <= 200", name="speed_limit"),
        CheckConstraint("population >= 0", name="population"),
        CheckConstraint("ST_IsValid(geom) AND NOT ST_IsEmpty(geom)", name="geom_valid"),
        # The ingest's lowest limit anywhere (layers/transport/limits.py), every batch (0023).
        Index(
            "ix_zones_speed_limit", "speed_limit_kmh", postgresql_where=text("retired_at IS NULL")
        ),
    )


class Road(Base):
    """Road network; the class sets the tanker speed limit (80 km/h expressway, 60 elsewhere)."""

    __tablename__ = "roads"
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    name: Mapped[str | None] = mapped_column(Text)
    road_class: Mapped[str] = mapped_column(Text)
    speed_limit_kmh: Mapped[float | None] = mapped_column(Float)
    geom = _geom("LINESTRING")
    __table_args__ = (
        CheckConstraint(f"road_class IN {sql_in(vocab.ROAD_CLASSES)}", name="road_class"),
        CheckConstraint("speed_limit_kmh > 0 AND speed_limit_kmh <= 200", name="speed_limit"),
        Index("ix_roads_speed_limit", "speed_limit_kmh"),  # as ix_zones_speed_limit (0023)
    )


class Vehicle(Base):
    __tablename__ = "vehicles"
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    plate: Mapped[str] = mapped_column(Text, unique=True)
    carrier: Mapped[str] = mapped_column(Text, index=True)
    hazmat_class: Mapped[str | None] = mapped_column(Text)
    un_number: Mapped[str | None] = mapped_column(Text)
    capacity_t: Mapped[float | None] = mapped_column(Float)
    district: Mapped[str | None] = mapped_column(
        Text, ForeignKey("districts.code", onupdate="CASCADE"), index=True
    )
    # The carrier as a supervised enterprise, so its tankers' alerts reach its dynamic colour.
    enterprise_id: Mapped[int | None] = mapped_column(
        ForeignKey("enterprises.id", ondelete="SET NULL"), index=True
    )
    # Qualifications the loading party checks (issue 14, layers/transport/qualifications.py):
    # what the load travels in, the road transport permit (道路运输证) and the tank's periodic
    # inspection. ``capacity_t`` stays the approved load a waybill's quantity may not exceed.
    tank_type: Mapped[str | None] = mapped_column(Text)
    tank_volume_m3: Mapped[float | None] = mapped_column(Float)
    road_permit_no: Mapped[str | None] = mapped_column(Text)
    road_permit_expiry: Mapped[dt.date | None] = mapped_column(Date)
    tank_inspection_expiry: Mapped[dt.date | None] = mapped_column(Date)
    created_at = _created()
    version = _version()
    retired_at = _retired()
    __table_args__ = (
        CheckConstraint(f"tank_type IN {sql_in(vocab.TANK_TYPES)}", name="tank_type"),
        CheckConstraint("tank_volume_m3 > 0 AND tank_volume_m3 <= 200", name="tank_volume_m3"),
        CheckConstraint("length(btrim(road_permit_no)) > 0", name="road_permit_no_not_blank"),
        CheckConstraint("version >= 1", name="version_positive"),
        CheckConstraint("length(btrim(plate)) > 0", name="plate_not_blank"),
        CheckConstraint("length(btrim(carrier)) > 0", name="carrier_not_blank"),
        CheckConstraint(f"un_number ~ '{vocab.UN_NUMBER_PATTERN}'", name="un_number"),
        CheckConstraint(f"hazmat_class ~ '{vocab.HAZMAT_CLASS_PATTERN}'", name="hazmat_class"),
        CheckConstraint("capacity_t > 0 AND capacity_t <= 100", name="capacity_t"),
    )


class Carrier(Base):
    """A supervised enterprise licensed to carry dangerous goods by road (issue 14).

    Its own table, one row per enterprise, rather than columns on ``enterprises``: the road
    transport licence (道路危险货物运输许可证) belongs to carriers only, an enterprise is a carrier
    exactly when it has this row, and vehicles, crews and waybills all name the carrier by its
    enterprise id — the id a carrier's API key (role enterprise) already carries."""

    __tablename__ = "carriers"
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    enterprise_id: Mapped[int] = mapped_column(
        ForeignKey("enterprises.id", ondelete="CASCADE"), unique=True
    )
    licence_no: Mapped[str] = mapped_column(Text, unique=True)
    licence_expiry: Mapped[dt.date] = mapped_column(Date)
    created_at = _created()
    version = _version()
    __table_args__ = (
        CheckConstraint("version >= 1", name="version_positive"),
        CheckConstraint("length(btrim(licence_no)) > 0", name="licence_no_not_blank"),
    )


class CrewMember(Base):
    """A carrier's driver or escort with the qualification certificate the role needs
    (从业资格证). ``id_card_no`` is personal data: only admins and the carrier itself read it
    whole (``layers/access/roles.py``)."""

    __tablename__ = "crew_members"
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    carrier_id: Mapped[int] = mapped_column(
        ForeignKey("enterprises.id", ondelete="CASCADE"), index=True
    )
    name: Mapped[str] = mapped_column(Text)
    id_card_no: Mapped[str] = mapped_column(Text)
    role: Mapped[str] = mapped_column(Text)
    certificate_no: Mapped[str] = mapped_column(Text)
    certificate_expiry: Mapped[dt.date] = mapped_column(Date)
    phone: Mapped[str | None] = mapped_column(Text)
    created_at = _created()
    version = _version()
    __table_args__ = (
        CheckConstraint("version >= 1", name="version_positive"),
        CheckConstraint(f"role IN {sql_in(vocab.CREW_ROLES)}", name="role"),
        CheckConstraint(f"id_card_no ~ '{vocab.ID_CARD_PATTERN}'", name="id_card_no"),
        CheckConstraint("length(btrim(name)) > 0", name="name_not_blank"),
        CheckConstraint("length(btrim(certificate_no)) > 0", name="certificate_no_not_blank"),
        UniqueConstraint("role", "certificate_no"),
        UniqueConstraint("role", "id_card_no"),
    )


class Waybill(Base):
    """An electronic waybill (电子运单): who ships what from where to where, in which vehicle,
    with which driver and escort, along which corridor, when — and where it is in its lifecycle
    (planned → loading → in_transit → delivered / cancelled).

    ``geom`` is the planned route as given (a LineString with ``corridor_m``, or a
    polygon); ``corridor`` is the area the vehicle must stay in, derived once on insert so the
    deviation model tests a point against one indexed polygon."""

    __tablename__ = "waybills"
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    code: Mapped[str] = mapped_column(Text, unique=True)
    state: Mapped[str] = mapped_column(Text, server_default="planned", index=True)
    state_changed_at = _created()
    shipper_id: Mapped[int] = mapped_column(ForeignKey("enterprises.id"))
    carrier_id: Mapped[int] = mapped_column(ForeignKey("enterprises.id"), index=True)
    consignee_id: Mapped[int] = mapped_column(ForeignKey("enterprises.id"))
    loading_party_id: Mapped[int] = mapped_column(ForeignKey("enterprises.id"))
    substance_name: Mapped[str] = mapped_column(Text)
    un_number: Mapped[str] = mapped_column(Text)
    hazmat_class: Mapped[str] = mapped_column(Text)
    quantity_t: Mapped[float] = mapped_column(Float)
    vehicle_id: Mapped[int] = mapped_column(ForeignKey("vehicles.id"), index=True)
    driver_id: Mapped[int] = mapped_column(ForeignKey("crew_members.id"))
    escort_id: Mapped[int | None] = mapped_column(ForeignKey("crew_members.id"))
    origin_id: Mapped[int | None] = mapped_column(ForeignKey("enterprises.id"))
    destination_id: Mapped[int | None] = mapped_column(ForeignKey("enterprises.id"))
    origin_geom = _geom("POINT")
    destination_geom = _geom("POINT")
    geom = _geom("GEOMETRY")
    corridor_m: Mapped[float | None] = mapped_column(Float)
    corridor = _geom("MULTIPOLYGON")
    planned_departure: Mapped[dt.datetime] = mapped_column(DateTime(timezone=True), index=True)
    planned_arrival: Mapped[dt.datetime] = mapped_column(DateTime(timezone=True))
    created_at = _created()
    version = _version()
    __table_args__ = (
        CheckConstraint("version >= 1", name="version_positive"),
        CheckConstraint(f"state IN {sql_in(vocab.WAYBILL_STATES)}", name="state"),
        CheckConstraint(f"un_number ~ '{vocab.UN_NUMBER_PATTERN}'", name="un_number"),
        CheckConstraint(f"hazmat_class IN {sql_in(vocab.HAZMAT_CLASSES)}", name="hazmat_class"),
        CheckConstraint("quantity_t > 0 AND quantity_t <= 100", name="quantity_t"),
        CheckConstraint("length(btrim(code)) > 0", name="code_not_blank"),
        CheckConstraint("length(btrim(substance_name)) > 0", name="substance_name_not_blank"),
        CheckConstraint("planned_arrival > planned_departure", name="time_order"),
        CheckConstraint("corridor_m > 0 AND corridor_m <= 10000", name="corridor_m"),
        CheckConstraint(
            "GeometryType(geom) IN ('LINESTRING', 'POLYGON', 'MULTIPOLYGON')", name="geom_kind"
        ),
        CheckConstraint("ST_IsValid(corridor)", name="corridor_valid"),
        CheckConstraint("escort_id IS NULL OR escort_id <> driver_id", name="escort_not_driver"),
    )


class WaybillEvent(Base):
    """A waybill's history: the parties' loading and unloading events, refused loadings with
    the checks that failed (``failures``), and state changes asked through the API."""

    __tablename__ = "waybill_events"
    id: Mapped[int] = mapped_column(BigInteger, primary_key=True)
    waybill_id: Mapped[int] = mapped_column(
        ForeignKey("waybills.id", ondelete="CASCADE"), index=True
    )
    kind: Mapped[str] = mapped_column(Text)
    from_state: Mapped[str] = mapped_column(Text)
    to_state: Mapped[str] = mapped_column(Text)
    at: Mapped[dt.datetime] = mapped_column(DateTime(timezone=True))
    geom = _geom("POINT", nullable=True)
    source: Mapped[str] = mapped_column(Text)
    actor: Mapped[str] = mapped_column(Text)
    failures: Mapped[list | None] = mapped_column(JSONB)
    note: Mapped[str | None] = mapped_column(Text)
    created_at = _created()
    __table_args__ = (
        CheckConstraint(f"kind IN {sql_in(vocab.WAYBILL_EVENT_KINDS)}", name="kind"),
        CheckConstraint(f"source IN {sql_in(vocab.WAYBILL_EVENT_SOURCES)}", name="source"),
        CheckConstraint(f"from_state IN {sql_in(vocab.WAYBILL_STATES)}", name="from_state"),
        CheckConstraint(f"to_state IN {sql_in(vocab.WAYBILL_STATES)}", name="to_state"),
    )


class Jt808Terminal(Base):
    """A JT/T 808 terminal registered through the gateway (geo_api/jt808_gateway.py): bound to
    one vehicle by plate; only a SHA-256 of the auth code the platform issued is kept."""

    __tablename__ = "jt808_terminals"
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    phone: Mapped[str] = mapped_column(Text, unique=True)  # the header's BCD digits
    vehicle_id: Mapped[int] = mapped_column(
        ForeignKey("vehicles.id", ondelete="CASCADE"), unique=True
    )
    plate_colour: Mapped[int] = mapped_column(SmallInteger)
    manufacturer: Mapped[str | None] = mapped_column(Text)
    model: Mapped[str | None] = mapped_column(Text)
    terminal_id: Mapped[str | None] = mapped_column(Text)
    auth_hash: Mapped[str] = mapped_column(Text)
    registered_at = _created()
    authenticated_at: Mapped[dt.datetime | None] = mapped_column(DateTime(timezone=True))
    last_seen: Mapped[dt.datetime | None] = mapped_column(DateTime(timezone=True))
    __table_args__ = (
        CheckConstraint("phone ~ '^[0-9]{1,20}$'", name="phone"),
        CheckConstraint("plate_colour BETWEEN 0 AND 255", name="plate_colour"),
    )


class Position(Base):
    """Tanker GNSS fixes, range-partitioned by day (created on demand), one per (vehicle, ts).

    No foreign key to vehicles: the ingest path checks vehicles in bulk and reports unknown
    ones per row, and a per-row FK lookup would cost more than the rest of the insert.
    """

    __tablename__ = "positions"
    vehicle_id: Mapped[int] = mapped_column(Integer)
    ts: Mapped[dt.datetime] = mapped_column(DateTime(timezone=True))
    lon: Mapped[float] = mapped_column(Float)
    lat: Mapped[float] = mapped_column(Float)
    speed_kmh: Mapped[float] = mapped_column(REAL)
    heading: Mapped[int | None] = mapped_column(SmallInteger)
    alarm_bits: Mapped[int] = mapped_column(Integer, server_default="0")
    #: H3 cell at resolution 8 (the city view), computed when the fix is stored, so the
    #: city-wide hexagon rollup is one GROUP BY instead of indexing millions of points again.
    h3_r8: Mapped[int | None] = mapped_column(BigInteger)
    __table_args__ = (
        PrimaryKeyConstraint("vehicle_id", "ts"),
        CheckConstraint("lon BETWEEN -180 AND 180 AND lat BETWEEN -90 AND 90", name="lonlat"),
        CheckConstraint("speed_kmh >= 0 AND speed_kmh <= 400", name="speed"),
        CheckConstraint("heading BETWEEN 0 AND 359", name="heading"),
        # Time-window scans across all vehicles: BRIN is tiny and fits append-mostly data.
        Index("ix_positions_ts_brin", "ts", postgresql_using="brin"),
        {"postgresql_partition_by": "RANGE (ts)"},
    )


class PositionReject(Base):
    """Fixes dropped by the noise filters, with the reason, so nothing disappears silently."""

    __tablename__ = "position_rejects"
    id: Mapped[int] = mapped_column(BigInteger, primary_key=True)
    vehicle_id: Mapped[int | None] = mapped_column(Integer, index=True)
    ts: Mapped[dt.datetime | None] = mapped_column(DateTime(timezone=True))
    lon: Mapped[float | None] = mapped_column(Float)
    lat: Mapped[float | None] = mapped_column(Float)
    speed_kmh: Mapped[float | None] = mapped_column(Float)
    reason: Mapped[str] = mapped_column(Text)
    received_at = _created()


class VehicleState(Base):
    """Per-vehicle moving/stopped state, persisted so a restart resumes exactly."""

    __tablename__ = "vehicle_state"
    vehicle_id: Mapped[int] = mapped_column(
        ForeignKey("vehicles.id", ondelete="CASCADE"), primary_key=True
    )
    state: Mapped[str] = mapped_column(Text, server_default="unknown")
    since: Mapped[dt.datetime | None] = mapped_column(DateTime(timezone=True))
    last_ts: Mapped[dt.datetime | None] = mapped_column(DateTime(timezone=True))
    last_lon: Mapped[float | None] = mapped_column(Float)
    last_lat: Mapped[float | None] = mapped_column(Float)
    last_speed_kmh: Mapped[float | None] = mapped_column(Float)
    # The tanker engine's detector state (layers/transport/state.py): the current cluster of
    # fixes (its first fix, running sums for the centroid, last fix) and the open speeding and
    # corridor episodes. Saved in the same transaction as the fixes, so a restart resumes
    # exactly where the last acknowledged batch left off.
    anchor_ts: Mapped[dt.datetime | None] = mapped_column(DateTime(timezone=True))
    anchor_lon: Mapped[float | None] = mapped_column(Float)
    anchor_lat: Mapped[float | None] = mapped_column(Float)
    cluster_n: Mapped[int] = mapped_column(Integer, server_default="0")
    cluster_sum_lon: Mapped[float] = mapped_column(Float, server_default="0")
    cluster_sum_lat: Mapped[float] = mapped_column(Float, server_default="0")
    cluster_last_ts: Mapped[dt.datetime | None] = mapped_column(DateTime(timezone=True))
    over_start_ts: Mapped[dt.datetime | None] = mapped_column(DateTime(timezone=True))
    over_last_ts: Mapped[dt.datetime | None] = mapped_column(DateTime(timezone=True))
    over_peak: Mapped[float | None] = mapped_column(Float)
    over_limit: Mapped[float | None] = mapped_column(Float)
    over_lon: Mapped[float | None] = mapped_column(Float)
    over_lat: Mapped[float | None] = mapped_column(Float)
    dev_start_ts: Mapped[dt.datetime | None] = mapped_column(DateTime(timezone=True))
    dev_last_ts: Mapped[dt.datetime | None] = mapped_column(DateTime(timezone=True))
    dev_peak: Mapped[float | None] = mapped_column(Float)
    dev_limit: Mapped[float | None] = mapped_column(Float)
    dev_lon: Mapped[float | None] = mapped_column(Float)
    dev_lat: Mapped[float | None] = mapped_column(Float)
    updated_at: Mapped[dt.datetime | None] = mapped_column(DateTime(timezone=True))
    __table_args__ = (CheckConstraint("state IN ('unknown', 'moving', 'stopped')", name="state"),)


class Stop(Base):
    """A halt of one vehicle (distributed by ``vehicle_id``: layers/core/distribution.py)."""

    __tablename__ = "stops"
    id: Mapped[int] = mapped_column(BigInteger, primary_key=True)
    vehicle_id: Mapped[int] = mapped_column(
        ForeignKey("vehicles.id", ondelete="CASCADE"), primary_key=True
    )
    start_ts: Mapped[dt.datetime] = mapped_column(DateTime(timezone=True))
    end_ts: Mapped[dt.datetime | None] = mapped_column(DateTime(timezone=True))
    fix_count: Mapped[int] = mapped_column(Integer)
    geom = _geom("POINT")
    # Tanker engine: seconds from first to last fix, whether the vehicle is still there, and
    # the zone the centroid was judged in (lot or forbidden zone; NULL at a roadside).
    duration_s: Mapped[float] = mapped_column(Float, server_default="0")
    is_open: Mapped[bool] = mapped_column(Boolean, server_default="false")
    zone_id: Mapped[int | None] = mapped_column(ForeignKey("zones.id", ondelete="SET NULL"))
    __table_args__ = (
        # The shard key is in the key (Citus); id first, so lookups by id alone use it too.
        PrimaryKeyConstraint("id", "vehicle_id"),
        # Also the index of every (vehicle, time) lookup: no second one to maintain (0023).
        UniqueConstraint("vehicle_id", "start_ts"),
        CheckConstraint("end_ts IS NULL OR end_ts >= start_ts", name="time_order"),
        CheckConstraint("fix_count > 0", name="fix_count"),
    )


class Alert(Base):
    """One alert per (vehicle, rule, zone, episode); later fixes update it instead of adding.

    Distributed by ``vehicle_id`` with the vehicle's fixes and stops (layers/core/distribution.py),
    so the vehicle is in its key and in the link to its stop."""

    __tablename__ = "alerts"
    id: Mapped[int] = mapped_column(BigInteger, primary_key=True)
    vehicle_id: Mapped[int] = mapped_column(
        ForeignKey("vehicles.id", ondelete="CASCADE"), primary_key=True
    )
    rule: Mapped[str] = mapped_column(Text)
    zone_id: Mapped[int | None] = mapped_column(ForeignKey("zones.id", ondelete="SET NULL"))
    episode_start: Mapped[dt.datetime] = mapped_column(DateTime(timezone=True))
    episode_end: Mapped[dt.datetime | None] = mapped_column(DateTime(timezone=True))
    status: Mapped[str] = mapped_column(Text, server_default="new")
    district: Mapped[str | None] = mapped_column(Text, index=True)
    severity: Mapped[str] = mapped_column(Text, server_default="moderate")
    details: Mapped[dict] = mapped_column(JSONB, server_default="{}")
    created_at = _created()
    updated_at = _created()
    acknowledged_at: Mapped[dt.datetime | None] = mapped_column(DateTime(timezone=True))
    acknowledged_by: Mapped[str | None] = mapped_column(Text)
    disposed_at: Mapped[dt.datetime | None] = mapped_column(DateTime(timezone=True))
    disposed_by: Mapped[str | None] = mapped_column(Text)
    outcome: Mapped[str | None] = mapped_column(Text)
    note: Mapped[str | None] = mapped_column(Text)
    geom = _geom("POINT", nullable=True)
    # Tanker engine: the carrier enterprise, the stop behind a parking alert, whether the
    # episode is still going on, deadlines with escalation, and a revision bumped on each update
    # (CAP Update messages and SSE consumers tell versions apart by it).
    enterprise_id: Mapped[int | None] = mapped_column(
        ForeignKey("enterprises.id", ondelete="SET NULL"), index=True
    )
    stop_id: Mapped[int | None] = mapped_column(BigInteger)
    active: Mapped[bool] = mapped_column(Boolean, server_default="true")
    ack_deadline: Mapped[dt.datetime | None] = mapped_column(DateTime(timezone=True))
    dispose_deadline: Mapped[dt.datetime | None] = mapped_column(DateTime(timezone=True))
    escalation_level: Mapped[int] = mapped_column(SmallInteger, server_default="0")
    escalated_at: Mapped[dt.datetime | None] = mapped_column(DateTime(timezone=True))
    revision: Mapped[int] = mapped_column(Integer, server_default="1")
    # Routing (migration 0019): filled by the route_alert trigger from ``alert_routes``.
    departments: Mapped[list[str]] = mapped_column(ARRAY(Text), server_default="{}")
    carrier_notified: Mapped[bool] = mapped_column(Boolean, server_default="false")
    __table_args__ = (
        PrimaryKeyConstraint("id", "vehicle_id"),
        # The vehicle (shard key) is in the link to the stop. No ON DELETE SET NULL: Citus
        # refuses it on a key holding the shard key; the replay clears stop_id itself.
        ForeignKeyConstraint(["vehicle_id", "stop_id"], ["stops.vehicle_id", "stops.id"]),
        CheckConstraint(f"status IN {sql_in(vocab.ALERT_STATUSES)}", name="status"),
        CheckConstraint(f"rule IN {sql_in(vocab.ALERT_RULES)}", name="rule"),
        Index("ix_alerts_vehicle_rule_start", "vehicle_id", "rule", "episode_start"),
        CheckConstraint("severity IN ('extreme', 'severe', 'moderate', 'minor')", name="severity"),
        CheckConstraint(
            "episode_end IS NULL OR episode_end >= episode_start", name="episode_order"
        ),
        # NULLS NOT DISTINCT: an alert with no zone (overspeed on a road) is still unique.
        UniqueConstraint(
            "vehicle_id", "rule", "zone_id", "episode_start", postgresql_nulls_not_distinct=True
        ),
        Index("ix_alerts_status_created", "status", "created_at"),
        Index("ix_alerts_departments", "departments", postgresql_using="gin"),
    )


class AlertRoute(Base):
    """Where a warning type goes: its departments, the carrier, its deadlines (issue 14 §5)."""

    __tablename__ = "alert_routes"
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    rule: Mapped[str] = mapped_column(Text, unique=True)
    departments: Mapped[list[str]] = mapped_column(ARRAY(Text))
    to_carrier: Mapped[bool] = mapped_column(Boolean, server_default="true")
    ack_s: Mapped[float | None] = mapped_column(Float)
    dispose_s: Mapped[float | None] = mapped_column(Float)
    updated_at = _created()
    __table_args__ = (
        CheckConstraint(
            "cardinality(departments) > 0 AND departments <@ ARRAY"
            + str(list(vocab.DEPARTMENTS)).replace('"', "'"),
            name="departments",
        ),
        CheckConstraint("ack_s IS NULL OR ack_s > 0", name="ack_s"),
        CheckConstraint("dispose_s IS NULL OR dispose_s > 0", name="dispose_s"),
    )


class WebhookSubscription(Base):
    """An outside system that wants alert changes pushed to it (issue 6), filtered by district and
    rule (NULL = all). ``secret`` keys the HMAC-SHA256 signature so receivers can trust a POST.
    Unsubscribing sets ``active = false`` rather than deleting, so the delivery log survives."""

    __tablename__ = "webhook_subscriptions"
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    url: Mapped[str] = mapped_column(Text)
    secret: Mapped[str] = mapped_column(Text)
    districts: Mapped[list[str] | None] = mapped_column(ARRAY(Text))
    rules: Mapped[list[str] | None] = mapped_column(ARRAY(Text))
    active: Mapped[bool] = mapped_column(Boolean, server_default="true")
    created_at = _created()
    __table_args__ = (
        CheckConstraint("url ~ '^https?://[^/]+'", name="url_http"),
        CheckConstraint("length(secret) >= 16", name="secret_length"),
    )


class WebhookOutbox(Base):
    """One delivery per (subscription, alert, revision), written in the alert's own transaction,
    so an alert change and its deliveries commit together and a replay never enqueues twice.

    The table is the worker's whole state: ``next_attempt_at`` is when it is due (NULL once
    delivered or given up), so a restarted process simply picks up what is due.
    """

    __tablename__ = "webhook_outbox"
    id: Mapped[int] = mapped_column(BigInteger, primary_key=True)
    subscription_id: Mapped[int] = mapped_column(
        ForeignKey("webhook_subscriptions.id", ondelete="CASCADE")
    )
    # An alert's revision, or (alert_id NULL) a non-alert event deduplicated by ``event_key``
    # (safety scores, expiry warnings: layers/prevention/events.py).
    # No foreign key: the outbox stays on the coordinator and ``alerts`` is sharded, which a
    # foreign key cannot span (migration 0021); the payload holds the alert's snapshot.
    alert_id: Mapped[int | None] = mapped_column(BigInteger, index=True)
    revision: Mapped[int] = mapped_column(Integer)
    event: Mapped[str] = mapped_column(Text)
    event_key: Mapped[str | None] = mapped_column(Text)
    payload: Mapped[dict] = mapped_column(JSONB)
    attempts: Mapped[int] = mapped_column(Integer, server_default="0")
    next_attempt_at: Mapped[dt.datetime | None] = mapped_column(
        DateTime(timezone=True), server_default=func.now()
    )
    delivered_at: Mapped[dt.datetime | None] = mapped_column(DateTime(timezone=True))
    last_error: Mapped[str | None] = mapped_column(Text)
    created_at = _created()
    __table_args__ = (
        UniqueConstraint("subscription_id", "alert_id", "revision"),
        CheckConstraint("attempts >= 0", name="attempts"),
        CheckConstraint("(alert_id IS NULL) <> (event_key IS NULL)", name="subject"),
        Index(
            "uq_webhook_outbox_event_key",
            "subscription_id",
            "event_key",
            unique=True,
            postgresql_where=text("event_key IS NOT NULL"),
        ),
        # Only due rows are indexed: the worker's claim stays fast however long the log grows.
        Index(
            "ix_webhook_outbox_due",
            "next_attempt_at",
            postgresql_where=text("next_attempt_at IS NOT NULL"),
        ),
    )


class VehicleRoute(Base):
    """A planned route: fixes farther than ``corridor_m`` from it raise corridor deviation."""

    __tablename__ = "vehicle_routes"
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    vehicle_id: Mapped[int] = mapped_column(
        ForeignKey("vehicles.id", ondelete="CASCADE"), index=True
    )
    name: Mapped[str | None] = mapped_column(Text)
    valid_from: Mapped[dt.datetime] = mapped_column(DateTime(timezone=True))
    valid_to: Mapped[dt.datetime] = mapped_column(DateTime(timezone=True))
    corridor_m: Mapped[float] = mapped_column(Float, server_default="500")
    geom = _geom("LINESTRING")
    created_at = _created()
    __table_args__ = (
        CheckConstraint("valid_to > valid_from", name="valid_order"),
        CheckConstraint("corridor_m > 0 AND corridor_m <= 50000", name="corridor_m"),
        CheckConstraint("ST_IsValid(geom) AND ST_NPoints(geom) >= 2", name="geom_valid"),
    )


class RiskUnit(Base):
    """A unit of an enterprise's risk register (风险分级管控), assessed by LEC or LS.

    Registered but not yet assessed: method, likelihood and colour are all NULL (grey on the
    map). ``controls`` is a JSON array of ``{"type", "measure"}`` (types: vocab.CONTROL_TYPES).
    """

    __tablename__ = "risk_units"
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    enterprise_id: Mapped[int] = mapped_column(
        ForeignKey("enterprises.id", ondelete="CASCADE"), index=True
    )
    name: Mapped[str] = mapped_column(Text)
    kind: Mapped[str] = mapped_column(Text, server_default="other")
    # A hazard-source unit coincides with its hazard source; the link is cleared if it goes.
    hazard_source_id: Mapped[int | None] = mapped_column(
        ForeignKey("hazard_sources.id", ondelete="SET NULL"), index=True
    )
    method: Mapped[str | None] = mapped_column(Text)
    likelihood: Mapped[float | None] = mapped_column(Float)
    exposure: Mapped[float | None] = mapped_column(Float)
    consequence: Mapped[float | None] = mapped_column(Float)
    severity: Mapped[float | None] = mapped_column(Float)
    controls: Mapped[list] = mapped_column(JSONB, server_default=text("'[]'::jsonb"))
    color: Mapped[str | None] = mapped_column(Text)
    responsible: Mapped[str | None] = mapped_column(Text)
    responsible_phone: Mapped[str | None] = mapped_column(Text)
    assessed_on: Mapped[dt.date | None] = mapped_column(Date)
    review_due: Mapped[dt.date | None] = mapped_column(Date)
    geom = _geom("MULTIPOLYGON")
    created_at = _created()
    __table_args__ = (
        CheckConstraint(f"method IN {sql_in(vocab.RISK_UNIT_METHODS)}", name="method"),
        CheckConstraint(f"kind IN {sql_in(vocab.RISK_UNIT_KINDS)}", name="kind"),
        CheckConstraint(
            "(method IS NULL AND likelihood IS NULL AND color IS NULL)"
            " OR (method = 'LEC' AND likelihood IS NOT NULL AND exposure IS NOT NULL"
            " AND consequence IS NOT NULL AND color IS NOT NULL)"
            " OR (method = 'LS' AND likelihood IS NOT NULL AND severity IS NOT NULL"
            " AND color IS NOT NULL)",
            name="method_inputs",
        ),
        CheckConstraint(f"color {COLOR_CHECK}", name="color"),
        CheckConstraint("jsonb_typeof(controls) = 'array'", name="controls_array"),
        CheckConstraint(
            "review_due IS NULL OR assessed_on IS NULL OR review_due >= assessed_on",
            name="review_order",
        ),
        CheckConstraint("ST_IsValid(geom)", name="geom_valid"),
    )


class HiddenDanger(Base):
    """Hidden-danger register (隐患): found → rectifying → rectified, with a deadline. A major
    one (``major_criterion`` from 安监总管三〔2017〕121号) passes through
    ``rectification_reported`` and closes only with a regulator's acceptance (docs/domain.md §5).
    """

    __tablename__ = "hidden_dangers"
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    enterprise_id: Mapped[int] = mapped_column(
        ForeignKey("enterprises.id", ondelete="CASCADE"), index=True
    )
    title: Mapped[str] = mapped_column(Text)
    is_major: Mapped[bool] = mapped_column(Boolean, server_default="false")
    status: Mapped[str] = mapped_column(Text, server_default="found")
    found_at: Mapped[dt.datetime] = mapped_column(DateTime(timezone=True))
    deadline: Mapped[dt.date | None] = mapped_column(Date)
    rectified_at: Mapped[dt.datetime | None] = mapped_column(DateTime(timezone=True))
    major_criterion: Mapped[str | None] = mapped_column(Text)
    reported_at: Mapped[dt.datetime | None] = mapped_column(DateTime(timezone=True))
    reported_by: Mapped[str | None] = mapped_column(Text)
    report_evidence: Mapped[str | None] = mapped_column(Text)
    report_evidence_url: Mapped[str | None] = mapped_column(Text)
    accepted_at: Mapped[dt.datetime | None] = mapped_column(DateTime(timezone=True))
    accepted_by: Mapped[str | None] = mapped_column(Text)
    acceptance_note: Mapped[str | None] = mapped_column(Text)
    rejected_at: Mapped[dt.datetime | None] = mapped_column(DateTime(timezone=True))
    rejected_by: Mapped[str | None] = mapped_column(Text)
    rejection_reason: Mapped[str | None] = mapped_column(Text)
    # The deadline a reminder was sent for: one reminder per deadline, however often the job runs.
    reminded_for: Mapped[dt.date | None] = mapped_column(Date)
    reminded_at: Mapped[dt.datetime | None] = mapped_column(DateTime(timezone=True))
    __table_args__ = (
        CheckConstraint(f"status IN {sql_in(vocab.HIDDEN_DANGER_STATUSES)}", name="status"),
        CheckConstraint("(status = 'rectified') = (rectified_at IS NOT NULL)", name="rectified_at"),
        CheckConstraint(
            "major_criterion IS NULL OR (is_major AND major_criterion IN "
            f"{sql_in(tuple(vocab.MAJOR_HIDDEN_DANGER_CRITERIA))})",
            name="major_criterion",
        ),
        CheckConstraint(
            "status <> 'rectification_reported' OR reported_at IS NOT NULL", name="reported"
        ),
        CheckConstraint(
            "NOT is_major OR status <> 'rectified' OR accepted_at IS NOT NULL",
            name="major_accepted",
        ),
    )


class Penalty(Base):
    """An administrative penalty (行政处罚) decided against an enterprise: a bulletin input."""

    __tablename__ = "penalties"
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    enterprise_id: Mapped[int] = mapped_column(
        ForeignKey("enterprises.id", ondelete="CASCADE"), index=True
    )
    decided_on: Mapped[dt.date] = mapped_column(Date)
    decision_no: Mapped[str] = mapped_column(Text)
    authority: Mapped[str] = mapped_column(Text)
    amount_yuan: Mapped[float | None] = mapped_column(Float)
    reason: Mapped[str] = mapped_column(Text)
    created_at = _created()
    __table_args__ = (
        CheckConstraint("amount_yuan IS NULL OR amount_yuan >= 0", name="amount_yuan"),
        CheckConstraint("length(btrim(reason)) > 0", name="reason_not_blank"),
        UniqueConstraint("authority", "decision_no"),
    )


class Accident(Base):
    """A production safety accident at an enterprise: a bulletin input."""

    __tablename__ = "accidents"
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    enterprise_id: Mapped[int] = mapped_column(
        ForeignKey("enterprises.id", ondelete="CASCADE"), index=True
    )
    occurred_on: Mapped[dt.date] = mapped_column(Date)
    grade: Mapped[str] = mapped_column(Text)
    deaths: Mapped[int] = mapped_column(Integer, server_default="0")
    injuries: Mapped[int] = mapped_column(Integer, server_default="0")
    description: Mapped[str] = mapped_column(Text)
    created_at = _created()
    __table_args__ = (
        CheckConstraint(f"grade IN {sql_in(vocab.ACCIDENT_GRADES)}", name="grade"),
        CheckConstraint("deaths >= 0 AND injuries >= 0", name="casualties"),
        CheckConstraint("length(btrim(description)) > 0", name="description_not_blank"),
    )


class Bulletin(Base):
    """The daily bulletin as issued: numbered, never rewritten (its entries are a snapshot)."""

    __tablename__ = "bulletins"
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    number: Mapped[str] = mapped_column(Text, unique=True)
    day: Mapped[dt.date] = mapped_column(Date, unique=True)
    issued_at = _created()
    issued_by: Mapped[str] = mapped_column(Text)
    rules: Mapped[dict[str, Any]] = mapped_column(JSONB)  # the thresholds it was made with
    districts: Mapped[list[Any]] = mapped_column(JSONB)  # the district indexes that day


class BulletinEntry(Base):
    """One enterprise on one bulletin: which list, why, its rank and its department."""

    __tablename__ = "bulletin_entries"
    bulletin_id: Mapped[int] = mapped_column(
        ForeignKey("bulletins.id", ondelete="CASCADE"), primary_key=True
    )
    enterprise_id: Mapped[int] = mapped_column(
        ForeignKey("enterprises.id", ondelete="CASCADE"), primary_key=True, index=True
    )
    attention: Mapped[str] = mapped_column(Text)  # key / suggested
    rank: Mapped[int] = mapped_column(Integer)
    name: Mapped[str] = mapped_column(Text)
    district: Mapped[str | None] = mapped_column(Text)
    dynamic_color: Mapped[str | None] = mapped_column(Text)
    department: Mapped[str] = mapped_column(Text)
    reasons: Mapped[list[Any]] = mapped_column(JSONB)
    __table_args__ = (
        CheckConstraint(f"attention IN {sql_in(vocab.BULLETIN_LISTS)}", name="attention"),
        CheckConstraint(f"department IN {sql_in(vocab.DEPARTMENTS)}", name="department"),
    )


class BulletinAction(Base):
    """What was done about an enterprise on a bulletin: interview, inspection, enforcement."""

    __tablename__ = "bulletin_actions"
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    bulletin_id: Mapped[int] = mapped_column(Integer)
    enterprise_id: Mapped[int] = mapped_column(Integer)
    kind: Mapped[str] = mapped_column(Text)
    taken_on: Mapped[dt.date] = mapped_column(Date)
    note: Mapped[str] = mapped_column(Text)
    actor: Mapped[str] = mapped_column(Text)
    created_at = _created()
    __table_args__ = (
        ForeignKeyConstraint(
            ["bulletin_id", "enterprise_id"],
            ["bulletin_entries.bulletin_id", "bulletin_entries.enterprise_id"],
            ondelete="CASCADE",
        ),
        Index("ix_bulletin_actions_entry", "bulletin_id", "enterprise_id"),
        CheckConstraint(f"kind IN {sql_in(vocab.BULLETIN_ACTIONS)}", name="kind"),
        CheckConstraint("length(btrim(note)) > 0", name="note_not_blank"),
    )


class InspectionTask(Base):
    """A task an enterprise must do by ``due_date`` — once, or recurring from it at
    ``frequency`` — assigned to a person and checking one control of a risk unit."""

    __tablename__ = "inspection_tasks"
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    enterprise_id: Mapped[int] = mapped_column(
        ForeignKey("enterprises.id", ondelete="CASCADE"), index=True
    )
    title: Mapped[str] = mapped_column(Text)
    due_date: Mapped[dt.date] = mapped_column(Date)
    done_at: Mapped[dt.datetime | None] = mapped_column(DateTime(timezone=True))
    created_at = _created()
    assignee: Mapped[str | None] = mapped_column(Text)
    frequency: Mapped[str] = mapped_column(Text, server_default="once")
    risk_unit_id: Mapped[int | None] = mapped_column(
        ForeignKey("risk_units.id", ondelete="SET NULL"), index=True
    )
    control_index: Mapped[int | None] = mapped_column(Integer)  # into risk_units.controls
    __table_args__ = (
        CheckConstraint("length(btrim(title)) > 0", name="title_not_blank"),
        CheckConstraint(
            f"frequency IN {sql_in(tuple(vocab.INSPECTION_FREQUENCIES))}", name="frequency"
        ),
        CheckConstraint("control_index IS NULL OR control_index >= 0", name="control_index"),
    )


class InspectionTaskRound(Base):
    """One done round of a recurring inspection task (the round due on ``due_date``)."""

    __tablename__ = "inspection_task_rounds"
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    task_id: Mapped[int] = mapped_column(ForeignKey("inspection_tasks.id", ondelete="CASCADE"))
    due_date: Mapped[dt.date] = mapped_column(Date)
    done_at: Mapped[dt.datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())
    done_by: Mapped[str | None] = mapped_column(Text)
    __table_args__ = (UniqueConstraint("task_id", "due_date"),)


class EnterpriseFinding(Base):
    """A direct-red circumstance of the MEM 2018 diagnosis guide found at an enterprise: while
    open it rates the enterprise red whatever its score (docs/domain.md §2.2)."""

    __tablename__ = "enterprise_findings"
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    enterprise_id: Mapped[int] = mapped_column(
        ForeignKey("enterprises.id", ondelete="CASCADE"), index=True
    )
    code: Mapped[str] = mapped_column(Text)
    evidence: Mapped[str] = mapped_column(Text)
    evidence_url: Mapped[str | None] = mapped_column(Text)
    found_on: Mapped[dt.date] = mapped_column(Date)
    found_by: Mapped[str] = mapped_column(Text)
    state: Mapped[str] = mapped_column(Text, server_default="open")
    closed_at: Mapped[dt.datetime | None] = mapped_column(DateTime(timezone=True))
    closed_by: Mapped[str | None] = mapped_column(Text)
    close_reason: Mapped[str | None] = mapped_column(Text)
    created_at = _created()
    __table_args__ = (
        CheckConstraint(f"code IN {sql_in(tuple(vocab.DIRECT_RED_FINDINGS))}", name="code"),
        CheckConstraint(f"state IN {sql_in(vocab.FINDING_STATES)}", name="state"),
        CheckConstraint(
            "(state = 'closed') = (closed_at IS NOT NULL AND closed_by IS NOT NULL"
            " AND close_reason IS NOT NULL)",
            name="closed",
        ),
        CheckConstraint("length(btrim(evidence)) > 0", name="evidence_not_blank"),
        CheckConstraint("evidence_url IS NULL OR evidence_url ~ '^https?://'", name="evidence_url"),
    )


class ScoreEvent(Base):
    """A deduction on the 12-point safety licence (记销分), automatic or from an inspection, and
    its life: open → reported → accepted / rejected, or voided (layers/prevention/deductions.py).
    """

    __tablename__ = "score_events"
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    enterprise_id: Mapped[int] = mapped_column(
        ForeignKey("enterprises.id", ondelete="CASCADE"), index=True
    )
    rule_set: Mapped[str] = mapped_column(Text)
    rule_set_version: Mapped[int | None] = mapped_column(Integer)  # made under this version
    item_code: Mapped[str] = mapped_column(Text)
    points: Mapped[int] = mapped_column(SmallInteger)
    source: Mapped[str] = mapped_column(Text)
    occurred_at: Mapped[dt.datetime] = mapped_column(DateTime(timezone=True))
    note: Mapped[str | None] = mapped_column(Text)
    evidence_url: Mapped[str | None] = mapped_column(Text)
    state: Mapped[str] = mapped_column(Text, server_default="open")
    # Automatic deductions: once per trigger instance (licence:<kind>:<date>, alarm:<id>, …).
    trigger_key: Mapped[str | None] = mapped_column(Text)
    created_by: Mapped[str | None] = mapped_column(Text)
    reported_at: Mapped[dt.datetime | None] = mapped_column(DateTime(timezone=True))
    reported_by: Mapped[str | None] = mapped_column(Text)
    report_note: Mapped[str | None] = mapped_column(Text)
    report_evidence_url: Mapped[str | None] = mapped_column(Text)
    reviewed_at: Mapped[dt.datetime | None] = mapped_column(DateTime(timezone=True))
    reviewed_by: Mapped[str | None] = mapped_column(Text)
    review_note: Mapped[str | None] = mapped_column(Text)
    reinspected_on: Mapped[dt.date | None] = mapped_column(Date)
    voided_at: Mapped[dt.datetime | None] = mapped_column(DateTime(timezone=True))
    voided_by: Mapped[str | None] = mapped_column(Text)
    void_reason: Mapped[str | None] = mapped_column(Text)
    created_at = _created()
    __table_args__ = (
        CheckConstraint("points BETWEEN 1 AND 12", name="points"),
        CheckConstraint("source IN ('auto', 'inspection')", name="source"),
        CheckConstraint(
            "state IN ('open', 'reported', 'accepted', 'rejected', 'voided')", name="state"
        ),
        CheckConstraint(
            "(state = 'voided') = (voided_at IS NOT NULL AND void_reason IS NOT NULL)",
            name="voided",
        ),
        Index(
            "uq_score_events_trigger",
            "enterprise_id",
            "trigger_key",
            unique=True,
            postgresql_where=text("trigger_key IS NOT NULL"),
        ),
    )


class ScoreEarnBack(Base):
    """Points earned back (training, a verified improvement), counted once approved."""

    __tablename__ = "score_earn_backs"
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    enterprise_id: Mapped[int] = mapped_column(
        ForeignKey("enterprises.id", ondelete="CASCADE"), index=True
    )
    rule_set: Mapped[str] = mapped_column(Text)
    rule_set_version: Mapped[int] = mapped_column(Integer)
    points: Mapped[int] = mapped_column(SmallInteger)
    reason: Mapped[str] = mapped_column(Text)
    note: Mapped[str] = mapped_column(Text)
    evidence_url: Mapped[str | None] = mapped_column(Text)
    occurred_at: Mapped[dt.datetime] = mapped_column(DateTime(timezone=True))
    state: Mapped[str] = mapped_column(Text, server_default="requested")
    requested_by: Mapped[str] = mapped_column(Text)
    reviewed_by: Mapped[str | None] = mapped_column(Text)
    reviewed_at: Mapped[dt.datetime | None] = mapped_column(DateTime(timezone=True))
    review_note: Mapped[str | None] = mapped_column(Text)
    created_at = _created()
    __table_args__ = (
        CheckConstraint("points BETWEEN 1 AND 12", name="points"),
        CheckConstraint("reason IN ('training', 'improvement')", name="reason"),
        CheckConstraint("state IN ('requested', 'approved', 'rejected')", name="state"),
    )


class RuleSet(Base):
    """One version of a safety-score rule set (docs/rules.md); a new import is a new version."""

    __tablename__ = "rule_sets"
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    code: Mapped[str] = mapped_column(Text)
    version: Mapped[int] = mapped_column(Integer)
    title_zh: Mapped[str] = mapped_column(Text)
    title_en: Mapped[str] = mapped_column(Text)
    is_sample: Mapped[bool] = mapped_column(Boolean)
    source_note: Mapped[str | None] = mapped_column(Text)
    cycle_start_month: Mapped[int] = mapped_column(SmallInteger)
    cycle_start_day: Mapped[int] = mapped_column(SmallInteger)
    carry_over: Mapped[str] = mapped_column(Text)
    earn_back_allowed: Mapped[bool] = mapped_column(Boolean, server_default="false")
    earn_back_cap: Mapped[int] = mapped_column(SmallInteger, server_default="0")
    created_at = _created()
    created_by: Mapped[str] = mapped_column(Text)
    __table_args__ = (
        UniqueConstraint("code", "version"),
        CheckConstraint("version >= 1", name="version"),
        CheckConstraint("carry_over IN ('none', 'unrectified')", name="carry_over"),
    )


class RuleItem(Base):
    __tablename__ = "rule_items"
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    rule_set_id: Mapped[int] = mapped_column(ForeignKey("rule_sets.id", ondelete="CASCADE"))
    code: Mapped[str] = mapped_column(Text)
    text_zh: Mapped[str] = mapped_column(Text)
    text_en: Mapped[str] = mapped_column(Text)
    points: Mapped[int] = mapped_column(SmallInteger)
    category: Mapped[str] = mapped_column(Text)
    tier: Mapped[str] = mapped_column(Text)
    trigger: Mapped[str] = mapped_column(Text, server_default="none")
    cap_per_cycle: Mapped[int | None] = mapped_column(SmallInteger)
    position: Mapped[int] = mapped_column(Integer)
    __table_args__ = (
        UniqueConstraint("rule_set_id", "code"),
        CheckConstraint("points BETWEEN 1 AND 12", name="points"),
    )


class RuleMeasure(Base):
    """What follows at a total: its effects (colour raise, key list, inspections, flags)."""

    __tablename__ = "rule_measures"
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    rule_set_id: Mapped[int] = mapped_column(ForeignKey("rule_sets.id", ondelete="CASCADE"))
    at_points: Mapped[int] = mapped_column(SmallInteger)
    code: Mapped[str] = mapped_column(Text)
    text_zh: Mapped[str] = mapped_column(Text)
    text_en: Mapped[str] = mapped_column(Text)
    colour_raise: Mapped[int] = mapped_column(SmallInteger, server_default="0")
    key_list: Mapped[bool] = mapped_column(Boolean, server_default="false")
    inspection_every_days: Mapped[int | None] = mapped_column(SmallInteger)
    interview: Mapped[bool] = mapped_column(Boolean, server_default="false")
    enforcement: Mapped[bool] = mapped_column(Boolean, server_default="false")
    __table_args__ = (UniqueConstraint("rule_set_id", "code"),)


class RuleAssignment(Base):
    """Which set scores which enterprises: every criterion given must hold."""

    __tablename__ = "rule_assignments"
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    rule_set_code: Mapped[str] = mapped_column(Text, index=True)
    category: Mapped[str | None] = mapped_column(Text)
    district: Mapped[str | None] = mapped_column(Text)
    tag: Mapped[str | None] = mapped_column(Text)
    priority: Mapped[int] = mapped_column(Integer, server_default="0")
    note: Mapped[str | None] = mapped_column(Text)


class Licence(Base):
    """A licence of an enterprise; ``valid_until`` is its last valid day."""

    __tablename__ = "licences"
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    enterprise_id: Mapped[int] = mapped_column(
        ForeignKey("enterprises.id", ondelete="CASCADE"), index=True
    )
    kind: Mapped[str] = mapped_column(Text)
    number: Mapped[str | None] = mapped_column(Text)
    issued_on: Mapped[dt.date | None] = mapped_column(Date)
    valid_until: Mapped[dt.date] = mapped_column(Date)
    created_at = _created()
    updated_at: Mapped[dt.datetime] = mapped_column(
        DateTime(timezone=True), server_default=func.now()
    )


class Certificate(Base):
    """A personnel certificate (principal, safety manager, special operations)."""

    __tablename__ = "certificates"
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    enterprise_id: Mapped[int] = mapped_column(
        ForeignKey("enterprises.id", ondelete="CASCADE"), index=True
    )
    holder: Mapped[str] = mapped_column(Text)
    role: Mapped[str] = mapped_column(Text)
    operation: Mapped[str | None] = mapped_column(Text)
    number: Mapped[str | None] = mapped_column(Text)
    issued_on: Mapped[dt.date | None] = mapped_column(Date)
    valid_until: Mapped[dt.date] = mapped_column(Date)
    created_at = _created()
    updated_at: Mapped[dt.datetime] = mapped_column(
        DateTime(timezone=True), server_default=func.now()
    )


class ExpiryNotice(Base):
    """One warning per licence or certificate and expiry date (the 30-day warning)."""

    __tablename__ = "expiry_notices"
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    enterprise_id: Mapped[int] = mapped_column(
        ForeignKey("enterprises.id", ondelete="CASCADE"), index=True
    )
    notice_key: Mapped[str] = mapped_column(Text)
    subject: Mapped[str] = mapped_column(Text)
    label: Mapped[str] = mapped_column(Text)
    valid_until: Mapped[dt.date] = mapped_column(Date)
    created_at = _created()
    __table_args__ = (UniqueConstraint("enterprise_id", "notice_key"),)


class Alarm(Base):
    """A monitoring-point alarm: raised → acknowledged → disposed → cleared, with a deadline."""

    __tablename__ = "alarms"
    id: Mapped[int] = mapped_column(BigInteger, primary_key=True)
    point_id: Mapped[int] = mapped_column(
        ForeignKey("monitoring_points.id", ondelete="CASCADE"), primary_key=True, index=True
    )
    level: Mapped[int] = mapped_column(SmallInteger)
    color: Mapped[str] = mapped_column(Text)
    raised_at: Mapped[dt.datetime] = mapped_column(DateTime(timezone=True))
    ack_deadline: Mapped[dt.datetime | None] = mapped_column(DateTime(timezone=True))
    acknowledged_at: Mapped[dt.datetime | None] = mapped_column(DateTime(timezone=True))
    disposed_at: Mapped[dt.datetime | None] = mapped_column(DateTime(timezone=True))
    cleared_at: Mapped[dt.datetime | None] = mapped_column(DateTime(timezone=True))
    peak_value: Mapped[float | None] = mapped_column(Float)
    __table_args__ = (
        # Distributed by point_id (layers/core/distribution.py); id first for lookups by id.
        PrimaryKeyConstraint("id", "point_id"),
        CheckConstraint("level IN (1, 2)", name="level"),
        CheckConstraint(f"color {LIVE_COLOR_CHECK}", name="color"),
        Index("ix_alarms_open", "point_id", postgresql_where="cleared_at IS NULL"),
    )


class MonitoringState(Base):
    """Per-point evaluator state (layers/monitoring), saved with the readings that moved it.

    Why persisted: debounce counters, the flat-line run and the open alarm span batches, so a
    restart (or another worker) must resume exactly where the last committed batch left off.
    """

    __tablename__ = "monitoring_state"
    point_id: Mapped[int] = mapped_column(
        ForeignKey("monitoring_points.id", ondelete="CASCADE"), primary_key=True
    )
    level: Mapped[int] = mapped_column(SmallInteger, server_default="0")  # confirmed 0/1/2
    pending_level: Mapped[int] = mapped_column(SmallInteger, server_default="0")
    pending_count: Mapped[int] = mapped_column(Integer, server_default="0")
    last_ts: Mapped[dt.datetime | None] = mapped_column(DateTime(timezone=True))
    last_value: Mapped[float | None] = mapped_column(Float)
    same_count: Mapped[int] = mapped_column(Integer, server_default="0")  # flat-line run
    stale: Mapped[bool] = mapped_column(Boolean, server_default="false")
    alarm_id: Mapped[int | None] = mapped_column(BigInteger)
    # The sweep has re-rated the enterprise for this open alarm passing its ack deadline.
    alarm_overdue: Mapped[bool] = mapped_column(Boolean, server_default="false")
    updated_at: Mapped[dt.datetime | None] = mapped_column(DateTime(timezone=True))
    __table_args__ = (
        # The point (shard key) is in the link; no SET NULL, which Citus refuses on it.
        ForeignKeyConstraint(["point_id", "alarm_id"], ["alarms.point_id", "alarms.id"]),
        CheckConstraint("level BETWEEN 0 AND 2", name="level"),
        CheckConstraint("pending_level BETWEEN 0 AND 2", name="pending_level"),
    )


class PipelineSegment(Base):
    """A pipeline cut into pieces of at most 500 m, each coloured with its reasons."""

    __tablename__ = "pipeline_segments"
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    pipeline_id: Mapped[int] = mapped_column(
        ForeignKey("pipelines.id", ondelete="CASCADE"), index=True
    )
    seq: Mapped[int] = mapped_column(Integer)
    length_m: Mapped[float] = mapped_column(Float)
    likelihood: Mapped[int | None] = mapped_column(SmallInteger)
    severity: Mapped[int | None] = mapped_column(SmallInteger)
    sensitive_target: Mapped[str | None] = mapped_column(Text)
    color: Mapped[str | None] = mapped_column(Text)
    reasons: Mapped[list | None] = mapped_column(JSONB)
    geom = _geom("LINESTRING")
    __table_args__ = (
        UniqueConstraint("pipeline_id", "seq"),
        CheckConstraint(f"color {COLOR_CHECK}", name="color"),
        CheckConstraint("length_m >= 0 AND length_m <= 500.5", name="length_m"),
    )


class ConsequenceZone(Base):
    """One source's zone (hazard source or pipeline segment) before dissolving."""

    __tablename__ = "consequence_zones"
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    source_kind: Mapped[str] = mapped_column(Text)
    source_id: Mapped[int] = mapped_column(Integer)
    color: Mapped[str] = mapped_column(Text)
    radius_m: Mapped[float] = mapped_column(Float)
    geom = _geom("MULTIPOLYGON")
    __table_args__ = (
        CheckConstraint("source_kind IN ('hazard_source', 'pipeline_segment')", name="kind"),
        CheckConstraint(f"color {COLOR_CHECK}", name="color"),
        CheckConstraint("radius_m > 0", name="radius_m"),
        Index("ix_consequence_zones_source", "source_kind", "source_id"),
    )


class OverlayZone(Base):
    """Consequence zones dissolved per colour; overlaps take the worst colour."""

    __tablename__ = "overlay_zones"
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    color: Mapped[str] = mapped_column(Text, index=True)
    sources: Mapped[list] = mapped_column(JSONB)
    area_m2: Mapped[float | None] = mapped_column(Float)
    geom = _geom("MULTIPOLYGON")
    __table_args__ = (CheckConstraint(f"color {COLOR_CHECK}", name="color"),)


class H3Cell(Base):
    """Hexagon rollups per layer and resolution: count, worst colour, ranking score."""

    __tablename__ = "h3_cells"
    layer: Mapped[str] = mapped_column(Text)
    res: Mapped[int] = mapped_column(SmallInteger)
    h3: Mapped[str] = mapped_column(Text)
    count: Mapped[int] = mapped_column(Integer)
    color: Mapped[str | None] = mapped_column(Text)
    score: Mapped[float] = mapped_column(Float, server_default="0")
    geom = _geom("POLYGON")
    __table_args__ = (
        PrimaryKeyConstraint("layer", "res", "h3"),
        CheckConstraint("res BETWEEN 0 AND 15", name="res"),
        CheckConstraint("count >= 0", name="count"),
        CheckConstraint(f"color {LIVE_COLOR_CHECK}", name="color"),
    )


class ApiKey(Base):
    """A caller's key (issue 8). Only a SHA-256 of the key is stored: keys are 32 random bytes,
    so a fast hash is enough, and a leaked table does not leak a usable key."""

    __tablename__ = "api_keys"
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    name: Mapped[str] = mapped_column(Text)
    role: Mapped[str] = mapped_column(Text)
    enterprise_id: Mapped[int | None] = mapped_column(
        ForeignKey("enterprises.id", ondelete="CASCADE"), index=True
    )
    districts: Mapped[list[str] | None] = mapped_column(ARRAY(Text))
    # An ingest key's carriers (``vehicles.carrier``): a carrier's terminal gateway (issue 18).
    carriers: Mapped[list[str] | None] = mapped_column(ARRAY(Text))
    prefix: Mapped[str] = mapped_column(Text)
    key_hash: Mapped[bytes] = mapped_column(LargeBinary, unique=True)
    created_at = _created()
    expires_at: Mapped[dt.datetime | None] = mapped_column(DateTime(timezone=True))
    revoked_at: Mapped[dt.datetime | None] = mapped_column(DateTime(timezone=True))
    __table_args__ = (
        CheckConstraint(f"role IN {sql_in(vocab.ROLES)}", name="role"),
        CheckConstraint("(role = 'enterprise') = (enterprise_id IS NOT NULL)", name="enterprise"),
        CheckConstraint(
            f"districts IS NULL OR role IN {sql_in(vocab.DISTRICT_ROLES)}", name="districts_role"
        ),
        CheckConstraint(
            f"carriers IS NULL OR (role IN {sql_in(vocab.CARRIER_ROLES)}"
            " AND cardinality(carriers) > 0)",
            name="carriers_role",
        ),
        CheckConstraint("length(btrim(name)) > 0", name="name_not_blank"),
    )


class AuditEntry(Base):
    """One audited write: who (``georisk.actor`` of the transaction), what, when, before/after.

    Rows are written by statement-level triggers (migration 0008), so every path — API, CLI,
    import, background worker, hand-written SQL — is recorded, not only the ones that remember
    to call a function."""

    __tablename__ = "audit_log"
    id: Mapped[int] = mapped_column(BigInteger, primary_key=True)
    at: Mapped[dt.datetime] = mapped_column(
        DateTime(timezone=True), server_default=text("clock_timestamp()"), index=True
    )
    actor: Mapped[str] = mapped_column(Text, index=True)
    action: Mapped[str] = mapped_column(Text)
    entity: Mapped[str] = mapped_column(Text)
    entity_id: Mapped[int | None] = mapped_column(BigInteger)
    before: Mapped[dict | None] = mapped_column(JSONB)
    after: Mapped[dict | None] = mapped_column(JSONB)
    __table_args__ = (
        CheckConstraint(f"action IN {sql_in(vocab.AUDIT_ACTIONS)}", name="action"),
        Index("ix_audit_log_entity_entity_id", "entity", "entity_id"),
    )
