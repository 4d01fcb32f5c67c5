"""The enterprise's "one map, one book" (一图一册): an A4 PDF of several pages.

Pages: the cover (identity, colour and its reasons, emergency contacts, counts), the
four-colour map, the register table, each unit's controls by type, then hazard sources and
monitoring points. Set with fpdf2 rather than matplotlib because the register is a table that
runs over pages: fpdf2 wraps cells, breaks pages between rows and repeats the heading row.
The font (layers/risk/fonts.py) is embedded as a TrueType subset with a ToUnicode map, so
every Chinese word is text a reader can search and copy (pypdf extracts it), never outlines.

The map is drawn in vectors in the same local metric plane as the PNG (layers/risk/diagram.py):
units filled with their level's display colour and labelled, hazard sources outlined dashed,
monitoring points as triangles in their live colour, the site boundary, a legend, a scale bar
with a round length and a north arrow (the plane's y axis is true north).
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable
from typing import Any

from layers.core.pdf import BODY_W, FONT, MARGIN, document, heading, rgb, table
from layers.risk.diagram import Diagram, Plane, centroid, color_hex, rings
from layers.risk.fonts import cjk_font_file

# ---- words -----------------------------------------------------------------------------------
# The book's one home for the Chinese names of the vocabularies it prints.

LEVEL_NAMES = {
    "red": "重大风险",
    "orange": "较大风险",
    "yellow": "一般风险",
    "blue": "低风险",
    "grey": "未评估",
}
KIND_NAMES = {
    "process_unit": "生产装置",
    "reactor": "反应装置",
    "tank_farm": "储罐区",
    "warehouse": "仓库",
    "loading_bay": "装卸区",
    "utilities": "公用工程",
    "other": "其他",
}
CONTROL_NAMES = {
    "engineering": "工程技术",
    "management": "管理措施",
    "training": "培训教育",
    "ppe": "个体防护",
    "emergency": "应急处置",
}
CATEGORY_NAMES = {
    "production": "生产",
    "storage": "储存",
    "trading": "经营",
    "use": "使用",
    "transport": "运输",
    "disposal": "处置",
    "school": "学校",
    "hospital": "医院",
    "laboratory": "实验室",
    "research": "科研",
    "other_user": "其他",
}
POINT_KIND_NAMES = {
    "gas_flammable": "可燃气体",
    "gas_toxic": "有毒气体",
    "oxygen": "氧含量",
    "temperature": "温度",
    "pressure": "压力",
    "level": "液位",
    "flow": "流量",
    "leak": "泄漏",
}
POINT_LEVEL_NAMES = {0: "正常", 1: "一级报警", 2: "二级报警"}
#: Gas detectors alarm at level 1 / level 2; process points at LL, L, H, HH.
LIMIT_NAMES = (
    ("一级", "level1"),
    ("二级", "level2"),
    ("LL", "limit_ll"),
    ("L", "limit_l"),
    ("H", "limit_h"),
    ("HH", "limit_hh"),
)

# ---- page geometry (mm, A4 portrait) ---------------------------------------------------------

MAP_SIZE = BODY_W  # the map frame is a square as wide as the text


def _num(value: Any) -> str:
    """Numbers as people write them: 6, 0.5, 221.12 (no float noise, no trailing zeros)."""
    if value is None:
        return ""
    return f"{float(value):.2f}".rstrip("0").rstrip(".")


def _level(color: str | None) -> str:
    return LEVEL_NAMES.get(color or "grey", color or "")


def _overdue(review_due: str | None, today: dt.date) -> bool:
    return bool(review_due) and dt.date.fromisoformat(str(review_due)) < today


def assessment_text(p: dict[str, Any]) -> str:
    """ "LEC L3 E6 C15", "LS L2 S4" or "未评估" for a unit registered but not assessed."""
    if p.get("method") == "LEC":
        return f"LEC L{_num(p['likelihood'])} E{_num(p['exposure'])} C{_num(p['consequence'])}"
    if p.get("method") == "LS":
        return f"LS L{_num(p['likelihood'])} S{_num(p['severity'])}"
    return "未评估"


def controls_by_type(controls: Iterable[dict[str, Any]] | None) -> dict[str, list[str]]:
    """Measures grouped by type, in the vocabulary's order (工程技术 first, 应急处置 last)."""
    groups: dict[str, list[str]] = {t: [] for t in CONTROL_NAMES}
    for c in controls or []:
        groups.setdefault(str(c.get("type")), []).append(str(c.get("measure")))
    return {t: ms for t, ms in groups.items() if ms}


