"""Geometry of incoming features, checked with shapely 2 after reprojection to WGS 84: type,
emptiness, validity, finite numbers, lon/lat range — what is checked is exactly what is stored.
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Final

import numpy as np
import shapely
from pyproj import Transformer
from shapely.geometry import MultiPolygon, Polygon, shape
from shapely.geometry.base import BaseGeometry
from shapely.validation import explain_validity


@dataclass(frozen=True)
class GeometryRule:
    """Which GeoJSON types a layer accepts and which one the column stores."""

    accepts: tuple[str, ...]
    stores: str


POINT: Final = GeometryRule(("Point",), "Point")
AREA: Final = GeometryRule(("Polygon", "MultiPolygon"), "MultiPolygon")
LINE: Final = GeometryRule(("LineString",), "LineString")
#: A waybill's planned route: a line (buffered by its corridor width) or the corridor polygon.
ROUTE: Final = GeometryRule(("LineString", "Polygon", "MultiPolygon"), "Geometry")

GEOJSON_TYPES: Final = frozenset(
    {"Point", "MultiPoint", "LineString", "MultiLineString", "Polygon", "MultiPolygon"}
)


class GeometryProblem(ValueError):
    pass


def _check_positions(coords: Any, depth: int = 0) -> None:
    """Walk GeoJSON coordinates: numbers only, finite, 2 or 3 per position."""
    if not isinstance(coords, list | tuple) or depth > 4:
        raise GeometryProblem("coordinates must be nested arrays of numbers")
    if coords and all(isinstance(c, int | float) and not isinstance(c, bool) for c in coords):
        if len(coords) not in (2, 3):
            raise GeometryProblem(f"a position needs 2 or 3 numbers, got {len(coords)}")
        for c in coords:
            # An int past float range (10**400) would raise OverflowError in isfinite.
            if isinstance(c, int) and abs(c) > 1e308:
                raise GeometryProblem("coordinate is too large to be a finite number")
            if not math.isfinite(c):
                raise GeometryProblem(f"coordinate {c} is not a finite number")
        return
    for item in coords:
        if isinstance(item, int | float | str | bool) or item is None:
            raise GeometryProblem(f"coordinates must be numbers, got {item!r}")
        _check_positions(item, depth + 1)


def _parse(value: Any, rule: GeometryRule) -> BaseGeometry:
    expected = " or ".join(rule.accepts)
    if isinstance(value, BaseGeometry):
        if value.geom_type not in rule.accepts:
            raise GeometryProblem(f"{value.geom_type} is not accepted here; expected {expected}")
        return value
    if not isinstance(value, Mapping):
        raise GeometryProblem("not a GeoJSON geometry object")
    kind = value.get("type")
    if not isinstance(kind, str) or kind not in GEOJSON_TYPES:  # a list/dict is unhashable
        raise GeometryProblem(f"not a GeoJSON geometry (type {kind!r})")
    if kind not in rule.accepts:
        raise GeometryProblem(f"{kind} is not accepted here; expected {expected}")
    _check_positions(value.get("coordinates"))
    try:
        return shape(dict(value))
    except (ValueError, TypeError, AttributeError, shapely.errors.GEOSException) as exc:
        raise GeometryProblem(f"malformed {kind} coordinates ({exc})") from None


def _format_validity(geom: BaseGeometry) -> str:
    """``Self-intersection[121.5 29.9]`` → ``Self-intersection at 121.5 29.9``."""
    text = explain_validity(geom)
    return re.sub(r"\[([^\]]*)\]$", r" at \1", text)


def clean_geometry(
    value: Any, rule: GeometryRule, transformer: Transformer | None = None
) -> BaseGeometry:
    """Parse, reproject to WGS 84 and check a geometry; return what the column stores.

    Order matters: the range and validity checks run on the transformed geometry, because that
    is what PostGIS will hold (a ring can become invalid by reprojection near a pole).
    """
    if value is None:
        raise GeometryProblem("required")
    geom = _parse(value, rule)
    if geom.is_empty:
        raise GeometryProblem(f"empty {geom.geom_type}")
    geom = shapely.force_2d(geom)
    coords = shapely.get_coordinates(geom)
    if not np.isfinite(coords).all():
        bad = coords[~np.isfinite(coords)][0]
        raise GeometryProblem(f"coordinate {bad} is not a finite number")
    if transformer is not None:
        geom = shapely.transform(geom, lambda xy: np.column_stack(transformer.transform(*xy.T)))
        coords = shapely.get_coordinates(geom)
        if not np.isfinite(coords).all():
            raise GeometryProblem("coordinates fall outside the declared CRS's area of use")
    lon, lat = coords[:, 0], coords[:, 1]
    if (np.abs(lon) > 180).any():
        raise GeometryProblem(f"longitude {lon[np.abs(lon) > 180][0]:g} is outside -180..180")
    if (np.abs(lat) > 90).any():
        raise GeometryProblem(f"latitude {lat[np.abs(lat) > 90][0]:g} is outside -90..90")
    if not geom.is_valid:
        raise GeometryProblem(f"invalid {geom.geom_type.lower()}: {_format_validity(geom)}")
    if rule.stores == "MultiPolygon" and isinstance(geom, Polygon):
        geom = MultiPolygon([geom])
    return geom
