"""A4 documents in Chinese: the page frame, headings and tables the PDFs share.

The enterprise's book (layers/risk/book.py) and the daily bulletin
(layers/prevention/bulletin_pdf.py) are set with fpdf2 the same way: a CJK TrueType font
embedded as a subset with a ToUnicode map (text a reader can search and copy), a running title
from page 2, "第 n 页 / 共 N 页" at the foot, and bordered tables that break between rows and
repeat their heading row. The font file is the caller's (layers/risk/fonts.py finds it and
names the Debian package when it is missing), so this module reads no system state.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

PAGE_W = 210.0
MARGIN = 15.0
BODY_W = PAGE_W - 2 * MARGIN
FONT = "cjk"


def rgb(hex_color: str) -> tuple[int, int, int]:
    h = hex_color.lstrip("#")
    return int(h[0:2], 16), int(h[2:4], 16), int(h[4:6], 16)


def document(title: str, font_file: Path) -> Any:
    """A portrait A4 document set in the CJK font, with running title and page numbers."""
    from fpdf import FPDF

    class Document(FPDF):
        def header(self) -> None:
            if self.page_no() == 1:
                return
            self.set_font(FONT, size=8)
            self.set_text_color(90, 90, 90)
            self.set_xy(MARGIN, 7)
            self.cell(BODY_W, 5, title, align="L")
            self.set_text_color(0, 0, 0)
            self.set_y(MARGIN)

        def footer(self) -> None:
            self.set_y(-11)
            self.set_font(FONT, size=8)
            self.set_text_color(90, 90, 90)
            self.cell(0, 5, f"第 {self.page_no()} 页 / 共 {{nb}} 页", align="C")
            self.set_text_color(0, 0, 0)

    pdf = Document(orientation="P", unit="mm", format="A4")
    pdf.set_margins(MARGIN, MARGIN, MARGIN)
    pdf.set_auto_page_break(True, margin=16)
    # TrueType subset + ToUnicode: extractable text, no tofu.
    pdf.add_font(FONT, "", str(font_file), collection_font_number=0)
    pdf.set_font(FONT, size=10)
    pdf.set_title(title)
    pdf.set_creator("GeoRisk")
    pdf.set_lang("zh-CN")
    return pdf


def heading(pdf: Any, text: str) -> None:
    pdf.set_font(FONT, size=14)
    pdf.cell(BODY_W, 9, text, new_x="LMARGIN", new_y="NEXT")
    pdf.set_font(FONT, size=9)
    pdf.ln(1)


def table(
    pdf: Any,
    head: list[str],
    rows: list[list[str]],
    widths: tuple[float, ...],
    fills: dict[tuple[int, int], str] | None = None,
    size: float = 8,
) -> None:
    """A bordered table that breaks between rows and repeats its heading on every page;
    ``fills`` colours cells by (row, column) with a ``#rrggbb``."""
    from fpdf.fonts import FontFace

    pdf.set_font(FONT, size=size)
    head_style = FontFace(emphasis="", fill_color=(225, 225, 225))
    with pdf.table(
        col_widths=widths,
        width=sum(widths),
        align="LEFT",
        headings_style=head_style,
        line_height=size * 0.55,
        text_align="LEFT",
        repeat_headings=1,
    ) as t:
        t.row(head)
        for r, values in enumerate(rows):
            row = t.row()
            for c, value in enumerate(values):
                fill = (fills or {}).get((r, c))
                style = FontFace(fill_color=rgb(fill)) if fill else None
                row.cell(value, style=style)
