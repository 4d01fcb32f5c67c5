"""The demo city's live layer: 24 h of readings, planted alarms, hidden dangers, score events.

Why: the live panels (point colours, alarms, the daily report, the licence scores) need rows
that are true of the stored data, not decorations. Everything is drawn from the seed; only the
clock (``now``, the end of the 24 h) comes from the caller.

- Readings: one per point every ``CADENCE_S`` for the 24 h ending at ``now`` (a demo cadence,
  not the points' own sampling interval), normal values inside each point's limits. All but the
  last ``WINDOW`` samples go straight into ``readings`` with binary COPY; the last ``WINDOW``
  of every point go through the real ingest path (``layers.monitoring.ingest``), so
  ``monitoring_state``, ``alarms`` and ``live_color`` are what the evaluator produces.
- Planted alarms: the last few samples of a handful of points sit above level 1 / H or level 2
  / HH (the last one still in alarm), one pair of level-2 points on the same hazard source so
  both turn red; the others on distinct sources.
- Hidden dangers, inspection tasks and Xiaoshan score events (manual items of
  the SAMPLE set layers/prevention/data/rule_sets/xiaoshan.json), a few reaching 6 points;
  their lifecycle states, the Hailing sample set and the licences are layers/demo_city/scores.py.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import psycopg
from psycopg import AsyncConnection

from layers.core import pgcopy
from layers.core.partitions import ensure_daily_partitions
from layers.monitoring.config import MonitoringRules
from layers.monitoring.ingest import ingest
from layers.monitoring.parse import Rows
from layers.monitoring.thresholds import set_points
from layers.risk.recompute import RecomputeConfig, recompute

CADENCE_S = 300
SAMPLES = 24 * 3600 // CADENCE_S  # 288: (now - 24 h, now]
WINDOW = 24  # last samples of every point judged by the evaluator (2 h)
COPY_CHUNK = 250_000
SCORE_SET = "xiaoshan"
#: Manual Xiaoshan items summing to exactly 6 points (key supervision).
SIX_POINT_COMBOS = (("XS-04",), ("XS-07", "XS-08", "XS-10"), ("XS-08", "XS-09", "XS-11", "XS-10"))
SMALL_ITEMS = ("XS-08", "XS-09", "XS-10", "XS-11")

DANGER_TITLES = (
    "储罐区可燃气体探测器未定期检定",
    "防火堤内积存可燃物料",
    "装卸区静电接地报警器失效",
    "重大危险源安全监控系统数据中断",
    "压力容器安全阀超期未校验",
    "消防泵房备用泵无法启动",
    "动火作业未执行审批",
    "储罐液位计显示与实际偏差",
    "有毒气体报警仪报警值设置过高",
    "应急喷淋洗眼器损坏",
    "电气设备防爆等级不符合要求",
    "危化品仓库超量储存",
)
TASK_TITLES = (
    "重大危险源包保责任人季度检查",
    "可燃有毒气体报警器月度检定",
    "储罐区防雷防静电检测",
    "应急预案演练",
    "特殊作业票证抽查",
    "安全阀年度校验",
)


@dataclass
class LiveReport:
    readings: int = 0
    evaluated: int = 0
    alarms: int = 0
    red_points: int = 0
    hidden_dangers: int = 0
    inspection_tasks: int = 0
    score_events: int = 0
    enterprises: list[int] = field(default_factory=list)
    truth: dict[str, Any] = field(default_factory=dict)


def default_now() -> dt.datetime:
    """The wall clock floored to the cadence (UTC)."""
    t = int(dt.datetime.now(dt.UTC).timestamp()) // CADENCE_S * CADENCE_S
    return dt.datetime.fromtimestamp(t, dt.UTC)


def _us(t: dt.datetime) -> int:
    return int(t.timestamp()) * 1_000_000 + t.microsecond


def _iso(us: int) -> str:
    return dt.datetime.fromtimestamp(us / 1e6, dt.UTC).isoformat()


@dataclass
class _Points:
    id: np.ndarray
    kind: list[str]
    source: np.ndarray  # hazard_source_id, 0 for pipeline points
    enterprise: np.ndarray  # 0 for pipeline points
    sp: np.ndarray  # n × 4: high1, high2, low1, low2 (NaN = none)


def _load_points(conn: psycopg.Connection) -> _Points:
    rows = conn.execute(
        "SELECT mp.id, mp.kind, mp.level1, mp.level2, mp.limit_h, mp.limit_hh, mp.limit_l,"
        " mp.limit_ll, coalesce(mp.hazard_source_id, 0), coalesce(h.enterprise_id, 0)"
        " FROM monitoring_points mp LEFT JOIN hazard_sources h ON h.id = mp.hazard_source_id"
        " ORDER BY mp.id"
    ).fetchall()
    return _Points(
        np.array([r[0] for r in rows], dtype=np.int64),
        [r[1] for r in rows],
        np.array([r[8] for r in rows], dtype=np.int64),
        np.array([r[9] for r in rows], dtype=np.int64),
        np.array([set_points(*r[1:8]) for r in rows], dtype=np.float64).reshape(-1, 4),
    )


def _normal_values(rng: np.random.Generator, pts: _Points) -> np.ndarray:
    """n × SAMPLES values strictly inside each point's normal band (no level raised)."""
    n = len(pts.id)
    h1, l1 = pts.sp[:, 0], pts.sp[:, 2]
    has_h, has_l = ~np.isnan(h1), ~np.isnan(l1)
    lower = np.where(has_l, l1, 0.0)
    upper = np.where(has_h, h1, np.where(has_l, 2 * np.abs(l1) + 10, 10.0))
    span = upper - lower
    gas = has_h & ~has_l & np.isin(pts.kind, ["gas_flammable", "gas_toxic"])
    # Gas sits near zero; bounded quantities near the middle of their band.
    mid = np.where(
        gas,
        lower + span * rng.uniform(0.05, 0.15, n),
        lower + span * rng.uniform(0.4, 0.6, n),
    )
    amp = span * np.where(gas, 0.03, 0.06)
    phase = rng.uniform(0, 2 * np.pi, n)
    k = np.arange(SAMPLES)
    wave = np.sin(2 * np.pi * k[None, :] / SAMPLES + phase[:, None])
    noise = np.clip(rng.standard_normal((n, SAMPLES)), -2.5, 2.5)
    v = mid[:, None] + amp[:, None] * (0.6 * wave + 0.4 * noise)
    lo = (lower + 0.15 * span)[:, None]
    hi = (upper - 0.15 * span)[:, None]
    lo = np.where(gas[:, None], np.maximum(lower[:, None], 0.0), lo)
    return np.round(np.clip(v, lo, hi), 3)


