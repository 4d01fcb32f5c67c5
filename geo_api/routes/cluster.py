"""``GET /api/cluster``: the deployment as the database sees it (issue 17 §1).

With several processes (``georisk serve --workers N``, several hosts) an operator needs to
know which one runs each periodic job; the answer comes from PostgreSQL's lock table, so any
process gives the whole picture.
"""

from __future__ import annotations

from fastapi import APIRouter, Request

from geo_api.auth import allow
from geo_api.db import DbConn
from geo_api.leases import Leased, holders, process_label
from geo_api.models.cluster import ClusterView, LeaseHolder

router = APIRouter(tags=["operations"])


@router.get("/api/cluster", dependencies=[allow("admin")], response_model=ClusterView)
async def cluster(request: Request, conn: DbConn) -> ClusterView:
    """This process (``host:pid``), the leases it holds, and every lease holder."""
    here = [
        slot.worker.name
        for slot in request.app.state.workers
        if isinstance(slot.worker, Leased) and slot.worker.held
    ]
    return ClusterView(
        process=process_label(),
        leases_here=sorted(here),
        holders=[
            LeaseHolder(lease=h.lease, process=h.process, since=h.since)
            for h in await holders(conn)
        ],
    )
