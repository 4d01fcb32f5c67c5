"""the daily bulletin kept with history; administrative penalties and accidents as its inputs

Issue 15 §6, supervision with consequences:
- ``bulletins``: one numbered bulletin per day (``2026-339``: year and day of the year), with
  the thresholds it was made with and the district indexes of that day. Never rewritten.
- ``bulletin_entries``: the enterprises on it as issued (key or suggested attention, rank,
  reasons, dynamic colour, the department it is for) — a snapshot, so history stays true
  when the facts change later.
- ``bulletin_actions``: what a regulator did about an entry (interview, inspection,
  enforcement, other), with who and when — the department index counts them.
- ``penalties`` (行政处罚) and ``accidents`` (生产安全事故, by grade): facts the watch list
  reads (a recent accident puts an enterprise on the key list, a recent penalty suggests it).

Revision ID: 0018
Revises: 0017
Create Date: 2026-12-05 07:30:44.047597
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision: str = "0018"
down_revision: str | None = "0017"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

#: Written by people, so audited like the registers (the trigger function is migration 0008's).
AUDITED = ("penalties", "accidents", "bulletin_actions")


def _audit_triggers(table: str) -> list[str]:
    return [
        f"CREATE TRIGGER audit_{table}_{event} AFTER {event.upper()} ON {table}"
        f" REFERENCING {'OLD' if event == 'delete' else 'NEW'} TABLE AS"
        f" {'old_rows' if event == 'delete' else 'new_rows'}"
        " FOR EACH STATEMENT EXECUTE FUNCTION georisk_audit()"
        for event in ("insert", "delete")
    ] + [
        f"CREATE TRIGGER audit_{table}_update AFTER UPDATE ON {table}"
        " REFERENCING OLD TABLE AS old_rows NEW TABLE AS new_rows"
        " FOR EACH STATEMENT EXECUTE FUNCTION georisk_audit()"
    ]


def upgrade() -> None:
    op.create_table(
        "bulletins",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("number", sa.Text(), nullable=False),
        sa.Column("day", sa.Date(), nullable=False),
        sa.Column(
            "issued_at", sa.DateTime(timezone=True), server_default=sa.text("now()"), nullable=False
        ),
        sa.Column("issued_by", sa.Text(), nullable=False),
        sa.Column("rules", postgresql.JSONB(astext_type=sa.Text()), nullable=False),
        sa.Column("districts", postgresql.JSONB(astext_type=sa.Text()), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_bulletins")),
        sa.UniqueConstraint("day", name=op.f("uq_bulletins_day")),
        sa.UniqueConstraint("number", name=op.f("uq_bulletins_number")),
    )
    op.create_table(
        "accidents",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("enterprise_id", sa.Integer(), nullable=False),
        sa.Column("occurred_on", sa.Date(), nullable=False),
        sa.Column("grade", sa.Text(), nullable=False),
        sa.Column("deaths", sa.Integer(), server_default="0", nullable=False),
        sa.Column("injuries", sa.Integer(), server_default="0", nullable=False),
        sa.Column("description", sa.Text(), nullable=False),
        sa.Column(
            "created_at",
            sa.DateTime(timezone=True),
            server_default=sa.text("now()"),
            nullable=False,
        ),
        sa.CheckConstraint(
            "grade IN ('general', 'larger', 'major', 'especially_major')",
            name=op.f("ck_accidents_grade"),
        ),
        sa.CheckConstraint("deaths >= 0 AND injuries >= 0", name=op.f("ck_accidents_casualties")),
        sa.CheckConstraint(
            "length(btrim(description)) > 0", name=op.f("ck_accidents_description_not_blank")
        ),
        sa.ForeignKeyConstraint(
            ["enterprise_id"],
            ["enterprises.id"],
            name=op.f("fk_accidents_enterprise_id_enterprises"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_accidents")),
    )
    op.create_index(
        op.f("ix_accidents_enterprise_id"), "accidents", ["enterprise_id"], unique=False
    )
    op.create_table(
        "bulletin_entries",
        sa.Column("bulletin_id", sa.Integer(), nullable=False),
        sa.Column("enterprise_id", sa.Integer(), nullable=False),
        sa.Column("attention", sa.Text(), nullable=False),
        sa.Column("rank", sa.Integer(), nullable=False),
        sa.Column("name", sa.Text(), nullable=False),
        sa.Column("district", sa.Text(), nullable=True),
        sa.Column("dynamic_color", sa.Text(), nullable=True),
        sa.Column("department", sa.Text(), nullable=False),
        sa.Column("reasons", postgresql.JSONB(astext_type=sa.Text()), nullable=False),
        sa.CheckConstraint(
            "attention IN ('key', 'suggested')", name=op.f("ck_bulletin_entries_attention")
        ),
        sa.CheckConstraint(
            "department IN ('emergency_management', 'transport', 'traffic_police', 'market_regulation')",
            name=op.f("ck_bulletin_entries_department"),
        ),
        sa.ForeignKeyConstraint(
            ["bulletin_id"],
            ["bulletins.id"],
            name=op.f("fk_bulletin_entries_bulletin_id_bulletins"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["enterprise_id"],
            ["enterprises.id"],
            name=op.f("fk_bulletin_entries_enterprise_id_enterprises"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("bulletin_id", "enterprise_id", name=op.f("pk_bulletin_entries")),
    )
    op.create_index(
        op.f("ix_bulletin_entries_enterprise_id"),
        "bulletin_entries",
        ["enterprise_id"],
        unique=False,
    )
    op.create_table(
        "penalties",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("enterprise_id", sa.Integer(), nullable=False),
        sa.Column("decided_on", sa.Date(), nullable=False),
        sa.Column("decision_no", sa.Text(), nullable=False),
        sa.Column("authority", sa.Text(), nullable=False),
        sa.Column("amount_yuan", sa.Float(), nullable=True),
        sa.Column("reason", sa.Text(), nullable=False),
        sa.Column(
            "created_at",
            sa.DateTime(timezone=True),
            server_default=sa.text("now()"),
            nullable=False,
        ),
        sa.CheckConstraint(
            "amount_yuan IS NULL OR amount_yuan >= 0", name=op.f("ck_penalties_amount_yuan")
        ),
        sa.CheckConstraint("length(btrim(reason)) > 0", name=op.f("ck_penalties_reason_not_blank")),
        sa.ForeignKeyConstraint(
            ["enterprise_id"],
            ["enterprises.id"],
            name=op.f("fk_penalties_enterprise_id_enterprises"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_penalties")),
        sa.UniqueConstraint(
            "authority", "decision_no", name=op.f("uq_penalties_authority_decision_no")
        ),
    )
    op.create_index(
        op.f("ix_penalties_enterprise_id"), "penalties", ["enterprise_id"], unique=False
    )
    op.create_table(
        "bulletin_actions",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("bulletin_id", sa.Integer(), nullable=False),
        sa.Column("enterprise_id", sa.Integer(), nullable=False),
        sa.Column("kind", sa.Text(), nullable=False),
        sa.Column("taken_on", sa.Date(), nullable=False),
        sa.Column("note", sa.Text(), nullable=False),
        sa.Column("actor", sa.Text(), nullable=False),
        sa.Column(
            "created_at",
            sa.DateTime(timezone=True),
            server_default=sa.text("now()"),
            nullable=False,
        ),
        sa.CheckConstraint(
            "kind IN ('interview', 'inspection', 'enforcement', 'other')",
            name=op.f("ck_bulletin_actions_kind"),
        ),
        sa.CheckConstraint(
            "length(btrim(note)) > 0", name=op.f("ck_bulletin_actions_note_not_blank")
        ),
        sa.ForeignKeyConstraint(
            ["bulletin_id", "enterprise_id"],
            ["bulletin_entries.bulletin_id", "bulletin_entries.enterprise_id"],
            name=op.f("fk_bulletin_actions_bulletin_id_bulletin_entries"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_bulletin_actions")),
    )
    op.create_index(
        "ix_bulletin_actions_entry",
        "bulletin_actions",
        ["bulletin_id", "enterprise_id"],
        unique=False,
    )
    for table in AUDITED:
        for statement in _audit_triggers(table):
            op.execute(statement)


def downgrade() -> None:
    op.drop_index("ix_bulletin_actions_entry", table_name="bulletin_actions")
    op.drop_table("bulletin_actions")
    op.drop_index(op.f("ix_penalties_enterprise_id"), table_name="penalties")
    op.drop_table("penalties")
    op.drop_index(op.f("ix_bulletin_entries_enterprise_id"), table_name="bulletin_entries")
    op.drop_table("bulletin_entries")
    op.drop_index(op.f("ix_accidents_enterprise_id"), table_name="accidents")
    op.drop_table("accidents")
    op.drop_table("bulletins")
