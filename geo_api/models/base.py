"""Base types of the response models: the open ``Body``, ``Number``, ISO strings, geometry,
and the GeoJSON media type."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi.responses import JSONResponse
from pydantic import BaseModel, ConfigDict, WithJsonSchema

#: An integer or a float, kept as sent (a ``float`` field would print a stored 4 as 4.0).
Number = Annotated[int | float, WithJsonSchema({"type": "number"})]
#: An ISO 8601 date-time the handler has already formatted (``isoformat()``: ``+00:00``).
IsoTime = Annotated[str, WithJsonSchema({"type": "string", "format": "date-time"})]
#: An ISO 8601 date (YYYY-MM-DD).
IsoDate = Annotated[str, WithJsonSchema({"type": "string", "format": "date"})]


class Body(BaseModel):
    """Base of every response model: the declared fields are the promise, extra keys pass
    through, so adding ``response_model`` never drops what a handler sends."""

    model_config = ConfigDict(extra="allow")


class Geometry(Body):
    """A GeoJSON geometry in WGS 84 (Point, Polygon, MultiPolygon…)."""

    type: str
    coordinates: list[Any]


class GeoJSONResponse(JSONResponse):
    """``application/geo+json``. Named as a route's ``response_class`` so /openapi.json lists a
    GeoJSON body under its real media type; handlers still build their own responses."""

    media_type = "application/geo+json"


def json_variant(model: type[BaseModel]) -> dict[str, Any]:
    """``openapi_extra`` documenting ``model`` as the ``application/json`` form of a 200 whose
    main form is GeoJSON (``f=json``). Nested models are referenced, not repeated: the GeoJSON
    form's model must bring them into ``components``."""
    schema = model.model_json_schema(
        ref_template="#/components/schemas/{model}", mode="serialization"
    )
    schema.pop("$defs", None)
    return {"responses": {"200": {"content": {"application/json": {"schema": schema}}}}}


def binary(
    media: str | tuple[str, ...], description: str, status: int = 200
) -> dict[int | str, Any]:
    """``responses=`` documenting a body that is not JSON (a tile, a file, a PDF, CSV, XML, an
    event stream) under its media type(s), as a string of bytes."""
    types = (media,) if isinstance(media, str) else media
    schema = {"type": "string", "format": "binary"}
    return {status: {"description": description, "content": {t: {"schema": schema} for t in types}}}
