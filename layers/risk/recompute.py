"""Recompute stored colours: GB 18218 grades of hazard sources, then enterprise colours.

A hazard source that cannot be assessed (no substances, or one lacking Q or β: S undefined) is
grey, "not assessed"; one assessed below S = 1 is not a major hazard source and has no colour.

Pure rules live in layers/risk/gb18218.py and layers/risk/enterprise.py; this module gathers their
inputs with set-based SQL, applies the rules in Python (so each rule has exactly one home),
writes back only rows whose result changed, and sends a ``NOTIFY`` naming what changed and
where, for the tile cache and the live push.
"""

from __future__ import annotations

import datetime as dt
import json
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Final

from psycopg import AsyncConnection
from psycopg.rows import dict_row, tuple_row
from shapely import wkb

from layers.catalog import CATALOG
from layers.core import locks
from layers.core.changes import notify_change
from layers.core.colors import GREY
from layers.core.locks import lock_enterprises
from layers.core.vocab import ILLEGAL_PARKING_RULES
from layers.prevention.scoring import Score, scores
from layers.risk import gb18218
from layers.risk.enterprise import (
    EnterpriseFacts,
    LiveRules,
    Rating,
    diagnosis_expired,
    rate,
)
from layers.risk.hexagons import rollup_all
from layers.risk.overlays import recompute_overlays
from layers.risk.pipelines import recompute_pipelines
from layers.risk.population import PopulationRaster
from layers.risk.substances import TABLE1_Q_BY_CAS, TABLE1_VARIANT_CAS, TABLE2_Q_BY_CLASS

#: Hexagon layers whose colours come from this engine (everything but raw fixes).
COLOURED_HEX_LAYERS: Final = list(CATALOG.refreshed_hex_layers)

#: GB 18218-2018 Table 1 critical quantities by CAS (layers/risk/data/gb18218_table1.csv).
TABLE1_Q: Final[dict[str, float]] = TABLE1_Q_BY_CAS


@dataclass(frozen=True)
class RecomputeConfig:
    population_raster: Path | None = None
    live_rules: LiveRules = field(default_factory=LiveRules)


@dataclass
class RecomputeReport:
    hazard_sources: int = 0
    hazard_sources_changed: int = 0
    enterprises: int = 0
    enterprises_changed: int = 0
    pipeline_segments: int = 0
    overlay_polygons: int = 0
    seconds: float = 0.0

    def summary(self) -> str:
        text = (
            f"hazard sources: {self.hazard_sources} assessed, {self.hazard_sources_changed} "
            f"changed; enterprises: {self.enterprises} rated, {self.enterprises_changed} changed"
        )
        if self.pipeline_segments:
            text += f"; pipeline segments: {self.pipeline_segments}"
        if self.overlay_polygons:
            text += f"; overlay polygons: {self.overlay_polygons}"
        return f"{text} ({self.seconds:.2f} s)"


# -- hazard sources ----------------------------------------------------------------------
_SOURCES_SQL = """
SELECT h.id, h.population_500m,
       CASE WHEN %(want_ring)s THEN ST_AsBinary(ST_Difference(
           ST_Buffer(coalesce(e.site_geom, h.geom)::geography, 500)::geometry,
           coalesce(e.site_geom, h.geom))) END AS ring,
       coalesce(json_agg(json_build_object(
           'name', s.name, 'cas', s.cas, 'q', s.q, 'critical_q', s.critical_q,
           'beta', s.beta, 'hazard_class', s.hazard_class, 'more_classes', s.more_classes,
           'mixture', s.mixture) ORDER BY s.id)
         FILTER (WHERE s.id IS NOT NULL), '[]') AS substances
FROM hazard_sources h
JOIN enterprises e ON e.id = h.enterprise_id
LEFT JOIN hazard_source_substances s ON s.hazard_source_id = h.id
WHERE (%(all)s OR h.enterprise_id = ANY(%(enterprise_ids)s)) AND h.retired_at IS NULL
GROUP BY h.id, e.site_geom
"""

_SOURCES_WRITE = """
UPDATE hazard_sources h
SET s_value = t.s_value, alpha = t.alpha, r_value = t.r_value, grade = t.grade,
    color = t.color, population_used = t.population_used,
    population_source = t.population_source
FROM tmp_source_results t
WHERE h.id = t.id AND (h.s_value, h.alpha, h.r_value, h.grade, h.color, h.population_used,
                       h.population_source)
      IS DISTINCT FROM (t.s_value, t.alpha, t.r_value, t.grade, t.color, t.population_used,
                        t.population_source)
RETURNING h.id
"""


