"""Editing collections: ``PATCH`` (an RFC 7396 merge patch) and ``DELETE``, derived from each
layer's ``Writes`` declaration like ``POST`` is.

Optimistic concurrency: every writable table has an integer ``version`` (migration 0012), the
item's strong ETag (``"3"``). An edit locks the row (``FOR UPDATE``), compares ``If-Match``
with the locked version and writes in the same transaction, so two clients that read version 3
cannot both store their version 4: the second one waits for the lock, then finds version 4 and
is refused (412) with nothing changed.

A PATCH is merged into the row's current document (what a POST of it would have sent) and the
merged result goes through the very same validation as a POST — the layer's property model,
its geometry rule, its staged checks and unique keys — so no rule has a second home here.

A DELETE never cascades silently: live dependents (``Writes.dependents``) make it a 409 that
names them; history (``Writes.history``: alerts, alarms, readings, stops, fixes, deductions)
makes it a retirement (``retired_at``): gone from lists, maps and rules, kept as evidence.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Final, Literal

from psycopg import AsyncConnection

from layers.catalog.collections import Collection
from layers.collections.read import fetch_one
from layers.core.errors import (
    FieldError,
    Gone,
    HasDependents,
    InvalidInput,
    NotFound,
    PreconditionFailed,
    PreconditionRequired,
)

#: How many ids of each kind of dependent a 409 lists (the count is always complete).
MAX_DEPENDENT_IDS: Final = 20
#: The members a Feature merge patch may carry besides ``properties`` and ``geometry``.
_FEATURE_MEMBERS: Final = frozenset({"type", "id", "geometry", "properties"})


def etag(version: int) -> str:
    """The strong ETag of a row version (RFC 9110 §8.8.3): a quoted opaque string."""
    return f'"{version}"'


@dataclass(frozen=True)
class RowState:
    id: int
    version: int
    retired_at: dt.datetime | None

    @property
    def etag(self) -> str:
        return etag(self.version)


@dataclass(frozen=True)
class IfMatch:
    """A parsed ``If-Match``: ``*`` (any current version) or a list of entity tags."""

    any: bool
    tags: tuple[str, ...] = ()

    def matches(self, current: str) -> bool:
        # Strong comparison (RFC 9110 §13.1.1): a weak tag W/"3" never matches.
        return self.any or current in self.tags


def parse_if_match(header: str | None) -> IfMatch:
    """``If-Match`` is required on PATCH and DELETE (428 without it): the client must say which
    version it edited; ``*`` explicitly accepts whatever is current."""
    if header is None or not header.strip():
        raise PreconditionRequired(
            "If-Match: required on PATCH and DELETE; send the ETag of the version you edited"
            ' (from GET), or "*" to accept any current version',
            [FieldError("If-Match", "required (the item's ETag, or *)")],
        )
    text = header.strip()
    if text == "*":
        return IfMatch(any=True)
    return IfMatch(any=False, tags=tuple(t.strip() for t in text.split(",") if t.strip()))


# -- reading the row ----------------------------------------------------------------------------


async def row_state(
    conn: AsyncConnection[Any], coll: Collection, item_id: int, *, lock: bool = False
) -> RowState | None:
    """The row's version and retirement (``lock``: and hold it until the transaction ends)."""
    w = coll.writing
    retired = "t.retired_at" if w.retires else "NULL::timestamptz"
    text = (
        f"SELECT t.id, t.version, {retired} AS retired_at FROM {w.table} t WHERE t.id = %(id)s"
        + (" FOR UPDATE" if lock else "")
    )
    row = await fetch_one(conn, text, {"id": item_id})
    return None if row is None else RowState(row["id"], row["version"], row["retired_at"])


def not_found(coll: Collection, item_id: int) -> NotFound:
    return NotFound(
        f"{coll.noun} {item_id} not found", [FieldError("id", f"no {coll.noun} {item_id}")]
    )


def gone(coll: Collection, state: RowState) -> Gone:
    when = state.retired_at.isoformat() if state.retired_at else "?"
    reason = f"retired at {when}; kept for history (alerts, evidence), no longer served"
    return Gone(f"{coll.noun} {state.id}: {reason}", [FieldError("id", reason)])


async def locked(conn: AsyncConnection[Any], coll: Collection, item_id: int) -> RowState:
    """Lock the row for an edit or a delete (held until the transaction ends): 404 if none."""
    state = await row_state(conn, coll, item_id, lock=True)
    if state is None:
        raise not_found(coll, item_id)
    return state


def check_precondition(coll: Collection, state: RowState, if_match: IfMatch) -> None:
    """410 for a retired row, 412 when ``If-Match`` is not its current version (the answer
    names the current ETag; nothing is changed)."""
    if state.retired_at is not None:
        raise gone(coll, state)
    if not if_match.matches(state.etag):
        reason = f"the current ETag is {state.etag}: changed by someone else since; GET it again"
        raise PreconditionFailed(
            f"{coll.noun} {state.id}: {reason}", [FieldError("If-Match", reason)], state.etag
        )


