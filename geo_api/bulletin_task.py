"""Issue each day's bulletin on a clock (from ``GEORISK_BULLETIN_ISSUE_AT`` local time).

Nothing happens at the moment a new day's list is due, so a clock looks every
``interval_s``: once the local time has passed ``issue_at`` and today's bulletin is missing,
it issues it. Issuing is idempotent per day (a unique day; a second issuer finds the first
one's bulletin), so a restart, a late start or several processes never make two.
"""

from __future__ import annotations

import datetime as dt
import logging
from zoneinfo import ZoneInfo

from psycopg_pool import AsyncConnectionPool

from geo_api.settings import Settings
from layers.core.periodic import PeriodicTask
from layers.prevention.bulletin import BulletinRules, issue
from layers.prevention.watch_list import WatchRules

log = logging.getLogger("georisk.bulletin")
ACTOR = "system:bulletin clock"


def bulletin_rules(settings: Settings) -> BulletinRules:
    """The bulletin's thresholds: the watch list's, as the daily report uses them."""
    b = settings.bulletin
    return BulletinRules(
        watch=WatchRules(
            score_points=settings.risk.score_measure_threshold,
            accident_days=b.accident_days,
            penalty_days=b.penalty_days,
        ),
        window_days=b.window_days,
        act_within_days=b.act_within_days,
    )


class BulletinClock(PeriodicTask):
    name = "daily bulletin"

    def __init__(
        self,
        pool: AsyncConnectionPool,
        rules: BulletinRules,
        issue_at: str,
        timezone: str,
        interval_s: float,
    ) -> None:
        super().__init__(interval_s)
        self.pool = pool
        self.rules = rules
        self.zone = ZoneInfo(timezone)
        hour, minute = (int(x) for x in issue_at.split(":"))
        self.issue_at = dt.time(hour, minute)

    def due(self, now: dt.datetime) -> dt.date | None:
        """The local day whose bulletin is due at ``now`` (None before ``issue_at``)."""
        local = now.astimezone(self.zone)
        return local.date() if local.time() >= self.issue_at else None

    async def run_once(self, now: dt.datetime | None = None) -> str | None:
        day = self.due(now or dt.datetime.now(dt.UTC))
        if day is None:
            return None
        async with self.pool.connection() as conn:
            bulletin, created = await issue(conn, day, self.rules, ACTOR)
        if created:
            log.info(
                "bulletin %s issued: %d key, %d suggested",
                bulletin["number"],
                len(bulletin["key_attention"]),
                len(bulletin["suggested_attention"]),
            )
        return str(bulletin["number"])
