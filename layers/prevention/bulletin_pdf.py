"""The daily bulletin as an A4 PDF, in Chinese: what was on it, why, and what was done.

Pages: the masthead (number, date, counts), the district indexes and the department index,
then the key-attention and suggested-attention tables in rank order — each entry with its
reasons and the actions recorded against it. Set like the enterprise's book (layers/core/pdf.py).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from layers.core.colors import DISPLAY_HEX, GREY, RISK_COLORS
from layers.core.pdf import BODY_W, FONT, document, heading, table

COLOR_NAMES = {"red": "红", "orange": "橙", "yellow": "黄", "blue": "蓝", GREY: "灰"}
DEPARTMENT_NAMES = {
    "emergency_management": "应急管理",
    "transport": "交通运输",
    "traffic_police": "公安交警",
    "market_regulation": "市场监管",
}
ACTION_NAMES = {"interview": "约谈", "inspection": "检查", "enforcement": "执法", "other": "其他"}


def _pct(value: float | None) -> str:
    return "—" if value is None else f"{value:.0%}"


def _entries(pdf: Any, title: str, entries: list[dict[str, Any]]) -> None:
    heading(pdf, f"{title}（{len(entries)} 家）")
    if not entries:
        pdf.cell(BODY_W, 6, "无", new_x="LMARGIN", new_y="NEXT")
        pdf.ln(2)
        return
    rows, fills = [], {}
    for r, e in enumerate(entries):
        color = e["dynamic_color"] if e["dynamic_color"] in RISK_COLORS else GREY
        fills[(r, 3)] = DISPLAY_HEX[color]
        reasons = "\n".join(x["text"] for x in e["reasons"])
        done = "\n".join(
            f"{a['taken_on']} {ACTION_NAMES.get(a['kind'], a['kind'])}：{a['note']}"
            for a in e["actions"]
        )
        rows.append(
            [
                str(e["rank"]),
                e["name"],
                e["district"] or "",
                COLOR_NAMES[color],
                DEPARTMENT_NAMES.get(e["department"], e["department"]),
                reasons,
                done or "未处置",
            ]
        )
    table(
        pdf,
        ["序号", "企业", "区县", "动态", "部门", "原因", "处置情况"],
        rows,
        (10, 38, 16, 10, 16, 50, 40),
        fills,
    )
    pdf.ln(3)


def render_bulletin(bulletin: dict[str, Any], font_file: Path) -> bytes:
    number = bulletin["number"]
    year, seq = number.split("-")
    title = f"危险化学品安全风险每日简报 {year}年第{int(seq)}期"
    pdf = document(title, font_file)
    pdf.add_page()
    pdf.set_font(FONT, size=18)
    pdf.multi_cell(BODY_W, 10, title, align="C", new_x="LMARGIN", new_y="NEXT")
    pdf.set_font(FONT, size=10)
    key, suggested = bulletin["key_attention"], bulletin["suggested_attention"]
    pdf.cell(
        BODY_W,
        7,
        f"日期 {bulletin['date']}　编号 {number}　重点关注 {len(key)} 家　提示关注"
        f" {len(suggested)} 家",
        align="C",
        new_x="LMARGIN",
        new_y="NEXT",
    )
    pdf.ln(3)
    heading(pdf, "区县指数")
    table(
        pdf,
        ["区县", "企业数", "重点关注", "企业主体责任指数", "属地管控指数"],
        [
            [
                d["district"],
                str(d["enterprises"]),
                str(d["key_attention"]),
                _pct(d["enterprise_responsibility"]),
                _pct(d["territorial_control"]),
            ]
            for d in bulletin["districts"]
        ]
        or [["—", "", "", "", ""]],
        (30, 25, 25, 50, 50),
    )
    pdf.ln(3)
    rules = bulletin["rules"]
    heading(pdf, f"部门指数（近 {rules['window_days']} 日，{rules['act_within_days']} 日内处置）")
    table(
        pdf,
        ["部门", "重点关注条目", "按时处置", "部门指数", "平均处置天数"],
        [
            [
                DEPARTMENT_NAMES.get(d["department"], d["department"]),
                str(d["key_entries"]),
                str(d["acted_in_time"]),
                _pct(d["index"]),
                "—" if d["mean_days_to_act"] is None else f"{d['mean_days_to_act']:g}",
            ]
            for d in bulletin["departments"]
        ]
        or [["—", "", "", "", ""]],
        (40, 35, 35, 35, 35),
    )
    pdf.ln(3)
    _entries(pdf, "重点关注企业", key)
    _entries(pdf, "提示关注企业", suggested)
    pdf.set_font(FONT, size=8)
    pdf.multi_cell(
        BODY_W,
        5,
        f"由 GeoRisk 于 {bulletin['issued_at'][:16].replace('T', ' ')} UTC 签发"
        f"（{bulletin['issued_by']}）。"
        "名单规则见 docs/domain.md §5；简报一经签发不再改写，处置情况随记录更新。",
        new_x="LMARGIN",
        new_y="NEXT",
    )
    return bytes(pdf.output())
