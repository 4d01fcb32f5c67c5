"""parties, qualifications and electronic waybills of the hazmat transport chain

Issue 14 items 1–2 (docs/transport.md):
- ``carriers``: an enterprise licensed to carry dangerous goods by road — its road transport
  licence number and expiry, one row per enterprise (an enterprise is a carrier exactly when it
  has this row; everything else names the carrier by its enterprise id).
- ``vehicles``: tank type and volume, road transport permit number and expiry, tank inspection
  expiry (``enterprise_id`` is already the carrier's id; the text ``carrier`` stays).
- ``crew_members``: drivers and escorts with their qualification certificate and expiry; the
  id-card number is personal data (redacted in REST for roles that must not read it).
- ``waybills``: the electronic waybill and its lifecycle state; ``corridor`` is derived from the
  planned route (a line buffered by ``corridor_m``, or the polygon given).
- ``waybill_events``: loading / unloading events, refused loadings with their failed checks,
  state changes.
Carriers, crew members, waybills and their events are audited by the triggers of migration 0008
(vehicles already are, since 0012); the three writable tables carry 0012's ``version``.

Revision ID: 0017
Revises: 0016
Create Date: 2026-12-05 07:30:43.248806
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from geoalchemy2 import Geometry
from sqlalchemy.dialects import postgresql

from layers.core import vocab
from layers.core.vocab import sql_in

revision: str = "0017"
down_revision: str | None = "0016"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


#: Table → (columns whose change makes an UPDATE worth auditing, inserts/deletes audited too),
#: as in migration 0008; events are written once and never updated.
AUDITED: dict[str, tuple[tuple[str, ...], bool]] = {
    "carriers": ((), True),
    "crew_members": ((), True),
    "waybills": ((), True),
    "waybill_events": ((), True),
}


def _triggers(table: str, watched: tuple[str, ...], inserts_and_deletes: bool) -> list[str]:
    """Migration 0008's statement-level audit triggers (its ``georisk_audit`` function)."""
    args = ", ".join(f"'{c}'" for c in watched)
    out = [
        f"CREATE TRIGGER audit_{table}_update AFTER UPDATE ON {table}"
        " REFERENCING OLD TABLE AS old_rows NEW TABLE AS new_rows"
        f" FOR EACH STATEMENT EXECUTE FUNCTION georisk_audit({args})"
    ]
    if inserts_and_deletes:
        out += [
            f"CREATE TRIGGER audit_{table}_insert AFTER INSERT ON {table}"
            " REFERENCING NEW TABLE AS new_rows"
            " FOR EACH STATEMENT EXECUTE FUNCTION georisk_audit()",
            f"CREATE TRIGGER audit_{table}_delete AFTER DELETE ON {table}"
            " REFERENCING OLD TABLE AS old_rows"
            " FOR EACH STATEMENT EXECUTE FUNCTION georisk_audit()",
        ]
    return out


