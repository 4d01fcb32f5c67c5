"""TileJSON 3.0.0 documents and the catalog, generated from the layer registry.

``bounds`` and ``center`` come from the districts (the area the deployment covers), so QGIS and
MapLibre open on the city rather than on the whole world.
"""

from __future__ import annotations

from typing import Any

from layers.access.roles import FULL_VIEW, TileView
from layers.catalog import Catalog
from layers.catalog.tiles import TileLayer
from layers.core.colors import DISPLAY_HEX, LIVE_COLORS, MEANING

WORLD = (-180.0, -85.0511287798066, 180.0, 85.0511287798066)


def tile_url(base: str, names: str) -> str:
    return f"{base.rstrip('/')}/tiles/{names}/{{z}}/{{x}}/{{y}}.mvt"


def vector_layer(layer: TileLayer, view: TileView = FULL_VIEW) -> dict[str, Any]:
    return {
        "id": layer.name,
        "description": layer.description,
        "minzoom": layer.minzoom,
        "maxzoom": layer.maxzoom,
        "fields": view.visible(layer.field_descriptions(), layer),
        "geometry_type": layer.geometry_type,
    }


def legend(layers: tuple[TileLayer, ...]) -> str:
    """TileJSON's ``legend``: what each coloured layer's colour means, in the four colours
    plus grey ("not assessed / offline"), from the layers' declarations."""
    scale = ", ".join(f"{name} {DISPLAY_HEX[name]} {MEANING[name]}" for name in LIVE_COLORS)
    parts = [f"{layer.title}: {layer.legend}" for layer in layers if layer.legend]
    return f"{'; '.join(parts)} ({scale})" if parts else ""


def tilejson(
    layers: tuple[TileLayer, ...],
    base: str,
    bounds: tuple[float, float, float, float] | None,
    query: str = "",
    view: TileView = FULL_VIEW,
) -> dict[str, Any]:
    names = ",".join(layer.name for layer in layers)
    west, south, east, north = bounds or WORLD
    minzoom = min(layer.minzoom for layer in layers)
    maxzoom = max(layer.maxzoom for layer in layers)
    center_zoom = max(minzoom, min(maxzoom, 10))
    url = tile_url(base, names) + (f"?{query}" if query else "")
    return {
        "tilejson": "3.0.0",
        "name": names,
        "description": "; ".join(f"{layer.title}: {layer.description}" for layer in layers),
        "version": "1.0.0",
        "scheme": "xyz",
        "tiles": [url],
        "minzoom": minzoom,
        "maxzoom": maxzoom,
        "bounds": [west, south, east, north],
        "center": [round((west + east) / 2, 6), round((south + north) / 2, 6), center_zoom],
        "attribution": "GeoRisk",
        "vector_layers": [vector_layer(layer, view) for layer in layers],
        "legend": legend(layers),
    }


def catalog(
    base: str,
    layers: Catalog,
    allowed: frozenset[str] | None = None,
    view: TileView = FULL_VIEW,
) -> dict[str, Any]:
    """Every layer the caller may request (``allowed``; None = all), fields as they see them."""
    return {
        "layers": [
            {
                "name": layer.name,
                "title": layer.title,
                "description": layer.description,
                "geometry_type": layer.geometry_type,
                "minzoom": layer.minzoom,
                "maxzoom": layer.maxzoom,
                "cache": layer.cache_class,
                "clustered_below": layer.cluster_below,
                "feature_cap": layer.feature_cap,
                "time": layer.time_window,
                "legend": layer.legend,
                "fields": view.visible(layer.fields, layer),
                "tilejson": f"{base.rstrip('/')}/tiles/{layer.name}.json",
                "tiles": tile_url(base, layer.name),
            }
            for layer in layers.tiles.values()
            if allowed is None or layer.name in allowed
        ],
        "style": f"{base.rstrip('/')}/styles/risk.json",
    }
