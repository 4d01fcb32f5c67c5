"""Reading collections: parse the filters, then one set-based query that builds the GeoJSON.

The features are assembled by PostgreSQL (``json_build_object`` + ``ST_AsGeoJSON``) and handed
back as text, so a page of 10,000 features is never parsed and re-serialised in Python.
"""

from __future__ import annotations

import datetime as dt
import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, LiteralString, cast

from psycopg import AsyncConnection, sql
from psycopg.rows import dict_row

from layers.catalog.collections import Collection
from layers.core.colors import LIVE_COLORS
from layers.core.errors import BadField


class QueryError(BadField, ValueError):
    """A filter the client got wrong (400); names the parameter."""


def registry_sql(text: str) -> sql.SQL:
    """Wrap SQL text assembled only from registry constants (never from a request)."""
    return sql.SQL(cast(LiteralString, text))


@dataclass(frozen=True)
class RowScope:
    """The rows a caller may see (layers/access/roles.py): some districts, one enterprise or
    all."""

    districts: list[str] | None = None
    enterprise_id: int | None = None

    def clauses(self, coll: Collection) -> tuple[list[str], dict[str, Any]]:
        clauses: list[str] = []
        params: dict[str, Any] = {}
        if self.districts is not None:
            # A collection without a district has nothing of these districts.
            clauses.append(f"{coll.district_sql or 'NULL'} = ANY(%(scope_districts)s)")
            params["scope_districts"] = self.districts
        if self.enterprise_id is not None:
            clauses.append(f"{coll.enterprise_sql or 'NULL'} = %(scope_enterprise)s")
            params["scope_enterprise"] = self.enterprise_id
        return clauses, params


@dataclass(frozen=True)
class ListQuery:
    limit: int
    offset: int = 0
    bbox: tuple[float, float, float, float] | None = None
    district: str | None = None
    color: str | None = None
    extras: dict[str, Any] = field(default_factory=dict)
    scope: RowScope = field(default_factory=RowScope)
    masked: bool = False  # personal data shown masked (layers/access/roles.py decides)


def parse_bbox(text: str) -> tuple[float, float, float, float]:
    parts = text.split(",")
    if len(parts) != 4:
        raise QueryError("bbox", "expected four numbers minx,miny,maxx,maxy")
    try:
        minx, miny, maxx, maxy = (float(p) for p in parts)
    except ValueError:
        raise QueryError("bbox", f"{text!r} is not four numbers") from None
    if not all(math.isfinite(v) for v in (minx, miny, maxx, maxy)):
        raise QueryError("bbox", "numbers must be finite")
    if not (-180 <= minx <= 180 and -180 <= maxx <= 180):
        raise QueryError("bbox", "longitudes must lie within -180..180")
    if not (-90 <= miny <= 90 and -90 <= maxy <= 90):
        raise QueryError("bbox", "latitudes must lie within -90..90")
    if minx >= maxx or miny >= maxy:
        raise QueryError("bbox", "min must be less than max (minx,miny,maxx,maxy)")
    return minx, miny, maxx, maxy


def _int(name: str, text: str, low: int, high: int) -> int:
    try:
        value = int(text)
    except ValueError:
        raise QueryError(name, f"{text!r} is not an integer") from None
    if not low <= value <= high:
        raise QueryError(name, f"must be between {low} and {high}")
    return value


def _instant(name: str, text: str) -> dt.datetime:
    """An ISO 8601 time with a zone, or a date (its 00:00 UTC)."""
    try:
        value = dt.datetime.fromisoformat(text.strip().replace(" ", "+"))
    except ValueError:
        raise QueryError(name, f"{text!r} is not an ISO 8601 date or time") from None
    if value.tzinfo is None:
        if len(text.strip()) > 10:
            raise QueryError(name, "give a time zone (e.g. 2026-12-05T08:00:00+08:00)")
        value = value.replace(tzinfo=dt.UTC)
    return value


def parse_list_query(
    coll: Collection, params: Mapping[str, str], default_limit: int, max_limit: int
) -> ListQuery:
    """Validate every query parameter; an unknown or unusable one is an error, not ignored."""
    allowed = coll.filter_names()
    for name, value in params.items():
        if name not in allowed:
            raise QueryError(name, f"not a filter of {coll.name}; use {', '.join(allowed)}")
        if "\x00" in value:  # PostgreSQL text cannot hold NUL: refuse it here, not as a 500
            raise QueryError(name, "contains a NUL character")
    color = params.get("color") or None
    if color is not None and coll.color_sql is None:
        raise QueryError("color", f"{coll.name} have no colour; filter by colour is unavailable")
    if color is not None and color not in LIVE_COLORS:
        raise QueryError("color", f"{color!r} is not one of: {', '.join(LIVE_COLORS)}")
    extras: dict[str, Any] = {}
    for flt in coll.filters:
        raw = params.get(flt.name)
        if raw is None:
            continue
        if flt.kind is int:
            extras[flt.name] = _int(flt.name, raw, 1, 2**31 - 1)
        elif flt.kind is dt.datetime:
            extras[flt.name] = _instant(flt.name, raw)
        else:
            if flt.choices is not None and raw not in flt.choices:
                raise QueryError(flt.name, f"{raw!r} is not one of: {', '.join(flt.choices)}")
            extras[flt.name] = raw
    return ListQuery(
        limit=_int("limit", params["limit"], 1, max_limit) if "limit" in params else default_limit,
        offset=_int("offset", params["offset"], 0, 2**31 - 1) if "offset" in params else 0,
        bbox=parse_bbox(params["bbox"]) if "bbox" in params else None,
        district=params.get("district") or None,
        color=color,
        extras=extras,
    )


