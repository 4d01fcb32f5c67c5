"""Citus-ready keys: the distribution column in every key of the sharded tables

Issue 17 item 4. Citus shards a table by one column and can only enforce a key or a foreign
key inside one shard, so each PRIMARY KEY / UNIQUE constraint of a distributed table must hold
its distribution column, and a foreign key between two distributed tables must hold it on both
sides (layers/core/distribution.py names the tables, their columns and colocation groups;
tests/test_citus_ready.py checks the catalog against those rules).

- ``stops``: PRIMARY KEY (id, vehicle_id) instead of (id).
- ``alerts``: ``vehicle_id`` NOT NULL (every writer — the tanker engine, the terminal alarms,
  the warning models — names the vehicle; a row without one, which no code writes, is
  deleted), PRIMARY KEY (id, vehicle_id), and its stop is referenced as
  (vehicle_id, stop_id) → stops (vehicle_id, id).
- ``alarms``: PRIMARY KEY (id, point_id); ``monitoring_state`` references its open alarm as
  (point_id, alarm_id) → alarms (point_id, id).
- Both links lose ``ON DELETE SET NULL``: Citus refuses SET NULL / SET DEFAULT on any foreign
  key that holds the distribution column — PostgreSQL 15's ``SET NULL (stop_id)`` too. The
  one writer that deletes stops (the tanker engine's replay, layers/transport/engine.py)
  clears its alerts' ``stop_id`` first; alarms are never deleted on their own (they go with
  their point, together with its state, in one statement).
- ``webhook_outbox`` loses its foreign key to ``alerts``: the outbox stays on the coordinator
  (its claim is ``FOR UPDATE SKIP LOCKED`` over all due rows, which Citus runs only on one
  shard or a local table, and half its rows are not about alerts), and Citus forbids a
  foreign key from a local table to a distributed one. A row already holds the alert's
  snapshot as its payload, so a delivery never needs the alert row; alerts are deleted only
  with their vehicle, and the outbox row of such an alert is kept as a delivery record.

The keys put ``id`` first: lookups by id alone (API, feeds, webhooks, acknowledgements) keep
using the key's index; ``id`` stays unique by its sequence.

``positions`` (vehicle_id, ts) and ``readings`` (point_id, ts) already hold their column, and
``vehicle_state`` / ``monitoring_state`` are keyed by it: unchanged.

Downgrading restores the single-column keys and the outbox's foreign key (outbox rows whose
alert is gone are deleted first).

Revision ID: 0021
Revises: 0020
Create Date: 2026-12-05 10:30:00.000000
"""

from collections.abc import Sequence

from alembic import op

revision: str = "0021"
down_revision: str | None = "0020"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    # Foreign keys that lean on the single-column keys go first.
    op.drop_constraint(op.f("fk_webhook_outbox_alert_id_alerts"), "webhook_outbox", "foreignkey")
    op.drop_constraint(op.f("fk_alerts_stop_id_stops"), "alerts", "foreignkey")
    op.drop_constraint(
        op.f("fk_monitoring_state_alarm_id_alarms"), "monitoring_state", "foreignkey"
    )

    op.drop_constraint(op.f("pk_stops"), "stops", "primary")
    op.create_primary_key(op.f("pk_stops"), "stops", ["id", "vehicle_id"])

    op.execute("DELETE FROM alerts WHERE vehicle_id IS NULL")
    op.alter_column("alerts", "vehicle_id", nullable=False)
    op.drop_constraint(op.f("pk_alerts"), "alerts", "primary")
    op.create_primary_key(op.f("pk_alerts"), "alerts", ["id", "vehicle_id"])
    op.create_foreign_key(
        op.f("fk_alerts_vehicle_id_stops"),
        "alerts",
        "stops",
        ["vehicle_id", "stop_id"],
        ["vehicle_id", "id"],
    )

    op.drop_constraint(op.f("pk_alarms"), "alarms", "primary")
    op.create_primary_key(op.f("pk_alarms"), "alarms", ["id", "point_id"])
    op.create_foreign_key(
        op.f("fk_monitoring_state_point_id_alarms"),
        "monitoring_state",
        "alarms",
        ["point_id", "alarm_id"],
        ["point_id", "id"],
    )


def downgrade() -> None:
    op.drop_constraint(
        op.f("fk_monitoring_state_point_id_alarms"), "monitoring_state", "foreignkey"
    )
    op.drop_constraint(op.f("fk_alerts_vehicle_id_stops"), "alerts", "foreignkey")

    op.drop_constraint(op.f("pk_alarms"), "alarms", "primary")
    op.create_primary_key(op.f("pk_alarms"), "alarms", ["id"])
    op.create_foreign_key(
        op.f("fk_monitoring_state_alarm_id_alarms"),
        "monitoring_state",
        "alarms",
        ["alarm_id"],
        ["id"],
        ondelete="SET NULL",
    )

    op.drop_constraint(op.f("pk_alerts"), "alerts", "primary")
    op.create_primary_key(op.f("pk_alerts"), "alerts", ["id"])
    op.alter_column("alerts", "vehicle_id", nullable=True)

    op.drop_constraint(op.f("pk_stops"), "stops", "primary")
    op.create_primary_key(op.f("pk_stops"), "stops", ["id"])
    op.create_foreign_key(
        op.f("fk_alerts_stop_id_stops"),
        "alerts",
        "stops",
        ["stop_id"],
        ["id"],
        ondelete="SET NULL",
    )

    op.execute(
        "DELETE FROM webhook_outbox o WHERE o.alert_id IS NOT NULL"
        " AND NOT EXISTS (SELECT 1 FROM alerts a WHERE a.id = o.alert_id)"
    )
    op.create_foreign_key(
        op.f("fk_webhook_outbox_alert_id_alerts"),
        "webhook_outbox",
        "alerts",
        ["alert_id"],
        ["id"],
        ondelete="CASCADE",
    )