def _assess_source(row: dict[str, Any], people: int | None, source: str) -> tuple[Any, ...]:
    substances = [
        gb18218.Substance(
            name=s["name"],
            q=s["q"],
            critical_q=s["critical_q"],
            beta=s["beta"],
            hazard_class=s["hazard_class"],
            cas=s["cas"],
            more_classes=tuple(s["more_classes"] or ()),
            mixture=bool(s["mixture"]),
        )
        for s in row["substances"]
    ]
    try:
        result = gb18218.assess(
            people or 0, substances, TABLE1_Q, TABLE2_Q_BY_CLASS, TABLE1_VARIANT_CAS
        )
    except gb18218.AssessmentError:
        # No substances, or one lacking Q or β: S is undefined. The source stays ungraded and
        # grey ("not assessed") rather than take an invented grade or look assessed.
        return (row["id"], None, None, None, None, GREY, people, source)
    return (
        row["id"],
        result.S,
        result.alpha,
        result.R,
        result.grade,
        result.color,
        people,
        source,
    )


async def recompute_hazard_sources(
    conn: AsyncConnection, enterprise_ids: Sequence[int] | None, config: RecomputeConfig
) -> tuple[int, list[int]]:
    """Grade the hazard sources of the given enterprises (all when None)."""
    raster = config.population_raster
    want_ring = raster is not None and raster.exists()
    cur = conn.cursor(row_factory=dict_row)
    await cur.execute(
        _SOURCES_SQL,
        {
            "want_ring": want_ring,
            "all": enterprise_ids is None,
            "enterprise_ids": list(enterprise_ids or []),
        },
    )
    rows = await cur.fetchall()
    people_by_row: list[int | None] = [r["population_500m"] for r in rows]
    sources = ["stored"] * len(rows)
    if want_ring and rows:
        assert raster is not None
        rings = [wkb.loads(r["ring"]) if r["ring"] else None for r in rows]
        from_raster = PopulationRaster(raster).sum_within(rings)
        for i, value in enumerate(from_raster):
            if value is not None:
                people_by_row[i], sources[i] = value, "raster"
    results = [
        _assess_source(row, people, source)
        for row, people, source in zip(rows, people_by_row, sources, strict=True)
    ]
    await conn.execute(
        "CREATE TEMP TABLE IF NOT EXISTS tmp_source_results (id int, s_value float8,"
        " alpha float8, r_value float8, grade smallint, color text, population_used int,"
        " population_source text) ON COMMIT DELETE ROWS"
    )
    async with conn.cursor().copy("COPY tmp_source_results FROM STDIN") as copy:
        for record in results:
            await copy.write_row(record)
    return len(rows), await _returned_ids(conn, _SOURCES_WRITE)


