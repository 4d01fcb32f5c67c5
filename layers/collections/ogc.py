"""Reading a collection the OGC API – Features way (Parts 1–3): the query parameters, the
queryables and the SQL of ``/ogc/collections/{id}/items``.

The rows are the REST collection's (``layers/catalog/collections.py``: the same table, the
same properties, the same row scope from ``layers/access/roles.py``); what is added is OGC's
vocabulary — ``bbox`` with ``bbox-crs``, ``crs`` for the output, ``datetime``, property
equality filters and CQL2 ``filter`` (``cql2.py``). As in ``read.py``, identifiers come from
the catalogue and values are bound parameters; the features are built by PostgreSQL.
"""

from __future__ import annotations

import datetime as dt
import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Final

from psycopg import AsyncConnection

from layers.catalog.collections import Collection
from layers.catalog.model import Layer, Prop
from layers.collections import cql2
from layers.collections.read import FeaturePage, QueryError, RowScope, fetch_one
from layers.core.crs import CRS84, CRSRejected, OgcCrs, ogc_crs

#: Parameters every items request may carry besides the queryables: OGC's, the ``offset`` of
#: our paging links, ``f`` (JSON is the only encoding) and the ``key`` GIS clients send.
PARAMETERS: Final = (
    "limit",
    "offset",
    "bbox",
    "bbox-crs",
    "crs",
    "datetime",
    "filter",
    "filter-lang",
    "filter-crs",
    "f",
    "key",
)
#: JSON Schema of each catalogue type (queryables). Objects (JSON) are not queryable.
_SCHEMA: Final = {
    "String": {"type": "string"},
    "Number": {"type": "number"},
    "Boolean": {"type": "boolean"},
    "Date": {"type": "string", "format": "date-time"},
}
_GEOMETRY_FORMAT: Final = {
    "point": "geometry-point-or-multipoint",
    "line": "geometry-linestring-or-multilinestring",
    "polygon": "geometry-polygon-or-multipolygon",
}


def feature_props(layer: Layer, redacted: bool = False) -> tuple[Prop, ...]:
    """The properties a caller's features carry: the REST ones, without the sensitive ones
    for a redacted view (the same rule as the tiles' ``TileView``)."""
    return tuple(p for p in layer.properties if p.rest and not (redacted and p.sensitive))


def queryables(layer: Layer, redacted: bool = False) -> dict[str, cql2.Queryable]:
    """What a filter may name: the caller's properties except JSON objects. A property the
    caller does not see is not queryable either (unknown, like any other name)."""
    return {
        p.name: cql2.Queryable(p.name, p.sql, p.type)
        for p in feature_props(layer, redacted)
        if p.type != "Object"
    }


def queryables_schema(layer: Layer, redacted: bool, href: str) -> dict[str, Any]:
    """``/queryables`` as JSON Schema (OGC API – Features Part 3)."""
    props: dict[str, Any] = {}
    if layer.geom_sql is not None:
        props[cql2.GEOMETRY] = {
            "title": "geometry",
            "format": _GEOMETRY_FORMAT.get(layer.geometry_type or "", "geometry-any"),
            "x-ogc-role": "primary-geometry",
        }
    described = {p.name: p.description for p in layer.properties if p.description}
    for name, q in queryables(layer, redacted).items():
        entry: dict[str, Any] = {"title": name, **_SCHEMA[q.type]}
        if name in described:
            entry["description"] = described[name]
        props[name] = entry
    return {
        "$schema": "https://json-schema.org/draft/2020-12/schema",
        "$id": href,
        "type": "object",
        "title": layer.title,
        "properties": props,
        "additionalProperties": False,
    }


@dataclass(frozen=True)
class Interval:
    """A ``datetime`` filter: inclusive bounds, either open (None)."""

    start: dt.datetime | None
    end: dt.datetime | None


@dataclass(frozen=True)
class ItemsQuery:
    limit: int
    offset: int = 0
    bbox: tuple[float, float, float, float] | None = None  # in ``bbox_crs``, x/y order
    bbox_crs: OgcCrs = CRS84
    crs: OgcCrs = CRS84
    datetime: Interval | None = None
    equals: dict[str, Any] = field(default_factory=dict)
    filter: cql2.SqlFilter | None = None
    scope: RowScope = field(default_factory=RowScope)


def _crs(name: str, text: str | None) -> OgcCrs:
    try:
        return ogc_crs(text)
    except CRSRejected as exc:
        raise QueryError(name, str(exc)) from None


def _int(name: str, text: str, low: int, high: int) -> int:
    try:
        value = int(text)
    except ValueError:
        raise QueryError(name, f"{text!r} is not an integer") from None
    if not low <= value <= high:
        raise QueryError(name, f"must be between {low} and {high}")
    return value


