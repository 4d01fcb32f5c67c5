"""The directory of served offline packages (``GEORISK_TILES_PACKAGES_DIR``).

A package is ``<name>.pmtiles`` or ``<name>.mbtiles`` written by ``georisk export-tiles``; its
view is read back from the file's own metadata on each request (a header and a small JSON
document: nothing is cached, so a package replaced on disk is judged by its new view at once).
Names are ``[A-Za-z0-9_-]+``: anything else is no package, so no path leaves the directory.
"""

from __future__ import annotations

import json
import re
import sqlite3
import struct
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Final

from pmtiles.reader import MmapSource, Reader

from layers.access.packages import METADATA_KEY, PackageView

NAME: Final = re.compile(r"^[A-Za-z0-9_-]{1,100}$")
FORMATS: Final = ("pmtiles", "mbtiles")


@dataclass(frozen=True)
class Package:
    name: str
    format: str  # pmtiles or mbtiles
    path: Path
    view: PackageView | None  # None: no (valid) view recorded — the full view, admins only
    size: int


def find(directory: Path, name: str, fmt: str) -> Package | None:
    """The package ``name``.``fmt`` in ``directory``, or None (bad name, absent, unreadable)."""
    if fmt not in FORMATS or not NAME.match(name):
        return None
    path = directory / f"{name}.{fmt}"
    try:
        if not path.is_file():
            return None
        return Package(name, fmt, path, read_view(path, fmt), path.stat().st_size)
    except (OSError, ValueError, KeyError, IndexError, struct.error, sqlite3.Error):
        # Not a readable package (truncated, another format under our suffix): none at all.
        return None


def listing(directory: Path, limit: int) -> list[Package]:
    """Up to ``limit`` packages in ``directory``, by name."""
    if not directory.is_dir():
        return []
    out: list[Package] = []
    for path in sorted(directory.iterdir()):
        fmt = path.suffix.lstrip(".")
        package = find(directory, path.stem, fmt) if fmt in FORMATS else None
        if package is not None:
            out.append(package)
            if len(out) >= limit:
                break
    return out


def read_view(path: Path, fmt: str) -> PackageView | None:
    meta = _pmtiles_metadata(path) if fmt == "pmtiles" else _mbtiles_metadata(path)
    return PackageView.from_json(meta.get(METADATA_KEY))


def _pmtiles_metadata(path: Path) -> dict[str, Any]:
    with path.open("rb") as f:
        meta = Reader(MmapSource(f)).metadata()
    return meta if isinstance(meta, dict) else {}


def _mbtiles_metadata(path: Path) -> dict[str, Any]:
    # Read-only URI: opening must never create or alter the file.
    db = sqlite3.connect(f"{path.resolve().as_uri()}?mode=ro", uri=True)
    try:
        rows = db.execute("SELECT value FROM metadata WHERE name = ?", (METADATA_KEY,)).fetchall()
    finally:
        db.close()
    return {METADATA_KEY: json.loads(rows[0][0])} if rows else {}
