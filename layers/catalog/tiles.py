"""The declarative registry of map layers: tiles, TileJSON, legend and style are generated from it.

Each entry says where a layer's rows come from (a table or a sub-query, with its geometry
expression), which zooms it is drawn at, which properties a tile carries (SQL expression +
TileJSON field type), which expression gives its colour, how long it may be cached, and how it
is generalised: grid clusters below a zoom (count + **worst** colour, never an average,
docs/domain.md §2.6), simplification of lines/polygons at low zoom, a per-tile feature cap taken in
risk order (red first) so a red site never silently vanishes.

Every identifier that reaches SQL comes from here; request values are always bound parameters
(``%(name)s``). Sub-query sources may use the tile's envelope through the CTE ``b``
(``b.qenv``: the envelope with margin in EPSG:4326) and the bound time parameters
``%(t_from)s`` / ``%(t_to)s`` that the tile engine fills in for layers with a ``time_window``.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Final, Literal

from layers.core.colors import LIVE_COLORS

GeometryType = Literal["point", "line", "polygon"]
FieldType = Literal["String", "Number", "Boolean"]
CacheClass = Literal["static", "live"]
#: ``none``: no query parameters; ``window``: ``?from=&to=`` (tracks); ``at``: ``?at=`` (latest).
TimeWindow = Literal["none", "window", "at"]

#: SQL array of colours worst first; ``array_position`` over it is a colour's rank (1 = red).
COLOR_ARRAY_SQL: Final = "ARRAY[" + ", ".join(f"'{c}'" for c in LIVE_COLORS) + "]"
#: Rank given to features without a colour: after grey.
NO_COLOR_RANK: Final = len(LIVE_COLORS) + 1


def color_rank_sql(color_sql: str) -> str:
    """Rank of a colour expression, red 1 … grey 5, none last — the order caps keep."""
    return f"coalesce(array_position({COLOR_ARRAY_SQL}, {color_sql}), {NO_COLOR_RANK})"


@dataclass(frozen=True)
class Prop:
    """One tile property: its name in the tile, the SQL expression and the TileJSON type."""

    name: str
    sql: str
    type: FieldType
    description: str = ""


@dataclass(frozen=True)
class TileLayer:
    name: str
    title: str
    description: str
    from_sql: str  # table or "(sub-query) t", aliased t
    geom_sql: str  # geometry expression, in ``srid``
    geometry_type: GeometryType
    properties: tuple[Prop, ...]
    minzoom: int = 0
    maxzoom: int = 22
    id_sql: str = "t.id"  # stable integer feature id
    srid: int = 4326
    where_sql: str = ""  # constant predicate ANDed to the spatial filter
    color_sql: str | None = None  # expression giving a LIVE_COLORS name
    cache_class: CacheClass = "static"
    feature_cap: int | None = None  # max features per tile (risk order, red first)
    cluster_below: int | None = None  # points: grid clusters at zooms below this
    simplify_below: int | None = None  # lines/polygons: simplified at zooms below this
    change_layers: tuple[str, ...] = ()  # NOTIFY layer names that invalidate this layer
    time_window: TimeWindow = "none"
    h3_layer: str | None = None  # reads h3_cells of this layer, resolution from zoom
    h3_fixed_res: int | None = None  # a layer rolled up at one resolution only (fixes)
    legend: str = ""  # what the colour means, for the legend
    # Access (layers/access/roles.py decides who gets which view): the district and the enterprise a
    # row belongs to, and the properties a redacted (tile reader) view leaves out.
    district_sql: str | None = None
    enterprise_sql: str | None = None
    sensitive: tuple[str, ...] = ()

    @property
    def fields(self) -> dict[str, FieldType]:
        """Property name → TileJSON type; clustered layers also carry ``count``."""
        out: dict[str, FieldType] = {p.name: p.type for p in self.properties}
        if self.cluster_below is not None:
            out["count"] = "Number"
        return out

    def field_descriptions(self) -> dict[str, str]:
        out = {p.name: f"{p.type}: {p.description}".rstrip(": ") for p in self.properties}
        if self.cluster_below is not None:
            out["count"] = (
                f"Number: features in a grid cluster (zooms below {self.cluster_below}); "
                "a cluster's color is the worst of its members"
            )
        return out

    @property
    def rank_sql(self) -> str:
        return color_rank_sql(self.color_sql) if self.color_sql else str(NO_COLOR_RANK)


def h3_resolution(layer: TileLayer, zoom: int) -> int:
    """H3 resolution for a zoom: a hexagon spans roughly 20–40 px (res 8 at z12, DOMAIN §2.6)."""
    if layer.h3_fixed_res is not None:
        return layer.h3_fixed_res
    return max(5, min(10, zoom - 4))


def _color(name: str = "color", sql: str = "t.color", what: str = "risk colour") -> Prop:
    return Prop(name, sql, "String", f"{what}: red, orange, yellow, blue (grey: offline)")


ENTERPRISES = TileLayer(
    name="enterprises",
    title="Enterprises",
    description="Supervised enterprises; colour = dynamic colour (MEM 2018 rating + live facts)",
    from_sql="enterprises t",
    geom_sql="t.geom",
    geometry_type="point",
    properties=(
        Prop("id", "t.id", "Number", "enterprise id"),
        Prop("name", "t.name", "String"),
        Prop("category", "t.category", "String"),
        Prop("district", "t.district", "String"),
        _color("color", "coalesce(t.dynamic_color, t.inherent_color)", "dynamic colour"),
        _color("inherent_color", "t.inherent_color", "inherent colour"),
        _color("dynamic_color", "t.dynamic_color", "dynamic colour"),
    ),
    color_sql="coalesce(t.dynamic_color, t.inherent_color)",
    minzoom=6,
    cluster_below=12,
    feature_cap=4000,
    change_layers=("enterprises",),
    legend="dynamic risk colour",
    district_sql="t.district",
    enterprise_sql="t.id",
)

#: A unit's substance inventory, e.g. "液氯 12.5/5 t; 氨 3/10 t" (q / Q in tonnes).
_INVENTORY_SQL = (
    "(SELECT string_agg(s.name || ' ' || round(s.q::numeric, 3)::text"
    " || coalesce('/' || round(s.critical_q::numeric, 3)::text, '') || ' t', '; ' ORDER BY s.id)"
    " FROM hazard_source_substances s WHERE s.hazard_source_id = t.id)"
)

HAZARD_SOURCES = TileLayer(
    name="hazard_sources",
    title="Major hazard sources",
    description="GB 18218-2018 units; grade 1→red, 2→orange, 3→yellow, 4→blue",
    from_sql="hazard_sources t",
    geom_sql="t.geom",
    geometry_type="polygon",
    properties=(
        Prop("id", "t.id", "Number", "hazard source id"),
        Prop("enterprise_id", "t.enterprise_id", "Number"),
        Prop("code", "t.code", "String"),
        Prop("unit_name", "t.unit_name", "String"),
        Prop("grade", "t.grade", "Number", "GB 18218 grade 1–4"),
        Prop("R", "round(t.r_value::numeric, 2)::float8", "Number", "GB 18218 R value"),
        Prop("substances", _INVENTORY_SQL, "String", "inventory: name q/Q t; …"),
        _color(),
    ),
    color_sql="t.color",
    minzoom=9,
    simplify_below=14,
    change_layers=("hazard_sources",),
    legend="GB 18218 grade",
    district_sql="(SELECT e.district FROM enterprises e WHERE e.id = t.enterprise_id)",
    enterprise_sql="t.enterprise_id",
    sensitive=("R", "substances"),  # R is Σ βq/Q: the inventory in one number
)

MONITORING_POINTS = TileLayer(
    name="monitoring_points",
    title="Monitoring points",
    description="Live sensors; colour = live alarm level, grey = offline",
    from_sql="monitoring_points t",
    geom_sql="t.geom",
    geometry_type="point",
    properties=(
        Prop("id", "t.id", "Number", "monitoring point id"),
        Prop("code", "t.code", "String"),
        Prop("kind", "t.kind", "String"),
        Prop("hazard_source_id", "t.hazard_source_id", "Number"),
        _color("color", "t.live_color", "live level"),
    ),
    color_sql="t.live_color",
    minzoom=10,
    cluster_below=14,
    cache_class="live",
    change_layers=("monitoring_points", "alarms"),
    legend="live alarm level",
    district_sql=(
        "coalesce((SELECT e.district FROM hazard_sources h JOIN enterprises e"
        " ON e.id = h.enterprise_id WHERE h.id = t.hazard_source_id),"
        " (SELECT pl.district FROM pipelines pl WHERE pl.id = t.pipeline_id))"
    ),
    enterprise_sql="(SELECT h.enterprise_id FROM hazard_sources h WHERE h.id = t.hazard_source_id)",
)

PIPELINE_SEGMENTS = TileLayer(
    name="pipeline_segments",
    title="Pipelines",
    description="Pipelines cut into ≤ 500 m segments, each coloured by its own risk",
    from_sql="pipeline_segments t JOIN pipelines p ON p.id = t.pipeline_id",
    geom_sql="t.geom",
    geometry_type="line",
    properties=(
        Prop("id", "t.id", "Number", "segment id"),
        Prop("pipeline_id", "t.pipeline_id", "Number"),
        Prop("code", "p.code", "String", "pipeline code"),
        Prop("substance", "p.substance", "String"),
        Prop("seq", "t.seq", "Number"),
        _color(),
    ),
    color_sql="t.color",
    minzoom=8,
    simplify_below=14,
    change_layers=("pipeline_segments", "pipelines"),
    legend="segment risk colour",
    district_sql="p.district",
    sensitive=("substance",),
)

OVERLAY_ZONES = TileLayer(
    name="overlay_zones",
    title="Consequence zones",
    description="Consequence zones dissolved per colour; overlaps take the worst colour",
    from_sql="overlay_zones t",
    geom_sql="t.geom",
    geometry_type="polygon",
    properties=(Prop("id", "t.id", "Number", "overlay polygon id"), _color()),
    color_sql="t.color",
    minzoom=8,
    simplify_below=15,
    change_layers=("overlay_zones",),
    legend="worst consequence colour",
)

DISTRICTS = TileLayer(
    name="districts",
    title="Districts",
    description="Administrative districts",
    from_sql="districts t",
    geom_sql="t.geom",
    geometry_type="polygon",
    properties=(
        Prop("id", "t.id", "Number", "district id"),
        Prop("code", "t.code", "String"),
        Prop("name", "t.name", "String"),
        Prop("name_en", "t.name_en", "String"),
    ),
    minzoom=0,
    simplify_below=16,
    change_layers=("districts",),
)

ZONES = TileLayer(
    name="zones",
    title="Protected targets and zones",
    description="Schools, hospitals, residential areas, water sources, parking lots, parks",
    from_sql="zones t",
    geom_sql="t.geom",
    geometry_type="polygon",
    properties=(
        Prop("id", "t.id", "Number", "zone id"),
        Prop("name", "t.name", "String"),
        Prop("kind", "t.kind", "String"),
        Prop("district", "t.district", "String"),
        Prop("max_dwell_s", "t.max_dwell_s", "Number"),
    ),
    minzoom=10,
    simplify_below=15,
    change_layers=("zones",),
)

#: Latest fix per vehicle read backwards on the (vehicle_id, ts) primary key, at most
#: ``latest_max_age`` old (``t_from``) and not after ``?at=`` (``t_to``, default now).
_LATEST_SQL = (
    "(SELECT v.id, v.plate, v.carrier, v.un_number, lp.ts, lp.lon, lp.lat, lp.speed_kmh,"
    " lp.heading FROM vehicles v CROSS JOIN LATERAL (SELECT p.ts, p.lon, p.lat, p.speed_kmh,"
    " p.heading FROM positions p WHERE p.vehicle_id = v.id AND p.ts > %(t_from)s"
    " AND p.ts <= %(t_to)s ORDER BY p.ts DESC LIMIT 1) lp) t"
)

TANKERS = TileLayer(
    name="tankers",
    title="Hazmat tankers (latest position)",
    description="Each tanker's latest fix (at most GEORISK_TILES_LATEST_MAX_AGE_H old, ?at= "
    "to replay)",
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
    minzoom=8,
    cluster_below=11,
    cache_class="live",
    time_window="at",
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

TANKER_TRACKS = TileLayer(
    name="tanker_tracks",
    title="Hazmat tanker tracks",
    description="Tracks in a time window ?from=&to= (ISO 8601; default the last hour)",
    from_sql=_TRACKS_SQL,
    geom_sql="ST_SetSRID(t.geom, 4326)",
    geometry_type="line",
    properties=(
        Prop("id", "t.id", "Number", "vehicle id"),
        Prop("fixes", "t.fixes", "Number", "fixes inside the tile"),
        Prop("max_speed_kmh", "t.max_speed::float8", "Number"),
    ),
    minzoom=10,
    simplify_below=15,
    feature_cap=3000,
    cache_class="live",
    time_window="window",
)

STOPS = TileLayer(
    name="stops",
    title="Tanker stops",
    description="Detected stops (≥ 180 s within 200 m); open stops have no end",
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
    minzoom=10,
    cluster_below=13,
    cache_class="live",
    change_layers=("stops",),
)

#: CAP severity → the four colours (extreme red … minor blue).
_SEVERITY_COLOR = (
    "CASE t.severity WHEN 'extreme' THEN 'red' WHEN 'severe' THEN 'orange'"
    " WHEN 'moderate' THEN 'yellow' ELSE 'blue' END"
)

ALERTS = TileLayer(
    name="alerts",
    title="Geofence alerts",
    description="Tanker alerts (illegal parking, overspeed); colour from CAP severity",
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
        _color("color", _SEVERITY_COLOR, "severity colour"),
    ),
    color_sql=_SEVERITY_COLOR,
    minzoom=8,
    cluster_below=12,
    feature_cap=5000,
    cache_class="live",
    change_layers=("alerts",),
    legend="CAP severity",
    district_sql="t.district",
    enterprise_sql="t.enterprise_id",
)


def _h3(layer: str, title: str, fixed_res: int | None = None, minzoom: int = 5) -> TileLayer:
    """A hexagon rollup layer; rollups are rewritten without a NOTIFY, hence live caching."""
    return TileLayer(
        name=f"h3_{layer}",
        title=f"Hexagons: {title}",
        description=f"H3 rollup of {title.lower()} (resolution 5–10 from zoom): count, worst "
        "colour, score",
        from_sql="h3_cells t",
        geom_sql="t.geom",
        geometry_type="polygon",
        id_sql="('x' || lpad(t.h3, 16, '0'))::bit(64)::bigint",
        properties=(
            Prop("h3", "t.h3", "String", "H3 cell"),
            Prop("res", "t.res", "Number", "H3 resolution"),
            Prop("count", "t.count", "Number"),
            Prop("score", "round(t.score::numeric, 3)::float8", "Number", "ranking score"),
            _color("color", "t.color", "worst colour inside"),
        ),
        where_sql="t.layer = %(h3_layer)s AND t.res = %(h3_res)s",
        color_sql="t.color",
        minzoom=minzoom,
        maxzoom=16,
        cache_class="live",
        h3_layer=layer,
        h3_fixed_res=fixed_res,
        legend="worst colour in the cell",
    )


H3_LAYERS: Final = (
    _h3("enterprises", "Enterprises"),
    _h3("hazard_sources", "Hazard sources"),
    _h3("monitoring_points", "Monitoring points"),
    _h3("alarms", "Open alarms"),
    _h3("overlay_zones", "Consequence zones"),
    # Fixes are stored with their resolution-8 cell; other resolutions would re-index millions.
    _h3("fixes", "Tanker fixes", fixed_res=8, minzoom=9),
    _h3("stops", "Stops"),
)

TILE_LAYERS: Final[dict[str, TileLayer]] = {
    layer.name: layer
    for layer in (
        DISTRICTS,
        ZONES,
        OVERLAY_ZONES,
        HAZARD_SOURCES,
        PIPELINE_SEGMENTS,
        ENTERPRISES,
        MONITORING_POINTS,
        STOPS,
        ALERTS,
        TANKER_TRACKS,
        TANKERS,
        *H3_LAYERS,
    )
}


def layers_for_change(changed: str) -> list[TileLayer]:
    """Tile layers whose tiles a ``NOTIFY georisk_changes`` for ``changed`` invalidates."""
    return [layer for layer in TILE_LAYERS.values() if changed in layer.change_layers]
