"""The schema stays Citus-ready (issue 17 item 4): the migrated database, read from its catalog,
meets Citus's key rules under the plan of layers/core/distribution.py, and the checker finds
each kind of breach when one is planted (so its silence on the real schema means something).
"""

from __future__ import annotations

from collections.abc import Iterator

import psycopg
import pytest
from click.testing import CliRunner

from geo_api.cli import main
from layers.core.citus_rules import violations
from layers.core.distribution import PLAN, Plan, Sharding, citus_sql


def test_the_migrated_schema_meets_citus_rules(db: psycopg.Connection) -> None:
    assert violations(db) == []


def test_each_table_takes_exactly_one_side() -> None:
    distributed, reference, local = set(PLAN.distributed), set(PLAN.reference), set(PLAN.local)
    assert not distributed & reference and not distributed & local and not reference & local
    assert len(PLAN.reference) == len(reference)
    # The list: fixes, vehicle state, stops, alerts by vehicle; readings, monitoring
    # state, alarms by point.
    assert {t: (s.column, s.group) for t, s in PLAN.distributed.items()} == {
        "positions": ("vehicle_id", "vehicle"),
        "vehicle_state": ("vehicle_id", "vehicle"),
        "stops": ("vehicle_id", "vehicle"),
        "alerts": ("vehicle_id", "vehicle"),
        "readings": ("point_id", "point"),
        "monitoring_state": ("point_id", "point"),
        "alarms": ("point_id", "point"),
    }
    assert {"districts", "zones", "rule_sets", "enterprises", "vehicles"} <= reference


def test_sharded_keys_hold_their_column(db: psycopg.Connection) -> None:
    keys = dict(
        db.execute(
            "SELECT conrelid::regclass::text, pg_get_constraintdef(oid) FROM pg_constraint"
            " WHERE contype = 'p' AND conrelid::regclass::text IN ('stops', 'alerts', 'alarms')"
        ).fetchall()
    )
    assert keys == {
        "stops": "PRIMARY KEY (id, vehicle_id)",
        "alerts": "PRIMARY KEY (id, vehicle_id)",
        "alarms": "PRIMARY KEY (id, point_id)",
    }
    links = {
        r[0]
        for r in db.execute(
            "SELECT pg_get_constraintdef(oid) FROM pg_constraint WHERE contype = 'f'"
            " AND conrelid::regclass::text IN ('alerts', 'monitoring_state', 'webhook_outbox')"
        ).fetchall()
    }
    assert "FOREIGN KEY (vehicle_id, stop_id) REFERENCES stops(vehicle_id, id)" in links
    assert "FOREIGN KEY (point_id, alarm_id) REFERENCES alarms(point_id, id)" in links
    assert not any("REFERENCES alerts" in link for link in links)  # the outbox is local


def test_an_alert_without_a_vehicle_is_refused(db: psycopg.Connection) -> None:
    with pytest.raises(psycopg.errors.NotNullViolation):
        db.execute(
            "INSERT INTO alerts (vehicle_id, rule, episode_start) VALUES (NULL, 'overspeed', now())"
        )


# -- planted breaches ----------------------------------------------------------------------
_PLANT = """
CREATE SCHEMA plant;
CREATE TABLE plant.ref (id int PRIMARY KEY);
CREATE TABLE plant.loc (id int PRIMARY KEY);
CREATE TABLE plant.a (k int NOT NULL, id bigint PRIMARY KEY, UNIQUE (k, id));
CREATE TABLE plant.b (k bigint, a_id bigint REFERENCES plant.a (id),
                      loc_id int REFERENCES plant.loc);
CREATE TABLE plant.c (k int NOT NULL, a_id bigint, PRIMARY KEY (k),
                      FOREIGN KEY (k, a_id) REFERENCES plant.a (k, id) ON DELETE SET NULL (a_id));
CREATE TABLE plant.other (j int NOT NULL PRIMARY KEY, k int, a_id bigint,
                          FOREIGN KEY (k, a_id) REFERENCES plant.a (k, id));
CREATE TABLE plant.ref2 (id int PRIMARY KEY, k int, a_id bigint,
                         FOREIGN KEY (k, a_id) REFERENCES plant.a (k, id));
CREATE TABLE plant.p (k int NOT NULL, ts timestamptz NOT NULL, PRIMARY KEY (k, ts))
  PARTITION BY RANGE (ts);
CREATE TABLE plant.p_1 PARTITION OF plant.p FOR VALUES FROM ('2026-01-01') TO ('2026-01-02');
CREATE UNIQUE INDEX p_1_ts ON plant.p_1 (ts);
CREATE TABLE plant.ok_parent (k int NOT NULL, id bigint, PRIMARY KEY (k, id));
CREATE TABLE plant.ok_child (k int NOT NULL, id bigint, parent_id bigint, ref_id int
  REFERENCES plant.ref ON DELETE CASCADE, PRIMARY KEY (k, id),
  FOREIGN KEY (k, parent_id) REFERENCES plant.ok_parent (k, id) ON DELETE CASCADE);
CREATE TABLE plant.stray (id int);
"""
_PLANTED = Plan(
    distributed={
        "a": Sharding("k", "g"),
        "b": Sharding("k", "g"),
        "c": Sharding("k", "g"),
        "other": Sharding("j", "h"),
        "p": Sharding("k", "g"),
        "ok_parent": Sharding("k", "g"),
        "ok_child": Sharding("k", "g"),
    },
    reference=("ref", "ref2", "ghost"),
    local={"loc": "planted", "ref": "planted twice"},
)


