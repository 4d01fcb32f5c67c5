"""alert routing: each warning type goes to its departments and the carrier, with its deadlines

Issue 14 §5, routing and disposal:
- ``alert_routes``: one row per alert rule — the departments that act on it (emergency
  management, traffic police, transport, market regulation), whether the carrier enterprise is
  told, and the acknowledge / dispose deadlines of that type (NULL: the engine's default).
  Data, not code: an administrator edits it (``PUT /api/alert-routes/{rule}``); new warning
  types add their row in their own migration. Audited like every register.
- ``alerts.departments`` (GIN-indexed) and ``alerts.carrier_notified``: filled by a BEFORE
  INSERT trigger from the route of the alert's rule — every insert path (the tanker engine,
  terminal alarms, later warning models) is routed the same way, with no code of its own; a
  rule without a route goes to emergency management. Existing alerts are routed here.

Revision ID: 0019
Revises: 0018
Create Date: 2026-12-05 08:10:00.000000
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects.postgresql import ARRAY

revision: str = "0019"
down_revision: str | None = "0018"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

DEPARTMENTS = "ARRAY['emergency_management', 'transport', 'traffic_police', 'market_regulation']"
#: rule → (departments, carrier told, ack s, dispose s); None: the engine's default deadline.
#: The product's defaults (docs/domain.md §3): who acts on what.
ROUTES = {
    "illegal_parking": (("traffic_police", "transport"), True, None, None),
    "forbidden_zone_parking": (("traffic_police", "emergency_management"), True, None, None),
    "overspeed": (("traffic_police",), True, None, None),
    "corridor_deviation": (("transport", "traffic_police"), True, None, None),
    "terminal_emergency": (
        ("traffic_police", "emergency_management", "transport"),
        True,
        300,
        3600,
    ),
    "terminal_overspeed": (("traffic_police",), True, None, None),
    "terminal_fatigue": (("traffic_police", "transport"), True, None, None),
    "terminal_antenna_cut": (("transport",), True, None, None),
    "terminal_power_cut": (("transport",), True, None, None),
}

ROUTE_TRIGGER = """
CREATE FUNCTION georisk_route_alert() RETURNS trigger LANGUAGE plpgsql AS $$
DECLARE r alert_routes%ROWTYPE;
BEGIN
    SELECT * INTO r FROM alert_routes WHERE rule = NEW.rule;
    IF NOT FOUND THEN
        IF NEW.departments = '{}' THEN NEW.departments := ARRAY['emergency_management']; END IF;
        RETURN NEW;
    END IF;
    IF NEW.departments = '{}' THEN NEW.departments := r.departments; END IF;
    NEW.carrier_notified := r.to_carrier AND NEW.enterprise_id IS NOT NULL;
    IF r.ack_s IS NOT NULL THEN
        NEW.ack_deadline := now() + r.ack_s * interval '1 second';
    END IF;
    IF r.dispose_s IS NOT NULL THEN
        NEW.dispose_deadline := now() + r.dispose_s * interval '1 second';
    END IF;
    RETURN NEW;
END
$$;
"""


def upgrade() -> None:
    op.create_table(
        "alert_routes",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("rule", sa.Text(), nullable=False),
        sa.Column("departments", ARRAY(sa.Text()), nullable=False),
        sa.Column("to_carrier", sa.Boolean(), server_default="true", nullable=False),
        sa.Column("ack_s", sa.Float(), nullable=True),
        sa.Column("dispose_s", sa.Float(), nullable=True),
        sa.Column(
            "updated_at",
            sa.DateTime(timezone=True),
            server_default=sa.text("now()"),
            nullable=False,
        ),
        sa.CheckConstraint(
            f"cardinality(departments) > 0 AND departments <@ {DEPARTMENTS}",
            name=op.f("ck_alert_routes_departments"),
        ),
        sa.CheckConstraint("ack_s IS NULL OR ack_s > 0", name=op.f("ck_alert_routes_ack_s")),
        sa.CheckConstraint(
            "dispose_s IS NULL OR dispose_s > 0", name=op.f("ck_alert_routes_dispose_s")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_alert_routes")),
        sa.UniqueConstraint("rule", name=op.f("uq_alert_routes_rule")),
    )
    routes = sa.table(
        "alert_routes",
        sa.column("rule", sa.Text()),
        sa.column("departments", ARRAY(sa.Text())),
        sa.column("to_carrier", sa.Boolean()),
        sa.column("ack_s", sa.Float()),
        sa.column("dispose_s", sa.Float()),
    )
    op.bulk_insert(
        routes,
        [
            {"rule": rule, "departments": list(d), "to_carrier": c, "ack_s": a, "dispose_s": s}
            for rule, (d, c, a, s) in ROUTES.items()
        ],
    )
    op.add_column(
        "alerts",
        sa.Column("departments", ARRAY(sa.Text()), server_default="{}", nullable=False),
    )
    op.add_column(
        "alerts",
        sa.Column("carrier_notified", sa.Boolean(), server_default="false", nullable=False),
    )
    op.create_index("ix_alerts_departments", "alerts", ["departments"], postgresql_using="gin")
    op.execute(ROUTE_TRIGGER)
    op.execute(
        "CREATE TRIGGER route_alert BEFORE INSERT ON alerts"
        " FOR EACH ROW EXECUTE FUNCTION georisk_route_alert()"
    )
    op.execute(
        "UPDATE alerts a SET departments = r.departments,"
        " carrier_notified = r.to_carrier AND a.enterprise_id IS NOT NULL"
        " FROM alert_routes r WHERE r.rule = a.rule"
    )
    op.execute(
        "UPDATE alerts SET departments = ARRAY['emergency_management'] WHERE departments = '{}'"
    )
    for event, ref in (("insert", "NEW"), ("delete", "OLD"), ("update", None)):
        tables = (
            f"REFERENCING {ref} TABLE AS {'new_rows' if ref == 'NEW' else 'old_rows'}"
            if ref
            else "REFERENCING OLD TABLE AS old_rows NEW TABLE AS new_rows"
        )
        op.execute(
            f"CREATE TRIGGER audit_alert_routes_{event} AFTER {event.upper()} ON alert_routes"
            f" {tables} FOR EACH STATEMENT EXECUTE FUNCTION georisk_audit()"
        )


def downgrade() -> None:
    op.execute("DROP TRIGGER route_alert ON alerts")
    op.execute("DROP FUNCTION georisk_route_alert()")
    op.drop_index("ix_alerts_departments", table_name="alerts")
    op.drop_column("alerts", "carrier_notified")
    op.drop_column("alerts", "departments")
    op.drop_table("alert_routes")
