"""Risk: the GB 18218 self-check calculator, an enterprise's colours and reasons, the city
summary and recompute."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter
from psycopg import AsyncConnection
from psycopg.rows import dict_row
from pydantic import BaseModel, ConfigDict, Field, field_validator

from geo_api.auth import SITE_READERS, STAFF, CurrentCaller, allow
from geo_api.db import DbConn
from geo_api.errors import FieldError, NotFound
from geo_api.models.risk import EnterpriseRisk, Gb18218Assessment, RiskSummary
from geo_api.rerate import Rerate
from geo_api.scope import VisibleEnterprise, district_filter
from layers.catalog.props import HazardClasses, mixture_has_one_class
from layers.risk import gb18218
from layers.risk.recompute import TABLE1_Q
from layers.risk.substances import TABLE1_VARIANT_CAS, TABLE2_Q_BY_CLASS

router = APIRouter(tags=["risk"])
Conn = DbConn


# -- GB 18218 calculator -------------------------------------------------------------------
class SubstanceIn(BaseModel):
    model_config = ConfigDict(populate_by_name=True, extra="forbid")
    name: str = Field(min_length=1)
    cas: str | None = None
    q: float = Field(description="design maximum quantity, t")
    Q: float | None = Field(
        default=None, description="critical quantity, t (else Table 1 by CAS, Table 2 by class)"
    )
    beta: float | None = None
    # Before ``class``: its check reads this one.
    mixture: bool = Field(default=False, description="assessed by its one classified class")
    classes: HazardClasses = Field(
        default_factory=list,
        alias="class",
        description="a GB 18218 class or a list of them; several → the lowest Table 2 Q",
    )

    _mixture_has_one_class = field_validator("classes")(mixture_has_one_class)


class AssessIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    population_500m: int = Field(ge=0, description="people within 500 m outside the site")
    substances: list[SubstanceIn] = Field(min_length=1, max_length=500)


@router.post(
    "/api/assess/gb18218", response_model=Gb18218Assessment, dependencies=[allow(*SITE_READERS)]
)
async def assess_gb18218(body: AssessIn) -> dict[str, Any]:
    """S, α, R, grade and colour of one unit; grade and colour are null when S < 1."""
    substances = [
        gb18218.Substance(
            s.name,
            s.q,
            s.Q,
            s.beta,
            s.classes[0] if s.classes else None,
            s.cas,
            more_classes=tuple(s.classes[1:]),
            mixture=s.mixture,
        )
        for s in body.substances
    ]
    # AssessmentError (a substance lacking Q or β) is an InvalidInput: a 422 naming the field.
    result = gb18218.assess(
        body.population_500m, substances, TABLE1_Q, TABLE2_Q_BY_CLASS, TABLE1_VARIANT_CAS
    )
    return {
        "S": result.S,
        "alpha": result.alpha,
        "R": result.R,
        "grade": result.grade,
        "color": result.color,
        "substances": [
            {
                "name": c.name,
                "q": c.q,
                "Q": c.critical_q,
                "beta": c.beta,
                "q_over_Q": c.ratio,
                "Q_from": c.source_of_q,
                "beta_from": c.source_of_beta,
                "class_used": c.governing_class,
            }
            for c in result.contributions
        ],
    }


# -- enterprise colour -------------------------------------------------------------------------
async def _risk_row(conn: AsyncConnection[Any], enterprise_id: int) -> dict[str, Any] | None:
    cur = conn.cursor(row_factory=dict_row)
    await cur.execute(
        "SELECT id, name, inherent_color, dynamic_color, risk_reasons, risk_updated_at"
        " FROM enterprises WHERE id = %s",
        (enterprise_id,),
    )
    return await cur.fetchone()


@router.get(
    "/api/enterprises/{enterprise_id}/risk",
    response_model=EnterpriseRisk,
    dependencies=[allow(*SITE_READERS)],
)
async def enterprise_risk(
    enterprise_id: VisibleEnterprise, conn: Conn, rerate: Rerate
) -> dict[str, Any]:
    row = await _risk_row(conn, enterprise_id)
    if row is None:
        raise NotFound(f"enterprise {enterprise_id} not found", [FieldError("id", "not found")])
    if row["dynamic_color"] is None:  # never rated yet (e.g. just imported): rate it now
        await rerate(conn, [enterprise_id])
        row = await _risk_row(conn, enterprise_id)
        assert row is not None
    return {
        "id": row["id"],
        "name": row["name"],
        "color": row["dynamic_color"],
        "inherent_color": row["inherent_color"],
        "dynamic_color": row["dynamic_color"],
        "reasons": row["risk_reasons"] or [],
        "updated_at": row["risk_updated_at"].isoformat() if row["risk_updated_at"] else None,
    }


@router.get("/api/risk/summary", response_model=RiskSummary, dependencies=[allow(*STAFF)])
async def risk_summary(conn: Conn, caller: CurrentCaller) -> dict[str, Any]:
    """Counts by dynamic colour (grey: not assessed), overall and per district, and the not
    assessed; hazard sources by grade (a regulator's: their districts)."""
    districts = district_filter(caller, None)
    cur = conn.cursor(row_factory=dict_row)
    await cur.execute(
        "SELECT coalesce(district, '') AS district, dynamic_color AS color, count(*) AS n,"
        " count(*) FILTER (WHERE inherent_color = 'grey') AS not_assessed"
        " FROM enterprises WHERE (%(d)s::text[] IS NULL OR district = ANY(%(d)s))"
        " AND retired_at IS NULL GROUP BY 1, 2 ORDER BY 1, 2",
        {"d": districts},
    )
    by_district: dict[str, dict[str, Any]] = {}
    totals: dict[str, int] = {}
    not_assessed = 0
    for row in await cur.fetchall():
        color = row["color"] or "unrated"
        entry = by_district.setdefault(row["district"], {"counts": {}, "not_assessed": 0})
        entry["counts"][color] = row["n"]
        entry["not_assessed"] += row["not_assessed"]
        totals[color] = totals.get(color, 0) + row["n"]
        not_assessed += row["not_assessed"]
    await cur.execute(
        "SELECT CASE WHEN h.grade IS NOT NULL THEN h.grade::text WHEN h.color = 'grey'"
        " THEN 'not_assessed' ELSE 'none' END AS grade, count(*) AS n FROM hazard_sources h"
        " JOIN enterprises e ON e.id = h.enterprise_id"
        " WHERE (%(d)s::text[] IS NULL OR e.district = ANY(%(d)s)) AND h.retired_at IS NULL"
        " AND e.retired_at IS NULL GROUP BY 1 ORDER BY 1",
        {"d": districts},
    )
    grades = {r["grade"]: r["n"] for r in await cur.fetchall()}
    return {
        "enterprises": totals,
        "not_assessed": not_assessed,
        "districts": [{"district": d or None, **c} for d, c in by_district.items()],
        "hazard_sources_by_grade": grades,
    }


@router.post("/api/risk/recompute", dependencies=[allow("admin")])
async def recompute_all(conn: Conn, rerate: Rerate) -> dict[str, Any]:
    """Full recompute of every hazard source and enterprise (administrators)."""
    report = await rerate(conn, None)
    return {
        "hazard_sources": report.hazard_sources,
        "hazard_sources_changed": report.hazard_sources_changed,
        "enterprises": report.enterprises,
        "enterprises_changed": report.enterprises_changed,
        "seconds": round(report.seconds, 3),
    }
