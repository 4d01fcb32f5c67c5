"""The demo city's safety scores beyond the live layer's Xiaoshan deductions (docs/rules.md).

Why: every part of the scoring should show on the demo map — both SAMPLE sets assigned,
deductions in every state, earned-back points, licences and certificates expired, expiring
tomorrow and within the 30-day warning, and the automatic job's deductions and warnings.

- ``assign`` (before layers/demo_city/live.py writes its deductions): a third of the
  production enterprises of one district are tagged ``furnace`` and that district's furnace
  enterprises are assigned to the Hailing sample set (the shipped assignment names Hailing's
  real district, which the demo city does not have).
- ``write`` (after): Hailing deductions from the last and the current cycle (accepted ones
  cleared on 1 October, the others carried over), lifecycle states on some Xiaoshan
  deductions, earn-backs, licences and certificates. ``run_automatic`` then deducts and warns
  as the scoring clock would.
"""

from __future__ import annotations

import datetime as dt
from typing import Any, Final

import numpy as np
import psycopg
from psycopg import AsyncConnection

from layers.prevention.automatic import AutoReport, run_automatic

FURNACE_DISTRICT: Final = "330206"  # Beilun: the port's heavy industry
DEMO_ACTOR: Final = "demo city"
#: (item, points, days before now, state) of the Hailing deductions, per furnace enterprise in
#: turn; states cover the lifecycle and the 1 October rule (Hailing's cycle starts then).
HAILING_PLANS: Final = (
    (("HL-03", 3, 20, "open"),),  # 3 points: more inspections
    (("HL-01", 6, 30, "reported"), ("HL-05", 2, 200, "accepted")),  # 6: interview
    (("HL-08", 6, 15, "open"), ("HL-12", 3, 200, "open"), ("HL-06", 1, 40, "rejected")),  # 10
    (("HL-11", 3, 25, "voided"), ("HL-15", 2, 10, "open")),
)