# ---- the document ----------------------------------------------------------------------------


def _book_document(title: str) -> Any:
    return document(title, cjk_font_file())


# ---- pages -----------------------------------------------------------------------------------


def _cover(pdf: Any, d: Diagram, today: dt.date) -> None:
    e = d.enterprise
    pdf.add_page()
    pdf.set_font(FONT, size=22)
    pdf.ln(18)
    pdf.cell(BODY_W, 12, "安全风险“一图一册”", align="C", new_x="LMARGIN", new_y="NEXT")
    pdf.set_font(FONT, size=11)
    pdf.cell(BODY_W, 7, "enterprise safety-risk map and register", align="C")
    pdf.ln(12)
    pdf.set_font(FONT, size=16)
    pdf.multi_cell(BODY_W, 9, str(e["name"]), align="C", new_x="LMARGIN", new_y="NEXT")
    pdf.ln(6)
    color = e.get("color")
    reasons = [str(r.get("zh") or r.get("en") or r.get("code")) for r in e.get("reasons") or []]
    identity = [
        ["统一社会信用代码", str(e.get("credit_code") or "")],
        ["行业类别", CATEGORY_NAMES.get(e.get("category") or "", str(e.get("category") or ""))],
        ["所在区", str(e.get("district") or "")],
        ["地址", str(e.get("address") or "")],
        ["风险等级", f"{_level(color)} ({color or 'grey'})"],
        ["评级依据", "；".join(reasons) or "—"],
        ["编制日期", today.isoformat()],
    ]
    table(pdf, ["项目", "内容"], identity, (45, BODY_W - 45), {(4, 1): color_hex(color)}, 10)
    pdf.ln(5)
    counts: dict[str, int] = {}
    for f in d.units:
        c = f["properties"].get("color") or "grey"
        counts[c] = counts.get(c, 0) + 1
    overdue = sum(_overdue(f["properties"].get("review_due"), today) for f in d.units)
    summary = "，".join(f"{LEVEL_NAMES[c]} {counts[c]}" for c in LEVEL_NAMES if c in counts)
    pdf.set_font(FONT, size=10)
    pdf.multi_cell(
        BODY_W,
        6,
        f"风险单元 {len(d.units)} 个（{summary or '无'}；复评逾期 {overdue}）；"
        f"重大危险源 {len(d.hazards)} 处；监测点 {len(d.monitors)} 个。",
        new_x="LMARGIN",
        new_y="NEXT",
    )
    pdf.ln(4)
    heading(pdf, "应急联系人 Emergency contacts")
    contacts = [
        [str(c.get("role") or ""), str(c.get("name") or ""), str(c.get("phone") or "")]
        for c in e.get("contacts") or []
    ]
    table(pdf, ["职责", "姓名", "电话"], contacts or [["—", "未登记", ""]], (60, 60, 60), None, 10)


