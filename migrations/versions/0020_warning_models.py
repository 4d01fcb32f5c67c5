"""Warning models of the transport chain: their alert rules, routes and zone kinds

Issue 14 item 3 (layers/transport/warnings/):
- ``alerts.rule`` may name the eleven warning models (moving loaded without a waybill, failed
  loading checks, no escort, deviation from the waybill's corridor, undeclared stop, wrong
  destination, continuous and daily fatigue, restricted hours, positioning gap, mixed loading).
- ``alert_routes`` gets a row per model: the departments that act on it (docs/transport.md §5),
  the carrier told, and the default deadlines.
- ``zones.kind`` may be ``hazmat_restricted`` (closed to hazmat vehicles in its active hours)
  or ``washing_station`` (where a tank is cleaned between incompatible loads).

Downgrading deletes the models' alerts and routes and the zones of the new kinds.

Revision ID: 0020
Revises: 0019
Create Date: 2026-12-05 10:20:00.000000
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects.postgresql import ARRAY

revision: str = "0020"
down_revision: str | None = "0019"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

OLD_RULES = (
    "illegal_parking",
    "forbidden_zone_parking",
    "overspeed",
    "corridor_deviation",
    "terminal_emergency",
    "terminal_overspeed",
    "terminal_fatigue",
    "terminal_antenna_cut",
    "terminal_power_cut",
)
#: rule → (departments, carrier told, ack s, dispose s); None: the engine's default deadline.
#: Who acts on what (DOMAIN §3.1): the transport department on waybills, crews and the
#: vehicle's movements, traffic police on the road, emergency management on enterprises' sites
#: and loading, market regulation on tanks (washing and mixed loading).
ROUTES = {
    "moving_without_waybill": (("transport", "traffic_police"), True, 900, None),
    "loading_check_failed": (("transport", "emergency_management"), True, None, None),
    "no_escort": (("transport", "traffic_police"), True, 900, None),
    "waybill_corridor_deviation": (("transport", "traffic_police"), True, None, None),
    "undeclared_stop": (("transport", "traffic_police"), True, None, None),
    "wrong_destination": (("emergency_management", "transport"), True, 900, None),
    "fatigue_continuous": (("traffic_police", "transport"), True, 600, None),
    "fatigue_daily": (("transport",), True, None, None),
    "restricted_hours": (("traffic_police",), True, 600, None),
    "positioning_gap": (("transport",), True, None, None),
    "mixed_loading": (("market_regulation", "transport"), True, None, None),
}
OLD_ZONE_KINDS = (
    "designated_parking",
    "school",
    "hospital",
    "residential",
    "water_source",
    "chemical_park",
)
NEW_ZONE_KINDS = ("hazmat_restricted", "washing_station")


def _in(values: Sequence[str]) -> str:
    return "(" + ", ".join(f"'{v}'" for v in values) + ")"


def _replace_check(name: str, table: str, condition: str) -> None:
    # Migrations 0001 and 0004 named these with op.f, so op.f finds them (0009 explains).
    op.drop_constraint(op.f(name), table, type_="check")
    op.create_check_constraint(op.f(name), table, condition)


def upgrade() -> None:
    _replace_check("ck_alerts_rule", "alerts", f"rule IN {_in(OLD_RULES + tuple(ROUTES))}")
    _replace_check("ck_zones_kind", "zones", f"kind IN {_in(OLD_ZONE_KINDS + NEW_ZONE_KINDS)}")
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


def downgrade() -> None:
    op.execute(f"DELETE FROM alerts WHERE rule IN {_in(tuple(ROUTES))}")
    op.execute(f"DELETE FROM alert_routes WHERE rule IN {_in(tuple(ROUTES))}")
    new_zones = f"(SELECT id FROM zones WHERE kind IN {_in(NEW_ZONE_KINDS)})"
    op.execute(f"DELETE FROM alerts WHERE zone_id IN {new_zones}")
    op.execute(f"UPDATE stops SET zone_id = NULL WHERE zone_id IN {new_zones}")
    op.execute(f"DELETE FROM zones WHERE kind IN {_in(NEW_ZONE_KINDS)}")
    _replace_check("ck_zones_kind", "zones", f"kind IN {_in(OLD_ZONE_KINDS)}")
    _replace_check("ck_alerts_rule", "alerts", f"rule IN {_in(OLD_RULES)}")
