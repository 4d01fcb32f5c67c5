"""CQL2 filters (OGC API – Features Part 3) as SQL over a collection's queryables.

``pygeofilter`` parses both encodings (``cql2-text`` and ``cql2-json``) into one tree; this
module walks that tree and writes SQL itself, so that:

* every identifier in the SQL comes from the catalogue (a queryable's expression, the
  collection's geometry), never from the request — an unknown property is a 400 naming it;
* every value is a bound parameter (``%(f0)s`` …), typed against the queryable (a text
  compared with a number is a 400, not a database error);
* only what is listed in ``SUPPORTED`` is accepted: comparisons, LIKE, IN, BETWEEN, IS NULL,
  AND/OR/NOT and S_INTERSECTS with a geometry literal (WKT or BBOX in text, GeoJSON or
  ``{"bbox": …}`` in JSON) in the ``filter-crs``.

Every refusal is a :class:`FilterError` naming ``filter`` (or ``filter-lang``).
"""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, Final

import shapely
import shapely.geometry
from pygeofilter import ast, values
from pygeofilter.parsers.cql2_json import parse as parse_json
from pygeofilter.parsers.cql2_text import parse as parse_text

from layers.catalog.model import FieldType
from layers.core.crs import CRS84, OgcCrs
from layers.core.errors import BadField

LANGS: Final = ("cql2-text", "cql2-json")
#: The draft's name for the text encoding, which GDAL's OAPIF driver (3.12) still sends: its
#: expressions (comparisons, LIKE, IS NULL, AND/OR/NOT) read the same as CQL2 text.
ALIASES: Final = {"cql-text": "cql2-text"}
#: The queryable that stands for a feature's geometry in S_INTERSECTS.
GEOMETRY: Final = "geometry"
#: What the conformance page claims (and nothing beyond it is accepted).
SUPPORTED: Final = (
    "=, <>, <, <=, >, >=, LIKE, IN, BETWEEN, IS NULL, AND, OR, NOT, S_INTERSECTS(geometry, …)"
)
_COMPARISONS: Final = {
    ast.Equal: "=",
    ast.NotEqual: "<>",
    ast.LessThan: "<",
    ast.LessEqual: "<=",
    ast.GreaterThan: ">",
    ast.GreaterEqual: ">=",
}
#: A filter nested deeper than this is refused (a URL cannot carry a useful one that deep).
MAX_DEPTH: Final = 50


class FilterError(BadField):
    """A filter the server cannot use (syntax, unknown property, wrong type): a 400."""

    def __init__(self, reason: str, name: str = "filter") -> None:
        super().__init__(name, reason)


@dataclass(frozen=True)
class Queryable:
    """A property a filter may name: its SQL expression over ``t`` and its type."""

    name: str
    sql: str
    type: FieldType


def parse(text: str, lang: str | None) -> ast.Node:
    """The filter's tree; ``lang`` defaults to cql2-text."""
    lang = ALIASES.get(lang or "cql2-text", lang or "cql2-text")
    if lang not in LANGS:
        raise FilterError(f"{lang!r} is not one of: {', '.join(LANGS)}", "filter-lang")
    if "\x00" in text:
        raise FilterError("contains a NUL character")
    try:
        if lang == "cql2-json":
            node = parse_json(_normalised(json.loads(text)))
        else:
            node = parse_text(text)
    except FilterError:
        raise
    except Exception as exc:  # pygeofilter/lark/json raise many kinds; all are bad input
        first = str(exc).strip().splitlines()[0][:160] if str(exc).strip() else type(exc).__name__
        raise FilterError(f"not valid {lang}: {first}") from None
    if not isinstance(node, ast.Node):
        raise FilterError("is not a condition")
    return node


def _normalised(doc: Any) -> Any:
    """CQL2 JSON as pygeofilter 0.4 reads it: BETWEEN's bounds as one list, and a ``bbox``
    literal as a polygon (0.4 swaps its corners)."""
    if isinstance(doc, list):
        return [_normalised(v) for v in doc]
    if not isinstance(doc, dict):
        return doc
    if set(doc) == {"bbox"}:
        return _bbox_polygon(doc["bbox"])
    out = {k: _normalised(v) for k, v in doc.items()}
    args = out.get("args")
    if out.get("op") == "between" and isinstance(args, list) and len(args) == 3:
        out["args"] = [args[0], [args[1], args[2]]]
    return out


