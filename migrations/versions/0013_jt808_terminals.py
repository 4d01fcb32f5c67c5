"""JT/T 808 terminals; terminal alarm rules for alerts

Issue 14 item 4 (the JT/T 808 gateway, geo_api/jt808_gateway.py):
- ``jt808_terminals``: one row per registered terminal — its phone number (the header's BCD
  digits, as text), the vehicle it was bound to by plate at registration (one terminal per
  vehicle), the SHA-256 of the auth code the platform issued, and when it registered,
  authenticated and was last heard from.
- ``alerts.rule`` may name the terminal alarms of item 3 (emergency button, terminal overspeed
  and fatigue, GNSS antenna cut, main power cut): alerts of their own kind, one per vehicle,
  alarm and episode.

Downgrading deletes the terminal alarm alerts (the old CHECK has no room for them).

Revision ID: 0013
Revises: 0012
Create Date: 2026-12-05 07:30:00.000000
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0013"
down_revision: str | None = "0012"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

OLD_RULES = "('illegal_parking', 'forbidden_zone_parking', 'overspeed', 'corridor_deviation')"
RULES = (
    "('illegal_parking', 'forbidden_zone_parking', 'overspeed', 'corridor_deviation',"
    " 'terminal_emergency', 'terminal_overspeed', 'terminal_fatigue', 'terminal_antenna_cut',"
    " 'terminal_power_cut')"
)


def _replace_rule_check(condition: str) -> None:
    # Migration 0004 named it with op.f, so op.f finds it (see 0009 for the other case).
    op.drop_constraint(op.f("ck_alerts_rule"), "alerts", type_="check")
    op.create_check_constraint(op.f("ck_alerts_rule"), "alerts", condition)


def upgrade() -> None:
    op.create_table(
        "jt808_terminals",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("phone", sa.Text(), nullable=False),
        sa.Column("vehicle_id", sa.Integer(), nullable=False),
        sa.Column("plate_colour", sa.SmallInteger(), nullable=False),
        sa.Column("manufacturer", sa.Text(), nullable=True),
        sa.Column("model", sa.Text(), nullable=True),
        sa.Column("terminal_id", sa.Text(), nullable=True),
        sa.Column("auth_hash", sa.Text(), nullable=False),
        sa.Column(
            "registered_at",
            sa.DateTime(timezone=True),
            server_default=sa.text("now()"),
            nullable=False,
        ),
        sa.Column("authenticated_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("last_seen", sa.DateTime(timezone=True), nullable=True),
        sa.CheckConstraint("phone ~ '^[0-9]{1,20}$'", name=op.f("ck_jt808_terminals_phone")),
        sa.CheckConstraint(
            "plate_colour BETWEEN 0 AND 255", name=op.f("ck_jt808_terminals_plate_colour")
        ),
        sa.ForeignKeyConstraint(
            ["vehicle_id"],
            ["vehicles.id"],
            name=op.f("fk_jt808_terminals_vehicle_id_vehicles"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_jt808_terminals")),
        sa.UniqueConstraint("phone", name=op.f("uq_jt808_terminals_phone")),
        sa.UniqueConstraint("vehicle_id", name=op.f("uq_jt808_terminals_vehicle_id")),
    )
    _replace_rule_check(f"rule IN {RULES}")


def downgrade() -> None:
    op.execute(f"DELETE FROM alerts WHERE rule NOT IN {OLD_RULES}")
    _replace_rule_check(f"rule IN {OLD_RULES}")
    op.drop_table("jt808_terminals")