def _where(coll: Collection, query: ListQuery) -> tuple[str, dict[str, Any]]:
    # Retired rows (migration 0012) are kept for history, never listed.
    clauses: list[str] = [coll.live_sql] if coll.live_sql else []
    params: dict[str, Any] = {}
    if query.bbox is not None and coll.geom_sql is not None:
        # Stored in 4326 like the envelope: no transform at all, and ST_Intersects uses the
        # GiST index on the column (the constant is the one that would be transformed).
        clauses.append(
            f"ST_Intersects({coll.geom_sql},"
            " ST_MakeEnvelope(%(minx)s, %(miny)s, %(maxx)s, %(maxy)s, 4326))"
        )
        params.update(zip(("minx", "miny", "maxx", "maxy"), query.bbox, strict=True))
    if query.district is not None and coll.district_sql is not None:
        clauses.append(f"{coll.district_sql} = %(district)s")
        params["district"] = query.district
    if query.color is not None and coll.color_sql is not None:
        clauses.append(f"{coll.color_sql} = %(color)s")
        params["color"] = query.color
    for flt in coll.filters:
        if flt.name in query.extras:
            clauses.append(f"{flt.sql} {flt.op} %({flt.name})s")
            params[flt.name] = query.extras[flt.name]
    scoped, scope_params = query.scope.clauses(coll)
    clauses += scoped
    params.update(scope_params)
    return (" WHERE " + " AND ".join(clauses)) if clauses else "", params


def feature_sql(coll: Collection, masked: bool = False) -> str:
    """One Feature as json, built in SQL; coordinates to 7 decimals (~1 cm). ``masked``:
    personal data in its masked form (``Prop.masked_sql``)."""
    shown = dict(coll.masked) if masked else {}
    props = ", ".join(f"'{key}', {shown.get(key, expr)}" for key, expr in coll.properties)
    geometry = f"ST_AsGeoJSON({coll.geom_sql}, 7)::json" if coll.geom_sql else "NULL::json"
    return (
        "json_build_object('type', 'Feature', 'id', t.id,"
        f" 'geometry', {geometry}, 'properties', json_build_object({props}))"
    )


@dataclass(frozen=True)
class FeaturePage:
    number_matched: int
    number_returned: int
    features_json: str  # a JSON array, ready to splice into the response


async def list_features(
    conn: AsyncConnection[Any], coll: Collection, query: ListQuery
) -> FeaturePage:
    where, params = _where(coll, query)
    # The count needs the latest-fix join only when the bbox filters on it.
    count_from = coll.from_sql + (coll.lateral_sql if query.bbox is not None else "")
    count_row = await fetch_one(conn, f"SELECT count(*) AS n FROM {count_from}{where}", params)
    page_sql = (
        "SELECT count(*) AS n, COALESCE(json_agg(f.feature ORDER BY f.id), '[]'::json)::text"
        f" AS features FROM (SELECT t.id, {feature_sql(coll, query.masked)} AS feature"
        f" FROM {coll.from_sql}{coll.lateral_sql}{where}"
        " ORDER BY t.id LIMIT %(limit)s OFFSET %(offset)s) f"
    )
    params.update(limit=query.limit, offset=query.offset)
    row = await fetch_one(conn, page_sql, params)
    assert count_row is not None and row is not None
    return FeaturePage(count_row["n"], row["n"], row["features"])


async def get_feature(
    conn: AsyncConnection[Any], coll: Collection, item_id: int, masked: bool = False
) -> str | None:
    """One Feature as JSON text, or None when there is no such id."""
    text = (
        f"SELECT {feature_sql(coll, masked)}::text AS feature"
        f" FROM {coll.from_sql}{coll.lateral_sql} WHERE t.id = %(id)s"
    )
    row = await fetch_one(conn, text, {"id": item_id})
    return None if row is None else str(row["feature"])


async def outside_scope(
    conn: AsyncConnection[Any], coll: Collection, ids: list[int], scope: RowScope
) -> list[int]:
    """Which of ``ids`` the scope does not cover (sorted)."""
    clauses, params = scope.clauses(coll)
    if not clauses or not ids:
        return []
    text = (
        f"SELECT array_agg(t.id ORDER BY t.id) AS ids FROM {coll.from_sql}"
        f" WHERE t.id = ANY(%(ids)s) AND NOT coalesce({' AND '.join(clauses)}, false)"
    )
    row = await fetch_one(conn, text, {**params, "ids": ids})
    return list(row["ids"] or []) if row else []


async def fetch_one(
    conn: AsyncConnection[Any], text: str, params: Mapping[str, Any]
) -> dict[str, Any] | None:
    """Run registry-built SQL and return one row as a dict, whatever the connection's rows."""
    async with conn.cursor(row_factory=dict_row) as cur:
        await cur.execute(registry_sql(text), params)
        return await cur.fetchone()