@pytest.fixture()
def planted(database_url: str) -> Iterator[list[str]]:
    """The checker's answer on a schema built to break each rule once (rolled back)."""
    with psycopg.connect(database_url) as conn:
        conn.execute(_PLANT.encode())
        yield violations(conn, _PLANTED, schema="plant")
        conn.rollback()


def test_the_checker_finds_each_planted_breach(planted: list[str]) -> None:
    expected = [
        "ref: declared in reference and local (layers/core/distribution.py)",
        "stray: declared in none of distributed/reference/local (layers/core/distribution.py)",
        "ghost: declared but not in the database",
        "plant.a: unique a_pkey lacks the distribution column k",
        "plant.b.k: the distribution column is nullable",
        "plant.p_1: unique plant.p_1_ts lacks the distribution column k",
        "colocation group g: distribution columns differ in type",
        "b: b_a_id_fkey does not join b.k to a.k",
        "b: b_loc_id_fkey links distributed b and local loc",
        "c: c_k_a_id_fkey holds the distribution column and has ON DELETE SET NULL",
        "other: other_k_a_id_fkey links colocation groups h and g",
        "other: other_k_a_id_fkey does not join other.j to a.k",
        "ref2: ref2_k_a_id_fkey points from a reference table to distributed table a",
    ]
    for line in expected:
        assert any(v.startswith(line) for v in planted), (line, planted)
    # Nothing else: the well-formed pair (composite key, colocated link, a CASCADE to a
    # reference table) raises no complaint.
    assert len(planted) == len(expected), planted
    assert not any(v.startswith(("ok_", "plant.ok_")) for v in planted)


# -- the operator's SQL --------------------------------------------------------------------
def test_the_sql_plan_distributes_in_dependency_order() -> None:
    lines = list(citus_sql(coordinator="citus-coordinator", port=5432))
    assert "SELECT citus_set_coordinator_host('citus-coordinator', 5432);" in lines
    calls = [line for line in lines if line.startswith("SELECT create_")]
    named = [line.split("'public.")[1].split("'")[0] for line in calls]
    assert sorted(named) == sorted([*PLAN.reference, *PLAN.distributed])  # each once
    first_distributed = next(i for i, c in enumerate(calls) if "distributed" in c)
    assert all("reference" in c for c in calls[:first_distributed])
    assert all("distributed" in c for c in calls[first_distributed:])
    order = {name: i for i, name in enumerate(named)}
    # referenced before referencing
    assert order["districts"] < order["enterprises"] < order["vehicles"]
    assert order["stops"] < order["alerts"] and order["alarms"] < order["monitoring_state"]
    anchors = [c for c in calls if "colocate_with => 'none'" in c]
    assert len(anchors) == 2  # one new colocation group per group, the rest join it
    assert (
        "SELECT create_distributed_table('public.alerts', 'vehicle_id',"
        " colocate_with => 'public.positions');" in calls
    )
    assert all(any(f"coordinator: {t} (" in line for line in lines) for t in PLAN.local)


def test_the_cli_checks_then_prints(database_url: str) -> None:
    result = CliRunner().invoke(
        main, ["db", "citus-sql", "--check"], env={"DATABASE_URL": database_url}
    )
    assert result.exit_code == 0, result.output
    assert "SELECT create_reference_table('public.districts');" in result.output
