"""Validation of incoming features and rows — the one home shared by ``POST`` and imports.

The rules mirror the schema's CHECK constraints (same vocabularies and patterns from
``layers.core.vocab``) so that a bad value is refused here with the field and the reason, instead of
reaching the database and coming back as constraint text. Geometry is checked with shapely 2
(type, emptiness, validity, finite numbers, lon/lat range) after reprojection to WGS 84: what is
checked is exactly what will be stored.

Nothing here knows about HTTP; callers turn ``FeaturesRejected`` into a response or a row report.
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from datetime import date
from functools import lru_cache
from typing import Annotated, Any, ClassVar, Final

import numpy as np
import shapely
from pydantic import (
    AfterValidator,
    AliasChoices,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    ValidationError,
    field_validator,
)
from pyproj import CRS, Transformer
from pyproj.exceptions import CRSError
from shapely.geometry import MultiPolygon, Polygon, shape
from shapely.geometry.base import BaseGeometry
from shapely.validation import explain_validity

from layers.core import vocab

# -- problems -----------------------------------------------------------------------------


@dataclass(frozen=True)
class Problem:
    """One thing wrong with one feature or row: where (index), what (field) and why (reason)."""

    index: int | None  # 0-based position in the batch; None when it concerns the whole batch
    field: str
    reason: str
    conflict: bool = False  # a duplicate of something that exists, not an impossible value


class FeaturesRejected(Exception):
    """The batch cannot be stored as given; nothing was stored."""

    def __init__(self, problems: list[Problem]) -> None:
        self.problems = sorted(problems, key=lambda p: (p.index is None, p.index or 0, p.field))
        first = self.problems[0] if self.problems else Problem(None, "body", "rejected")
        where = "" if first.index is None else f"feature {first.index}: "
        more = f" (and {len(self.problems) - 1} more)" if len(self.problems) > 1 else ""
        super().__init__(f"{where}{first.field}: {first.reason}{more}")

    @property
    def is_conflict(self) -> bool:
        """Only duplicates: the client's data is fine but clashes with what is stored (409)."""
        return bool(self.problems) and all(p.conflict for p in self.problems)


class MalformedPayload(ValueError):
    """The body is not the shape we accept at all (not a Feature, not an object …)."""

    def __init__(self, field: str, reason: str) -> None:
        super().__init__(f"{field}: {reason}")
        self.field = field
        self.reason = reason


# -- coordinate reference systems ----------------------------------------------------------

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


# -- geometry -----------------------------------------------------------------------------


@dataclass(frozen=True)
class GeometryRule:
    """Which GeoJSON types a layer accepts and which one the column stores."""

    accepts: tuple[str, ...]
    stores: str


POINT: Final = GeometryRule(("Point",), "Point")
AREA: Final = GeometryRule(("Polygon", "MultiPolygon"), "MultiPolygon")
LINE: Final = GeometryRule(("LineString",), "LineString")

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


# -- property models ----------------------------------------------------------------------


def _one_of(values: tuple[str, ...]) -> Callable[[str], str]:
    def check(value: str) -> str:
        if value not in values:
            raise ValueError(f"{value!r} is not one of: {', '.join(values)}")
        return value

    return check


def _matching(pattern: str, what: str) -> Callable[[str], str]:
    compiled = re.compile(pattern)

    def check(value: str) -> str:
        if not compiled.fullmatch(value):
            raise ValueError(f"{value!r} is not {what}")
        return value

    return check


def _not_blank(value: str) -> str:
    if not value:
        raise ValueError("must not be blank")
    return value


def _blank_is_none(value: Any) -> Any:
    """Files carry missing values as '' or NaN; both mean 'not given'."""
    if value is None or (isinstance(value, str) and not value.strip()):
        return None
    if isinstance(value, float) and math.isnan(value):
        return None
    return value


def _site_value(value: Any) -> Any:
    """A file column holds the site boundary as GeoJSON text or WKT; POST sends an object."""
    value = _blank_is_none(value)
    if not isinstance(value, str):
        return value
    text = value.strip()
    try:
        return json.loads(text) if text.startswith("{") else shapely.from_wkt(text)
    except (json.JSONDecodeError, shapely.errors.GEOSException):
        raise ValueError("must be a GeoJSON Polygon/MultiPolygon or WKT") from None