def _bbox_polygon(box: Any) -> dict[str, Any]:
    if not isinstance(box, list) or len(box) not in (4, 6):
        raise FilterError("a bbox literal has four numbers")
    if len(box) == 6:  # 3D: minx, miny, minz, maxx, maxy, maxz
        box = [box[0], box[1], box[3], box[4]]
    if not all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in box):
        raise FilterError("a bbox literal has four numbers")
    return shapely.geometry.mapping(shapely.geometry.box(*box))


@dataclass
class SqlFilter:
    """The WHERE text of a filter and its bound values."""

    sql: str
    params: dict[str, Any] = field(default_factory=dict)


@dataclass
class _Writer:
    queryables: Mapping[str, Queryable]
    geom_sql: str | None
    crs: OgcCrs
    prefix: str
    params: dict[str, Any] = field(default_factory=dict)

    def bind(self, value: Any) -> str:
        name = f"{self.prefix}{len(self.params)}"
        self.params[name] = value
        return f"%({name})s"

    def node(self, node: Any, depth: int = 0) -> str:
        if depth > MAX_DEPTH:
            raise FilterError(f"nested deeper than {MAX_DEPTH} levels")
        handler = _HANDLERS.get(type(node))
        if handler is None:
            raise FilterError(f"{_describe(node)} is not supported; use {SUPPORTED}")
        return handler(self, node, depth + 1)

    def prop(self, node: Any) -> Queryable:
        if not isinstance(node, ast.Attribute):
            raise FilterError(
                f"{_describe(node)} on the left: compare a property with a literal value"
            )
        q = self.queryables.get(node.name)
        if q is None:
            raise FilterError(
                f"{node.name!r} is not a queryable property (GET …/queryables lists them)"
            )
        return q

    def literal(self, q: Queryable, value: Any) -> str:
        return self.bind(_typed(q, value))


def _describe(node: Any) -> str:
    if isinstance(node, ast.Function):
        return f"function {node.name.upper()}"
    if isinstance(node, ast.Node):
        return type(node).__name__
    return repr(node)


def _typed(q: Queryable, value: Any) -> Any:
    """``value`` as the type of ``q``; a mismatch is the client's mistake."""
    bad = FilterError(f"{q.name} is a {q.type.lower()}; {value!r} is not")
    if q.type == "Number":
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise bad
        return value
    if q.type == "Boolean":
        if not isinstance(value, bool):
            raise bad
        return value
    if q.type == "Date":
        if isinstance(value, dt.datetime):
            return value if value.tzinfo else value.replace(tzinfo=dt.UTC)
        if isinstance(value, dt.date):
            return value
        if isinstance(value, str):
            try:
                return dt.datetime.fromisoformat(value)
            except ValueError:
                raise bad from None
        raise bad
    if not isinstance(value, str):
        raise bad
    if "\x00" in value:
        raise FilterError("a text value contains a NUL character")
    return value


def _instant(value: dt.date) -> dt.datetime:
    if isinstance(value, dt.datetime):
        return value
    return dt.datetime(value.year, value.month, value.day, tzinfo=dt.UTC)


def _comparison(w: _Writer, node: Any, depth: int) -> str:
    q = w.prop(node.lhs)
    return f"({q.sql}) {_COMPARISONS[type(node)]} {w.literal(q, node.rhs)}"


def _combination(w: _Writer, node: Any, depth: int) -> str:
    op = "AND" if isinstance(node, ast.And) else "OR"
    return f"({w.node(node.lhs, depth)} {op} {w.node(node.rhs, depth)})"


def _not(w: _Writer, node: Any, depth: int) -> str:
    return f"(NOT coalesce({w.node(node.sub_node, depth)}, false))"


def _like(w: _Writer, node: Any, depth: int) -> str:
    q = w.prop(node.lhs)
    if q.type != "String":
        raise FilterError(f"LIKE needs a text property; {q.name} is a {q.type.lower()}")
    # CQL2's wildcards are SQL's: % any, _ one, backslash escapes.
    trailing = len(node.pattern) - len(node.pattern.rstrip("\\"))
    if trailing % 2:
        raise FilterError("a LIKE pattern must not end with its escape character (\\)")
    op = "ILIKE" if node.nocase else "LIKE"
    return f"({q.sql}) {'NOT ' if node.not_ else ''}{op} {w.literal(q, node.pattern)}"