@dataclass
class _Plant:
    row: int
    level: int
    samples: int


def _choose_plants(rng: np.random.Generator, pts: _Points, n: int) -> list[_Plant]:
    """A red pair on one hazard source, then single points on distinct other sources."""
    on_source = (pts.source > 0) & (pts.enterprise > 0)
    lvl2 = on_source & ~np.isnan(pts.sp[:, 1])
    kinds = np.array(pts.kind)
    plants: list[_Plant] = []
    used: set[int] = set()
    sources, counts = np.unique(pts.source[lvl2], return_counts=True)
    pair_sources = sources[counts >= 2]
    if len(pair_sources):
        src = int(pair_sources[int(rng.integers(len(pair_sources)))])
        rows = np.flatnonzero(lvl2 & (pts.source == src))
        for r in rng.choice(rows, 2, replace=False).tolist():
            plants.append(_Plant(int(r), 2, int(rng.integers(5, 10))))
        used.add(src)
    # Singles: flammable gas above level 1 first, then pressure above HH, then a mix.
    wanted = [("gas_flammable", 1), ("pressure", 2), ("gas_toxic", 1), ("temperature", 1)]
    wanted += [("gas_flammable", 1), ("level", 1), ("gas_flammable", 2), ("pressure", 1)]
    i = 0
    while len(plants) < n and i < 4 * len(wanted):
        kind, level = wanted[i % len(wanted)]
        i += 1
        ok = on_source & (kinds == kind) & ~np.isnan(pts.sp[:, level - 1])
        ok &= ~np.isin(pts.source, list(used))
        rows = np.flatnonzero(ok)
        if len(rows) == 0:
            continue
        r = int(rows[int(rng.integers(len(rows)))])
        used.add(int(pts.source[r]))
        plants.append(_Plant(r, level, int(rng.integers(4, 12))))
    return plants


