"""The REST view of a catalogue entry: which table, which columns, which filters — what
``layers/collections`` (read and write) and the collection routes use. Derived from
``layers/catalog/declarations.py``, never declared here.

Every identifier that ends up in SQL text comes from the catalogue (never from a request);
values are always bound parameters.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from layers.catalog.model import (
    Audience,
    Column,
    Filter,
    Layer,
    StagedCheck,
    UniqueKey,
)
from layers.catalog.props import LayerProps

__all__ = ["Collection", "Column", "Filter", "StagedCheck", "UniqueKey", "collection_of"]


@dataclass(frozen=True)
class Collection:
    name: str  # URL segment and CLI layer name (``hazard-sources``)
    layer: str  # the catalogue name (``hazard_sources``)
    table: str
    noun: str  # singular, for messages
    audience: Audience
    from_sql: str  # main table aliased ``t``
    geom_sql: str | None  # the feature geometry expression (None: no geometry at all)
    properties: tuple[tuple[str, str], ...]  # (JSON key, SQL expression)
    columns: tuple[Column, ...]
    model: type[LayerProps] | None  # None: read-only collection
    district_sql: str | None = None
    enterprise_sql: str | None = None  # the enterprise a row belongs to (access scoping)
    color_sql: str | None = None  # None until the risk engine stores colours for the layer
    filters: tuple[Filter, ...] = ()
    lateral_sql: str = ""  # joined only when the geometry is needed (vehicles' latest fix)
    unique_keys: tuple[UniqueKey, ...] = ()
    resolve_sql: tuple[str, ...] = ()  # UPDATEs run on the staging table before the checks
    checks: tuple[StagedCheck, ...] = ()
    after_insert_sql: tuple[str, ...] = ()
    fills_district: bool = False  # fill a missing district from the polygon holding the geometry
    field_for_constraint: dict[str, str] = field(default_factory=dict)
    writers: tuple[str, ...] | None = None  # roles allowed to create; None: audience default

    @property
    def stored_columns(self) -> tuple[Column, ...]:
        return tuple(c for c in self.columns if not c.staging_only)

    @property
    def writable(self) -> bool:
        return self.model is not None

    def filter_names(self) -> tuple[str, ...]:
        common = ("bbox", "limit", "offset", "district", "color")
        return common + tuple(f.name for f in self.filters)


def collection_of(layer: Layer) -> Collection:
    """The REST view of a layer that declares ``rest``."""
    rest = layer.rest
    if rest is None:
        raise ValueError(f"layer {layer.name} declares no REST collection")
    writes = rest.writes
    return Collection(
        name=layer.path,
        layer=layer.name,
        table=writes.table if writes else layer.from_sql.split()[0],
        noun=rest.noun,
        audience=layer.audience,
        from_sql=layer.from_sql,
        geom_sql=layer.geom_sql,
        properties=tuple((p.name, p.sql) for p in layer.properties if p.rest),
        columns=writes.columns if writes else (),
        model=writes.model if writes else None,
        district_sql=layer.district_sql,
        enterprise_sql=layer.enterprise_sql,
        color_sql=layer.color_sql,
        filters=rest.filters,
        lateral_sql=rest.lateral_sql,
        unique_keys=writes.unique_keys if writes else (),
        resolve_sql=writes.resolve_sql if writes else (),
        checks=writes.checks if writes else (),
        after_insert_sql=writes.after_insert_sql if writes else (),
        fills_district=writes.fills_district if writes else False,
        field_for_constraint=dict(writes.field_for_constraint) if writes else {},
        writers=writes.writers if writes else None,
    )
