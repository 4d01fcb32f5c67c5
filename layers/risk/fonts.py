"""The CJK font the enterprise's book is set in, and the Debian package that brings it.

The book's text must be real, extractable Chinese: a PDF set in a font without CJK glyphs shows
boxes ("tofu") and loses the text. So there is no fallback: when the font is missing, rendering
stops with a message naming the package to install. ``make install`` (via ``georisk fonts``,
geo_api/fonts.py) and the Dockerfile install it.
"""

from __future__ import annotations

from pathlib import Path

#: Debian's WenQuanYi Micro Hei: TrueType outlines (glyf, so embeddable and subsettable as
#: TrueType with a ToUnicode map), Latin and CJK in one face, about 5 MB installed.
CJK_FONT_PACKAGE = "fonts-wqy-microhei"
CJK_FONT_FILES = (
    Path("/usr/share/fonts/truetype/wqy/wqy-microhei.ttc"),
    Path("/usr/share/fonts/wqy-microhei/wqy-microhei.ttc"),  # other distributions' layout
)


class CjkFontMissing(RuntimeError):
    """The book's CJK font is not installed; the message says how to install it."""

    def __init__(self) -> None:
        super().__init__(
            f"the enterprise book needs a CJK font: install Debian's {CJK_FONT_PACKAGE}"
            f" (apt-get install -y {CJK_FONT_PACKAGE}, or run `georisk fonts` as root)"
        )
        self.package = CJK_FONT_PACKAGE


def cjk_font_file() -> Path:
    """The font file to embed; raises CjkFontMissing rather than render tofu."""
    for path in CJK_FONT_FILES:
        if path.is_file():
            return path
    raise CjkFontMissing()