def _in(w: _Writer, node: Any, depth: int) -> str:
    q = w.prop(node.lhs)
    if not node.sub_nodes:
        raise FilterError("IN needs at least one value")
    items = [_typed(q, v) for v in node.sub_nodes]
    # One array type for the database: numbers as floats, dates as instants.
    if q.type == "Number":
        items = [float(v) for v in items]
    elif q.type == "Date":
        items = [_instant(v) for v in items]
    test = f"({q.sql}) = ANY({w.bind(items)})"
    return f"(NOT coalesce({test}, false))" if node.not_ else test


def _between(w: _Writer, node: Any, depth: int) -> str:
    q = w.prop(node.lhs)
    low, high = w.literal(q, node.low), w.literal(q, node.high)
    return f"({q.sql}) {'NOT ' if node.not_ else ''}BETWEEN {low} AND {high}"


def _is_null(w: _Writer, node: Any, depth: int) -> str:
    q = w.prop(node.lhs)
    return f"({q.sql}) IS {'NOT ' if node.not_ else ''}NULL"


def _intersects(w: _Writer, node: Any, depth: int) -> str:
    lhs, rhs = node.lhs, node.rhs
    if not isinstance(lhs, ast.Attribute) and isinstance(rhs, ast.Attribute):
        lhs, rhs = rhs, lhs  # S_INTERSECTS(POLYGON(…), geometry) reads the same
    if not isinstance(lhs, ast.Attribute) or lhs.name != GEOMETRY:
        raise FilterError(f"S_INTERSECTS compares the property {GEOMETRY!r} with a geometry")
    if w.geom_sql is None:
        raise FilterError("this collection has no geometry")
    literal = _inside(_geometry(rhs), w.crs)
    return f"ST_Intersects({w.geom_sql}, {w.crs.input_sql(w.bind(shapely.to_wkb(literal)))})"


def _geometry(node: Any) -> shapely.Geometry:
    """A geometry literal: GeoJSON-like (WKT and JSON), an envelope, or BBOX(…) in text."""
    try:
        if isinstance(node, values.Geometry):
            geom = shapely.geometry.shape(node.geometry)
        elif isinstance(node, values.Envelope):
            geom = shapely.geometry.box(node.x1, node.y1, node.x2, node.y2)
        elif isinstance(node, ast.Function) and node.name.lower() == "bbox":
            args = node.arguments
            if len(args) == 6:
                args = [args[0], args[1], args[3], args[4]]
            if len(args) != 4 or not all(
                isinstance(a, (int, float)) and not isinstance(a, bool) for a in args
            ):
                raise FilterError("BBOX takes four numbers: minx, miny, maxx, maxy")
            geom = shapely.geometry.box(*args)
        else:
            raise FilterError(f"{_describe(node)} is not a geometry literal")
    except FilterError:
        raise
    except Exception:  # shapely refuses malformed coordinates in many ways
        raise FilterError("the geometry literal is malformed") from None
    if geom.is_empty or not shapely.is_valid(geom):
        raise FilterError("the geometry literal is empty or invalid")
    return geom


def _inside(geom: shapely.Geometry, crs: OgcCrs) -> shapely.Geometry:
    """``geom`` unless its coordinates leave ``crs``'s area (a 400, not a transform error)."""
    minx, miny, maxx, maxy = (float(v) for v in shapely.bounds(geom))
    if not crs.within(crs.box((minx, miny, maxx, maxy))):
        order = "lat lon" if crs.lat_first else "x y"
        raise FilterError(f"the geometry literal leaves the area of {crs.uri} ({order} order)")
    return geom


_HANDLERS: Final[dict[type, Callable[[_Writer, Any, int], str]]] = {
    **{cls: _comparison for cls in _COMPARISONS},
    ast.And: _combination,
    ast.Or: _combination,
    ast.Not: _not,
    ast.Like: _like,
    ast.In: _in,
    ast.Between: _between,
    ast.IsNull: _is_null,
    ast.GeometryIntersects: _intersects,
}


def to_sql(
    node: ast.Node,
    queryables: Mapping[str, Queryable],
    geom_sql: str | None,
    crs: OgcCrs = CRS84,
    prefix: str = "f",
) -> SqlFilter:
    """The WHERE text of ``node`` over ``queryables`` with its parameters (named
    ``<prefix>0``, ``<prefix>1`` …); ``crs`` is the ``filter-crs`` of geometry literals."""
    writer = _Writer(queryables, geom_sql, crs, prefix)
    text = writer.node(node)
    return SqlFilter(text, writer.params)