async def current_document(
    conn: AsyncConnection[Any], coll: Collection, item_id: int
) -> dict[str, Any]:
    """The row as a POST would have sent it: the model's fields (and the geometry), the base a
    merge patch applies to. Mapped layers: a Feature; layers without geometry: an object."""
    w = coll.writing
    model = w.model
    extra = dict(w.current_sql)
    stored = {c.name for c in w.stored_columns}
    fields = []
    for name in model.model_fields:
        sql = extra.get(name) or (f"t.{name}" if name in stored else "NULL")
        fields.append(f"'{name}', {sql}")
    props = f"json_build_object({', '.join(fields)})"
    geometry = "ST_AsGeoJSON(t.geom, 15)::json" if model.geometry is not None else "NULL::json"
    row = await fetch_one(
        conn,
        f"SELECT {props} AS props, {geometry} AS geometry FROM {w.table} t WHERE t.id = %(id)s",
        {"id": item_id},
    )
    if row is None:
        raise not_found(coll, item_id)
    if model.geometry is None:
        return dict(row["props"])
    return {"type": "Feature", "geometry": row["geometry"], "properties": dict(row["props"])}


# -- merging ------------------------------------------------------------------------------------


def merge_patch(target: Any, patch: Any) -> Any:
    """RFC 7396: an object merges member by member (``null`` removes the member), anything
    else replaces the target whole (arrays included: a substances list is replaced)."""
    if not isinstance(patch, Mapping):
        return patch
    out = dict(target) if isinstance(target, Mapping) else {}
    for key, value in patch.items():
        if value is None:
            out.pop(key, None)
        else:
            out[key] = merge_patch(out.get(key), value)
    return out


def _refused(field: str, reason: str) -> InvalidInput:
    return InvalidInput(f"{field}: {reason}", [FieldError(field, reason)])


def merged_item(
    coll: Collection, item_id: int, current: dict[str, Any], patch: Any
) -> tuple[dict[str, Any], Any]:
    """Merge ``patch`` into ``current``: the properties and geometry to validate exactly as a
    POST's (``layers.imports.payload.validate_item``). Immutable fields (the id,
    ``Writes.immutable``) may not change: a 422 naming them."""
    w = coll.writing
    if not isinstance(patch, Mapping):
        raise _refused("body", "a merge patch must be a JSON object (RFC 7396)")
    mapped = w.model.geometry is not None
    if mapped:
        unknown = sorted(set(patch) - _FEATURE_MEMBERS)
        if unknown:
            raise _refused(unknown[0], "not a member of a Feature merge patch")
        if patch.get("type", "Feature") != "Feature":
            raise _refused("type", "a Feature stays a Feature")
        given_props = patch.get("properties")
        if given_props is not None and not isinstance(given_props, Mapping):
            raise _refused("properties", "must be an object")
    else:
        given_props = patch
    if "id" in patch and patch["id"] != item_id:
        raise _refused("id", "may not be changed (ids are assigned by the server)")
    body = {k: v for k, v in patch.items() if k != "id"}
    merged = merge_patch(current, body)
    props = dict(merged.get("properties") or {}) if mapped else dict(merged)
    old_props = (current.get("properties") or {}) if mapped else current
    given = given_props if isinstance(given_props, Mapping) else {}
    for name in ("id", *w.immutable):
        if name in given and (name == "id" or given[name] != old_props.get(name)):
            raise _refused(name, f"may not be changed on a {coll.noun}")
    return props, merged.get("geometry") if mapped else None


# -- deleting -----------------------------------------------------------------------------------

Outcome = Literal["deleted", "retired"]


async def dependents(
    conn: AsyncConnection[Any], coll: Collection, item_id: int
) -> list[dict[str, Any]]:
    """Live rows that need this one, by kind: ``{"kind", "count", "ids"}`` (ids bounded)."""
    out = []
    for ref in coll.writing.dependents:
        row = await fetch_one(
            conn,
            f"SELECT count(*) AS n, (array_agg(x.id ORDER BY x.id))[1:{MAX_DEPENDENT_IDS}]"
            f" AS ids FROM ({ref.sql}) x",
            {"id": item_id},
        )
        if row and row["n"]:
            out.append({"kind": ref.kind, "count": int(row["n"]), "ids": list(row["ids"])})
    return out


async def has_history(conn: AsyncConnection[Any], coll: Collection, item_id: int) -> bool:
    for ref in coll.writing.history:
        row = await fetch_one(conn, f"SELECT EXISTS ({ref.sql}) AS e", {"id": item_id})
        if row and row["e"]:
            return True
    return False


def _dependents_error(coll: Collection, item_id: int, found: list[dict[str, Any]]) -> HasDependents:
    def one(d: dict[str, Any]) -> str:
        more = ", …" if d["count"] > len(d["ids"]) else ""
        return f"{d['count']} {d['kind']}(s): {', '.join(map(str, d['ids']))}{more}"

    listed = "; ".join(one(d) for d in found)
    return HasDependents(
        f"{coll.noun} {item_id} is still needed by {listed}; delete or move them first",
        [FieldError("id", f"needed by {one(d)}") for d in found],
        found,
    )


async def delete_or_retire(conn: AsyncConnection[Any], coll: Collection, item_id: int) -> Outcome:
    """Under the caller's row lock: 409 with live dependents; retire what history names;
    delete the rest."""
    w = coll.writing
    found = await dependents(conn, coll, item_id)
    if found:
        raise _dependents_error(coll, item_id, found)
    if w.retires and await has_history(conn, coll, item_id):
        await fetch_one(
            conn,
            f"UPDATE {w.table} SET retired_at = now(), version = version + 1"
            " WHERE id = %(id)s RETURNING id",
            {"id": item_id},
        )
        return "retired"
    await fetch_one(conn, f"DELETE FROM {w.table} WHERE id = %(id)s RETURNING id", {"id": item_id})
    return "deleted"
