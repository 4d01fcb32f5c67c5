"""Automatic deductions and expiry warnings, run by the scoring clock (geo_api/scoring_task.py).

Triggers (an item of the enterprise's set carries each; a set without it deducts nothing):
- ``licence_expired``: a licence (``licences``; also ``enterprises.licence_expiry``, the
  safety production licence as imported) past its ``valid_until`` — the last valid day — is
  deducted on the day after, once per licence kind and expiry date;
- ``certificate_expired``: the same for a personnel certificate, once per certificate and date;
- ``alarm_undisposed``: a monitoring alarm not *disposed of* within ``dispose_within`` of being
  raised (acknowledging it is not handling it), once per alarm; only alarms due in the current
  cycle are deducted, and never past the item's ``cap_per_cycle`` in that cycle.
Warnings: a licence or certificate whose last valid day is within ``warn_days`` (30) gets one
expiry notice per document and date, told to the change stream and webhooks.

Idempotent however often it runs: each deduction has a ``trigger_key`` unique per enterprise,
each notice a ``notice_key``; runs are serialised by an advisory lock.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from psycopg import AsyncConnection
from psycopg.rows import dict_row

from layers.core import locks
from layers.core.locks import lock_enterprises
from layers.prevention.deductions import deducted_event
from layers.prevention.events import publish
from layers.prevention.rule_book import RuleBook, RuleSet, load_rule_book


@dataclass
class AutoReport:
    deducted: list[int] = field(default_factory=list)  # enterprises with new deductions
    deductions: list[int] = field(default_factory=list)  # score_events ids
    warnings: list[str] = field(default_factory=list)  # notice keys
    capped: int = 0  # alarm instances left out by an item's cap


@dataclass(frozen=True)
class _Due:
    enterprise_id: int
    trigger: str
    key: str
    at: dt.datetime  # when it became deductible
    note: str


def _midnight(day: dt.date) -> dt.datetime:
    # UTC midnight keeps the deduction on that calendar day wherever the cycle is judged.
    return dt.datetime.combine(day, dt.time(0), tzinfo=dt.UTC)


_DOCUMENTS_SQL = """
SELECT l.enterprise_id, 'licence' AS subject, 'licence:' || l.kind || ':' || l.valid_until AS key,
       l.kind AS label, l.valid_until
FROM licences l WHERE %(all)s OR l.enterprise_id = ANY(%(ids)s)
UNION
SELECT e.id, 'licence', 'licence:safety_production:' || e.licence_expiry, 'safety_production',
       e.licence_expiry
FROM enterprises e WHERE e.licence_expiry IS NOT NULL AND (%(all)s OR e.id = ANY(%(ids)s))
UNION ALL
SELECT c.enterprise_id, 'certificate', 'certificate:' || c.id || ':' || c.valid_until,
       c.role || ': ' || c.holder, c.valid_until
FROM certificates c WHERE %(all)s OR c.enterprise_id = ANY(%(ids)s)
"""

_ALARMS_SQL = """
SELECT h.enterprise_id, a.id, a.raised_at + %(within)s AS due
FROM alarms a
JOIN monitoring_points mp ON mp.id = a.point_id
JOIN hazard_sources h ON h.id = mp.hazard_source_id
WHERE (%(all)s OR h.enterprise_id = ANY(%(ids)s))
  AND a.raised_at + %(within)s < %(now)s AND a.raised_at + %(within)s >= %(since)s
  AND (a.disposed_at IS NULL OR a.disposed_at > a.raised_at + %(within)s)
  AND NOT EXISTS (SELECT 1 FROM score_events s
                  WHERE s.enterprise_id = h.enterprise_id AND s.trigger_key = 'alarm:' || a.id)
