"""Where every table goes on a Citus cluster: distributed (on which column, with which tables),
reference (a copy on every node) or local (the coordinator only). The one home of that choice.

Why these choices (docs/operations.md, "Moving to Citus"):

- Distributed: the tables that grow with the fleet and the sensor network and are written on
  the hot ingest path. Fixes, vehicle state, stops and alerts are sharded by ``vehicle_id``
  and colocated, so one vehicle's batch touches one shard of each; readings, monitoring state
  and alarms likewise by ``point_id``.
- Reference: master data the hot path joins or that sharded rows point at (districts, zones,
  vehicles, monitoring points, enterprises …) and the enterprise-side registers written at an
  officer's pace. Small, read everywhere; a write goes to every node, which is fine at their
  rates, and a foreign key from a sharded row to them stays enforceable.
- Local: coordinator-only state that nothing sharded points at (keys, audit, the webhook
  outbox and its subscriptions, rejected fixes, hexagon rollups, Alembic's own row).

tests/test_citus_ready.py holds the live schema to Citus's rules with
layers/core/citus_rules.py, and makes every new table take a side here.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from typing import Final


@dataclass(frozen=True)
class Sharding:
    """A distributed table's column and colocation group (tables of a group share shards)."""

    column: str
    group: str


@dataclass(frozen=True)
class Plan:
    distributed: Mapping[str, Sharding]
    reference: tuple[str, ...]
    #: table → why it stays on the coordinator
    local: Mapping[str, str] = field(default_factory=dict)

    def kind(self, table: str) -> str | None:
        """``distributed``, ``reference``, ``local`` or None (undeclared)."""
        if table in self.distributed:
            return "distributed"
        if table in self.reference:
            return "reference"
        if table in self.local:
            return "local"
        return None

    def groups(self) -> dict[str, list[str]]:
        out: dict[str, list[str]] = {}
        for table, sharding in self.distributed.items():
            out.setdefault(sharding.group, []).append(table)
        return out


_VEHICLE = Sharding("vehicle_id", "vehicle")
_POINT = Sharding("point_id", "point")

PLAN: Final = Plan(
    distributed={
        "vehicle_state": _VEHICLE,
        "positions": _VEHICLE,
        "stops": _VEHICLE,
        "alerts": _VEHICLE,
        "monitoring_state": _POINT,
        "readings": _POINT,
        "alarms": _POINT,
    },
    reference=(
        # geography and the fleet / sensor network the sharded rows point at
        "districts",
        "zones",
        "roads",
        "enterprises",
        "vehicles",
        "carriers",
        "crew_members",
        "waybills",
        "waybill_events",
        "jt808_terminals",  # looked up by phone (unique) on every terminal connection
        "vehicle_routes",
        "alert_routes",
        "hazard_sources",
        "hazard_source_substances",
        "pipelines",
        "pipeline_segments",
        "monitoring_points",
        "consequence_zones",
        "overlay_zones",
        # enterprise-side registers: officer-paced writes, joined with enterprises
        "risk_units",
        "hidden_dangers",
        "penalties",
        "accidents",
        "bulletins",
        "bulletin_entries",
        "bulletin_actions",
        "inspection_tasks",
        "inspection_task_rounds",
        "enterprise_findings",
        "score_events",
        "score_earn_backs",
        "rule_sets",
        "rule_items",
        "rule_measures",
        "rule_assignments",
        "licences",
        "certificates",
        "expiry_notices",
    ),
    local={
        "alembic_version": "the migration head; DDL runs on the coordinator",
        "api_keys": "authentication is checked on the coordinator; nothing points at a key",
        "audit_log": "an append-only log written and read on the coordinator",
        "webhook_subscriptions": "holds the signing secrets; only the outbox points at it",
        "webhook_outbox": "claimed with FOR UPDATE SKIP LOCKED across all due rows, which "
        "Citus runs only on one shard or a local table; half its rows are not alerts",
        "position_rejects": "a diagnostic log of dropped fixes (vehicle_id may be unknown)",
        "h3_cells": "hexagon rollups rewritten whole by the coordinator and read by tiles",
    },
)


def _dependency_order(tables: set[str]) -> list[str]:
    """``tables`` with every table after the tables it references (the ORM's FK graph)."""
    from layers.core.schema import Base

    ordered = [t.name for t in Base.metadata.sorted_tables if t.name in tables]
    return ordered + sorted(tables - set(ordered))


def citus_sql(
    plan: Plan = PLAN, coordinator: str = "coordinator", port: int = 5432
) -> Iterator[str]:
    """The statements that turn a migrated database on a Citus coordinator into the plan.

    Run once, after ``georisk migrate`` and before the first load (distributing copies the
    existing rows into shards). Reference tables come first (a sharded table's foreign key to
    one needs it distributed already), parents before children, within each colocation group
    too (alarms before the state that points at them); a group starts on its first table.
    """
    yield "-- generated by `georisk db citus-sql` from layers/core/distribution.py"
    yield "CREATE EXTENSION IF NOT EXISTS citus;"
    # The coordinator in the metadata: local tables may then keep their foreign keys to
    # reference tables (Citus makes them "Citus local tables").
    yield f"SELECT citus_set_coordinator_host('{coordinator}', {port});"
    for table in _dependency_order(set(plan.reference)):
        yield f"SELECT create_reference_table('public.{table}');"
    for group, members in plan.groups().items():
        tables = _dependency_order(set(members))
        anchor = tables[0]
        yield f"-- colocation group {group!r}: sharded by {plan.distributed[anchor].column}"
        for table in tables:
            colocate = "none" if table == anchor else f"public.{anchor}"
            yield (
                f"SELECT create_distributed_table('public.{table}',"
                f" '{plan.distributed[table].column}', colocate_with => '{colocate}');"
            )
    for table, why in plan.local.items():
        yield f"-- stays on the coordinator: {table} ({why})"
