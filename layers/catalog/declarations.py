"""Every layer of GeoRisk, declared once (the vocabulary is ``layers/catalog/model.py``).

The order is the drawing order of the tile layers (first at the bottom) and the order of the
catalogue, the style and the REST tags. Adding a layer is adding one :class:`Layer` here (or
passing a catalogue with it to ``create_app``): its collection, tiles, TileJSON, style entry,
legend, hexagon rollup and access follow.
"""

from __future__ import annotations

import datetime as dt
from typing import Any, Final

from layers.catalog import props
from layers.catalog.model import (
    Column,
    Filter,
    Hexagons,
    Layer,
    Prop,
    Reference,
    Rest,
    StagedCheck,
    Tiles,
    UniqueKey,
    Writes,
    rest_prop,
    tile_prop,
)
from layers.core import vocab
from layers.core.review import review_overdue_sql


def _color(
    sql: str = "t.color", what: str = "risk colour", name: str = "color", grey: str = "offline"
) -> Prop:
    return Prop(name, sql, "String", f"{what}: red, orange, yellow, blue (grey: {grey})")


def _exists(field_name: str, table: str, key: str, noun: str) -> StagedCheck:
    """A staged row's reference must exist (a clear 422 instead of a foreign-key error)."""
    return StagedCheck(
        field=field_name,
        sql=(
            f"SELECT s.ord, s.{field_name}::text AS value FROM georisk_staging s"
            f" WHERE s.{field_name} IS NOT NULL"
            f" AND NOT EXISTS (SELECT 1 FROM {table} p WHERE p.{key} = s.{field_name})"
        ),
        reason=f"no {noun} with {key} {{value}}",
    )


_DISTRICT = Column("district", "text")

#: Rows still served: a retired row (migration 0012) is kept for history, off maps and lists.
_LIVE = "t.retired_at IS NULL"


def _refs(kind: str, table: str, column: str, where: str = "") -> Reference:
    """Rows of ``table`` whose ``column`` names the row (``where``: an extra predicate on
    ``x``); tables without an ``id`` (fixes, readings) answer with the key column."""
    ident = "x.id" if table not in ("positions", "readings") else f"x.{column}"
    cond = f" AND {where}" if where else ""
    return Reference(kind, f"SELECT {ident} AS id FROM {table} x WHERE x.{column} = %(id)s{cond}")


def _in_district(kind: str, table: str) -> Reference:
    """Rows of ``table`` in the district (by code: districts are referred to by their code)."""
    return Reference(
        kind,
        f"SELECT x.id FROM {table} x JOIN districts d ON d.code = x.district WHERE d.id = %(id)s",
    )


_LIVE_X = "x.retired_at IS NULL"
_RETIRED_X = "x.retired_at IS NOT NULL"

# ---- base map (issue 19 §4) -----------------------------------------------------------------
# A map that reads like a map without anything from outside: roads by class, water-source,
# chemical-park and residential areas, district boundaries and place labels, all public
# reference data drawn under the risk layers (web/basemap.js). Zoom rules live here only.

#: The zoom from which each road class is in the tiles: a city view shows the expressways and
#: arterials, the street grid appears once it is more than a grey blur.
ROAD_CLASS_MINZOOM: Final = {"expressway": 8, "arterial": 10, "local": 12}
#: Zone kinds drawn as base areas (the protected targets' own layer stays ``zones``).
BASE_AREA_KINDS: Final = ("water_source", "chemical_park", "residential")
#: Zone kinds whose names are place labels, and from which zoom.
LABELLED_AREA_KINDS: Final = ("water_source", "chemical_park")
AREA_LABEL_MINZOOM: Final = 12
#: Enterprise names only where they fit: from this zoom, at most this many per tile (worst
#: colour first, so a red site's name is never the one left out).
ENTERPRISE_LABEL_MINZOOM: Final = 15
ENTERPRISE_LABEL_CAP: Final = 150


def _road_classes_at_zoom() -> str:
    """``road_class`` is one the tile's zoom shows (``%(z)s`` is bound by the tile engine)."""
    return (
        "("
        + " OR ".join(
            f"(t.road_class = '{cls}' AND %(z)s >= {z})" for cls, z in ROAD_CLASS_MINZOOM.items()
        )
        + ")"
    )


def _rank(column: str, values: tuple[str, ...]) -> str:
    """1 for the first value, 2 for the next …: drawn last and kept first by a cap."""
    whens = " ".join(f"WHEN '{v}' THEN {i}" for i, v in enumerate(values, start=1))
    return f"CASE {column} {whens} ELSE {len(values) + 1} END"


def _base_tiles(**kw: Any) -> Tiles:
    """Base tiles are on the published map, and not announced on the live map's change feed:
    a map does not refetch its base on a change (the tile cache is purged all the same), and an
    enterprise's every re-rating would otherwise be told twice."""
    return Tiles(public=True, announce=False, **kw)


def _lon_lat(geom: str) -> tuple[Prop, Prop]:
    # Leaflet.VectorGrid hands a style callback the properties only; a label needs its place.
    return (
        tile_prop("lon", f"round(ST_X({geom})::numeric, 6)::float8", "Number", "label longitude"),
        tile_prop("lat", f"round(ST_Y({geom})::numeric, 6)::float8", "Number", "label latitude"),
    )


BASE_ROADS = Layer(
    name="base_roads",
    title="Base map: roads",
    description="Roads by class (expressway, arterial, local); local roads from zoom "
    f"{ROAD_CLASS_MINZOOM['local']}, arterials from {ROAD_CLASS_MINZOOM['arterial']}",
    audience="reference",
    from_sql="roads t",
    geom_sql="t.geom",
    geometry_type="line",
    where_sql=_road_classes_at_zoom(),
    properties=(
        tile_prop("id", "t.id", "Number", "road id"),
        tile_prop("road_class", "t.road_class", "String", "expressway, arterial or local"),
        tile_prop("name", "t.name", "String", "road name"),
    ),
    depends_on=("roads",),
    tiles=_base_tiles(
        minzoom=ROAD_CLASS_MINZOOM["expressway"],
        simplify_below=14,
        feature_cap=6000,
        order_sql=_rank("t.road_class", vocab.ROAD_CLASSES),
    ),
)

BASE_AREAS = Layer(
    name="base_areas",
    title="Base map: areas",
    description="Water-source protection zones, chemical parks and residential areas",
    audience="reference",
    from_sql="zones t",
    geom_sql="t.geom",
    geometry_type="polygon",
    where_sql=f"t.kind IN {vocab.sql_in(BASE_AREA_KINDS)} AND {_LIVE}",
    properties=(
        tile_prop("id", "t.id", "Number", "zone id"),
        tile_prop("kind", "t.kind", "String", ", ".join(BASE_AREA_KINDS)),
        tile_prop("name", "t.name", "String", "area name"),
    ),
    district_sql="t.district",
    depends_on=("zones",),
    tiles=_base_tiles(minzoom=8, simplify_below=15, order_sql=_rank("t.kind", BASE_AREA_KINDS)),
)

BASE_BOUNDARIES = Layer(
    name="base_boundaries",
    title="Base map: district boundaries",
    description="District boundaries as lines",
    audience="reference",
    # Lines, not polygons: a boundary is drawn once per side and never along a tile's clip edge.
    from_sql="(SELECT d.id, d.code, d.name, ST_Boundary(d.geom) AS geom"
    " FROM districts d, b WHERE d.geom && b.qenv) t",
    geom_sql="t.geom",
    geometry_type="line",
    properties=(
        tile_prop("id", "t.id", "Number", "district id"),
        tile_prop("code", "t.code", "String", "district code"),
        tile_prop("name", "t.name", "String", "district name"),
    ),
    district_sql="t.code",
    depends_on=("districts",),
    tiles=_base_tiles(minzoom=5, simplify_below=16),
)

