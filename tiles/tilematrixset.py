"""OGC documents for the tile grid this server cuts: the WebMercatorQuad tile matrix set
(OGC 17-083r4, Two Dimensional Tile Matrix Set 2.0) and tileset metadata (OGC API – Tiles
Part 1, OGC 20-057). Pure: the HTTP layer (``geo_api/routes/ogc.py``) adds URLs and callers.

The matrices are computed from the grid's definition (origin at the top-left corner of
EPSG:3857's square, 256-pixel tiles, 2^z × 2^z tiles at zoom z), not pasted: the same numbers
``tiles/tms.py`` cuts tiles with.
"""

from __future__ import annotations

import math
from typing import Any, Final

from layers.access.roles import FULL_VIEW, TileView
from layers.catalog.tiles import TileLayer
from tiles.tms import MAX_LAT, MAX_ZOOM, tile_range

TMS_ID: Final = "WebMercatorQuad"
TMS_URI: Final = "http://www.opengis.net/def/tilematrixset/OGC/1.0/WebMercatorQuad"
CRS_3857: Final = "http://www.opengis.net/def/crs/EPSG/0/3857"
CRS84: Final = "http://www.opengis.net/def/crs/OGC/1.3/CRS84"
#: Half the side of EPSG:3857's square: π times the WGS 84 semi-major axis. OGC 17-083r4
#: prints the origin rounded to 7 decimals; the cell sizes come from the exact value.
HALF_SIDE: Final = math.pi * 6378137.0
ORIGIN: Final = (-20037508.3427892, 20037508.3427892)
TILE_PX: Final = 256
#: The standardized rendering pixel size (0.28 mm) that turns a cell size into a scale.
PIXEL_M: Final = 0.00028

_JSON_TYPES: Final = {"String": "string", "Number": "number", "Boolean": "boolean"}
_DIMENSION: Final = {"point": 0, "line": 1, "polygon": 2}


def cell_size(zoom: int) -> float:
    """Metres per pixel at ``zoom``: the square's side over 256 · 2^zoom pixels."""
    return 2 * HALF_SIDE / (TILE_PX * (1 << zoom))


def tile_matrix(zoom: int) -> dict[str, Any]:
    size = cell_size(zoom)
    return {
        "id": str(zoom),
        "scaleDenominator": size / PIXEL_M,
        "cellSize": size,
        "cornerOfOrigin": "topLeft",
        "pointOfOrigin": list(ORIGIN),
        "tileWidth": TILE_PX,
        "tileHeight": TILE_PX,
        "matrixWidth": 1 << zoom,
        "matrixHeight": 1 << zoom,
    }


def web_mercator_quad() -> dict[str, Any]:
    """The TileMatrixSet 2.0 JSON of WebMercatorQuad, zooms 0 to ``MAX_ZOOM``."""
    return {
        "id": TMS_ID,
        "title": "Google Maps compatible Web Mercator quadtree",
        "uri": TMS_URI,
        "crs": CRS_3857,
        "orderedAxes": ["X", "Y"],
        "wellKnownScaleSet": "http://www.opengis.net/def/wkss/OGC/1.0/GoogleMapsCompatible",
        "tileMatrices": [tile_matrix(z) for z in range(MAX_ZOOM + 1)],
    }


def to_3857(lon: float, lat: float) -> tuple[float, float]:
    """Web Mercator metres of a lon/lat (latitude clamped to the square)."""
    lat = max(-MAX_LAT, min(MAX_LAT, lat))
    y = math.log(math.tan(math.pi / 4 + math.radians(lat) / 2)) * 6378137.0
    return lon / 180.0 * HALF_SIDE, y


def matrix_limits(
    bounds: tuple[float, float, float, float], minzoom: int, maxzoom: int
) -> list[dict[str, Any]]:
    """``tileMatrixSetLimits``: per zoom of the layer, the rows and columns covering
    ``bounds`` (lon/lat) — a client asks for nothing outside them."""
    out = []
    for z in range(max(0, minzoom), min(MAX_ZOOM, maxzoom) + 1):
        x0, y0, x1, y1 = tile_range(bounds, z)
        out.append(
            {
                "tileMatrix": str(z),
                "minTileRow": y0,
                "maxTileRow": y1,
                "minTileCol": x0,
                "maxTileCol": x1,
            }
        )
    return out


def tileset_layer(layer: TileLayer, view: TileView = FULL_VIEW) -> dict[str, Any]:
    """One vector layer of a tileset: its MVT layer name and the properties ``view`` sees."""
    types = view.visible(layer.fields, layer)
    described = layer.field_descriptions()
    return {
        "id": layer.name,
        "title": layer.title,
        "description": layer.description,
        "dataType": "vector",
        "geometryDimension": _DIMENSION.get(layer.geometry_type, 0),
        "minTileMatrix": str(layer.minzoom),
        "maxTileMatrix": str(layer.maxzoom),
        "propertiesSchema": {
            "type": "object",
            "properties": {
                name: {"type": _JSON_TYPES.get(kind, "string"), "description": described[name]}
                for name, kind in types.items()
            },
        },
    }


def tileset(
    layers: tuple[TileLayer, ...],
    title: str,
    bounds: tuple[float, float, float, float],
    view: TileView,
    links: list[dict[str, Any]],
) -> dict[str, Any]:
    """Tileset metadata (vector, WebMercatorQuad) for ``layers`` cut into one tile."""
    minzoom = min(layer.minzoom for layer in layers)
    maxzoom = max(layer.maxzoom for layer in layers)
    # In the tileset's own CRS: clients (GDAL) read the box in the tile matrix set's units.
    west, south = to_3857(bounds[0], bounds[1])
    east, north = to_3857(bounds[2], bounds[3])
    return {
        "title": title,
        "dataType": "vector",
        "crs": CRS_3857,
        "tileMatrixSetURI": TMS_URI,
        "tileMatrixSetLimits": matrix_limits(bounds, minzoom, maxzoom),
        "boundingBox": {"lowerLeft": [west, south], "upperRight": [east, north], "crs": CRS_3857},
        "layers": [tileset_layer(layer, view) for layer in layers],
        "links": links,
    }