ORDER BY due, a.id
"""


async def _profiles(
    conn: AsyncConnection[Any], book: RuleBook, only: Sequence[int] | None
) -> dict[int, RuleSet]:
    cur = conn.cursor(row_factory=dict_row)
    await cur.execute(
        "SELECT id, district, category, tags FROM enterprises WHERE %(all)s OR id = ANY(%(ids)s)",
        {"all": only is None, "ids": list(only or [])},
    )
    out: dict[int, RuleSet] = {}
    for r in await cur.fetchall():
        s = book.set_for(r["district"], r["category"], r["tags"] or [])
        if s is not None:
            out[int(r["id"])] = s
    return out


async def _insert(
    conn: AsyncConnection[Any], due: _Due, rule_set: RuleSet
) -> tuple[int | None, bool]:
    """(new deduction id or None, capped?)."""
    item = rule_set.triggered(due.trigger)
    if item is None:
        return None, False
    cur = conn.cursor(row_factory=dict_row)
    if item.cap_per_cycle is not None:
        start, end = rule_set.cycle(due.at.date())
        await cur.execute(
            "SELECT coalesce(sum(points), 0) AS n FROM score_events WHERE enterprise_id = %s"
            " AND item_code = %s AND state <> 'voided' AND occurred_at >= %s AND occurred_at < %s",
            (due.enterprise_id, item.code, _midnight(start), _midnight(end + dt.timedelta(days=1))),
        )
        taken = int((await cur.fetchone() or {"n": 0})["n"])
        if taken + item.points > item.cap_per_cycle:
            return None, True
    await cur.execute(
        "INSERT INTO score_events (enterprise_id, rule_set, rule_set_version, item_code, points,"
        " source, occurred_at, note, trigger_key, created_by)"
        " VALUES (%s, %s, %s, %s, %s, 'auto', %s, %s, %s, 'system')"
        " ON CONFLICT (enterprise_id, trigger_key) WHERE trigger_key IS NOT NULL DO NOTHING"
        " RETURNING id",
        (
            due.enterprise_id,
            rule_set.code,
            rule_set.version,
            item.code,
            item.points,
            due.at,
            due.note,
            due.key,
        ),
    )
    row = await cur.fetchone()
    return (int(row["id"]) if row else None), False


async def run_automatic(
    conn: AsyncConnection[Any],
    today: dt.date,
    now: dt.datetime | None = None,
    enterprise_ids: Sequence[int] | None = None,
    *,
    warn_days: int = 30,
    dispose_within: dt.timedelta = dt.timedelta(hours=4),
) -> AutoReport:
    """Deduct what is due on ``today`` (alarms against ``now``) and warn of coming expiries.

    ``enterprise_ids`` limits the run (None: every enterprise). The caller re-rates
    ``report.deducted`` (layers/risk reads its score facts from layers/prevention/scoring.py,
    so this module must not call the risk engine)."""
    now = now or dt.datetime.now(dt.UTC)
    report = AutoReport()
    async with conn.transaction():
        # Per enterprise; a run over all of them excludes the rest (layers/core/locks.py).
        await lock_enterprises(conn, locks.SCORING, enterprise_ids)
        book = await load_rule_book(conn)
        sets = await _profiles(conn, book, enterprise_ids)
        params = {"all": enterprise_ids is None, "ids": list(enterprise_ids or [])}
        cur = conn.cursor(row_factory=dict_row)
        await cur.execute(_DOCUMENTS_SQL, params)
        dues: list[_Due] = []
        for d in await cur.fetchall():
            if d["enterprise_id"] not in sets:
                continue
            until: dt.date = d["valid_until"]
            if until < today:
                trigger = f"{d['subject']}_expired"
                note = f"{d['label']} valid until {until.isoformat()}"
                dues.append(
                    _Due(
                        d["enterprise_id"],
                        trigger,
                        d["key"],
                        _midnight(until + dt.timedelta(1)),
                        note,
                    )
                )
            elif (until - today).days <= warn_days:
                await cur.execute(
                    "INSERT INTO expiry_notices (enterprise_id, notice_key, subject, label,"
                    " valid_until) VALUES (%s, %s, %s, %s, %s)"
                    " ON CONFLICT (enterprise_id, notice_key) DO NOTHING RETURNING id",
                    (d["enterprise_id"], d["key"], d["subject"], d["label"], until),
                )
                if await cur.fetchone() is not None:
                    report.warnings.append(d["key"])
                    await publish(
                        conn,
                        f"{d['subject']}.expiring",
                        d["enterprise_id"],
                        d["key"],
                        {
                            "label": d["label"],
                            "valid_until": until.isoformat(),
                            "days_left": (until - today).days,
                        },
                    )
        # Alarms: a cycle is at most a year; older ones are not deducted after the fact.
        await cur.execute(
            _ALARMS_SQL,
            {**params, "within": dispose_within, "now": now, "since": now - dt.timedelta(days=366)},
        )
        for a in await cur.fetchall():
            rule_set = sets.get(a["enterprise_id"])
            if rule_set is None or a["due"].date() < rule_set.cycle(today)[0]:
                continue
            note = f"alarm {a['id']} not disposed of within {dispose_within}"
            dues.append(
                _Due(a["enterprise_id"], "alarm_undisposed", f"alarm:{a['id']}", a["due"], note)
            )
        await cur.execute(
            "SELECT enterprise_id, trigger_key FROM score_events WHERE trigger_key IS NOT NULL"
            " AND (%(all)s OR enterprise_id = ANY(%(ids)s))",
            params,
        )
        done = {(r["enterprise_id"], r["trigger_key"]) for r in await cur.fetchall()}
        for due in dues:
            if (due.enterprise_id, due.key) in done:
                continue
            new_id, capped = await _insert(conn, due, sets[due.enterprise_id])
            report.capped += capped
            if new_id is not None:
                report.deductions.append(new_id)
                if due.enterprise_id not in report.deducted:
                    report.deducted.append(due.enterprise_id)
                await deducted_event(conn, due.enterprise_id, new_id, "system")
    report.deducted.sort()
    return report


async def deduct_automatic(
    conn: AsyncConnection[Any],
    today: dt.date,
    now: dt.datetime | None = None,
    enterprise_ids: Sequence[int] | None = None,
    **options: Any,
) -> list[int]:
    """The enterprises that received new automatic deductions (see ``run_automatic``)."""
    return (await run_automatic(conn, today, now, enterprise_ids, **options)).deducted
