"""API keys and the audit log

Issue 8: callers identify themselves with a key (stored as a SHA-256 only) or a token signed
by the server; every write to enterprises, hazard sources, risk units, zones, hidden dangers,
scores, keys and alert/alarm dispositions lands in ``audit_log`` with who, what, when and the
row before and after.

The audit rows are written by statement-level triggers over transition tables: one
``INSERT … SELECT`` per statement, so a recompute that re-colours thousands of enterprises or
a COPY of a whole import costs one set-based insert, not one trigger call per row. Who: the
transaction's ``georisk.actor`` setting (the API sets it to the caller, the CLI to
``cli:<user>``); writes without one (background workers) are ``system``.

Revision ID: 0008
Revises: 0007
Create Date: 2026-11-26 13:30:00.000000
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision: str = "0008"
down_revision: str | None = "0007"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

#: Table → columns whose change makes an UPDATE worth auditing (empty: any column), and
#: whether inserts/deletes are audited. Alerts and alarms are audited for their dispositions
#: only: the detector and the evaluator update them on every fix or reading.
AUDITED: dict[str, tuple[tuple[str, ...], bool]] = {
    "enterprises": ((), True),
    "hazard_sources": ((), True),
    "risk_units": ((), True),
    "zones": ((), True),
    "hidden_dangers": ((), True),
    "score_events": ((), True),
    "api_keys": ((), True),
    "alerts": (
        ("status", "acknowledged_at", "acknowledged_by", "disposed_at", "disposed_by", "outcome"),
        False,
    ),
    "alarms": (("acknowledged_at", "disposed_at"), False),
}

AUDIT_FUNCTIONS = """
CREATE FUNCTION georisk_audit_row(j jsonb) RETURNS jsonb LANGUAGE sql IMMUTABLE AS $$
    -- a key's hash is not a key, but it has no business in a log anyone reads
    SELECT j - 'key_hash'
$$;

CREATE FUNCTION georisk_audit() RETURNS trigger LANGUAGE plpgsql AS $$
DECLARE
    who text := coalesce(nullif(current_setting('georisk.actor', true), ''), 'system');
BEGIN
    IF TG_OP = 'INSERT' THEN
        INSERT INTO audit_log (actor, action, entity, entity_id, before, after)
        SELECT who, 'insert', TG_TABLE_NAME, n.id, NULL, georisk_audit_row(to_jsonb(n))
        FROM new_rows n;
    ELSIF TG_OP = 'DELETE' THEN
        INSERT INTO audit_log (actor, action, entity, entity_id, before, after)
        SELECT who, 'delete', TG_TABLE_NAME, o.id, georisk_audit_row(to_jsonb(o)), NULL
        FROM old_rows o;
    ELSE
        -- TG_ARGV: the columns that matter; none given → any change of the row
        INSERT INTO audit_log (actor, action, entity, entity_id, before, after)
        SELECT who, 'update', TG_TABLE_NAME, n.id,
               georisk_audit_row(to_jsonb(o)), georisk_audit_row(to_jsonb(n))
        FROM old_rows o JOIN new_rows n ON n.id = o.id
        WHERE to_jsonb(o) IS DISTINCT FROM to_jsonb(n)
          AND (TG_NARGS = 0 OR EXISTS (
                SELECT 1 FROM unnest(TG_ARGV) c WHERE to_jsonb(o) -> c IS DISTINCT FROM to_jsonb(n) -> c));
    END IF;
    RETURN NULL;
END
$$;
"""


def _triggers(table: str, watched: tuple[str, ...], inserts_and_deletes: bool) -> list[str]:
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
        "api_keys",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("name", sa.Text(), nullable=False),
        sa.Column("role", sa.Text(), nullable=False),
        sa.Column("enterprise_id", sa.Integer(), nullable=True),
        sa.Column("districts", postgresql.ARRAY(sa.Text()), nullable=True),
        sa.Column("prefix", sa.Text(), nullable=False),
        sa.Column("key_hash", sa.LargeBinary(), nullable=False),
        sa.Column(
            "created_at",
            sa.DateTime(timezone=True),
            server_default=sa.text("now()"),
            nullable=False,
        ),
        sa.Column("expires_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("revoked_at", sa.DateTime(timezone=True), nullable=True),
        sa.CheckConstraint(
            "role IN ('admin', 'regulator', 'enterprise', 'officer', 'tile_reader')",
            name=op.f("ck_api_keys_role"),
        ),
        sa.CheckConstraint(
            "(role = 'enterprise') = (enterprise_id IS NOT NULL)",
            name=op.f("ck_api_keys_enterprise"),
        ),
        sa.CheckConstraint(
            "districts IS NULL OR role IN ('regulator', 'officer')",
            name=op.f("ck_api_keys_districts_role"),
        ),
        sa.CheckConstraint("length(btrim(name)) > 0", name=op.f("ck_api_keys_name_not_blank")),
        sa.ForeignKeyConstraint(
            ["enterprise_id"],
            ["enterprises.id"],
            name=op.f("fk_api_keys_enterprise_id_enterprises"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_api_keys")),
        sa.UniqueConstraint("key_hash", name=op.f("uq_api_keys_key_hash")),
    )
    op.create_index(op.f("ix_api_keys_enterprise_id"), "api_keys", ["enterprise_id"])
    op.create_table(
        "audit_log",
        sa.Column("id", sa.BigInteger(), nullable=False),
        sa.Column(
            "at",
            sa.DateTime(timezone=True),
            server_default=sa.text("clock_timestamp()"),
            nullable=False,
        ),
        sa.Column("actor", sa.Text(), nullable=False),
        sa.Column("action", sa.Text(), nullable=False),
        sa.Column("entity", sa.Text(), nullable=False),
        sa.Column("entity_id", sa.BigInteger(), nullable=True),
        sa.Column("before", postgresql.JSONB(astext_type=sa.Text()), nullable=True),
        sa.Column("after", postgresql.JSONB(astext_type=sa.Text()), nullable=True),
        sa.CheckConstraint(
            "action IN ('insert', 'update', 'delete')", name=op.f("ck_audit_log_action")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_audit_log")),
    )
    op.create_index(op.f("ix_audit_log_at"), "audit_log", ["at"])
    op.create_index(op.f("ix_audit_log_actor"), "audit_log", ["actor"])
    op.create_index("ix_audit_log_entity_entity_id", "audit_log", ["entity", "entity_id"])
    op.execute(AUDIT_FUNCTIONS)
    for table, (watched, inserts_and_deletes) in AUDITED.items():
        for statement in _triggers(table, watched, inserts_and_deletes):
            op.execute(statement)


def downgrade() -> None:
    for table in AUDITED:
        for event in ("insert", "update", "delete"):
            op.execute(f"DROP TRIGGER IF EXISTS audit_{table}_{event} ON {table}")
    op.execute("DROP FUNCTION georisk_audit()")
    op.execute("DROP FUNCTION georisk_audit_row(jsonb)")
    op.drop_table("audit_log")
    op.drop_index(op.f("ix_api_keys_enterprise_id"), table_name="api_keys")
    op.drop_table("api_keys")