BASE_LABELS = Layer(
    name="base_labels",
    title="Base map: place labels",
    description="District names at a point inside each district; water-source and chemical-park "
    f"names from zoom {AREA_LABEL_MINZOOM}",
    audience="reference",
    # Ids: districts 4n, areas 4n + 1 — stable and never equal.
    from_sql=(
        "(SELECT d.id * 4 AS id, 'district' AS kind, d.code, d.name, d.name_en,"
        " ST_PointOnSurface(d.geom) AS geom FROM districts d, b WHERE d.geom && b.qenv"
        " UNION ALL SELECT z.id * 4 + 1, z.kind, NULL, z.name, NULL, ST_PointOnSurface(z.geom)"
        f" FROM zones z, b WHERE %(z)s >= {AREA_LABEL_MINZOOM}"
        f" AND z.kind IN {vocab.sql_in(LABELLED_AREA_KINDS)} AND z.geom && b.qenv"
        " AND z.retired_at IS NULL) t"
    ),
    geom_sql="t.geom",
    geometry_type="point",
    properties=(
        tile_prop("id", "t.id", "Number", "label id"),
        tile_prop("kind", "t.kind", "String", "district, " + ", ".join(LABELLED_AREA_KINDS)),
        tile_prop("code", "t.code", "String", "district code"),
        tile_prop("name", "t.name", "String", "label text"),
        tile_prop("name_en", "t.name_en", "String", "English name"),
        *_lon_lat("t.geom"),
    ),
    depends_on=("districts", "zones"),
    tiles=_base_tiles(minzoom=5, order_sql="CASE t.kind WHEN 'district' THEN 1 ELSE 2 END"),
)

BASE_ENTERPRISE_LABELS = Layer(
    name="base_enterprise_labels",
    title="Base map: enterprise names",
    description=f"Enterprise names from zoom {ENTERPRISE_LABEL_MINZOOM}, at most "
    f"{ENTERPRISE_LABEL_CAP} per tile, worst colour first",
    # Who may read enterprises may read their names (the same audience, scoping and
    # publication as ``enterprises``, whose tiles already carry the name).
    audience="site",
    from_sql="enterprises t",
    geom_sql="t.geom",
    geometry_type="point",
    where_sql=_LIVE,
    properties=(
        tile_prop("id", "t.id", "Number", "enterprise id"),
        tile_prop("name", "t.name", "String", "enterprise name"),
        _color("coalesce(t.dynamic_color, t.inherent_color)", "dynamic colour", grey="n/a"),
        *_lon_lat("t.geom"),
    ),
    district_sql="t.district",
    enterprise_sql="t.id",
    color_sql="coalesce(t.dynamic_color, t.inherent_color)",
    depends_on=("enterprises",),
    tiles=_base_tiles(minzoom=ENTERPRISE_LABEL_MINZOOM, feature_cap=ENTERPRISE_LABEL_CAP),
)

#: The base map's tile layers, drawn under everything else (the web map's ``底图`` entry).
BASE_LAYERS: Final = (BASE_BOUNDARIES, BASE_AREAS, BASE_ROADS, BASE_LABELS, BASE_ENTERPRISE_LABELS)
# ---- end of base map ------------------------------------------------------------------------

DISTRICTS = Layer(
    name="districts",
    title="Districts",
    description="Administrative districts",
    audience="reference",
    from_sql="districts t",
    geom_sql="t.geom",
    geometry_type="polygon",
    properties=(
        tile_prop("id", "t.id", "Number", "district id"),
        Prop("code", "t.code", "String"),
        Prop("name", "t.name", "String"),
        Prop("name_en", "t.name_en", "String"),
    ),
    district_sql="t.code",
    depends_on=("districts",),
    tiles=Tiles(minzoom=0, simplify_below=16, public=True),
    rest=Rest(
        noun="district",
        writes=Writes(
            table="districts",
            model=props.DistrictProps,
            columns=(
                Column("code", "text"),
                Column("name", "text"),
                Column("name_en", "text"),
                Column("geom", "geometry", geometry=True),
            ),
            unique_keys=(UniqueKey(("code",), "code", "uq_districts_code"),),
            writers=("admin",),
            # Rows name a district by its code: renaming it would move them all silently.
            immutable=("code",),
            dependents=tuple(
                _in_district(kind, table)
                for kind, table in (
                    ("enterprise", "enterprises"),
                    ("zone", "zones"),
                    ("pipeline", "pipelines"),
                    ("vehicle", "vehicles"),
                )
            ),
        ),
    ),
)

ZONES = Layer(
    name="zones",
    title="Protected targets and zones",
    description="Schools, hospitals, residential areas, water sources, parking lots, parks",
    audience="reference",
    from_sql="zones t",
    geom_sql="t.geom",
    geometry_type="polygon",
    properties=(
        tile_prop("id", "t.id", "Number", "zone id"),
        rest_prop("code", "t.code"),
        Prop("name", "t.name", "String"),
        Prop("kind", "t.kind", "String"),
        Prop("district", "t.district", "String"),
        Prop("max_dwell_s", "t.max_dwell_s", "Number"),
        rest_prop("active_hours", "t.active_hours"),
        rest_prop("speed_limit_kmh", "t.speed_limit_kmh", "Number"),
        rest_prop("population", "t.population", "Number"),
    ),
    where_sql=_LIVE,
    district_sql="t.district",
    depends_on=("zones",),
    tiles=Tiles(minzoom=10, simplify_below=15, public=True),
    rest=Rest(
        noun="zone",
        filters=(Filter("kind", "t.kind", str, vocab.ZONE_KINDS),),
        writes=Writes(
            table="zones",
            model=props.ZoneProps,
            columns=(
                Column("code", "text"),
                Column("name", "text"),
                Column("kind", "text"),
                _DISTRICT,
                Column("max_dwell_s", "integer"),
                Column("active_hours", "text"),
                Column("speed_limit_kmh", "float8"),
                Column("population", "integer"),
                Column("geom", "geometry", geometry=True),
            ),
            unique_keys=(UniqueKey(("code",), "code", "uq_zones_code"),),
            # Officers draw and correct the zones their geofence rules judge stops in.
            writers=("admin", "regulator", "officer"),
            fills_district=True,
            # Alerts and stops name the zone they were judged in: their evidence keeps it.
            history=(_refs("alert", "alerts", "zone_id"), _refs("stop", "stops", "zone_id")),
            retires=True,
        ),
    ),
)

OVERLAY_ZONES = Layer(
    name="overlay_zones",
    title="Consequence zones",
    description="Consequence zones dissolved per colour; overlaps take the worst colour",
    audience="city",
    from_sql="overlay_zones t",
    geom_sql="t.geom",
    geometry_type="polygon",
    properties=(Prop("id", "t.id", "Number", "overlay polygon id"), _color()),
    color_sql="t.color",
    legend="worst consequence colour",
    depends_on=("overlay_zones",),
    tiles=Tiles(minzoom=8, simplify_below=15, public=True),
    hexagons=Hexagons(
        "polygons",
        "SELECT ST_AsBinary(geom), color FROM overlay_zones",
        "SELECT EXISTS (SELECT 1 FROM overlay_zones)",
        public=True,
    ),
)

#: A unit's substance inventory, e.g. "液氯 12.5/5 t; 氨 3/10 t" (q / Q in tonnes).
_INVENTORY_SQL = (
    "(SELECT string_agg(s.name || ' ' || round(s.q::numeric, 3)::text"
    " || coalesce('/' || round(s.critical_q::numeric, 3)::text, '') || ' t', '; ' ORDER BY s.id)"
    " FROM hazard_source_substances s WHERE s.hazard_source_id = t.id)"
)
_SUBSTANCES_JSON_SQL = (
    "(SELECT COALESCE(json_agg(json_build_object('name', x.name, 'cas', x.cas,"
    " 'q', x.q, 'Q', x.critical_q, 'beta', x.beta, 'class', x.hazard_class,"
    " 'classes', array_remove(array_prepend(x.hazard_class, x.more_classes), NULL),"
    " 'mixture', x.mixture)"
    " ORDER BY x.id), '[]'::json)"
    " FROM hazard_source_substances x WHERE x.hazard_source_id = t.id)"
)

_SUBSTANCES_INSERT_SQL = (
    "INSERT INTO hazard_source_substances"
    " (hazard_source_id, name, cas, q, critical_q, beta, hazard_class, more_classes, mixture)"
    # classes: the first is hazard_class, the rest more_classes (a multi-hazard substance,
    # docs/domain.md §2.1)
    " SELECT s.id, x.name, x.cas, x.q, x.critical_q, x.beta, x.classes[1],"
    " coalesce(x.classes[2:], '{}'), coalesce(x.mixture, false)"
    " FROM georisk_staging s CROSS JOIN LATERAL jsonb_to_recordset(s.substances)"
    " AS x(name text, cas text, q float8, critical_q float8, beta float8,"
    " classes text[], mixture boolean) ORDER BY s.ord"
)
#: The substances as a PATCH merges them: ``classes`` only (the REST answer's ``class``, the
#: first of them, would win the validator's alias and drop the others).
_SUBSTANCES_DOC_SQL = _SUBSTANCES_JSON_SQL.replace(" 'class', x.hazard_class,", "")

