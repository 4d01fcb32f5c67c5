"""Recompute and deduction locks are per enterprise (issue 17 item 4), with the old guarantees:
jobs over the same enterprise never interleave, a job over all of them excludes every other,
and jobs over different enterprises no longer wait for each other.

Two real connections; the second gives up after ``lock_timeout`` instead of waiting, so a
conflict shows as LockNotAvailable (no timing is asserted).
"""

from __future__ import annotations

import asyncio
from collections.abc import Sequence

import psycopg
import pytest

from layers.core import locks
from layers.core.locks import MAX_ENTERPRISE_LOCKS, lock_enterprises

Ids = Sequence[int] | None


async def _second_gets(url: str, held: Ids, wanted: Ids, domain: str = locks.RECOMPUTE) -> bool:
    """Whether a second transaction gets ``wanted`` while a first one holds ``held``."""
    async with (
        await psycopg.AsyncConnection.connect(url) as first,
        await psycopg.AsyncConnection.connect(url) as second,
    ):
        await lock_enterprises(first, locks.RECOMPUTE, held)
        await second.execute("SET lock_timeout = '300ms'")
        try:
            await lock_enterprises(second, domain, wanted)
        except psycopg.errors.LockNotAvailable:
            return False
        finally:
            await second.rollback()
            await first.rollback()
        return True


@pytest.mark.parametrize(
    ("held", "wanted", "gets"),
    [
        ([101, 102], [103], True),  # different enterprises run side by side
        ([101, 102], [102, 104], False),  # a shared enterprise: the second waits
        ([101], None, False),  # a full run waits for a partial one
        (None, [103], False),  # and keeps partial ones out
        (None, None, False),
        ([101], list(range(1000, 1001 + MAX_ENTERPRISE_LOCKS)), False),  # too many: full
    ],
)
def test_recompute_locks(database_url: str, held: Ids, wanted: Ids, gets: bool) -> None:
    assert asyncio.run(_second_gets(database_url, held, wanted)) is gets


def test_domains_do_not_block_each_other(database_url: str) -> None:
    # A full recompute and a full deduction run are separate jobs with their own locks.
    assert asyncio.run(_second_gets(database_url, None, None, locks.SCORING)) is True


def test_lock_keys_are_distinct_int4() -> None:
    keys = {
        locks.class_key(d, s)
        for d in (locks.RECOMPUTE, locks.SCORING)
        for s in ("all", "enterprise")
    }
    assert len(keys) == 4 and all(-(2**31) <= k < 2**31 for k in keys)
