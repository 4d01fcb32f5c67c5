"""Risk registers (风险分级管控) of the demo city's hazmat enterprises, and emergency contacts.

Every hazmat enterprise with a site gets 3–12 risk units drawn inside its site rectangle, chosen
by its category (a plant has process units and reactors, a depot tank farms and warehouses,
everyone loading bays and utilities):

- **Geometry.** A unit of a hazard source *is* that source: same rectangle, ``hazard_source_id``
  set. Other units sit in the free space: the site inset from the fence, minus every hazard
  source with a clearance, cut by a grid whose cells are shrunk so neighbours keep a roadway
  between them. Plain sites (no hazard source) are pure rectangle arithmetic in numpy; sites
  with hazard sources go through shapely's vectorised difference / intersection so any source
  shape works. Units never touch each other, their sources, or the fence.
- **Assessment.** Each enterprise uses one method (LEC or LS). A unit's colour is drawn first,
  then inputs are picked among the scale combinations that ``layers/risk/units.py`` colours that
  way — the stored colour is that function's answer, never invented. Colours are mostly blue and
  yellow, some orange, few red, and never worse than the enterprise already is by its diagnosis
  score and hazard-source grades, so the register explains the enterprise's colour instead of
  changing it; a hazard-source unit takes its GB 18218 grade's colour or one better.
- **Completeness.** Each district has its own propensity (a shuffled ladder, so districts really
  differ) for enterprises with a unit not yet assessed (grey) and for enterprises whose annual
  review has lapsed (every ``review_due`` in the past). An enterprise's risk analysis is
  complete when it has at least one unit, all assessed, none past ``review_due`` as of the date
  asked; the dates keep every verdict stable from ``valid_from`` to ``valid_until`` (written to
  the ground truth) around the seed's day.
- **People.** Controls (1–5 per unit, by type, in Chinese and specific to the unit's kind), a
  responsible person with a mobile number per unit, and emergency contacts (principal, safety
  manager, 24 h duty phone) for every enterprise.

Deterministic for (seed, scale, day): everything is drawn from generators spawned from the one
the seed passes in, in a fixed order.
"""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any, Final

import numpy as np
import shapely
from shapely.geometry import MultiPolygon, box
from shapely.geometry.base import BaseGeometry

from layers.core.colors import RISK_COLORS
from layers.core.vocab import CONTROL_TYPES, HAZMAT_CATEGORIES, RISK_UNIT_KINDS
from layers.demo_city.enterprises import Enterprise, HazardSource
from layers.demo_city.geography import District
from layers.risk.enterprise import diagnosis_color
from layers.risk.gb18218 import GRADE_COLORS
from layers.risk.units import (
    LEC_CONSEQUENCE,
    LEC_EXPOSURE,
    LEC_LIKELIHOOD,
    LS_SCALE,
    lec,
    ls,
)

MIN_UNITS: Final = 3
MAX_UNITS: Final = 12
#: Clearances in metres: from the fence, around a hazard source, and half the roadway between
#: two neighbouring units (so units never touch, even after rounding to 1e-7°).
FENCE_M: Final = 2.0
SOURCE_GAP_M: Final = 2.0
HALF_ROAD_M: Final = 2.0
#: Grid cell of the free space on sites with hazard sources, and the smallest piece kept there.
HOST_CELL_M: Final = 60.0
MIN_PIECE_M2: Final = 150.0
MIN_PIECE_WIDTH_M: Final = 5.0
#: A plain site holds at most one unit per this many square metres (small sites, fewer units).
PLAIN_M2_PER_UNIT: Final = 350.0

KINDS: Final = RISK_UNIT_KINDS
_K = {k: i for i, k in enumerate(KINDS)}

#: Units per plain site by category (inclusive), before the site's area caps them.
_UNIT_RANGE: Final[dict[str, tuple[int, int]]] = {
    "production": (5, 12),
    "storage": (4, 10),
    "use": (4, 9),
    "trading": (3, 6),
    "disposal": (4, 8),
    "transport": (3, 5),
}
#: Kind weights per category, in RISK_UNIT_KINDS order
#: (process_unit, reactor, tank_farm, warehouse, loading_bay, utilities, other).
_KIND_WEIGHTS: Final[dict[str, tuple[int, ...]]] = {
    "production": (30, 20, 15, 12, 10, 10, 3),
    "storage": (3, 0, 40, 25, 20, 10, 2),
    "use": (30, 5, 12, 20, 10, 15, 8),
    "trading": (0, 0, 15, 45, 25, 5, 10),
    "disposal": (30, 5, 15, 20, 10, 15, 5),
    "transport": (0, 0, 0, 15, 30, 15, 40),
}
#: What an enterprise is about: a register holds one of these kinds (checked in order); when
#: its hazard-source units have none, its largest other unit takes the first.
_CORE_KINDS: Final[dict[str, tuple[str, ...]]] = {
    "production": ("process_unit", "reactor"),
    "storage": ("tank_farm", "warehouse"),
    "use": ("process_unit", "reactor"),
    "trading": ("warehouse", "tank_farm"),
    "disposal": ("process_unit",),
    "transport": ("other",),
}
assert set(_KIND_WEIGHTS) == set(HAZMAT_CATEGORIES) == set(_UNIT_RANGE) == set(_CORE_KINDS)
assert all(len(w) == len(KINDS) for w in _KIND_WEIGHTS.values())