# -- enterprises ---------------------------------------------------------------------------
_FACTS_SQL = """
WITH target AS (
    SELECT id, diagnosis_score, diagnosed_on FROM enterprises
    WHERE (%(all)s OR id = ANY(%(ids)s)) AND retired_at IS NULL
), findings AS (
    -- open direct-red findings (MEM 2018 guide, docs/domain.md §2.2); the earliest is named
    SELECT enterprise_id, count(*) AS n,
           (array_agg(code ORDER BY found_on, id))[1] AS code,
           (array_agg(evidence ORDER BY found_on, id))[1] AS evidence
    FROM enterprise_findings
    WHERE state = 'open' AND enterprise_id IN (SELECT id FROM target)
    GROUP BY enterprise_id
), src AS (
    SELECT DISTINCT ON (enterprise_id) enterprise_id, grade, code, r_value
    FROM hazard_sources
    WHERE grade IS NOT NULL AND retired_at IS NULL AND enterprise_id IN (SELECT id FROM target)
    ORDER BY enterprise_id, grade, r_value DESC
), unit AS (
    SELECT DISTINCT ON (enterprise_id) enterprise_id, color, name
    FROM risk_units
    WHERE color IS NOT NULL AND enterprise_id IN (SELECT id FROM target)
    ORDER BY enterprise_id, array_position(ARRAY['red', 'orange', 'yellow', 'blue'], color), id
), sources AS (
    SELECT enterprise_id, count(*) AS n, count(*) FILTER (WHERE color = 'grey') AS unassessed
    FROM hazard_sources
    WHERE enterprise_id IN (SELECT id FROM target) AND retired_at IS NULL
    GROUP BY enterprise_id
), dangers AS (
    SELECT enterprise_id, count(*) AS n, min(title) AS title
    FROM hidden_dangers
    -- open until a regulator accepts it: a reported rectification still counts (§5)
    WHERE is_major AND status <> 'rectified' AND enterprise_id IN (SELECT id FROM target)
    GROUP BY enterprise_id
), red_points AS (
    SELECT h.enterprise_id, count(*) AS n
    FROM monitoring_points mp JOIN hazard_sources h ON h.id = mp.hazard_source_id
    WHERE mp.live_color = 'red' AND NOT mp.offline AND h.enterprise_id IN (SELECT id FROM target)
      AND mp.retired_at IS NULL AND h.retired_at IS NULL
    GROUP BY h.enterprise_id
), lost AS (
    -- silent detectors keeping an open, undisposed level-2 alarm (docs/domain.md §2.4)
    SELECT h.enterprise_id, count(DISTINCT mp.id) AS n,
           array_to_string((array_agg(DISTINCT mp.code ORDER BY mp.code))[1:3], ', ')
             || CASE WHEN count(DISTINCT mp.id) > 3 THEN ', …' ELSE '' END AS codes
    FROM alarms a
    JOIN monitoring_points mp ON mp.id = a.point_id
    JOIN hazard_sources h ON h.id = mp.hazard_source_id
    WHERE a.cleared_at IS NULL AND a.disposed_at IS NULL AND a.level = 2 AND mp.offline
      AND mp.retired_at IS NULL AND h.retired_at IS NULL
      AND h.enterprise_id IN (SELECT id FROM target)
    GROUP BY h.enterprise_id
), overdue AS (
    SELECT h.enterprise_id, count(*) AS n
    FROM alarms a
    JOIN monitoring_points mp ON mp.id = a.point_id
    JOIN hazard_sources h ON h.id = mp.hazard_source_id
    WHERE a.level = 2 AND a.acknowledged_at IS NULL AND a.cleared_at IS NULL
      AND a.ack_deadline < %(now)s AND h.enterprise_id IN (SELECT id FROM target)
      AND mp.retired_at IS NULL AND h.retired_at IS NULL
    GROUP BY h.enterprise_id
), parking AS (
    SELECT v.enterprise_id, count(*) AS n
    FROM alerts a JOIN vehicles v ON v.id = a.vehicle_id
    WHERE a.rule = ANY(%(parking_rules)s) AND a.status <> 'false_alarm'
      AND a.episode_start >= %(parking_since)s AND v.enterprise_id IN (SELECT id FROM target)
    GROUP BY v.enterprise_id
)
SELECT t.id, t.diagnosis_score::float8 AS diagnosis_score, t.diagnosed_on,
       coalesce(findings.n, 0) AS findings, findings.code AS finding_code,
       findings.evidence AS finding_evidence,
       src.grade, src.code, src.r_value, unit.color AS unit_color, unit.name AS unit_name,
       coalesce(sources.n, 0) AS sources, coalesce(sources.unassessed, 0) AS unassessed,
       coalesce(lost.n, 0) AS lost, lost.codes AS lost_codes,
       coalesce(dangers.n, 0) AS dangers, dangers.title AS danger_title,
       coalesce(red_points.n, 0) AS red_points, coalesce(overdue.n, 0) AS overdue,
       coalesce(parking.n, 0) AS parking
FROM target t
LEFT JOIN findings ON findings.enterprise_id = t.id
LEFT JOIN src ON src.enterprise_id = t.id
LEFT JOIN unit ON unit.enterprise_id = t.id
LEFT JOIN sources ON sources.enterprise_id = t.id
LEFT JOIN lost ON lost.enterprise_id = t.id
LEFT JOIN dangers ON dangers.enterprise_id = t.id
LEFT JOIN red_points ON red_points.enterprise_id = t.id
LEFT JOIN overdue ON overdue.enterprise_id = t.id
LEFT JOIN parking ON parking.enterprise_id = t.id
"""

