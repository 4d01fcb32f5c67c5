"""a real risk register: unit kinds, hazard-source link, typed controls, owner, review dates

Issue 19, "one map, one book":
- ``risk_units.kind`` (process unit, reactor, tank farm, warehouse, loading bay, utilities,
  other) and ``hazard_source_id`` (a hazard-source unit coincides with its hazard source; the
  link is cleared, not cascaded, when the hazard source goes).
- A unit may be registered before it is assessed: ``method``, ``likelihood`` and ``color`` are
  all NULL then, and the map shows it grey ("not assessed", never blue).
- ``controls`` becomes a JSON array of ``{"type", "measure"}`` with the types of
  layers/core/vocab.py CONTROL_TYPES; an old free-text entry becomes one "management" measure.
- ``responsible`` / ``responsible_phone``: the person in charge of the unit's controls;
  ``assessed_on`` / ``review_due``: when it was assessed and when the assessment must be
  reviewed (an overdue review makes the enterprise's risk analysis incomplete).
- ``enterprises.contacts``: emergency contacts ``[{"role", "name", "phone"}]`` for the book.

Revision ID: 0010
Revises: 0009
Create Date: 2026-12-05 04:30:00.000000
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects.postgresql import JSONB

revision: str = "0010"
down_revision: str | None = "0009"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

KINDS = "('process_unit', 'reactor', 'tank_farm', 'warehouse', 'loading_bay', 'utilities', 'other')"
METHOD_INPUTS = (
    "(method IS NULL AND likelihood IS NULL AND color IS NULL)"
    " OR (method = 'LEC' AND likelihood IS NOT NULL AND exposure IS NOT NULL"
    " AND consequence IS NOT NULL AND color IS NOT NULL)"
    " OR (method = 'LS' AND likelihood IS NOT NULL AND severity IS NOT NULL"
    " AND color IS NOT NULL)"
)
OLD_METHOD_INPUTS = (
    "(method = 'LEC' AND exposure IS NOT NULL AND consequence IS NOT NULL)"
    " OR (method = 'LS' AND severity IS NOT NULL)"
)


def upgrade() -> None:
    op.add_column(
        "risk_units", sa.Column("kind", sa.Text(), server_default="other", nullable=False)
    )
    op.create_check_constraint(op.f("ck_risk_units_kind"), "risk_units", f"kind IN {KINDS}")
    op.add_column(
        "risk_units",
        sa.Column(
            "hazard_source_id",
            sa.Integer(),
            sa.ForeignKey(
                "hazard_sources.id",
                ondelete="SET NULL",
                name=op.f("fk_risk_units_hazard_source_id_hazard_sources"),
            ),
            nullable=True,
        ),
    )
    op.create_index(op.f("ix_risk_units_hazard_source_id"), "risk_units", ["hazard_source_id"])

    op.alter_column("risk_units", "method", nullable=True)
    op.alter_column("risk_units", "likelihood", nullable=True)
    op.drop_constraint(op.f("ck_risk_units_method_inputs"), "risk_units", type_="check")
    op.create_check_constraint(op.f("ck_risk_units_method_inputs"), "risk_units", METHOD_INPUTS)

    op.execute(
        "ALTER TABLE risk_units ALTER COLUMN controls TYPE jsonb USING CASE"
        " WHEN controls IS NULL OR btrim(controls) = '' THEN '[]'::jsonb"
        " ELSE jsonb_build_array(jsonb_build_object('type', 'management', 'measure', controls))"
        " END"
    )
    op.alter_column("risk_units", "controls", server_default=sa.text("'[]'::jsonb"), nullable=False)
    op.create_check_constraint(
        op.f("ck_risk_units_controls_array"), "risk_units", "jsonb_typeof(controls) = 'array'"
    )
    op.add_column("risk_units", sa.Column("responsible", sa.Text(), nullable=True))
    op.add_column("risk_units", sa.Column("responsible_phone", sa.Text(), nullable=True))
    op.add_column("risk_units", sa.Column("assessed_on", sa.Date(), nullable=True))
    op.add_column("risk_units", sa.Column("review_due", sa.Date(), nullable=True))
    op.create_check_constraint(
        op.f("ck_risk_units_review_order"),
        "risk_units",
        "review_due IS NULL OR assessed_on IS NULL OR review_due >= assessed_on",
    )
    op.add_column(
        "enterprises",
        sa.Column("contacts", JSONB(), server_default=sa.text("'[]'::jsonb"), nullable=False),
    )
    op.create_check_constraint(
        op.f("ck_enterprises_contacts_array"), "enterprises", "jsonb_typeof(contacts) = 'array'"
    )


def downgrade() -> None:
    op.drop_constraint(op.f("ck_enterprises_contacts_array"), "enterprises", type_="check")
    op.drop_column("enterprises", "contacts")
    op.drop_constraint(op.f("ck_risk_units_review_order"), "risk_units", type_="check")
    for column in ("review_due", "assessed_on", "responsible_phone", "responsible"):
        op.drop_column("risk_units", column)
    op.drop_constraint(op.f("ck_risk_units_controls_array"), "risk_units", type_="check")
    # ALTER ... USING cannot hold a subquery: go through a text column.
    op.add_column("risk_units", sa.Column("controls_text", sa.Text(), nullable=True))
    op.execute(
        "UPDATE risk_units SET controls_text = NULLIF(("
        " SELECT string_agg(c->>'measure', '; ') FROM jsonb_array_elements(controls) c), '')"
    )
    op.drop_column("risk_units", "controls")
    op.alter_column("risk_units", "controls_text", new_column_name="controls")
    # Units registered but never assessed have no place in the old schema.
    op.execute("DELETE FROM risk_units WHERE method IS NULL")
    op.drop_constraint(op.f("ck_risk_units_method_inputs"), "risk_units", type_="check")
    op.create_check_constraint(op.f("ck_risk_units_method_inputs"), "risk_units", OLD_METHOD_INPUTS)
    op.alter_column("risk_units", "likelihood", nullable=False)
    op.alter_column("risk_units", "method", nullable=False)
    op.drop_index(op.f("ix_risk_units_hazard_source_id"), "risk_units")
    op.drop_column("risk_units", "hazard_source_id")
    op.drop_constraint(op.f("ck_risk_units_kind"), "risk_units", type_="check")
    op.drop_column("risk_units", "kind")
