"""Coordinate reference systems of incoming data: EPSG codes (CGCS2000 included) are
reprojected to WGS 84; the offset consumer systems (GCJ-02, BD-09) are refused, never mixed in
silently (docs/domain.md §6).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from functools import lru_cache
from typing import Final

from pyproj import CRS, Transformer
from pyproj.exceptions import CRSError

WGS84_NAMES: Final = frozenset(
    {"epsg:4326", "crs84", "ogc:crs84", "urn:ogc:def:crs:ogc:1.3:crs84", "wgs84"}
)
#: Consumer map offsets (GCJ-02 "Mars coordinates", Baidu BD-09) are deliberate obfuscations
#: with no EPSG code; converting them is approximate, so we refuse instead of guessing.
OFFSET_CRS_NAMES: Final = ("gcj", "bd09", "bd-09", "bd_09", "baidu", "mars")
_EPSG = re.compile(
    r"^(?:epsg:|urn:ogc:def:crs:epsg:[0-9.]*:|https?://www\.opengis\.net/def/crs/epsg/[0-9.]+/)"
    r"([0-9]{4,6})$"
)


class CRSRejected(ValueError):
    """A declared CRS we do not transform (unknown, or a consumer map offset)."""


def resolve_crs(declared: str | None) -> Transformer | None:
    """The transformer to WGS 84 for a declared CRS, ``None`` when it already is WGS 84.

    CGCS2000 (EPSG:4490) is within centimetres of WGS 84 but is a different code, so it goes
    through pyproj like any other EPSG code; GCJ-02 / BD-09 are refused (docs/domain.md §6).
    """
    if declared is None:
        return None
    name = declared.strip().lower()
    if name in WGS84_NAMES or name.endswith("crs84"):
        return None
    if any(tag in name.replace(" ", "") for tag in OFFSET_CRS_NAMES):
        raise CRSRejected(
            f"{declared} is a consumer map offset (GCJ-02/BD-09); GeoRisk does not silently "
            "convert consumer map offsets — convert to WGS 84 (EPSG:4326) or CGCS2000 "
            "(EPSG:4490) first"
        )
    match = _EPSG.match(name)
    if not match:
        raise CRSRejected(f"unknown CRS {declared!r}; declare an EPSG code such as EPSG:4490")
    code = int(match.group(1))
    return None if code == 4326 else _transformer(code)


@lru_cache(maxsize=64)
def _transformer(code: int) -> Transformer:
    try:
        source = CRS.from_epsg(code)
    except CRSError:
        raise CRSRejected(f"EPSG:{code} is not a known CRS") from None
    return Transformer.from_crs(source, 4326, always_xy=True)


def transformer_from(source: CRS) -> Transformer | None:
    """For files: pyproj CRS objects read from .prj / GeoPackage metadata."""
    if source.equals(CRS.from_epsg(4326), ignore_axis_order=True):
        return None  # EPSG:4326 or OGC:CRS84 (what GeoJSON files declare)
    return Transformer.from_crs(source, 4326, always_xy=True)


# --- OGC API – Features Part 2: the CRSs the /ogc routes answer in -----------------------


@dataclass(frozen=True)
class OgcCrs:
    """A CRS of OGC API – Features Part 2 as this server offers it: its URI, its EPSG code and
    whether its first axis is latitude (EPSG:4490 is lat/lon, CRS84 lon/lat, EPSG:3857 x/y).
    Data is stored in EPSG:4326 with lon/lat order; the SQL here moves it in and out."""

    uri: str
    srid: int
    lat_first: bool = False
    decimals: int = 7  # ~1 cm in degrees; metres get 2

    def output_sql(self, geom: str) -> str:
        """``geom`` (stored, EPSG:4326 lon/lat) as GeoJSON geometry text in this CRS."""
        if self.srid == 4326:
            return f"ST_AsGeoJSON({geom}, {self.decimals})"
        moved = f"ST_Transform({geom}, {self.srid})"
        if self.lat_first:
            moved = f"ST_FlipCoordinates({moved})"
        return f"ST_AsGeoJSON({moved}, {self.decimals})"

    def input_sql(self, placeholder: str) -> str:
        """A geometry given in this CRS (WKB bound to ``placeholder``, axes in this CRS's order)
        as a stored EPSG:4326 geometry."""
        geom = f"ST_GeomFromWKB({placeholder})"
        if self.lat_first:
            geom = f"ST_FlipCoordinates({geom})"
        if self.srid == 4326:
            return f"ST_SetSRID({geom}, 4326)"
        return f"ST_Transform(ST_SetSRID({geom}, {self.srid}), 4326)"

    def box(self, values: tuple[float, float, float, float]) -> tuple[float, float, float, float]:
        """A bbox in this CRS's axis order as (minx, miny, maxx, maxy) in x/y (lon/lat) order."""
        a, b, c, d = values
        return (b, a, d, c) if self.lat_first else (a, b, c, d)

    def within(self, box: tuple[float, float, float, float]) -> bool:
        """Whether ``box`` (minx, miny, maxx, maxy in x/y order) lies in this CRS's area of
        use: coordinates outside it are a client's mistake, never a transformation error."""
        limit = _AREA[self.srid]
        return limit[0] <= box[0] <= box[2] <= limit[2] and limit[1] <= box[1] <= box[3] <= limit[3]

    @property
    def header(self) -> str:
        """The ``Content-Crs`` header value."""
        return f"<{self.uri}>"


#: Where each offered CRS's coordinates may lie (x/y order): the globe in degrees; Web
#: Mercator's square (its y reaches ±85.06°, where the square ends).
_AREA: Final = {
    4326: (-180.0, -90.0, 180.0, 90.0),
    4490: (-180.0, -90.0, 180.0, 90.0),
    3857: (-20037508.3427892, -20037508.3427892, 20037508.3427892, 20037508.3427892),
}
CRS84_URI: Final = "http://www.opengis.net/def/crs/OGC/1.3/CRS84"
CRS84: Final = OgcCrs(CRS84_URI, 4326)
CGCS2000: Final = OgcCrs("http://www.opengis.net/def/crs/EPSG/0/4490", 4490, lat_first=True)
WEB_MERCATOR: Final = OgcCrs("http://www.opengis.net/def/crs/EPSG/0/3857", 3857, decimals=2)
#: What ``crs``, ``bbox-crs`` and ``filter-crs`` accept, CRS84 (the default) first.
OGC_CRSS: Final = (CRS84, CGCS2000, WEB_MERCATOR)
_BY_NAME: Final = {
    **{c.uri.lower(): c for c in OGC_CRSS},
    "[ogc:crs84]": CRS84,
    "ogc:crs84": CRS84,
    "epsg:4490": CGCS2000,
    "[epsg:4490]": CGCS2000,
    "epsg:3857": WEB_MERCATOR,
    "[epsg:3857]": WEB_MERCATOR,
}


def ogc_crs(text: str | None) -> OgcCrs:
    """The offered CRS a ``crs`` / ``bbox-crs`` / ``filter-crs`` value names (URI, or the
    ``EPSG:4490`` shorthand); CRS84 when absent. Anything else is :class:`CRSRejected`."""
    if text is None or not text.strip():
        return CRS84
    found = _BY_NAME.get(text.strip().lower())
    if found is None:
        offered = ", ".join(c.uri for c in OGC_CRSS)
        raise CRSRejected(f"{text} is not offered; use one of {offered}")
    return found
