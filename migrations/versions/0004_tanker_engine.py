"""tanker engine: detector state, stop zones, alert lifecycle columns, planned routes

Detector state lives in vehicle_state so a restart resumes exactly (issue 6); stops are
unique per (vehicle, start) so a replay after late fixes rewrites them in place.

Revision ID: 0004
Revises: 0003
Create Date: 2026-11-26 11:20:45.237204
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from geoalchemy2 import Geometry

revision: str = "0004"
down_revision: str | None = "0003"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_geospatial_table(
        "vehicle_routes",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("vehicle_id", sa.Integer(), nullable=False),
        sa.Column("name", sa.Text(), nullable=True),
        sa.Column("valid_from", sa.DateTime(timezone=True), nullable=False),
        sa.Column("valid_to", sa.DateTime(timezone=True), nullable=False),
        sa.Column("corridor_m", sa.Float(), server_default="500", nullable=False),
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
            "ST_IsValid(geom) AND ST_NPoints(geom) >= 2", name=op.f("ck_vehicle_routes_geom_valid")
        ),
        sa.CheckConstraint(
            "corridor_m > 0 AND corridor_m <= 50000", name=op.f("ck_vehicle_routes_corridor_m")
        ),
        sa.CheckConstraint("valid_to > valid_from", name=op.f("ck_vehicle_routes_valid_order")),
        sa.ForeignKeyConstraint(
            ["vehicle_id"],
            ["vehicles.id"],
            name=op.f("fk_vehicle_routes_vehicle_id_vehicles"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_vehicle_routes")),
    )
    op.create_geospatial_index(
        "idx_vehicle_routes_geom",
        "vehicle_routes",
        ["geom"],
        unique=False,
        postgresql_using="gist",
        postgresql_ops={},
    )
    op.create_index(
        op.f("ix_vehicle_routes_vehicle_id"), "vehicle_routes", ["vehicle_id"], unique=False
    )
    op.add_column("alerts", sa.Column("enterprise_id", sa.Integer(), nullable=True))
    op.add_column("alerts", sa.Column("stop_id", sa.BigInteger(), nullable=True))
    op.add_column(
        "alerts", sa.Column("active", sa.Boolean(), server_default="true", nullable=False)
    )
    op.add_column("alerts", sa.Column("ack_deadline", sa.DateTime(timezone=True), nullable=True))
    op.add_column(
        "alerts", sa.Column("dispose_deadline", sa.DateTime(timezone=True), nullable=True)
    )
    op.add_column(
        "alerts",
        sa.Column("escalation_level", sa.SmallInteger(), server_default="0", nullable=False),
    )
    op.add_column("alerts", sa.Column("escalated_at", sa.DateTime(timezone=True), nullable=True))
    op.add_column("alerts", sa.Column("revision", sa.Integer(), server_default="1", nullable=False))
    op.create_check_constraint(
        op.f("ck_alerts_rule"),
        "alerts",
        "rule IN ('illegal_parking', 'forbidden_zone_parking', 'overspeed', 'corridor_deviation')",
    )
    op.create_index(op.f("ix_alerts_enterprise_id"), "alerts", ["enterprise_id"], unique=False)
    op.create_index(
        "ix_alerts_vehicle_rule_start",
        "alerts",
        ["vehicle_id", "rule", "episode_start"],
        unique=False,
    )
    op.create_foreign_key(
        op.f("fk_alerts_stop_id_stops"), "alerts", "stops", ["stop_id"], ["id"], ondelete="SET NULL"
    )
    op.create_foreign_key(
        op.f("fk_alerts_enterprise_id_enterprises"),
        "alerts",
        "enterprises",
        ["enterprise_id"],
        ["id"],
        ondelete="SET NULL",
    )
    op.add_column("stops", sa.Column("duration_s", sa.Float(), server_default="0", nullable=False))
    op.add_column(
        "stops", sa.Column("is_open", sa.Boolean(), server_default="false", nullable=False)
    )
    op.add_column("stops", sa.Column("zone_id", sa.Integer(), nullable=True))
    op.create_unique_constraint(
        op.f("uq_stops_vehicle_id_start_ts"), "stops", ["vehicle_id", "start_ts"]
    )
    op.create_foreign_key(
        op.f("fk_stops_zone_id_zones"), "stops", "zones", ["zone_id"], ["id"], ondelete="SET NULL"
    )
    op.add_column(
        "vehicle_state", sa.Column("anchor_ts", sa.DateTime(timezone=True), nullable=True)
    )
    op.add_column("vehicle_state", sa.Column("anchor_lon", sa.Float(), nullable=True))
    op.add_column("vehicle_state", sa.Column("anchor_lat", sa.Float(), nullable=True))
    op.add_column(
        "vehicle_state", sa.Column("cluster_n", sa.Integer(), server_default="0", nullable=False)
    )
    op.add_column(
        "vehicle_state",
        sa.Column("cluster_sum_lon", sa.Float(), server_default="0", nullable=False),
    )
    op.add_column(
        "vehicle_state",
        sa.Column("cluster_sum_lat", sa.Float(), server_default="0", nullable=False),
    )
    op.add_column(
        "vehicle_state", sa.Column("cluster_last_ts", sa.DateTime(timezone=True), nullable=True)
    )
    op.add_column(
        "vehicle_state", sa.Column("over_start_ts", sa.DateTime(timezone=True), nullable=True)
    )
    op.add_column(
        "vehicle_state", sa.Column("over_last_ts", sa.DateTime(timezone=True), nullable=True)
    )
    op.add_column("vehicle_state", sa.Column("over_peak", sa.Float(), nullable=True))
    op.add_column("vehicle_state", sa.Column("over_limit", sa.Float(), nullable=True))
    op.add_column("vehicle_state", sa.Column("over_lon", sa.Float(), nullable=True))
    op.add_column("vehicle_state", sa.Column("over_lat", sa.Float(), nullable=True))
    op.add_column(
        "vehicle_state", sa.Column("dev_start_ts", sa.DateTime(timezone=True), nullable=True)
    )
    op.add_column(
        "vehicle_state", sa.Column("dev_last_ts", sa.DateTime(timezone=True), nullable=True)
    )
    op.add_column("vehicle_state", sa.Column("dev_peak", sa.Float(), nullable=True))
    op.add_column("vehicle_state", sa.Column("dev_limit", sa.Float(), nullable=True))
    op.add_column("vehicle_state", sa.Column("dev_lon", sa.Float(), nullable=True))
    op.add_column("vehicle_state", sa.Column("dev_lat", sa.Float(), nullable=True))
    op.add_column(
        "vehicle_state", sa.Column("updated_at", sa.DateTime(timezone=True), nullable=True)
    )


def downgrade() -> None:
    op.drop_column("vehicle_state", "updated_at")
    op.drop_column("vehicle_state", "dev_lat")
    op.drop_column("vehicle_state", "dev_lon")
    op.drop_column("vehicle_state", "dev_limit")
    op.drop_column("vehicle_state", "dev_peak")
    op.drop_column("vehicle_state", "dev_last_ts")
    op.drop_column("vehicle_state", "dev_start_ts")
    op.drop_column("vehicle_state", "over_lat")
    op.drop_column("vehicle_state", "over_lon")
    op.drop_column("vehicle_state", "over_limit")
    op.drop_column("vehicle_state", "over_peak")
    op.drop_column("vehicle_state", "over_last_ts")
    op.drop_column("vehicle_state", "over_start_ts")
    op.drop_column("vehicle_state", "cluster_last_ts")
    op.drop_column("vehicle_state", "cluster_sum_lat")
    op.drop_column("vehicle_state", "cluster_sum_lon")
    op.drop_column("vehicle_state", "cluster_n")
    op.drop_column("vehicle_state", "anchor_lat")
    op.drop_column("vehicle_state", "anchor_lon")
    op.drop_column("vehicle_state", "anchor_ts")
    op.drop_constraint(op.f("fk_stops_zone_id_zones"), "stops", type_="foreignkey")
    op.drop_constraint(op.f("uq_stops_vehicle_id_start_ts"), "stops", type_="unique")
    op.drop_column("stops", "zone_id")
    op.drop_column("stops", "is_open")
    op.drop_column("stops", "duration_s")
    op.drop_constraint(op.f("fk_alerts_enterprise_id_enterprises"), "alerts", type_="foreignkey")
    op.drop_constraint(op.f("fk_alerts_stop_id_stops"), "alerts", type_="foreignkey")
    op.drop_index("ix_alerts_vehicle_rule_start", table_name="alerts")
    op.drop_index(op.f("ix_alerts_enterprise_id"), table_name="alerts")
    op.drop_constraint(op.f("ck_alerts_rule"), "alerts", type_="check")
    op.drop_column("alerts", "revision")
    op.drop_column("alerts", "escalated_at")
    op.drop_column("alerts", "escalation_level")
    op.drop_column("alerts", "dispose_deadline")
    op.drop_column("alerts", "ack_deadline")
    op.drop_column("alerts", "active")
    op.drop_column("alerts", "stop_id")
    op.drop_column("alerts", "enterprise_id")
    op.drop_index(op.f("ix_vehicle_routes_vehicle_id"), table_name="vehicle_routes")
    op.drop_geospatial_index(
        "idx_vehicle_routes_geom",
        table_name="vehicle_routes",
        postgresql_using="gist",
        column_name="geom",
    )
    op.drop_geospatial_table("vehicle_routes")
