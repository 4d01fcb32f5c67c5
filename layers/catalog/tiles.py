"""The tile view of a catalogue entry: what the tile engine, TileJSON, the style and the legend
read. Derived from ``layers/catalog/declarations.py``, never declared here.

A tile layer says where its rows come from, which zooms it is drawn at, which properties a tile
carries (SQL expression + TileJSON field type), which expression gives its colour, how long it
may be cached, and how it is generalised: grid clusters below a zoom (count + **worst** colour,
never an average, docs/domain.md §2.6), simplification of lines/polygons at low zoom, a per-tile
feature cap taken in risk order (red first) so a red site never silently vanishes.

Every identifier that reaches SQL comes from the catalogue; request values are always bound
parameters (``%(name)s``). Sub-query sources may use the tile's envelope through the CTE ``b``
(``b.qenv``: the envelope with margin in EPSG:4326) and the bound time parameters
``%(t_from)s`` / ``%(t_to)s`` that the tile engine fills in for layers with a ``time_window``;
sources and ``where_sql`` may use the tile's zoom ``%(z)s`` (the base map's road classes).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Final

from layers.catalog.model import (
    Audience,
    CacheClass,
    FieldType,
    GeometryType,
    Layer,
    Prop,
    TimeWindow,
)
from layers.core.colors import LIVE_COLORS

#: SQL array of colours worst first; ``array_position`` over it is a colour's rank (1 = red).
COLOR_ARRAY_SQL: Final = "ARRAY[" + ", ".join(f"'{c}'" for c in LIVE_COLORS) + "]"
#: Rank given to features without a colour: after grey.
NO_COLOR_RANK: Final = len(LIVE_COLORS) + 1
#: Prefix of the hexagon tile layer of a rolled-up layer (``h3_enterprises``).
H3_PREFIX: Final = "h3_"


def hexagon_notice(layer: str) -> str:
    """The change notice a rollup of ``layer`` sends (and its hexagon tile layer listens to)."""
    return f"{H3_PREFIX}{layer}"


def color_rank_sql(color_sql: str) -> str:
    """Rank of a colour expression, red 1 … grey 5, none last — the order caps keep."""
    return f"coalesce(array_position({COLOR_ARRAY_SQL}, {color_sql}), {NO_COLOR_RANK})"


@dataclass(frozen=True)
class TileLayer:
    name: str
    title: str
    description: str
    from_sql: str  # table or "(sub-query) t", aliased t
    geom_sql: str  # geometry expression, in ``srid``
    geometry_type: GeometryType
    properties: tuple[Prop, ...]
    audience: Audience = "city"
    public: bool = False
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
    # Access (layers/access/roles.py decides who gets which view): the district and the
    # enterprise a row belongs to, and the properties a redacted (tile reader) view leaves out.
    district_sql: str | None = None
    enterprise_sql: str | None = None
    sensitive: tuple[str, ...] = ()
    order_sql: str | None = None  # rank of an uncoloured layer's features (1 first)
    announce: bool = True  # on the live map's change feed (geo_api/map_changes.py)

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
        if self.color_sql:
            return color_rank_sql(self.color_sql)
        return f"({self.order_sql})" if self.order_sql else str(NO_COLOR_RANK)


def h3_resolution(layer: TileLayer, zoom: int) -> int:
    """H3 resolution for a zoom: a hexagon spans roughly 20–40 px (res 8 at z12, §2.6)."""
    if layer.h3_fixed_res is not None:
        return layer.h3_fixed_res
    return max(5, min(10, zoom - 4))


def tile_layer_of(layer: Layer) -> TileLayer:
    """The tile view of a layer that declares ``tiles``."""
    spec = layer.tiles
    if spec is None or layer.geom_sql is None or layer.geometry_type is None:
        raise ValueError(f"layer {layer.name} declares no tiles or no geometry")
    return TileLayer(
        name=layer.name,
        title=layer.title,
        description=layer.description,
        from_sql=layer.from_sql,
        geom_sql=layer.geom_sql,
        geometry_type=layer.geometry_type,
        properties=tuple(p for p in layer.properties if p.tiles),
        audience=layer.audience,
        public=spec.public,
        minzoom=spec.minzoom,
        maxzoom=spec.maxzoom,
        id_sql=layer.id_sql,
        srid=layer.srid,
        where_sql=layer.where_sql,
        color_sql=layer.color_sql,
        cache_class=spec.cache_class,
        feature_cap=spec.feature_cap,
        cluster_below=spec.cluster_below,
        simplify_below=spec.simplify_below,
        change_layers=layer.depends_on,
        time_window=spec.time_window,
        legend=layer.legend,
        district_sql=layer.district_sql,
        enterprise_sql=layer.enterprise_sql,
        sensitive=tuple(p.name for p in layer.properties if p.tiles and p.sensitive),
        order_sql=spec.order_sql,
        announce=spec.announce,
    )


def _color(what: str) -> Prop:
    return Prop("color", "t.color", "String", f"{what}: red, orange, yellow, blue (grey: offline)")


def hexagon_tile_layer_of(layer: Layer) -> TileLayer:
    """The hexagon tile layer of a layer that declares ``hexagons``: it reads ``h3_cells``.
    A rollup that changes cells sends the notice ``h3_<layer>`` with their bbox
    (``layers/risk/hexagons.py``), which purges these tiles like any other change."""
    spec = layer.hexagons
    if spec is None:
        raise ValueError(f"layer {layer.name} declares no hexagon rollup")
    title = layer.title
    return TileLayer(
        name=f"{H3_PREFIX}{layer.name}",
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
            _color("worst colour inside"),
        ),
        audience="transport" if layer.audience == "transport" else "city",
        public=spec.public,
        where_sql="t.layer = %(h3_layer)s AND t.res = %(h3_res)s",
        color_sql="t.color",
        minzoom=spec.minzoom,
        maxzoom=16,
        change_layers=(hexagon_notice(layer.name),),
        h3_layer=layer.name,
        h3_fixed_res=spec.fixed_res,
        legend="worst colour in the cell",
    )