def _map_page(pdf: Any, d: Diagram) -> None:
    pdf.add_page()
    heading(pdf, "安全风险四色分布图 Four-colour risk map")
    top = pdf.get_y()
    plane = Plane(*d.point)
    xs: list[float] = []
    ys: list[float] = []

    def planar(ring: list[list[float]]) -> list[tuple[float, float]]:
        pts = [plane.xy(x, y) for x, y in ring]
        xs.extend(p[0] for p in pts)
        ys.extend(p[1] for p in pts)
        return pts

    site = [planar(r) for r in rings(d.site)]
    hazards = [(f, [planar(r) for r in rings(f["geometry"])]) for f in d.hazards]
    units = [(f, [planar(r) for r in rings(f["geometry"])]) for f in d.units]
    points = [(f, plane.xy(*f["geometry"]["coordinates"][:2])) for f in d.monitors]
    xs.extend(p[1][0] for p in points)
    ys.extend(p[1][1] for p in points)
    home = plane.xy(*d.point)
    xs.append(home[0])
    ys.append(home[1])
    half = max(max(xs) - min(xs), max(ys) - min(ys), 60.0) / 2 * 1.15
    mid_x, mid_y = (max(xs) + min(xs)) / 2, (max(ys) + min(ys)) / 2
    k = MAP_SIZE / (2 * half)  # mm per metre

    def page_xy(p: tuple[float, float]) -> tuple[float, float]:
        return MARGIN + (p[0] - mid_x + half) * k, top + (mid_y + half - p[1]) * k

    pdf.set_draw_color(0, 0, 0)
    pdf.set_line_width(0.3)
    pdf.set_fill_color(250, 248, 243)
    pdf.rect(MARGIN, top, MAP_SIZE, MAP_SIZE, style="DF")
    pdf.set_draw_color(70, 70, 70)
    with pdf.local_context():
        pdf.set_dash_pattern(dash=2, gap=1.5)
        pdf.set_line_width(0.4)
        for ring in site:
            pdf.polygon([page_xy(p) for p in ring], style="D")
    for f, hz_rings in hazards:
        with pdf.local_context(fill_opacity=0.12):
            pdf.set_dash_pattern(dash=1, gap=1)
            pdf.set_line_width(0.6)
            pdf.set_draw_color(*rgb(color_hex(f["properties"].get("color"))))
            pdf.set_fill_color(*rgb(color_hex(f["properties"].get("color"))))
            for ring in hz_rings:
                pdf.polygon([page_xy(p) for p in ring], style="DF")
    for f, unit_rings in units:
        with pdf.local_context(fill_opacity=0.75):
            pdf.set_draw_color(34, 34, 34)
            pdf.set_line_width(0.25)
            pdf.set_fill_color(*rgb(color_hex(f["properties"].get("color"))))
            for ring in unit_rings:
                pdf.polygon([page_xy(p) for p in ring], style="DF")
    pdf.set_font(FONT, size=7)
    for f, unit_rings in units:
        if not unit_rings:
            continue
        cx, cy = page_xy(centroid([list(p) for p in unit_rings[0]]))
        name = str(f["properties"]["name"])
        w = pdf.get_string_width(name)
        with pdf.local_context(fill_opacity=0.8):
            pdf.set_fill_color(255, 255, 255)
            pdf.rect(cx - w / 2 - 0.6, cy - 1.9, w + 1.2, 3.0, style="F")
        pdf.text(cx - w / 2, cy + 0.8, name)
    for f, p in points:
        x, y = page_xy(p)
        pdf.set_fill_color(*rgb(color_hex(f["properties"].get("color"))))
        pdf.set_draw_color(0, 0, 0)
        pdf.set_line_width(0.2)
        pdf.polygon([(x, y - 1.8), (x + 1.6, y + 1.0), (x - 1.6, y + 1.0)], style="DF")
    hx, hy = page_xy(home)
    pdf.set_fill_color(0, 0, 0)
    pdf.circle(x=hx, y=hy, radius=0.9, style="F")
    _scale_bar(pdf, top, half * 2, k)
    _north_arrow(pdf, top)
    pdf.set_y(top + MAP_SIZE + 3)
    _map_legend(pdf)