#: Mirrors the vehicles.hazmat_class CHECK (UN class 1–9 with optional division).

Text = Annotated[str, AfterValidator(_not_blank)]
OptText = Annotated[str | None, BeforeValidator(_blank_is_none)]
Cas = Annotated[
    str | None,
    BeforeValidator(_blank_is_none),
    AfterValidator(
        lambda v: (
            v if v is None else _matching(vocab.CAS_PATTERN, "a CAS number (e.g. 7782-50-5)")(v)
        )
    ),
]
OptFloat = Annotated[float | None, BeforeValidator(_blank_is_none)]
# Bounds sit inside the Optional so an explicit null is "not given", not a failed comparison.
OptPositive = Annotated[Annotated[float, Field(gt=0)] | None, BeforeValidator(_blank_is_none)]
#: integer columns are int4: a larger number is an input error, not a database error.
INT4_MAX: Final = 2**31 - 1
OptCount = Annotated[
    Annotated[int, Field(ge=0, le=INT4_MAX)] | None, BeforeValidator(_blank_is_none)
]
OptId = Annotated[Annotated[int, Field(ge=1, le=INT4_MAX)] | None, BeforeValidator(_blank_is_none)]
OptDistrict = Annotated[str | None, BeforeValidator(_blank_is_none)]


def _no_nul(value: Any) -> Any:
    """PostgreSQL text holds neither NUL nor a lone surrogate (``"\\ud800"`` is valid JSON
    but has no UTF-8 form): both are input errors, not 500s."""
    if isinstance(value, str):
        if "\x00" in value:
            raise ValueError("contains a NUL character")
        try:
            value.encode("utf-8")
        except UnicodeEncodeError:
            raise ValueError("is not valid Unicode (a lone surrogate)") from None
    return value


class LayerProps(BaseModel):
    """Common configuration: unknown properties are errors, never silently dropped."""

    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True, allow_inf_nan=False)
    geometry: ClassVar[GeometryRule | None] = POINT

    # PostgreSQL text cannot hold NUL; say which field instead of failing in COPY.
    _text_without_nul = field_validator("*", mode="before")(_no_nul)

    def cross_problems(self) -> list[tuple[str, str]]:
        """Rules spanning several fields (CHECKs like ``level1 <= level2``)."""
        return []

    def columns(self) -> dict[str, Any]:
        """The values as stored columns (derived columns filled in)."""
        return self.model_dump()


def _order(problems: list[tuple[str, str]], low: str, lo: Any, high: str, hi: Any) -> None:
    if lo is not None and hi is not None and lo > hi:
        problems.append((low, f"{low} {lo:g} must not exceed {high} {hi:g}"))


class EnterpriseProps(LayerProps):
    credit_code: Annotated[
        str,
        AfterValidator(
            _matching(vocab.CREDIT_CODE_PATTERN, "a unified social credit code (GB 32100-2015)")
        ),
    ]
    name: Text
    category: Annotated[str, AfterValidator(_one_of(vocab.ENTERPRISE_CATEGORIES))]
    is_hazmat: bool | None = None
    district: OptDistrict = None
    park: OptText = None
    address: OptText = None
    licence_expiry: Annotated[date | None, BeforeValidator(_blank_is_none)] = None
    diagnosis_score: Annotated[
        Annotated[float, Field(ge=0, le=100)] | None, BeforeValidator(_blank_is_none)
    ] = None
    site: Annotated[Any, BeforeValidator(_site_value)] = None  # checked as a geometry

    def cross_problems(self) -> list[tuple[str, str]]:
        derived = self.category in vocab.HAZMAT_CATEGORIES
        if self.is_hazmat is not None and self.is_hazmat != derived:
            return [
                ("is_hazmat", f"follows from category {self.category!r}, which means {derived}")
            ]
        return []

    def columns(self) -> dict[str, Any]:
        out = self.model_dump(exclude={"site"})
        out["is_hazmat"] = self.category in vocab.HAZMAT_CATEGORIES
        return out


