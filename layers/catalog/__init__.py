"""The one catalogue of layers: each declared once (``declarations.py``), everything else derived.

:class:`Catalog` turns declarations into the views the rest of the house reads: tile layers (for
the tile engine, TileJSON, the style and the legend), REST collections (routes, reading,
writing, imports), hexagon rollups, and the dependency maps of change notices (which tile
layers a change invalidates, which hexagon layers it dirties). ``create_app(settings, catalog)``
takes one, so a deployment or a test can add a layer without touching the code that serves it.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from functools import cached_property

from layers.catalog.collections import Collection, collection_of
from layers.catalog.declarations import COLLECTION_ORDER, HEXAGON_ORDER, LAYERS
from layers.catalog.model import Hexagons, Layer, layer_name
from layers.catalog.tiles import TileLayer, hexagon_tile_layer_of, tile_layer_of

__all__ = ["CATALOG", "Catalog", "Collection", "Layer", "TileLayer"]


def _ordered(names: Iterable[str], preferred: Sequence[str]) -> list[str]:
    """``names`` in the ``preferred`` order; any others after, as declared."""
    names = list(names)
    rank = {n: i for i, n in enumerate(preferred)}
    return sorted(names, key=lambda n: (rank.get(n, len(rank)), names.index(n)))


class DuplicateLayer(ValueError):
    pass


class Catalog:
    """An ordered set of layers and the views derived from them (computed once, read-only)."""

    def __init__(self, layers: Iterable[Layer]) -> None:
        self.layers: dict[str, Layer] = {}
        for layer in layers:
            if layer.name in self.layers:
                raise DuplicateLayer(f"layer {layer.name!r} is declared twice")
            self.layers[layer.name] = layer

    def with_layers(self, *extra: Layer) -> Catalog:
        """This catalogue plus ``extra`` (a deployment's own layers, a test's throwaway one)."""
        return Catalog([*self.layers.values(), *extra])

    def layer(self, text: str) -> Layer | None:
        """A layer by either spelling (``hazard-sources`` or ``hazard_sources``)."""
        return self.layers.get(layer_name(text))

    @cached_property
    def tiles(self) -> dict[str, TileLayer]:
        """Tile layers in drawing order: feature layers as declared, then hexagon layers."""
        out = {n: tile_layer_of(la) for n, la in self.layers.items() if la.tiles is not None}
        for name in self.hexagons:
            tile = hexagon_tile_layer_of(self.layers[name])
            out[tile.name] = tile
        return out

    @cached_property
    def collections(self) -> dict[str, Collection]:
        """REST collections keyed by URL segment (``hazard-sources``)."""
        names = [n for n, la in self.layers.items() if la.rest is not None]
        return {
            coll.name: coll
            for coll in (collection_of(self.layers[n]) for n in _ordered(names, COLLECTION_ORDER))
        }

    def collection(self, text: str) -> Collection | None:
        """A collection by either spelling."""
        layer = self.layer(text)
        return self.collections.get(layer.path) if layer is not None else None

    @cached_property
    def hexagons(self) -> dict[str, Hexagons]:
        """Hexagon rollups keyed by layer name."""
        names = [n for n, la in self.layers.items() if la.hexagons is not None]
        return {n: h for n in _ordered(names, HEXAGON_ORDER) if (h := self.layers[n].hexagons)}

    def tile_layers_for_change(self, changed: str) -> list[TileLayer]:
        """Tile layers whose tiles a change notice for ``changed`` invalidates."""
        return [t for t in self.tiles.values() if changed in t.change_layers]

    def hex_layers_for_change(self, changed: str) -> tuple[str, ...]:
        """Hexagon rollups a change notice for ``changed`` makes stale."""
        return tuple(
            n
            for n, la in self.layers.items()
            if la.hexagons is not None and changed in la.depends_on
        )

    @cached_property
    def refreshed_hex_layers(self) -> tuple[str, ...]:
        """Hexagon rollups kept fresh by change notices (the others are scheduled: fixes)."""
        return tuple(n for n in self.hexagons if self.layers[n].depends_on)


#: The catalogue GeoRisk serves.
CATALOG = Catalog(LAYERS)
