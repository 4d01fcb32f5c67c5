"""Transaction-scoped advisory locks per enterprise, for the jobs that re-derive an enterprise's
rows (risk recompute, automatic deductions).

One global lock used to serialise every such job: correct, but an ingest batch re-rating one
carrier then waited behind another re-rating an unrelated one, and on a sharded (Citus)
deployment it would be one queue for the whole country. Now:

- a job over some enterprises takes the domain's lock *shared*, then one exclusive lock per
  enterprise, in ascending id order (two jobs over overlapping sets meet on their first
  common enterprise and queue there; ascending order means they cannot deadlock);
- a job over every enterprise (``ids=None``), or over more than ``MAX_ENTERPRISE_LOCKS`` of
  them, takes the domain's lock *exclusive*: it waits for running partial jobs and keeps new
  ones out, as the global lock did.

So two jobs touching the same enterprise never interleave, and a full run still excludes every
partial one. Keys are ``pg_advisory_xact_lock(int4 class, int4 id)``: the class is a stable
hash of the domain's name, the enterprise id is folded into int4.
"""

from __future__ import annotations

import zlib
from collections.abc import Sequence
from typing import Any, Final

from psycopg import AsyncConnection

#: Above this many enterprises a job locks the whole domain: each advisory lock takes a slot
#: of the server's shared lock table (max_locks_per_transaction × connections).
MAX_ENTERPRISE_LOCKS: Final = 64

RECOMPUTE: Final = "georisk.recompute"
SCORING: Final = "georisk.scoring"


def _int4(n: int) -> int:
    return (n + 2**31) % 2**32 - 2**31


def class_key(domain: str, scope: str) -> int:
    """The int4 class of ``domain``'s lock over one enterprise (``scope="enterprise"``) or
    over all of them (``scope="all"``)."""
    return _int4(zlib.crc32(f"{domain}.{scope}".encode()))


async def lock_enterprises(
    conn: AsyncConnection[Any], domain: str, ids: Sequence[int] | None
) -> None:
    """Lock ``domain``'s work on ``ids`` (None: every enterprise) until the transaction ends."""
    everything = class_key(domain, "all")
    if ids is None or len(set(ids)) > MAX_ENTERPRISE_LOCKS:
        await conn.execute("SELECT pg_advisory_xact_lock(%s, 0)", (everything,))
        return
    await conn.execute("SELECT pg_advisory_xact_lock_shared(%s, 0)", (everything,))
    # The subquery fixes the order the locks are taken in (ascending ids, no deadlock).
    await conn.execute(
        "SELECT pg_advisory_xact_lock(%s, s.k) FROM"
        " (SELECT DISTINCT k FROM unnest(%s::int4[]) AS u(k) ORDER BY k) AS s",
        (class_key(domain, "enterprise"), sorted({_int4(i) for i in ids})),
    )
