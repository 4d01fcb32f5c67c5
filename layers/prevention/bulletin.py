"""The daily bulletin (每日风险简报): the watch list issued, numbered and kept with history.

Why: a watch list computed on request shows today's facts only; a regulator needs what was on
the list on a given day, why, and what was done about it (interview, inspection, enforcement).
So a bulletin is issued once per day and never rewritten: its entries are a snapshot of the
list (layers/prevention/watch_list.py decides who is on it and why), and actions are recorded
against an entry afterwards.

Numbering: ``YYYY-DDD`` — the year and the day of the year (``2026-339`` is 5 December 2026).
One bulletin per day, so the number is known before it is issued and never has gaps or
collisions.

Ranking: entries are ranked key attention first; within a list by the dynamic colour (red
first, grey last), then the number of reasons, then the name — the order a regulator works
through the list.

Departments: an entry is for the department that supervises the enterprise — transport for
carriers (category ``transport``), emergency management for everyone else. The **department
index** (per department, over the key-attention entries of the bulletins in a window of
``window_days`` ending on the day) is the share of entries that got an action within
``act_within_days`` days of their bulletin: how promptly each department follows its list.
The two district indexes come from the watch list unchanged.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field
from typing import Any, Final

from psycopg import AsyncConnection
from psycopg.rows import dict_row
from psycopg.types.json import Jsonb

from layers.core.colors import GREY, RISK_COLORS
from layers.core.errors import FieldError, InvalidField, NotFound
from layers.prevention.watch_list import DailyList, WatchEntry, WatchRules, daily_list

#: The department that supervises an enterprise of each category; others: emergency management.
DEPARTMENT_OF_CATEGORY: Final = {"transport": "transport"}
DEFAULT_DEPARTMENT: Final = "emergency_management"
#: Dynamic colour order for ranking: red first, unknown last.
_COLOR_ORDER: Final[dict[str, int]] = {c: i for i, c in enumerate((*RISK_COLORS, GREY))}


@dataclass(frozen=True)
class BulletinRules:
    watch: WatchRules = field(default_factory=WatchRules)
    window_days: int = 7  # the department index looks back this many bulletins' days
    act_within_days: int = 3  # an action counts when taken this soon after the bulletin


def bulletin_number(day: dt.date) -> str:
    return f"{day.year}-{day.timetuple().tm_yday:03d}"


def department_of(category: str | None) -> str:
    return DEPARTMENT_OF_CATEGORY.get(category or "", DEFAULT_DEPARTMENT)


def ranked(report: DailyList, colors: dict[int, str | None]) -> list[tuple[str, WatchEntry]]:
    """Key attention first, then suggested; within each: colour, number of reasons, name."""

    def order(entry: WatchEntry) -> tuple[int, int, str, int]:
        color = colors.get(entry.enterprise_id)
        return (
            _COLOR_ORDER.get(color or GREY, len(_COLOR_ORDER)),
            -len(entry.reasons),
            entry.name,
            entry.enterprise_id,
        )

    return [("key", e) for e in sorted(report.key, key=order)] + [
        ("suggested", e) for e in sorted(report.suggested, key=order)
    ]


async def issue(
    conn: AsyncConnection[Any], day: dt.date, rules: BulletinRules, actor: str
) -> tuple[dict[str, Any], bool]:
    """Issue the bulletin of ``day`` (or find it issued): ``(bulletin, created)``."""
    existing = await _bulletin_id(conn, day=day)
    if existing is not None:
        return await _load(conn, existing, None, rules), False
    report = await daily_list(conn, day, rules.watch)
    listed = [e.enterprise_id for e in report.key + report.suggested]
    cur = conn.cursor(row_factory=dict_row)
    await cur.execute(
        "SELECT id, category, dynamic_color FROM enterprises WHERE id = ANY(%s)", (listed,)
    )
    about = {r["id"]: r for r in await cur.fetchall()}
    colors = {i: r["dynamic_color"] for i, r in about.items()}
    await cur.execute(
        "INSERT INTO bulletins (number, day, issued_by, rules, districts)"
        " VALUES (%s, %s, %s, %s, %s) ON CONFLICT (day) DO NOTHING RETURNING id",
        (
            bulletin_number(day),
            day,
            actor,
            Jsonb(_rules_dict(rules)),
            Jsonb(report.districts),
        ),
    )
    row = await cur.fetchone()
    if row is None:  # issued by someone else meanwhile: theirs stands
        found = await _bulletin_id(conn, day=day)
        assert found is not None
        return await _load(conn, found, None, rules), False
    bulletin_id = row["id"]
    await cur.executemany(
        "INSERT INTO bulletin_entries (bulletin_id, enterprise_id, attention, rank, name,"
        " district, dynamic_color, department, reasons) VALUES (%s, %s, %s, %s, %s, %s, %s,"
        " %s, %s)",
        [
            (
                bulletin_id,
                entry.enterprise_id,
                attention,
                rank,
                entry.name,
                entry.district,
                colors.get(entry.enterprise_id),
                department_of(about.get(entry.enterprise_id, {}).get("category")),
                Jsonb([r.as_dict() for r in entry.reasons]),
            )
            for rank, (attention, entry) in enumerate(ranked(report, colors), start=1)
        ],
    )
    return await _load(conn, bulletin_id, None, rules), True


def _rules_dict(rules: BulletinRules) -> dict[str, Any]:
    w = rules.watch
    return {
        "score_points": w.score_points,
        "low_rectification": w.low_rectification,
        "accident_days": w.accident_days,
        "penalty_days": w.penalty_days,
        "window_days": rules.window_days,
        "act_within_days": rules.act_within_days,
    }


async def _bulletin_id(
    conn: AsyncConnection[Any], *, day: dt.date | None = None, number: str | None = None
) -> int | None:
    if day is not None:
        cur = await conn.execute("SELECT id FROM bulletins WHERE day = %s", (day,))
    else:
        cur = await conn.execute("SELECT id FROM bulletins WHERE number = %s", (number,))
    row = await cur.fetchone()
    return int(row[0]) if row else None


async def load(
    conn: AsyncConnection[Any],
    number: str,
    districts: list[str] | None,
    rules: BulletinRules,
) -> dict[str, Any]:
    """One bulletin with its entries (each with its actions) and indexes; 404 unknown."""
    bulletin_id = await _bulletin_id(conn, number=number)
    if bulletin_id is None:
        raise NotFound(f"no bulletin {number}", [FieldError("number", f"no bulletin {number}")])
    return await _load(conn, bulletin_id, districts, rules)


async def _load(
    conn: AsyncConnection[Any],
    bulletin_id: int,
    districts: list[str] | None,
    rules: BulletinRules,
) -> dict[str, Any]:
    cur = conn.cursor(row_factory=dict_row)
    await cur.execute(
        "SELECT id, number, day, issued_at, issued_by, rules, districts FROM bulletins"
        " WHERE id = %s",
        (bulletin_id,),
    )
    head = await cur.fetchone()
    assert head is not None
    await cur.execute(
        "SELECT enterprise_id, attention, rank, name, district, dynamic_color, department,"
        " reasons FROM bulletin_entries WHERE bulletin_id = %s"
        " AND (%s::text[] IS NULL OR district = ANY(%s::text[])) ORDER BY rank",
        (bulletin_id, districts, districts),
    )
    entries = await cur.fetchall()
    await cur.execute(
        "SELECT id, enterprise_id, kind, taken_on, note, actor, created_at"
        " FROM bulletin_actions WHERE bulletin_id = %s ORDER BY taken_on, id",
        (bulletin_id,),
    )
    actions: dict[int, list[dict[str, Any]]] = {}
    for a in await cur.fetchall():
        actions.setdefault(a["enterprise_id"], []).append(_action_dict(a))
    day: dt.date = head["day"]
    district_rows = [
        d for d in head["districts"] if districts is None or d.get("district") in districts
    ]
    return {
        "number": head["number"],
        "date": day.isoformat(),
        "issued_at": head["issued_at"].isoformat(),
        "issued_by": head["issued_by"],
        "rules": head["rules"],
        "key_attention": [_entry_dict(e, actions) for e in entries if e["attention"] == "key"],
        "suggested_attention": [
            _entry_dict(e, actions) for e in entries if e["attention"] == "suggested"
        ],
        "districts": district_rows,
        "departments": await department_index(conn, day, districts, rules),
    }


def _entry_dict(e: dict[str, Any], actions: dict[int, list[dict[str, Any]]]) -> dict[str, Any]:
    return {
        "rank": e["rank"],
        "enterprise_id": e["enterprise_id"],
        "name": e["name"],
        "district": e["district"],
        "dynamic_color": e["dynamic_color"],
        "department": e["department"],
        "reasons": e["reasons"],
        "actions": actions.get(e["enterprise_id"], []),
    }


def _action_dict(a: dict[str, Any]) -> dict[str, Any]:
    return {
        "id": a["id"],
        "kind": a["kind"],
        "taken_on": a["taken_on"].isoformat(),
        "note": a["note"],
        "actor": a["actor"],
        "recorded_at": a["created_at"].isoformat(),
    }


async def department_index(
    conn: AsyncConnection[Any],
    day: dt.date,
    districts: list[str] | None,
    rules: BulletinRules,
) -> list[dict[str, Any]]:
    """Per department: key-attention entries of the window's bulletins, how many got an
    action within ``act_within_days``, that share (the index), and the mean days to act."""
    cur = conn.cursor(row_factory=dict_row)
    await cur.execute(
        """
        SELECT be.department,
               count(*) AS entries,
               count(*) FILTER (WHERE first.taken_on <= b.day + %(within)s) AS acted,
               avg(first.taken_on - b.day) AS mean_days
        FROM bulletin_entries be
        JOIN bulletins b ON b.id = be.bulletin_id
        LEFT JOIN LATERAL (
            SELECT min(a.taken_on) AS taken_on FROM bulletin_actions a
            WHERE a.bulletin_id = be.bulletin_id AND a.enterprise_id = be.enterprise_id
        ) first ON true
        WHERE be.attention = 'key'
          AND b.day > %(day)s - %(window)s AND b.day <= %(day)s
          AND (%(districts)s::text[] IS NULL OR be.district = ANY(%(districts)s::text[]))
        GROUP BY be.department
        ORDER BY be.department
        """,
        {
            "day": day,
            "window": rules.window_days,
            "within": rules.act_within_days,
            "districts": districts,
        },
    )
    out = []
    for r in await cur.fetchall():
        entries, acted = int(r["entries"]), int(r["acted"])
        mean = r["mean_days"]
        out.append(
            {
                "department": r["department"],
                "key_entries": entries,
                "acted_in_time": acted,
                "index": round(acted / entries, 4) if entries else None,
                "mean_days_to_act": round(float(mean), 2) if mean is not None else None,
            }
        )
    return out


async def record_action(
    conn: AsyncConnection[Any],
    number: str,
    enterprise_id: int,
    kind: str,
    taken_on: dt.date,
    note: str,
    actor: str,
) -> dict[str, Any]:
    """Record what was done about an entry; the enterprise must be on that bulletin."""
    bulletin_id = await _bulletin_id(conn, number=number)
    if bulletin_id is None:
        raise NotFound(f"no bulletin {number}", [FieldError("number", f"no bulletin {number}")])
    cur = conn.cursor(row_factory=dict_row)
    await cur.execute(
        "SELECT b.day FROM bulletin_entries be JOIN bulletins b ON b.id = be.bulletin_id"
        " WHERE be.bulletin_id = %s AND be.enterprise_id = %s",
        (bulletin_id, enterprise_id),
    )
    row = await cur.fetchone()
    if row is None:
        raise InvalidField("enterprise_id", f"enterprise {enterprise_id} is not on {number}")
    if taken_on < row["day"]:
        raise InvalidField("taken_on", f"before the bulletin's day {row['day'].isoformat()}")
    await cur.execute(
        "INSERT INTO bulletin_actions (bulletin_id, enterprise_id, kind, taken_on, note, actor)"
        " VALUES (%s, %s, %s, %s, %s, %s)"
        " RETURNING id, enterprise_id, kind, taken_on, note, actor, created_at",
        (bulletin_id, enterprise_id, kind, taken_on, note, actor),
    )
    created = await cur.fetchone()
    assert created is not None
    return _action_dict(created)


async def bulletins(
    conn: AsyncConnection[Any],
    since: dt.date | None,
    until: dt.date | None,
    districts: list[str] | None,
    limit: int,
) -> list[dict[str, Any]]:
    """The issued bulletins, newest first, with their counts (in the caller's districts)."""
    cur = conn.cursor(row_factory=dict_row)
    await cur.execute(
        """
        SELECT b.number, b.day, b.issued_at,
               count(be.*) FILTER (WHERE be.attention = 'key') AS key_attention,
               count(be.*) FILTER (WHERE be.attention = 'suggested') AS suggested_attention,
               (SELECT count(*) FROM bulletin_actions a JOIN bulletin_entries x
                  ON x.bulletin_id = a.bulletin_id AND x.enterprise_id = a.enterprise_id
                WHERE a.bulletin_id = b.id
                  AND (%(d)s::text[] IS NULL OR x.district = ANY(%(d)s::text[]))) AS actions
        FROM bulletins b
        LEFT JOIN bulletin_entries be ON be.bulletin_id = b.id
             AND (%(d)s::text[] IS NULL OR be.district = ANY(%(d)s::text[]))
        WHERE (%(since)s::date IS NULL OR b.day >= %(since)s)
          AND (%(until)s::date IS NULL OR b.day <= %(until)s)
        GROUP BY b.id ORDER BY b.day DESC LIMIT %(limit)s
        """,
        {"d": districts, "since": since, "until": until, "limit": limit},
    )
    return [
        {
            "number": r["number"],
            "date": r["day"].isoformat(),
            "issued_at": r["issued_at"].isoformat(),
            "key_attention": r["key_attention"],
            "suggested_attention": r["suggested_attention"],
            "actions": r["actions"],
        }
        for r in await cur.fetchall()
    ]


async def enterprise_history(
    conn: AsyncConnection[Any], enterprise_id: int, limit: int
) -> list[dict[str, Any]]:
    """Every bulletin an enterprise was on: which list, why, and what was done."""
    cur = conn.cursor(row_factory=dict_row)
    await cur.execute(
        "SELECT b.number, b.day, be.attention, be.rank, be.dynamic_color, be.department,"
        " be.reasons, coalesce((SELECT jsonb_agg(jsonb_build_object('kind', a.kind,"
        " 'taken_on', a.taken_on, 'note', a.note, 'actor', a.actor) ORDER BY a.taken_on, a.id)"
        " FROM bulletin_actions a WHERE a.bulletin_id = be.bulletin_id"
        " AND a.enterprise_id = be.enterprise_id), '[]'::jsonb) AS actions"
        " FROM bulletin_entries be JOIN bulletins b ON b.id = be.bulletin_id"
        " WHERE be.enterprise_id = %s ORDER BY b.day DESC LIMIT %s",
        (enterprise_id, limit),
    )
    return [
        {
            "number": r["number"],
            "date": r["day"].isoformat(),
            "attention": r["attention"],
            "rank": r["rank"],
            "dynamic_color": r["dynamic_color"],
            "department": r["department"],
            "reasons": r["reasons"],
            "actions": r["actions"],
        }
        for r in await cur.fetchall()
    ]


def csv_rows(bulletin: dict[str, Any]) -> list[list[str]]:
    """One row per (entry, reason), the entry's actions joined in the last column."""
    rows = [
        [
            "number",
            "date",
            "list",
            "rank",
            "enterprise_id",
            "name",
            "district",
            "dynamic_color",
            "department",
            "rule",
            "text",
            "actions",
        ]
    ]
    for label in ("key_attention", "suggested_attention"):
        for e in bulletin[label]:
            done = "; ".join(f"{a['taken_on']} {a['kind']}: {a['note']}" for a in e["actions"])
            for r in e["reasons"]:
                rows.append(
                    [
                        bulletin["number"],
                        bulletin["date"],
                        label.split("_")[0],
                        str(e["rank"]),
                        str(e["enterprise_id"]),
                        e["name"],
                        e["district"] or "",
                        e["dynamic_color"] or "",
                        e["department"],
                        r["code"],
                        r["text"],
                        done,
                    ]
                )
    return rows
