"""Who sees what (issue 8): the one home of the roles' rules.

* **admin** — everything, every write, keys and the audit log.
* **regulator** — the data of their districts (a key without districts: the whole city):
  enterprises, hazard sources, monitoring points, pipelines, alerts, alarms, risk units,
  scores, hidden dangers; writes in those districts. Aggregates that do not stop at a district
  line — hexagons, consequence zones, the city summary — are city-wide.
* **enterprise** — one enterprise: its own site, hazard sources, monitoring points, risk units,
  score, hidden dangers and diagram; nothing of any other enterprise, not even on the map.
* **officer** — transport: tankers, tracks, stops, and the alerts of their districts, which
  they acknowledge and dispose.
* The transport chain (issue 14: carriers, vehicles, drivers and escorts, waybills — the
  ``carriage`` audience): admins everything; regulators and officers their districts' (a
  carrier's district); an enterprise key of a carrier its own carrier's rows only. Personal
  data in it (id-card numbers, phones) is whole for admins and the carrier itself, masked for
  everyone else.
* **tile_reader** — tiles, TileJSON and the style only, with sensitive properties removed
  (substance inventories and what they imply: R values, pipeline substances), never writes.
* **ingest** — a machine (issue 18): posts tanker fixes and sensor readings and nothing else,
  not even a tile; no map session. A key may name districts (vehicles registered there, points
  of enterprises or pipelines there) and carriers (their vehicles: a carrier's terminal
  gateway). Both named: both must hold. Carriers without districts: fixes only, no readings.

The HTTP layer asks these questions through ``geo_api/auth.py``; the tile engine through
:class:`TileView`. Nothing here knows about FastAPI.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache
from typing import Final, TypeVar

from layers.catalog import Catalog, Collection, Layer
from layers.catalog.model import Prop
from layers.catalog.tiles import TileLayer
from layers.core import vocab

V = TypeVar("V")

ADMIN: Final = "admin"
REGULATOR: Final = "regulator"
ENTERPRISE: Final = "enterprise"
OFFICER: Final = "officer"
TILE_READER: Final = "tile_reader"
INGEST: Final = "ingest"
ROLES: Final = vocab.ROLES
#: Roles that may open the map (tiles, TileJSON, the style, the change stream): people and GIS
#: clients. An ingest machine may not: it writes, it never reads.
MAP_ROLES: Final = tuple(r for r in ROLES if r != INGEST)
#: Roles that may post tanker fixes and sensor readings (enterprises: readings of their own
#: points only, ``geo_api/routes/readings.py``).
FIX_WRITERS: Final = (ADMIN, INGEST)
READING_WRITERS: Final = (ADMIN, ENTERPRISE, INGEST)

#: Who reads which audience of layers (``layers/catalog/model.py``) besides admins and
#: regulators, who read everything: reference layers are for anybody with a map, an enterprise
#: sees its own site, officers the transport layers; the tile reader gets the layers declared
#: public, sensitive properties removed.
AUDIENCE_READERS: Final[dict[str, frozenset[str]]] = {
    "reference": frozenset({ENTERPRISE, OFFICER}),
    "site": frozenset({ENTERPRISE}),
    "city": frozenset(),
    "transport": frozenset({OFFICER}),
    "carriage": frozenset({ENTERPRISE, OFFICER}),
}
#: Audiences whose rows are scoped: to a regulator's districts, or to one enterprise.
SCOPED_AUDIENCES: Final = frozenset({"site", "city", "transport", "carriage"})
#: Collections of these audiences are cut to the caller's rows when read (zones and districts
#: are reference data for whoever may read them).
SCOPED_READ_AUDIENCES: Final = frozenset({"site", "city", "carriage"})
#: Roles that read personal data (id-card numbers, phones) whole: admins, and a carrier its
#: own people (its rows are all it reads). Regulators and officers identify a driver by name
#: and certificate; the masked number still matches a card shown at a roadside check.
PERSONAL_DATA_READERS: Final = frozenset({ADMIN, ENTERPRISE})


def reads(role: str, audience: str, public: bool = False) -> bool:
    """May ``role`` read a layer of ``audience`` (``public``: on the published map)?"""
    if role in (ADMIN, REGULATOR):
        return True
    if role == TILE_READER:
        return public
    return role in AUDIENCE_READERS.get(audience, frozenset())


def reads_rollup(role: str, layer: Layer) -> bool:
    """May ``role`` read ``layer``'s hexagon cells through ``/api/h3``? A published rollup is
    a city-wide aggregate for whoever reaches that route; an unpublished one (risk units: a
    register is internal) only for those who read the layer itself."""
    spec = layer.hexagons
    return spec is not None and (spec.public or reads(role, layer.audience))


@lru_cache(maxsize=256)
def tile_layers_for(role: str, catalog: Catalog) -> frozenset[str]:
    """The tile layers a role may request; asking for any other is a 403."""
    return frozenset(
        name for name, layer in catalog.tiles.items() if reads(role, layer.audience, layer.public)
    )


@dataclass(frozen=True)
class TileView:
    """The rows and properties one kind of caller gets in a tile; ``key`` keys the tile cache,
    so callers who would get different bytes never share an entry."""

    key: str = ""  # "" = the full view
    districts: tuple[str, ...] | None = None  # rows of these districts (scoped layers only)
    enterprise_id: int | None = None  # rows of this enterprise only
    redacted: bool = False  # sensitive properties removed

    def properties(self, layer: TileLayer) -> tuple[Prop, ...]:
        if not self.redacted:
            return layer.properties
        return tuple(p for p in layer.properties if p.name not in layer.sensitive)

    def visible(self, fields: dict[str, V], layer: TileLayer) -> dict[str, V]:
        """``fields`` (a layer's TileJSON fields) without what this view leaves out."""
        if not self.redacted:
            return fields
        return {k: v for k, v in fields.items() if k not in layer.sensitive}

    def scoped_by_district(self, layer: TileLayer) -> bool:
        # Reference layers (outlines, protected targets) are not cut at a district line.
        return (
            self.districts is not None
            and layer.district_sql is not None
            and layer.audience in SCOPED_AUDIENCES
        )

    def scoped_by_enterprise(self, layer: TileLayer) -> bool:
        # Reference layers carry no enterprise's data; every other layer an enterprise may
        # read has an enterprise expression (checked by a test over the registry).
        return self.enterprise_id is not None and layer.audience != "reference"


#: An id no enterprise has (ids start at 1): scoping to it shows nothing.
NO_ENTERPRISE: Final = -1

FULL_VIEW: Final = TileView()
PUBLIC_VIEW: Final = TileView(key="public", redacted=True)


def tile_view(role: str, districts: frozenset[str] | None, enterprise_id: int | None) -> TileView:
    if role == ENTERPRISE:
        # No enterprise named (a malformed token): the view of an enterprise that has nothing.
        own = enterprise_id if enterprise_id is not None else NO_ENTERPRISE
        return TileView(key=f"e:{own}", enterprise_id=own, redacted=False)
    if role in (TILE_READER, INGEST):  # ingest reads no layer at all; the least view anyway
        return PUBLIC_VIEW
    if role in (REGULATOR, OFFICER) and districts is not None:
        ordered = tuple(sorted(districts))
        scope = "r" if role == REGULATOR else "o"
        return TileView(key=f"{scope}:{','.join(ordered)}", districts=ordered)
    return FULL_VIEW


#: Roles whose keys may carry districts (see ``vocab.DISTRICT_ROLES``).
DISTRICT_ROLES: Final = vocab.DISTRICT_ROLES


def sees_site(
    role: str,
    own_enterprise: int | None,
    districts: frozenset[str] | None,
    enterprise_id: int | None,
    district: str | None,
) -> bool:
    """May a caller see an enterprise's data (its site, units, score, alarms, dangers)?"""
    if role == ADMIN:
        return True
    if role == REGULATOR:
        return districts is None or district in districts
    if role == ENTERPRISE:
        return own_enterprise is not None and own_enterprise == enterprise_id
    return False


def sees_transport(role: str, districts: frozenset[str] | None, district: str | None) -> bool:
    """May a caller see a tanker alert (or vehicle) of ``district``?"""
    if role == ADMIN:
        return True
    if role in (REGULATOR, OFFICER):
        return districts is None or district in districts
    return False


def sees_waybill(
    role: str,
    own_enterprise: int | None,
    districts: frozenset[str] | None,
    parties: tuple[int | None, ...],
    district: str | None,
) -> bool:
    """May a caller read a waybill and its history? ``parties``: its carrier first, then the
    shipper, loading party and consignee — an enterprise key of any of them reads it (the
    collection itself lists a carrier's own waybills only)."""
    if role == ADMIN:
        return True
    if role in (REGULATOR, OFFICER):
        return districts is None or district in districts
    if role == ENTERPRISE:
        return own_enterprise is not None and own_enterprise in parties
    return False


def moves_waybill(
    role: str,
    own_enterprise: int | None,
    districts: frozenset[str] | None,
    carrier_id: int,
    district: str | None,
) -> bool:
    """May a caller ask a waybill's state change (``/transition``: cancel it, or step it when
    no party reports)? Admins; regulators of the carrier's district; the carrier itself."""
    if role == ADMIN:
        return True
    if role == REGULATOR:
        return districts is None or district in districts
    return role == ENTERPRISE and own_enterprise == carrier_id


def posts_waybill_event(role: str, own_enterprise: int | None, party_id: int | None) -> bool:
    """May a caller post a loading / unloading event? Admins, and the party the event belongs
    to (the loading party loads, the consignee unloads) — not the carrier reporting itself."""
    if role == ADMIN:
        return True
    return role == ENTERPRISE and own_enterprise is not None and own_enterprise == party_id


def ingests_fix(
    districts: frozenset[str] | None,
    carriers: frozenset[str] | None,
    district: str | None,
    carrier: str | None,
) -> bool:
    """May an ingest key post a fix of a vehicle registered in ``district`` of ``carrier``?"""
    return (districts is None or district in districts) and (
        carriers is None or carrier in carriers
    )


def ingests_reading(
    districts: frozenset[str] | None, carriers: frozenset[str] | None, district: str | None
) -> bool:
    """May an ingest key post a reading of a point in ``district`` (its enterprise's, or its
    pipeline's)? A carrier's gateway has tankers, not sensors: carriers alone post none."""
    if districts is None:
        return carriers is None
    return district in districts


def collection_readers(coll: Collection) -> tuple[str, ...]:
    """Roles that may list and read a collection."""
    return tuple(r for r in (ADMIN, REGULATOR, ENTERPRISE, OFFICER) if reads(r, coll.audience))


def collection_writers(coll: Collection) -> tuple[str, ...]:
    """Roles that may create rows of a collection: admins and regulators, unless the layer
    names its writers (districts: admins only; vehicles: officers too)."""
    return coll.writers if coll.writers is not None else (ADMIN, REGULATOR)


def reads_personal_data(role: str) -> bool:
    """Does ``role`` get personal data whole (else masked, ``Prop.masked_sql``)?"""
    return role in PERSONAL_DATA_READERS


def scoped_on_read(coll: Collection) -> bool:
    """Are a collection's rows cut to the caller's districts or enterprise when read?"""
    return coll.audience in SCOPED_READ_AUDIENCES


def collection_scope(
    role: str,
    collection: Collection,
    districts: frozenset[str] | None,
    enterprise_id: int | None,
    writing: bool = False,
) -> tuple[list[str] | None, int | None]:
    """(districts, enterprise) a caller's rows of ``collection`` are limited to (None: no limit).

    Reading, only enterprises' data is scoped (zones and vehicles are reference for everyone
    who may read them); writing, a district-bound regulator or officer creates rows of their
    own districts only, whatever the collection."""
    if writing and role in DISTRICT_ROLES and districts is not None:
        return sorted(districts), None
    if not scoped_on_read(collection):
        return None, None
    if role == ENTERPRISE:
        return None, enterprise_id if enterprise_id is not None else NO_ENTERPRISE
    if role == REGULATOR and districts is not None:
        return sorted(districts), None
    if role == OFFICER and districts is not None and collection.audience == "carriage":
        return sorted(districts), None
    return None, None