#: Colour weights (red, orange, yellow, blue) of a unit that is not a hazard source, before
#: capping at the enterprise's own level: mostly blue and yellow, some orange, few red.
_COLOR_WEIGHTS: Final = (0.06, 0.22, 0.34, 0.38)
#: Share of LEC registers (the rest use the LS matrix).
_LEC_SHARE: Final = 0.6
#: A hazard-source unit is assessed one level better than its GB 18218 grade this often.
_SOURCE_ONE_BETTER: Final = 0.4
#: Per-district propensities: shuffled evenly spaced ladders between these bounds.
_INCOMPLETE_LADDER: Final = (0.04, 0.32)
_OVERDUE_LADDER: Final = (0.02, 0.24)
#: Control counts 1–5 and their weights; type weights in CONTROL_TYPES order.
_CONTROL_COUNT_WEIGHTS: Final = (0.05, 0.15, 0.30, 0.30, 0.20)
_CONTROL_TYPE_WEIGHTS: Final = (0.34, 0.22, 0.14, 0.12, 0.18)
#: Days: a current register was assessed 30–320 days before the day (+ up to 10 days of spread
#: between units); a lapsed one a year earlier still, so its reviews fell due 20–320 days ago.
_CURRENT_AGE: Final = (30, 320)
_LAPSED_AGE: Final = (385, 665)
_UNIT_SPREAD_DAYS: Final = 10

# -- names and texts ------------------------------------------------------------------------

_TANK_SUBSTANCES: Final = (
    "甲醇",
    "乙醇",
    "甲苯",
    "二甲苯",
    "丙酮",
    "乙酸乙酯",
    "苯乙烯",
    "环氧丙烷",
    "液碱",
    "硫酸",
    "盐酸",
    "液氨",
    "柴油",
    "汽油",
    "液化石油气",
    "丙烯",
)
_UNIT_NAMES: Final[dict[str, dict[str, tuple[str, ...]]]] = {
    "process_unit": {
        "production": ("精馏装置", "合成车间", "聚合装置", "萃取装置", "干燥车间", "结晶车间"),
        "storage": ("灌装车间", "分装车间"),
        "use": ("涂装车间", "调漆间", "配料车间", "清洗车间", "喷涂生产线", "电镀车间"),
        "trading": ("分装间",),
        "disposal": ("焚烧装置", "物化处理车间", "固化稳定化车间", "废液预处理车间"),
        "transport": ("洗消车间",),
    },
    "reactor": {
        "": ("反应釜区", "聚合反应釜区", "加氢反应装置", "氯化反应釜", "磺化反应釜", "缩合反应釜"),
    },
    "tank_farm": {
        "": ("原料罐区", "成品罐区", "中间罐区"),
        "disposal": ("废液储罐区", "废溶剂储罐区"),
    },
    "warehouse": {
        "": ("甲类仓库", "乙类仓库", "原料仓库", "成品仓库", "危化品仓库", "桶装仓库", "气瓶库"),
        "disposal": ("危废暂存库", "危废仓库"),
    },
    "loading_bay": {
        "": ("汽车装卸区", "装卸站台", "槽车装卸站", "桶装装卸区", "充装站台"),
    },
    "utilities": {
        "": ("变配电室", "空压站", "循环水站", "消防泵房", "锅炉房", "污水处理站", "冷冻站"),
    },
    "other": {
        "": ("中控室", "化验室", "检修作业区", "管廊", "危废暂存间"),
        "transport": ("危险货物车辆停车场", "车辆维修车间", "停车场充装区"),
    },
}
assert set(_UNIT_NAMES) == set(KINDS)