HAZARD_SOURCES = Layer(
    name="hazard_sources",
    title="Major hazard sources",
    description="GB 18218-2018 units; grade 1→red, 2→orange, 3→yellow, 4→blue, grey unassessed",
    audience="site",
    # A hazard source's district is its enterprise's; the join is dropped by the planner
    # whenever nothing reads ``e`` (a LEFT JOIN on a primary key).
    from_sql="hazard_sources t LEFT JOIN enterprises e ON e.id = t.enterprise_id",
    geom_sql="t.geom",
    geometry_type="polygon",
    properties=(
        tile_prop("id", "t.id", "Number", "hazard source id"),
        Prop("enterprise_id", "t.enterprise_id", "Number"),
        rest_prop("enterprise_credit_code", "e.credit_code"),
        Prop("code", "t.code", "String"),
        Prop("unit_name", "t.unit_name", "String"),
        rest_prop("unit_kind", "t.unit_kind"),
        rest_prop("population_500m", "t.population_500m", "Number"),
        rest_prop("district", "e.district"),
        rest_prop("S", "t.s_value", "Number"),
        rest_prop("alpha", "t.alpha", "Number"),
        rest_prop("R", "t.r_value", "Number"),
        Prop("grade", "t.grade", "Number", "GB 18218 grade 1–4"),
        # R is Σ βq/Q: the inventory in one number, so both leave the public map.
        tile_prop(
            "R", "round(t.r_value::numeric, 2)::float8", "Number", "GB 18218 R", sensitive=True
        ),
        tile_prop(
            "substances", _INVENTORY_SQL, "String", "inventory: name q/Q t; …", sensitive=True
        ),
        _color(grey="not assessed"),
        rest_prop("substances", _SUBSTANCES_JSON_SQL, "Object"),
    ),
    where_sql=_LIVE,
    district_sql="e.district",
    enterprise_sql="t.enterprise_id",
    color_sql="t.color",
    legend="GB 18218 grade",
    depends_on=("hazard_sources",),
    tiles=Tiles(minzoom=9, simplify_below=14, public=True),
    hexagons=Hexagons(
        "polygons",
        "SELECT ST_AsBinary(geom), color FROM hazard_sources WHERE retired_at IS NULL",
        "SELECT EXISTS (SELECT 1 FROM hazard_sources WHERE retired_at IS NULL)",
        public=True,
    ),
    rest=Rest(
        noun="hazard source",
        filters=(Filter("enterprise_id", "t.enterprise_id", int),),
        writes=Writes(
            table="hazard_sources",
            model=props.HazardSourceProps,
            columns=(
                Column("enterprise_id", "integer"),
                Column("enterprise_credit_code", "text", staging_only=True),
                Column("code", "text"),
                Column("unit_name", "text"),
                Column("unit_kind", "text"),
                Column("population_500m", "integer"),
                Column("substances", "jsonb", staging_only=True),
                Column("geom", "geometry", geometry=True),
            ),
            unique_keys=(
                UniqueKey(
                    ("enterprise_id", "code"), "code", "uq_hazard_sources_enterprise_id_code"
                ),
            ),
            resolve_sql=(
                "UPDATE georisk_staging s SET enterprise_id = e.id FROM enterprises e"
                " WHERE s.enterprise_id IS NULL AND e.credit_code = s.enterprise_credit_code",
            ),
            checks=(
                _exists("enterprise_id", "enterprises", "id", "enterprise"),
                _exists("enterprise_credit_code", "enterprises", "credit_code", "enterprise"),
                StagedCheck(
                    field="enterprise_credit_code",
                    sql=(
                        "SELECT s.ord, s.enterprise_credit_code AS value FROM georisk_staging s"
                        " JOIN enterprises e ON e.id = s.enterprise_id"
                        " WHERE s.enterprise_credit_code IS NOT NULL"
                        " AND e.credit_code <> s.enterprise_credit_code"
                    ),
                    reason="{value} is not the credit code of the enterprise given by "
                    "enterprise_id",
                ),
            ),
            after_insert_sql=(_SUBSTANCES_INSERT_SQL,),
            field_for_constraint={"fk_hazard_sources_enterprise_id_enterprises": "enterprise_id"},
            # A unit belongs to its enterprise: moving it would re-scope and re-rate two sites.
            immutable=("enterprise_id", "enterprise_credit_code"),
            current_sql=(("substances", _SUBSTANCES_DOC_SQL),),
            # A PATCH's substances replace the unit's list (RFC 7396: an array is replaced).
            after_update_sql=(
                "DELETE FROM hazard_source_substances x USING georisk_staging s"
                " WHERE x.hazard_source_id = s.id",
                _SUBSTANCES_INSERT_SQL,
            ),
            dependents=(
                _refs("monitoring point", "monitoring_points", "hazard_source_id", _LIVE_X),
                _refs("risk unit", "risk_units", "hazard_source_id"),
            ),
            # Retired points keep their alarms and readings as history, and so the unit.
            history=(
                _refs("monitoring point", "monitoring_points", "hazard_source_id", _RETIRED_X),
            ),
            retires=True,
        ),
    ),
)

#: A unit's level on the map: its assessed colour, grey while it is registered but not assessed
#: (never blue: blue claims "assessed, low", docs/domain.md §2.2).
_UNIT_COLOR = "coalesce(t.color, 'grey')"
#: LEC D = L × E × C or LS R = L × S (layers/risk/units.py computes the colour from the same).
_UNIT_SCORE = (
    "round((CASE t.method WHEN 'LEC' THEN t.likelihood * t.exposure * t.consequence"
    " WHEN 'LS' THEN t.likelihood * t.severity END)::numeric, 6)::float8"
)
_UNIT_OVERDUE = review_overdue_sql("t.review_due")
#: Where a unit's name is written on the map (Leaflet.VectorGrid draws no text, so the page
#: places its labels from these two numbers; rounded to ~0.1 m).
_LABEL_POINT = "round(ST_{}(ST_PointOnSurface(t.geom))::numeric, 6)::float8"

RISK_UNITS = Layer(
    name="risk_units",
    title="Risk units",
    description="Units of the enterprises' risk registers (风险分级管控), coloured by their "
    "LEC / LS level; grey = registered, not assessed",
    # A register is internal: its enterprise and the regulators of its district read it, the
    # published (tile reader) map never does (no ``public`` on its tiles or its hexagons).
    audience="site",
    # The district is the enterprise's; the join is dropped by the planner when unread.
    from_sql="risk_units t LEFT JOIN enterprises e ON e.id = t.enterprise_id",
    geom_sql="t.geom",
    geometry_type="polygon",
    properties=(
        Prop("id", "t.id", "Number", "risk unit id"),  # in REST too, like the register API
        Prop("enterprise_id", "t.enterprise_id", "Number"),
        Prop(
            "name", "t.name", "String", "unit name (the map's label at zoom ≥ 16)", sensitive=True
        ),
        Prop("kind", "t.kind", "String", "process_unit, reactor, tank_farm, …", sensitive=True),
        rest_prop("hazard_source_id", "t.hazard_source_id", "Number"),
        Prop("method", "t.method", "String", "LEC or LS; none when not assessed", sensitive=True),
        rest_prop("likelihood", "t.likelihood", "Number"),
        rest_prop("exposure", "t.exposure", "Number"),
        rest_prop("consequence", "t.consequence", "Number"),
        rest_prop("severity", "t.severity", "Number"),
        rest_prop("controls", "t.controls", "Object"),
        # Tiles say grey for "not assessed"; REST keeps the register's null (?color=grey finds
        # them both ways).
        tile_prop("color", _UNIT_COLOR, "String", "unit level: four colours, grey not assessed"),
        rest_prop("color", "t.color"),
        Prop("score", _UNIT_SCORE, "Number", "LEC D or LS R", sensitive=True),
        rest_prop("responsible", "t.responsible"),
        rest_prop("responsible_phone", "t.responsible_phone"),
        rest_prop("assessed_on", "t.assessed_on", "Date"),
        rest_prop("review_due", "t.review_due", "Date"),
        tile_prop("review_due", "t.review_due::text", "String", "YYYY-MM-DD", sensitive=True),
        Prop("overdue", _UNIT_OVERDUE, "Boolean", "review past due as of today (UTC)"),
        rest_prop("district", "e.district"),
        tile_prop("label_lon", _LABEL_POINT.format("X"), "Number", "label point longitude"),
        tile_prop("label_lat", _LABEL_POINT.format("Y"), "Number", "label point latitude"),
    ),
    district_sql="e.district",
    enterprise_sql="t.enterprise_id",
    color_sql=_UNIT_COLOR,
    legend="risk unit level (LEC / LS); grey not assessed",
    depends_on=("risk_units",),
    # "live": the overdue flag turns at midnight without any change notice, so a cached tile
    # must not outlive the live TTL; a register edit still purges at once.
    tiles=Tiles(minzoom=13, simplify_below=15, feature_cap=4000, cache_class="live"),
    # Units are rolled up at a point inside each (they are smaller than a resolution-10 cell,
    # and points are indexed vectorised: tens of thousands of units in well under a second).
    hexagons=Hexagons(
        "points",
        "SELECT ST_X(p), ST_Y(p), color, 1 FROM (SELECT ST_PointOnSurface(geom) AS p,"
        " coalesce(color, 'grey') AS color FROM risk_units) u",
        "SELECT EXISTS (SELECT 1 FROM risk_units)",
    ),
    rest=Rest(
        noun="risk unit",
        filters=(
            Filter("enterprise_id", "t.enterprise_id", int),
            Filter("kind", "t.kind", str, vocab.RISK_UNIT_KINDS),
            Filter("overdue", f"{_UNIT_OVERDUE}::text", str, ("true", "false")),
        ),
        # Writes go through the register's own routes (re-rating the enterprise), and so does
        # GET /api/risk-units/{id} (geo_api/routes/risk_units.py, with its typed model).
        item_route=False,
        datetime_sql="t.assessed_on",
    ),
)

