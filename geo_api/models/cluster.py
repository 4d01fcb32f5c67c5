"""``GET /api/cluster``: which process answered, and who holds each periodic job's lease."""

from __future__ import annotations

import datetime as dt

from geo_api.models.base import Body


class LeaseHolder(Body):
    lease: str
    process: str  # host:pid
    since: dt.datetime


class ClusterView(Body):
    process: str  # host:pid of the process that answered
    leases_here: list[str]  # leases this process holds
    holders: list[LeaseHolder]  # every lease held anywhere in the deployment
