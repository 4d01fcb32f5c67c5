"""risk engine tables

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-26 10:34:32.760480
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from geoalchemy2 import Geometry
from sqlalchemy.dialects import postgresql

revision: str = "0002"
down_revision: str | None = "0001"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_geospatial_table(
        "consequence_zones",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("source_kind", sa.Text(), nullable=False),
        sa.Column("source_id", sa.Integer(), nullable=False),
        sa.Column("color", sa.Text(), nullable=False),
        sa.Column("radius_m", sa.Float(), nullable=False),
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
        sa.CheckConstraint(
            "color IN ('red', 'orange', 'yellow', 'blue')", name=op.f("ck_consequence_zones_color")
        ),
        sa.CheckConstraint(
            "source_kind IN ('hazard_source', 'pipeline_segment')",
            name=op.f("ck_consequence_zones_kind"),
        ),
        sa.CheckConstraint("radius_m > 0", name=op.f("ck_consequence_zones_radius_m")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_consequence_zones")),
    )
    op.create_geospatial_index(
        "idx_consequence_zones_geom",
        "consequence_zones",
        ["geom"],
        unique=False,
        postgresql_using="gist",
        postgresql_ops={},
    )
    op.create_index(
        "ix_consequence_zones_source",
        "consequence_zones",
        ["source_kind", "source_id"],
        unique=False,
    )
    op.create_geospatial_table(
        "h3_cells",
        sa.Column("layer", sa.Text(), nullable=False),
        sa.Column("res", sa.SmallInteger(), nullable=False),
        sa.Column("h3", sa.Text(), nullable=False),
        sa.Column("count", sa.Integer(), nullable=False),
        sa.Column("color", sa.Text(), nullable=True),
        sa.Column("score", sa.Float(), server_default="0", nullable=False),
        sa.Column(
            "geom",
            Geometry(
                geometry_type="POLYGON",
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
            "color IN ('red', 'orange', 'yellow', 'blue', 'grey')", name=op.f("ck_h3_cells_color")
        ),
        sa.CheckConstraint("count >= 0", name=op.f("ck_h3_cells_count")),
        sa.CheckConstraint("res BETWEEN 0 AND 15", name=op.f("ck_h3_cells_res")),
        sa.PrimaryKeyConstraint("layer", "res", "h3", name=op.f("pk_h3_cells")),
    )
    op.create_geospatial_index(
        "idx_h3_cells_geom",
        "h3_cells",
        ["geom"],
        unique=False,
        postgresql_using="gist",
        postgresql_ops={},
    )
    op.create_geospatial_table(
        "overlay_zones",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("color", sa.Text(), nullable=False),
        sa.Column("sources", postgresql.JSONB(astext_type=sa.Text()), nullable=False),
        sa.Column("area_m2", sa.Float(), nullable=True),
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
        sa.CheckConstraint(
            "color IN ('red', 'orange', 'yellow', 'blue')", name=op.f("ck_overlay_zones_color")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_overlay_zones")),
    )
    op.create_geospatial_index(
        "idx_overlay_zones_geom",
        "overlay_zones",
        ["geom"],
        unique=False,
        postgresql_using="gist",
        postgresql_ops={},
    )
    op.create_index(op.f("ix_overlay_zones_color"), "overlay_zones", ["color"], unique=False)
    op.create_geospatial_table(
        "pipeline_segments",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("pipeline_id", sa.Integer(), nullable=False),
        sa.Column("seq", sa.Integer(), nullable=False),
        sa.Column("length_m", sa.Float(), nullable=False),
        sa.Column("likelihood", sa.SmallInteger(), nullable=True),
        sa.Column("severity", sa.SmallInteger(), nullable=True),
        sa.Column("sensitive_target", sa.Text(), nullable=True),
        sa.Column("color", sa.Text(), nullable=True),
        sa.Column("reasons", postgresql.JSONB(astext_type=sa.Text()), nullable=True),
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
            "color IN ('red', 'orange', 'yellow', 'blue')", name=op.f("ck_pipeline_segments_color")
        ),
        sa.CheckConstraint(
            "length_m >= 0 AND length_m <= 500.5", name=op.f("ck_pipeline_segments_length_m")
        ),
        sa.ForeignKeyConstraint(
            ["pipeline_id"],
            ["pipelines.id"],
            name=op.f("fk_pipeline_segments_pipeline_id_pipelines"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_pipeline_segments")),
        sa.UniqueConstraint(
            "pipeline_id", "seq", name=op.f("uq_pipeline_segments_pipeline_id_seq")
        ),
    )
    op.create_geospatial_index(
        "idx_pipeline_segments_geom",
        "pipeline_segments",
        ["geom"],
        unique=False,
        postgresql_using="gist",
        postgresql_ops={},
    )
    op.create_index(
        op.f("ix_pipeline_segments_pipeline_id"), "pipeline_segments", ["pipeline_id"], unique=False
    )
    op.create_table(
        "alarms",
        sa.Column("id", sa.BigInteger(), nullable=False),
        sa.Column("point_id", sa.Integer(), nullable=False),
        sa.Column("level", sa.SmallInteger(), nullable=False),
        sa.Column("color", sa.Text(), nullable=False),
        sa.Column("raised_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("ack_deadline", sa.DateTime(timezone=True), nullable=True),
        sa.Column("acknowledged_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("disposed_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("cleared_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("peak_value", sa.Float(), nullable=True),
        sa.CheckConstraint(
            "color IN ('red', 'orange', 'yellow', 'blue', 'grey')", name=op.f("ck_alarms_color")
        ),
        sa.CheckConstraint("level IN (1, 2)", name=op.f("ck_alarms_level")),
        sa.ForeignKeyConstraint(
            ["point_id"],
            ["monitoring_points.id"],
            name=op.f("fk_alarms_point_id_monitoring_points"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_alarms")),
    )
    op.create_index(
        "ix_alarms_open",
        "alarms",
        ["point_id"],
        unique=False,
        postgresql_where="cleared_at IS NULL",
    )
    op.create_index(op.f("ix_alarms_point_id"), "alarms", ["point_id"], unique=False)
    op.add_column("enterprises", sa.Column("inherent_color", sa.Text(), nullable=True))
    op.add_column("enterprises", sa.Column("dynamic_color", sa.Text(), nullable=True))
    op.add_column(
        "enterprises",
        sa.Column("risk_reasons", postgresql.JSONB(astext_type=sa.Text()), nullable=True),
    )
    op.add_column(
        "enterprises", sa.Column("risk_updated_at", sa.DateTime(timezone=True), nullable=True)
    )
    op.create_index(
        op.f("ix_enterprises_dynamic_color"), "enterprises", ["dynamic_color"], unique=False
    )
    op.create_index(
        op.f("ix_enterprises_inherent_color"), "enterprises", ["inherent_color"], unique=False
    )
    op.add_column("hazard_sources", sa.Column("s_value", sa.Float(), nullable=True))
    op.add_column("hazard_sources", sa.Column("alpha", sa.Float(), nullable=True))
    op.add_column("hazard_sources", sa.Column("r_value", sa.Float(), nullable=True))
    op.add_column("hazard_sources", sa.Column("grade", sa.SmallInteger(), nullable=True))
    op.add_column("hazard_sources", sa.Column("color", sa.Text(), nullable=True))
    op.add_column("hazard_sources", sa.Column("population_used", sa.Integer(), nullable=True))
    op.add_column("hazard_sources", sa.Column("population_source", sa.Text(), nullable=True))
    op.add_column("monitoring_points", sa.Column("live_color", sa.Text(), nullable=True))
    op.add_column("vehicles", sa.Column("enterprise_id", sa.Integer(), nullable=True))
    colors = "IN ('red', 'orange', 'yellow', 'blue')"
    op.create_check_constraint(
        "ck_enterprises_inherent_color", "enterprises", f"inherent_color {colors}"
    )
    op.create_check_constraint(
        "ck_enterprises_dynamic_color", "enterprises", f"dynamic_color {colors}"
    )
    op.create_check_constraint("ck_hazard_sources_grade", "hazard_sources", "grade BETWEEN 1 AND 4")
    op.create_check_constraint("ck_hazard_sources_color", "hazard_sources", f"color {colors}")
    op.create_check_constraint(
        "ck_monitoring_points_live_color",
        "monitoring_points",
        "live_color IN ('red', 'orange', 'yellow', 'blue', 'grey')",
    )
    op.create_index(op.f("ix_vehicles_enterprise_id"), "vehicles", ["enterprise_id"], unique=False)
    op.create_foreign_key(
        op.f("fk_vehicles_enterprise_id_enterprises"),
        "vehicles",
        "enterprises",
        ["enterprise_id"],
        ["id"],
        ondelete="SET NULL",
    )


def downgrade() -> None:
    op.drop_constraint(
        op.f("fk_vehicles_enterprise_id_enterprises"), "vehicles", type_="foreignkey"
    )
    op.drop_index(op.f("ix_vehicles_enterprise_id"), table_name="vehicles")
    op.drop_column("vehicles", "enterprise_id")
    op.drop_column("monitoring_points", "live_color")
    op.drop_column("hazard_sources", "population_source")
    op.drop_column("hazard_sources", "population_used")
    op.drop_column("hazard_sources", "color")
    op.drop_column("hazard_sources", "grade")
    op.drop_column("hazard_sources", "r_value")
    op.drop_column("hazard_sources", "alpha")
    op.drop_column("hazard_sources", "s_value")
    op.drop_index(op.f("ix_enterprises_inherent_color"), table_name="enterprises")
    op.drop_index(op.f("ix_enterprises_dynamic_color"), table_name="enterprises")
    op.drop_column("enterprises", "risk_updated_at")
    op.drop_column("enterprises", "risk_reasons")
    op.drop_column("enterprises", "dynamic_color")
    op.drop_column("enterprises", "inherent_color")
    op.drop_index(op.f("ix_alarms_point_id"), table_name="alarms")
    op.drop_index("ix_alarms_open", table_name="alarms", postgresql_where="cleared_at IS NULL")
    op.drop_table("alarms")
    op.drop_index(op.f("ix_pipeline_segments_pipeline_id"), table_name="pipeline_segments")
    op.drop_geospatial_index(
        "idx_pipeline_segments_geom",
        table_name="pipeline_segments",
        postgresql_using="gist",
        column_name="geom",
    )
    op.drop_geospatial_table("pipeline_segments")
    op.drop_index(op.f("ix_overlay_zones_color"), table_name="overlay_zones")
    op.drop_geospatial_index(
        "idx_overlay_zones_geom",
        table_name="overlay_zones",
        postgresql_using="gist",
        column_name="geom",
    )
    op.drop_geospatial_table("overlay_zones")
    op.drop_geospatial_index(
        "idx_h3_cells_geom", table_name="h3_cells", postgresql_using="gist", column_name="geom"
    )
    op.drop_geospatial_table("h3_cells")
    op.drop_index("ix_consequence_zones_source", table_name="consequence_zones")
    op.drop_geospatial_index(
        "idx_consequence_zones_geom",
        table_name="consequence_zones",
        postgresql_using="gist",
        column_name="geom",
    )
    op.drop_geospatial_table("consequence_zones")