def assign(conn: psycopg.Connection, seed: int) -> list[int]:
    """Tag furnace enterprises and assign them to Hailing; their ids."""
    rng = np.random.default_rng([seed, 41])
    ids = [
        int(r[0])
        for r in conn.execute(
            "SELECT id FROM enterprises WHERE district = %s AND category = 'production'"
            " ORDER BY id",
            (FURNACE_DISTRICT,),
        ).fetchall()
    ]
    n = min(len(ids), max(len(HAILING_PLANS), len(ids) // 3))
    chosen = sorted(int(x) for x in rng.choice(ids, size=n, replace=False)) if n else []
    conn.execute(
        "UPDATE enterprises SET tags = array_append(tags, 'furnace') WHERE id = ANY(%s)",
        (chosen,),
    )
    # Not a data table (a re-seed keeps it): replace rather than add.
    conn.execute(
        "DELETE FROM rule_assignments WHERE rule_set_code = 'hailing' AND district = %s"
        " AND tag = 'furnace' AND category IS NULL",
        (FURNACE_DISTRICT,),
    )
    conn.execute(
        "INSERT INTO rule_assignments (rule_set_code, district, tag, note)"
        " VALUES ('hailing', %s, 'furnace', 'demo city: furnace enterprises of Beilun')",
        (FURNACE_DISTRICT,),
    )
    conn.commit()
    return chosen


def _version(conn: psycopg.Connection, code: str) -> int:
    row = conn.execute("SELECT max(version) FROM rule_sets WHERE code = %s", (code,)).fetchone()
    assert row is not None and row[0] is not None, f"rule set {code} missing"
    return int(row[0])


def _lifecycle(conn: psycopg.Connection, event_id: int, state: str, at: dt.datetime) -> None:
    """Move one deduction to ``state`` the way the API would have."""
    evidence = "https://example.org/demo/rectification.jpg"
    if state in ("reported", "accepted", "rejected"):
        conn.execute(
            "UPDATE score_events SET state = 'reported', reported_at = %s, reported_by = %s,"
            " report_note = '已整改，附照片', report_evidence_url = %s WHERE id = %s",
            (at + dt.timedelta(days=3), "enterprise:demo", evidence, event_id),
        )
    if state in ("accepted", "rejected"):
        conn.execute(
            "UPDATE score_events SET state = %s, reviewed_at = %s, reviewed_by = %s,"
            " review_note = %s, reinspected_on = %s WHERE id = %s",
            (
                state,
                at + dt.timedelta(days=7),
                "regulator:demo",
                "复查合格" if state == "accepted" else "复查不合格，继续整改",
                (at + dt.timedelta(days=6)).date(),
                event_id,
            ),
        )
    if state == "voided":
        conn.execute(
            "UPDATE score_events SET state = 'voided', voided_at = %s, voided_by = %s,"
            " void_reason = '误扣：检查记录对应其他企业' WHERE id = %s",
            (at + dt.timedelta(days=1), "regulator:demo", event_id),
        )


def write(
    conn: psycopg.Connection, seed: int, now: dt.datetime, furnaces: list[int]
) -> dict[str, Any]:
    """Hailing deductions, Xiaoshan states, earn-backs, licences, certificates; the truth."""
    rng = np.random.default_rng([seed, 42])
    truth: dict[str, Any] = {"furnaces": furnaces, "hailing": [], "xiaoshan_states": {}}
    version = _version(conn, "hailing")
    for ent, plan in zip(furnaces, HAILING_PLANS, strict=False):
        for item, points, days, state in plan:
            at = now - dt.timedelta(days=days)
            row = conn.execute(
                "INSERT INTO score_events (enterprise_id, rule_set, rule_set_version, item_code,"
                " points, source, occurred_at, note, created_by)"
                " VALUES (%s, 'hailing', %s, %s, %s, 'inspection', %s, '演示数据', %s)"
                " RETURNING id",
                (ent, version, item, points, at, DEMO_ACTOR),
            ).fetchone()
            assert row is not None
            _lifecycle(conn, int(row[0]), state, at)
            truth["hailing"].append(
                {"enterprise_id": ent, "item": item, "points": points, "state": state}
            )
    if furnaces:
        # Earned back: one approved training (counted, capped by the set), one awaiting review.
        for ent, state in (
            (furnaces[min(2, len(furnaces) - 1)], "approved"),
            (furnaces[0], "requested"),
        ):
            conn.execute(
                "INSERT INTO score_earn_backs (enterprise_id, rule_set, rule_set_version, points,"
                " reason, note, evidence_url, occurred_at, state, requested_by, reviewed_by,"
                " reviewed_at) VALUES (%s, 'hailing', %s, 1, 'training', '全员安全培训 16 学时',"
                " 'https://example.org/demo/training.pdf', %s, %s, 'enterprise:demo', %s, %s)",
                (
                    ent,
                    version,
                    now - dt.timedelta(days=5),
                    state,
                    "regulator:demo" if state == "approved" else None,
                    now - dt.timedelta(days=2) if state == "approved" else None,
                ),
            )
    # Xiaoshan deductions of the live layer in every state.
    events = [
        (int(r[0]), r[1])
        for r in conn.execute(
            "SELECT id, occurred_at FROM score_events WHERE rule_set = 'xiaoshan'"
            " AND source = 'inspection' ORDER BY id"
        ).fetchall()
    ]
    for (event_id, at), state in zip(
        events, ("reported", "accepted", "rejected", "voided"), strict=False
    ):
        _lifecycle(conn, event_id, state, at)
        truth["xiaoshan_states"][str(event_id)] = state
    truth["documents"], with_documents = _documents(conn, rng, now)
    truth["enterprises"] = sorted(set(furnaces) | set(with_documents))
    conn.commit()
    return truth


def _documents(
    conn: psycopg.Connection, rng: np.random.Generator, now: dt.datetime
) -> tuple[dict[str, int], list[int]]:
    """Licences and certificates: most valid, some expired, some within the warning."""
    today = now.astimezone(dt.timezone(dt.timedelta(hours=8))).date()
    ids = [
        int(r[0])
        for r in conn.execute("SELECT id FROM enterprises WHERE is_hazmat ORDER BY id").fetchall()
    ]
    picks = [int(x) for x in rng.choice(ids, size=min(len(ids), 24), replace=False)]
    # days from today of valid_until: -10 expired, 0 expires tomorrow, 10 warned, else valid.
    offsets = [-10, 0, 10, 25] + [int(x) for x in rng.integers(60, 900, size=len(picks))]
    licences = certificates = 0
    for i, ent in enumerate(picks):
        until = today + dt.timedelta(days=offsets[i])
        conn.execute(
            "INSERT INTO licences (enterprise_id, kind, number, issued_on, valid_until)"
            " VALUES (%s, 'hazmat_business', %s, %s, %s)",
            (ent, f"危化经字〔{today.year}〕{1000 + i}", until - dt.timedelta(days=3 * 365), until),
        )
        licences += 1
        for role, holder in (
            ("principal", "张总"),
            ("safety_manager", "李安全"),
            ("special_operations", "王焊工"),
        ):
            shift = offsets[(i + len(role)) % len(offsets)] if role != "principal" else offsets[i]
            c_until = today + dt.timedelta(days=shift)
            conn.execute(
                "INSERT INTO certificates (enterprise_id, holder, role, operation, number,"
                " issued_on, valid_until) VALUES (%s, %s, %s, %s, %s, %s, %s)",
                (
                    ent,
                    holder,
                    role,
                    "焊接与热切割作业" if role == "special_operations" else None,
                    f"C{ent:05d}{role[:2].upper()}",
                    c_until - dt.timedelta(days=3 * 365),
                    c_until,
                ),
            )
            certificates += 1
    return {"licences": licences, "certificates": certificates}, picks


async def automatic(url: str, now: dt.datetime, enterprise_ids: list[int]) -> AutoReport:
    """What the scoring clock would do today for the enterprises written here (the rest of the
    city meets the clock when the server runs it)."""
    today = now.astimezone(dt.timezone(dt.timedelta(hours=8))).date()
    async with await AsyncConnection.connect(url) as conn:
        return await run_automatic(conn, today, now, enterprise_ids)
