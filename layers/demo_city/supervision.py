"""Supervision in the demo city (issue 15): diagnosis dates (a few expired), a direct-red
enterprise with its finding, and one major hidden danger in each closing state.

Set-based SQL over what the seed already stored, then one re-rating of the enterprises it
touched: memory and time stay flat whatever the scale. Picks are deterministic (by id and
seed), so a seed gives the same city; what was planted goes into the ground truth's
``supervision`` section.
"""

from __future__ import annotations

import datetime as dt
from typing import Any, Final

import psycopg

#: Evidence of the planted direct-red finding (MEM 2018 guide, docs/domain.md §2.2).
FINDING_EVIDENCE: Final = "现场核查：3号在役装置无正规设计文件，未开展安全设计诊断（演示数据）"
#: The planted major dangers: (state, 2017 criterion, title).
MAJOR_DANGERS: Final = (
    ("found", "MHD05", "二级重大危险源罐区未实现紧急切断功能（演示）"),
    ("rectification_reported", "MHD12", "装卸区可燃气体检测报警未按标准设置（演示）"),
    ("rectified", "MHD04", "硝化工艺装置紧急停车系统未投用（演示）"),
)


def plant(conn: psycopg.Connection, seed: int, scale: float, today: dt.date) -> dict[str, Any]:
    """Plant and commit; answers the truth section (``enterprises`` lists what to re-rate)."""
    expired_n = max(3, round(50 * scale))
    # Diagnosed within the last three years, by a hash of id and seed; the first ``expired_n``
    # hazmat enterprises by that hash were diagnosed three to five years ago (expired).
    rows = conn.execute(
        "WITH d AS (SELECT id, is_hazmat, abs(hashtext(id::text || ':' || %(seed)s::text)) AS h"
        "           FROM enterprises WHERE diagnosis_score IS NOT NULL),"
        " r AS (SELECT id, h, is_hazmat AND row_number() OVER"
        "           (PARTITION BY is_hazmat ORDER BY h, id) <= %(n)s AS expired FROM d)"
        " UPDATE enterprises e SET diagnosed_on = CASE WHEN r.expired"
        "   THEN %(today)s::date - (1100 + r.h %% 700)::int"
        "   ELSE %(today)s::date - (r.h %% 1090)::int END"
        " FROM r WHERE e.id = r.id RETURNING e.id, r.expired",
        {"seed": seed, "n": expired_n, "today": today},
    ).fetchall()
    expired = sorted(int(i) for i, x in rows if x)

    # The direct-red enterprise: a hazmat enterprise otherwise rated blue or yellow (so the
    # finding is what makes it red), not one of the expired ones.
    picks = [
        int(r[0])
        for r in conn.execute(
            "SELECT id FROM enterprises WHERE is_hazmat AND dynamic_color IN ('blue', 'yellow')"
            " AND NOT (id = ANY(%s)) ORDER BY abs(hashtext(id::text || ':dr' || %s::text)), id"
            " LIMIT 4",
            (expired, seed),
        )
    ]
    if len(picks) < 4:
        raise RuntimeError("the demo city needs four calm hazmat enterprises for supervision")
    red, dangers_at = picks[0], picks[1:]
    conn.execute(
        "INSERT INTO enterprise_findings (enterprise_id, code, evidence, found_on, found_by)"
        " VALUES (%s, 'unit_not_designed_not_diagnosed', %s, %s, 'regulator:演示区应急管理局')",
        (red, FINDING_EVIDENCE, today - dt.timedelta(days=12)),
    )
    planted: list[dict[str, Any]] = []
    for enterprise_id, (state, criterion, title) in zip(dangers_at, MAJOR_DANGERS, strict=True):
        found = dt.datetime.combine(today - dt.timedelta(days=40), dt.time(2), tzinfo=dt.UTC)
        reported = found + dt.timedelta(days=20) if state != "found" else None
        accepted = found + dt.timedelta(days=25) if state == "rectified" else None
        row = conn.execute(
            "INSERT INTO hidden_dangers (enterprise_id, title, is_major, major_criterion,"
            " status, found_at, deadline, rectified_at, reported_at, reported_by,"
            " report_evidence, accepted_at, accepted_by, acceptance_note)"
            " VALUES (%s, %s, true, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s) RETURNING id",
            (
                enterprise_id,
                title,
                criterion,
                state,
                found,
                today + dt.timedelta(days=5),
                accepted,
                reported,
                "enterprise:安全管理员" if reported else None,
                "整改完成，附现场照片与检测报告（演示）" if reported else None,
                accepted,
                "regulator:演示区应急管理局" if accepted else None,
                "复查合格，同意销号（演示）" if accepted else None,
            ),
        ).fetchone()
        assert row is not None
        danger_id = row[0]
        planted.append(
            {
                "id": int(danger_id),
                "enterprise_id": enterprise_id,
                "status": state,
                "criterion": criterion,
                "raises": state != "rectified",
            }
        )
    conn.commit()
    return {
        "direct_red": {"enterprise_id": red, "code": "unit_not_designed_not_diagnosed"},
        "expired_diagnoses": expired,
        "major_dangers": planted,
        "enterprises": sorted({red, *expired, *dangers_at}),
    }