_ENGINEERING: Final[dict[str, tuple[str, ...]]] = {
    "process_unit": (
        "DCS自动控制系统",
        "安全仪表系统(SIS)联锁",
        "可燃气体检测报警仪",
        "有毒气体检测报警仪",
        "防爆电气设备",
        "安全阀及爆破片",
        "局部排风装置",
    ),
    "reactor": (
        "温度压力超限联锁",
        "紧急冷却系统",
        "紧急泄放装置",
        "搅拌电流监测报警",
        "SIS紧急停车系统",
        "氮气保护系统",
    ),
    "tank_farm": (
        "紧急切断阀",
        "液位高高联锁",
        "可燃气体检测报警",
        "围堰及防火堤",
        "呼吸阀及阻火器",
        "喷淋冷却系统",
        "泡沫灭火系统",
    ),
    "warehouse": (
        "防爆通风设施",
        "可燃气体检测报警",
        "温湿度监控",
        "防火分区及防火门",
        "自动喷水灭火系统",
        "分区分类隔离储存",
    ),
    "loading_bay": (
        "鹤管紧急切断装置",
        "静电接地报警器",
        "防溢流控制",
        "车辆防溜装置",
        "油气回收系统",
        "装卸视频监控",
    ),
    "utilities": (
        "双回路供电",
        "备用电源自动切换",
        "压力容器安全阀定期校验",
        "消防泵自动巡检",
        "设备接地保护",
    ),
    "other": ("视频监控", "防爆电气设备", "可燃气体检测报警", "车辆分区停放隔离", "限速及隔离设施"),
}
_BY_TYPE: Final[dict[str, tuple[str, ...]]] = {
    "management": (
        "巡检制度(每班两次巡检)",
        "动火作业审批制度",
        "受限空间作业票证管理",
        "设备定期检测维护",
        "交接班制度",
        "安全操作规程",
        "变更管理制度",
        "承包商管理制度",
    ),
    "training": (
        "岗前安全培训",
        "特种作业持证上岗",
        "应急处置培训",
        "年度安全教育(不少于20学时)",
        "操作规程考核",
        "危险化学品安全知识培训",
    ),
    "ppe": (
        "防静电工作服",
        "防毒面具",
        "正压式空气呼吸器",
        "防护眼镜及防化手套",
        "安全帽及防护鞋",
        "耐酸碱防护服",
    ),
    "emergency": (
        "泄漏应急预案",
        "火灾爆炸现场处置方案",
        "应急物资柜(吸附棉、堵漏工具)",
        "洗眼器及喷淋装置",
        "事故应急池",
        "中毒窒息应急处置卡",
        "每半年一次应急演练",
    ),
}
#: Kind-specific measures added to the generic ones of a type.
_KIND_EXTRA: Final[dict[tuple[str, str], tuple[str, ...]]] = {
    ("tank_farm", "management"): ("储罐定期检测", "罐区出入管理"),
    ("warehouse", "management"): ("出入库登记及双人双锁", "限量储存管理"),
    ("loading_bay", "management"): ("装卸作业监护制度", "车辆准入检查"),
    ("reactor", "management"): ("工艺参数报警管理",),
    ("tank_farm", "emergency"): ("储罐泄漏应急预案",),
    ("loading_bay", "emergency"): ("装卸泄漏现场处置方案",),
}
assert set(_ENGINEERING) == set(KINDS) and set(_BY_TYPE) | {"engineering"} == set(CONTROL_TYPES)

#: (kind, control type) → each measure as its JSON object, encoded once (a register at scale
#: 7.4 holds ~10⁵ units; encoding every list with json.dumps was a third of the phase).
_MEASURE_JSON: Final[dict[tuple[str, str], tuple[str, ...]]] = {
    (kind, ctype): tuple(
        json.dumps({"type": ctype, "measure": m}, ensure_ascii=False)
        for m in (
            _ENGINEERING[kind]
            if ctype == "engineering"
            else _BY_TYPE[ctype] + _KIND_EXTRA.get((kind, ctype), ())
        )
    )
    for kind in KINDS
    for ctype in CONTROL_TYPES
}

_SURNAMES: Final = (
    "王李张刘陈杨黄赵吴周徐孙马朱胡郭何林罗高郑梁谢宋唐许韩冯邓曹彭曾"
    "肖田董潘袁蔡蒋余于杜叶程魏苏吕丁任沈姚卢"
)
_GIVEN: Final = (
    "伟芳娜敏静丽强磊军洋勇艳杰娟涛明超秀霞平刚桂英华建国志文斌"
    "海波宁晨浩宇鑫佳俊峰凯丹琳雪梅红兵辉鹏飞龙云"
)
#: Mainland mobile prefixes (11 digits in all).
_MOBILE_PREFIXES: Final = (
    "130", "131", "132", "133", "135", "136", "137", "138", "139", "150", "151", "152", "153",
    "155", "156", "157", "158", "159", "176", "177", "180", "181", "182", "183", "185", "186",
    "187", "188", "189", "199",
)  # fmt: skip
CONTACT_ROLES: Final = ("主要负责人", "安全管理人员", "应急值班")
_DUTY_NAME: Final = "24小时值班室"
#: People per enterprise: principal, safety manager and three unit heads (车间/班组负责人).
_STAFF: Final = 5
_RESPONSIBLE_WEIGHTS: Final = (0.0, 0.25, 0.25, 0.25, 0.25)


# -- the scale tables, coloured by layers/risk/units.py -------------------------------------


def _combos() -> dict[tuple[str, int], np.ndarray]:
    """(method, colour index) → the input rows (L, E, C or L, S) that the API colours so."""
    out: dict[tuple[str, int], list[tuple[float, ...]]] = {}
    for li in LEC_LIKELIHOOD:
        for e in LEC_EXPOSURE:
            for c in LEC_CONSEQUENCE:
                color = lec(li, e, c)[1]
                out.setdefault(("LEC", RISK_COLORS.index(color)), []).append((li, e, c))
    for li in LS_SCALE:
        for s in LS_SCALE:
            color = ls(li, s)[1]
            out.setdefault(("LS", RISK_COLORS.index(color)), []).append((li, s))
    return {k: np.array(v, dtype=np.float64) for k, v in out.items()}


_COMBOS: Final = _combos()
assert all((m, c) in _COMBOS for m in ("LEC", "LS") for c in range(len(RISK_COLORS)))


