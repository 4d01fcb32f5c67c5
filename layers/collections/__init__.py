"""REST collections of the catalogue (``layers/catalog``): reading (filters → GeoJSON) and
writing (the one insert path shared by POST and imports)."""

from layers.catalog.collections import Collection
from layers.collections.read import (
    FeaturePage,
    ListQuery,
    QueryError,
    get_feature,
    list_features,
    parse_list_query,
)
from layers.collections.write import StoreResult, store_records

__all__ = [
    "Collection",
    "FeaturePage",
    "ListQuery",
    "QueryError",
    "StoreResult",
    "get_feature",
    "list_features",
    "parse_list_query",
    "store_records",
]
