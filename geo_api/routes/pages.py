"""Browser pages: ``GET /`` (the regulator's map) and the vendored static files under /static."""

from __future__ import annotations

import html
from pathlib import Path

from fastapi import APIRouter, HTTPException, Request
from fastapi.responses import HTMLResponse
from fastapi.staticfiles import StaticFiles
from starlette.responses import Response
from starlette.types import Scope

from geo_api.settings import ServerSettings

WEB_DIR = Path(__file__).resolve().parents[2] / "web"

router = APIRouter(tags=["pages"], include_in_schema=False)


def basemap_attributes(server: ServerSettings) -> str:
    """The external base map's settings as ``data-*`` attributes of ``<html>`` (read by
    web/basemap.js); empty without ``GEORISK_BASEMAP_URL``."""
    if not server.basemap_url:
        return ""
    values = {
        "basemap": server.basemap_url,
        "basemap-overlay": server.basemap_overlay_url,
        "basemap-subdomains": server.basemap_subdomains,
        "basemap-max-zoom": str(server.basemap_max_zoom),
        "basemap-attribution": server.basemap_attribution,
    }
    # Configuration, but escaped anyway: each lands in an attribute.
    return "".join(f' data-{k}="{html.escape(v)}"' for k, v in values.items() if v)


@router.get("/", response_class=HTMLResponse)
async def index(request: Request) -> HTMLResponse:
    page = (WEB_DIR / "index.html").read_text(encoding="utf-8")
    attributes = basemap_attributes(request.app.state.settings.server)
    if attributes:
        page = page.replace("<html lang", f"<html{attributes} lang", 1)
    return HTMLResponse(page, headers={"Cache-Control": "no-cache"})


class WebFiles(StaticFiles):
    """The browser app's files; npm's working files next to them are not part of the site."""

    HIDDEN = frozenset({"node_modules", "package.json", "package-lock.json"})

    async def get_response(self, path: str, scope: Scope) -> Response:
        if path.replace("\\", "/").split("/", 1)[0] in self.HIDDEN:
            raise HTTPException(status_code=404)
        return await super().get_response(path, scope)
