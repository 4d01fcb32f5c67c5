"""The MapLibre style (version 8) drawn from the registry and the four display colours.

One vector source per layer (each its own TileJSON, so zoom ranges stay per layer); colours come
from ``layers.core.colors.DISPLAY_HEX`` through a ``match`` on the ``color`` property, so the
map, the legend and the tiles can never disagree. No glyphs are referenced, so the style works
offline.
"""

from __future__ import annotations

from typing import Any

from layers.catalog import Catalog
from layers.catalog.tiles import TileLayer
from layers.core.colors import DISPLAY_HEX, LIVE_COLORS, MEANING
from tiles.tilejson import tile_url

#: Colour of features without a risk colour (districts, zones, tracks).
NEUTRAL = "#607D8B"


def color_expr() -> list[Any]:
    expr: list[Any] = ["match", ["get", "color"]]
    for name in LIVE_COLORS:
        expr += [name, DISPLAY_HEX[name]]
    return [*expr, NEUTRAL]


#: The base map's look (issue 19; web/basemap.js draws the same for the browser): neutral
#: tones, so nothing in the base can be mistaken for a risk colour. Road class → colour, width.
ROAD_STYLE: dict[str, tuple[str, float]] = {
    "expressway": ("#6d5d4b", 4.0),
    "arterial": ("#a08f7c", 2.5),
    "local": ("#bcae9c", 1.4),
}
AREA_STYLE: dict[str, str] = {
    "water_source": "#b9d8f0",
    "chemical_park": "#e4dcf0",
    "residential": "#efe6d5",
}
BOUNDARY_COLOR = "#8e7fa8"


def _match(prop: str, values: dict[str, Any], default: Any) -> list[Any]:
    expr: list[Any] = ["match", ["get", prop]]
    for key, value in values.items():
        expr += [key, value]
    return [*expr, default]


def _draw_base(layer: TileLayer, base: dict[str, Any]) -> list[dict[str, Any]]:
    """The base map's layers; label points are listed but hidden, since text needs glyphs and
    this style references none (it works offline): a client adds its own text symbols."""
    if layer.name == "base_roads":
        colors = {k: c for k, (c, _) in ROAD_STYLE.items()}
        widths = {k: w for k, (_, w) in ROAD_STYLE.items()}
        return [{**base, "id": layer.name, "type": "line",
                 "paint": {"line-color": _match("road_class", colors, NEUTRAL),
                           "line-width": _match("road_class", widths, 1)},
                 "layout": {"line-cap": "round"}}]  # fmt: skip
    if layer.name == "base_areas":
        return [{**base, "id": layer.name, "type": "fill",
                 "paint": {"fill-color": _match("kind", AREA_STYLE, "#eeeeee"),
                           "fill-opacity": 0.8}}]  # fmt: skip
    if layer.geometry_type == "point":
        return [{**base, "id": layer.name, "type": "circle",
                 "paint": {"circle-color": "#4a3f5c", "circle-radius": 2}}]  # fmt: skip
    paint = {"line-color": BOUNDARY_COLOR, "line-width": 2, "line-opacity": 0.6}
    return [{**base, "id": layer.name, "type": "line", "paint": paint}]


def _draw(layer: TileLayer) -> list[dict[str, Any]]:
    base = {"source": layer.name, "source-layer": layer.name, "minzoom": layer.minzoom}
    if layer.name.startswith(BASE_PREFIX):
        return _draw_base(layer, base)
    paint_color: Any = color_expr() if layer.color_sql else NEUTRAL
    if layer.geometry_type == "point":
        radius: Any = 5
        if layer.cluster_below is not None:
            # Clusters grow with their count; single points keep the base size.
            radius = ["interpolate", ["linear"], ["coalesce", ["get", "count"], 1],
                      1, 5, 10, 9, 100, 14, 1000, 20]  # fmt: skip
        return [{
            **base, "id": layer.name, "type": "circle",
            "paint": {"circle-color": paint_color, "circle-radius": radius,
                      "circle-stroke-color": "#ffffff", "circle-stroke-width": 1},
            # Red drawn last, on top: a red site is never hidden under blue neighbours.
            "layout": {"circle-sort-key": ["match", ["get", "color"],
                                           "red", 4, "orange", 3, "yellow", 2, "blue", 1, 0]},
        }]  # fmt: skip
    if layer.geometry_type == "line":
        return [{
            **base, "id": layer.name, "type": "line",
            "paint": {"line-color": paint_color, "line-width": 3 if layer.color_sql else 1.5},
        }]  # fmt: skip
    opacity = 0.35 if layer.color_sql else 0.12
    return [
        {**base, "id": f"{layer.name}-fill", "type": "fill",
         "paint": {"fill-color": paint_color, "fill-opacity": opacity}},
        {**base, "id": f"{layer.name}-outline", "type": "line",
         "paint": {"line-color": paint_color, "line-width": 1}},
    ]  # fmt: skip


#: Layers shown when the style loads; the rest are in the style but hidden.
VISIBLE = (
    *("base_boundaries", "base_areas", "base_roads"),
    *("districts", "overlay_zones", "pipeline_segments", "hazard_sources", "risk_units"),
    "enterprises",
)
#: Tile layers of the base map (``layers/catalog/declarations.py``, drawn first).
BASE_PREFIX = "base_"


def risk_style(
    base: str, catalog: Catalog, allowed: frozenset[str] | None = None, query: str = ""
) -> dict[str, Any]:
    """The style over the layers the caller may request (``allowed``; None = all); ``query``
    (a tile token, ``t=…``) is carried into the tile URLs. Sources list their tiles inline
    rather than pointing at a TileJSON, so the token is only ever needed on tile URLs."""
    chosen = [t for t in catalog.tiles.values() if allowed is None or t.name in allowed]
    suffix = f"?{query}" if query else ""
    sources = {
        layer.name: {
            "type": "vector",
            "tiles": [tile_url(base, layer.name) + suffix],
            "minzoom": layer.minzoom,
            "maxzoom": layer.maxzoom,
            "attribution": "GeoRisk",
        }
        for layer in chosen
    }
    layers: list[dict[str, Any]] = [
        {"id": "background", "type": "background", "paint": {"background-color": "#f4f4f0"}}
    ]
    for layer in chosen:
        for drawn in _draw(layer):
            visible = layer.name in VISIBLE
            drawn.setdefault("layout", {})["visibility"] = "visible" if visible else "none"
            layers.append(drawn)
    return {
        "version": 8,
        "name": "GeoRisk four-colour risk map",
        "metadata": {
            "georisk:legend": {name: DISPLAY_HEX[name] for name in LIVE_COLORS},
            "georisk:meaning": dict(MEANING),
        },
        "sources": sources,
        "layers": layers,
    }
