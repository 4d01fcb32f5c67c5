"""Property models of the layers that accept writes (``POST`` and imports): the validation half
of the catalogue. Each layer's declaration (``layers/catalog/declarations.py``) names its model.

The rules mirror the schema's CHECK constraints (same vocabularies and patterns from
``layers.core.vocab``) so that a bad value is refused here with the field and the reason, instead
of reaching the database and coming back as constraint text.
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Callable
from datetime import date, datetime
from typing import Annotated, Any, ClassVar, Final

import shapely
from pydantic import (
    AfterValidator,
    AliasChoices,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    field_validator,
)

from layers.core import vocab
from layers.core.geometry import AREA, LINE, POINT, ROUTE, GeometryRule


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


def _optional(check: Callable[[str], str]) -> Callable[[str | None], str | None]:
    return lambda v: v if v is None else check(v)


HazmatClass = Annotated[
    str | None,
    BeforeValidator(_blank_is_none),
    AfterValidator(_optional(_matching(vocab.HAZMAT_CLASS_PATTERN, "a UN class (e.g. 3, 2.1)"))),
]
#: A waybill's goods: exactly one GB 6944 class or division (layers/core/vocab.py).
Gb6944Class = Annotated[
    str,
    BeforeValidator(lambda v: str(v) if isinstance(v, int | float) else v),
    AfterValidator(_one_of(vocab.HAZMAT_CLASSES)),
]
UnNumber = Annotated[
    str,
    BeforeValidator(lambda v: f"{v:04d}" if isinstance(v, int) else v),
    AfterValidator(_matching(vocab.UN_NUMBER_PATTERN, "a four-digit UN number")),
]
OptUnNumber = Annotated[
    str | None,
    BeforeValidator(lambda v: f"{v:04d}" if isinstance(v, int) else _blank_is_none(v)),
    AfterValidator(_optional(_matching(vocab.UN_NUMBER_PATTERN, "a four-digit UN number"))),
]
Id = Annotated[int, Field(ge=1, le=INT4_MAX)]
OptDate = Annotated[date | None, BeforeValidator(_blank_is_none)]
PermitNo = Annotated[str, AfterValidator(_not_blank), Field(max_length=vocab.PERMIT_NUMBER_MAX)]
# Bounds inside the Optional: an explicit null (or a blank CSV cell) is "not given".
OptPermitNo = Annotated[
    Annotated[str, Field(max_length=vocab.PERMIT_NUMBER_MAX)] | None,
    BeforeValidator(_blank_is_none),
]
Tonnes = Annotated[float, Field(gt=0, le=100)]


class VehicleProps(LayerProps):
    """A registered hazmat vehicle. The carrier is named by ``carrier_id`` (the carrier's
    enterprise id; its name fills ``carrier``) or, as before issue 14, by ``carrier`` text
    alone (then the vehicle is not linked to a supervised carrier)."""

    geometry: ClassVar[GeometryRule | None] = None
    plate: Text
    carrier: OptText = None
    carrier_id: OptId = None
    hazmat_class: HazmatClass = None
    un_number: OptUnNumber = None
    capacity_t: Annotated[Tonnes | None, BeforeValidator(_blank_is_none)] = None
    district: OptDistrict = None
    tank_type: Annotated[
        str | None,
        BeforeValidator(_blank_is_none),
        AfterValidator(_optional(_one_of(vocab.TANK_TYPES))),
    ] = None
    tank_volume_m3: Annotated[
        Annotated[float, Field(gt=0, le=200)] | None, BeforeValidator(_blank_is_none)
    ] = None
    road_permit_no: OptPermitNo = None
    road_permit_expiry: OptDate = None
    tank_inspection_expiry: OptDate = None

    def cross_problems(self) -> list[tuple[str, str]]:
        if self.carrier is None and self.carrier_id is None:
            return [("carrier", "required (or carrier_id, the carrier's enterprise id)")]
        return []

    def columns(self) -> dict[str, Any]:
        out = self.model_dump(exclude={"carrier_id"})
        out["enterprise_id"] = self.carrier_id
        return out


class CarrierProps(LayerProps):
    """A supervised enterprise licensed to carry dangerous goods by road: named by
    ``enterprise_id`` or ``enterprise_credit_code``."""

    geometry: ClassVar[GeometryRule | None] = None
    enterprise_id: OptId = None
    enterprise_credit_code: Annotated[
        str | None,
        BeforeValidator(_blank_is_none),
        AfterValidator(_optional(_matching(vocab.CREDIT_CODE_PATTERN, "a credit code"))),
    ] = None
    licence_no: PermitNo
    licence_expiry: date

    def cross_problems(self) -> list[tuple[str, str]]:
        if self.enterprise_id is None and self.enterprise_credit_code is None:
            return [("enterprise_id", "required (or enterprise_credit_code)")]
        return []


#: GB 11643-1999: weights of the first 17 digits and the check character for sum mod 11.
_ID_CARD_WEIGHTS: Final = (7, 9, 10, 5, 8, 4, 2, 1, 6, 3, 7, 9, 10, 5, 8, 4, 2)
_ID_CARD_CHECK: Final = "10X98765432"


def id_card_check_char(first17: str) -> str:
    """The check character of a resident identity card number (ISO 7064 MOD 11-2)."""
    return _ID_CARD_CHECK[
        sum(int(d) * w for d, w in zip(first17[:17], _ID_CARD_WEIGHTS, strict=True)) % 11
    ]


def _id_card(value: str) -> str:
    # The reason never repeats the number: it is personal data, and reasons reach logs.
    value = value.upper()
    if not re.fullmatch(vocab.ID_CARD_PATTERN, value):
        raise ValueError("is not an 18-character resident identity card number")
    if id_card_check_char(value[:17]) != value[17]:
        raise ValueError("has a wrong check character (GB 11643)")
    return value


class CrewMemberProps(LayerProps):
    """A carrier's driver or escort with the qualification certificate the role needs."""

    geometry: ClassVar[GeometryRule | None] = None
    carrier_id: Id
    name: Text
    id_card_no: Annotated[str, AfterValidator(_id_card)]
    role: Annotated[str, AfterValidator(_one_of(vocab.CREW_ROLES))]
    certificate_no: PermitNo
    certificate_expiry: date
    phone: Annotated[
        Annotated[str, Field(max_length=32)] | None, BeforeValidator(_blank_is_none)
    ] = None