def upgrade() -> None:
    op.create_table(
        "carriers",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("enterprise_id", sa.Integer(), nullable=False),
        sa.Column("licence_no", sa.Text(), nullable=False),
        sa.Column("licence_expiry", sa.Date(), nullable=False),
        sa.Column(
            "created_at",
            sa.DateTime(timezone=True),
            server_default=sa.text("now()"),
            nullable=False,
        ),
        sa.CheckConstraint(
            "length(btrim(licence_no)) > 0", name=op.f("ck_carriers_licence_no_not_blank")
        ),
        sa.ForeignKeyConstraint(
            ["enterprise_id"],
            ["enterprises.id"],
            name=op.f("fk_carriers_enterprise_id_enterprises"),
            ondelete="CASCADE",
        ),
        sa.Column("version", sa.Integer(), server_default="1", nullable=False),
        sa.CheckConstraint("version >= 1", name=op.f("ck_carriers_version_positive")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_carriers")),
        sa.UniqueConstraint("enterprise_id", name=op.f("uq_carriers_enterprise_id")),
        sa.UniqueConstraint("licence_no", name=op.f("uq_carriers_licence_no")),
    )
    op.create_table(
        "crew_members",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("carrier_id", sa.Integer(), nullable=False),
        sa.Column("name", sa.Text(), nullable=False),
        sa.Column("id_card_no", sa.Text(), nullable=False),
        sa.Column("role", sa.Text(), nullable=False),
        sa.Column("certificate_no", sa.Text(), nullable=False),
        sa.Column("certificate_expiry", sa.Date(), nullable=False),
        sa.Column("phone", sa.Text(), nullable=True),
        sa.Column(
            "created_at",
            sa.DateTime(timezone=True),
            server_default=sa.text("now()"),
            nullable=False,
        ),
        sa.CheckConstraint(
            "id_card_no ~ '^[0-9]{17}[0-9X]$'", name=op.f("ck_crew_members_id_card_no")
        ),
        sa.CheckConstraint("role IN ('driver', 'escort')", name=op.f("ck_crew_members_role")),
        sa.CheckConstraint(
            "length(btrim(certificate_no)) > 0",
            name=op.f("ck_crew_members_certificate_no_not_blank"),
        ),
        sa.CheckConstraint("length(btrim(name)) > 0", name=op.f("ck_crew_members_name_not_blank")),
        sa.ForeignKeyConstraint(
            ["carrier_id"],
            ["enterprises.id"],
            name=op.f("fk_crew_members_carrier_id_enterprises"),
            ondelete="CASCADE",
        ),
        sa.Column("version", sa.Integer(), server_default="1", nullable=False),
        sa.CheckConstraint("version >= 1", name=op.f("ck_crew_members_version_positive")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_crew_members")),
        sa.UniqueConstraint(
            "role", "certificate_no", name=op.f("uq_crew_members_role_certificate_no")
        ),
        sa.UniqueConstraint("role", "id_card_no", name=op.f("uq_crew_members_role_id_card_no")),
    )
    op.create_index(
        op.f("ix_crew_members_carrier_id"), "crew_members", ["carrier_id"], unique=False
    )
    op.create_geospatial_table(
        "waybills",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("code", sa.Text(), nullable=False),
        sa.Column("state", sa.Text(), server_default="planned", nullable=False),
        sa.Column(
            "state_changed_at",
            sa.DateTime(timezone=True),
            server_default=sa.text("now()"),
            nullable=False,
        ),
        sa.Column("shipper_id", sa.Integer(), nullable=False),
        sa.Column("carrier_id", sa.Integer(), nullable=False),
        sa.Column("consignee_id", sa.Integer(), nullable=False),
        sa.Column("loading_party_id", sa.Integer(), nullable=False),
        sa.Column("substance_name", sa.Text(), nullable=False),
        sa.Column("un_number", sa.Text(), nullable=False),
        sa.Column("hazmat_class", sa.Text(), nullable=False),
        sa.Column("quantity_t", sa.Float(), nullable=False),
        sa.Column("vehicle_id", sa.Integer(), nullable=False),
        sa.Column("driver_id", sa.Integer(), nullable=False),
        sa.Column("escort_id", sa.Integer(), nullable=True),
        sa.Column("origin_id", sa.Integer(), nullable=True),
        sa.Column("destination_id", sa.Integer(), nullable=True),
        sa.Column(
            "origin_geom",
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
            "destination_geom",
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
            "geom",
            Geometry(
                srid=4326,
                dimension=2,
                spatial_index=False,
                from_text="ST_GeomFromEWKT",
                name="geometry",
                nullable=False,
            ),
            nullable=False,
        ),
        sa.Column("corridor_m", sa.Float(), nullable=True),
        sa.Column(
            "corridor",
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
        sa.Column("planned_departure", sa.DateTime(timezone=True), nullable=False),
        sa.Column("planned_arrival", sa.DateTime(timezone=True), nullable=False),
        sa.Column(
            "created_at",
            sa.DateTime(timezone=True),
            server_default=sa.text("now()"),
            nullable=False,
        ),
        sa.CheckConstraint(
            "GeometryType(geom) IN ('LINESTRING', 'POLYGON', 'MULTIPOLYGON')",
            name=op.f("ck_waybills_geom_kind"),
        ),
        sa.CheckConstraint(
            "hazmat_class IN ('1', '1.1', '1.2', '1.3', '1.4', '1.5', '1.6', '2', '2.1', '2.2', '2.3', '3', '4', '4.1', '4.2', '4.3', '5', '5.1', '5.2', '6', '6.1', '6.2', '7', '8', '9')",
            name=op.f("ck_waybills_hazmat_class"),
        ),
        sa.CheckConstraint(
            "state IN ('planned', 'loading', 'in_transit', 'delivered', 'cancelled')",
            name=op.f("ck_waybills_state"),
        ),
        sa.CheckConstraint("un_number ~ '^[0-9]{4}$'", name=op.f("ck_waybills_un_number")),
        sa.CheckConstraint("ST_IsValid(corridor)", name=op.f("ck_waybills_corridor_valid")),
        sa.CheckConstraint(
            "corridor_m > 0 AND corridor_m <= 10000",
            name=op.f("ck_waybills_corridor_m"),
        ),
        sa.CheckConstraint(
            "escort_id IS NULL OR escort_id <> driver_id",
            name=op.f("ck_waybills_escort_not_driver"),
        ),
        sa.CheckConstraint("length(btrim(code)) > 0", name=op.f("ck_waybills_code_not_blank")),
        sa.CheckConstraint(
            "length(btrim(substance_name)) > 0", name=op.f("ck_waybills_substance_name_not_blank")
        ),
        sa.CheckConstraint(
            "planned_arrival > planned_departure", name=op.f("ck_waybills_time_order")
        ),
        sa.CheckConstraint(
            "quantity_t > 0 AND quantity_t <= 100", name=op.f("ck_waybills_quantity_t")
        ),
        sa.ForeignKeyConstraint(
            ["carrier_id"], ["enterprises.id"], name=op.f("fk_waybills_carrier_id_enterprises")
        ),
        sa.ForeignKeyConstraint(
            ["consignee_id"], ["enterprises.id"], name=op.f("fk_waybills_consignee_id_enterprises")
        ),
        sa.ForeignKeyConstraint(
            ["destination_id"],
            ["enterprises.id"],
            name=op.f("fk_waybills_destination_id_enterprises"),
        ),
        sa.ForeignKeyConstraint(
            ["driver_id"], ["crew_members.id"], name=op.f("fk_waybills_driver_id_crew_members")
        ),
        sa.ForeignKeyConstraint(
            ["escort_id"], ["crew_members.id"], name=op.f("fk_waybills_escort_id_crew_members")
        ),
        sa.ForeignKeyConstraint(
            ["loading_party_id"],
            ["enterprises.id"],
            name=op.f("fk_waybills_loading_party_id_enterprises"),
        ),
        sa.ForeignKeyConstraint(
            ["origin_id"], ["enterprises.id"], name=op.f("fk_waybills_origin_id_enterprises")
        ),
        sa.ForeignKeyConstraint(
            ["shipper_id"], ["enterprises.id"], name=op.f("fk_waybills_shipper_id_enterprises")
        ),
        sa.ForeignKeyConstraint(
            ["vehicle_id"], ["vehicles.id"], name=op.f("fk_waybills_vehicle_id_vehicles")
        ),
        sa.Column("version", sa.Integer(), server_default="1", nullable=False),
        sa.CheckConstraint("version >= 1", name=op.f("ck_waybills_version_positive")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_waybills")),
        sa.UniqueConstraint("code", name=op.f("uq_waybills_code")),
    )
    op.create_geospatial_index(
        "idx_waybills_corridor",
        "waybills",
        ["corridor"],
        unique=False,
        postgresql_using="gist",
        postgresql_ops={},
    )
    op.create_geospatial_index(
        "idx_waybills_destination_geom",
        "waybills",
        ["destination_geom"],
        unique=False,
        postgresql_using="gist",
        postgresql_ops={},
    )
    op.create_geospatial_index(
        "idx_waybills_geom",
        "waybills",
        ["geom"],
        unique=False,
        postgresql_using="gist",
        postgresql_ops={},
    )
    op.create_geospatial_index(
        "idx_waybills_origin_geom",
        "waybills",
        ["origin_geom"],
        unique=False,
        postgresql_using="gist",
        postgresql_ops={},
    )
    op.create_index(op.f("ix_waybills_carrier_id"), "waybills", ["carrier_id"], unique=False)
    op.create_index(
        op.f("ix_waybills_planned_departure"), "waybills", ["planned_departure"], unique=False
    )
    op.create_index(op.f("ix_waybills_state"), "waybills", ["state"], unique=False)
    op.create_index(op.f("ix_waybills_vehicle_id"), "waybills", ["vehicle_id"], unique=False)
    op.create_geospatial_table(
        "waybill_events",
        sa.Column("id", sa.BigInteger(), nullable=False),
        sa.Column("waybill_id", sa.Integer(), nullable=False),
        sa.Column("kind", sa.Text(), nullable=False),
        sa.Column("from_state", sa.Text(), nullable=False),
        sa.Column("to_state", sa.Text(), nullable=False),
        sa.Column("at", sa.DateTime(timezone=True), nullable=False),
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
        sa.Column("source", sa.Text(), nullable=False),
        sa.Column("actor", sa.Text(), nullable=False),
        sa.Column("failures", postgresql.JSONB(astext_type=sa.Text()), nullable=True),
        sa.Column("note", sa.Text(), nullable=True),
        sa.Column(
            "created_at",
            sa.DateTime(timezone=True),
            server_default=sa.text("now()"),
            nullable=False,
        ),
        sa.CheckConstraint(
            "from_state IN ('planned', 'loading', 'in_transit', 'delivered', 'cancelled')",
            name=op.f("ck_waybill_events_from_state"),
        ),
        sa.CheckConstraint(
            "kind IN ('loading', 'loaded', 'unloading', 'unloaded', 'loading_refused', 'transition')",
            name=op.f("ck_waybill_events_kind"),
        ),
        sa.CheckConstraint(
            "source IN ('party', 'api', 'derived')", name=op.f("ck_waybill_events_source")
        ),
        sa.CheckConstraint(
            "to_state IN ('planned', 'loading', 'in_transit', 'delivered', 'cancelled')",
            name=op.f("ck_waybill_events_to_state"),
        ),
        sa.ForeignKeyConstraint(
            ["waybill_id"],
            ["waybills.id"],
            name=op.f("fk_waybill_events_waybill_id_waybills"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_waybill_events")),
    )
    op.create_geospatial_index(
        "idx_waybill_events_geom",
        "waybill_events",
        ["geom"],
        unique=False,
        postgresql_using="gist",
        postgresql_ops={},
    )
    op.create_index(
        op.f("ix_waybill_events_waybill_id"), "waybill_events", ["waybill_id"], unique=False
    )
    op.add_column("vehicles", sa.Column("tank_type", sa.Text(), nullable=True))
    op.add_column("vehicles", sa.Column("tank_volume_m3", sa.Float(), nullable=True))
    op.add_column("vehicles", sa.Column("road_permit_no", sa.Text(), nullable=True))
    op.add_column("vehicles", sa.Column("road_permit_expiry", sa.Date(), nullable=True))
    op.add_column("vehicles", sa.Column("tank_inspection_expiry", sa.Date(), nullable=True))
    op.create_check_constraint(
        op.f("ck_vehicles_tank_type"), "vehicles", f"tank_type IN {sql_in(vocab.TANK_TYPES)}"
    )
    op.create_check_constraint(
        op.f("ck_vehicles_tank_volume_m3"),
        "vehicles",
        "tank_volume_m3 > 0 AND tank_volume_m3 <= 200",
    )
    op.create_check_constraint(
        op.f("ck_vehicles_road_permit_no_not_blank"),
        "vehicles",
        "length(btrim(road_permit_no)) > 0",
    )
    for table, (watched, inserts_and_deletes) in AUDITED.items():
        for statement in _triggers(table, watched, inserts_and_deletes):
            op.execute(statement)


def downgrade() -> None:
    for table in AUDITED:
        for event in ("insert", "update", "delete"):
            op.execute(f"DROP TRIGGER IF EXISTS audit_{table}_{event} ON {table}")
    for name in ("road_permit_no_not_blank", "tank_volume_m3", "tank_type"):
        op.drop_constraint(op.f(f"ck_vehicles_{name}"), "vehicles", type_="check")
    op.drop_column("vehicles", "tank_inspection_expiry")
    op.drop_column("vehicles", "road_permit_expiry")
    op.drop_column("vehicles", "road_permit_no")
    op.drop_column("vehicles", "tank_volume_m3")
    op.drop_column("vehicles", "tank_type")
    op.drop_index(op.f("ix_waybill_events_waybill_id"), table_name="waybill_events")
    op.drop_geospatial_index(
        "idx_waybill_events_geom",
        table_name="waybill_events",
        postgresql_using="gist",
        column_name="geom",
    )
    op.drop_geospatial_table("waybill_events")
    op.drop_index(op.f("ix_waybills_vehicle_id"), table_name="waybills")
    op.drop_index(op.f("ix_waybills_state"), table_name="waybills")
    op.drop_index(op.f("ix_waybills_planned_departure"), table_name="waybills")
    op.drop_index(op.f("ix_waybills_carrier_id"), table_name="waybills")
    op.drop_geospatial_index(
        "idx_waybills_origin_geom",
        table_name="waybills",
        postgresql_using="gist",
        column_name="origin_geom",
    )
    op.drop_geospatial_index(
        "idx_waybills_geom", table_name="waybills", postgresql_using="gist", column_name="geom"
    )
    op.drop_geospatial_index(
        "idx_waybills_destination_geom",
        table_name="waybills",
        postgresql_using="gist",
        column_name="destination_geom",
    )
    op.drop_geospatial_index(
        "idx_waybills_corridor",
        table_name="waybills",
        postgresql_using="gist",
        column_name="corridor",
    )
    op.drop_geospatial_table("waybills")
    op.drop_index(op.f("ix_crew_members_carrier_id"), table_name="crew_members")
    op.drop_table("crew_members")
    op.drop_table("carriers")