PIPELINES = Layer(
    name="pipelines",
    title="Pipelines (register)",
    description="Hazardous-chemical pipelines as registered; the map draws their segments",
    audience="city",
    from_sql="pipelines t",
    geom_sql="t.geom",
    geometry_type="line",
    properties=(
        rest_prop("code", "t.code"),
        rest_prop("name", "t.name"),
        rest_prop("substance", "t.substance"),
        rest_prop("cas", "t.cas"),
        rest_prop("diameter_mm", "t.diameter_mm", "Number"),
        rest_prop("pressure_mpa", "t.pressure_mpa", "Number"),
        rest_prop("operator", "t.operator"),
        rest_prop("district", "t.district"),
        rest_prop("length_m", "round(ST_Length(t.geom::geography)::numeric, 1)", "Number"),
    ),
    district_sql="t.district",
    depends_on=("pipelines",),
    rest=Rest(
        noun="pipeline",
        writes=Writes(
            table="pipelines",
            model=props.PipelineProps,
            columns=(
                Column("code", "text"),
                Column("name", "text"),
                Column("substance", "text"),
                Column("cas", "text"),
                Column("diameter_mm", "float8"),
                Column("pressure_mpa", "float8"),
                Column("operator", "text"),
                _DISTRICT,
                Column("geom", "geometry", geometry=True),
            ),
            unique_keys=(UniqueKey(("code",), "code", "uq_pipelines_code"),),
            fills_district=True,
            dependents=(_refs("monitoring point", "monitoring_points", "pipeline_id", _LIVE_X),),
            history=(_refs("monitoring point", "monitoring_points", "pipeline_id", _RETIRED_X),),
            retires=True,
        ),
    ),
)

PIPELINE_SEGMENTS = Layer(
    name="pipeline_segments",
    title="Pipelines",
    description="Pipelines cut into ≤ 500 m segments, each coloured by its own risk",
    audience="city",
    from_sql="pipeline_segments t JOIN pipelines p ON p.id = t.pipeline_id",
    geom_sql="t.geom",
    geometry_type="line",
    properties=(
        Prop("id", "t.id", "Number", "segment id"),
        Prop("pipeline_id", "t.pipeline_id", "Number"),
        Prop("code", "p.code", "String", "pipeline code"),
        Prop("substance", "p.substance", "String", sensitive=True),
        Prop("seq", "t.seq", "Number"),
        _color(),
    ),
    where_sql="p.retired_at IS NULL",
    district_sql="p.district",
    color_sql="t.color",
    legend="segment risk colour",
    depends_on=("pipeline_segments", "pipelines"),
    tiles=Tiles(minzoom=8, simplify_below=14, public=True),
)

_NA = "not assessed"

ENTERPRISES = Layer(
    name="enterprises",
    title="Enterprises",
    description="Supervised enterprises; colour = dynamic colour (MEM 2018 rating + live facts)",
    audience="site",
    from_sql="enterprises t",
    geom_sql="t.geom",
    geometry_type="point",
    properties=(
        tile_prop("id", "t.id", "Number", "enterprise id"),
        rest_prop("credit_code", "t.credit_code"),
        Prop("name", "t.name", "String"),
        Prop("category", "t.category", "String"),
        rest_prop("is_hazmat", "t.is_hazmat", "Boolean"),
        Prop("district", "t.district", "String"),
        rest_prop("park", "t.park"),
        rest_prop("address", "t.address"),
        rest_prop("licence_expiry", "t.licence_expiry", "Date"),
        rest_prop("diagnosis_score", "t.diagnosis_score::float8", "Number"),
        rest_prop("diagnosed_on", "t.diagnosed_on", "Date"),
        rest_prop("site", "ST_AsGeoJSON(t.site_geom, 7)::json", "Object"),
        _color("coalesce(t.dynamic_color, t.inherent_color)", "dynamic colour", grey=_NA),
        _color("t.inherent_color", "inherent colour", "inherent_color", _NA),
        _color("t.dynamic_color", "dynamic colour", "dynamic_color", _NA),
    ),
    where_sql=_LIVE,
    district_sql="t.district",
    enterprise_sql="t.id",
    color_sql="coalesce(t.dynamic_color, t.inherent_color)",
    legend="dynamic risk colour",
    depends_on=("enterprises",),
    tiles=Tiles(minzoom=6, cluster_below=12, feature_cap=4000, public=True),
    hexagons=Hexagons(
        "points",
        "SELECT ST_X(geom), ST_Y(geom), coalesce(dynamic_color, inherent_color), 1"
        " FROM enterprises WHERE retired_at IS NULL",
        "SELECT EXISTS (SELECT 1 FROM enterprises WHERE retired_at IS NULL)",
        public=True,
    ),
    rest=Rest(
        noun="enterprise",
        filters=(Filter("category", "t.category", str, vocab.ENTERPRISE_CATEGORIES),),
        writes=Writes(
            table="enterprises",
            model=props.EnterpriseProps,
            columns=(
                Column("credit_code", "text"),
                Column("name", "text"),
                Column("category", "text"),
                Column("is_hazmat", "boolean"),
                _DISTRICT,
                Column("park", "text"),
                Column("address", "text"),
                Column("licence_expiry", "date"),
                Column("diagnosis_score", "numeric"),
                Column("diagnosed_on", "date"),
                Column("geom", "geometry", geometry=True),
                Column("site_geom", "geometry", geometry=True),
            ),
            unique_keys=(UniqueKey(("credit_code",), "credit_code", "uq_enterprises_credit_code"),),
            fills_district=True,
            # is_hazmat follows from the category (read as "not given", derived again).
            current_sql=(("site", "ST_AsGeoJSON(t.site_geom, 15)::json"), ("is_hazmat", "NULL")),
            dependents=(
                _refs("hazard source", "hazard_sources", "enterprise_id", _LIVE_X),
                _refs("risk unit", "risk_units", "enterprise_id"),
                _refs("vehicle", "vehicles", "enterprise_id", _LIVE_X),
                _refs("api key", "api_keys", "enterprise_id", "x.revoked_at IS NULL"),
                _refs("carrier licence", "carriers", "enterprise_id"),
                _refs("driver or escort", "crew_members", "carrier_id"),
            ),
            history=(
                _refs("alert", "alerts", "enterprise_id"),
                _refs("score event", "score_events", "enterprise_id"),
                _refs("hidden danger", "hidden_dangers", "enterprise_id"),
                _refs("inspection task", "inspection_tasks", "enterprise_id"),
                _refs("hazard source", "hazard_sources", "enterprise_id", _RETIRED_X),
                _refs("vehicle", "vehicles", "enterprise_id", _RETIRED_X),
                _refs("api key", "api_keys", "enterprise_id"),
                # A waybill names it as carrier, shipper, consignee, loading party or site.
                Reference(
                    "waybill",
                    "SELECT x.id FROM waybills x WHERE %(id)s IN (x.carrier_id, x.shipper_id,"
                    " x.consignee_id, x.loading_party_id, x.origin_id, x.destination_id)",
                ),
            ),
            retires=True,
        ),
    ),
)

_OPEN_ALARMS = (
    "FROM alarms a JOIN monitoring_points mp ON mp.id = a.point_id WHERE a.cleared_at IS NULL"
    " AND mp.retired_at IS NULL"
)

