"""Pipeline segments: cut every pipeline into pieces of at most 500 m and colour each one.

The rule table (one home; defaults, replaceable through ``PipelineRules``):

- **Likelihood** L (1–5) of a *harmful* release on the segment = pressure class + small-bore
  step + substance step, clamped to 1–5.
  - Pressure class (layers/risk/consequence.py ``PRESSURE_EDGES_MPA``, upper edges inclusive):
    ≤ 0.4 MPa → 1 (GB 50028-2006 medium/low), ≤ 1.6 → 2 (sub-high), ≤ 4.0 → 3 (high),
    ≤ 10 → 4 (transmission; TSG D0001-2009 makes flammable media at ≥ 4.0 MPa GC1),
    above → 5 (TSG D0001: any fluid at ≥ 10 MPa is GC1). Stress and the driving force of a
    leak both rise with pressure.
  - Small bore: + 1 below 127 mm (5 in). EGIG's incident reports find the failure frequency
    highest in the smallest diameter class and falling with diameter (thin walls, external
    interference).
  - Substance (layers/risk/substances.py by CAS, else name keywords, else the worst): toxic + 1 (a
    toxic release harms without ignition, while a flammable one needs an ignition source —
    ignition probabilities of pipeline releases are well below 1), flammable 0, neither − 1.
- **Severity** S (1–5) = substance hazard (toxic 3, flammable 2, neither 1) + the most
  sensitive protected target within the segment's yellow consequence zone (school or
  hospital + 3, residential + 2, water source + 1, none 0), clamped to 1–5. The order follows
  GB 36894-2018 «危险化学品生产装置和储存设施风险基准»: schools and hospitals are *highly
  sensitive* targets and take the strictest individual-risk criterion (3×10⁻⁷/yr new,
  3×10⁻⁶/yr in service); residential areas are *general* targets graded by headcount into
  classes 1–3 whose criteria relax to 1×10⁻⁵ / 3×10⁻⁵; drinking-water sources are not a
  population target of GB 36894 at all (they are protected by the Water Pollution Prevention
  Law), so they rank below homes but above open land. The yellow zone (2 kW/m², pain within
  60 s) is the outer limit of harm; blue is only an awareness ring.
- **Colour** = the LS matrix of layers/risk/units.py (R = L × S: ≥ 20 red, ≥ 9 orange,
  ≥ 4 yellow, else blue).
- **Live override**: an open alarm (not cleared) or a red live colour on a pressure, leak, flow
  or gas-detector point of the pipeline forces every segment of that pipeline red — the line
  is operated as one pressure system, and all four kinds signal loss of containment.

Each segment stores likelihood, severity, sensitive_target (zone kind), colour and ordered
reasons (live causes first, then the matrix, then its inputs), each ``{code, zh, en}``.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any, Final

from psycopg import AsyncConnection
from psycopg.rows import dict_row

from layers.core.changes import notify_change
from layers.core.colors import RiskColor
from layers.risk.consequence import (
    PRESSURE_EDGES_MPA,
    SubstanceHazard,
    band_index,
    pipeline_radii,
    substance_hazard,
)
from layers.risk.units import LsThresholds, ls

#: Longest segment, metres of geodesic length (issue 3: "segments of at most 500 m").
MAX_SEGMENT_M: Final = 500.0
#: Densify step for measuring geodesic positions along the line; keeps cut points exact to mm.
DENSIFY_STEP_M: Final = 50.0

COLOR_ZH: Final[dict[str, str]] = {"red": "红", "orange": "橙", "yellow": "黄", "blue": "蓝"}
TARGET_ZH: Final[dict[str, str]] = {
    "school": "学校",
    "hospital": "医院",
    "residential": "居民区",
    "water_source": "饮用水水源地",
}
PRESSURE_CLASS_NAMES: Final[tuple[tuple[str, str], ...]] = (
    ("中压及以下", "medium or low pressure"),
    ("次高压", "sub-high pressure"),
    ("高压", "high pressure"),
    ("输送高压", "transmission pressure"),
    ("超高压", "very high pressure"),
)


@dataclass(frozen=True)
class PipelineRules:
    """Every threshold of the rule table above; a deployment may replace any of them."""

    #: Likelihood by pressure band (index into consequence.PRESSURE_EDGES_MPA, top band last).
    pressure_likelihood: tuple[int, ...] = (1, 2, 3, 4, 5)
    small_bore_below_mm: float = 127.0
    small_bore_step: int = 1
    toxic_likelihood_step: int = 1
    inert_likelihood_step: int = -1
    severity_toxic: int = 3
    severity_flammable: int = 2
    severity_inert: int = 1
    #: Protected-zone kind → severity step, and the sensitivity order (most sensitive first).
    target_severity: dict[str, int] = field(
        default_factory=lambda: {"school": 3, "hospital": 3, "residential": 2, "water_source": 1}
    )
    #: The consequence zone searched for protected targets.
    target_zone_color: RiskColor = "yellow"
    #: Monitoring-point kinds whose open alarm or red live colour forces the pipeline red.
    live_kinds: tuple[str, ...] = ("pressure", "leak", "flow", "gas_flammable", "gas_toxic")
    ls_thresholds: LsThresholds = field(default_factory=LsThresholds)


DEFAULT_RULES: Final = PipelineRules()


@dataclass(frozen=True)
class SegmentFacts:
    """Everything one segment's rating needs, gathered by ``_FACTS_SQL``."""

    segment_id: int
    substance: str
    cas: str | None
    diameter_mm: float
    pressure_mpa: float
    target_kind: str | None = None
    target_name: str | None = None
    target_distance_m: float | None = None
    search_radius_m: float = 0.0
    open_alarms: int = 0
    alarm_point: str | None = None
    red_points: int = 0
    red_point: str | None = None