# -- what the generator returns -------------------------------------------------------------

UNIT_COLUMNS: Final = (
    "id",
    "enterprise_id",
    "name",
    "kind",
    "hazard_source_id",
    "method",
    "likelihood",
    "exposure",
    "consequence",
    "severity",
    "controls",
    "color",
    "responsible",
    "responsible_phone",
    "assessed_on",
    "review_due",
)


@dataclass
class Registers:
    """Columns of every unit (in id order) and the ground truth."""

    rows: list[tuple[Any, ...]] = field(default_factory=list)  # UNIT_COLUMNS, geometry apart
    geoms: list[MultiPolygon] = field(default_factory=list)  # metric plane, one per row
    truth: dict[str, Any] = field(default_factory=dict)

    def unit_rows(self, wkb: Sequence[str]) -> Iterator[tuple[Any, ...]]:
        for row, g in zip(self.rows, wkb, strict=True):
            yield (*row, g)


def _ranks(group: np.ndarray, key: np.ndarray, starts: np.ndarray) -> np.ndarray:
    """Each element's rank by ``key`` within its group (groups are contiguous runs of
    ``group``, ascending, beginning at ``starts[group]``)."""
    order = np.lexsort((key, group))
    rank = np.empty(len(order), dtype=np.int64)
    rank[order] = np.arange(len(order)) - starts[group[order]]
    return rank


def _starts(counts: np.ndarray) -> np.ndarray:
    return np.cumsum(counts) - counts


# -- geometry -------------------------------------------------------------------------------