def _plant_values(rng: np.random.Generator, pts: _Points, v: np.ndarray, p: _Plant) -> None:
    h1, h2 = pts.sp[p.row, 0], pts.sp[p.row, 1]
    if p.level == 2:
        target = h2 * rng.uniform(1.03, 1.12, p.samples)
    elif np.isnan(h2):
        target = h1 * rng.uniform(1.03, 1.15, p.samples)
    else:
        target = h1 + (h2 - h1) * rng.uniform(0.2, 0.7, p.samples)
    v[p.row, SAMPLES - p.samples :] = np.round(target, 3)


def _copy_readings(conn: psycopg.Connection, pid: np.ndarray, t: np.ndarray, v: np.ndarray) -> int:
    with (
        conn.cursor() as cur,
        cur.copy("COPY readings (point_id, ts, value) FROM STDIN BINARY") as cp,
    ):
        cp.write(pgcopy.HEADER)
        for a in range(0, len(pid), COPY_CHUNK):
            b = a + COPY_CHUNK
            cp.write(
                pgcopy.encode_rows(
                    [
                        ("int4", pid[a:b].astype(np.int32)),
                        ("timestamptz", t[a:b]),
                        ("float8", v[a:b]),
                    ]
                )
            )
        cp.write(pgcopy.TRAILER)
    return len(pid)


def _dangers(
    rng: np.random.Generator, ents: list[int], n: int, now: dt.datetime
) -> list[dict[str, Any]]:
    n_major = max(1, round(n / 10))
    out: list[dict[str, Any]] = []
    picks = rng.choice(ents, size=n, replace=len(ents) < n).tolist()
    for i, e in enumerate(picks):
        major = i < n_major
        found = now - dt.timedelta(hours=float(rng.uniform(6, 90 * 24)))
        deadline = found.date() + dt.timedelta(days=int(rng.integers(7, 46)))
        if major:
            status = "found" if i % 2 == 0 else "rectifying"
        else:
            status = str(rng.choice(["found", "rectifying", "rectified"], p=[0.3, 0.3, 0.4]))
        rectified = None
        if status == "rectified":
            rectified = found + (now - found) * float(rng.uniform(0.2, 0.95))
        out.append(
            {
                "enterprise_id": int(e),
                "title": DANGER_TITLES[int(rng.integers(len(DANGER_TITLES)))],
                "is_major": major,
                "status": status,
                "found_at": found,
                "deadline": deadline,
                "rectified_at": rectified,
            }
        )
    return out


def _tasks(
    rng: np.random.Generator, ents: list[int], n: int, now: dt.datetime
) -> list[tuple[Any, ...]]:
    out: list[tuple[Any, ...]] = []
    today = now.date()
    for e in rng.choice(ents, size=n, replace=len(ents) < n).tolist():
        due = today + dt.timedelta(days=int(rng.integers(-30, 31)))
        done = None
        if due <= today and rng.random() < 0.7:
            done = now - dt.timedelta(hours=float(rng.uniform(1, 24 * ((today - due).days + 5))))
        title = TASK_TITLES[int(rng.integers(len(TASK_TITLES)))]
        out.append((int(e), title, due, done))
    return out


def _xiaoshan(conn: psycopg.Connection) -> tuple[dict[str, int], tuple[int, int]]:
    """Item points and cycle start (month, day) of the latest stored Xiaoshan set."""
    rows = conn.execute(
        "SELECT i.code, i.points, s.cycle_start_month, s.cycle_start_day FROM rule_items i"
        " JOIN rule_sets s ON s.id = i.rule_set_id WHERE s.code = %s"
        " AND s.version = (SELECT max(version) FROM rule_sets WHERE code = %s)",
        (SCORE_SET, SCORE_SET),
    ).fetchall()
    return {r[0]: int(r[1]) for r in rows}, (int(rows[0][2]), int(rows[0][3]))