def _scale_bar(pdf: Any, top: float, frame_m: float, k: float) -> None:
    """A round length near a fifth of the frame, bottom left, labelled in metres."""
    target = frame_m / 5
    length = min(
        (m for m in (10, 20, 50, 100, 200, 500, 1000, 2000, 5000) if m >= target * 0.6),
        default=10_000,
    )
    x0, y0 = MARGIN + 6, top + MAP_SIZE - 8
    w = length * k
    pdf.set_draw_color(0, 0, 0)
    pdf.set_line_width(0.2)
    pdf.set_fill_color(0, 0, 0)
    pdf.rect(x0, y0, w / 2, 1.2, style="DF")
    pdf.set_fill_color(255, 255, 255)
    pdf.rect(x0 + w / 2, y0, w / 2, 1.2, style="DF")
    pdf.set_font(FONT, size=7)
    pdf.text(x0, y0 - 1, "0")
    label = f"{length} m"
    pdf.text(x0 + w - pdf.get_string_width(label) / 2, y0 - 1, label)


def _north_arrow(pdf: Any, top: float) -> None:
    x, y = MARGIN + MAP_SIZE - 12, top + 8
    pdf.set_fill_color(0, 0, 0)
    pdf.set_draw_color(0, 0, 0)
    pdf.polygon([(x, y), (x + 3, y + 9), (x, y + 7), (x - 3, y + 9)], style="DF")
    pdf.set_font(FONT, size=10)
    pdf.text(x - pdf.get_string_width("N") / 2, y - 1.5, "N")


def _map_legend(pdf: Any) -> None:
    pdf.set_font(FONT, size=8)
    x = MARGIN
    y = pdf.get_y()
    for color, name in LEVEL_NAMES.items():
        pdf.set_fill_color(*rgb(color_hex(color)))
        pdf.set_draw_color(34, 34, 34)
        pdf.rect(x, y, 5, 3.5, style="DF")
        pdf.text(x + 6.5, y + 3, name)
        x += 8 + pdf.get_string_width(name) + 4
    y += 6
    x = MARGIN
    with pdf.local_context():
        pdf.set_dash_pattern(dash=1, gap=1)
        pdf.set_draw_color(120, 120, 120)
        pdf.rect(x, y, 5, 3.5, style="D")
    pdf.text(x + 6.5, y + 3, "重大危险源（虚线，按分级着色）")
    x += 62
    pdf.set_fill_color(150, 150, 150)
    pdf.polygon([(x + 2.5, y), (x + 4.5, y + 3.5), (x + 0.5, y + 3.5)], style="DF")
    pdf.text(x + 6.5, y + 3, "监测点（实时颜色）")
    x += 38
    with pdf.local_context():
        pdf.set_dash_pattern(dash=2, gap=1.5)
        pdf.set_draw_color(70, 70, 70)
        pdf.line(x, y + 1.8, x + 5, y + 1.8)
    pdf.text(x + 6.5, y + 3, "厂界")
    x += 16
    pdf.set_fill_color(0, 0, 0)
    pdf.circle(x=x + 2.5, y=y + 1.8, radius=0.9, style="F")
    pdf.text(x + 6.5, y + 3, "企业位置")
    pdf.set_y(y + 6)


def _register(pdf: Any, d: Diagram, today: dt.date) -> None:
    pdf.add_page()
    heading(pdf, "风险分级管控清单 Risk register")
    rows: list[list[str]] = []
    fills: dict[tuple[int, int], str] = {}
    for i, f in enumerate(d.units):
        p = f["properties"]
        due = str(p.get("review_due") or "")
        late = _overdue(p.get("review_due"), today)
        person = " ".join(x for x in (p.get("responsible"), p.get("responsible_phone")) if x)
        rows.append(
            [
                str(i + 1),
                str(p["name"]),
                KIND_NAMES.get(p.get("kind") or "other", str(p.get("kind"))),
                assessment_text(p),
                _num(p.get("score")),
                _level(p.get("color")),
                person,
                f"{due} 逾期" if late else due,
            ]
        )
        fills[(i, 5)] = color_hex(p.get("color"))
        if late:
            fills[(i, 7)] = "#F4B6B6"
    if not rows:
        rows = [["", "（未登记风险单元）", "", "", "", "", "", ""]]
    head = ["序号", "风险单元", "类型", "评估方法与取值", "分值", "等级", "责任人", "复评日期"]
    table(pdf, head, rows, (9, 36, 18, 32, 13, 18, 32, 22), fills)