@dataclass(frozen=True)
class SegmentRating:
    likelihood: int
    severity: int
    sensitive_target: str | None
    color: RiskColor
    reasons: list[dict[str, str]]


def _reason(code: str, zh: str, en: str) -> dict[str, str]:
    return {"code": code, "zh": zh, "en": en}


def _clamp(value: int) -> int:
    return max(1, min(5, value))


def _substance_text(flags: SubstanceHazard) -> tuple[str, str]:
    if flags.basis == "default":
        return "介质未识别，按有毒易燃从严", "unknown substance, treated as toxic and flammable"
    parts = [p for p, on in (("有毒", flags.toxic), ("易燃", flags.flammable)) if on]
    en = [p for p, on in (("toxic", flags.toxic), ("flammable", flags.flammable)) if on]
    return ("、".join(parts) or "不燃无毒"), (" and ".join(en) or "neither toxic nor flammable")


def likelihood_of(
    pressure_mpa: float, diameter_mm: float, flags: SubstanceHazard, rules: PipelineRules
) -> tuple[int, list[dict[str, str]]]:
    band = band_index(pressure_mpa, PRESSURE_EDGES_MPA)
    value = rules.pressure_likelihood[band]
    zh, en = PRESSURE_CLASS_NAMES[band]
    reasons = [
        _reason(
            "pressure_class",
            f"设计压力 {pressure_mpa:g} MPa（{zh}）：可能性基数 {value}",
            f"design pressure {pressure_mpa:g} MPa ({en}): base likelihood {value}",
        )
    ]
    if diameter_mm < rules.small_bore_below_mm:
        value += rules.small_bore_step
        reasons.append(
            _reason(
                "small_bore",
                f"管径 {diameter_mm:g} mm 小于 {rules.small_bore_below_mm:g} mm，失效频率较高",
                f"diameter {diameter_mm:g} mm below {rules.small_bore_below_mm:g} mm: higher "
                "failure frequency",
            )
        )
    if flags.toxic:
        value += rules.toxic_likelihood_step
        reasons.append(
            _reason(
                "toxic_release",
                f"有毒介质泄漏无需点火即可致害：可能性 {rules.toxic_likelihood_step:+d}",
                "a toxic release harms without ignition: likelihood "
                f"{rules.toxic_likelihood_step:+d}",
            )
        )
    elif not flags.flammable:
        value += rules.inert_likelihood_step
        reasons.append(
            _reason(
                "inert_fluid",
                f"介质不燃无毒，仅有压力能量：可能性 {rules.inert_likelihood_step:+d}",
                "neither flammable nor toxic, only pressure energy: likelihood "
                f"{rules.inert_likelihood_step:+d}",
            )
        )
    return _clamp(value), reasons


