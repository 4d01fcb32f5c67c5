"""When a risk unit's assessment is overdue for review — the one home of that rule, as SQL.

A unit's ``review_due`` is the last day its assessment is still current: a review due on day D
is in time on D and overdue from D + 1 (docs/domain.md §5). Days are UTC days, like every "as
of" date of the prevention rates (``layers/prevention/dual.py``). The map layer (the tiles'
``overdue`` flag, the REST filter) asks "as of today"; the risk-analysis completion rate asks
as of the report's date. Both build their SQL here, so the map and the rate never disagree.
"""

from __future__ import annotations

from typing import Final

#: Today as a UTC day, in SQL (the database's clock, not the session's time zone).
TODAY_UTC_SQL: Final = "((now() AT TIME ZONE 'UTC')::date)"


def review_overdue_sql(review_due: str, as_of: str = TODAY_UTC_SQL) -> str:
    """SQL that is true when ``review_due`` (a date expression) lies before ``as_of``.

    Both arguments are SQL text from the caller's constants (a column, a bound parameter such
    as ``%(as_of)s``); a unit without a review date is never overdue."""
    return f"coalesce({review_due} < {as_of}, false)"
