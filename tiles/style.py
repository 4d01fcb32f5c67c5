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

#: Colour of features without a risk colour (districts, zones, tracks).
NEUTRAL = "#607D8B"


def color_expr() -> list[Any]:
    expr: list[Any] = ["match", ["get", "color"]]
    for name in LIVE_COLORS:
        expr += [name, DISPLAY_HEX[name]]
    return [*expr, NEUTRAL]


def _draw(layer: TileLayer) -> list[dict[str, Any]]:
    base = {"source": layer.name, "source-layer": layer.name, "minzoom": layer.minzoom}
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
    "districts",
    "overlay_zones",
    "pipeline_segments",
    "hazard_sources",
    "risk_units",
    "enterprises",
)


def risk_style(
    base: str, catalog: Catalog, allowed: frozenset[str] | None = None, query: str = ""
) -> dict[str, Any]:
    """The style over the layers the caller may request (``allowed``; None = all); ``query``
    (e.g. ``key=…`` for clients that cannot send headers) is carried into the TileJSON URLs."""
    root = base.rstrip("/")
    chosen = [t for t in catalog.tiles.values() if allowed is None or t.name in allowed]
    suffix = f"?{query}" if query else ""
    sources = {
        layer.name: {"type": "vector", "url": f"{root}/tiles/{layer.name}.json{suffix}"}
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