def _scores(
    rng: np.random.Generator,
    ents: list[int],
    n_six: int,
    n_small: int,
    now: dt.datetime,
    points: dict[str, int],
    cycle_start: tuple[int, int],
) -> list[dict[str, Any]]:
    local = now.astimezone(dt.timezone(dt.timedelta(hours=8))).date()
    start = dt.date(local.year, *cycle_start)
    if start > local:
        start = start.replace(year=start.year - 1)
    earliest = max(
        dt.datetime.combine(start, dt.time(1), tzinfo=dt.timezone(dt.timedelta(hours=8))),
        now - dt.timedelta(days=120),
    )
    span = (now - dt.timedelta(hours=1) - earliest).total_seconds()
    picks = rng.choice(ents, size=min(len(ents), n_six + n_small), replace=False).tolist()
    out: list[dict[str, Any]] = []
    for i, e in enumerate(picks):
        if i < n_six:
            items = SIX_POINT_COMBOS[i % len(SIX_POINT_COMBOS)]
        else:
            k = int(rng.integers(1, 3))
            items = tuple(rng.choice(SMALL_ITEMS, size=k, replace=False).tolist())
        events = []
        for code in items:
            at = earliest + dt.timedelta(seconds=float(rng.uniform(0, max(span, 60))))
            events.append({"item_code": code, "points": points[code], "occurred_at": at})
        out.append(
            {"enterprise_id": int(e), "points": sum(x["points"] for x in events), "events": events}
        )
    return out


def write_static(
    conn: psycopg.Connection, seed: int, scale: float, now: dt.datetime, report: LiveReport
) -> tuple[_Points, np.ndarray, np.ndarray, list[_Plant]]:
    """Bulk part (sync, one transaction): old readings, dangers, tasks, score events.

    Returns the points, the sample times, the values and the plants for the evaluator."""
    rng = np.random.default_rng([seed, 15])
    pts = _load_points(conn)
    now_us = _us(now)
    t = now_us - CADENCE_S * 1_000_000 * np.arange(SAMPLES - 1, -1, -1, dtype=np.int64)
    v = _normal_values(rng, pts)
    plants = _choose_plants(rng, pts, max(3, round(8 * scale)))
    for p in plants:
        _plant_values(rng, pts, v, p)

    days = {dt.datetime.fromtimestamp(int(x) / 1e6, dt.UTC).date() for x in (t[0], t[-1])}
    ensure_daily_partitions(conn, "readings", days)
    conn.commit()
    head = SAMPLES - WINDOW
    n = len(pts.id)
    # Time-major order: each day's rows reach their partition contiguously.
    pid = np.tile(pts.id, head)
    ts = np.repeat(t[:head], n)
    vals = v[:, :head].T.reshape(-1)
    report.readings = _copy_readings(conn, pid, ts, vals)

    # Furnace enterprises (tagged by layers/demo_city/scores.py) are scored by Hailing.
    ents = [
        (int(r[0]), bool(r[1]))
        for r in conn.execute(
            "SELECT id, 'furnace' = ANY(tags) FROM enterprises WHERE is_hazmat ORDER BY id"
        ).fetchall()
    ]
    ids = [e[0] for e in ents]
    drng = np.random.default_rng([seed, 16])
    dangers = _dangers(drng, ids, max(3, round(40 * scale)), now)
    with conn.cursor() as cur:
        cur.executemany(
            "INSERT INTO hidden_dangers (enterprise_id, title, is_major, status, found_at,"
            " deadline, rectified_at) VALUES (%(enterprise_id)s, %(title)s, %(is_major)s,"
            " %(status)s, %(found_at)s, %(deadline)s, %(rectified_at)s)",
            dangers,
        )
        tasks = _tasks(drng, ids, max(3, round(60 * scale)), now)
        cur.executemany(
            "INSERT INTO inspection_tasks (enterprise_id, title, due_date, done_at)"
            " VALUES (%s, %s, %s, %s)",
            tasks,
        )
        xiaoshan = [e for e, furnace in ents if not furnace]
        points, cycle_start = _xiaoshan(conn)
        n_six, n_small = max(1, round(4 * scale)), max(1, round(8 * scale))
        scores = _scores(drng, xiaoshan, n_six, n_small, now, points, cycle_start)
        rows = [
            (s["enterprise_id"], SCORE_SET, x["item_code"], x["points"], x["occurred_at"])
            for s in scores
            for x in s["events"]
        ]
        cur.executemany(
            "INSERT INTO score_events (enterprise_id, rule_set, rule_set_version, item_code,"
            " points, source, occurred_at, note) SELECT %s, %s, max(version), %s, %s,"
            " 'inspection', %s, '演示数据' FROM rule_sets WHERE code = 'xiaoshan'",
            rows,
        )
    conn.commit()
    report.hidden_dangers, report.inspection_tasks, report.score_events = (
        len(dangers),
        len(tasks),
        len(rows),
    )
    report.enterprises = sorted(
        {d["enterprise_id"] for d in dangers} | {s["enterprise_id"] for s in scores}
    )
    report.truth = {
        "now": now.isoformat(),
        "cadence_s": CADENCE_S,
        "samples": SAMPLES,
        "evaluated_samples": WINDOW,
        "hidden_dangers": [
            {
                **{k: d[k] for k in ("enterprise_id", "title", "is_major", "status")},
                "deadline": d["deadline"].isoformat(),
                "rectified": d["rectified_at"] is not None,
            }
            for d in dangers
        ],
        "inspection_tasks": len(tasks),
        "score": [
            {
                "enterprise_id": s["enterprise_id"],
                "rule_set": SCORE_SET,
                "points": s["points"],
                "items": [x["item_code"] for x in s["events"]],
            }
            for s in scores
        ],
    }
    return pts, t, v, plants


