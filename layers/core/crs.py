"""Coordinate reference systems of incoming data: EPSG codes (CGCS2000 included) are
reprojected to WGS 84; the offset consumer systems (GCJ-02, BD-09) are refused, never mixed in
silently (docs/domain.md §6).
"""

from __future__ import annotations

import re
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
