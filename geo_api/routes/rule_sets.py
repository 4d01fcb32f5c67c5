"""Safety-score rule sets (docs/rules.md): list, read, and load a new version (admin).

``POST /api/rule-sets`` validates a whole set — every bad row and field named, nothing stored
on error — and stores it as the next version of its code; deductions already made keep the
version they were made under. Reading is for staff: the sets are what regulators apply.
"""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Path, Query, Request

from geo_api.auth import STAFF, allow
from geo_api.body import read_json
from geo_api.db import DbConn
from geo_api.errors import FieldError, NotFound
from geo_api.models.rules import RuleSet, RuleSetList
from geo_api.settings import Settings
from layers.access import roles as access
from layers.prevention.rule_book import load_rule_book, store_rule_set
from layers.prevention.rule_sets import CODE_PATTERN, validate_definition

router = APIRouter(tags=["safety score"])

Code = Annotated[str, Path(pattern=CODE_PATTERN)]


@router.get("/api/rule-sets", response_model=RuleSetList, dependencies=[allow(*STAFF)])
async def list_rule_sets(conn: DbConn) -> dict[str, Any]:
    """Every set's latest version (items counted, not listed), its assignments and versions."""
    book = await load_rule_book(conn)
    versions: dict[str, list[int]] = {}
    for s in book.by_id.values():
        versions.setdefault(s.code, []).append(s.version)
    out = []
    for code, s in sorted(book.latest.items()):
        full = s.as_dict()
        full.pop("items")
        out.append(
            {
                **full,
                "items_count": len(s.items),
                "versions": sorted(versions[code]),
                "assignments": [
                    {
                        "category": a.category,
                        "district": a.district,
                        "tag": a.tag,
                        "priority": a.priority,
                    }
                    for a in book.assignments
                    if a.rule_set_code == code
                ],
            }
        )
    return {"rule_sets": out}


@router.get("/api/rule-sets/{code}", response_model=RuleSet, dependencies=[allow(*STAFF)])
async def get_rule_set(
    code: Code,
    conn: DbConn,
    version: Annotated[int | None, Query(ge=1, le=2**31 - 1)] = None,
) -> dict[str, Any]:
    """One set with its items and measures (the latest version unless ``version`` is given)."""
    book = await load_rule_book(conn)
    found = [s for s in book.by_id.values() if s.code == code]
    chosen = (
        book.latest.get(code)
        if version is None
        else next((s for s in found if s.version == version), None)
    )
    if chosen is None:
        what = f"rule set {code}" + (f" version {version}" if version is not None else "")
        field = "version" if found else "code"
        raise NotFound(f"{what} not found", [FieldError(field, "no such rule set")])
    return chosen.as_dict()


@router.post(
    "/api/rule-sets",
    status_code=201,
    response_model=RuleSet,
    dependencies=[allow(access.ADMIN)],
)
async def create_rule_set(request: Request, conn: DbConn) -> dict[str, Any]:
    """Validate a set (docs/rules.md format) and store it as its code's next version."""
    settings: Settings = request.app.state.settings
    body = await read_json(request, settings.server.max_body_bytes)
    definition = validate_definition(body)
    set_id, _version = await store_rule_set(conn, definition)
    book = await load_rule_book(conn)
    return book.by_id[set_id].as_dict()