async def evaluate_recent(
    url: str,
    pts: _Points,
    t: np.ndarray,
    v: np.ndarray,
    plants: list[_Plant],
    config: RecomputeConfig,
    report: LiveReport,
) -> None:
    """The last ``WINDOW`` samples of every point through the real ingest path, then one
    incremental recompute of every enterprise the live layer touched."""
    n = len(pts.id)
    pid = np.repeat(pts.id, WINDOW)
    ts = np.tile(t[-WINDOW:], n)
    rows = Rows(np.arange(n * WINDOW, dtype=np.int64), pid, ts, v[:, -WINDOW:].reshape(-1))
    rows.total = len(pid)
    async with await AsyncConnection.connect(url) as conn:
        result = await ingest(conn, rows, MonitoringRules())
        if result.rejected:
            raise RuntimeError(f"demo readings rejected: {result.rejected[:3]}")
        report.evaluated = result.accepted
        cur = await conn.execute(
            "SELECT id, live_color FROM monitoring_points WHERE id = ANY(%s)",
            ([int(pts.id[p.row]) for p in plants],),
        )
        colours: dict[int, str | None] = {int(r[0]): r[1] for r in await cur.fetchall()}
        report.enterprises = sorted(set(report.enterprises) | set(result.enterprises))
        if report.enterprises:
            await recompute(conn, config, report.enterprises)
    report.alarms = len(plants)
    report.red_points = sum(1 for c in colours.values() if c == "red")
    level2 = [int(pts.source[p.row]) for p in plants if p.level == 2]
    paired = {src for src in level2 if level2.count(src) >= 2}
    report.truth["alarms"] = [
        {
            "point_id": int(pts.id[p.row]),
            "kind": pts.kind[p.row],
            "level": p.level,
            "color": (
                "red"
                if p.level == 2 and int(pts.source[p.row]) in paired
                else ("orange" if p.level == 2 else "yellow")
            ),
            "hazard_source_id": int(pts.source[p.row]),
            "enterprise_id": int(pts.enterprise[p.row]),
            "samples_in_alarm": p.samples,
            "last_value": float(v[p.row, -1]),
        }
        for p in plants
    ]