class SubstanceProps(BaseModel):
    """A GB 18218 substance line; Q/β/class may be left for the standard's tables to fill."""

    model_config = ConfigDict(
        extra="forbid", str_strip_whitespace=True, allow_inf_nan=False, populate_by_name=True
    )
    _text_without_nul = field_validator("*", mode="before")(_no_nul)
    name: Text
    cas: Cas = None
    q: float = Field(gt=0, description="design maximum quantity, t")
    critical_q: OptPositive = Field(None, validation_alias=AliasChoices("Q", "critical_q"))
    beta: OptPositive = None
    hazard_class: Annotated[
        str | None,
        BeforeValidator(_blank_is_none),
        AfterValidator(
            lambda v: (
                v
                if v is None
                else _matching(vocab.HAZARD_CLASS_PATTERN, "a GB 18218 class (J1…J5, W1.1…W11)")(v)
            )
        ),
    ] = Field(None, validation_alias=AliasChoices("class", "hazard_class"))


def _json_text(value: Any) -> Any:
    """A CSV/GeoPackage column can only hold the substances list as JSON text."""
    value = _blank_is_none(value)
    if value is None:
        return []
    if isinstance(value, str):
        try:
            return json.loads(value)
        except json.JSONDecodeError:
            raise ValueError("must be a JSON array of substances") from None
    return value


class HazardSourceProps(LayerProps):
    geometry: ClassVar[GeometryRule | None] = AREA
    enterprise_id: OptId = None
    enterprise_credit_code: Annotated[
        str | None,
        BeforeValidator(_blank_is_none),
        AfterValidator(
            lambda v: (
                v
                if v is None
                else _matching(vocab.CREDIT_CODE_PATTERN, "a unified social credit code")(v)
            )
        ),
    ] = None
    code: Text
    unit_name: Text
    unit_kind: Annotated[str, AfterValidator(_one_of(vocab.HAZARD_UNIT_KINDS))]
    population_500m: OptCount = None
    substances: Annotated[list[SubstanceProps], BeforeValidator(_json_text)] = Field(
        default_factory=list
    )

    def cross_problems(self) -> list[tuple[str, str]]:
        if self.enterprise_id is None and self.enterprise_credit_code is None:
            return [("enterprise_id", "required (or enterprise_credit_code)")]
        return []


class MonitoringPointProps(LayerProps):
    code: Text
    hazard_source_id: OptId = None
    pipeline_id: OptId = None
    kind: Annotated[str, AfterValidator(_one_of(vocab.MONITORING_KINDS))]
    substance: OptText = None
    unit: Text
    level1: OptFloat = None
    level2: OptFloat = None
    limit_h: OptFloat = None
    limit_hh: OptFloat = None
    limit_l: OptFloat = None
    limit_ll: OptFloat = None
    sampling_interval_s: Annotated[
        int, BeforeValidator(lambda v: 10 if _blank_is_none(v) is None else v)
    ] = Field(10, gt=0, le=INT4_MAX)

    def cross_problems(self) -> list[tuple[str, str]]:
        out: list[tuple[str, str]] = []
        if self.hazard_source_id is None and self.pipeline_id is None:
            out.append(("hazard_source_id", "required (or pipeline_id)"))
        _order(out, "level1", self.level1, "level2", self.level2)
        _order(out, "limit_h", self.limit_h, "limit_hh", self.limit_hh)
        _order(out, "limit_ll", self.limit_ll, "limit_l", self.limit_l)
        lo, hi = self.limit_l, self.limit_h
        if lo is not None and hi is not None and lo >= hi:
            out.append(("limit_l", f"limit_l {lo:g} must be below limit_h {hi:g}"))
        return out


class PipelineProps(LayerProps):
    geometry: ClassVar[GeometryRule | None] = LINE
    code: Text
    name: OptText = None
    substance: Text
    cas: Cas = None
    diameter_mm: float = Field(gt=0, le=5000)
    pressure_mpa: float = Field(ge=0, le=100)
    operator: OptText = None
    district: OptDistrict = None


