"""Offline tile packages (issue 16 §5): whose view a package holds, and who may fetch it.

A package is rendered through one role's :class:`~layers.access.roles.TileView` and records
that view in its metadata (``georisk_view``). Serving it is then a question of *covering*: a
caller may fetch a package only if everything in it is something the caller would be shown
on the live map anyway — its layers, its rows (districts, enterprise) and its properties (a
redacted caller never gets an unredacted package). Nothing here reads files or knows HTTP.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from layers.access import roles
from layers.catalog import Catalog

#: The key of the view in a package's metadata (PMTiles JSON metadata, MBTiles metadata row).
METADATA_KEY = "georisk_view"
#: Roles a package may be exported for: every role that reads tiles.
PACKAGE_ROLES = roles.MAP_ROLES


@dataclass(frozen=True)
class PackageView:
    """The view a package was rendered through, as recorded at export."""

    role: str
    layers: tuple[str, ...]
    districts: tuple[str, ...] | None = None  # regulator/officer packages of some districts
    enterprise_id: int | None = None  # an enterprise's package
    # The enterprise's district at export: a district regulator covers its enterprises'
    # packages, and serving must not need the database to know that.
    enterprise_district: str | None = None

    def tile_view(self) -> roles.TileView:
        districts = frozenset(self.districts) if self.districts is not None else None
        return roles.tile_view(self.role, districts, self.enterprise_id)

    def to_json(self) -> dict[str, Any]:
        return {
            "role": self.role,
            "layers": list(self.layers),
            "districts": list(self.districts) if self.districts is not None else None,
            "enterprise_id": self.enterprise_id,
            "enterprise_district": self.enterprise_district,
        }

    @classmethod
    def from_json(cls, doc: Any) -> PackageView | None:
        """The recorded view, or None when absent or malformed (such a package is treated as
        holding the full view: admins only)."""
        if not isinstance(doc, dict) or doc.get("role") not in PACKAGE_ROLES:
            return None
        layers: list[str] = doc.get("layers") or []
        districts: list[str] | None = doc.get("districts")
        enterprise, home = doc.get("enterprise_id"), doc.get("enterprise_district")
        if not layers or not _strings(layers):
            return None
        if districts is not None and not _strings(districts):
            return None
        if enterprise is not None and not isinstance(enterprise, int):
            return None
        return cls(
            role=doc["role"],
            layers=tuple(layers),
            districts=tuple(sorted(districts)) if districts is not None else None,
            enterprise_id=enterprise,
            enterprise_district=home if isinstance(home, str) else None,
        )


def _strings(value: Any) -> bool:
    return isinstance(value, list) and all(isinstance(v, str) for v in value)


def refused_layers(role: str, layers: Iterable[str], catalog: Catalog) -> list[str]:
    """The layers of ``layers`` that ``role`` may not read as tiles (the export refuses them)."""
    allowed = roles.tile_layers_for(role, catalog)
    return [name for name in layers if name not in allowed]


def covers(
    role: str,
    districts: frozenset[str] | None,
    enterprise_id: int | None,
    package: PackageView | None,
    catalog: Catalog,
) -> bool:
    """May a caller (``role`` with its key's ``districts`` / ``enterprise_id``) fetch
    ``package``? Only when the caller's own tile view shows at least what the package holds."""
    if role == roles.ADMIN:
        return True
    if package is None or refused_layers(role, package.layers, catalog):
        return False
    mine, theirs = roles.tile_view(role, districts, enterprise_id), package.tile_view()
    if mine.redacted and not theirs.redacted:
        return False
    if theirs.redacted:
        # The public view: rows of every district, nothing sensitive — the published map.
        return True
    if role == roles.ENTERPRISE:
        return enterprise_id is not None and theirs.enterprise_id == enterprise_id
    if mine.districts is None:
        return True  # a city-wide regulator or officer (its layers were checked above)
    if theirs.districts is not None:
        return set(theirs.districts) <= set(mine.districts)
    if theirs.enterprise_id is not None:
        return package.enterprise_district in mine.districts
    return False  # a city-wide package for a caller limited to some districts
