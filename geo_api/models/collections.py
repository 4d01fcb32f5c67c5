"""The REST collections' answers, derived from the catalogue (layers/catalog/declarations.py),
and the answers of their edits.

Each layer's REST properties (``Prop`` with ``rest=True``) become the fields of its
``<Layer>Properties`` model, so a layer added to the catalogue documents its GeoJSON bodies
without a line here. Every declared property is always sent (the SQL builds the object from
the same list, layers/collections/read.py), so every field is required; the catalogue does not
say which columns may be empty, so every field is nullable.
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import Field, create_model

from geo_api.models.base import Body, Number
from layers.catalog.model import FieldType, GeometryType, Layer

#: The JSON type of each catalogue field type. ``Object`` is whatever JSON the SQL builds (a
#: geometry, a list of substances or controls); ``Date`` a date or a date-time as PostgreSQL
#: prints it in JSON (``2029-03-22``, ``2026-12-04T15:59:39+00:00``).
_JSON_TYPES: dict[FieldType, Any] = {
    "String": str,
    "Number": Number,
    "Boolean": bool,
    "Object": Any,
    "Date": str,
}
#: The GeoJSON types of a layer's geometry (single or multi part, as stored).
_GEOMETRY_TYPES: dict[GeometryType, tuple[str, ...]] = {
    "point": ("Point", "MultiPoint"),
    "line": ("LineString", "MultiLineString"),
    "polygon": ("Polygon", "MultiPolygon"),
}


class Link(Body):
    rel: str = Field(description="self, next or prev")
    href: str
    type: str


class Created(Body):
    """``POST /api/<collection>``: the new ids in the order sent; ``id`` too (and a
    ``Location`` header) when the body was one Feature."""

    ids: list[int]
    id: int | None = None


def _camel(name: str) -> str:
    return "".join(part.capitalize() for part in name.split("_"))


def _geometry_model(layer: Layer) -> Any:
    if layer.geom_sql is None:
        return None  # no geometry at all: always null
    # A layer that declares no geometry type (a waybill's route: a line or a corridor polygon)
    # may answer any of them.
    kind = layer.geometry_type
    types = _GEOMETRY_TYPES[kind] if kind else sum(_GEOMETRY_TYPES.values(), ())
    fields: dict[str, Any] = {
        "type": (Literal[types], ...),
        "coordinates": (list[Any], ...),
    }
    model = _model(
        f"{_camel(layer.name)}Geometry",
        f"A {kind or 'point, line or polygon'} geometry in WGS 84 (7 decimals).",
        fields,
    )
    return model | None  # vehicles without a fix yet have none


def _model(name: str, doc: str, fields: dict[str, Any]) -> type[Body]:
    """A ``Body`` named ``name`` (its /openapi.json component) with ``fields``."""
    model: type[Body] = create_model(name, __base__=Body, __doc__=doc, **fields)
    return model


def properties_model(layer: Layer) -> type[Body]:
    """The ``properties`` of a layer's features, one field per REST property."""
    fields: dict[str, Any] = {}
    for prop in layer.properties:
        if not prop.rest:
            continue
        kind = _JSON_TYPES[prop.type]
        doc = prop.description or None
        fields[prop.name] = (kind | None, Field(description=doc))
    doc = f"Properties of one of {layer.title}, as the catalogue declares them."
    return _model(f"{_camel(layer.name)}Properties", doc, fields)


def feature_model(layer: Layer) -> type[Body]:
    """One feature of the layer's collection (``GET /api/<collection>/{id}``)."""
    fields: dict[str, Any] = {
        "type": (Literal["Feature"], ...),
        "id": (int, ...),
        "geometry": (_geometry_model(layer), ...),
        "properties": (properties_model(layer), ...),
    }
    return _model(
        f"{_camel(layer.name)}Feature", f"One of {layer.title} as a GeoJSON Feature.", fields
    )


def collection_model(layer: Layer, feature: type[Body]) -> type[Body]:
    """A page of the layer's collection (``GET /api/<collection>``)."""
    fields: dict[str, Any] = {
        "type": (Literal["FeatureCollection"], ...),
        "numberMatched": (int, Field(description="features matching the filters")),
        "numberReturned": (int, Field(description="features on this page")),
        "links": (list[Link], Field(description="self, and next / prev pages when there are")),
        "features": (list[feature], ...),  # type: ignore[valid-type]
    }
    return _model(
        f"{_camel(layer.name)}Collection",
        f"{layer.title}: one page as a GeoJSON FeatureCollection, by id.",
        fields,
    )


# -- edits (PATCH and DELETE) ---------------------------------------------------------------
class EditOutcome(Body):
    """``PATCH``: the item's new version; ``etag`` is also the answer's ``ETag`` header, the
    ``If-Match`` of the next edit."""

    id: int
    version: int = Field(description="the row version after this edit")
    etag: str = Field(description='the new strong ETag, e.g. "4"')


class DeleteOutcome(Body):
    """``DELETE`` of a row that history names (alerts, alarms, readings, stops, fixes,
    deductions): retired — gone from lists, maps and rules, kept as evidence; its item answers
    410 from now on. A row nothing names is deleted outright: 204, no body."""

    id: int
    outcome: Literal["retired"]