MONITORING_POINTS = Layer(
    name="monitoring_points",
    title="Monitoring points",
    description="Live sensors; colour = live alarm level (kept while offline during an open "
    "alarm), grey = offline without an open alarm",
    audience="site",
    # The district comes from the parent: the hazard source's enterprise, or the pipeline.
    # Unread joins (LEFT JOIN on primary keys) are dropped by the planner.
    from_sql=(
        "monitoring_points t"
        " LEFT JOIN hazard_sources h ON h.id = t.hazard_source_id"
        " LEFT JOIN enterprises e ON e.id = h.enterprise_id"
        " LEFT JOIN pipelines pl ON pl.id = t.pipeline_id"
    ),
    geom_sql="t.geom",
    geometry_type="point",
    properties=(
        tile_prop("id", "t.id", "Number", "monitoring point id"),
        Prop("code", "t.code", "String"),
        Prop("hazard_source_id", "t.hazard_source_id", "Number"),
        rest_prop("pipeline_id", "t.pipeline_id", "Number"),
        Prop("kind", "t.kind", "String"),
        rest_prop("substance", "t.substance"),
        rest_prop("unit", "t.unit"),
        rest_prop("level1", "t.level1", "Number"),
        rest_prop("level2", "t.level2", "Number"),
        rest_prop("limit_h", "t.limit_h", "Number"),
        rest_prop("limit_hh", "t.limit_hh", "Number"),
        rest_prop("limit_l", "t.limit_l", "Number"),
        rest_prop("limit_ll", "t.limit_ll", "Number"),
        rest_prop("sampling_interval_s", "t.sampling_interval_s", "Number"),
        rest_prop("district", "COALESCE(e.district, pl.district)"),
        _color("t.live_color", "live level", grey="offline, no open alarm"),
        # Silent (stale or flat-lined); an open alarm keeps its colour (docs/domain.md §2.4).
        Prop("offline", "t.offline", "Boolean", "silent: stale or flat-lined"),
    ),
    where_sql=_LIVE,
    district_sql="COALESCE(e.district, pl.district)",
    enterprise_sql="h.enterprise_id",
    color_sql="t.live_color",
    legend="live alarm level",
    depends_on=("monitoring_points", "alarms"),
    tiles=Tiles(minzoom=10, cluster_below=14, cache_class="live", public=True),
    hexagons=Hexagons(
        "points",
        "SELECT ST_X(geom), ST_Y(geom), live_color, 1 FROM monitoring_points"
        " WHERE retired_at IS NULL"
        f" UNION ALL SELECT ST_X(mp.geom), ST_Y(mp.geom), a.color, 0 {_OPEN_ALARMS}",
        "SELECT EXISTS (SELECT 1 FROM monitoring_points WHERE retired_at IS NULL)",
        public=True,
    ),
    rest=Rest(
        noun="monitoring point",
        filters=(
            Filter("kind", "t.kind", str, vocab.MONITORING_KINDS),
            Filter("hazard_source_id", "t.hazard_source_id", int),
        ),
        writes=Writes(
            table="monitoring_points",
            model=props.MonitoringPointProps,
            columns=(
                Column("code", "text"),
                Column("hazard_source_id", "integer"),
                Column("pipeline_id", "integer"),
                Column("kind", "text"),
                Column("substance", "text"),
                Column("unit", "text"),
                Column("level1", "float8"),
                Column("level2", "float8"),
                Column("limit_h", "float8"),
                Column("limit_hh", "float8"),
                Column("limit_l", "float8"),
                Column("limit_ll", "float8"),
                Column("sampling_interval_s", "integer"),
                Column("geom", "geometry", geometry=True),
            ),
            unique_keys=(UniqueKey(("code",), "code", "uq_monitoring_points_code"),),
            checks=(
                _exists("hazard_source_id", "hazard_sources", "id", "hazard source"),
                _exists("pipeline_id", "pipelines", "id", "pipeline"),
            ),
            field_for_constraint={
                "fk_monitoring_points_hazard_source_id_hazard_sources": "hazard_source_id",
                "fk_monitoring_points_pipeline_id_pipelines": "pipeline_id",
            },
            history=(
                _refs("alarm", "alarms", "point_id"),
                _refs("reading", "readings", "point_id"),
            ),
            retires=True,
        ),
    ),
)

ALARMS = Layer(
    name="alarms",
    title="Open alarms",
    description="Open monitoring alarms at their points (rolled up into hexagons)",
    audience="city",
    depends_on=("monitoring_points", "alarms"),
    hexagons=Hexagons(
        "points",
        f"SELECT ST_X(mp.geom), ST_Y(mp.geom), a.color, 1 {_OPEN_ALARMS}",
        f"SELECT EXISTS (SELECT 1 {_OPEN_ALARMS})",
        public=True,
    ),
)

STOPS = Layer(
    name="stops",
    title="Tanker stops",
    description="Detected stops (≥ 180 s within 200 m); open stops have no end",
    audience="transport",
    from_sql="stops t",
    geom_sql="t.geom",
    geometry_type="point",
    properties=(
        Prop("id", "t.id", "Number", "stop id"),
        Prop("vehicle_id", "t.vehicle_id", "Number"),
        Prop("start_ts", "t.start_ts::text", "String"),
        Prop("end_ts", "t.end_ts::text", "String"),
        Prop("fix_count", "t.fix_count", "Number"),
    ),
    depends_on=("stops",),
    tiles=Tiles(minzoom=10, cluster_below=13, cache_class="live"),
    hexagons=Hexagons(
        "points",
        "SELECT ST_X(geom), ST_Y(geom), NULL::text, 1 FROM stops",
        "SELECT EXISTS (SELECT 1 FROM stops)",
        scored_by_count=True,
    ),
)

#: CAP severity → the four colours (extreme red … minor blue).
_SEVERITY_COLOR = (
    "CASE t.severity WHEN 'extreme' THEN 'red' WHEN 'severe' THEN 'orange'"
    " WHEN 'moderate' THEN 'yellow' ELSE 'blue' END"
)

ALERTS = Layer(
    name="alerts",
    title="Geofence alerts",
    description="Tanker alerts (illegal parking, overspeed); colour from CAP severity",
    audience="transport",
    from_sql="alerts t",
    geom_sql="t.geom",
    geometry_type="point",
    where_sql="t.geom IS NOT NULL",
    properties=(
        Prop("id", "t.id", "Number", "alert id"),
        Prop("vehicle_id", "t.vehicle_id", "Number"),
        Prop("rule", "t.rule", "String"),
        Prop("status", "t.status", "String"),
        Prop("severity", "t.severity", "String"),
        _color(_SEVERITY_COLOR, "severity colour"),
    ),
    district_sql="t.district",
    enterprise_sql="t.enterprise_id",
    color_sql=_SEVERITY_COLOR,
    legend="CAP severity",
    depends_on=("alerts",),
    tiles=Tiles(minzoom=8, cluster_below=12, feature_cap=5000, cache_class="live"),
)

#: Fixes inside the tile (with margin) in the window, cut into parts where a vehicle left the
#: tile or went silent (> 120 s between fixes), one MultiLineString per vehicle.
_TRACKS_SQL = (
    "(SELECT f.vehicle_id AS id, count(*) AS fixes, max(f.speed_kmh) AS max_speed,"
    " ST_Multi(ST_Collect(f.line)) AS geom FROM (SELECT s.vehicle_id, s.part,"
    " ST_MakeLine(ST_MakePoint(s.lon, s.lat) ORDER BY s.ts) AS line,"
    " max(s.speed_kmh) AS speed_kmh FROM (SELECT p.vehicle_id, p.ts, p.lon, p.lat, p.speed_kmh,"
    " count(*) FILTER (WHERE p.gap) OVER (PARTITION BY p.vehicle_id ORDER BY p.ts) AS part"
    " FROM (SELECT q.vehicle_id, q.ts, q.lon, q.lat, q.speed_kmh, coalesce(q.ts - lag(q.ts)"
    " OVER (PARTITION BY q.vehicle_id ORDER BY q.ts) > interval '120 seconds', true) AS gap"
    " FROM positions q, b WHERE q.ts >= %(t_from)s AND q.ts < %(t_to)s"
    " AND q.lon BETWEEN ST_XMin(b.qenv) AND ST_XMax(b.qenv)"
    " AND q.lat BETWEEN ST_YMin(b.qenv) AND ST_YMax(b.qenv)) p) s"
    " GROUP BY s.vehicle_id, s.part HAVING count(*) > 1) f GROUP BY f.vehicle_id) t"
)

