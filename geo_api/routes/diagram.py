"""The enterprise's four-colour diagram page and its exports (``.png``, ``.pdf``, ``.html``,
``.geojson``). Rendering lives in layers/risk/diagram.py; matplotlib and folium are CPU-bound, so
they run in the thread pool to keep the event loop serving tiles meanwhile.
"""

from __future__ import annotations

import html
from typing import Annotated, Literal
from urllib.parse import quote

from fastapi import APIRouter, Path, Request
from fastapi.responses import HTMLResponse, JSONResponse, RedirectResponse, Response
from starlette.concurrency import run_in_threadpool

from geo_api.auth import SITE_READERS, allow, current_caller
from geo_api.db import DbConn
from geo_api.errors import FieldError, Forbidden, Unauthorized
from geo_api.models.base import GeoJSONResponse
from geo_api.models.risk import DiagramCollection
from geo_api.routes.pages import WEB_DIR, basemap_attributes
from geo_api.scope import VisibleEnterprise, check_object
from geo_api.security_headers import EXPORT_POLICY
from layers.risk import book
from layers.risk import diagram as dg
from layers.risk.fonts import CjkFontMissing

router = APIRouter(tags=["pages"])
#: The page itself: a browser without a session is sent to the map's sign-in, not shown JSON.
page_router = APIRouter(tags=["pages"])
EnterpriseId = Annotated[int, Path(ge=1, le=2**31 - 1)]
Export = Literal["png", "pdf", "html", "geojson"]

_MEDIA = {
    "png": "image/png",
    "pdf": "application/pdf",
    "html": "text/html; charset=utf-8",
    "geojson": "application/geo+json",
}
_EXPORTS = {
    m.split(";")[0]: {"schema": {"type": "string", "format": "binary"}}
    for f, m in _MEDIA.items()
    if f != "geojson"
}


@page_router.get(
    "/enterprises/{enterprise_id}/diagram", response_class=HTMLResponse, include_in_schema=False
)
async def diagram_page(request: Request, conn: DbConn, enterprise_id: EnterpriseId) -> Response:
    """The page itself is static; its script reads the APIs. The title is filled server-side so
    a saved or printed page still names the enterprise."""
    try:
        caller = await current_caller(request)
    except Unauthorized:
        target = quote(f"/enterprises/{enterprise_id}/diagram", safe="")
        return RedirectResponse(f"/?next={target}", status_code=303)
    if caller.role not in SITE_READERS:
        raise Forbidden(f"role: {caller.role} has no diagrams", [FieldError("role", "no access")])
    await check_object(conn, caller, "enterprise", enterprise_id)
    d = await dg.load_diagram(conn, enterprise_id)  # EnterpriseNotFound: a 404
    page = (WEB_DIR / "diagram.html").read_text(encoding="utf-8")
    page = page.replace("{{ENTERPRISE_ID}}", str(enterprise_id))
    page = page.replace("{{ENTERPRISE_NAME}}", html.escape(d.enterprise["name"]))
    attributes = basemap_attributes(request.app.state.settings.server)
    if attributes:
        page = page.replace("<html lang", f"<html{attributes} lang", 1)
    return HTMLResponse(page, headers={"Cache-Control": "no-cache"})


@router.get(
    "/enterprises/{enterprise_id}/diagram.{fmt}",
    summary="Diagram export",
    response_model=DiagramCollection,  # .geojson; the other formats are bytes
    response_class=GeoJSONResponse,
    responses={200: {"content": _EXPORTS}},
    dependencies=[allow(*SITE_READERS)],
)
async def diagram_export(conn: DbConn, enterprise_id: VisibleEnterprise, fmt: Export) -> Response:
    """PNG, the A4 PDF book (map, register, controls, hazard sources, monitoring points,
    contacts), standalone HTML (no network needed) or GeoJSON of the diagram."""
    d = await dg.load_diagram(conn, enterprise_id)
    body: bytes | str
    if fmt == "png":
        body = await run_in_threadpool(dg.render_png, d)
    elif fmt == "pdf":
        try:
            body = await run_in_threadpool(book.render_book, d)
        except CjkFontMissing as exc:
            # The server's installation lacks the font: say which package, never print tofu.
            reason = f"{exc.package} is not installed"
            return JSONResponse(
                {"detail": str(exc), "errors": [{"field": "font", "reason": reason}]},
                status_code=503,
            )
    elif fmt == "html":
        body = await run_in_threadpool(dg.render_html, d, WEB_DIR / "vendor")
    else:
        body = dg.geojson_text(d)
    name = f"enterprise-{enterprise_id}-diagram.{fmt}"
    headers = {"Content-Disposition": f'inline; filename="{name}"'}
    if fmt == "html":  # inline script and styles: run sandboxed, reaching nothing of ours
        headers["Content-Security-Policy"] = EXPORT_POLICY
    return Response(body, media_type=_MEDIA[fmt], headers=headers)
