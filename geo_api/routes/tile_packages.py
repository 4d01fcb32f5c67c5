"""Offline tile packages for field use (issue 16 §5, docs/operations.md "Offline tiles").

``GET /tiles/packages`` lists the packages of ``GEORISK_TILES_PACKAGES_DIR`` the caller may
fetch; ``GET /tiles/{name}.pmtiles`` serves one with HTTP range requests (what PMTiles
readers — MapLibre's pmtiles protocol, GDAL's /vsicurl/ — ask for), ``.mbtiles`` the same way
as a plain download. Who may fetch which package is ``layers/access/packages.py``: the view
recorded in the package at export must be covered by the caller's own.

Starlette's ``FileResponse`` answers ranges itself: ``206`` with ``Content-Range``, ``416``
for a range past the end, ``200`` without ``Range``, ``Accept-Ranges: bytes`` and an ``ETag``
(size and mtime), which ``If-Range`` is checked against. ``HEAD`` is answered too: some
readers ask a file's size before its first range.
"""

from __future__ import annotations

from pathlib import Path as FsPath
from typing import Annotated, Any

from fastapi import APIRouter, Path, Request
from fastapi.responses import FileResponse, JSONResponse

from geo_api.auth import ANYONE, Caller, CurrentCaller, allow
from geo_api.errors import FieldError, Forbidden, NotFound
from geo_api.models.tiles import PACKAGE_MEDIA, TilePackageList, package_responses
from geo_api.settings import Settings
from layers.access.packages import covers
from layers.catalog import Catalog
from tiles import packages
from tiles.packages import Package

router = APIRouter(tags=["tiles"])
Everyone = [allow(*ANYONE)]  # which packages each caller may fetch is checked per package
Name = Annotated[str, Path(description="the package's name ([A-Za-z0-9_-]+)")]
MEDIA = PACKAGE_MEDIA
#: A package's bytes depend on who asks only through whether they may have it at all.
VARY = "Authorization, X-API-Key, Cookie"


def packages_dir(settings: Settings) -> FsPath:
    return settings.tiles.packages_dir or settings.db.data_dir / "packages"


def _settings(request: Request) -> Settings:
    settings: Settings = request.app.state.settings
    return settings


def _may_fetch(caller: Caller, package: Package, catalog: Catalog) -> bool:
    return covers(caller.role, caller.districts, caller.enterprise_id, package.view, catalog)


def _describe(base: str, package: Package) -> dict[str, Any]:
    return {
        "name": package.name,
        "format": package.format,
        "bytes": package.size,
        "url": f"{base.rstrip('/')}/tiles/{package.name}.{package.format}",
        "view": package.view.to_json() if package.view else None,
    }


@router.get(
    "/tiles/packages",
    summary="Offline tile packages the caller may fetch",
    response_model=TilePackageList,
    dependencies=Everyone,
)
async def list_packages(request: Request, caller: CurrentCaller) -> JSONResponse:
    """Each with its ``url`` and the ``view`` it was exported for (role, layers, districts,
    enterprise); packages of views the caller's own does not cover are not listed."""
    settings = _settings(request)
    catalog: Catalog = request.app.state.catalog
    found = packages.listing(packages_dir(settings), settings.tiles.packages_list_max)
    base = str(request.base_url)
    listed = [_describe(base, p) for p in found if _may_fetch(caller, p, catalog)]
    return JSONResponse({"packages": listed}, headers={"Cache-Control": "private, no-cache"})


def _serve(request: Request, caller: Caller, name: str, fmt: str) -> FileResponse:
    package = packages.find(packages_dir(_settings(request)), name, fmt)
    if package is None:
        reason = f"no {fmt} package {name!r}; see GET /tiles/packages"
        raise NotFound(f"name: {reason}", [FieldError("name", reason)])
    if not _may_fetch(caller, package, request.app.state.catalog):
        reason = f"package {name!r} holds more than the {caller.role} role's view"
        raise Forbidden(f"name: {reason}", [FieldError("name", reason)])
    return FileResponse(
        package.path,
        media_type=MEDIA[fmt],
        filename=f"{name}.{fmt}",
        content_disposition_type="inline" if fmt == "pmtiles" else "attachment",
        headers={"Cache-Control": "private, no-cache", "Vary": VARY},
    )


@router.get(
    "/tiles/{name}.pmtiles",
    summary="An offline PMTiles package (HTTP range requests)",
    response_class=FileResponse,
    responses=package_responses("pmtiles"),
    dependencies=Everyone,
)
@router.head("/tiles/{name}.pmtiles", include_in_schema=False, dependencies=Everyone)
async def get_pmtiles(request: Request, caller: CurrentCaller, name: Name) -> FileResponse:
    return _serve(request, caller, name, "pmtiles")


@router.get(
    "/tiles/{name}.mbtiles",
    summary="An offline MBTiles package (a download; ranges work too)",
    response_class=FileResponse,
    responses=package_responses("mbtiles"),
    dependencies=Everyone,
)
@router.head("/tiles/{name}.mbtiles", include_in_schema=False, dependencies=Everyone)
async def get_mbtiles(request: Request, caller: CurrentCaller, name: Name) -> FileResponse:
    return _serve(request, caller, name, "mbtiles")