TANKER_TRACKS = Layer(
    name="tanker_tracks",
    title="Hazmat tanker tracks",
    description="Tracks in a time window ?from=&to= (ISO 8601; default the last hour)",
    audience="transport",
    from_sql=_TRACKS_SQL,
    geom_sql="ST_SetSRID(t.geom, 4326)",
    geometry_type="line",
    properties=(
        Prop("id", "t.id", "Number", "vehicle id"),
        Prop("fixes", "t.fixes", "Number", "fixes inside the tile"),
        Prop("max_speed_kmh", "t.max_speed::float8", "Number"),
    ),
    tiles=Tiles(
        minzoom=10, simplify_below=15, feature_cap=3000, cache_class="live", time_window="window"
    ),
)

#: Latest fix per vehicle read backwards on the (vehicle_id, ts) primary key, at most
#: ``latest_max_age`` old (``t_from``) and not after ``?at=`` (``t_to``, default now).
_LATEST_SQL = (
    "(SELECT v.id, v.plate, v.carrier, v.un_number, lp.ts, lp.lon, lp.lat, lp.speed_kmh,"
    " lp.heading FROM vehicles v CROSS JOIN LATERAL (SELECT p.ts, p.lon, p.lat, p.speed_kmh,"
    " p.heading FROM positions p WHERE p.vehicle_id = v.id AND p.ts > %(t_from)s"
    " AND p.ts <= %(t_to)s ORDER BY p.ts DESC LIMIT 1) lp WHERE v.retired_at IS NULL) t"
)

TANKERS = Layer(
    name="tankers",
    title="Hazmat tankers (latest position)",
    description="Each tanker's latest fix (at most GEORISK_TILES_LATEST_MAX_AGE_H old, ?at= "
    "to replay)",
    audience="transport",
    from_sql=_LATEST_SQL,
    geom_sql="ST_SetSRID(ST_MakePoint(t.lon, t.lat), 4326)",
    geometry_type="point",
    properties=(
        Prop("id", "t.id", "Number", "vehicle id"),
        Prop("plate", "t.plate", "String"),
        Prop("carrier", "t.carrier", "String"),
        Prop("un_number", "t.un_number", "String"),
        Prop("ts", "to_char(t.ts AT TIME ZONE 'UTC', 'YYYY-MM-DD\"T\"HH24:MI:SS\"Z\"')", "String"),
        Prop("speed_kmh", "t.speed_kmh::float8", "Number"),
        Prop("heading", "t.heading", "Number"),
    ),
    tiles=Tiles(minzoom=8, cluster_below=11, cache_class="live", time_window="at"),
)

# ---- the transport chain (issue 14; docs/transport.md) -----------------------------------------
# Carriers, their vehicles, drivers and escorts, and the electronic waybills: registers without
# a map of their own (a waybill's feature geometry is its planned route). Every row belongs to a
# carrier — its enterprise id — which scopes it to that carrier's key and, through the carrier's
# district, to regulators and officers.


def _in_carriers(field_name: str, column: str) -> StagedCheck:
    """A staged row's carrier (an enterprise id) must be a registered carrier."""
    return StagedCheck(
        field=field_name,
        sql=(
            f"SELECT s.ord, s.{column}::text AS value FROM georisk_staging s"
            f" WHERE s.{column} IS NOT NULL"
            f" AND NOT EXISTS (SELECT 1 FROM carriers c WHERE c.enterprise_id = s.{column})"
        ),
        reason="enterprise {value} is not a registered carrier (POST /api/carriers first)",
    )


def _crew_of_carrier(field_name: str, role: str) -> StagedCheck:
    """A waybill's driver / escort is a crew member of that role and of the waybill's carrier."""
    return StagedCheck(
        field=field_name,
        sql=(
            f"SELECT s.ord, s.{field_name}::text || ' is ' || CASE"
            " WHEN m.id IS NULL THEN 'no crew member'"
            f" WHEN m.role <> '{role}' THEN 'registered as ' || m.role || ', not as {role}'"
            " ELSE 'of carrier ' || m.carrier_id || ', not of carrier ' || s.carrier_id END"
            f" AS value FROM georisk_staging s LEFT JOIN crew_members m ON m.id = s.{field_name}"
            f" WHERE s.{field_name} IS NOT NULL AND (m.id IS NULL OR m.role <> '{role}'"
            " OR m.carrier_id <> s.carrier_id)"
        ),
        reason="{value}",
    )


def _validity(column: str) -> str:
    """A qualification's date as ``valid`` / ``expired`` / ``missing`` today (the loading
    party's checks judge the loading day instead: layers/transport/qualifications.py)."""
    return (
        f"CASE WHEN {column} IS NULL THEN 'missing'"
        f" WHEN {column} < current_date THEN 'expired' ELSE 'valid' END"
    )


CARRIERS = Layer(
    name="carriers",
    title="Hazmat carriers",
    description="Enterprises licensed to carry dangerous goods by road, with their licence",
    audience="carriage",
    from_sql="carriers t LEFT JOIN enterprises e ON e.id = t.enterprise_id",
    properties=(
        rest_prop("enterprise_id", "t.enterprise_id", "Number"),
        rest_prop("name", "e.name"),
        rest_prop("credit_code", "e.credit_code"),
        rest_prop("district", "e.district"),
        rest_prop("licence_no", "t.licence_no"),
        rest_prop("licence_expiry", "t.licence_expiry", "Date"),
        rest_prop("licence_status", _validity("t.licence_expiry")),
    ),
    district_sql="e.district",
    enterprise_sql="t.enterprise_id",
    rest=Rest(
        noun="carrier",
        filters=(Filter("enterprise_id", "t.enterprise_id", int),),
        writes=Writes(
            table="carriers",
            model=props.CarrierProps,
            columns=(
                Column("enterprise_id", "integer"),
                Column("enterprise_credit_code", "text", staging_only=True),
                Column("licence_no", "text"),
                Column("licence_expiry", "date"),
            ),
            unique_keys=(
                UniqueKey(("enterprise_id",), "enterprise_id", "uq_carriers_enterprise_id"),
                UniqueKey(("licence_no",), "licence_no", "uq_carriers_licence_no"),
            ),
            resolve_sql=(
                "UPDATE georisk_staging s SET enterprise_id = e.id FROM enterprises e"
                " WHERE s.enterprise_id IS NULL AND e.credit_code = s.enterprise_credit_code",
            ),
            checks=(
                _exists("enterprise_id", "enterprises", "id", "enterprise"),
                _exists("enterprise_credit_code", "enterprises", "credit_code", "enterprise"),
                StagedCheck(
                    field="enterprise_id",
                    sql=(
                        "SELECT s.ord, e.id || ' is a ' || e.category || ' enterprise' AS value"
                        " FROM georisk_staging s JOIN enterprises e ON e.id = s.enterprise_id"
                        " WHERE e.category <> 'transport'"
                    ),
                    reason="{value}; a carrier is a transport enterprise",
                ),
            ),
            field_for_constraint={"fk_carriers_enterprise_id_enterprises": "enterprise_id"},
            writers=("admin", "regulator"),
        ),
    ),
)

