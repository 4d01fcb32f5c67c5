"""inspection tasks

The tasks an enterprise must carry out by a due date (issue 7, dual prevention): the
denominator and numerator of the inspection-task completion rate (layers/prevention/dual.py).

Revision ID: 0007
Revises: 0006
Create Date: 2026-11-26 12:35:00.000000
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0007"
down_revision: str | None = "0006"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "inspection_tasks",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("enterprise_id", sa.Integer(), nullable=False),
        sa.Column("title", sa.Text(), nullable=False),
        sa.Column("due_date", sa.Date(), nullable=False),
        sa.Column("done_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column(
            "created_at",
            sa.DateTime(timezone=True),
            server_default=sa.text("now()"),
            nullable=False,
        ),
        sa.CheckConstraint(
            "length(btrim(title)) > 0", name=op.f("ck_inspection_tasks_title_not_blank")
        ),
        sa.ForeignKeyConstraint(
            ["enterprise_id"],
            ["enterprises.id"],
            name=op.f("fk_inspection_tasks_enterprise_id_enterprises"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_inspection_tasks")),
    )
    op.create_index(
        op.f("ix_inspection_tasks_enterprise_id"), "inspection_tasks", ["enterprise_id"]
    )


def downgrade() -> None:
    op.drop_index(op.f("ix_inspection_tasks_enterprise_id"), table_name="inspection_tasks")
    op.drop_table("inspection_tasks")
