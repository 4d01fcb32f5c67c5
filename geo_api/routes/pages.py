"""Browser pages: ``GET /`` (the regulator's map) and the vendored static files under /static."""

from __future__ import annotations

import html
from pathlib import Path

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse

WEB_DIR = Path(__file__).resolve().parents[2] / "web"

router = APIRouter(tags=["pages"], include_in_schema=False)


@router.get("/", response_class=HTMLResponse)
async def index(request: Request) -> HTMLResponse:
    page = (WEB_DIR / "index.html").read_text(encoding="utf-8")
    basemap = request.app.state.settings.server.basemap_url
    if basemap:
        # The template URL is configuration, but escape it anyway: it lands in an attribute.
        page = page.replace("<html lang", f'<html data-basemap="{html.escape(basemap)}" lang', 1)
    return HTMLResponse(page, headers={"Cache-Control": "no-cache"})
