"""Re-rating enterprises from the API: one entry point, bound to the app's settings.

Why: a route that changes an enterprise's inputs (a hidden danger, a risk unit, a deduction,
an alarm step…) must re-rate it with the deployment's risk settings (population raster, live
rules). Each route used to rebuild that configuration its own way; now it asks for
``rerate: Rerate`` and writes ``await rerate(conn, [enterprise_id])``. Background workers get
the same object from the app's wiring.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Annotated, Any

from fastapi import Depends, Request
from psycopg import AsyncConnection

from geo_api.settings import Settings
from layers.risk.recompute import RecomputeConfig, RecomputeReport, recompute


class Rerater:
    """``await rerate(conn, ids)``: recompute those enterprises (``None``: everything)."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings

    def config(self) -> RecomputeConfig:
        """Built per call, as before: a raster appearing under the data dir (a demo seed after
        the server started) is used from the next re-rating on."""
        return self.settings.risk.recompute_config(self.settings.db.data_dir)

    async def __call__(
        self, conn: AsyncConnection[Any], enterprise_ids: Sequence[int] | None
    ) -> RecomputeReport:
        return await recompute(conn, self.config(), enterprise_ids)


def rerater(request: Request) -> Rerater:
    """FastAPI dependency: the app's ``Rerater`` (set by ``create_app``)."""
    rerate: Rerater = request.app.state.rerate
    return rerate


#: What a route declares to re-rate: ``rerate: Rerate``.
Rerate = Annotated[Rerater, Depends(rerater)]