def _controls(pdf: Any, d: Diagram) -> None:
    pdf.add_page()
    heading(pdf, "管控措施 Controls by unit and type")
    rows: list[list[str]] = []
    for f in d.units:
        p = f["properties"]
        groups = controls_by_type(p.get("controls"))
        unit = f"{p['name']}（{_level(p.get('color'))}）"
        person = " ".join(x for x in (p.get("responsible"), p.get("responsible_phone")) if x)
        if not groups:
            rows.append([unit, "—", "未登记管控措施", person])
        for n, (kind, measures) in enumerate(groups.items()):
            rows.append(
                [
                    unit if n == 0 else "",
                    CONTROL_NAMES.get(kind, kind),
                    "\n".join(measures),
                    person if n == 0 else "",
                ]
            )
    table(
        pdf,
        ["风险单元", "措施类型", "管控措施", "责任人"],
        rows or [["—", "", "", ""]],
        (42, 22, 86, 30),
    )


def _sources_and_points(pdf: Any, d: Diagram) -> None:
    pdf.add_page()
    heading(pdf, "重大危险源 Major hazard sources")
    rows: list[list[str]] = []
    fills: dict[tuple[int, int], str] = {}
    for i, f in enumerate(d.hazards):
        p = f["properties"]
        substances = "\n".join(
            f"{s['name']}{' ' + s['cas'] if s.get('cas') else ''} q={_num(s['q'])} t"
            + (f" / Q={_num(s['critical_q'])} t" if s.get("critical_q") else "")
            for s in p.get("substances") or []
        )
        grade = f"{p['grade']} 级" if p.get("grade") else "未分级"
        rows.append([str(p["code"]), str(p["name"]), grade, _num(p.get("R")), substances])
        fills[(i, 2)] = color_hex(p.get("color"))
    table(
        pdf,
        ["编号", "名称", "级别", "R 值", "危险化学品（在线量 / 临界量）"],
        rows or [["—", "无重大危险源", "", "", ""]],
        (28, 42, 18, 16, 76),
        fills,
    )
    pdf.ln(6)
    heading(pdf, "监测点 Monitoring points")
    rows = []
    fills = {}
    for i, f in enumerate(d.monitors):
        p = f["properties"]
        uom = p.get("measure_unit") or ""
        limits = " ".join(
            f"{name} {_num(p.get(key))}" for name, key in LIMIT_NAMES if p.get(key) is not None
        )
        if p.get("offline"):
            state = "离线"
        elif p.get("level") is None:
            state = "无数据"
        else:
            state = POINT_LEVEL_NAMES.get(int(p["level"]), str(p["level"]))
        if p.get("last_value") is not None:
            state += f"（{_num(p['last_value'])} {uom}）"
        kind = POINT_KIND_NAMES.get(p.get("kind") or "", str(p.get("kind")))
        if p.get("substance"):
            kind += f" {p['substance']}"
        rows.append(
            [
                str(p["code"]),
                str(p.get("hazard_source") or ""),
                kind,
                f"{limits} {uom}".strip(),
                state,
            ]
        )
        fills[(i, 4)] = color_hex(p.get("color"))
    table(
        pdf,
        ["编号", "所属危险源", "类型", "报警限值", "状态"],
        rows or [["—", "", "无监测点", "", ""]],
        (28, 28, 40, 52, 32),
        fills,
    )


def render_book(d: Diagram, today: dt.date | None = None) -> bytes:
    """The book as PDF bytes; CjkFontMissing (layers/risk/fonts.py) when the font is absent."""
    today = today or dt.date.today()
    title = f"{d.enterprise['name']} · 安全风险“一图一册”"
    pdf = _book_document(title)
    _cover(pdf, d, today)
    _map_page(pdf, d)
    _register(pdf, d, today)
    _controls(pdf, d)
    _sources_and_points(pdf, d)
    return bytes(pdf.output())