def severity_of(
    flags: SubstanceHazard, target_kind: str | None, rules: PipelineRules
) -> tuple[int, int]:
    """``(severity, substance part)``; the target part comes from ``rules.target_severity``."""
    if flags.toxic:
        base = rules.severity_toxic
    elif flags.flammable:
        base = rules.severity_flammable
    else:
        base = rules.severity_inert
    step = rules.target_severity.get(target_kind, 0) if target_kind else 0
    return _clamp(base + step), base


def rate_segment(facts: SegmentFacts, rules: PipelineRules = DEFAULT_RULES) -> SegmentRating:
    """Likelihood, severity, colour and reasons of one segment (pure; no database)."""
    flags = substance_hazard(facts.substance, facts.cas)
    likelihood, input_reasons = likelihood_of(facts.pressure_mpa, facts.diameter_mm, flags, rules)
    severity, base = severity_of(flags, facts.target_kind, rules)
    r_value, color = ls(likelihood, severity, rules.ls_thresholds)
    sub_zh, sub_en = _substance_text(flags)
    input_reasons.append(
        _reason(
            "substance",
            f"介质 {facts.substance}：{sub_zh}（严重性基数 {base}）",
            f"substance {facts.substance}: {sub_en} (base severity {base})",
        )
    )
    radius = f"{facts.search_radius_m:g}"
    if facts.target_kind:
        kind_zh = TARGET_ZH.get(facts.target_kind, facts.target_kind)
        input_reasons.append(
            _reason(
                "sensitive_target",
                f"后果区（{radius} m）内最敏感目标：{kind_zh}「{facts.target_name or ''}」，"
                f"距 {facts.target_distance_m or 0:.0f} m",
                f"most sensitive target within the {radius} m zone: "
                f"{facts.target_kind.replace('_', ' ')} '{facts.target_name or ''}', "
                f"{facts.target_distance_m or 0:.0f} m away",
            )
        )
    else:
        input_reasons.append(
            _reason(
                "no_sensitive_target",
                f"后果区（{radius} m）内无防护目标",
                f"no protected target within the {radius} m zone",
            )
        )
    live: list[dict[str, str]] = []
    if facts.open_alarms:
        live.append(
            _reason(
                "live_alarm",
                f"管道存在 {facts.open_alarms} 条未解除报警（监测点 {facts.alarm_point}）",
                f"{facts.open_alarms} open alarm(s) on the pipeline (point {facts.alarm_point})",
            )
        )
    if facts.red_points:
        live.append(
            _reason(
                "live_point_red",
                f"管道监测点 {facts.red_point} 实时状态为红色",
                f"pipeline monitoring point {facts.red_point} is live red",
            )
        )
    matrix = _reason(
        "ls_matrix",
        f"风险矩阵 L×S = {likelihood}×{severity} = {r_value}：{COLOR_ZH[color]}",
        f"LS matrix L×S = {likelihood}×{severity} = {r_value}: {color}",
    )
    final: RiskColor = "red" if live else color
    return SegmentRating(
        likelihood, severity, facts.target_kind, final, [*live, matrix, *input_reasons]
    )


