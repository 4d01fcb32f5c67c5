"""pg_partman makes the daily partitions of positions and readings ahead of time

Issue 17 item 3, time-series lifecycle:
- the extension lives in its own schema ``partman`` (Debian's postgresql-15-partman, 4.x;
  ``make install`` / ``georisk db up`` install the package);
- existing daily partitions are adopted: renamed from ``positions_YYYYMMDD`` to pg_partman's
  ``positions_pYYYY_MM_DD`` (its maintenance orders and finds partitions by that suffix);
- both tables are registered daily, ``PREMAKE`` days ahead, with ``infinite_time_partitions``
  (keep making days ahead of *now* even while no data arrives) and no retention in
  pg_partman: expired days are archived to GeoParquet before they are dropped, which our
  maintenance does (layers/core/lifecycle.py; pg_partman's retention would detach first);
- no default partition: pg_partman 4.x always makes one, and it is removed here. A row outside
  the window is refused by the writers before insert; a default partition would swallow it.

Names and bounds of pg_partman's partitions follow the session's time zone: UTC here.
Downgrading unregisters the tables, drops the extension and gives the partitions back their
old names.

Revision ID: 0015
Revises: 0014
Create Date: 2026-12-05 07:30:00.000000
"""

from collections.abc import Sequence

from alembic import op

revision: str = "0015"
down_revision: str | None = "0014"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

TABLES = ("positions", "readings")
PREMAKE = 7

# Rename every daily child of a parent from one naming to the other (idempotent: a name that
# does not match is left alone).
_RENAME = """
DO $$
DECLARE r record;
BEGIN
  FOR r IN SELECT c.relname FROM pg_inherits h JOIN pg_class c ON c.oid = h.inhrelid
           WHERE h.inhparent = 'public.{table}'::regclass AND c.relname ~ '{pattern}'
  LOOP
    EXECUTE format('ALTER TABLE public.%I RENAME TO %I', r.relname,
                   regexp_replace(r.relname, '{pattern}', '{replacement}'));
  END LOOP;
END $$
"""


def _rename(table: str, pattern: str, replacement: str) -> None:
    op.execute(_RENAME.format(table=table, pattern=pattern, replacement=replacement))


def _require_partman_4() -> None:
    """A clear stop when the server lacks pg_partman 4.x (5.x names partitions otherwise)."""
    row = (
        op.get_bind()
        .exec_driver_sql(
            "SELECT coalesce(installed_version, default_version) FROM pg_available_extensions"
            " WHERE name = 'pg_partman'"
        )
        .fetchone()
    )
    if row is None:
        raise RuntimeError(
            "pg_partman is not installed on the database server: install Debian's"
            " postgresql-15-partman (4.x) there (`georisk db packages` does for the private"
            " cluster), then migrate again"
        )
    if not str(row[0]).startswith("4."):
        raise RuntimeError(f"pg_partman {row[0]} found; GeoRisk's partitions need 4.x")


def upgrade() -> None:
    _require_partman_4()
    op.execute("SET LOCAL timezone = 'UTC'")
    op.execute("CREATE SCHEMA IF NOT EXISTS partman")
    op.execute("CREATE EXTENSION IF NOT EXISTS pg_partman SCHEMA partman")
    for table in TABLES:
        _rename(table, f"^{table}_([0-9]{{4}})([0-9]{{2}})([0-9]{{2}})$", rf"{table}_p\1_\2_\3")
        op.execute(
            f"SELECT partman.create_parent('public.{table}', 'ts', 'native', 'daily',"
            f" p_premake := {PREMAKE}, p_start_partition := date_trunc('day', now())::text,"
            " p_jobmon := false)"
        )
        op.execute(f"DROP TABLE IF EXISTS public.{table}_default")
        op.execute(
            "UPDATE partman.part_config SET infinite_time_partitions = true, retention = NULL"
            f" WHERE parent_table = 'public.{table}'"
        )


def downgrade() -> None:
    for table in TABLES:
        _rename(table, f"^{table}_p([0-9]{{4}})_([0-9]{{2}})_([0-9]{{2}})$", rf"{table}_\1\2\3")
    op.execute("DROP EXTENSION IF EXISTS pg_partman")
    op.execute("DROP SCHEMA IF EXISTS partman CASCADE")
