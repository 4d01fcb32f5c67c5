"""Pipeline segments: cut every pipeline into pieces of at most 500 m and colour each one.

Segmentation and the facts of each segment (its zone's most sensitive target, live alarms) are
set-based SQL; the colour is ``layers/risk/pipeline_rules.py``. Each segment stores likelihood,
severity, sensitive_target (zone kind), colour and ordered reasons.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any, Final

from psycopg import AsyncConnection
from psycopg.rows import dict_row

from layers.core.changes import notify_change
from layers.risk.consequence import pipeline_radii
from layers.risk.pipeline_rules import DEFAULT_RULES, PipelineRules, SegmentFacts, rate_segment

#: Longest segment, metres of geodesic length (issue 3: "segments of at most 500 m").
MAX_SEGMENT_M: Final = 500.0
#: Densify step for measuring geodesic positions along the line; keeps cut points exact to mm.
DENSIFY_STEP_M: Final = 50.0

# -- segmentation (set-based SQL) ------------------------------------------------------------
# PostGIS 3.3 has no ST_LineSubstring(geography): measure geodesic distance along a densified
# copy, map each cut's geodesic position to a planar fraction of the original line, and cut the
# original (so its vertices survive). Cut k of n sits at k·L/n, so pieces are L/n ≤ 500 m.
_SEGMENTS_SQL = """
WITH p AS (
    -- a retired pipeline has no pieces: its segments are removed as stale
    SELECT id, geom FROM pipelines WHERE (%(all)s OR id = ANY(%(ids)s)) AND retired_at IS NULL
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
     AND z.retired_at IS NULL
    JOIN unnest(%(kinds)s::text[], %(ranks)s::int[]) AS k(kind, rank) ON k.kind = z.kind
    ORDER BY seg.id, k.rank DESC, distance_m, z.id
), alarm AS (
    SELECT mp.pipeline_id, count(*) AS n, min(mp.code) AS code
    FROM alarms a JOIN monitoring_points mp ON mp.id = a.point_id
    WHERE a.cleared_at IS NULL AND mp.kind = ANY(%(live_kinds)s) AND mp.retired_at IS NULL
      AND mp.pipeline_id = ANY(%(pids)s)
    GROUP BY mp.pipeline_id
), red AS (
    SELECT pipeline_id, count(*) AS n, min(code) AS code
    FROM monitoring_points
    WHERE live_color = 'red' AND kind = ANY(%(live_kinds)s) AND pipeline_id = ANY(%(pids)s)
      AND retired_at IS NULL
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