# -- segmentation (set-based SQL) ------------------------------------------------------------
# PostGIS 3.3 has no ST_LineSubstring(geography): measure geodesic distance along a densified
# copy, map each cut's geodesic position to a planar fraction of the original line, and cut the
# original (so its vertices survive). Cut k of n sits at k·L/n, so pieces are L/n ≤ 500 m.
_SEGMENTS_SQL = """
WITH p AS (
    SELECT id, geom FROM pipelines WHERE %(all)s OR id = ANY(%(ids)s)
), v AS (
    SELECT p.id, d.path[1] AS i, d.geom AS pt,
           lag(d.geom) OVER (PARTITION BY p.id ORDER BY d.path[1]) AS prev
    FROM p CROSS JOIN LATERAL
         ST_DumpPoints(ST_Segmentize(p.geom::geography, %(step)s)::geometry) d
), e AS (
    SELECT id, i, coalesce(ST_Distance(prev::geography, pt::geography), 0) AS dm,
           coalesce(ST_Distance(prev, pt), 0) AS dd
    FROM v
), c AS (
    SELECT id, i, dm, dd, sum(dm) OVER w AS m1, sum(dd) OVER w AS d1
    FROM e WINDOW w AS (PARTITION BY id ORDER BY i)
), c2 AS (
    SELECT id, i, dm, dd, m1, d1,
           coalesce(lag(m1) OVER w, 0) AS m0, coalesce(lag(d1) OVER w, 0) AS d0
    FROM c WINDOW w AS (PARTITION BY id ORDER BY i)
), tot AS (
    SELECT id, max(m1) AS m, max(d1) AS d,
           greatest(1, ceil(max(m1) / %(max_m)s))::int AS n
    FROM c GROUP BY id
), cuts AS (
    SELECT c2.id, k, (c2.d0 + (k * tot.m / tot.n - c2.m0) / c2.dm * c2.dd) / tot.d AS f
    FROM c2 JOIN tot USING (id)
    CROSS JOIN LATERAL generate_series(
        floor(c2.m0 / (tot.m / tot.n))::int + 1,
        least(floor(c2.m1 / (tot.m / tot.n))::int, tot.n - 1)) AS k
    WHERE c2.dm > 0
), bounds AS (
    SELECT id, 0 AS k, 0.0::float8 AS f FROM tot
    UNION ALL SELECT id, k, f FROM cuts
    UNION ALL SELECT id, n, 1.0 FROM tot
), pieces AS (
    SELECT id, k + 1 AS seq, f AS f0, lead(f) OVER (PARTITION BY id ORDER BY k) AS f1
    FROM bounds
)
INSERT INTO tmp_pipeline_pieces (pipeline_id, seq, length_m, geom)
SELECT pieces.id, pieces.seq, ST_Length(s.g::geography), s.g
FROM pieces JOIN p ON p.id = pieces.id
CROSS JOIN LATERAL (SELECT ST_LineSubstring(p.geom, pieces.f0, pieces.f1) AS g) s
WHERE pieces.f1 IS NOT NULL
"""

_PIECES_UPDATE = """
UPDATE pipeline_segments s SET length_m = t.length_m, geom = t.geom
FROM tmp_pipeline_pieces t
WHERE s.pipeline_id = t.pipeline_id AND s.seq = t.seq AND NOT ST_OrderingEquals(s.geom, t.geom)
RETURNING s.id
"""

_PIECES_INSERT = """
INSERT INTO pipeline_segments (pipeline_id, seq, length_m, geom)
SELECT t.pipeline_id, t.seq, t.length_m, t.geom FROM tmp_pipeline_pieces t
WHERE NOT EXISTS (SELECT 1 FROM pipeline_segments s
                  WHERE s.pipeline_id = t.pipeline_id AND s.seq = t.seq)
ORDER BY t.pipeline_id, t.seq
RETURNING id
"""

_PIECES_STALE = """
SELECT s.id FROM pipeline_segments s
WHERE (%(all)s OR s.pipeline_id = ANY(%(ids)s))
  AND NOT EXISTS (SELECT 1 FROM tmp_pipeline_pieces t
                  WHERE t.pipeline_id = s.pipeline_id AND t.seq = s.seq)
"""


