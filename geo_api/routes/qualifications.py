"""An enterprise's licences and personnel certificates (docs/rules.md "Licences").

Read by whoever sees the enterprise (its own users included, who must know what expires);
written by staff of its district — a certificate's validity is what an automatic deduction
rests on, so the enterprise cannot extend its own.
"""

from __future__ import annotations

import datetime as dt
from typing import Annotated, Any
from zoneinfo import ZoneInfo

from fastapi import APIRouter, Path, Request
from pydantic import BaseModel

from geo_api.auth import SITE_READERS, STAFF, allow
from geo_api.body import read_model
from geo_api.db import DbConn
from geo_api.errors import FieldError, NotFound
from geo_api.models.base import Body
from geo_api.models.rules import Certificate, CertificateList, Licence, LicenceList
from geo_api.scope import VisibleEnterprise
from geo_api.settings import Settings
from layers.prevention.qualifications import (
    CertificateInput,
    LicenceInput,
    list_documents,
    save_document,
)

router = APIRouter(tags=["safety score"])

Id = Annotated[int, Path(ge=1, le=2**31 - 1)]
_MODELS: dict[str, type[BaseModel]] = {"licences": LicenceInput, "certificates": CertificateInput}
#: table → (the list answer, one document's answer).
_ANSWERS: dict[str, tuple[type[Body], type[Body]]] = {
    "licences": (LicenceList, Licence),
    "certificates": (CertificateList, Certificate),
}


def _today_and_warn(request: Request) -> tuple[dt.date, int]:
    settings: Settings = request.app.state.settings
    today = dt.datetime.now(ZoneInfo(settings.scoring.timezone)).date()
    return today, settings.scoring.warn_days


def _routes(table: str, noun: str) -> None:
    base = f"/api/enterprises/{{enterprise_id}}/{table}"
    listing, one = _ANSWERS[table]

    @router.get(
        base,
        response_model=listing,
        dependencies=[allow(*SITE_READERS)],
        name=f"list_{table}",
    )
    async def list_(enterprise_id: VisibleEnterprise, request: Request, conn: DbConn) -> Any:
        today, warn = _today_and_warn(request)
        return {table: await list_documents(conn, table, enterprise_id, today, warn)}

    @router.post(
        base,
        status_code=201,
        response_model=one,
        dependencies=[allow(*STAFF)],
        name=f"create_{noun}",
    )
    async def create(enterprise_id: VisibleEnterprise, request: Request, conn: DbConn) -> Any:
        data = await read_model(request, _MODELS[table])
        today, warn = _today_and_warn(request)
        return await save_document(conn, table, enterprise_id, data, today, warn)

    @router.put(
        base + "/{document_id}",
        response_model=one,
        dependencies=[allow(*STAFF)],
        name=f"replace_{noun}",
    )
    async def replace(
        enterprise_id: VisibleEnterprise, document_id: Id, request: Request, conn: DbConn
    ) -> Any:
        data = await read_model(request, _MODELS[table])
        today, warn = _today_and_warn(request)
        row = await save_document(conn, table, enterprise_id, data, today, warn, document_id)
        if row is None:
            raise NotFound(
                f"{noun} {document_id} not found",
                [FieldError("document_id", f"no such {noun} of this enterprise")],
            )
        return row


_routes("licences", "licence")
_routes("certificates", "certificate")