def parse_bbox(text: str, crs: OgcCrs) -> tuple[float, float, float, float]:
    """``bbox`` (4 numbers, or 6 with heights) in ``crs``'s axis order → x/y order."""
    parts = text.split(",")
    if len(parts) not in (4, 6):
        raise QueryError("bbox", "expected four numbers (lower corner, upper corner)")
    try:
        numbers = [float(p) for p in parts]
    except ValueError:
        raise QueryError("bbox", f"{text!r} is not four numbers") from None
    if not all(math.isfinite(v) for v in numbers):
        raise QueryError("bbox", "numbers must be finite")
    if len(numbers) == 6:
        numbers = [numbers[0], numbers[1], numbers[3], numbers[4]]
    minx, miny, maxx, maxy = crs.box((numbers[0], numbers[1], numbers[2], numbers[3]))
    if minx >= maxx or miny >= maxy:
        raise QueryError("bbox", "the lower corner must lie below and left of the upper one")
    if not crs.within((minx, miny, maxx, maxy)):
        order = "lat,lon" if crs.lat_first else "x,y"
        raise QueryError("bbox", f"outside the area of {crs.uri} (corners in {order} order)")
    return minx, miny, maxx, maxy


def _moment(text: str) -> dt.datetime:
    value = dt.datetime.fromisoformat(text)  # 3.11: dates, "Z", offsets
    return value if value.tzinfo else value.replace(tzinfo=dt.UTC)


def parse_datetime(text: str) -> Interval:
    """An instant, or an interval ``start/end`` with ``..`` (or nothing) for an open end.
    A date alone is the whole day (UTC)."""
    try:
        if "/" not in text:
            moment = _moment(text.strip())
            if "T" not in text and " " not in text.strip():
                return Interval(
                    moment, moment + dt.timedelta(days=1) - dt.timedelta(microseconds=1)
                )
            return Interval(moment, moment)
        first, _, second = text.partition("/")
        start = None if first.strip() in ("", "..") else _moment(first.strip())
        end = None if second.strip() in ("", "..") else _moment(second.strip())
    except (ValueError, OverflowError):  # OverflowError: the day after 9999-12-31
        reason = f"{text!r} is not an RFC 3339 instant or interval (start/end, '..' open)"
        raise QueryError("datetime", reason) from None
    if start is None and end is None:
        raise QueryError("datetime", "an interval needs at least one end")
    if start is not None and end is not None and start > end:
        raise QueryError("datetime", "the interval's start is after its end")
    return Interval(start, end)


def _equal_value(q: cql2.Queryable, text: str) -> Any:
    bad = QueryError(q.name, f"{text!r} is not a {q.type.lower()}")
    if q.type == "Number":
        try:
            number = float(text)
        except ValueError:
            raise bad from None
        if not math.isfinite(number):
            raise bad
        return int(number) if number.is_integer() else number
    if q.type == "Boolean":
        if text not in ("true", "false"):
            raise QueryError(q.name, f"{text!r} is not true or false")
        return text == "true"
    if q.type == "Date":
        try:
            return _moment(text)
        except ValueError:
            raise bad from None
    return text


def parse_items_query(
    layer: Layer,
    params: Mapping[str, str],
    fields: Mapping[str, cql2.Queryable],
    default_limit: int,
    max_limit: int,
) -> ItemsQuery:
    """Validate every parameter; an unknown one is a 400 naming it (OGC API – Features
    /req/core/query-param-unknown), as is a property the caller cannot see."""
    for name, value in params.items():
        if name not in PARAMETERS and name not in fields:
            listed = ", ".join([*PARAMETERS[:-2], *fields])
            raise QueryError(name, f"not a parameter of this collection; use {listed}")
        if "\x00" in value:
            raise QueryError(name, "contains a NUL character")
    if params.get("f") not in (None, "json", "geojson"):
        raise QueryError("f", "json (GeoJSON) is the only encoding")
    bbox_crs = _crs("bbox-crs", params.get("bbox-crs"))
    if "bbox-crs" in params and "bbox" not in params:
        raise QueryError("bbox-crs", "given without a bbox")
    interval = None
    if "datetime" in params:
        if layer.rest is None or layer.rest.datetime_sql is None:
            raise QueryError("datetime", f"{layer.name} have no time to filter on")
        interval = parse_datetime(params["datetime"])
    sql_filter = None
    if "filter" in params:
        node = cql2.parse(params["filter"], params.get("filter-lang"))
        filter_crs = _crs("filter-crs", params.get("filter-crs"))
        sql_filter = cql2.to_sql(node, fields, layer.geom_sql, filter_crs)
    elif "filter-lang" in params or "filter-crs" in params:
        name = "filter-lang" if "filter-lang" in params else "filter-crs"
        raise QueryError(name, "given without a filter")
    return ItemsQuery(
        limit=_int("limit", params["limit"], 1, max_limit) if "limit" in params else default_limit,
        offset=_int("offset", params["offset"], 0, 2**31 - 1) if "offset" in params else 0,
        bbox=parse_bbox(params["bbox"], bbox_crs) if "bbox" in params else None,
        bbox_crs=bbox_crs,
        crs=_crs("crs", params.get("crs")),
        datetime=interval,
        equals={n: _equal_value(fields[n], v) for n, v in params.items() if n in fields},
        filter=sql_filter,
    )


