"""Audit of watched columns by row triggers with a WHEN clause

The tables whose updates are audited only when some columns change — an alert's or alarm's
disposition, a monitoring point's definition (0008, 0012) — had statement-level triggers with
transition tables: every UPDATE statement, whatever it changed, turned each updated row (old
and new) into JSON several times to find out that nothing watched had changed. The tanker
ingest updates tens of alerts a batch (an open episode grows with every fix), so that check
cost more than the warning models' own work (profiled: ~11 ms of an ~80 ms batch of 2,000
fixes).

A row-level ``AFTER UPDATE … FOR EACH ROW WHEN (OLD.c IS DISTINCT FROM NEW.c OR …)`` trigger is
tested by PostgreSQL itself on each row without calling any function; only a row whose watched
column changed runs ``georisk_audit_update()``, which writes the same ``audit_log`` row as
before (action ``update``, the whole row before and after, the actor of ``georisk.actor``).
Inserts and deletes, and the tables audited on any change, keep 0008's statement triggers.

Revision ID: 0022
Revises: 0021
Create Date: 2026-12-05 13:30:00.000000
"""

from collections.abc import Sequence

from alembic import op

revision: str = "0022"
down_revision: str | None = "0021"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

WATCHED: dict[str, tuple[str, ...]] = {
    "alerts": (
        "status",
        "acknowledged_at",
        "acknowledged_by",
        "disposed_at",
        "disposed_by",
        "outcome",
    ),
    "alarms": ("acknowledged_at", "disposed_at"),
    "monitoring_points": (
        "code",
        "hazard_source_id",
        "pipeline_id",
        "kind",
        "substance",
        "unit",
        "level1",
        "level2",
        "limit_h",
        "limit_hh",
        "limit_l",
        "limit_ll",
        "sampling_interval_s",
        "geom",
        "version",
        "retired_at",
    ),
}

ROW_FUNCTION = """
CREATE FUNCTION georisk_audit_update() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    -- the trigger's WHEN clause already found a watched column changed
    INSERT INTO audit_log (actor, action, entity, entity_id, before, after)
    VALUES (coalesce(nullif(current_setting('georisk.actor', true), ''), 'system'), 'update',
            TG_TABLE_NAME, NEW.id, georisk_audit_row(to_jsonb(OLD)),
            georisk_audit_row(to_jsonb(NEW)));
    RETURN NULL;
END
$$;
"""


def upgrade() -> None:
    op.execute(ROW_FUNCTION)
    for table, columns in WATCHED.items():
        changed = " OR ".join(f"OLD.{c} IS DISTINCT FROM NEW.{c}" for c in columns)
        op.execute(f"DROP TRIGGER audit_{table}_update ON {table}")
        op.execute(
            f"CREATE TRIGGER audit_{table}_update AFTER UPDATE ON {table} FOR EACH ROW"
            f" WHEN ({changed}) EXECUTE FUNCTION georisk_audit_update()"
        )


def downgrade() -> None:
    for table, columns in WATCHED.items():
        args = ", ".join(f"'{c}'" for c in columns)
        op.execute(f"DROP TRIGGER audit_{table}_update ON {table}")
        op.execute(
            f"CREATE TRIGGER audit_{table}_update AFTER UPDATE ON {table}"
            " REFERENCING OLD TABLE AS old_rows NEW TABLE AS new_rows"
            f" FOR EACH STATEMENT EXECUTE FUNCTION georisk_audit({args})"
        )
    op.execute("DROP FUNCTION georisk_audit_update()")
