"""Indexes for the tanker ingest's every-batch queries

- ``ix_roads_speed_limit`` and ``ix_zones_speed_limit`` (live zones only): every batch asks
  for the lowest speed limit anywhere (``layers/transport/limits.py``: fixes slower than it
  need no lookup). Without an index ``min(speed_limit_kmh)`` read all roads and zones — about
  2 ms a batch at the demo city's scale, more in a bigger one; with one it is an index probe.
- ``ix_stops_vehicle_start`` is dropped: it duplicated the unique constraint on
  (vehicle_id, start_ts), whose index serves the same lookups, and every stop the detector
  opens or grows updated both.

Revision ID: 0023
Revises: 0022
Create Date: 2026-12-05 13:50:00.000000
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0023"
down_revision: str | None = "0022"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_index("ix_roads_speed_limit", "roads", ["speed_limit_kmh"])
    op.create_index(
        "ix_zones_speed_limit",
        "zones",
        ["speed_limit_kmh"],
        postgresql_where=sa.text("retired_at IS NULL"),
    )
    op.drop_index("ix_stops_vehicle_start", table_name="stops")


def downgrade() -> None:
    op.create_index("ix_stops_vehicle_start", "stops", ["vehicle_id", "start_ts"])
    op.drop_index("ix_zones_speed_limit", table_name="zones")
    op.drop_index("ix_roads_speed_limit", table_name="roads")
