"""initial schema

Revision ID: 0001
Revises:
Create Date: 2026-11-26 10:26:15.175282
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from geoalchemy2 import Geometry
from sqlalchemy.dialects import postgresql

revision: str = "0001"
down_revision: str | None = None
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    # A user-supplied DATABASE_URL may point at a database without PostGIS enabled yet.
    op.execute("CREATE EXTENSION IF NOT EXISTS postgis")
    op.create_geospatial_table(
        "districts",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("code", sa.Text(), nullable=False),
        sa.Column("name", sa.Text(), nullable=False),
        sa.Column("name_en", sa.Text(), nullable=True),
        sa.Column(
            "geom",
            Geometry(
                geometry_type="MULTIPOLYGON",
                srid=4326,
                dimension=2,
                spatial_index=False,
                from_text="ST_GeomFromEWKT",
                name="geometry",
                nullable=False,
            ),
            nullable=False,
        ),
        sa.CheckConstraint("ST_IsValid(geom)", name=op.f("ck_districts_geom_valid")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_districts")),
        sa.UniqueConstraint("code", name=op.f("uq_districts_code")),
    )
    op.create_geospatial_index(
        "idx_districts_geom",
        "districts",
        ["geom"],
        unique=False,
        postgresql_using="gist",
        postgresql_ops={},
    )
    op.create_table(
        "position_rejects",
        sa.Column("id", sa.BigInteger(), nullable=False),
        sa.Column("vehicle_id", sa.Integer(), nullable=True),
        sa.Column("ts", sa.DateTime(timezone=True), nullable=True),
        sa.Column("lon", sa.Float(), nullable=True),
        sa.Column("lat", sa.Float(), nullable=True),
        sa.Column("speed_kmh", sa.Float(), nullable=True),
        sa.Column("reason", sa.Text(), nullable=False),
        sa.Column(
            "received_at",
            sa.DateTime(timezone=True),
            server_default=sa.text("now()"),
            nullable=False,
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_position_rejects")),
    )
    op.create_index(
        op.f("ix_position_rejects_vehicle_id"), "position_rejects", ["vehicle_id"], unique=False
    )
    op.create_table(
        "positions",
        sa.Column("vehicle_id", sa.Integer(), nullable=False),
        sa.Column("ts", sa.DateTime(timezone=True), nullable=False),
        sa.Column("lon", sa.Float(), nullable=False),
        sa.Column("lat", sa.Float(), nullable=False),
        sa.Column("speed_kmh", sa.Float(precision=24), nullable=False),
        sa.Column("heading", sa.SmallInteger(), nullable=True),
        sa.Column("alarm_bits", sa.Integer(), server_default="0", nullable=False),
        sa.CheckConstraint("heading BETWEEN 0 AND 359", name=op.f("ck_positions_heading")),
        sa.CheckConstraint(
            "lon BETWEEN -180 AND 180 AND lat BETWEEN -90 AND 90", name=op.f("ck_positions_lonlat")
        ),
        sa.CheckConstraint("speed_kmh >= 0 AND speed_kmh <= 400", name=op.f("ck_positions_speed")),
        sa.PrimaryKeyConstraint("vehicle_id", "ts", name=op.f("pk_positions")),
        postgresql_partition_by="RANGE (ts)",
    )
    op.create_table(
        "readings",
        sa.Column("point_id", sa.Integer(), nullable=False),
        sa.Column("ts", sa.DateTime(timezone=True), nullable=False),
        sa.Column("value", sa.Float(), nullable=False),
        sa.CheckConstraint("value = value", name=op.f("ck_readings_value_not_nan")),
        sa.PrimaryKeyConstraint("point_id", "ts", name=op.f("pk_readings")),
        postgresql_partition_by="RANGE (ts)",
    )
    op.create_geospatial_table(
        "roads",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("name", sa.Text(), nullable=True),
        sa.Column("road_class", sa.Text(), nullable=False),
        sa.Column("speed_limit_kmh", sa.Float(), nullable=True),
        sa.Column(
            "geom",
            Geometry(
                geometry_type="LINESTRING",
                srid=4326,
                dimension=2,
                spatial_index=False,
                from_text="ST_GeomFromEWKT",
                name="geometry",
                nullable=False,
            ),
            nullable=False,
        ),
        sa.CheckConstraint(
            "road_class IN ('expressway', 'arterial', 'local')", name=op.f("ck_roads_road_class")
        ),
        sa.CheckConstraint(
            "speed_limit_kmh > 0 AND speed_limit_kmh <= 200", name=op.f("ck_roads_speed_limit")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_roads")),
    )
    op.create_geospatial_index(
        "idx_roads_geom",
        "roads",
        ["geom"],
        unique=False,
        postgresql_using="gist",
        postgresql_ops={},
    )
    op.create_geospatial_table(
        "enterprises",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("credit_code", sa.Text(), nullable=False),
        sa.Column("name", sa.Text(), nullable=False),
        sa.Column("category", sa.Text(), nullable=False),
        sa.Column("is_hazmat", sa.Boolean(), nullable=False),
        sa.Column("district", sa.Text(), nullable=True),
        sa.Column("park", sa.Text(), nullable=True),
        sa.Column("address", sa.Text(), nullable=True),
        sa.Column(
            "geom",
            Geometry(
                geometry_type="POINT",
                srid=4326,
                dimension=2,
                spatial_index=False,
                from_text="ST_GeomFromEWKT",
                name="geometry",
                nullable=False,
            ),
            nullable=False,
        ),
        sa.Column(
            "site_geom",
            Geometry(
                geometry_type="MULTIPOLYGON",
                srid=4326,
                dimension=2,
                spatial_index=False,
                from_text="ST_GeomFromEWKT",
                name="geometry",
            ),
            nullable=True,
        ),
        sa.Column("licence_expiry", sa.Date(), nullable=True),
        sa.Column("diagnosis_score", sa.Numeric(precision=5, scale=2), nullable=True),
        sa.Column(
            "created_at",
            sa.DateTime(timezone=True),
            server_default=sa.text("now()"),
            nullable=False,
        ),
        sa.CheckConstraint(
            "category IN ('production', 'storage', 'trading', 'use', 'transport', 'disposal', 'school', 'hospital', 'laboratory', 'research', 'other_user')",
            name=op.f("ck_enterprises_category"),
        ),
        sa.CheckConstraint(
            "credit_code ~ '^[0-9A-HJ-NPQRTUWXY]{2}[0-9]{6}[0-9A-HJ-NPQRTUWXY]{10}$'",
            name=op.f("ck_enterprises_credit_code"),
        ),
        sa.CheckConstraint(
            "is_hazmat = (category IN ('production', 'storage', 'trading', 'use', 'transport', 'disposal'))",
            name=op.f("ck_enterprises_is_hazmat"),
        ),
        sa.CheckConstraint(
            "ST_X(geom) BETWEEN -180 AND 180 AND ST_Y(geom) BETWEEN -90 AND 90",
            name=op.f("ck_enterprises_geom_range"),
        ),
        sa.CheckConstraint(
            "diagnosis_score BETWEEN 0 AND 100", name=op.f("ck_enterprises_diagnosis_score")
        ),
        sa.CheckConstraint("length(btrim(name)) > 0", name=op.f("ck_enterprises_name_not_blank")),
        sa.CheckConstraint(
            "site_geom IS NULL OR ST_IsValid(site_geom)", name=op.f("ck_enterprises_site_valid")
        ),
        sa.ForeignKeyConstraint(
            ["district"],
            ["districts.code"],
            name=op.f("fk_enterprises_district_districts"),
            onupdate="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_enterprises")),
        sa.UniqueConstraint("credit_code", name=op.f("uq_enterprises_credit_code")),
    )
    op.create_geospatial_index(
        "idx_enterprises_geom",
        "enterprises",
        ["geom"],
        unique=False,
        postgresql_using="gist",
        postgresql_ops={},
    )
    op.create_geospatial_index(
        "idx_enterprises_site_geom",
        "enterprises",
        ["site_geom"],
        unique=False,
        postgresql_using="gist",
        postgresql_ops={},
    )
    op.create_index(op.f("ix_enterprises_district"), "enterprises", ["district"], unique=False)
    op.create_geospatial_table(
        "pipelines",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("code", sa.Text(), nullable=False),
        sa.Column("name", sa.Text(), nullable=True),
        sa.Column("substance", sa.Text(), nullable=False),
        sa.Column("cas", sa.Text(), nullable=True),
        sa.Column("diameter_mm", sa.Float(), nullable=False),
        sa.Column("pressure_mpa", sa.Float(), nullable=False),
        sa.Column("operator", sa.Text(), nullable=True),
        sa.Column("district", sa.Text(), nullable=True),
        sa.Column(
            "geom",
            Geometry(
                geometry_type="LINESTRING",
                srid=4326,
                dimension=2,
                spatial_index=False,
                from_text="ST_GeomFromEWKT",
                name="geometry",
                nullable=False,
            ),
            nullable=False,
        ),
        sa.Column(
            "created_at",
            sa.DateTime(timezone=True),
            server_default=sa.text("now()"),
            nullable=False,
        ),
        sa.CheckConstraint(
            "cas ~ '^[0-9]{2,7}-[0-9]{2}-[0-9]$'", name=op.f("ck_pipelines_cas_format")
        ),
        sa.CheckConstraint(
            "ST_IsValid(geom) AND ST_NPoints(geom) >= 2", name=op.f("ck_pipelines_geom_valid")
        ),
        sa.CheckConstraint(
            "diameter_mm > 0 AND diameter_mm <= 5000", name=op.f("ck_pipelines_diameter_mm")
        ),
        sa.CheckConstraint(
            "pressure_mpa >= 0 AND pressure_mpa <= 100", name=op.f("ck_pipelines_pressure_mpa")
        ),
        sa.ForeignKeyConstraint(
            ["district"],
            ["districts.code"],
            name=op.f("fk_pipelines_district_districts"),
            onupdate="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_pipelines")),
        sa.UniqueConstraint("code", name=op.f("uq_pipelines_code")),
    )
    op.create_geospatial_index(
        "idx_pipelines_geom",
        "pipelines",
        ["geom"],
        unique=False,
        postgresql_using="gist",
        postgresql_ops={},
    )
    op.create_index(op.f("ix_pipelines_district"), "pipelines", ["district"], unique=False)
    op.create_table(
        "vehicles",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("plate", sa.Text(), nullable=False),
        sa.Column("carrier", sa.Text(), nullable=False),
        sa.Column("hazmat_class", sa.Text(), nullable=True),
        sa.Column("un_number", sa.Text(), nullable=True),
        sa.Column("capacity_t", sa.Float(), nullable=True),
        sa.Column("district", sa.Text(), nullable=True),
        sa.Column(
            "created_at",
            sa.DateTime(timezone=True),
            server_default=sa.text("now()"),
            nullable=False,
        ),
        sa.CheckConstraint(
            "hazmat_class ~ '^[1-9](\\.[1-6])?$'", name=op.f("ck_vehicles_hazmat_class")
        ),
        sa.CheckConstraint("un_number ~ '^[0-9]{4}$'", name=op.f("ck_vehicles_un_number")),
        sa.CheckConstraint(
            "capacity_t > 0 AND capacity_t <= 100", name=op.f("ck_vehicles_capacity_t")
        ),
        sa.CheckConstraint(
            "length(btrim(carrier)) > 0", name=op.f("ck_vehicles_carrier_not_blank")
        ),
        sa.CheckConstraint("length(btrim(plate)) > 0", name=op.f("ck_vehicles_plate_not_blank")),
        sa.ForeignKeyConstraint(
            ["district"],
            ["districts.code"],
            name=op.f("fk_vehicles_district_districts"),
            onupdate="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_vehicles")),
        sa.UniqueConstraint("plate", name=op.f("uq_vehicles_plate")),
    )
    op.create_index(op.f("ix_vehicles_carrier"), "vehicles", ["carrier"], unique=False)
    op.create_index(op.f("ix_vehicles_district"), "vehicles", ["district"], unique=False)
    op.create_geospatial_table(
        "zones",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("code", sa.Text(), nullable=True),
        sa.Column("name", sa.Text(), nullable=False),
        sa.Column("kind", sa.Text(), nullable=False),
        sa.Column("district", sa.Text(), nullable=True),
        sa.Column("max_dwell_s", sa.Integer(), nullable=True),
        sa.Column("active_hours", sa.Text(), nullable=True),
        sa.Column("speed_limit_kmh", sa.Float(), nullable=True),
        sa.Column("population", sa.Integer(), nullable=True),
        sa.Column(
            "geom",
            Geometry(
                geometry_type="MULTIPOLYGON",
                srid=4326,
                dimension=2,
                spatial_index=False,
                from_text="ST_GeomFromEWKT",
                name="geometry",
                nullable=False,
            ),
            nullable=False,
        ),
        sa.Column(
            "created_at",
            sa.DateTime(timezone=True),
            server_default=sa.text("now()"),
            nullable=False,
        ),
        sa.CheckConstraint(
            "active_hours ~ '^([01][0-9]|2[0-3]):[0-5][0-9]-([01][0-9]|2[0-4]):[0-5][0-9](,([01][0-9]|2[0-3]):[0-5][0-9]-([01][0-9]|2[0-4]):[0-5][0-9])*$'",
            name=op.f("ck_zones_active_hours"),
        ),
        sa.CheckConstraint(
            "kind IN ('designated_parking', 'school', 'hospital', 'residential', 'water_source', 'chemical_park')",
            name=op.f("ck_zones_kind"),
        ),
        sa.CheckConstraint(
            "ST_IsValid(geom) AND NOT ST_IsEmpty(geom)", name=op.f("ck_zones_geom_valid")
        ),
        sa.CheckConstraint("max_dwell_s >= 0", name=op.f("ck_zones_max_dwell_s")),
        sa.CheckConstraint("population >= 0", name=op.f("ck_zones_population")),
        sa.CheckConstraint(
            "speed_limit_kmh > 0 AND speed_limit_kmh <= 200", name=op.f("ck_zones_speed_limit")
        ),
        sa.ForeignKeyConstraint(
            ["district"],
            ["districts.code"],
            name=op.f("fk_zones_district_districts"),
            onupdate="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_zones")),
        sa.UniqueConstraint("code", name=op.f("uq_zones_code")),
    )
    op.create_geospatial_index(
        "idx_zones_geom",
        "zones",
        ["geom"],
        unique=False,
        postgresql_using="gist",
        postgresql_ops={},
    )
    op.create_index(op.f("ix_zones_district"), "zones", ["district"], unique=False)
    op.create_index(op.f("ix_zones_kind"), "zones", ["kind"], unique=False)
    op.create_geospatial_table(
        "alerts",
        sa.Column("id", sa.BigInteger(), nullable=False),
        sa.Column("vehicle_id", sa.Integer(), nullable=True),
        sa.Column("rule", sa.Text(), nullable=False),
        sa.Column("zone_id", sa.Integer(), nullable=True),
        sa.Column("episode_start", sa.DateTime(timezone=True), nullable=False),
        sa.Column("episode_end", sa.DateTime(timezone=True), nullable=True),
        sa.Column("status", sa.Text(), server_default="new", nullable=False),
        sa.Column("district", sa.Text(), nullable=True),
        sa.Column("severity", sa.Text(), server_default="moderate", nullable=False),
        sa.Column(
            "details", postgresql.JSONB(astext_type=sa.Text()), server_default="{}", nullable=False
        ),
        sa.Column(
            "created_at",
            sa.DateTime(timezone=True),
            server_default=sa.text("now()"),
            nullable=False,
        ),
        sa.Column(
            "updated_at",
            sa.DateTime(timezone=True),
            server_default=sa.text("now()"),
            nullable=False,
        ),
        sa.Column("acknowledged_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("acknowledged_by", sa.Text(), nullable=True),
        sa.Column("disposed_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("disposed_by", sa.Text(), nullable=True),
        sa.Column("outcome", sa.Text(), nullable=True),
        sa.Column("note", sa.Text(), nullable=True),
        sa.Column(
            "geom",
            Geometry(
                geometry_type="POINT",
                srid=4326,
                dimension=2,
                spatial_index=False,
                from_text="ST_GeomFromEWKT",
                name="geometry",
            ),
            nullable=True,
        ),
        sa.CheckConstraint(
            "severity IN ('extreme', 'severe', 'moderate', 'minor')",
            name=op.f("ck_alerts_severity"),
        ),
        sa.CheckConstraint(
            "status IN ('new', 'acknowledged', 'disposed', 'false_alarm')",
            name=op.f("ck_alerts_status"),
        ),
        sa.CheckConstraint(
            "episode_end IS NULL OR episode_end >= episode_start",
            name=op.f("ck_alerts_episode_order"),
        ),
        sa.ForeignKeyConstraint(
            ["vehicle_id"],
            ["vehicles.id"],
            name=op.f("fk_alerts_vehicle_id_vehicles"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["zone_id"], ["zones.id"], name=op.f("fk_alerts_zone_id_zones"), ondelete="SET NULL"
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_alerts")),
        sa.UniqueConstraint(
            "vehicle_id",
            "rule",
            "zone_id",
            "episode_start",
            name=op.f("uq_alerts_vehicle_id_rule_zone_id_episode_start"),
            postgresql_nulls_not_distinct=True,
        ),
    )
    op.create_geospatial_index(
        "idx_alerts_geom",
        "alerts",
        ["geom"],
        unique=False,
        postgresql_using="gist",
        postgresql_ops={},
    )
    op.create_index(op.f("ix_alerts_district"), "alerts", ["district"], unique=False)
    op.create_index("ix_alerts_status_created", "alerts", ["status", "created_at"], unique=False)
    op.create_geospatial_table(
        "hazard_sources",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("enterprise_id", sa.Integer(), nullable=False),
        sa.Column("code", sa.Text(), nullable=False),
        sa.Column("unit_name", sa.Text(), nullable=False),
        sa.Column("unit_kind", sa.Text(), nullable=False),
        sa.Column("population_500m", sa.Integer(), nullable=True),
        sa.Column(
            "geom",
            Geometry(
                geometry_type="MULTIPOLYGON",
                srid=4326,
                dimension=2,
                spatial_index=False,
                from_text="ST_GeomFromEWKT",
                name="geometry",
                nullable=False,
            ),
            nullable=False,
        ),
        sa.Column(
            "created_at",
            sa.DateTime(timezone=True),
            server_default=sa.text("now()"),
            nullable=False,
        ),
        sa.CheckConstraint(
            "unit_kind IN ('production', 'storage')", name=op.f("ck_hazard_sources_unit_kind")
        ),
        sa.CheckConstraint("ST_IsValid(geom)", name=op.f("ck_hazard_sources_geom_valid")),
        sa.CheckConstraint("population_500m >= 0", name=op.f("ck_hazard_sources_population_500m")),
        sa.ForeignKeyConstraint(
            ["enterprise_id"],
            ["enterprises.id"],
            name=op.f("fk_hazard_sources_enterprise_id_enterprises"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_hazard_sources")),
        sa.UniqueConstraint(
            "enterprise_id", "code", name=op.f("uq_hazard_sources_enterprise_id_code")
        ),
    )
    op.create_geospatial_index(
        "idx_hazard_sources_geom",
        "hazard_sources",
        ["geom"],
        unique=False,
        postgresql_using="gist",
        postgresql_ops={},
    )
    op.create_index(
        op.f("ix_hazard_sources_enterprise_id"), "hazard_sources", ["enterprise_id"], unique=False
    )
    op.create_table(
        "hidden_dangers",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("enterprise_id", sa.Integer(), nullable=False),
        sa.Column("title", sa.Text(), nullable=False),
        sa.Column("is_major", sa.Boolean(), server_default="false", nullable=False),
        sa.Column("status", sa.Text(), server_default="found", nullable=False),
        sa.Column("found_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("deadline", sa.Date(), nullable=True),
        sa.Column("rectified_at", sa.DateTime(timezone=True), nullable=True),
        sa.CheckConstraint(
            "(status = 'rectified') = (rectified_at IS NOT NULL)",
            name=op.f("ck_hidden_dangers_rectified_at"),
        ),
        sa.CheckConstraint(
            "status IN ('found', 'rectifying', 'rectified')", name=op.f("ck_hidden_dangers_status")
        ),
        sa.ForeignKeyConstraint(
            ["enterprise_id"],
            ["enterprises.id"],
            name=op.f("fk_hidden_dangers_enterprise_id_enterprises"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_hidden_dangers")),
    )
    op.create_index(
        op.f("ix_hidden_dangers_enterprise_id"), "hidden_dangers", ["enterprise_id"], unique=False
    )
    op.create_geospatial_table(
        "risk_units",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("enterprise_id", sa.Integer(), nullable=False),
        sa.Column("name", sa.Text(), nullable=False),
        sa.Column("method", sa.Text(), nullable=False),
        sa.Column("likelihood", sa.Float(), nullable=False),
        sa.Column("exposure", sa.Float(), nullable=True),
        sa.Column("consequence", sa.Float(), nullable=True),
        sa.Column("severity", sa.Float(), nullable=True),
        sa.Column("controls", sa.Text(), nullable=True),
        sa.Column("color", sa.Text(), nullable=True),
        sa.Column(
            "geom",
            Geometry(
                geometry_type="MULTIPOLYGON",
                srid=4326,
                dimension=2,
                spatial_index=False,
                from_text="ST_GeomFromEWKT",
                name="geometry",
                nullable=False,
            ),
            nullable=False,
        ),
        sa.Column(
            "created_at",
            sa.DateTime(timezone=True),
            server_default=sa.text("now()"),
            nullable=False,
        ),
        sa.CheckConstraint(
            "(method = 'LEC' AND exposure IS NOT NULL AND consequence IS NOT NULL) OR (method = 'LS' AND severity IS NOT NULL)",
            name=op.f("ck_risk_units_method_inputs"),
        ),
        sa.CheckConstraint(
            "color IN ('red', 'orange', 'yellow', 'blue')", name=op.f("ck_risk_units_color")
        ),
        sa.CheckConstraint("method IN ('LEC', 'LS')", name=op.f("ck_risk_units_method")),
        sa.CheckConstraint("ST_IsValid(geom)", name=op.f("ck_risk_units_geom_valid")),
        sa.ForeignKeyConstraint(
            ["enterprise_id"],
            ["enterprises.id"],
            name=op.f("fk_risk_units_enterprise_id_enterprises"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_risk_units")),
    )
    op.create_geospatial_index(
        "idx_risk_units_geom",
        "risk_units",
        ["geom"],
        unique=False,
        postgresql_using="gist",
        postgresql_ops={},
    )
    op.create_index(
        op.f("ix_risk_units_enterprise_id"), "risk_units", ["enterprise_id"], unique=False
    )
    op.create_table(
        "score_events",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("enterprise_id", sa.Integer(), nullable=False),
        sa.Column("rule_set", sa.Text(), nullable=False),
        sa.Column("item_code", sa.Text(), nullable=False),
        sa.Column("points", sa.SmallInteger(), nullable=False),
        sa.Column("source", sa.Text(), nullable=False),
        sa.Column("occurred_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("note", sa.Text(), nullable=True),
        sa.Column("rectified", sa.Boolean(), server_default="false", nullable=False),
        sa.Column(
            "created_at",
            sa.DateTime(timezone=True),
            server_default=sa.text("now()"),
            nullable=False,
        ),
        sa.CheckConstraint("source IN ('auto', 'inspection')", name=op.f("ck_score_events_source")),
        sa.CheckConstraint("points BETWEEN 1 AND 12", name=op.f("ck_score_events_points")),
        sa.ForeignKeyConstraint(
            ["enterprise_id"],
            ["enterprises.id"],
            name=op.f("fk_score_events_enterprise_id_enterprises"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_score_events")),
    )
    op.create_index(
        op.f("ix_score_events_enterprise_id"), "score_events", ["enterprise_id"], unique=False
    )
    op.create_geospatial_table(
        "stops",
        sa.Column("id", sa.BigInteger(), nullable=False),
        sa.Column("vehicle_id", sa.Integer(), nullable=False),
        sa.Column("start_ts", sa.DateTime(timezone=True), nullable=False),
        sa.Column("end_ts", sa.DateTime(timezone=True), nullable=True),
        sa.Column("fix_count", sa.Integer(), nullable=False),
        sa.Column(
            "geom",
            Geometry(
                geometry_type="POINT",
                srid=4326,
                dimension=2,
                spatial_index=False,
                from_text="ST_GeomFromEWKT",
                name="geometry",
                nullable=False,
            ),
            nullable=False,
        ),
        sa.CheckConstraint(
            "end_ts IS NULL OR end_ts >= start_ts", name=op.f("ck_stops_time_order")
        ),
        sa.CheckConstraint("fix_count > 0", name=op.f("ck_stops_fix_count")),
        sa.ForeignKeyConstraint(
            ["vehicle_id"],
            ["vehicles.id"],
            name=op.f("fk_stops_vehicle_id_vehicles"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_stops")),
    )
    op.create_geospatial_index(
        "idx_stops_geom",
        "stops",
        ["geom"],
        unique=False,
        postgresql_using="gist",
        postgresql_ops={},
    )
    op.create_index("ix_stops_vehicle_start", "stops", ["vehicle_id", "start_ts"], unique=False)
    op.create_table(
        "vehicle_state",
        sa.Column("vehicle_id", sa.Integer(), nullable=False),
        sa.Column("state", sa.Text(), server_default="unknown", nullable=False),
        sa.Column("since", sa.DateTime(timezone=True), nullable=True),
        sa.Column("last_ts", sa.DateTime(timezone=True), nullable=True),
        sa.Column("last_lon", sa.Float(), nullable=True),
        sa.Column("last_lat", sa.Float(), nullable=True),
        sa.Column("last_speed_kmh", sa.Float(), nullable=True),
        sa.CheckConstraint(
            "state IN ('unknown', 'moving', 'stopped')", name=op.f("ck_vehicle_state_state")
        ),
        sa.ForeignKeyConstraint(
            ["vehicle_id"],
            ["vehicles.id"],
            name=op.f("fk_vehicle_state_vehicle_id_vehicles"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("vehicle_id", name=op.f("pk_vehicle_state")),
    )
    op.create_table(
        "hazard_source_substances",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("hazard_source_id", sa.Integer(), nullable=False),
        sa.Column("name", sa.Text(), nullable=False),
        sa.Column("cas", sa.Text(), nullable=True),
        sa.Column("q", sa.Float(), nullable=False),
        sa.Column("critical_q", sa.Float(), nullable=True),
        sa.Column("beta", sa.Float(), nullable=True),
        sa.Column("hazard_class", sa.Text(), nullable=True),
        sa.CheckConstraint(
            "cas ~ '^[0-9]{2,7}-[0-9]{2}-[0-9]$'",
            name=op.f("ck_hazard_source_substances_cas_format"),
        ),
        sa.CheckConstraint(
            "hazard_class ~ '^(J[1-5]|W1\\.[1-3]|W([1-4]|5\\.[1-4]|6\\.[12]|7\\.[12]|8|9\\.[12]|10|11)|toxic_gas|other)$'",
            name=op.f("ck_hazard_source_substances_hazard_class"),
        ),
        sa.CheckConstraint("beta > 0", name=op.f("ck_hazard_source_substances_beta_positive")),
        sa.CheckConstraint(
            "critical_q > 0", name=op.f("ck_hazard_source_substances_critical_q_positive")
        ),
        sa.CheckConstraint("q > 0", name=op.f("ck_hazard_source_substances_q_positive")),
        sa.ForeignKeyConstraint(
            ["hazard_source_id"],
            ["hazard_sources.id"],
            name=op.f("fk_hazard_source_substances_hazard_source_id_hazard_sources"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_hazard_source_substances")),
    )
    op.create_index(
        op.f("ix_hazard_source_substances_hazard_source_id"),
        "hazard_source_substances",
        ["hazard_source_id"],
        unique=False,
    )
    op.create_geospatial_table(
        "monitoring_points",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("code", sa.Text(), nullable=False),
        sa.Column("hazard_source_id", sa.Integer(), nullable=True),
        sa.Column("pipeline_id", sa.Integer(), nullable=True),
        sa.Column("kind", sa.Text(), nullable=False),
        sa.Column("substance", sa.Text(), nullable=True),
        sa.Column("unit", sa.Text(), nullable=False),
        sa.Column("level1", sa.Float(), nullable=True),
        sa.Column("level2", sa.Float(), nullable=True),
        sa.Column("limit_h", sa.Float(), nullable=True),
        sa.Column("limit_hh", sa.Float(), nullable=True),
        sa.Column("limit_l", sa.Float(), nullable=True),
        sa.Column("limit_ll", sa.Float(), nullable=True),
        sa.Column("sampling_interval_s", sa.Integer(), server_default="10", nullable=False),
        sa.Column(
            "geom",
            Geometry(
                geometry_type="POINT",
                srid=4326,
                dimension=2,
                spatial_index=False,
                from_text="ST_GeomFromEWKT",
                name="geometry",
                nullable=False,
            ),
            nullable=False,
        ),
        sa.Column(
            "created_at",
            sa.DateTime(timezone=True),
            server_default=sa.text("now()"),
            nullable=False,
        ),
        sa.CheckConstraint(
            "kind IN ('gas_flammable', 'gas_toxic', 'oxygen', 'temperature', 'pressure', 'level', 'flow', 'leak')",
            name=op.f("ck_monitoring_points_kind"),
        ),
        sa.CheckConstraint(
            "ST_X(geom) BETWEEN -180 AND 180 AND ST_Y(geom) BETWEEN -90 AND 90",
            name=op.f("ck_monitoring_points_geom_range"),
        ),
        sa.CheckConstraint(
            "hazard_source_id IS NOT NULL OR pipeline_id IS NOT NULL",
            name=op.f("ck_monitoring_points_has_parent"),
        ),
        sa.CheckConstraint("level1 <= level2", name=op.f("ck_monitoring_points_level_order")),
        sa.CheckConstraint("limit_h <= limit_hh", name=op.f("ck_monitoring_points_high_order")),
        sa.CheckConstraint("limit_l < limit_h", name=op.f("ck_monitoring_points_band_order")),
        sa.CheckConstraint("limit_ll <= limit_l", name=op.f("ck_monitoring_points_low_order")),
        sa.CheckConstraint(
            "sampling_interval_s > 0", name=op.f("ck_monitoring_points_sampling_interval")
        ),
        sa.ForeignKeyConstraint(
            ["hazard_source_id"],
            ["hazard_sources.id"],
            name=op.f("fk_monitoring_points_hazard_source_id_hazard_sources"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["pipeline_id"],
            ["pipelines.id"],
            name=op.f("fk_monitoring_points_pipeline_id_pipelines"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_monitoring_points")),
        sa.UniqueConstraint("code", name=op.f("uq_monitoring_points_code")),
    )
    op.create_geospatial_index(
        "idx_monitoring_points_geom",
        "monitoring_points",
        ["geom"],
        unique=False,
        postgresql_using="gist",
        postgresql_ops={},
    )
    op.create_index(
        op.f("ix_monitoring_points_hazard_source_id"),
        "monitoring_points",
        ["hazard_source_id"],
        unique=False,
    )
    op.create_index(
        op.f("ix_monitoring_points_pipeline_id"), "monitoring_points", ["pipeline_id"], unique=False
    )
    # Time-window scans across all vehicles / points (tracks, tiles, stats): BRIN is tiny and
    # fits append-mostly time series; per-vehicle reads use the primary key.
    op.execute("CREATE INDEX ix_positions_ts_brin ON positions USING brin (ts)")
    op.execute("CREATE INDEX ix_readings_ts_brin ON readings USING brin (ts)")


def downgrade() -> None:
    op.drop_index(op.f("ix_monitoring_points_pipeline_id"), table_name="monitoring_points")
    op.drop_index(op.f("ix_monitoring_points_hazard_source_id"), table_name="monitoring_points")
    op.drop_geospatial_index(
        "idx_monitoring_points_geom",
        table_name="monitoring_points",
        postgresql_using="gist",
        column_name="geom",
    )
    op.drop_geospatial_table("monitoring_points")
    op.drop_index(
        op.f("ix_hazard_source_substances_hazard_source_id"), table_name="hazard_source_substances"
    )
    op.drop_table("hazard_source_substances")
    op.drop_table("vehicle_state")
    op.drop_index("ix_stops_vehicle_start", table_name="stops")
    op.drop_geospatial_index(
        "idx_stops_geom", table_name="stops", postgresql_using="gist", column_name="geom"
    )
    op.drop_geospatial_table("stops")
    op.drop_index(op.f("ix_score_events_enterprise_id"), table_name="score_events")
    op.drop_table("score_events")
    op.drop_index(op.f("ix_risk_units_enterprise_id"), table_name="risk_units")
    op.drop_geospatial_index(
        "idx_risk_units_geom", table_name="risk_units", postgresql_using="gist", column_name="geom"
    )
    op.drop_geospatial_table("risk_units")
    op.drop_index(op.f("ix_hidden_dangers_enterprise_id"), table_name="hidden_dangers")
    op.drop_table("hidden_dangers")
    op.drop_index(op.f("ix_hazard_sources_enterprise_id"), table_name="hazard_sources")
    op.drop_geospatial_index(
        "idx_hazard_sources_geom",
        table_name="hazard_sources",
        postgresql_using="gist",
        column_name="geom",
    )
    op.drop_geospatial_table("hazard_sources")
    op.drop_index("ix_alerts_status_created", table_name="alerts")
    op.drop_index(op.f("ix_alerts_district"), table_name="alerts")
    op.drop_geospatial_index(
        "idx_alerts_geom", table_name="alerts", postgresql_using="gist", column_name="geom"
    )
    op.drop_geospatial_table("alerts")
    op.drop_index(op.f("ix_zones_kind"), table_name="zones")
    op.drop_index(op.f("ix_zones_district"), table_name="zones")
    op.drop_geospatial_index(
        "idx_zones_geom", table_name="zones", postgresql_using="gist", column_name="geom"
    )
    op.drop_geospatial_table("zones")
    op.drop_index(op.f("ix_vehicles_district"), table_name="vehicles")
    op.drop_index(op.f("ix_vehicles_carrier"), table_name="vehicles")
    op.drop_table("vehicles")
    op.drop_index(op.f("ix_pipelines_district"), table_name="pipelines")
    op.drop_geospatial_index(
        "idx_pipelines_geom", table_name="pipelines", postgresql_using="gist", column_name="geom"
    )
    op.drop_geospatial_table("pipelines")
    op.drop_index(op.f("ix_enterprises_district"), table_name="enterprises")
    op.drop_geospatial_index(
        "idx_enterprises_site_geom",
        table_name="enterprises",
        postgresql_using="gist",
        column_name="site_geom",
    )
    op.drop_geospatial_index(
        "idx_enterprises_geom",
        table_name="enterprises",
        postgresql_using="gist",
        column_name="geom",
    )
    op.drop_geospatial_table("enterprises")
    op.drop_geospatial_index(
        "idx_roads_geom", table_name="roads", postgresql_using="gist", column_name="geom"
    )
    op.drop_geospatial_table("roads")
    op.drop_table("readings")
    op.drop_table("positions")
    op.drop_index(op.f("ix_position_rejects_vehicle_id"), table_name="position_rejects")
    op.drop_table("position_rejects")
    op.drop_geospatial_index(
        "idx_districts_geom", table_name="districts", postgresql_using="gist", column_name="geom"
    )
    op.drop_geospatial_table("districts")