def _where(
    coll: Collection, layer: Layer, query: ItemsQuery, fields: Mapping[str, cql2.Queryable]
) -> tuple[str, dict[str, Any]]:
    # Retired rows (kept for history) are never served, as in /api.
    clauses: list[str] = [coll.live_sql] if coll.live_sql else []
    params: dict[str, Any] = {}
    if query.bbox is not None and coll.geom_sql is not None:
        envelope = f"ST_MakeEnvelope(%(minx)s, %(miny)s, %(maxx)s, %(maxy)s, {query.bbox_crs.srid})"
        if query.bbox_crs.srid != 4326:
            envelope = f"ST_Transform({envelope}, 4326)"
        clauses.append(f"ST_Intersects({coll.geom_sql}, {envelope})")
        params.update(zip(("minx", "miny", "maxx", "maxy"), query.bbox, strict=True))
    time_sql = layer.rest.datetime_sql if layer.rest is not None else None
    if query.datetime is not None and time_sql is not None:
        if query.datetime.start is not None:
            clauses.append(f"{time_sql} >= %(dt_start)s")
            params["dt_start"] = query.datetime.start
        if query.datetime.end is not None:
            clauses.append(f"{time_sql} <= %(dt_end)s")
            params["dt_end"] = query.datetime.end
    for i, (name, value) in enumerate(query.equals.items()):
        clauses.append(f"({fields[name].sql}) = %(eq{i})s")
        params[f"eq{i}"] = value
    if query.filter is not None:
        clauses.append(query.filter.sql)
        params.update(query.filter.params)
    scoped, scope_params = query.scope.clauses(coll)
    clauses += scoped
    params.update(scope_params)
    return (" WHERE " + " AND ".join(clauses)) if clauses else "", params


def _feature_sql(coll: Collection, props: tuple[Prop, ...], crs: OgcCrs) -> str:
    pairs = ", ".join(f"'{p.name}', {p.sql}" for p in props)
    geometry = f"{crs.output_sql(coll.geom_sql)}::json" if coll.geom_sql else "NULL::json"
    return (
        "json_build_object('type', 'Feature', 'id', t.id,"
        f" 'geometry', {geometry}, 'properties', json_build_object({pairs}))"
    )


async def list_items(
    conn: AsyncConnection[Any],
    coll: Collection,
    layer: Layer,
    query: ItemsQuery,
    props: tuple[Prop, ...],
    fields: Mapping[str, cql2.Queryable],
) -> FeaturePage:
    """One page of features (ordered by id) and how many match in all."""
    where, params = _where(coll, layer, query, fields)
    source = f"{coll.from_sql}{coll.lateral_sql}"
    count = await fetch_one(conn, f"SELECT count(*) AS n FROM {source}{where}", params)
    page_sql = (
        "SELECT count(*) AS n, COALESCE(json_agg(f.feature ORDER BY f.id), '[]'::json)::text"
        f" AS features FROM (SELECT t.id, {_feature_sql(coll, props, query.crs)} AS feature"
        f" FROM {source}{where} ORDER BY t.id LIMIT %(limit)s OFFSET %(offset)s) f"
    )
    row = await fetch_one(conn, page_sql, {**params, "limit": query.limit, "offset": query.offset})
    assert count is not None and row is not None
    return FeaturePage(count["n"], row["n"], row["features"])


async def get_item(
    conn: AsyncConnection[Any],
    coll: Collection,
    item_id: int,
    props: tuple[Prop, ...],
    crs: OgcCrs,
    scope: RowScope,
) -> str | None:
    """One feature as JSON text; None when there is none the scope covers (an id outside
    the caller's rows, or retired, is as absent as one that never existed)."""
    clauses, params = scope.clauses(coll)
    where = " AND ".join(["t.id = %(id)s", *([coll.live_sql] if coll.live_sql else []), *clauses])
    text = (
        f"SELECT {_feature_sql(coll, props, crs)}::text AS feature"
        f" FROM {coll.from_sql}{coll.lateral_sql} WHERE {where}"
    )
    row = await fetch_one(conn, text, {**params, "id": item_id})
    return None if row is None else str(row["feature"])


async def temporal_extent(
    conn: AsyncConnection[Any], coll: Collection, layer: Layer, scope: RowScope
) -> list[str | None] | None:
    """[first, last] instant of the caller's rows (RFC 3339), None for a layer without time."""
    time_sql = layer.rest.datetime_sql if layer.rest is not None else None
    if time_sql is None:
        return None
    clauses, params = scope.clauses(coll)
    clauses = [coll.live_sql, *clauses] if coll.live_sql else clauses
    where = (" WHERE " + " AND ".join(clauses)) if clauses else ""
    row = await fetch_one(
        conn,
        f"SELECT min({time_sql}) AS lo, max({time_sql}) AS hi"
        f" FROM {coll.from_sql}{coll.lateral_sql}{where}",
        params,
    )
    return [_rfc3339(row["lo"]), _rfc3339(row["hi"])] if row else [None, None]


def _rfc3339(value: Any) -> str | None:
    if value is None:
        return None
    if isinstance(value, dt.datetime):
        return value.astimezone(dt.UTC).isoformat().replace("+00:00", "Z")
    if isinstance(value, dt.date):
        return f"{value.isoformat()}T00:00:00Z"
    return str(value)
