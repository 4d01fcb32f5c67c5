"""an ingest role for machines; throttle lockouts in the audit log

Issue 18, security hardening:
- ``api_keys.role`` may be ``ingest``: a machine (a GPS platform, a sensor gateway) that may
  only post fixes and readings. Its key may name districts (like a regulator's) and, new,
  ``carriers`` (``vehicles.carrier``): a carrier's terminal gateway posts its own tankers only.
- ``audit_log.action`` may be ``lockout``: a client address or key prefix the throttle stopped
  after repeated failed sign-ins or unknown keys (one row per lockout, not per request).

Downgrading deletes the ingest keys (the old CHECK has no room for them) and the lockout
entries.

Revision ID: 0011
Revises: 0010
Create Date: 2026-12-05 05:00:00.000000
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects.postgresql import ARRAY

revision: str = "0011"
down_revision: str | None = "0010"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

OLD_ROLES = "('admin', 'regulator', 'enterprise', 'officer', 'tile_reader')"
ROLES = "('admin', 'regulator', 'enterprise', 'officer', 'tile_reader', 'ingest')"
OLD_DISTRICT_ROLES = "('regulator', 'officer')"
DISTRICT_ROLES = "('regulator', 'officer', 'ingest')"
OLD_ACTIONS = "('insert', 'update', 'delete')"
ACTIONS = "('insert', 'update', 'delete', 'lockout')"


def _replace_check(table: str, name: str, condition: str) -> None:
    # Migration 0008 named these with op.f, so op.f finds them (see 0009 for the other case).
    op.drop_constraint(op.f(f"ck_{table}_{name}"), table, type_="check")
    op.create_check_constraint(op.f(f"ck_{table}_{name}"), table, condition)


def upgrade() -> None:
    _replace_check("api_keys", "role", f"role IN {ROLES}")
    _replace_check("api_keys", "districts_role", f"districts IS NULL OR role IN {DISTRICT_ROLES}")
    op.add_column("api_keys", sa.Column("carriers", ARRAY(sa.Text()), nullable=True))
    op.create_check_constraint(
        op.f("ck_api_keys_carriers_role"),
        "api_keys",
        "carriers IS NULL OR (role IN ('ingest') AND cardinality(carriers) > 0)",
    )
    _replace_check("audit_log", "action", f"action IN {ACTIONS}")


def downgrade() -> None:
    op.execute("DELETE FROM audit_log WHERE action = 'lockout'")
    _replace_check("audit_log", "action", f"action IN {OLD_ACTIONS}")
    op.execute("DELETE FROM api_keys WHERE role = 'ingest'")
    op.drop_constraint(op.f("ck_api_keys_carriers_role"), "api_keys", type_="check")
    op.drop_column("api_keys", "carriers")
    _replace_check(
        "api_keys", "districts_role", f"districts IS NULL OR role IN {OLD_DISTRICT_ROLES}"
    )
    _replace_check("api_keys", "role", f"role IN {OLD_ROLES}")