def _aware(value: datetime) -> datetime:
    if value.tzinfo is None:
        raise ValueError("needs a time zone (e.g. 2026-12-05T08:00:00+08:00)")
    return value


Instant = Annotated[datetime, AfterValidator(_aware)]
OptLon = Annotated[Annotated[float, Field(ge=-180, le=180)] | None, BeforeValidator(_blank_is_none)]
OptLat = Annotated[Annotated[float, Field(ge=-90, le=90)] | None, BeforeValidator(_blank_is_none)]


class WaybillProps(LayerProps):
    """An electronic waybill; the feature's geometry is the planned route (a LineString with
    ``corridor_m``, or the corridor polygon). Origin and destination are enterprises
    (``origin_id``) or points (``origin_lon``/``origin_lat``); an enterprise without a point
    given lends its own location."""

    geometry: ClassVar[GeometryRule | None] = ROUTE
    code: Annotated[str, AfterValidator(_not_blank), Field(max_length=64)]
    shipper_id: Id
    carrier_id: Id
    consignee_id: Id
    loading_party_id: Id
    substance_name: Text
    un_number: UnNumber
    hazmat_class: Gb6944Class
    quantity_t: Tonnes
    vehicle_id: Id
    driver_id: Id
    escort_id: OptId = None
    origin_id: OptId = None
    origin_lon: OptLon = None
    origin_lat: OptLat = None
    destination_id: OptId = None
    destination_lon: OptLon = None
    destination_lat: OptLat = None
    corridor_m: Annotated[
        Annotated[float, Field(gt=0, le=10000)] | None, BeforeValidator(_blank_is_none)
    ] = None
    planned_departure: Instant
    planned_arrival: Instant

    def cross_problems(self) -> list[tuple[str, str]]:
        out: list[tuple[str, str]] = []
        if self.planned_arrival <= self.planned_departure:
            out.append(("planned_arrival", "must be after planned_departure"))
        if self.escort_id is not None and self.escort_id == self.driver_id:
            out.append(("escort_id", "the escort cannot be the driver"))
        for end in ("origin", "destination"):
            lon, lat = getattr(self, f"{end}_lon"), getattr(self, f"{end}_lat")
            if (lon is None) != (lat is None):
                out.append((f"{end}_lon" if lon is None else f"{end}_lat", "give both or neither"))
            elif lon is None and getattr(self, f"{end}_id") is None:
                out.append((f"{end}_id", f"required (or {end}_lon and {end}_lat)"))
        return out
