"""What a catalogue entry says about a layer — the vocabulary of ``declarations.py``.

A :class:`Layer` is declared once: where its rows come from (SQL aliased ``t``), its geometry,
the district and enterprise a row belongs to, its colour, its typed properties (each one for
tiles, for REST or both, sensitive or not), who reads it, what it offers (a REST collection
with its write rules and validation model, vector tiles, a hexagon rollup) and which change
notices invalidate it. Everything else — REST routes, tile SQL, TileJSON, the MapLibre style,
the legend, hexagon rollups and refreshes, access sets — is derived from it
(``layers/catalog/__init__.py``).

Names: one spelling per layer, snake_case (``hazard_sources``); the URL segment of its REST
collection replaces ``_`` with ``-`` (``/api/hazard-sources``). :func:`check_name` is the rule.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Final, Literal

if TYPE_CHECKING:
    from layers.catalog.props import LayerProps

GeometryType = Literal["point", "line", "polygon"]
#: TileJSON field types; ``Object`` and ``Date`` appear in REST bodies only.
FieldType = Literal["String", "Number", "Boolean", "Object", "Date"]
CacheClass = Literal["static", "live"]
#: ``none``: no query parameters; ``window``: ``?from=&to=`` (tracks); ``at``: ``?at=`` (latest).
TimeWindow = Literal["none", "window", "at"]
#: Who a layer is for (``layers/access/roles.py`` turns this into roles):
#: ``reference`` outlines and protected targets anybody with a map needs; ``site`` enterprises'
#: own data (an enterprise sees its own); ``city`` the regulators' city-wide picture;
#: ``transport`` tankers and their alerts (officers); ``carriage`` the transport chain's
#: registers — carriers, vehicles, drivers and escorts, waybills (issue 14): a carrier reads
#: its own, officers and regulators those of their districts.
Audience = Literal["reference", "site", "city", "transport", "carriage"]
HexKind = Literal["points", "polygons", "fixes"]

NAME_PATTERN: Final = re.compile(r"^[a-z][a-z0-9]*(_[a-z0-9]+)*$")


class BadLayerName(ValueError):
    pass


def check_name(name: str) -> str:
    """A layer name is snake_case ASCII: it is a tile layer id, an SQL-free key and, with
    ``-`` for ``_``, a URL segment."""
    if not NAME_PATTERN.match(name):
        raise BadLayerName(f"layer name {name!r} must be snake_case (a-z, 0-9, _)")
    return name


def url_segment(name: str) -> str:
    """The REST collection path of a layer: ``hazard_sources`` → ``hazard-sources``."""
    return name.replace("_", "-")


def layer_name(text: str) -> str:
    """A layer name from either spelling a user may type (``hazard-sources`` or
    ``hazard_sources``)."""
    return text.strip().replace("-", "_")


@dataclass(frozen=True)
class Prop:
    """One property: its name, the SQL expression over ``t`` and its type. ``tiles`` / ``rest``
    say where it appears; a ``sensitive`` one is left out of redacted (public) views."""

    name: str
    sql: str
    type: FieldType
    description: str = ""
    tiles: bool = True
    rest: bool = True
    sensitive: bool = False
    # Personal data (an id-card number): what REST readers who may not read it whole get
    # instead, an SQL expression over ``t`` (``layers/access/roles.py`` says who reads it).
    masked_sql: str | None = None


def tile_prop(
    name: str, sql: str, type: FieldType, description: str = "", sensitive: bool = False
) -> Prop:
    """A property carried by tiles only (a rounded or text form of a REST value)."""
    return Prop(name, sql, type, description, tiles=True, rest=False, sensitive=sensitive)


def rest_prop(name: str, sql: str, type: FieldType = "String", description: str = "") -> Prop:
    """A property of REST bodies only (long text, JSON, dates)."""
    return Prop(name, sql, type, description, tiles=False, rest=True)


@dataclass(frozen=True)
class Filter:
    """An extra REST query filter: ``?name=value`` → ``sql <op> %(name)s``."""

    name: str
    sql: str
    kind: type = str  # str, int or datetime (ISO 8601 with a time zone, or a date: 00:00 UTC)
    choices: tuple[str, ...] | None = None  # vocabulary; an unknown value is a 400
    op: Literal["=", ">=", "<"] = "="  # ranges: a pair of filters on one column
    # What the OpenAPI document says of it; by default derived from ``sql`` and ``op``.
    description: str | None = None


@dataclass(frozen=True)
class Column:
    """A column written by POST/import. ``staging_only`` columns help resolve, not store."""

    name: str
    pgtype: str
    geometry: bool = False
    staging_only: bool = False


@dataclass(frozen=True)
class UniqueKey:
    """A unique key checked within a batch and against the table before inserting."""

    columns: tuple[str, ...]
    field: str  # what the client is told
    constraint: str  # the database constraint, to translate a concurrent insert's violation
    # What a reason says instead of the value, when the value is personal data (an id-card
    # number must not come back in an error body or a log line).
    shown: str | None = None


@dataclass(frozen=True)
class StagedCheck:
    """A set-based check over the staging table: yields ``ord`` and ``value`` of bad rows."""

    field: str
    sql: str  # SELECT s.ord, <value> AS value FROM georisk_staging s WHERE …
    reason: str  # formatted with {value}


@dataclass(frozen=True)
class Reference:
    """Rows of another table that name a row of this one (``%(id)s``): ``sql`` selects their
    ``id`` (``SELECT x.id FROM … WHERE x.parent_id = %(id)s``). As a *dependent* (a live
    object that needs the row) it makes a DELETE a 409 naming them; as *history* (an alert, a
    reading, a deduction that remembers it) it makes a DELETE a retirement."""

    kind: str  # what the client is told, singular ("hazard source")
    sql: str


@dataclass(frozen=True)
class Writes:
    """How a layer accepts new rows (POST and ``georisk import``) and edits them (PATCH and
    DELETE, ``layers/collections/edit.py``). The table has an integer ``version`` column
    (the ETag) and, when ``retires``, a ``retired_at`` column."""

    table: str
    model: type[LayerProps]  # the property model that validates each feature or row
    columns: tuple[Column, ...]
    unique_keys: tuple[UniqueKey, ...] = ()
    resolve_sql: tuple[str, ...] = ()  # UPDATEs run on the staging table before the checks
    checks: tuple[StagedCheck, ...] = ()
    after_insert_sql: tuple[str, ...] = ()
    fills_district: bool = False  # fill a missing district from the polygon holding the geometry
    field_for_constraint: dict[str, str] = field(default_factory=dict)
    writers: tuple[str, ...] | None = None  # roles; None: the audience's default
    # -- editing: PATCH (an RFC 7396 merge, validated by ``model`` like a POST) and DELETE --
    immutable: tuple[str, ...] = ()  # model fields a PATCH may not change (422 naming them)
    # Model fields that are not a stored column of the same name, as SQL over ``t``, for the
    # document a PATCH is merged into (a hazard source's substances, an enterprise's site).
    current_sql: tuple[tuple[str, str], ...] = ()
    # Run after a PATCH stored the row, over the staging table (``s.id`` is the row's id):
    # replace what ``after_insert_sql`` added (a hazard source's substance lines).
    after_update_sql: tuple[str, ...] = ()
    dependents: tuple[Reference, ...] = ()  # live rows needing this one: DELETE is a 409
    history: tuple[Reference, ...] = ()  # rows remembering this one: DELETE retires it
    retires: bool = False  # the table has ``retired_at``; retired rows leave lists and maps

    @property
    def stored_columns(self) -> tuple[Column, ...]:
        return tuple(c for c in self.columns if not c.staging_only)


@dataclass(frozen=True)
class Rest:
    """The layer is a REST collection: list, item, and (with ``writes``) create."""

    noun: str  # singular, for messages
    filters: tuple[Filter, ...] = ()
    lateral_sql: str = ""  # joined only when the geometry is needed (vehicles' latest fix)
    writes: Writes | None = None
    # False: ``GET /api/<path>/{id}`` is a route of its own with a richer model (risk units:
    # geo_api/routes/risk_units.py, next to their PUT and DELETE); the list stays here.
    item_route: bool = True
    # The instant a row stands for (an SQL date or timestamptz over ``t``, or the lateral
    # join): OGC API – Features' ``datetime`` filters on it and the temporal extent spans it.
    # None: the collection has no time.
    datetime_sql: str | None = None


@dataclass(frozen=True)
class Tiles:
    """The layer is served as vector tiles; how it is drawn and generalised."""

    minzoom: int = 0
    maxzoom: int = 22
    cache_class: CacheClass = "static"
    feature_cap: int | None = None  # max features per tile (risk order, red first)
    cluster_below: int | None = None  # points: grid clusters at zooms below this
    simplify_below: int | None = None  # lines/polygons: simplified at zooms below this
    time_window: TimeWindow = "none"
    public: bool = False  # on the published (tile reader) map, sensitive properties removed
    # Layers without a colour: an SQL rank over ``t`` (1 first) that a feature cap keeps first
    # and that is drawn last, e.g. expressways before local roads.
    order_sql: str | None = None
    # Whether the live map's change feed tells open maps of changes to these tiles (off for
    # the base map, which a map does not refetch on a change; its cache is purged all the same).
    announce: bool = True


@dataclass(frozen=True)
class Hexagons:
    """The layer is rolled up into H3 cells (``layers/risk/hexagons.py``): ``sql`` yields
    (lon, lat, color, n) for points — ``n`` is what a row adds to the count — or (wkb, color)
    for polygons; ``exists_sql`` tells whether there is anything to roll up."""

    kind: HexKind
    sql: str
    exists_sql: str
    scored_by_count: bool = False
    fixed_res: int | None = None  # rolled up at one resolution only
    minzoom: int = 5
    public: bool = False


@dataclass(frozen=True)
class Layer:
    name: str
    title: str
    description: str
    audience: Audience
    from_sql: str = ""  # table or "(sub-query) t", aliased t
    geom_sql: str | None = None  # geometry expression in ``srid``; None: no geometry
    geometry_type: GeometryType | None = None
    properties: tuple[Prop, ...] = ()
    id_sql: str = "t.id"  # stable integer feature id
    srid: int = 4326
    where_sql: str = ""  # constant predicate ANDed to the spatial filter (tiles)
    district_sql: str | None = None  # the district a row belongs to (access scoping)
    enterprise_sql: str | None = None  # the enterprise a row belongs to (access scoping)
    color_sql: str | None = None  # expression giving a LIVE_COLORS name
    legend: str = ""  # what the colour means
    depends_on: tuple[str, ...] = ()  # change notices (layer names) that invalidate it
    rest: Rest | None = None
    tiles: Tiles | None = None
    hexagons: Hexagons | None = None

    def __post_init__(self) -> None:
        check_name(self.name)

    @property
    def path(self) -> str:
        return url_segment(self.name)
