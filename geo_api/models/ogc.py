"""What the ``/ogc`` operations answer (OGC API – Common, Features Parts 1–3, Tiles): the
documents of ``geo_api/routes/ogc*.py``, described for /openapi.json. The handlers build the
documents themselves and answer ``JSONResponse``s, so these models document, never reshape."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import Field

from geo_api.models.base import Body, Number


class Link(Body):
    href: str
    rel: str
    type: str | None = None
    title: str | None = None
    templated: bool | None = None


class LandingPage(Body):
    title: str
    description: str
    links: list[Link]


class Conformance(Body):
    conformsTo: list[str]


class SpatialExtent(Body):
    bbox: list[list[Number]]
    crs: str = Field(description="CRS of the bbox: always CRS84 (lon/lat)")


class TemporalExtent(Body):
    interval: list[list[str | None]]
    trs: str


class Extent(Body):
    spatial: SpatialExtent
    temporal: TemporalExtent | None = None


class Collection(Body):
    """A catalogue layer: features (``itemType`` feature, with ``crs`` and ``storageCrs``),
    vector tiles (``dataType`` vector), or both."""

    id: str
    title: str
    description: str
    extent: Extent
    itemType: Literal["feature"] | None = None
    dataType: Literal["vector"] | None = None
    crs: list[str] | None = None
    storageCrs: str | None = None
    links: list[Link]


class Collections(Body):
    collections: list[Collection]
    links: list[Link]


class Queryables(Body):
    """JSON Schema (2020-12) of the properties a filter may name."""

    type: Literal["object"]
    title: str
    properties: dict[str, dict[str, Any]]


class Feature(Body):
    type: Literal["Feature"]
    id: int
    geometry: dict[str, Any] | None
    properties: dict[str, Any]


class FeatureCollection(Body):
    type: Literal["FeatureCollection"]
    numberMatched: int
    numberReturned: int
    timeStamp: str
    links: list[Link]
    features: list[Feature]


class TileMatrixSetRef(Body):
    id: str
    title: str
    uri: str
    links: list[Link]


class TileMatrixSets(Body):
    tileMatrixSets: list[TileMatrixSetRef]
    links: list[Link]


class TileMatrixSet(Body):
    """OGC 17-083r4 (TileMatrixSet 2.0) JSON."""

    id: str
    uri: str
    crs: str
    tileMatrices: list[dict[str, Any]]


class TilesetRef(Body):
    title: str
    dataType: Literal["vector"]
    crs: str
    tileMatrixSetURI: str
    links: list[Link]


class Tilesets(Body):
    tilesets: list[TilesetRef]
    links: list[Link]


class Tileset(Body):
    """Tileset metadata (OGC API – Tiles / TMS 2.0): the layers, limits and tile template."""

    title: str
    dataType: Literal["vector"]
    crs: str
    tileMatrixSetURI: str
    tileMatrixSetLimits: list[dict[str, Any]]
    boundingBox: dict[str, Any]
    layers: list[dict[str, Any]]
    links: list[Link]


class OpenApiInfo(Body):
    title: str
    version: str
    description: str


class OpenApiDocument(Body):
    """``/ogc/openapi.json``: an OpenAPI 3.0 document of the caller's OGC API, with a path per
    feature collection the caller may read (its own parameters and queryables)."""

    openapi: str = Field(description="the OpenAPI version, 3.0.x")
    info: OpenApiInfo
    servers: list[dict[str, Any]] = Field(description="one: this server's /ogc")
    externalDocs: dict[str, str] = Field(description="the whole server's /openapi.json")
    paths: dict[str, dict[str, Any]]
    components: dict[str, Any]
