"""Effectiveness ranking of enterprises by the three dual-prevention rates (docs/domain.md §5).

Effectiveness = the mean of the rates that have a denominator on date D (risk-analysis
completion, inspection-task completion, hidden-danger rectification; the same
``PreventionRates.mean_rate`` the responsibility index uses), so an enterprise with no task
due is judged on the other two rather than marked down. Highest first; ties share a rank
(1, 2, 2, 4) and are listed by id. The rate definitions live in ``layers/prevention/dual.py``.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

from psycopg import AsyncConnection
from psycopg.rows import dict_row

from layers.prevention.dual import enterprise_rates


async def ranking(
    conn: AsyncConnection[Any],
    as_of: dt.date,
    districts: list[str] | None,
    limit: int,
) -> tuple[int, list[dict[str, Any]]]:
    """(how many enterprises were ranked, the first ``limit`` entries)."""
    rates = await enterprise_rates(conn, as_of, districts=districts)
    cur = conn.cursor(row_factory=dict_row)
    await cur.execute(
        "SELECT id, name, district FROM enterprises WHERE id = ANY(%s)", (list(rates),)
    )
    names = {r["id"]: r for r in await cur.fetchall()}
    scored = [(r.mean_rate(), eid) for eid, r in rates.items()]
    # None (nothing to judge) last; then highest effectiveness; then id.
    scored.sort(key=lambda x: (x[0] is None, -(x[0] or 0.0), x[1]))
    entries: list[dict[str, Any]] = []
    rank = 0
    previous: float | None = -1.0
    for position, (value, eid) in enumerate(scored, start=1):
        if value != previous:
            rank, previous = position, value
        if position > limit:
            break
        entries.append(
            {
                "rank": rank,
                "enterprise_id": eid,
                "name": names[eid]["name"],
                "district": names[eid]["district"],
                "effectiveness": value,
                **rates[eid].as_dict(),
            }
        )
    return len(scored), entries