_ENTERPRISES_WRITE = """
UPDATE enterprises e
SET inherent_color = t.inherent, dynamic_color = t.dynamic, risk_reasons = t.reasons,
    risk_updated_at = now()
FROM tmp_enterprise_results t
WHERE e.id = t.id AND (e.inherent_color, e.dynamic_color, e.risk_reasons)
      IS DISTINCT FROM (t.inherent, t.dynamic, t.reasons)
RETURNING e.id
"""


def _facts(
    row: dict[str, Any], score: Score | None, today: dt.date, rules: LiveRules
) -> EnterpriseFacts:
    measure = score.measure if score is not None else None
    return EnterpriseFacts(
        enterprise_id=row["id"],
        diagnosis_score=row["diagnosis_score"],
        worst_source_grade=row["grade"],
        worst_source_code=row["code"],
        worst_source_r=row["r_value"],
        worst_unit_color=row["unit_color"],
        worst_unit_name=row["unit_name"],
        hazard_sources=row["sources"],
        unassessed_sources=row["unassessed"],
        lost_detectors=row["lost"],
        lost_detector_codes=row["lost_codes"],
        open_major_dangers=row["dangers"],
        major_danger_title=row["danger_title"],
        red_points=row["red_points"],
        overdue_level2_alarms=row["overdue"],
        score_points=score.deducted if score is not None else 0,
        score_measure_code=measure.code if measure is not None else None,
        score_measure_zh=measure.text.zh if measure is not None else None,
        score_measure_en=measure.text.en if measure is not None else None,
        score_colour_raise=score.effects.colour_raise if score is not None else 0,
        parking_alerts=row["parking"],
        open_findings=row["findings"],
        finding_code=row["finding_code"],
        finding_evidence=row["finding_evidence"],
        diagnosed_on=row["diagnosed_on"],
        diagnosis_expired=diagnosis_expired(
            row["diagnosed_on"], today, rules.diagnosis_valid_years
        ),
    )


async def rate_enterprises(
    conn: AsyncConnection,
    ids: Sequence[int] | None,
    config: RecomputeConfig,
    now: dt.datetime | None = None,
) -> tuple[int, list[int], dict[int, Rating]]:
    now = now or dt.datetime.now(dt.UTC)
    cur = conn.cursor(row_factory=dict_row)
    await cur.execute(
        _FACTS_SQL,
        {
            "all": ids is None,
            "ids": list(ids or []),
            "now": now,
            "parking_rules": list(ILLEGAL_PARKING_RULES),
            "parking_since": now - dt.timedelta(hours=config.live_rules.parking_window_hours),
        },
    )
    rows = await cur.fetchall()
    # Scores (cycle, carry-over, rule set per enterprise, measures and their effects) have
    # one home: layers/prevention/scoring.
    score_of = await scores(conn, ids, now.date())
    ratings = {
        row["id"]: rate(
            _facts(row, score_of.get(row["id"]), now.date(), config.live_rules), config.live_rules
        )
        for row in rows
    }
    await conn.execute(
        "CREATE TEMP TABLE IF NOT EXISTS tmp_enterprise_results (id int, inherent text,"
        " dynamic text, reasons jsonb) ON COMMIT DELETE ROWS"
    )
    async with conn.cursor().copy("COPY tmp_enterprise_results FROM STDIN") as copy:
        for enterprise_id, rating in ratings.items():
            reasons = json.dumps([r.as_dict() for r in rating.reasons], ensure_ascii=False)
            await copy.write_row((enterprise_id, rating.inherent, rating.dynamic, reasons))
    return len(ratings), await _returned_ids(conn, _ENTERPRISES_WRITE), ratings


async def _returned_ids(conn: AsyncConnection, query: str) -> list[int]:
    """Ids from an ``UPDATE … RETURNING id``, independent of the connection's row factory."""
    cur = conn.cursor(row_factory=tuple_row)
    await cur.execute(query)
    return [int(r[0]) for r in await cur.fetchall()]


