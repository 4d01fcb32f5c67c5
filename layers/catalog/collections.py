"""The REST view of a catalogue entry: which table, which columns, which filters — what
``layers/collections`` (read and write) and the collection routes use. Derived from
``layers/catalog/declarations.py``, never declared here.

Every identifier that ends up in SQL text comes from the catalogue (never from a request);
values are always bound parameters.
"""

from __future__ import annotations

from dataclasses import dataclass

from layers.catalog.model import (
    Audience,
    Column,
    Filter,
    Layer,
    Reference,
    StagedCheck,
    UniqueKey,
    Writes,
)
from layers.catalog.props import LayerProps

__all__ = [
    "Collection",
    "Column",
    "Filter",
    "Reference",
    "StagedCheck",
    "UniqueKey",
    "Writes",
    "collection_of",
]


class ReadOnlyCollection(ValueError):
    pass


@dataclass(frozen=True)
class Collection:
    name: str  # URL segment and CLI layer name (``hazard-sources``)
    layer: str  # the catalogue name (``hazard_sources``)
    noun: str  # singular, for messages
    audience: Audience
    from_sql: str  # main table aliased ``t``
    geom_sql: str | None  # the feature geometry expression (None: no geometry at all)
    properties: tuple[tuple[str, str], ...]  # (JSON key, SQL expression)
    district_sql: str | None = None
    enterprise_sql: str | None = None  # the enterprise a row belongs to (access scoping)
    color_sql: str | None = None  # None until the risk engine stores colours for the layer
    filters: tuple[Filter, ...] = ()
    lateral_sql: str = ""  # joined only when the geometry is needed (vehicles' latest fix)
    writes: Writes | None = None  # None: a read-only collection
    item_route: bool = True  # False: the item is served by a route of its own
    # (JSON key, SQL) of personal data as shown to readers who may not read it whole.
    masked: tuple[tuple[str, str], ...] = ()

    @property
    def writing(self) -> Writes:
        if self.writes is None:
            raise ReadOnlyCollection(f"{self.name} accept no new rows")
        return self.writes

    @property
    def writable(self) -> bool:
        return self.writes is not None

    @property
    def live_sql(self) -> str:
        """The predicate of rows still served ("" when the layer never retires rows)."""
        return "t.retired_at IS NULL" if self.writes is not None and self.writes.retires else ""

    @property
    def model(self) -> type[LayerProps] | None:
        return self.writes.model if self.writes is not None else None

    @property
    def writers(self) -> tuple[str, ...] | None:
        return self.writes.writers if self.writes is not None else None

    def filter_names(self) -> tuple[str, ...]:
        common = ("bbox", "limit", "offset", "district", "color")
        return common + tuple(f.name for f in self.filters)


def collection_of(layer: Layer) -> Collection:
    """The REST view of a layer that declares ``rest``."""
    rest = layer.rest
    if rest is None:
        raise ValueError(f"layer {layer.name} declares no REST collection")
    return Collection(
        name=layer.path,
        layer=layer.name,
        noun=rest.noun,
        audience=layer.audience,
        from_sql=layer.from_sql,
        geom_sql=layer.geom_sql,
        properties=tuple((p.name, p.sql) for p in layer.properties if p.rest),
        district_sql=layer.district_sql,
        enterprise_sql=layer.enterprise_sql,
        color_sql=layer.color_sql,
        filters=rest.filters,
        lateral_sql=rest.lateral_sql,
        writes=rest.writes,
        item_route=rest.item_route,
        masked=tuple((p.name, p.masked_sql) for p in layer.properties if p.rest and p.masked_sql),
    )
