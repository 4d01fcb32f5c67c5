"""Web Mercator tile arithmetic (EPSG:3857, XYZ scheme, y down) — no database needed.

Used to validate addresses before any SQL runs, to find which cached tiles a changed bbox
touches, and to enumerate tiles for the offline export.
"""

from __future__ import annotations

import math
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Final

from layers.core.errors import FieldError, NotFound

MAX_ZOOM: Final = 22
#: Web Mercator's latitude limit: tiles cover ±85.0511°.
MAX_LAT: Final = 85.0511287798066
#: ST_AsMVTGeom extent and buffer (tile units); the buffer is what a neighbour may draw.
EXTENT: Final = 4096
BUFFER: Final = 64
#: Query margin as a fraction of the tile width: the buffer plus a little, for ST_TileEnvelope.
MARGIN: Final = BUFFER / EXTENT * 1.25
WORLD_M: Final = 2 * 20037508.342789244


class TileOutOfRange(NotFound, ValueError):
    """No such tile: z beyond 0..22 or x/y beyond 0..2^z - 1 (a 404 naming z, x or y)."""

    def __init__(self, field: str, reason: str) -> None:
        super().__init__(f"no such tile: {field}: {reason}", [FieldError(field, reason)])
        self.field = field
        self.reason = reason


@dataclass(frozen=True, order=True)
class Tile:
    z: int
    x: int
    y: int

    def check(self) -> Tile:
        if not 0 <= self.z <= MAX_ZOOM:
            raise TileOutOfRange("z", f"{self.z} is outside 0..{MAX_ZOOM}")
        top = (1 << self.z) - 1
        if not 0 <= self.x <= top:
            raise TileOutOfRange("x", f"{self.x} is outside 0..{top} at zoom {self.z}")
        if not 0 <= self.y <= top:
            raise TileOutOfRange("y", f"{self.y} is outside 0..{top} at zoom {self.z}")
        return self

    def lonlat_bounds(self, margin: float = 0.0) -> tuple[float, float, float, float]:
        """(west, south, east, north) in degrees, widened by ``margin`` tile widths."""
        n = 1 << self.z
        x0, x1 = self.x - margin, self.x + 1 + margin
        y0, y1 = self.y - margin, self.y + 1 + margin
        return (_lon(x0, n), _lat(y1, n), _lon(x1, n), _lat(y0, n))

    @property
    def width_m(self) -> float:
        return WORLD_M / (1 << self.z)


def _lon(x: float, n: int) -> float:
    return x / n * 360.0 - 180.0


def _lat(y: float, n: int) -> float:
    y = min(max(y, 0.0), float(n))
    return math.degrees(math.atan(math.sinh(math.pi * (1 - 2 * y / n))))


def tile_range(bbox: tuple[float, float, float, float], z: int) -> tuple[int, int, int, int]:
    """Inclusive (xmin, ymin, xmax, ymax) of the tiles at ``z`` covering a lon/lat bbox."""
    west, south, east, north = bbox
    n = 1 << z

    def tx(lon: float) -> int:
        return min(n - 1, max(0, math.floor((lon + 180.0) / 360.0 * n)))

    def ty(lat: float) -> int:
        lat = min(max(lat, -MAX_LAT), MAX_LAT)
        r = math.radians(lat)
        return min(n - 1, max(0, math.floor((1 - math.asinh(math.tan(r)) / math.pi) / 2 * n)))

    return tx(west), ty(north), tx(east), ty(south)


def tiles_in(bbox: tuple[float, float, float, float], zooms: range) -> Iterator[Tile]:
    for z in zooms:
        x0, y0, x1, y1 = tile_range(bbox, z)
        for x in range(x0, x1 + 1):
            for y in range(y0, y1 + 1):
                yield Tile(z, x, y)


def intersects(a: tuple[float, float, float, float], b: tuple[float, float, float, float]) -> bool:
    return a[0] <= b[2] and b[0] <= a[2] and a[1] <= b[3] and b[1] <= a[3]