VEHICLES = Layer(
    name="vehicles",
    title="Hazmat vehicles (register)",
    description="Registered hazmat vehicles with their qualifications, latest fix and detector "
    "state",
    audience="carriage",
    from_sql="vehicles t",
    # The latest fix per vehicle (``Rest.lateral_sql``), read backwards on the primary key.
    geom_sql="ST_SetSRID(ST_MakePoint(lp.lon, lp.lat), 4326)",
    geometry_type="point",
    properties=(
        rest_prop("plate", "t.plate"),
        rest_prop("carrier", "t.carrier"),
        rest_prop("carrier_id", "t.enterprise_id", "Number"),
        rest_prop("hazmat_class", "t.hazmat_class"),
        rest_prop("un_number", "t.un_number"),
        rest_prop("capacity_t", "t.capacity_t", "Number"),
        rest_prop("district", "t.district"),
        rest_prop("tank_type", "t.tank_type"),
        rest_prop("tank_volume_m3", "t.tank_volume_m3", "Number"),
        rest_prop("road_permit_no", "t.road_permit_no"),
        rest_prop("road_permit_expiry", "t.road_permit_expiry", "Date"),
        rest_prop("road_permit_status", _validity("t.road_permit_expiry")),
        rest_prop("tank_inspection_expiry", "t.tank_inspection_expiry", "Date"),
        rest_prop("tank_inspection_status", _validity("t.tank_inspection_expiry")),
        rest_prop("last_fix_at", "lp.ts", "Date"),
        rest_prop("speed_kmh", "lp.speed_kmh", "Number"),
        rest_prop("heading", "lp.heading", "Number"),
        # The stop detector's persisted state (layers/transport/state.py): moving / stopped.
        rest_prop("state", "(SELECT vs.state FROM vehicle_state vs WHERE vs.vehicle_id = t.id)"),
        rest_prop(
            "state_since",
            "(SELECT vs.since FROM vehicle_state vs WHERE vs.vehicle_id = t.id)",
            "Date",
        ),
    ),
    district_sql="t.district",
    enterprise_sql="t.enterprise_id",
    rest=Rest(
        noun="vehicle",
        filters=(
            Filter("carrier", "t.carrier", str),
            Filter("carrier_id", "t.enterprise_id", int),
        ),
        datetime_sql="lp.ts",  # the latest fix
        lateral_sql=(
            " LEFT JOIN LATERAL (SELECT p.lon, p.lat, p.ts, p.speed_kmh, p.heading"
            " FROM positions p WHERE p.vehicle_id = t.id ORDER BY p.ts DESC LIMIT 1) lp ON true"
        ),
        writes=Writes(
            table="vehicles",
            model=props.VehicleProps,
            columns=(
                Column("plate", "text"),
                Column("carrier", "text"),
                Column("enterprise_id", "integer"),
                Column("hazmat_class", "text"),
                Column("un_number", "text"),
                Column("capacity_t", "float8"),
                _DISTRICT,
                Column("tank_type", "text"),
                Column("tank_volume_m3", "float8"),
                Column("road_permit_no", "text"),
                Column("road_permit_expiry", "date"),
                Column("tank_inspection_expiry", "date"),
            ),
            unique_keys=(UniqueKey(("plate",), "plate", "uq_vehicles_plate"),),
            # A vehicle named by its carrier's id takes the carrier's name as its ``carrier``
            # (the text that ingest keys' carrier lists and the statistics go by).
            resolve_sql=(
                "UPDATE georisk_staging s SET carrier = e.name FROM enterprises e"
                " WHERE s.carrier IS NULL AND e.id = s.enterprise_id",
            ),
            checks=(_in_carriers("carrier_id", "enterprise_id"),),
            field_for_constraint={"fk_vehicles_enterprise_id_enterprises": "carrier_id"},
            # A carrier (its enterprise key) registers its own vehicles.
            writers=("admin", "regulator", "officer", "enterprise"),
            # A PATCH merges into the carrier's id as the API names it.
            current_sql=(("carrier_id", "t.enterprise_id"),),
            dependents=(
                _refs("planned route", "vehicle_routes", "vehicle_id"),
                # A bound terminal still reports for it: unbind (or re-register) it first.
                _refs("JT/T 808 terminal", "jt808_terminals", "vehicle_id"),
            ),
            # Its fixes, stops, alerts and waybills are the evidence of past alerts and loads.
            history=(
                _refs("fix", "positions", "vehicle_id"),
                _refs("stop", "stops", "vehicle_id"),
                _refs("alert", "alerts", "vehicle_id"),
                _refs("waybill", "waybills", "vehicle_id"),
            ),
            retires=True,
        ),
    ),
)

#: An id-card number as readers of masked personal data see it: region and last digits.
_MASKED_ID_CARD = "left(t.id_card_no, 4) || repeat('*', 10) || right(t.id_card_no, 4)"
_MASKED_PHONE = (
    "CASE WHEN length(t.phone) >= 8 THEN left(t.phone, 3) || repeat('*', length(t.phone) - 7)"
    " || right(t.phone, 4) WHEN t.phone IS NOT NULL THEN '****' END"
)

CREW_MEMBERS = Layer(
    name="crew_members",
    title="Drivers and escorts",
    description="Carriers' drivers and escorts with their qualification certificates",
    audience="carriage",
    from_sql="crew_members t LEFT JOIN enterprises e ON e.id = t.carrier_id",
    properties=(
        rest_prop("carrier_id", "t.carrier_id", "Number"),
        rest_prop("name", "t.name"),
        rest_prop("role", "t.role"),
        Prop(
            "id_card_no",
            "t.id_card_no",
            "String",
            "resident identity card number (masked for regulators and officers)",
            tiles=False,
            sensitive=True,
            masked_sql=_MASKED_ID_CARD,
        ),
        rest_prop("certificate_no", "t.certificate_no"),
        rest_prop("certificate_expiry", "t.certificate_expiry", "Date"),
        rest_prop("certificate_status", _validity("t.certificate_expiry")),
        Prop("phone", "t.phone", "String", tiles=False, sensitive=True, masked_sql=_MASKED_PHONE),
        rest_prop("district", "e.district"),
    ),
    district_sql="e.district",
    enterprise_sql="t.carrier_id",
    rest=Rest(
        noun="crew member",
        filters=(
            Filter("role", "t.role", str, vocab.CREW_ROLES),
            Filter("carrier_id", "t.carrier_id", int),
        ),
        writes=Writes(
            table="crew_members",
            model=props.CrewMemberProps,
            columns=(
                Column("carrier_id", "integer"),
                Column("name", "text"),
                Column("id_card_no", "text"),
                Column("role", "text"),
                Column("certificate_no", "text"),
                Column("certificate_expiry", "date"),
                Column("phone", "text"),
            ),
            unique_keys=(
                UniqueKey(
                    ("role", "certificate_no"),
                    "certificate_no",
                    "uq_crew_members_role_certificate_no",
                ),
                UniqueKey(
                    ("role", "id_card_no"),
                    "id_card_no",
                    "uq_crew_members_role_id_card_no",
                    shown="this id-card number",
                ),
            ),
            checks=(_in_carriers("carrier_id", "carrier_id"),),
            field_for_constraint={"fk_crew_members_carrier_id_enterprises": "carrier_id"},
            writers=("admin", "regulator", "enterprise"),
            dependents=(
                _refs("waybill (as driver)", "waybills", "driver_id"),
                _refs("waybill (as escort)", "waybills", "escort_id"),
            ),
        ),
    ),
)


def _point_json(column: str) -> str:
    return f"ST_AsGeoJSON({column}, 7)::json"


_WAYBILL_FKS: Final = (
    ("shipper_id", "enterprises"),
    ("carrier_id", "enterprises"),
    ("consignee_id", "enterprises"),
    ("loading_party_id", "enterprises"),
    ("origin_id", "enterprises"),
    ("destination_id", "enterprises"),
    ("vehicle_id", "vehicles"),
    ("driver_id", "crew_members"),
    ("escort_id", "crew_members"),
)

#: The states of a waybill whose load is at the loading bay or on the road.
_ON_THE_ROAD: Final = "('loading', 'in_transit')"

