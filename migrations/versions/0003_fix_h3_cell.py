"""store each fix's H3 cell at resolution 8

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-26 11:30:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0003"
down_revision: str | None = "0002"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    # Nullable: fixes stored before this column are indexed on the fly by the rollup.
    op.add_column("positions", sa.Column("h3_r8", sa.BigInteger(), nullable=True))


def downgrade() -> None:
    op.drop_column("positions", "h3_r8")
