"""Validation of incoming features and rows — the one path shared by ``POST`` and imports.

A layer's property model (``layers/catalog/props.py``, named by its catalogue entry) checks the
properties; ``layers/core/geometry.py`` the geometry after reprojection (``layers/core/crs.py``).
Every problem is collected, not just the first. Nothing here knows about HTTP; callers turn
``FeaturesRejected`` into a response or a row report.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

from pydantic import ValidationError
from pyproj import Transformer

from layers.catalog.props import EnterpriseProps, LayerProps
from layers.core.crs import CRSRejected, resolve_crs
from layers.core.features import MalformedPayload, Problem, Record
from layers.core.geometry import AREA, GeometryProblem, clean_geometry


def property_names(model: type[LayerProps]) -> frozenset[str]:
    """Every key a layer accepts (aliases included), so imports can set other columns aside."""
    return frozenset(model.model_fields)


def _pydantic_problems(index: int, exc: ValidationError, layer: str) -> list[Problem]:
    out = []
    for err in exc.errors(include_url=False):
        loc = ".".join(str(p) for p in err["loc"]) or "properties"
        if err["type"] == "extra_forbidden":
            reason = f"not a property of {layer}"
        elif err["type"] == "missing" or (
            err.get("input") is None and err["type"].endswith("_type")
        ):
            reason = "required"
        else:
            reason = str(err["msg"]).removeprefix("Value error, ")
        out.append(Problem(index, loc, reason))
    return out


def validate_item(
    model: type[LayerProps],
    layer: str,
    properties: Mapping[str, Any],
    geometry: Any,
    index: int,
    transformer: Transformer | None = None,
) -> tuple[Record | None, list[Problem]]:
    """Check one feature's properties and geometry; collect every problem, not just the first."""
    problems: list[Problem] = []
    props: LayerProps | None = None
    try:
        props = model.model_validate(dict(properties))
    except ValidationError as exc:
        problems.extend(_pydantic_problems(index, exc, layer))
    if props is not None:
        problems.extend(Problem(index, f, r) for f, r in props.cross_problems())
    values: dict[str, Any] = props.columns() if props is not None else {}
    rule = model.geometry
    if rule is not None:
        try:
            values["geom"] = clean_geometry(geometry, rule, transformer)
        except GeometryProblem as exc:
            problems.append(Problem(index, "geometry", str(exc)))
    elif geometry is not None:
        problems.append(Problem(index, "geometry", f"{layer} have no geometry"))
    if isinstance(props, EnterpriseProps) and props.site is not None:
        try:
            values["site_geom"] = clean_geometry(props.site, AREA, transformer)
        except GeometryProblem as exc:
            problems.append(Problem(index, "site", str(exc)))
    if problems:
        return None, problems
    return Record(index, values), []


# -- request bodies -----------------------------------------------------------------------


def _declared_crs(obj: Mapping[str, Any]) -> str | None:
    """The GeoJSON 2008 ``crs`` member (``{"type": "name", "properties": {"name": ...}}``)."""
    crs = obj.get("crs")
    if crs is None:
        return None
    if isinstance(crs, str):
        return crs
    if isinstance(crs, Mapping) and isinstance(crs.get("properties"), Mapping):
        name = crs["properties"].get("name")
        if isinstance(name, str):
            return name
    raise MalformedPayload("crs", 'expected {"type": "name", "properties": {"name": "EPSG:…"}}')


def _features(payload: Any) -> tuple[list[Any], str | None, bool]:
    if not isinstance(payload, Mapping):
        raise MalformedPayload("body", "expected a GeoJSON Feature or FeatureCollection object")
    kind = payload.get("type")
    if kind == "Feature":
        return [payload], _declared_crs(payload), True
    if kind == "FeatureCollection":
        features = payload.get("features")
        if not isinstance(features, list):
            raise MalformedPayload("features", "must be an array of Features")
        return features, _declared_crs(payload), False
    raise MalformedPayload("type", f"expected Feature or FeatureCollection, got {kind!r}")


def validate_payload(
    model: type[LayerProps], layer: str, payload: Any, crs: str | None = None
) -> tuple[list[Record], list[Problem], bool]:
    """Validate a POST body: GeoJSON for mapped layers, plain objects for vehicles.

    Returns the good records, the problems, and whether the body was a single item (the
    response then also carries ``id``).
    """
    if model.geometry is None:
        if crs is not None:
            raise MalformedPayload("crs", f"{layer} have no geometry to transform")
        single = isinstance(payload, Mapping)
        items = [payload] if single else payload
        if not isinstance(items, list):
            raise MalformedPayload("body", "expected a JSON object or an array of objects")
        return (*_validate_objects(model, layer, items), single)
    features, declared, single = _features(payload)
    if crs is not None and declared is not None and crs != declared:
        raise MalformedPayload("crs", f"query says {crs} but the body declares {declared}")
    try:
        transformer = resolve_crs(crs or declared)
    except CRSRejected as exc:
        return [], [Problem(None, "crs", str(exc))], single
    records, problems = [], []
    for index, feature in enumerate(features):
        if not isinstance(feature, Mapping) or feature.get("type") != "Feature":
            problems.append(Problem(index, "type", "expected a GeoJSON Feature"))
            continue
        if feature.get("crs") is not None and _declared_crs(feature) != (crs or declared):
            problems.append(Problem(index, "crs", "declare the CRS once, on the collection"))
            continue
        if feature.get("id") is not None:
            problems.append(Problem(index, "id", "ids are assigned by the server; omit it"))
        props = feature.get("properties") or {}
        if not isinstance(props, Mapping):
            problems.append(Problem(index, "properties", "must be an object"))
            continue
        record, bad = validate_item(
            model, layer, props, feature.get("geometry"), index, transformer
        )
        problems.extend(bad)
        if record is not None and not bad:
            records.append(record)
    if not features:
        problems.append(Problem(None, "features", "no features to create"))
    return records, problems, single


def _validate_objects(
    model: type[LayerProps], layer: str, items: Iterable[Any]
) -> tuple[list[Record], list[Problem]]:
    records, problems = [], []
    count = 0
    for index, item in enumerate(items):
        count += 1
        if not isinstance(item, Mapping):
            problems.append(Problem(index, "body", "expected a JSON object"))
            continue
        record, bad = validate_item(model, layer, item, None, index)
        problems.extend(bad)
        if record is not None:
            records.append(record)
    if count == 0:
        problems.append(Problem(None, "body", "no items to create"))
    return records, problems
