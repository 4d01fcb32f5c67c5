"""Browser pages: ``GET /`` (the regulator's map) and the vendored static files under /static."""

from __future__ import annotations

import html
from pathlib import Path

from fastapi import APIRouter, HTTPException, Request
from fastapi.responses import HTMLResponse
from fastapi.staticfiles import StaticFiles
from starlette.responses import Response
from starlette.types import Scope

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


class WebFiles(StaticFiles):
    """The browser app's files; npm's working files next to them are not part of the site."""

    HIDDEN = frozenset({"node_modules", "package.json", "package-lock.json"})

    async def get_response(self, path: str, scope: Scope) -> Response:
        if path.replace("\\", "/").split("/", 1)[0] in self.HIDDEN:
            raise HTTPException(status_code=404)
        return await super().get_response(path, scope)
