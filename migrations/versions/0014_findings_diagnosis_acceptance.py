"""direct-red findings, diagnosis date, major-danger acceptance, recurring inspection tasks,
substances with several hazard classes

Issue 15, items 4 and 5 (docs/domain.md §2.1, §2.2, §5):
- ``enterprise_findings``: circumstances of the MEM 2018 diagnosis guide that rate an
  enterprise red whatever its score (code from layers/core/vocab.py DIRECT_RED_FINDINGS), with
  evidence, who found it and when; closed by a regulator with who, when and why. Audited like
  the other registers (the triggers of migration 0008).
- ``enterprises.diagnosed_on``: the date of the last risk diagnosis; older than three years it
  has expired (a reason shown with the colour).
- ``hidden_dangers``: the criterion of 安监总管三〔2017〕121号 that makes a danger major
  (``major_criterion``, MHD01…MHD20), the enterprise's report of rectification with evidence
  (state ``rectification_reported``), the regulator's acceptance or last rejection, and the
  deadline a reminder was sent for (``reminded_for``: one reminder per deadline). A closed
  major danger must carry its acceptance.
- ``inspection_tasks``: assignee, frequency (once, daily, weekly, monthly, quarterly, yearly)
  and the risk unit and control (index into ``risk_units.controls``) it checks;
  ``inspection_task_rounds`` records each done round of a recurring task.
- ``hazard_source_substances.more_classes`` (further GB 18218 classes: the lowest Q governs)
  and ``mixture`` (assessed by its one classified class, ``hazard_class``).

Downgrading drops all of it; reported major dangers go back to ``rectifying``.

Revision ID: 0014
Revises: 0013
Create Date: 2026-12-05 07:30:00.000000
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects.postgresql import ARRAY

revision: str = "0014"
down_revision: str | None = "0013"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

# Constants, not imports: a migration states the schema as it was when written.
FINDING_CODES = "('unit_not_designed_not_diagnosed', 'other_direct_red')"
CRITERIA = "(" + ", ".join(f"'MHD{i:02d}'" for i in range(1, 21)) + ")"
OLD_STATUSES = "('found', 'rectifying', 'rectified')"
STATUSES = "('found', 'rectifying', 'rectification_reported', 'rectified')"
FREQUENCIES = "('once', 'daily', 'weekly', 'monthly', 'quarterly', 'yearly')"
#: Table 2 codes plus toxic_gas and other: the vocabulary of hazard_class's own CHECK.
GB18218_CLASSES = (
    "ARRAY['J1', 'J2', 'J3', 'J4', 'J5', 'W1.1', 'W1.2', 'W1.3', 'W2', 'W3', 'W4', 'W5.1',"
    " 'W5.2', 'W5.3', 'W5.4', 'W6.1', 'W6.2', 'W7.1', 'W7.2', 'W8', 'W9.1', 'W9.2', 'W10',"
    " 'W11', 'toxic_gas', 'other']::text[]"
)
AUDIT = (
    "CREATE TRIGGER audit_enterprise_findings_{event} AFTER {op} ON enterprise_findings"
    " REFERENCING {ref} TABLE AS {rows} FOR EACH STATEMENT EXECUTE FUNCTION georisk_audit()"
)


def _findings() -> None:
    op.create_table(
        "enterprise_findings",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("enterprise_id", sa.Integer(), nullable=False),
        sa.Column("code", sa.Text(), nullable=False),
        sa.Column("evidence", sa.Text(), nullable=False),
        sa.Column("evidence_url", sa.Text(), nullable=True),
        sa.Column("found_on", sa.Date(), nullable=False),
        sa.Column("found_by", sa.Text(), nullable=False),
        sa.Column("state", sa.Text(), server_default="open", nullable=False),
        sa.Column("closed_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("closed_by", sa.Text(), nullable=True),
        sa.Column("close_reason", sa.Text(), nullable=True),
        sa.Column(
            "created_at",
            sa.DateTime(timezone=True),
            server_default=sa.text("now()"),
            nullable=False,
        ),
        sa.CheckConstraint(f"code IN {FINDING_CODES}", name=op.f("ck_enterprise_findings_code")),
        sa.CheckConstraint(
            "state IN ('open', 'closed')", name=op.f("ck_enterprise_findings_state")
        ),
        sa.CheckConstraint(
            "(state = 'closed') = (closed_at IS NOT NULL AND closed_by IS NOT NULL"
            " AND close_reason IS NOT NULL)",
            name=op.f("ck_enterprise_findings_closed"),
        ),
        sa.CheckConstraint(
            "length(btrim(evidence)) > 0", name=op.f("ck_enterprise_findings_evidence_not_blank")
        ),
        sa.CheckConstraint(
            "evidence_url IS NULL OR evidence_url ~ '^https?://'",
            name=op.f("ck_enterprise_findings_evidence_url"),
        ),
        sa.ForeignKeyConstraint(
            ["enterprise_id"],
            ["enterprises.id"],
            name=op.f("fk_enterprise_findings_enterprise_id_enterprises"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_enterprise_findings")),
    )
    op.create_index(
        op.f("ix_enterprise_findings_enterprise_id"), "enterprise_findings", ["enterprise_id"]
    )
    for event, sql_op, ref, rows in (
        ("insert", "INSERT", "NEW", "new_rows"),
        ("delete", "DELETE", "OLD", "old_rows"),
    ):
        op.execute(AUDIT.format(event=event, op=sql_op, ref=ref, rows=rows))
    op.execute(
        "CREATE TRIGGER audit_enterprise_findings_update AFTER UPDATE ON enterprise_findings"
        " REFERENCING OLD TABLE AS old_rows NEW TABLE AS new_rows"
        " FOR EACH STATEMENT EXECUTE FUNCTION georisk_audit()"
    )
    op.add_column("enterprises", sa.Column("diagnosed_on", sa.Date(), nullable=True))


def _dangers() -> None:
    add = [
        ("major_criterion", sa.Text()),
        ("reported_at", sa.DateTime(timezone=True)),
        ("reported_by", sa.Text()),
        ("report_evidence", sa.Text()),
        ("report_evidence_url", sa.Text()),
        ("accepted_at", sa.DateTime(timezone=True)),
        ("accepted_by", sa.Text()),
        ("acceptance_note", sa.Text()),
        ("rejected_at", sa.DateTime(timezone=True)),
        ("rejected_by", sa.Text()),
        ("rejection_reason", sa.Text()),
        ("reminded_for", sa.Date()),
        ("reminded_at", sa.DateTime(timezone=True)),
    ]
    for name, kind in add:
        op.add_column("hidden_dangers", sa.Column(name, kind, nullable=True))
    op.drop_constraint(op.f("ck_hidden_dangers_status"), "hidden_dangers", type_="check")
    op.create_check_constraint(
        op.f("ck_hidden_dangers_status"), "hidden_dangers", f"status IN {STATUSES}"
    )
    op.create_check_constraint(
        op.f("ck_hidden_dangers_major_criterion"),
        "hidden_dangers",
        f"major_criterion IS NULL OR (is_major AND major_criterion IN {CRITERIA})",
    )
    op.create_check_constraint(
        op.f("ck_hidden_dangers_reported"),
        "hidden_dangers",
        "status <> 'rectification_reported' OR reported_at IS NOT NULL",
    )
    # Major dangers closed before this revision were closed on the enterprise's word: they
    # keep that history, labelled, so the rule below can hold for every row.
    op.execute(
        "UPDATE hidden_dangers SET accepted_at = rectified_at,"
        " accepted_by = 'before acceptance (migration 0014)'"
        " WHERE is_major AND status = 'rectified'"
    )
    op.create_check_constraint(
        op.f("ck_hidden_dangers_major_accepted"),
        "hidden_dangers",
        "NOT is_major OR status <> 'rectified' OR accepted_at IS NOT NULL",
    )


def _tasks() -> None:
    op.add_column("inspection_tasks", sa.Column("assignee", sa.Text(), nullable=True))
    op.add_column(
        "inspection_tasks",
        sa.Column("frequency", sa.Text(), server_default="once", nullable=False),
    )
    op.add_column(
        "inspection_tasks",
        sa.Column(
            "risk_unit_id",
            sa.Integer(),
            sa.ForeignKey(
                "risk_units.id",
                ondelete="SET NULL",
                name=op.f("fk_inspection_tasks_risk_unit_id_risk_units"),
            ),
            nullable=True,
        ),
    )
    op.add_column("inspection_tasks", sa.Column("control_index", sa.Integer(), nullable=True))
    op.create_index(op.f("ix_inspection_tasks_risk_unit_id"), "inspection_tasks", ["risk_unit_id"])
    op.create_check_constraint(
        op.f("ck_inspection_tasks_frequency"), "inspection_tasks", f"frequency IN {FREQUENCIES}"
    )
    op.create_check_constraint(
        op.f("ck_inspection_tasks_control_index"),
        "inspection_tasks",
        "control_index IS NULL OR control_index >= 0",
    )
    op.create_table(
        "inspection_task_rounds",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("task_id", sa.Integer(), nullable=False),
        sa.Column("due_date", sa.Date(), nullable=False),
        sa.Column(
            "done_at", sa.DateTime(timezone=True), server_default=sa.text("now()"), nullable=False
        ),
        sa.Column("done_by", sa.Text(), nullable=True),
        sa.ForeignKeyConstraint(
            ["task_id"],
            ["inspection_tasks.id"],
            name=op.f("fk_inspection_task_rounds_task_id_inspection_tasks"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_inspection_task_rounds")),
        sa.UniqueConstraint(
            "task_id", "due_date", name=op.f("uq_inspection_task_rounds_task_id_due_date")
        ),
    )


def _substances() -> None:
    op.add_column(
        "hazard_source_substances",
        sa.Column(
            "more_classes",
            ARRAY(sa.Text()),
            server_default=sa.text("'{}'::text[]"),
            nullable=False,
        ),
    )
    op.add_column(
        "hazard_source_substances",
        sa.Column("mixture", sa.Boolean(), server_default=sa.text("false"), nullable=False),
    )
    op.create_check_constraint(
        op.f("ck_hazard_source_substances_more_classes"),
        "hazard_source_substances",
        f"more_classes <@ {GB18218_CLASSES}",
    )
    op.create_check_constraint(
        op.f("ck_hazard_source_substances_mixture_class"),
        "hazard_source_substances",
        "NOT mixture OR (hazard_class IS NOT NULL AND cardinality(more_classes) = 0)",
    )


def upgrade() -> None:
    _findings()
    _dangers()
    _tasks()
    _substances()


def downgrade() -> None:
    for name in ("mixture_class", "more_classes"):
        op.drop_constraint(
            op.f(f"ck_hazard_source_substances_{name}"), "hazard_source_substances", type_="check"
        )
    op.drop_column("hazard_source_substances", "mixture")
    op.drop_column("hazard_source_substances", "more_classes")

    op.drop_table("inspection_task_rounds")
    for name in ("control_index", "frequency"):
        op.drop_constraint(op.f(f"ck_inspection_tasks_{name}"), "inspection_tasks", type_="check")
    op.drop_index(op.f("ix_inspection_tasks_risk_unit_id"), table_name="inspection_tasks")
    for column in ("control_index", "risk_unit_id", "frequency", "assignee"):
        op.drop_column("inspection_tasks", column)

    for name in ("major_accepted", "reported", "major_criterion", "status"):
        op.drop_constraint(op.f(f"ck_hidden_dangers_{name}"), "hidden_dangers", type_="check")
    op.execute(
        "UPDATE hidden_dangers SET status = 'rectifying' WHERE status = 'rectification_reported'"
    )
    op.create_check_constraint(
        op.f("ck_hidden_dangers_status"), "hidden_dangers", f"status IN {OLD_STATUSES}"
    )
    for column in (
        "reminded_at",
        "reminded_for",
        "rejection_reason",
        "rejected_by",
        "rejected_at",
        "acceptance_note",
        "accepted_by",
        "accepted_at",
        "report_evidence_url",
        "report_evidence",
        "reported_by",
        "reported_at",
        "major_criterion",
    ):
        op.drop_column("hidden_dangers", column)

    op.drop_column("enterprises", "diagnosed_on")
    op.drop_table("enterprise_findings")  # its triggers go with it
