"""The demo city's bulletins: a week of issued bulletins, with penalties, accidents and actions.

Why: the bulletin pages should open on history that is true of the stored data — what was on
each day's list and what the regulators did about it — not on an empty list. Drawn from the
seed; only ``today`` (the local day of the last bulletin) comes from the caller.

- Penalties on about 3 % of the hazmat enterprises and accidents (general grade, injuries
  only) on about 0.5 %, dated within the last year: they put enterprises on the lists
  (S4, K6) through the real watch-list rules.
- The bulletins of the 7 days ending ``today``, issued by the real issuing code.
- Actions: about 60 % of each bulletin's key-attention entries get an interview, inspection
  or enforcement 0–4 days after the bulletin (never after ``today``), so the department index
  has both prompt and late departments to show.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from psycopg import AsyncConnection

from layers.prevention.bulletin import BulletinRules, issue, record_action

DAYS = 7
ACTOR = "system:demo city"
PENALTY_SHARE = 0.03
ACCIDENT_SHARE = 0.005
ACTION_SHARE = 0.6
PENALTY_REASONS = (
    "未按规定对重大危险源进行安全评估",
    "特种作业人员未持证上岗",
    "未按规定设置安全警示标志",
    "安全设备未经常性维护保养",
    "未建立事故隐患排查治理制度",
)
ACCIDENT_TEXTS = (
    "装卸作业软管接口泄漏，一名操作工轻度灼伤",
    "检修作业中高处坠落，一人受伤",
    "储罐区阀门泄漏引发小范围闪燃，两人轻伤",
)
ACTION_NOTES = {
    "interview": "约谈企业主要负责人，责令限期整改",
    "inspection": "现场检查，复核整改措施落实情况",
    "enforcement": "立案调查，依法实施行政处罚",
}


@dataclass
class BulletinSeed:
    penalties: int = 0
    accidents: int = 0
    bulletins: list[dict[str, Any]] = field(default_factory=list)
    actions: int = 0

    @property
    def truth(self) -> dict[str, Any]:
        return {
            "penalties": self.penalties,
            "accidents": self.accidents,
            "bulletins": [
                {
                    "number": b["number"],
                    "date": b["date"],
                    "key": len(b["key_attention"]),
                    "suggested": len(b["suggested_attention"]),
                }
                for b in self.bulletins
            ],
            "actions": self.actions,
        }


async def seed_bulletins(
    conn: AsyncConnection[Any], rng: np.random.Generator, today: dt.date, rules: BulletinRules
) -> BulletinSeed:
    out = BulletinSeed()
    cur = await conn.execute("SELECT id FROM enterprises WHERE is_hazmat ORDER BY id")
    hazmat = [int(r[0]) for r in await cur.fetchall()]
    await _plant_sanctions(conn, rng, today, hazmat, out)
    for back in range(DAYS - 1, -1, -1):
        day = today - dt.timedelta(days=back)
        bulletin, _ = await issue(conn, day, rules, ACTOR)
        out.bulletins.append(bulletin)
        for entry in bulletin["key_attention"]:
            if rng.random() >= ACTION_SHARE:
                continue
            taken = day + dt.timedelta(days=int(rng.integers(0, 5)))
            if taken > today:
                continue
            kind = str(rng.choice(list(ACTION_NOTES)))
            await record_action(
                conn,
                bulletin["number"],
                entry["enterprise_id"],
                kind,
                taken,
                ACTION_NOTES[kind],
                ACTOR,
            )
            out.actions += 1
    return out


async def _plant_sanctions(
    conn: AsyncConnection[Any],
    rng: np.random.Generator,
    today: dt.date,
    hazmat: list[int],
    out: BulletinSeed,
) -> None:
    for n, eid in enumerate(hazmat):
        if rng.random() < PENALTY_SHARE:
            decided = today - dt.timedelta(days=int(rng.integers(1, 360)))
            await conn.execute(
                "INSERT INTO penalties (enterprise_id, decided_on, decision_no, authority,"
                " amount_yuan, reason) VALUES (%s, %s, %s, %s, %s, %s)",
                (
                    eid,
                    decided,
                    f"甬应急罚〔{decided.year}〕{n + 1:04d}号",
                    "宁波市应急管理局",
                    float(rng.integers(1, 30)) * 10_000,
                    str(rng.choice(PENALTY_REASONS)),
                ),
            )
            out.penalties += 1
        if rng.random() < ACCIDENT_SHARE:
            await conn.execute(
                "INSERT INTO accidents (enterprise_id, occurred_on, grade, deaths, injuries,"
                " description) VALUES (%s, %s, 'general', 0, %s, %s)",
                (
                    eid,
                    today - dt.timedelta(days=int(rng.integers(1, 360))),
                    int(rng.integers(1, 3)),
                    str(rng.choice(ACCIDENT_TEXTS)),
                ),
            )
            out.accidents += 1
