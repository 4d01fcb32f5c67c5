"""offline monitoring points; grey (not assessed) enterprises and hazard sources

Issue 13, "the map never lies":
- ``monitoring_points.offline``: the point is silent (stale or flat-lined). A silent point with
  an open alarm keeps the alarm's colour and is marked offline; grey is left for silent points
  without one (docs/domain.md §2.4).
- ``enterprises.inherent_color`` / ``dynamic_color`` and ``hazard_sources.color`` may be grey:
  "not assessed" — never blue, which means "assessed, low" (docs/domain.md §2.2).

Downgrading turns grey enterprise and hazard-source colours back to NULL (never rated); the
risk engine rates them again.

Revision ID: 0009
Revises: 0008
Create Date: 2026-12-03 10:00:00.000000
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0009"
down_revision: str | None = "0008"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

FOUR = "IN ('red', 'orange', 'yellow', 'blue')"
WITH_GREY = "IN ('red', 'orange', 'yellow', 'blue', 'grey')"
#: (table, column) whose colour CHECK gains grey.
RATED: tuple[tuple[str, str], ...] = (
    ("enterprises", "inherent_color"),
    ("enterprises", "dynamic_color"),
    ("hazard_sources", "color"),
)


def _name(table: str, column: str) -> str:
    return f"ck_{table}_{column}"


# Migration 0002 created these CHECKs with a plain name, which the naming convention prefixed
# once more (``ck_enterprises_ck_enterprises_inherent_color``): a plain name passed to
# ``drop_constraint`` gets the same treatment and finds them. The new ones are created with
# ``op.f`` under the models' names (``ck_enterprises_inherent_color``); the downgrade restores
# the old names.


def upgrade() -> None:
    op.add_column(
        "monitoring_points",
        sa.Column("offline", sa.Boolean(), server_default="false", nullable=False),
    )
    # Points silent today get the mark now; their colours follow at the next reading or sweep.
    op.execute(
        "UPDATE monitoring_points mp SET offline = true FROM monitoring_state s"
        " WHERE s.point_id = mp.id AND s.stale"
    )
    for table, column in RATED:
        op.drop_constraint(_name(table, column), table, type_="check")
        op.create_check_constraint(op.f(_name(table, column)), table, f"{column} {WITH_GREY}")


def downgrade() -> None:
    for table, column in RATED:
        op.execute(f"UPDATE {table} SET {column} = NULL WHERE {column} = 'grey'")
        op.drop_constraint(op.f(_name(table, column)), table, type_="check")
        op.create_check_constraint(_name(table, column), table, f"{column} {FOUR}")
    op.drop_column("monitoring_points", "offline")
