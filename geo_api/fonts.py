"""Install the book's CJK font from Debian's packages when it is missing (``georisk fonts``,
run by ``make install``), the way geo_api/pg_local.py installs PostGIS: as root with apt,
otherwise a message naming the package. The font itself is named in layers/risk/fonts.py."""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

from layers.risk.fonts import CJK_FONT_PACKAGE, CjkFontMissing, cjk_font_file


def ensure_cjk_font() -> Path:
    """The font file, installing ``fonts-wqy-microhei`` first when allowed; else CjkFontMissing."""
    try:
        return cjk_font_file()
    except CjkFontMissing:
        if os.geteuid() != 0 or shutil.which("apt-get") is None:
            raise
    print(f"the book's CJK font is missing: apt-get install -y {CJK_FONT_PACKAGE} …", flush=True)
    env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
    install = ["apt-get", "install", "-y", "-q", "--no-install-recommends", CJK_FONT_PACKAGE]
    if subprocess.run(install, env=env, check=False).returncode != 0:
        # An image whose package lists are old or absent: refresh them once and retry.
        subprocess.run(["apt-get", "update", "-q"], env=env, check=True)
        subprocess.run(install, env=env, check=True)
    return cjk_font_file()