WAYBILLS = Layer(
    name="waybills",
    title="Electronic waybills",
    description="Hazmat shipments: parties, goods, vehicle, crew, planned route corridor and "
    "times, lifecycle state (planned, loading, in_transit, delivered, cancelled)",
    audience="carriage",
    from_sql="waybills t LEFT JOIN enterprises c ON c.id = t.carrier_id",
    # The feature is the planned route as given (a line, or the corridor polygon).
    geom_sql="t.geom",
    properties=(
        rest_prop("code", "t.code"),
        rest_prop("state", "t.state"),
        rest_prop("state_changed_at", "t.state_changed_at", "Date"),
        rest_prop("shipper_id", "t.shipper_id", "Number"),
        rest_prop("carrier_id", "t.carrier_id", "Number"),
        rest_prop("consignee_id", "t.consignee_id", "Number"),
        rest_prop("loading_party_id", "t.loading_party_id", "Number"),
        rest_prop("substance_name", "t.substance_name"),
        rest_prop("un_number", "t.un_number"),
        rest_prop("hazmat_class", "t.hazmat_class"),
        rest_prop("quantity_t", "t.quantity_t", "Number"),
        rest_prop("vehicle_id", "t.vehicle_id", "Number"),
        rest_prop("plate", "(SELECT v.plate FROM vehicles v WHERE v.id = t.vehicle_id)"),
        rest_prop("driver_id", "t.driver_id", "Number"),
        rest_prop("escort_id", "t.escort_id", "Number"),
        rest_prop("origin_id", "t.origin_id", "Number"),
        rest_prop("origin", _point_json("t.origin_geom"), "Object"),
        rest_prop("destination_id", "t.destination_id", "Number"),
        rest_prop("destination", _point_json("t.destination_geom"), "Object"),
        rest_prop("corridor_m", "t.corridor_m", "Number"),
        rest_prop("corridor", "ST_AsGeoJSON(t.corridor, 6)::json", "Object"),
        rest_prop("planned_departure", "t.planned_departure", "Date"),
        rest_prop("planned_arrival", "t.planned_arrival", "Date"),
        rest_prop("district", "c.district"),
    ),
    district_sql="c.district",
    enterprise_sql="t.carrier_id",
    depends_on=("waybills",),
    rest=Rest(
        noun="waybill",
        filters=(
            Filter("state", "t.state", str, vocab.WAYBILL_STATES),
            Filter("carrier_id", "t.carrier_id", int),
            Filter("vehicle_id", "t.vehicle_id", int),
            Filter("driver_id", "t.driver_id", int),
            Filter("code", "t.code", str),
            # ?from=&to=: the planned departure lies in [from, to).
            Filter("from", "t.planned_departure", dt.datetime, op=">="),
            Filter("to", "t.planned_departure", dt.datetime, op="<"),
            # ?active_from=&active_to=: what the map draws for a day (web/waybills.js) — a
            # waybill on the road (loading, in transit) whatever its dates, or one whose
            # planned departure–arrival span overlaps [active_from, active_to).
            Filter(
                "active_from",
                f"CASE WHEN t.state IN {_ON_THE_ROAD} THEN 'infinity'::timestamptz"
                " ELSE coalesce(t.planned_arrival, t.planned_departure) END",
                dt.datetime,
                op=">=",
                description="on the road, or planned to arrive at or after this time",
            ),
            Filter(
                "active_to",
                f"CASE WHEN t.state IN {_ON_THE_ROAD} THEN '-infinity'::timestamptz"
                " ELSE t.planned_departure END",
                dt.datetime,
                op="<",
                description="on the road, or planned to depart before this time",
            ),
        ),
        writes=Writes(
            table="waybills",
            model=props.WaybillProps,
            columns=(
                Column("code", "text"),
                Column("shipper_id", "integer"),
                Column("carrier_id", "integer"),
                Column("consignee_id", "integer"),
                Column("loading_party_id", "integer"),
                Column("substance_name", "text"),
                Column("un_number", "text"),
                Column("hazmat_class", "text"),
                Column("quantity_t", "float8"),
                Column("vehicle_id", "integer"),
                Column("driver_id", "integer"),
                Column("escort_id", "integer"),
                Column("origin_id", "integer"),
                Column("origin_lon", "float8", staging_only=True),
                Column("origin_lat", "float8", staging_only=True),
                Column("origin_geom", "geometry"),
                Column("destination_id", "integer"),
                Column("destination_lon", "float8", staging_only=True),
                Column("destination_lat", "float8", staging_only=True),
                Column("destination_geom", "geometry"),
                Column("corridor_m", "float8"),
                Column("corridor", "geometry"),
                Column("planned_departure", "timestamptz"),
                Column("planned_arrival", "timestamptz"),
                Column("geom", "geometry", geometry=True),
            ),
            unique_keys=(UniqueKey(("code",), "code", "uq_waybills_code"),),
            resolve_sql=(
                # Origin / destination: the point given, else the named enterprise's location.
                "UPDATE georisk_staging s SET"
                " origin_geom = CASE WHEN s.origin_lon IS NOT NULL"
                " THEN ST_SetSRID(ST_MakePoint(s.origin_lon, s.origin_lat), 4326)"
                " ELSE (SELECT e.geom FROM enterprises e WHERE e.id = s.origin_id) END,"
                " destination_geom = CASE WHEN s.destination_lon IS NOT NULL"
                " THEN ST_SetSRID(ST_MakePoint(s.destination_lon, s.destination_lat), 4326)"
                " ELSE (SELECT e.geom FROM enterprises e WHERE e.id = s.destination_id) END",
                # The corridor: a line buffered by corridor_m either side (on the spheroid), or
                # the polygon given.
                "UPDATE georisk_staging s SET corridor = ST_Multi(CASE"
                " WHEN GeometryType(s.geom) = 'LINESTRING'"
                " THEN ST_Buffer(s.geom::geography, s.corridor_m)::geometry ELSE s.geom END)"
                " WHERE GeometryType(s.geom) <> 'LINESTRING' OR s.corridor_m IS NOT NULL",
            ),
            checks=(
                StagedCheck(
                    field="corridor_m",
                    sql="SELECT s.ord, '' AS value FROM georisk_staging s WHERE s.corridor IS NULL",
                    reason="required for a LineString route (metres either side of the line)",
                ),
                _in_carriers("carrier_id", "carrier_id"),
                _exists("shipper_id", "enterprises", "id", "enterprise"),
                _exists("consignee_id", "enterprises", "id", "enterprise"),
                _exists("loading_party_id", "enterprises", "id", "enterprise"),
                _exists("origin_id", "enterprises", "id", "enterprise"),
                _exists("destination_id", "enterprises", "id", "enterprise"),
                StagedCheck(
                    field="vehicle_id",
                    sql=(
                        "SELECT s.ord, s.vehicle_id || ' is ' || CASE WHEN v.id IS NULL"
                        " THEN 'no vehicle' ELSE 'of carrier '"
                        " || coalesce(v.enterprise_id::text, v.carrier || ' (not linked)')"
                        " || ', not of carrier ' || s.carrier_id END AS value"
                        " FROM georisk_staging s LEFT JOIN vehicles v ON v.id = s.vehicle_id"
                        " WHERE v.id IS NULL OR v.enterprise_id IS DISTINCT FROM s.carrier_id"
                    ),
                    reason="vehicle {value}",
                ),
                StagedCheck(
                    field="quantity_t",
                    sql=(
                        "SELECT s.ord, s.quantity_t || ' t exceeds the approved load of vehicle '"
                        " || v.plate || ' (' || v.capacity_t || ' t)' AS value"
                        " FROM georisk_staging s JOIN vehicles v ON v.id = s.vehicle_id"
                        " WHERE s.quantity_t > v.capacity_t"
                    ),
                    reason="{value}",
                ),
                _crew_of_carrier("driver_id", "driver"),
                _crew_of_carrier("escort_id", "escort"),
            ),
            field_for_constraint={f"fk_waybills_{c}_{t}": c for c, t in _WAYBILL_FKS},
            # The carrier files its own waybills (its enterprise key); regulators may too.
            writers=("admin", "regulator", "enterprise"),
            # A point given as such stays a point; one lent by the enterprise follows it.
            current_sql=tuple(
                (f"{end}_{axis}", f"CASE WHEN t.{end}_id IS NULL THEN ST_{xy}(t.{end}_geom) END")
                for end in ("origin", "destination")
                for axis, xy in (("lon", "X"), ("lat", "Y"))
            ),
            # A waybill with a history is a record: it is cancelled, never deleted.
            dependents=(_refs("waybill event", "waybill_events", "waybill_id"),),
        ),
    ),
)

FIXES = Layer(
    name="fixes",
    title="Tanker fixes",
    description="Every stored GNSS fix (rolled up into hexagons on a schedule or on demand)",
    audience="transport",
    # Fixes are stored with their resolution-8 cell; other resolutions would re-index millions.
    hexagons=Hexagons(
        "fixes",
        "",
        "SELECT EXISTS (SELECT 1 FROM positions)",
        scored_by_count=True,
        fixed_res=8,
        minzoom=9,
    ),
)

#: Declaration order = tile drawing order (bottom first). Hexagon tile layers follow in the
#: order of ``HEXAGON_ORDER``.
LAYERS: Final[tuple[Layer, ...]] = (
    *BASE_LAYERS,
    DISTRICTS,
    ZONES,
    OVERLAY_ZONES,
    HAZARD_SOURCES,
    RISK_UNITS,
    PIPELINE_SEGMENTS,
    ENTERPRISES,
    MONITORING_POINTS,
    STOPS,
    ALERTS,
    TANKER_TRACKS,
    TANKERS,
    PIPELINES,
    CARRIERS,
    VEHICLES,
    CREW_MEMBERS,
    WAYBILLS,
    ALARMS,
    FIXES,
)
#: Hexagon tile layers are drawn in this order, above every feature layer.
HEXAGON_ORDER: Final = (
    "enterprises",
    "hazard_sources",
    "risk_units",
    "monitoring_points",
    "alarms",
    "overlay_zones",
    "fixes",
    "stops",
)
#: REST collections in this order (the OpenAPI document's tags).
COLLECTION_ORDER: Final = (
    "enterprises",
    "hazard_sources",
    "risk_units",
    "monitoring_points",
    "pipelines",
    "zones",
    "carriers",
    "vehicles",
    "crew_members",
    "waybills",
    "districts",
)