async def split_pipelines(
    conn: AsyncConnection, pipeline_ids: Sequence[int] | None
) -> tuple[list[int], list[int]]:
    """Re-cut the given pipelines (all when None); ``(changed or new ids, removed ids)``.

    A segment keeps its id while its (pipeline, seq) exists, and is rewritten only when its
    geometry changed, so zones and tiles keyed by segment id stay valid.
    """
    params = {"all": pipeline_ids is None, "ids": list(pipeline_ids or [])}
    await conn.execute(
        "CREATE TEMP TABLE IF NOT EXISTS tmp_pipeline_pieces (pipeline_id int, seq int,"
        " length_m float8, geom geometry(LineString, 4326)) ON COMMIT DELETE ROWS"
    )
    await conn.execute("TRUNCATE tmp_pipeline_pieces")
    await conn.execute(_SEGMENTS_SQL, {**params, "step": DENSIFY_STEP_M, "max_m": MAX_SEGMENT_M})
    stale = [r[0] for r in await (await conn.execute(_PIECES_STALE, params)).fetchall()]
    if stale:
        # The bbox must be read while the rows still exist; NOTIFY is sent at commit.
        await notify_change(conn, "pipeline_segments", "pipeline_segments", stale)
        await conn.execute("DELETE FROM pipeline_segments WHERE id = ANY(%s)", (stale,))
    updated = [r[0] for r in await (await conn.execute(_PIECES_UPDATE)).fetchall()]
    inserted = [r[0] for r in await (await conn.execute(_PIECES_INSERT)).fetchall()]
    return sorted(updated + inserted), stale


# -- colouring (set-based SQL for the facts, Python for the rules) ---------------------------
_FACTS_SQL = """
WITH seg AS (
    SELECT s.id, s.pipeline_id, s.geom, r.radius
    FROM pipeline_segments s
    JOIN unnest(%(pids)s::int[], %(radii)s::float8[]) AS r(pipeline_id, radius)
      ON r.pipeline_id = s.pipeline_id
), target AS (
    SELECT DISTINCT ON (seg.id) seg.id, z.kind, z.name,
           ST_Distance(seg.geom::geography, z.geom::geography) AS distance_m
    FROM seg
    JOIN zones z
      -- expand the segment (the constant side), never the indexed column; 110 km per degree
      -- of latitude and cos(|lat| + 1°) for longitude make the box a safe over-estimate
      ON z.geom && ST_Expand(seg.geom, seg.radius / 110000.0
                             / cos(radians(least(abs(ST_Y(ST_StartPoint(seg.geom))) + 1, 89))))
     AND ST_DWithin(seg.geom::geography, z.geom::geography, seg.radius)
    JOIN unnest(%(kinds)s::text[], %(ranks)s::int[]) AS k(kind, rank) ON k.kind = z.kind
    ORDER BY seg.id, k.rank DESC, distance_m, z.id
), alarm AS (
    SELECT mp.pipeline_id, count(*) AS n, min(mp.code) AS code
    FROM alarms a JOIN monitoring_points mp ON mp.id = a.point_id
    WHERE a.cleared_at IS NULL AND mp.kind = ANY(%(live_kinds)s)
      AND mp.pipeline_id = ANY(%(pids)s)
    GROUP BY mp.pipeline_id
), red AS (
    SELECT pipeline_id, count(*) AS n, min(code) AS code
    FROM monitoring_points
    WHERE live_color = 'red' AND kind = ANY(%(live_kinds)s) AND pipeline_id = ANY(%(pids)s)
    GROUP BY pipeline_id
)
SELECT seg.id, seg.radius, target.kind AS target_kind, target.name AS target_name,
       target.distance_m, coalesce(alarm.n, 0) AS open_alarms, alarm.code AS alarm_point,
       coalesce(red.n, 0) AS red_points, red.code AS red_point, seg.pipeline_id
FROM seg
LEFT JOIN target ON target.id = seg.id
LEFT JOIN alarm ON alarm.pipeline_id = seg.pipeline_id
LEFT JOIN red ON red.pipeline_id = seg.pipeline_id
"""

