"""The API's interactive documentation, ``GET /docs`` (Swagger UI) and ``GET /redoc`` (ReDoc),
served entirely from this server (issue 16 §4).

FastAPI's built-in pages load their bundles from jsDelivr, Google's fonts and a favicon from
FastAPI's site, so on an intranet without the internet they stay blank. Ours are small files in
``web/api-docs/`` that load the vendored bundles (``web/vendor/swagger-ui``,
``web/vendor/redoc``, refreshed by ``make vendor``) and start them from a script file, so the
pages' Content-Security-Policy (geo_api/security_headers.py) admits no inline script and no
other origin.
"""

from __future__ import annotations

import html

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse

from geo_api.routes.pages import WEB_DIR
from geo_api.security_headers import REDOC_POLICY, SWAGGER_UI_POLICY

router = APIRouter(tags=["pages"], include_in_schema=False)

PAGES = WEB_DIR / "api-docs"


def _page(request: Request, name: str, policy: str) -> HTMLResponse:
    page = (PAGES / name).read_text(encoding="utf-8")
    # The one variable of the page: where the OpenAPI document is (read by the start-up script).
    url = html.escape(request.app.openapi_url or "/openapi.json")
    return HTMLResponse(
        page.replace("{{OPENAPI_URL}}", url),
        headers={"Cache-Control": "no-cache", "Content-Security-Policy": policy},
    )


@router.get("/docs", response_class=HTMLResponse)
async def swagger_ui(request: Request) -> HTMLResponse:
    return _page(request, "swagger.html", SWAGGER_UI_POLICY)


@router.get("/redoc", response_class=HTMLResponse)
async def redoc(request: Request) -> HTMLResponse:
    return _page(request, "redoc.html", REDOC_POLICY)
