"""Tile answers (tiles/, geo_api/routes/tiles.py, tile_packages.py): the layer catalogue, tile
tokens, TileJSON 3.0.0, the MapLibre style and the offline packages; the tiles and packages
themselves are bytes, documented by media type (``TILE_RESPONSES``, ``PACKAGE_RESPONSES``).
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import Field

from geo_api.errors import error_responses
from geo_api.models.base import Body, Number, binary

MVT = "application/vnd.mapbox-vector-tile"
PACKAGE_MEDIA = {"pmtiles": "application/vnd.pmtiles", "mbtiles": "application/vnd.sqlite3"}


class TileLayerEntry(Body):
    name: str
    title: str
    description: str
    geometry_type: str
    minzoom: int
    maxzoom: int
    cache: Literal["static", "live"]
    clustered_below: int | None
    feature_cap: int | None
    time: Literal["none", "window", "at"]
    legend: str
    fields: dict[str, str] = Field(description="field → TileJSON type, as the caller sees them")
    tilejson: str
    tiles: str = Field(description="the tile URL template")


class TileCatalog(Body):
    """``GET /tiles``: the layers the caller may request."""

    layers: list[TileLayerEntry]
    style: str


class TileToken(Body):
    """``GET /tiles/token``: a tile token for ``?t=`` (all null for the anonymous map)."""

    token: str | None
    expires_at: int | None = Field(description="Unix time")
    expires_in: int | None = Field(description="seconds")
    layers: list[str]


class VectorLayer(Body):
    id: str
    description: str
    minzoom: int
    maxzoom: int
    fields: dict[str, str]
    geometry_type: str


class TileJson(Body):
    """``GET /tiles/{layers}.json``: TileJSON 3.0.0."""

    tilejson: Literal["3.0.0"]
    name: str
    description: str
    version: str
    scheme: Literal["xyz"]
    tiles: list[str]
    minzoom: int
    maxzoom: int
    bounds: list[Number] = Field(description="west, south, east, north")
    center: list[Number] = Field(description="lon, lat, zoom")
    attribution: str
    vector_layers: list[VectorLayer]
    legend: str


class MapStyle(Body):
    """``GET /styles/risk.json``: a MapLibre style (spec version 8) in the four colours."""

    version: Literal[8]
    name: str
    metadata: dict[str, Any]
    sources: dict[str, dict[str, Any]]
    layers: list[dict[str, Any]]


class PackageViewInfo(Body):
    role: str
    layers: list[str]
    districts: list[str] | None
    enterprise_id: int | None
    enterprise_district: str | None


class TilePackage(Body):
    name: str
    format: Literal["pmtiles", "mbtiles"]
    bytes: int
    url: str
    view: PackageViewInfo | None = Field(description="the view it was exported for")


class TilePackageList(Body):
    """``GET /tiles/packages``: the packages the caller may fetch."""

    packages: list[TilePackage]


#: An MVT tile: 200 with the tile, 204 when there is nothing (outside the zooms, no feature),
#: 304 when the If-None-Match ETag still holds.
TILE_RESPONSES: dict[int | str, dict[str, Any]] = {
    **binary(MVT, "a Mapbox vector tile (gzip-encoded when the client accepts it)"),
    204: {"description": "an empty tile: outside every layer's zooms, or no feature"},
    304: {"description": "not modified (If-None-Match)"},
}


def package_responses(fmt: str) -> dict[int | str, dict[str, Any]]:
    """A package file: whole (200) or a byte range of it (206; 416 past the end)."""
    media = PACKAGE_MEDIA[fmt]
    return {
        **binary(media, f"the whole {fmt} file"),
        **binary(media, "the requested byte range (Range: bytes=…)", 206),
        **error_responses(416),
    }