_RESULTS_WRITE = """
UPDATE pipeline_segments s
SET likelihood = t.likelihood, severity = t.severity, sensitive_target = t.sensitive_target,
    color = t.color, reasons = t.reasons
FROM tmp_segment_results t
WHERE s.id = t.id AND (s.likelihood, s.severity, s.sensitive_target, s.color, s.reasons)
      IS DISTINCT FROM (t.likelihood, t.severity, t.sensitive_target, t.color, t.reasons)
RETURNING s.id
"""


async def rate_segments(
    conn: AsyncConnection, pipeline_ids: Sequence[int] | None, rules: PipelineRules
) -> tuple[int, list[int]]:
    """Colour every segment of the given pipelines; ``(segments rated, changed ids)``."""
    cur = conn.cursor(row_factory=dict_row)
    await cur.execute(
        "SELECT id, substance, cas, diameter_mm, pressure_mpa FROM pipelines"
        " WHERE %(all)s OR id = ANY(%(ids)s)",
        {"all": pipeline_ids is None, "ids": list(pipeline_ids or [])},
    )
    pipes = {row["id"]: row for row in await cur.fetchall()}
    if not pipes:
        return 0, []
    radius = {
        pid: pipeline_radii(p["diameter_mm"], p["pressure_mpa"]).of(rules.target_zone_color)
        for pid, p in pipes.items()
    }
    ranked = sorted(rules.target_severity.items(), key=lambda kv: kv[1])
    await cur.execute(
        _FACTS_SQL,
        {
            "pids": list(radius),
            "radii": list(radius.values()),
            "kinds": [k for k, _ in ranked],
            "ranks": [r for _, r in ranked],
            "live_kinds": list(rules.live_kinds),
        },
    )
    rows: list[dict[str, Any]] = await cur.fetchall()
    await conn.execute(
        "CREATE TEMP TABLE IF NOT EXISTS tmp_segment_results (id int, likelihood smallint,"
        " severity smallint, sensitive_target text, color text, reasons jsonb)"
        " ON COMMIT DELETE ROWS"
    )
    await conn.execute("TRUNCATE tmp_segment_results")
    async with conn.cursor().copy("COPY tmp_segment_results FROM STDIN") as copy:
        for row in rows:
            pipe = pipes[row["pipeline_id"]]
            rating = rate_segment(
                SegmentFacts(
                    segment_id=row["id"],
                    substance=pipe["substance"],
                    cas=pipe["cas"],
                    diameter_mm=pipe["diameter_mm"],
                    pressure_mpa=pipe["pressure_mpa"],
                    target_kind=row["target_kind"],
                    target_name=row["target_name"],
                    target_distance_m=row["distance_m"],
                    search_radius_m=row["radius"],
                    open_alarms=row["open_alarms"],
                    alarm_point=row["alarm_point"],
                    red_points=row["red_points"],
                    red_point=row["red_point"],
                ),
                rules,
            )
            await copy.write_row(
                (
                    row["id"],
                    rating.likelihood,
                    rating.severity,
                    rating.sensitive_target,
                    rating.color,
                    json.dumps(rating.reasons, ensure_ascii=False),
                )
            )
    changed = await (await conn.execute(_RESULTS_WRITE)).fetchall()
    return len(rows), [r[0] for r in changed]


async def recompute_pipelines(
    conn: AsyncConnection,
    pipeline_ids: Sequence[int] | None,
    rules: PipelineRules = DEFAULT_RULES,
) -> tuple[int, list[int]]:
    """Split and colour the given pipelines (all when None), in one transaction.

    Returns the number of segments rated and the ids of segments whose geometry or colour
    changed (removed segments are announced in the NOTIFY but, being gone, not returned).
    """
    async with conn.transaction():
        reshaped, _removed = await split_pipelines(conn, pipeline_ids)
        count, recoloured = await rate_segments(conn, pipeline_ids, rules)
        changed = sorted(set(reshaped) | set(recoloured))
        await notify_change(conn, "pipeline_segments", "pipeline_segments", changed)
    return count, changed
