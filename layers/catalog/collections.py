"""The registry of REST collections: which table, which columns, which filters.

Every identifier that ends up in SQL text comes from here (never from a request); values are
always bound parameters. Reading and writing (``read.py``, ``write.py``) build their SQL from
these entries, so adding a column to a collection is a one-place change.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Final

from layers.core import vocab


@dataclass(frozen=True)
class Filter:
    """An extra query filter: ``?name=value`` → ``sql = %(name)s``."""

    name: str
    sql: str
    kind: type = str  # str or int
    choices: tuple[str, ...] | None = None  # vocabulary; an unknown value is a 400


@dataclass(frozen=True)
class Column:
    """A column written by POST/import. ``staging_only`` columns help resolve, not store."""

    name: str
    pgtype: str
    geometry: bool = False
    staging_only: bool = False


@dataclass(frozen=True)
class UniqueKey:
    """A unique key checked within a batch and against the table before inserting."""

    columns: tuple[str, ...]
    field: str  # what the client is told
    constraint: str  # the database constraint, to translate a concurrent insert's violation


@dataclass(frozen=True)
class StagedCheck:
    """A set-based check over the staging table: yields ``ord`` and ``value`` of bad rows."""

    field: str
    sql: str  # SELECT s.ord, <value> AS value FROM georisk_staging s WHERE …
    reason: str  # formatted with {value}


@dataclass(frozen=True)
class Collection:
    name: str  # URL segment and CLI layer name
    table: str
    noun: str  # singular, for messages
    from_sql: str  # main table aliased ``t``
    geom_sql: str | None  # the feature geometry expression (None: no geometry at all)
    properties: tuple[tuple[str, str], ...]  # (JSON key, SQL expression)
    columns: tuple[Column, ...]
    district_sql: str | None = None
    enterprise_sql: str | None = None  # the enterprise a row belongs to (access scoping)
    color_sql: str | None = None  # None until the risk engine stores colours for the layer
    filters: tuple[Filter, ...] = ()
    lateral_sql: str = ""  # joined only when the geometry is needed (vehicles' latest fix)
    unique_keys: tuple[UniqueKey, ...] = ()
    resolve_sql: tuple[str, ...] = ()  # UPDATEs run on the staging table before the checks
    checks: tuple[StagedCheck, ...] = ()
    after_insert_sql: tuple[str, ...] = ()
    fills_district: bool = False  # fill a missing district from the polygon holding the geometry
    field_for_constraint: dict[str, str] = field(default_factory=dict)

    @property
    def stored_columns(self) -> tuple[Column, ...]:
        return tuple(c for c in self.columns if not c.staging_only)

    def filter_names(self) -> tuple[str, ...]:
        common = ("bbox", "limit", "offset", "district", "color")
        return common + tuple(f.name for f in self.filters)


def _exists(field_name: str, table: str, key: str, noun: str) -> StagedCheck:
    return StagedCheck(
        field=field_name,
        sql=(
            f"SELECT s.ord, s.{field_name}::text AS value FROM georisk_staging s"
            f" WHERE s.{field_name} IS NOT NULL"
            f" AND NOT EXISTS (SELECT 1 FROM {table} p WHERE p.{key} = s.{field_name})"
        ),
        reason=f"no {noun} with {key} {{value}}",
    )


_DISTRICT = Column("district", "text")

ENTERPRISES = Collection(
    name="enterprises",
    table="enterprises",
    noun="enterprise",
    from_sql="enterprises t",
    geom_sql="t.geom",
    properties=(
        ("credit_code", "t.credit_code"),
        ("name", "t.name"),
        ("category", "t.category"),
        ("is_hazmat", "t.is_hazmat"),
        ("district", "t.district"),
        ("park", "t.park"),
        ("address", "t.address"),
        ("licence_expiry", "t.licence_expiry"),
        ("diagnosis_score", "t.diagnosis_score::float8"),
        ("site", "ST_AsGeoJSON(t.site_geom, 7)::json"),
        ("color", "t.dynamic_color"),
        ("inherent_color", "t.inherent_color"),
        ("dynamic_color", "t.dynamic_color"),
    ),
    columns=(
        Column("credit_code", "text"),
        Column("name", "text"),
        Column("category", "text"),
        Column("is_hazmat", "boolean"),
        _DISTRICT,
        Column("park", "text"),
        Column("address", "text"),
        Column("licence_expiry", "date"),
        Column("diagnosis_score", "numeric"),
        Column("geom", "geometry", geometry=True),
        Column("site_geom", "geometry", geometry=True),
    ),
    district_sql="t.district",
    enterprise_sql="t.id",
    color_sql="t.dynamic_color",
    filters=(Filter("category", "t.category", str, vocab.ENTERPRISE_CATEGORIES),),
    unique_keys=(UniqueKey(("credit_code",), "credit_code", "uq_enterprises_credit_code"),),
    fills_district=True,
)

HAZARD_SOURCES = Collection(
    name="hazard-sources",
    table="hazard_sources",
    noun="hazard source",
    # A hazard source's district is its enterprise's: there is no column of its own.
    from_sql="hazard_sources t JOIN enterprises e ON e.id = t.enterprise_id",
    geom_sql="t.geom",
    properties=(
        ("enterprise_id", "t.enterprise_id"),
        ("enterprise_credit_code", "e.credit_code"),
        ("code", "t.code"),
        ("unit_name", "t.unit_name"),
        ("unit_kind", "t.unit_kind"),
        ("population_500m", "t.population_500m"),
        ("district", "e.district"),
        ("S", "t.s_value"),
        ("alpha", "t.alpha"),
        ("R", "t.r_value"),
        ("grade", "t.grade"),
        ("color", "t.color"),
        (
            "substances",
            "(SELECT COALESCE(json_agg(json_build_object('name', x.name, 'cas', x.cas,"
            " 'q', x.q, 'Q', x.critical_q, 'beta', x.beta, 'class', x.hazard_class)"
            " ORDER BY x.id), '[]'::json)"
            " FROM hazard_source_substances x WHERE x.hazard_source_id = t.id)",
        ),
    ),
    columns=(
        Column("enterprise_id", "integer"),
        Column("enterprise_credit_code", "text", staging_only=True),
        Column("code", "text"),
        Column("unit_name", "text"),
        Column("unit_kind", "text"),
        Column("population_500m", "integer"),
        Column("substances", "jsonb", staging_only=True),
        Column("geom", "geometry", geometry=True),
    ),
    district_sql="e.district",
    enterprise_sql="t.enterprise_id",
    color_sql="t.color",
    filters=(Filter("enterprise_id", "t.enterprise_id", int),),
    unique_keys=(
        UniqueKey(("enterprise_id", "code"), "code", "uq_hazard_sources_enterprise_id_code"),
    ),
    resolve_sql=(
        "UPDATE georisk_staging s SET enterprise_id = e.id FROM enterprises e"
        " WHERE s.enterprise_id IS NULL AND e.credit_code = s.enterprise_credit_code",
    ),
    checks=(
        _exists("enterprise_id", "enterprises", "id", "enterprise"),
        _exists("enterprise_credit_code", "enterprises", "credit_code", "enterprise"),
        StagedCheck(
            field="enterprise_credit_code",
            sql=(
                "SELECT s.ord, s.enterprise_credit_code AS value FROM georisk_staging s"
                " JOIN enterprises e ON e.id = s.enterprise_id"
                " WHERE s.enterprise_credit_code IS NOT NULL"
                " AND e.credit_code <> s.enterprise_credit_code"
            ),
            reason="{value} is not the credit code of the enterprise given by enterprise_id",
        ),
    ),
    after_insert_sql=(
        "INSERT INTO hazard_source_substances"
        " (hazard_source_id, name, cas, q, critical_q, beta, hazard_class)"
        " SELECT s.id, x.name, x.cas, x.q, x.critical_q, x.beta, x.hazard_class"
        " FROM georisk_staging s CROSS JOIN LATERAL jsonb_to_recordset(s.substances)"
        " AS x(name text, cas text, q float8, critical_q float8, beta float8, hazard_class text)"
        " ORDER BY s.ord",
    ),
    field_for_constraint={"fk_hazard_sources_enterprise_id_enterprises": "enterprise_id"},
)

MONITORING_POINTS = Collection(
    name="monitoring-points",
    table="monitoring_points",
    noun="monitoring point",
    # The district comes from the parent: the hazard source's enterprise, or the pipeline.
    from_sql=(
        "monitoring_points t"
        " LEFT JOIN hazard_sources h ON h.id = t.hazard_source_id"
        " LEFT JOIN enterprises e ON e.id = h.enterprise_id"
        " LEFT JOIN pipelines pl ON pl.id = t.pipeline_id"
    ),
    geom_sql="t.geom",
    properties=(
        ("code", "t.code"),
        ("hazard_source_id", "t.hazard_source_id"),
        ("pipeline_id", "t.pipeline_id"),
        ("kind", "t.kind"),
        ("substance", "t.substance"),
        ("unit", "t.unit"),
        ("level1", "t.level1"),
        ("level2", "t.level2"),
        ("limit_h", "t.limit_h"),
        ("limit_hh", "t.limit_hh"),
        ("limit_l", "t.limit_l"),
        ("limit_ll", "t.limit_ll"),
        ("sampling_interval_s", "t.sampling_interval_s"),
        ("district", "COALESCE(e.district, pl.district)"),
        ("color", "t.live_color"),
    ),
    columns=(
        Column("code", "text"),
        Column("hazard_source_id", "integer"),
        Column("pipeline_id", "integer"),
        Column("kind", "text"),
        Column("substance", "text"),
        Column("unit", "text"),
        Column("level1", "float8"),
        Column("level2", "float8"),
        Column("limit_h", "float8"),
        Column("limit_hh", "float8"),
        Column("limit_l", "float8"),
        Column("limit_ll", "float8"),
        Column("sampling_interval_s", "integer"),
        Column("geom", "geometry", geometry=True),
    ),
    district_sql="COALESCE(e.district, pl.district)",
    enterprise_sql="h.enterprise_id",
    color_sql="t.live_color",
    filters=(
        Filter("kind", "t.kind", str, vocab.MONITORING_KINDS),
        Filter("hazard_source_id", "t.hazard_source_id", int),
    ),
    unique_keys=(UniqueKey(("code",), "code", "uq_monitoring_points_code"),),
    checks=(
        _exists("hazard_source_id", "hazard_sources", "id", "hazard source"),
        _exists("pipeline_id", "pipelines", "id", "pipeline"),
    ),
    field_for_constraint={
        "fk_monitoring_points_hazard_source_id_hazard_sources": "hazard_source_id",
        "fk_monitoring_points_pipeline_id_pipelines": "pipeline_id",
    },
)

PIPELINES = Collection(
    name="pipelines",
    table="pipelines",
    noun="pipeline",
    from_sql="pipelines t",
    geom_sql="t.geom",
    properties=(
        ("code", "t.code"),
        ("name", "t.name"),
        ("substance", "t.substance"),
        ("cas", "t.cas"),
        ("diameter_mm", "t.diameter_mm"),
        ("pressure_mpa", "t.pressure_mpa"),
        ("operator", "t.operator"),
        ("district", "t.district"),
        ("length_m", "round(ST_Length(t.geom::geography)::numeric, 1)"),
    ),
    columns=(
        Column("code", "text"),
        Column("name", "text"),
        Column("substance", "text"),
        Column("cas", "text"),
        Column("diameter_mm", "float8"),
        Column("pressure_mpa", "float8"),
        Column("operator", "text"),
        _DISTRICT,
        Column("geom", "geometry", geometry=True),
    ),
    district_sql="t.district",
    unique_keys=(UniqueKey(("code",), "code", "uq_pipelines_code"),),
    fills_district=True,
)

ZONES = Collection(
    name="zones",
    table="zones",
    noun="zone",
    from_sql="zones t",
    geom_sql="t.geom",
    properties=(
        ("code", "t.code"),
        ("name", "t.name"),
        ("kind", "t.kind"),
        ("district", "t.district"),
        ("max_dwell_s", "t.max_dwell_s"),
        ("active_hours", "t.active_hours"),
        ("speed_limit_kmh", "t.speed_limit_kmh"),
        ("population", "t.population"),
    ),
    columns=(
        Column("code", "text"),
        Column("name", "text"),
        Column("kind", "text"),
        _DISTRICT,
        Column("max_dwell_s", "integer"),
        Column("active_hours", "text"),
        Column("speed_limit_kmh", "float8"),
        Column("population", "integer"),
        Column("geom", "geometry", geometry=True),
    ),
    district_sql="t.district",
    filters=(Filter("kind", "t.kind", str, vocab.ZONE_KINDS),),
    unique_keys=(UniqueKey(("code",), "code", "uq_zones_code"),),
    fills_district=True,
)

VEHICLES = Collection(
    name="vehicles",
    table="vehicles",
    noun="vehicle",
    from_sql="vehicles t",
    # The latest fix per vehicle, read backwards on the (vehicle_id, ts) primary key.
    lateral_sql=(
        " LEFT JOIN LATERAL (SELECT p.lon, p.lat, p.ts, p.speed_kmh, p.heading"
        " FROM positions p WHERE p.vehicle_id = t.id ORDER BY p.ts DESC LIMIT 1) lp ON true"
    ),
    geom_sql="ST_SetSRID(ST_MakePoint(lp.lon, lp.lat), 4326)",
    properties=(
        ("plate", "t.plate"),
        ("carrier", "t.carrier"),
        ("hazmat_class", "t.hazmat_class"),
        ("un_number", "t.un_number"),
        ("capacity_t", "t.capacity_t"),
        ("district", "t.district"),
        ("last_fix_at", "lp.ts"),
        ("speed_kmh", "lp.speed_kmh"),
        ("heading", "lp.heading"),
        # The stop detector's persisted state (layers/transport/state.py): moving / stopped.
        ("state", "(SELECT vs.state FROM vehicle_state vs WHERE vs.vehicle_id = t.id)"),
        ("state_since", "(SELECT vs.since FROM vehicle_state vs WHERE vs.vehicle_id = t.id)"),
    ),
    columns=(
        Column("plate", "text"),
        Column("carrier", "text"),
        Column("hazmat_class", "text"),
        Column("un_number", "text"),
        Column("capacity_t", "float8"),
        _DISTRICT,
    ),
    district_sql="t.district",
    filters=(Filter("carrier", "t.carrier", str),),
    unique_keys=(UniqueKey(("plate",), "plate", "uq_vehicles_plate"),),
)

DISTRICTS = Collection(
    name="districts",
    table="districts",
    noun="district",
    from_sql="districts t",
    geom_sql="t.geom",
    properties=(("code", "t.code"), ("name", "t.name"), ("name_en", "t.name_en")),
    columns=(
        Column("code", "text"),
        Column("name", "text"),
        Column("name_en", "text"),
        Column("geom", "geometry", geometry=True),
    ),
    district_sql="t.code",
    unique_keys=(UniqueKey(("code",), "code", "uq_districts_code"),),
)

COLLECTIONS: Final[dict[str, Collection]] = {
    c.name: c
    for c in (
        ENTERPRISES,
        HAZARD_SOURCES,
        MONITORING_POINTS,
        PIPELINES,
        ZONES,
        VEHICLES,
        DISTRICTS,
    )
}
