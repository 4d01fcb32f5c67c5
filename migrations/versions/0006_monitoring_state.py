"""monitoring evaluator state

Per-point debounce counters, flat-line run, stale flag and open alarm (issue 7), persisted in
the readings' own transaction so a restart resumes exactly.

Revision ID: 0006
Revises: 0005
Create Date: 2026-11-26 12:15:00.000000
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0006"
down_revision: str | None = "0005"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "monitoring_state",
        sa.Column("point_id", sa.Integer(), nullable=False),
        sa.Column("level", sa.SmallInteger(), server_default="0", nullable=False),
        sa.Column("pending_level", sa.SmallInteger(), server_default="0", nullable=False),
        sa.Column("pending_count", sa.Integer(), server_default="0", nullable=False),
        sa.Column("last_ts", sa.DateTime(timezone=True), nullable=True),
        sa.Column("last_value", sa.Float(), nullable=True),
        sa.Column("same_count", sa.Integer(), server_default="0", nullable=False),
        sa.Column("stale", sa.Boolean(), server_default="false", nullable=False),
        sa.Column("alarm_id", sa.BigInteger(), nullable=True),
        sa.Column("alarm_overdue", sa.Boolean(), server_default="false", nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=True),
        sa.CheckConstraint("level BETWEEN 0 AND 2", name=op.f("ck_monitoring_state_level")),
        sa.CheckConstraint(
            "pending_level BETWEEN 0 AND 2", name=op.f("ck_monitoring_state_pending_level")
        ),
        sa.ForeignKeyConstraint(
            ["alarm_id"],
            ["alarms.id"],
            name=op.f("fk_monitoring_state_alarm_id_alarms"),
            ondelete="SET NULL",
        ),
        sa.ForeignKeyConstraint(
            ["point_id"],
            ["monitoring_points.id"],
            name=op.f("fk_monitoring_state_point_id_monitoring_points"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("point_id", name=op.f("pk_monitoring_state")),
    )


def downgrade() -> None:
    op.drop_table("monitoring_state")
