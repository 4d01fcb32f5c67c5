"""Consequence-zone radii: what a release of a substance can do, and how far — the one home.

A regulator's map draws zones around sites and pipelines the way UK HSE's PADHI draws its
inner / middle / outer consultation zones and US CAMEO/ALOHA its red / orange / yellow threat
zones (docs/domain.md §2.5): a documented lookup of radii by substance class and quantity, or by
pipe diameter × pressure, one radius per colour, nested red ⊂ orange ⊂ yellow ⊂ blue. The figures
are screening defaults for a map, not a site's quantitative risk assessment (GB/T 37243-2019
is the method for that); replace them by configuration once a site's own study exists.

Pipelines (by diameter × pressure band). HSE does not publish a generic table: it computes each
major-accident-hazard pipeline's PADHI zones. The radius scale here is the *potential impact
radius* of ASME B31.8S / US 49 CFR 192.903, r = 0.69 · d · √p (ft, in, psi), i.e.
r ≈ 0.0997 · D[mm] · √P[MPa] metres — the distance at which a full-bore rupture's jet fire
gives 15.8 kW/m² (5,000 Btu/h·ft²). Its underlying point-source model makes heat flux fall as
1/r², so the distance to flux q is r · √(15.8 / q). The colours take ALOHA's thermal levels of
concern — red 10 kW/m² (potentially lethal within 60 s), orange 5 kW/m² (second-degree burns
within 60 s), yellow 2 kW/m² (pain within 60 s) — and blue API Std 521's 1.58 kW/m²
(continuous exposure tolerable), the outermost awareness ring. Each band is evaluated at its
upper edges (conservative inside the band); above the top edges the top band applies — its
edges, 1,422 mm and 16 MPa, bound China's trunk lines (China–Russia East Route: 1,422 mm,
12 MPa).

Hazard sources (by hazard class × quantity band). Flammable gases (and explosives) use blast
scaling: the US EPA RMP Offsite Consequence Analysis Guidance (1999) puts the 1 psi overpressure
distance of a vapour-cloud explosion at X = 17 · (0.1 · W · Hc / Hc_TNT)^⅓ m (W in kg, 10 %
yield); for hydrocarbons Hc ≈ 10 · Hc_TNT, so X ≈ 17 · W^⅓. The colours take ALOHA's
overpressure levels of concern — red 8 psi (destruction of buildings), orange 3.5 psi (serious
injury likely), yellow 1 psi (shatters glass) — at TNT surface-burst scaled distances of about
4.0, 6.5 and 17 m/kg^⅓; blue is twice the yellow distance (a PADHI-style outer consultation
ring; product choice). Other classes scale those figures by a class factor, a product
assumption to be calibrated with ALOHA runs: toxic gases × 2 (a toxic cloud stays harmful far
beyond the blast reach of the same mass), flammable liquids × 0.5 (only what evaporates from
the pool takes part, as EPA's guidance counts it), other classes × 0.5. The released quantity
is the unit's q of that class (GB 18218 design maximum, t), capped at the top band: EPA's worst
case is the largest single vessel, and 1,000 t is about a full 2,000 m³ LPG sphere.

Band edges are inclusive upper bounds (≤), as in GB 50028-2006's pressure classes.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from enum import StrEnum
from typing import Final, Literal

from layers.core.colors import RISK_COLORS, RiskColor
from layers.risk.substances import BY_CAS, CATALOGUE


# -- substances ------------------------------------------------------------------------------
@dataclass(frozen=True)
class SubstanceHazard:
    """Whether a fluid burns and/or poisons, and how we know (catalogue, keyword or default)."""

    flammable: bool
    toxic: bool
    basis: Literal["catalogue", "keyword", "inert_keyword", "default"]


#: Name fragments (zh and lower-case en) for fluids not in layers/risk/substances.py. Matching is
#: deliberately loose: a false match can only make a fluid look more dangerous.
TOXIC_KEYWORDS: Final = (
    "氯气", "液氯", "氨", "硫化氢", "氟化氢", "氢氟酸", "氯化氢", "光气", "氰", "一氧化碳",
    "煤气", "二氧化硫", "环氧乙烷", "苯", "chlorine", "ammonia", "hydrogen sulfide",
    "hydrogen sulphide", "hydrogen fluoride", "hydrogen chloride", "phosgene", "cyanide",
    "carbon monoxide", "sulfur dioxide", "sulphur dioxide", "ethylene oxide", "benzene",
    "coal gas", "syngas",
)  # fmt: skip
FLAMMABLE_KEYWORDS: Final = (
    "天然气", "燃气", "煤气", "石油气", "液化气", "氢", "烷", "烯", "炔", "油", "醇", "酮",
    "苯", "natural gas", "lng", "lpg", "cng", "hydrogen", "methane", "ethane", "propane",
    "butane", "ethylene", "propylene", "acetylene", "gasoline", "petrol", "diesel",
    "kerosene", "jet fuel", "crude", "naphtha", "oil", "alcohol", "methanol", "ethanol",
    "fuel gas", "syngas", "coal gas",
)  # fmt: skip
#: Fluids that neither burn nor poison (their hazard is stored pressure energy only).
INERT_KEYWORDS: Final = (
    "氮", "蒸汽", "水", "空气", "氩", "二氧化碳", "氧气", "nitrogen", "steam", "water", "air",
    "argon", "carbon dioxide", "oxygen",
)  # fmt: skip
#: Unknown fluid: assume the worst, so missing data never makes a pipe look safer.
UNKNOWN_HAZARD: Final = SubstanceHazard(flammable=True, toxic=True, basis="default")

_BY_NAME: Final = {n.lower(): s for s in CATALOGUE for n in (s.name_zh, s.name_en)}


def substance_hazard(name: str | None, cas: str | None) -> SubstanceHazard:
    """Flammable/toxic flags by CAS (layers/risk/substances.py), else by name, else the default."""
    known = BY_CAS.get(cas or "") or _BY_NAME.get((name or "").strip().lower())
    if known is not None:
        return SubstanceHazard(known.flammable, known.toxic, "catalogue")
    text = (name or "").strip().lower()
    if text:
        toxic = any(k in text for k in TOXIC_KEYWORDS)
        flammable = any(k in text for k in FLAMMABLE_KEYWORDS)
        if toxic or flammable:
            return SubstanceHazard(flammable, toxic, "keyword")
        if any(k in text for k in INERT_KEYWORDS):
            return SubstanceHazard(False, False, "inert_keyword")
    return UNKNOWN_HAZARD


class HazardClass(StrEnum):
    TOXIC_GAS = "toxic_gas"
    FLAMMABLE_GAS = "flammable_gas"
    FLAMMABLE_LIQUID = "flammable_liquid"
    OTHER = "other"


def hazard_class_of(code: str | None, cas: str | None, name: str | None) -> HazardClass:
    """Zone class of one substance from its GB 18218 Table 2 code (as
    layers/risk/substances.py reads the standard: J acute toxicity, W1 explosives, W2 flammable
    gases, W5 flammable liquids),
    the catalogue's code by CAS, or — with neither — its flags (state unknown: gas, the worse).
    Explosives share the blast row with flammable gases: EPA's formula with TNT itself (yield 1,
    Hc = Hc_TNT) gives the same 17 · W^⅓."""
    known = BY_CAS.get(cas or "")
    code = code or (known.hazard_class if known else None)
    if code:
        if code == "toxic_gas" or code.startswith("J"):
            return HazardClass.TOXIC_GAS
        if code.startswith("W1") or code == "W2":
            return HazardClass.FLAMMABLE_GAS
        if code.startswith("W5"):
            return HazardClass.FLAMMABLE_LIQUID
        return HazardClass.OTHER
    flags = substance_hazard(name, cas)
    if flags.toxic:
        return HazardClass.TOXIC_GAS
    if flags.flammable:
        return HazardClass.FLAMMABLE_GAS
    return HazardClass.OTHER


# -- radii -----------------------------------------------------------------------------------
@dataclass(frozen=True)
class ZoneRadii:
    """Radius in metres per colour, nested red < orange < yellow < blue."""

    red: float
    orange: float
    yellow: float
    blue: float

    def of(self, color: RiskColor) -> float:
        return float(getattr(self, color))

    def items(self) -> list[tuple[RiskColor, float]]:
        return [(c, self.of(c)) for c in RISK_COLORS]

    @staticmethod
    def widest(radii: list[ZoneRadii]) -> ZoneRadii:
        return ZoneRadii(*(max(r.of(c) for r in radii) for c in RISK_COLORS))


def band_index(value: float, edges: tuple[float, ...]) -> int:
    """Index of the first band whose upper edge (inclusive) holds ``value``; the top band
    takes everything above."""
    for index, edge in enumerate(edges):
        if value <= edge:
            return index
    return len(edges) - 1


#: Pipeline diameter bands, upper edges in mm (1,422 mm: the largest trunk line in China).
DIAMETER_EDGES_MM: Final = (100.0, 200.0, 300.0, 500.0, 800.0, 1422.0)
#: Pressure bands, upper edges in MPa: GB 50028-2006 city-gas classes (medium ≤ 0.4, sub-high
#: ≤ 1.6, high ≤ 4.0), TSG D0001-2009's 10 MPa (any fluid at or above it is GC1), then 16 MPa.
PRESSURE_EDGES_MPA: Final = (0.4, 1.6, 4.0, 10.0, 16.0)
#: ASME B31.8S potential impact radius, SI form: 0.69 ft/(in·√psi) → m/(mm·√MPa).
PIR_M_PER_MM_SQRT_MPA: Final = 0.69 * 0.3048 / 25.4 * math.sqrt(145.0377)
#: Heat flux at the potential impact radius (5,000 Btu/h·ft²), kW/m².
PIR_FLUX_KW_M2: Final = 15.77
#: Heat flux bounding each colour, kW/m²: ALOHA thermal levels of concern; blue API Std 521.
PIPELINE_FLUX_KW_M2: Final[dict[RiskColor, float]] = {
    "red": 10.0,
    "orange": 5.0,
    "yellow": 2.0,
    "blue": 1.58,
}


def potential_impact_radius_m(diameter_mm: float, pressure_mpa: float) -> float:
    return PIR_M_PER_MM_SQRT_MPA * diameter_mm * math.sqrt(pressure_mpa)


def _pipeline_radii(diameter_mm: float, pressure_mpa: float) -> ZoneRadii:
    pir = potential_impact_radius_m(diameter_mm, pressure_mpa)
    return ZoneRadii(
        *(math.ceil(pir * math.sqrt(PIR_FLUX_KW_M2 / PIPELINE_FLUX_KW_M2[c])) for c in RISK_COLORS)
    )


#: The pipeline lookup table: (diameter band, pressure band) → radii, at the bands' upper edges.
PIPELINE_RADII: Final[dict[tuple[int, int], ZoneRadii]] = {
    (i, j): _pipeline_radii(d, p)
    for i, d in enumerate(DIAMETER_EDGES_MM)
    for j, p in enumerate(PRESSURE_EDGES_MPA)
}


def pipeline_radii(diameter_mm: float, pressure_mpa: float) -> ZoneRadii:
    """Zone radii of a pipeline segment from its diameter and pressure bands."""
    return PIPELINE_RADII[
        (band_index(diameter_mm, DIAMETER_EDGES_MM), band_index(pressure_mpa, PRESSURE_EDGES_MPA))
    ]


#: Quantity bands, upper edges in tonnes; above the last, the last applies (single-vessel cap).
QUANTITY_EDGES_T: Final = (1.0, 10.0, 50.0, 200.0, 1000.0)
#: TNT surface-burst scaled distance, m/kg^⅓, at ALOHA's 8 / 3.5 / 1 psi; blue = 2 × yellow.
BLAST_SCALED_DISTANCE: Final[dict[RiskColor, float]] = {
    "red": 4.0,
    "orange": 6.5,
    "yellow": 17.0,
    "blue": 34.0,
}
#: Distance factor per class relative to the blast row (product assumption, see above).
CLASS_FACTOR: Final[dict[HazardClass, float]] = {
    HazardClass.TOXIC_GAS: 2.0,
    HazardClass.FLAMMABLE_GAS: 1.0,
    HazardClass.FLAMMABLE_LIQUID: 0.5,
    HazardClass.OTHER: 0.5,
}


def _source_radii(hazard_class: HazardClass, quantity_t: float) -> ZoneRadii:
    cube_root_kg = (quantity_t * 1000.0) ** (1.0 / 3.0)
    factor = CLASS_FACTOR[hazard_class]
    return ZoneRadii(
        *(math.ceil(factor * BLAST_SCALED_DISTANCE[c] * cube_root_kg) for c in RISK_COLORS)
    )


#: The hazard-source lookup table: (class, quantity band) → radii, at the bands' upper edges.
HAZARD_SOURCE_RADII: Final[dict[tuple[HazardClass, int], ZoneRadii]] = {
    (cls, i): _source_radii(cls, q) for cls in HazardClass for i, q in enumerate(QUANTITY_EDGES_T)
}


def hazard_source_radii(quantity_by_class: dict[HazardClass, float]) -> ZoneRadii | None:
    """Radii of a unit holding these quantities (t) per class: the widest over its classes.
    ``None`` when it holds nothing (no zone to draw)."""
    radii = [
        HAZARD_SOURCE_RADII[(cls, band_index(q, QUANTITY_EDGES_T))]
        for cls, q in quantity_by_class.items()
        if q > 0
    ]
    return ZoneRadii.widest(radii) if radii else None