def _plain_layout(
    rng: np.random.Generator, sites: np.ndarray, n: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """``n[i]`` rectangles inside site ``i`` (rows of x0, y0, x1, y1): a grid of about ``n``
    cells (sometimes one more, left as open yard), ``n`` of them picked at random, each unit a
    random sub-rectangle of its cell shrunk by half a roadway. Returns (site index, rects),
    grouped by site, largest first within a site."""
    m = len(sites)
    x0, y0 = sites[:, 0] + FENCE_M, sites[:, 1] + FENCE_M
    w = sites[:, 2] - sites[:, 0] - 2 * FENCE_M
    h = sites[:, 3] - sites[:, 1] - 2 * FENCE_M
    cells_wanted = n + (rng.random(m) < 0.35)
    cols = np.maximum(1, np.rint(np.sqrt(cells_wanted * w / h))).astype(np.int64)
    rows = -(-cells_wanted // cols)
    cells = rows * cols
    site = np.repeat(np.arange(m), cells)
    k = np.arange(int(cells.sum())) - _starts(cells)[site]
    keep = _ranks(site, rng.random(len(site)), _starts(cells)) < n[site]
    site, k = site[keep], k[keep]
    r, c = k // cols[site], k % cols[site]
    cw, ch = w[site] / cols[site], h[site] / rows[site]
    room_w, room_h = cw - 2 * HALF_ROAD_M, ch - 2 * HALF_ROAD_M
    assert room_w.min() > MIN_PIECE_WIDTH_M and room_h.min() > MIN_PIECE_WIDTH_M
    fx, fy = rng.uniform(0.6, 1.0, len(site)), rng.uniform(0.6, 1.0, len(site))
    uw, uh = fx * room_w, fy * room_h
    ux = x0[site] + c * cw + HALF_ROAD_M + rng.random(len(site)) * (room_w - uw)
    uy = y0[site] + r * ch + HALF_ROAD_M + rng.random(len(site)) * (room_h - uh)
    rects = np.column_stack((ux, uy, ux + uw, uy + uh))
    order = np.lexsort((-(uw * uh), site))
    return site[order], rects[order]


def _host_pieces(
    sites: np.ndarray, source_rects: list[list[tuple[float, float, float, float]]]
) -> tuple[np.ndarray, np.ndarray]:
    """Candidate unit polygons in the free space of sites holding hazard sources: the site
    inset from the fence minus every source with its clearance, cut by a grid of
    ``HOST_CELL_M`` cells shrunk by half a roadway; pieces too small or too thin to hold a
    unit are dropped. Returns (site index, polygons), grouped by site."""
    m = len(sites)
    inner = shapely.buffer(
        shapely.box(sites[:, 0], sites[:, 1], sites[:, 2], sites[:, 3]),
        -FENCE_M,
        join_style="mitre",
    )
    src_site = np.repeat(np.arange(m), [len(r) for r in source_rects])
    src = np.array([r for rects in source_rects for r in rects], dtype=np.float64)
    blocks = shapely.box(
        src[:, 0] - SOURCE_GAP_M,
        src[:, 1] - SOURCE_GAP_M,
        src[:, 2] + SOURCE_GAP_M,
        src[:, 3] + SOURCE_GAP_M,
    )
    # A site's sources never overlap (enterprises.make_hazard_sources lays them side by side,
    # 24 m apart), so their blocks make a valid multipolygon without a union.
    blocked = shapely.multipolygons(blocks, indices=src_site)
    free = shapely.difference(inner, blocked)

    w, h = sites[:, 2] - sites[:, 0], sites[:, 3] - sites[:, 1]
    cols = np.ceil(w / HOST_CELL_M).astype(np.int64)
    rows = np.ceil(h / HOST_CELL_M).astype(np.int64)
    cells = rows * cols
    site = np.repeat(np.arange(m), cells)
    k = np.arange(int(cells.sum())) - _starts(cells)[site]
    r, c = k // cols[site], k % cols[site]
    cw, ch = w[site] / cols[site], h[site] / rows[site]
    cx0 = sites[site, 0] + c * cw + HALF_ROAD_M
    cy0 = sites[site, 1] + r * ch + HALF_ROAD_M
    grid = shapely.box(cx0, cy0, cx0 + cw - 2 * HALF_ROAD_M, cy0 + ch - 2 * HALF_ROAD_M)
    pieces = shapely.intersection(grid, free[site])
    parts, idx = shapely.get_parts(pieces, return_index=True)
    polygon = shapely.get_type_id(parts) == 3  # a collection may hold slivers of lines
    thick = ~shapely.is_empty(shapely.buffer(parts, -MIN_PIECE_WIDTH_M / 2, join_style="mitre"))
    ok = polygon & (shapely.area(parts) >= MIN_PIECE_M2) & thick
    return site[idx[ok]], parts[ok]


@dataclass
class _Plan:
    """One enterprise's units before they get names, inputs and people."""

    ent: Enterprise
    sources: list[HazardSource]
    free: list[BaseGeometry]


def _layout(
    rng: np.random.Generator,
    ents: list[Enterprise],
    by_host: dict[int, list[HazardSource]],
) -> list[_Plan]:
    sites = np.array([e.site for e in ents], dtype=np.float64)
    host = np.array([e.id in by_host for e in ents])
    plans = [_Plan(e, by_host.get(e.id, []), []) for e in ents]

    plain = np.flatnonzero(~host)
    lo = np.array([_UNIT_RANGE[ents[i].category][0] for i in plain])
    hi = np.array([_UNIT_RANGE[ents[i].category][1] for i in plain])
    n = rng.integers(lo, hi + 1)
    ps = sites[plain]
    area = (ps[:, 2] - ps[:, 0] - 2 * FENCE_M) * (ps[:, 3] - ps[:, 1] - 2 * FENCE_M)
    cap = np.clip(np.floor(area / PLAIN_M2_PER_UNIT).astype(np.int64), MIN_UNITS, MAX_UNITS)
    n = np.clip(n, MIN_UNITS, cap)
    which, rects = _plain_layout(rng, ps, n)
    polys = shapely.box(rects[:, 0], rects[:, 1], rects[:, 2], rects[:, 3])
    for i, g in zip(which.tolist(), polys.tolist(), strict=True):
        plans[int(plain[i])].free.append(g)

    hosts = np.flatnonzero(host)
    if len(hosts):
        hs = sites[hosts]
        rects_of = [[s.rect for s in plans[int(i)].sources] for i in hosts]
        which, pieces = _host_pieces(hs, rects_of)
        k = np.array([len(r) for r in rects_of])
        wanted = np.clip(k + rng.integers(2, 7, len(hosts)), MIN_UNITS, MAX_UNITS) - k
        have = np.bincount(which, minlength=len(hosts))
        short = np.flatnonzero(k + have < MIN_UNITS)
        if len(short):
            raise RuntimeError(f"no room for {MIN_UNITS} units on sites {hosts[short].tolist()}")
        # Larger pieces first, with chance: a strip along the fence is rarely the pick.
        key = -shapely.area(pieces) * rng.uniform(0.5, 1.0, len(pieces))
        keep = _ranks(which, key, _starts(have)) < np.minimum(wanted, have)[which]
        which, pieces = which[keep], pieces[keep]
        order = np.lexsort((-shapely.area(pieces), which))
        for i, g in zip(which[order].tolist(), pieces[order].tolist(), strict=True):
            plans[int(hosts[i])].free.append(g)
    return plans


# -- people ---------------------------------------------------------------------------------


@dataclass
class People:
    """Each enterprise's people, by enterprise id: ``_STAFF`` names (principal, safety manager,
    unit heads) and ``_STAFF + 1`` mobile numbers (the last: the 24 h duty phone)."""

    names: dict[int, list[str]]
    phones: dict[int, list[str]]

    def contacts(self, enterprise_id: int) -> str:
        """The enterprise's emergency contacts as the JSON array ``enterprises.contacts``
        holds."""
        names, phones = self.names[enterprise_id], self.phones[enterprise_id]
        people = [
            {"role": CONTACT_ROLES[0], "name": names[0], "phone": phones[0]},
            {"role": CONTACT_ROLES[1], "name": names[1], "phone": phones[1]},
            {"role": CONTACT_ROLES[2], "name": _DUTY_NAME, "phone": phones[_STAFF]},
        ]
        return json.dumps(people, ensure_ascii=False)


def make_people(rng: np.random.Generator, enterprises: list[Enterprise]) -> People:
    """Plausible Chinese names and 11-digit mobiles for every enterprise (made with the
    enterprises, so their contacts load in the same COPY)."""
    n = len(enterprises)
    sur = rng.integers(0, len(_SURNAMES), (n, _STAFF))
    two = rng.random((n, _STAFF)) < 0.7
    given = rng.integers(0, len(_GIVEN), (n, _STAFF, 2))
    prefix = rng.integers(0, len(_MOBILE_PREFIXES), (n, _STAFF + 1))
    body = rng.integers(0, 10**8, (n, _STAFF + 1))
    ids = [e.id for e in enterprises]
    names = [
        [
            _SURNAMES[s] + _GIVEN[g[0]] + (_GIVEN[g[1]] if t else "")
            for s, t, g in zip(srow, trow, grow, strict=True)
        ]
        for srow, trow, grow in zip(sur.tolist(), two.tolist(), given.tolist(), strict=True)
    ]
    phones = [
        [f"{_MOBILE_PREFIXES[p]}{b:08d}" for p, b in zip(prow, brow, strict=True)]
        for prow, brow in zip(prefix.tolist(), body.tolist(), strict=True)
    ]
    return People(dict(zip(ids, names, strict=True)), dict(zip(ids, phones, strict=True)))


# -- assessment, completeness, texts --------------------------------------------------------


def _plus_year(day: dt.date) -> dt.date:
    """The annual review date (29 February → 28 February)."""
    try:
        return day.replace(year=day.year + 1)
    except ValueError:
        return day.replace(year=day.year + 1, day=28)


def _ceiling(ent: Enterprise, sources: list[HazardSource]) -> int:
    """The enterprise's level without a register (index into RISK_COLORS; 0 = anything goes
    when nothing else is assessed): the worst of its diagnosis colour and sources' grades."""
    levels = [RISK_COLORS.index(GRADE_COLORS[s.grade]) for s in sources if s.grade]
    diag = diagnosis_color(ent.diagnosis_score)
    if diag is not None:
        levels.append(RISK_COLORS.index(diag))
    return min(levels) if levels else 0


def _ladder(rng: np.random.Generator, bounds: tuple[float, float], n: int) -> np.ndarray:
    return rng.permutation(np.linspace(bounds[0], bounds[1], n))


def _unit_name(kind: str, category: str, draw: int) -> str:
    names = _UNIT_NAMES[kind]
    pool = names.get(category, ()) + names.get("", ())
    if kind == "tank_farm" and draw % 2 == 0:
        return f"{_TANK_SUBSTANCES[(draw // 2) % len(_TANK_SUBSTANCES)]}储罐区"
    return pool[draw % len(pool)]


def _unique(name: str, used: set[str]) -> str:
    if name in used:
        j = 2
        while f"{j}#{name}" in used:
            j += 1
        name = f"{j}#{name}"
    used.add(name)
    return name


def _source_kind(src: HazardSource) -> str:
    return "tank_farm" if src.unit_kind == "storage" else "process_unit"


def make_registers(
    rng: np.random.Generator,
    enterprises: list[Enterprise],
    sources: list[HazardSource],
    districts: list[District],
    day: dt.date,
    people: People,
) -> Registers:
    """Registers of every hazmat enterprise with a site, as of ``day`` (the seed's day: review
    dates are placed around it); units are looked after by the enterprise's ``people``."""
    geo_rng, draw_rng = rng.spawn(2)
    hz = set(HAZMAT_CATEGORIES)
    ents = [e for e in enterprises if e.category in hz and e.site is not None]
    by_host: dict[int, list[HazardSource]] = {}
    for s in sources:
        by_host.setdefault(s.enterprise_id, []).append(s)
    plans = _layout(geo_rng, ents, by_host)

    out = Registers()

    # Per enterprise: method, district propensities, completeness, assessment age, ceiling.
    n_ent = len(plans)
    codes = sorted(d.code for d in districts)
    p_inc = dict(
        zip(codes, _ladder(draw_rng, _INCOMPLETE_LADDER, len(codes)).tolist(), strict=True)
    )
    p_over = dict(zip(codes, _ladder(draw_rng, _OVERDUE_LADDER, len(codes)).tolist(), strict=True))
    uses_lec = draw_rng.random(n_ent) < _LEC_SHARE
    incomplete = draw_rng.random(n_ent) < np.array([p_inc[p.ent.district] for p in plans])
    overdue = draw_rng.random(n_ent) < np.array([p_over[p.ent.district] for p in plans])
    n_grey = 1 + (draw_rng.random(n_ent) < 0.3)
    age = np.where(
        overdue,
        draw_rng.integers(_LAPSED_AGE[0], _LAPSED_AGE[1] + 1, n_ent),
        draw_rng.integers(_CURRENT_AGE[0], _CURRENT_AGE[1] + 1, n_ent),
    )
    ceiling = np.array([_ceiling(p.ent, p.sources) for p in plans])

    # Per unit, flat in id order: an enterprise's source units first, then the free ones.
    n_src = np.array([len(p.sources) for p in plans])
    n_units = n_src + np.array([len(p.free) for p in plans])
    assert n_units.min() >= MIN_UNITS and n_units.max() <= MAX_UNITS
    n = int(n_units.sum())
    ent = np.repeat(np.arange(n_ent), n_units)
    first = _starts(n_units)
    pos = np.arange(n) - first[ent]
    is_src = pos < n_src[ent]

    # Colours: sources by grade (or one better); the others drawn below the ceiling.
    weights = np.array(
        [[w if c >= floor else 0.0 for c, w in enumerate(_COLOR_WEIGHTS)] for floor in range(4)]
    )
    cum = np.cumsum(weights / weights.sum(axis=1, keepdims=True), axis=1)
    drawn = (draw_rng.random(n)[:, None] > cum[ceiling[ent]]).sum(axis=1)
    better = draw_rng.random(n) < _SOURCE_ONE_BETTER
    grade_idx = np.zeros(n, dtype=np.int64)
    for k in np.flatnonzero(is_src).tolist():
        src = plans[ent[k]].sources[pos[k]]
        grade_idx[k] = RISK_COLORS.index(GRADE_COLORS[src.grade])
    color = np.where(is_src, np.minimum(grade_idx + better, 3), drawn)
    combo = draw_rng.random(n)

    # Not assessed: the first n_grey units of an incomplete register in a random order
    # (never all of them: a register someone started has something assessed).
    grey_rank = _ranks(ent, draw_rng.random(n), first)
    grey = incomplete[ent] & (grey_rank < np.minimum(n_grey, n_units - 1)[ent])
    spread = draw_rng.integers(0, _UNIT_SPREAD_DAYS + 1, n)

    # Kinds of the free units by category (the largest may be overruled by _CORE_KINDS).
    cats = list(_KIND_WEIGHTS)
    kind_cum = np.cumsum([np.array(_KIND_WEIGHTS[c]) / sum(_KIND_WEIGHTS[c]) for c in cats], 1)
    cat = np.array([cats.index(p.ent.category) for p in plans])
    kind = (draw_rng.random(n)[:, None] > kind_cum[cat[ent]]).sum(axis=1)
    kind = np.minimum(kind, len(KINDS) - 1)
    name_draw = draw_rng.integers(0, 2**31, n)

    # Controls: a count, then that many distinct types (weighted, Gumbel top-k), a measure each.
    n_controls = draw_rng.choice(5, n, p=_CONTROL_COUNT_WEIGHTS) + 1
    type_keys = np.log(_CONTROL_TYPE_WEIGHTS) + draw_rng.gumbel(size=(n, len(CONTROL_TYPES)))
    type_order = np.argsort(-type_keys, axis=1)
    measure_draw = draw_rng.integers(0, 2**31, (n, len(CONTROL_TYPES)))
    responsible = draw_rng.choice(_STAFF, n, p=_RESPONSIBLE_WEIGHTS)

    kinds_l, color_l, grey_l = kind.tolist(), color.tolist(), grey.tolist()
    combo_l, spread_l, name_l = combo.tolist(), spread.tolist(), name_draw.tolist()
    n_ctrl_l, order_l, measure_l = n_controls.tolist(), type_order.tolist(), measure_draw.tolist()
    resp_l = responsible.tolist()
    per_ent: dict[str, Any] = {}
    polys_l: list[BaseGeometry] = []
    k = 0
    for i, plan in enumerate(plans):
        e = plan.ent
        method = "LEC" if uses_lec[i] else "LS"
        base = day - dt.timedelta(days=int(age[i]))
        used: set[str] = set()
        who, tel = people.names[e.id], people.phones[e.id]
        tally = dict.fromkeys((*RISK_COLORS, "grey"), 0)
        covered = any(_source_kind(s) in _CORE_KINDS[e.category] for s in plan.sources)
        for j in range(int(n_units[i])):
            if j < len(plan.sources):
                src = plan.sources[j]
                source_id: int | None = src.id
                kind_name = _source_kind(src)
                name = src.unit_name
                geom: BaseGeometry = box(*src.rect)
            else:
                source_id = None
                if j == len(plan.sources) and not covered:
                    kind_name = _CORE_KINDS[e.category][0]
                else:
                    kind_name = KINDS[kinds_l[k]]
                name = _unit_name(kind_name, e.category, name_l[k])
                geom = plan.free[j - len(plan.sources)]
            controls = []
            for t in sorted(order_l[k][: n_ctrl_l[k]]):  # distinct types, in vocabulary order
                pool = _MEASURE_JSON[(kind_name, CONTROL_TYPES[t])]
                controls.append(pool[measure_l[k][t] % len(pool)])
            inputs: list[float | None] = [None, None, None, None]  # L, E, C, S
            unit_method: str | None = None
            unit_color: str | None = None
            assessed_on: dt.date | None = None
            review_due: dt.date | None = None
            if not grey_l[k]:
                unit_method = method
                table = _COMBOS[(method, color_l[k])]
                row = table[int(combo_l[k] * len(table))].tolist()
                if method == "LEC":
                    inputs = [row[0], row[1], row[2], None]
                    unit_color = lec(*row)[1]
                else:
                    inputs = [row[0], None, None, row[1]]
                    unit_color = ls(int(row[0]), int(row[1]))[1]
                assessed_on = base - dt.timedelta(days=spread_l[k])
                review_due = _plus_year(assessed_on)
            tally[unit_color or "grey"] += 1
            out.rows.append(
                (
                    k + 1,
                    e.id,
                    _unique(name, used),
                    kind_name,
                    source_id,
                    unit_method,
                    *inputs,
                    "[" + ",".join(controls) + "]",
                    unit_color,
                    who[resp_l[k]],
                    tel[resp_l[k]],
                    assessed_on,
                    review_due,
                )
            )
            polys_l.append(geom)
            k += 1
        per_ent[str(e.id)] = {
            "district": e.district,
            "units": int(n_units[i]),
            "source_units": len(plan.sources),
            "colors": tally,
        }
    # Every unit is one polygon (sources are rectangles, pieces were exploded): wrap them all
    # as multipolygons in one vectorised call.
    polys = np.empty((len(polys_l), 1), dtype=object)
    polys[:, 0] = polys_l
    out.geoms = list(np.asarray(shapely.multipolygons(polys)))
    out.truth = _truth(out, per_ent, enterprises, day)
    return out


def _truth(
    regs: Registers, per_ent: dict[str, Any], enterprises: list[Enterprise], day: dt.date
) -> dict[str, Any]:
    """The registers section of ground_truth.json, judged from the generated rows with the
    completion rule (≥ 1 unit, all assessed, none past review_due as of ``day``)."""
    i_ent, i_color, i_due = (
        UNIT_COLUMNS.index(c) for c in ("enterprise_id", "color", "review_due")
    )
    dues = [r[i_due] for r in regs.rows if r[i_due] is not None]
    lapsed = [d for d in dues if d < day]
    current = [d for d in dues if d >= day]
    for entry in per_ent.values():
        entry.update(incomplete=entry["colors"]["grey"] > 0, overdue=False)
    for r in regs.rows:
        if r[i_due] is not None and r[i_due] < day:
            per_ent[str(r[i_ent])]["overdue"] = True
    for entry in per_ent.values():
        entry["complete"] = entry["units"] >= 1 and not entry["incomplete"] and not entry["overdue"]

    hz = set(HAZMAT_CATEGORIES)
    districts: dict[str, dict[str, Any]] = {}
    for e in enterprises:
        d = districts.setdefault(
            e.district, {"enterprises": 0, "hazmat": 0, "registers": 0, "complete": 0}
        )
        d["enterprises"] += 1
        d["hazmat"] += e.category in hz
        entry = per_ent.get(str(e.id))
        if entry:
            d["registers"] += 1
            d["complete"] += entry["complete"]
    for d in districts.values():
        # As layers/prevention/dual.py counts it: every enterprise of the district is expected
        # to analyse its risks; hazmat_rate is the share among hazmat enterprises alone.
        d["risk_analysis_completion"] = {
            "done": d["complete"],
            "of": d["enterprises"],
            "rate": round(d["complete"] / d["enterprises"], 4),
        }
        d["hazmat_rate"] = round(d["complete"] / d["hazmat"], 4) if d["hazmat"] else None
    colors = dict.fromkeys((*RISK_COLORS, "grey"), 0)
    kinds = dict.fromkeys(KINDS, 0)
    for r in regs.rows:
        colors[r[i_color] or "grey"] += 1
        kinds[r[UNIT_COLUMNS.index("kind")]] += 1
    return {
        "as_of": day.isoformat(),
        "rule": "risk analysis complete: >= 1 unit, every unit assessed (method and colour set),"
        " no review_due before the date asked",
        # Every verdict below holds for any date in [valid_from, valid_until].
        "valid_from": (max(lapsed) + dt.timedelta(days=1)).isoformat() if lapsed else None,
        "valid_until": min(current).isoformat() if current else None,
        "units": len(regs.rows),
        "source_units": sum(e["source_units"] for e in per_ent.values()),
        "colors": colors,
        "kinds": kinds,
        "incomplete": sum(e["incomplete"] for e in per_ent.values()),
        "overdue": sum(e["overdue"] for e in per_ent.values()),
        "complete": sum(e["complete"] for e in per_ent.values()),
        "districts": dict(sorted(districts.items())),
        "enterprises": per_ent,
    }


def person_names(rng: np.random.Generator, n: int) -> list[str]:
    """``n`` plausible Chinese names (drivers and escorts of the transport chain)."""
    sur = rng.integers(0, len(_SURNAMES), n).tolist()
    two = (rng.random(n) < 0.7).tolist()
    given = rng.integers(0, len(_GIVEN), (n, 2)).tolist()
    return [
        _SURNAMES[s] + _GIVEN[g[0]] + (_GIVEN[g[1]] if t else "")
        for s, t, g in zip(sur, two, given, strict=True)
    ]


def mobiles(rng: np.random.Generator, n: int) -> list[str]:
    """``n`` 11-digit mainland mobile numbers."""
    prefix = rng.integers(0, len(_MOBILE_PREFIXES), n).tolist()
    body = rng.integers(0, 10**8, n).tolist()
    return [f"{_MOBILE_PREFIXES[p]}{b:08d}" for p, b in zip(prefix, body, strict=True)]