# -- entry points ----------------------------------------------------------------------------
async def recompute(
    conn: AsyncConnection,
    config: RecomputeConfig,
    enterprise_ids: Sequence[int] | None = None,
) -> RecomputeReport:
    """Full (``enterprise_ids=None``) or incremental recompute.

    Full: hazard-source grades and enterprise colours (one transaction) → pipeline segments →
    consequence zones and overlays → hexagon rollups. Incremental (one enterprise's inputs
    changed): its hazard sources and its colour in one transaction, then the overlays only if
    a source changed; hexagons follow through the NOTIFY listener (geo_api/refresh.py).
    """
    started = time.perf_counter()
    report = RecomputeReport()
    full = enterprise_ids is None
    async with conn.transaction():
        # Concurrent recomputes (ingest batches, API edits, the sweep) over overlapping
        # enterprises would update the same rows in different orders and could deadlock: they
        # queue per enterprise, and a full one excludes them all (layers/core/locks.py).
        await lock_enterprises(conn, locks.RECOMPUTE, enterprise_ids)
        report.hazard_sources, changed_sources = await recompute_hazard_sources(
            conn, enterprise_ids, config
        )
        report.hazard_sources_changed = len(changed_sources)
        report.enterprises, changed, _ = await rate_enterprises(conn, enterprise_ids, config)
        report.enterprises_changed = len(changed)
        await notify_change(conn, "hazard_sources", "hazard_sources", changed_sources, full)
        await notify_change(conn, "enterprises", "enterprises", changed, full)
    if full:
        report.pipeline_segments, _ = await recompute_pipelines(conn, None)
    if full or changed_sources:
        report.overlay_polygons = await recompute_overlays(conn)
    if full:
        # Hexagon colours follow the new colours; fixes are rolled up on demand (they are
        # large and do not depend on colours).
        await rollup_all(conn, layers=COLOURED_HEX_LAYERS)
    report.seconds = time.perf_counter() - started
    return report


async def refresh_after_create(
    conn: AsyncConnection, layer: str, ids: Sequence[int], config: RecomputeConfig
) -> None:
    """Bring derived rows up to date after new features were stored (POST or import).

    New enterprises and hazard sources are rated at once; new pipelines are cut into coloured
    segments and the overlays redrawn. Monitoring points and zones carry no colour of their
    own until readings arrive.
    """
    if not ids:
        return
    if layer == "enterprises":
        await recompute(conn, config, list(ids))
    elif layer == "hazard_sources":
        cur = conn.cursor(row_factory=tuple_row)
        await cur.execute(
            "SELECT DISTINCT enterprise_id FROM hazard_sources WHERE id = ANY(%s)", (list(ids),)
        )
        await recompute(conn, config, [int(r[0]) for r in await cur.fetchall()])
    elif layer == "pipelines":
        await recompute_pipelines(conn, list(ids))
        await recompute_overlays(conn)


#: The enterprises whose rating reads a row of a layer (they are re-rated when it is edited).
_RATED_BY: Final = {
    "enterprises": "SELECT id FROM enterprises WHERE id = ANY(%s)",
    "hazard_sources": "SELECT enterprise_id FROM hazard_sources WHERE id = ANY(%s)",
    "monitoring_points": "SELECT h.enterprise_id FROM monitoring_points mp"
    " JOIN hazard_sources h ON h.id = mp.hazard_source_id WHERE mp.id = ANY(%s)",
}


async def enterprises_rated_by(conn: AsyncConnection, layer: str, ids: Sequence[int]) -> set[int]:
    """Enterprises whose colour depends on these rows: read before an edit (the old owner)
    and after it (the new one), so both are re-rated."""
    query = _RATED_BY.get(layer)
    if query is None or not ids:
        return set()
    cur = conn.cursor(row_factory=tuple_row)
    await cur.execute(query, (list(ids),))
    return {int(r[0]) for r in await cur.fetchall() if r[0] is not None}


async def refresh_after_edit(
    conn: AsyncConnection,
    layer: str,
    ids: Sequence[int],
    enterprise_ids: set[int],
    config: RecomputeConfig,
) -> None:
    """Bring derived rows up to date after a PATCH or DELETE, as creation does: the affected
    enterprises are re-rated (retired hazard sources and points no longer count), pipelines
    re-cut and re-coloured (a retired one loses its segments), overlays redrawn."""
    if enterprise_ids:
        await recompute(conn, config, sorted(enterprise_ids))
    if layer == "pipelines" and ids:
        await recompute_pipelines(conn, list(ids))
    if layer in ("pipelines", "hazard_sources") and ids:
        # A moved, retired or deleted source leaves consequence zones behind otherwise.
        await recompute_overlays(conn)