class ZoneProps(LayerProps):
    geometry: ClassVar[GeometryRule | None] = AREA
    code: OptText = None
    name: Text
    kind: Annotated[str, AfterValidator(_one_of(vocab.ZONE_KINDS))]
    district: OptDistrict = None
    max_dwell_s: OptCount = None
    active_hours: Annotated[
        str | None,
        BeforeValidator(_blank_is_none),
        AfterValidator(
            lambda v: (
                v
                if v is None
                else _matching(vocab.ACTIVE_HOURS_PATTERN, "HH:MM-HH:MM windows, comma-separated")(
                    v
                )
            )
        ),
    ] = None
    speed_limit_kmh: Annotated[
        Annotated[float, Field(gt=0, le=200)] | None, BeforeValidator(_blank_is_none)
    ] = None
    population: OptCount = None


class DistrictProps(LayerProps):
    geometry: ClassVar[GeometryRule | None] = AREA
    code: Text
    name: Text
    name_en: OptText = None


class VehicleProps(LayerProps):
    geometry: ClassVar[GeometryRule | None] = None
    plate: Text
    carrier: Text
    hazmat_class: Annotated[
        str | None,
        BeforeValidator(_blank_is_none),
        AfterValidator(
            lambda v: (
                v
                if v is None
                else _matching(vocab.HAZMAT_CLASS_PATTERN, "a UN class (e.g. 3, 2.1)")(v)
            )
        ),
    ] = None
    un_number: Annotated[
        str | None,
        BeforeValidator(lambda v: f"{v:04d}" if isinstance(v, int) else _blank_is_none(v)),
        AfterValidator(
            lambda v: (
                v if v is None else _matching(vocab.UN_NUMBER_PATTERN, "a four-digit UN number")(v)
            )
        ),
    ] = None
    capacity_t: Annotated[
        Annotated[float, Field(gt=0, le=100)] | None, BeforeValidator(_blank_is_none)
    ] = None
    district: OptDistrict = None


#: Layer name (as in URLs and the CLI) → its property model.
MODELS: Final[dict[str, type[LayerProps]]] = {
    "enterprises": EnterpriseProps,
    "hazard-sources": HazardSourceProps,
    "monitoring-points": MonitoringPointProps,
    "pipelines": PipelineProps,
    "zones": ZoneProps,
    "districts": DistrictProps,
    "vehicles": VehicleProps,
}


def property_names(layer: str) -> frozenset[str]:
    """Every key a layer accepts (aliases included), so imports can set other columns aside."""
    return frozenset(MODELS[layer].model_fields)


# -- one item -----------------------------------------------------------------------------


@dataclass
class Record:
    """A validated feature: stored column values, geometries as WGS 84 shapely objects."""

    index: int
    values: dict[str, Any] = field(default_factory=dict)


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
    layer: str,
    properties: Mapping[str, Any],
    geometry: Any,
    index: int,
    transformer: Transformer | None = None,
) -> tuple[Record | None, list[Problem]]:
    """Check one feature's properties and geometry; collect every problem, not just the first."""
    model = MODELS[layer]
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
    layer: str, payload: Any, crs: str | None = None
) -> tuple[list[Record], list[Problem], bool]:
    """Validate a POST body: GeoJSON for mapped layers, plain objects for vehicles.

    Returns the good records, the problems, and whether the body was a single item (the
    response then also carries ``id``).
    """
    if MODELS[layer].geometry is None:
        if crs is not None:
            raise MalformedPayload("crs", f"{layer} have no geometry to transform")
        single = isinstance(payload, Mapping)
        items = [payload] if single else payload
        if not isinstance(items, list):
            raise MalformedPayload("body", "expected a JSON object or an array of objects")
        return (*_validate_objects(layer, items), single)
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
        record, bad = validate_item(layer, props, feature.get("geometry"), index, transformer)
        problems.extend(bad)
        if record is not None and not bad:
            records.append(record)
    if not features:
        problems.append(Problem(None, "features", "no features to create"))
    return records, problems, single


def _validate_objects(layer: str, items: Iterable[Any]) -> tuple[list[Record], list[Problem]]:
    records, problems = [], []
    count = 0
    for index, item in enumerate(items):
        count += 1
        if not isinstance(item, Mapping):
            problems.append(Problem(index, "body", "expected a JSON object"))
            continue
        record, bad = validate_item(layer, item, None, index)
        problems.extend(bad)
        if record is not None:
            records.append(record)
    if count == 0:
        problems.append(Problem(None, "body", "no items to create"))
    return records, problems
