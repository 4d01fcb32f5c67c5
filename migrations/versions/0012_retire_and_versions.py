"""row versions for optimistic concurrency; retire instead of delete; audit of every collection

Issue 16 item 3, full CRUD on the collections:
- ``version`` on every table the REST collections write (enterprises, hazard sources,
  monitoring points, pipelines, zones, vehicles, districts): 1 when created, bumped by each
  PATCH (and by a retirement). It is the ``ETag`` of the item, and ``If-Match`` is checked
  against it in the same transaction as the write (``UPDATE … WHERE id = :id AND version = :v``
  under a row lock), so a lost update is impossible. An explicit column, not ``xmin``: it
  survives a dump and restore, and engines rewriting derived columns (colours) do not bump it.
- ``retired_at`` on what history refers to (enterprises, hazard sources, monitoring points,
  pipelines, zones, vehicles): a DELETE of a row that alerts, alarms, readings, stops, fixes or
  deductions name sets it instead of removing the row. Retired rows are gone from lists, maps
  and rules but kept for history and evidence.
- Audit triggers (0008's ``georisk_audit``) on the collections 0008 did not watch: monitoring
  points (edits only, not the live colour the evaluator rewrites on every reading), pipelines,
  vehicles, districts and hazard-source substances, so a PATCH or DELETE of any collection
  lands in ``audit_log`` with the row before and after.

Foreign keys keep their ``ON DELETE`` rules: the API checks dependents under a row lock before
it deletes anything (a 409 naming them), so nothing cascades silently through it.

Downgrading deletes nothing: retired rows become ordinary rows again (they reappear).

Revision ID: 0012
Revises: 0011
Create Date: 2026-12-05 07:30:00.000000
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0012"
down_revision: str | None = "0011"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

VERSIONED = (
    "enterprises",
    "hazard_sources",
    "monitoring_points",
    "pipelines",
    "zones",
    "vehicles",
    "districts",
)
RETIRABLE = VERSIONED[:-1]

#: Table → watched columns (empty: any change), as in 0008. Monitoring points: the evaluator
#: rewrites ``live_color`` and ``offline`` on every reading batch; only edits are audited.
NEWLY_AUDITED: dict[str, tuple[str, ...]] = {
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
    "pipelines": (),
    "vehicles": (),
    "districts": (),
    "hazard_source_substances": (),
}


def _triggers(table: str, watched: tuple[str, ...]) -> list[str]:
    args = ", ".join(f"'{c}'" for c in watched)
    return [
        f"CREATE TRIGGER audit_{table}_update AFTER UPDATE ON {table}"
        " REFERENCING OLD TABLE AS old_rows NEW TABLE AS new_rows"
        f" FOR EACH STATEMENT EXECUTE FUNCTION georisk_audit({args})",
        f"CREATE TRIGGER audit_{table}_insert AFTER INSERT ON {table}"
        " REFERENCING NEW TABLE AS new_rows FOR EACH STATEMENT EXECUTE FUNCTION georisk_audit()",
        f"CREATE TRIGGER audit_{table}_delete AFTER DELETE ON {table}"
        " REFERENCING OLD TABLE AS old_rows FOR EACH STATEMENT EXECUTE FUNCTION georisk_audit()",
    ]


def upgrade() -> None:
    for table in VERSIONED:
        op.add_column(table, sa.Column("version", sa.Integer(), server_default="1", nullable=False))
        op.create_check_constraint(op.f(f"ck_{table}_version_positive"), table, "version >= 1")
    for table in RETIRABLE:
        op.add_column(table, sa.Column("retired_at", sa.DateTime(timezone=True), nullable=True))
    for table, watched in NEWLY_AUDITED.items():
        for statement in _triggers(table, watched):
            op.execute(statement)


def downgrade() -> None:
    for table in NEWLY_AUDITED:
        for event in ("insert", "update", "delete"):
            op.execute(f"DROP TRIGGER IF EXISTS audit_{table}_{event} ON {table}")
    for table in RETIRABLE:
        op.drop_column(table, "retired_at")
    for table in VERSIONED:
        op.drop_constraint(op.f(f"ck_{table}_version_positive"), table, type_="check")
        op.drop_column(table, "version")
