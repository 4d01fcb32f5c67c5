"""GB 18218-2018 «危险化学品重大危险源辨识»: identification (S) and grading (R) of a unit.

- Identification: S = Σ qᵢ/Qᵢ; S ≥ 1 makes the unit a major hazard source.
- Grading: R = α · Σ βᵢ · qᵢ/Qᵢ; R ≥ 100 grade 1, 50 ≤ R < 100 grade 2, 10 ≤ R < 50 grade 3,
  R < 10 grade 4. The standard uses ≥ at every edge (public code often writes > 100: wrong).
- α from the number of people within 500 m outside the plant boundary (Table 5).
- β from Table 3 (named toxic gases, by CAS number) or Table 4 (hazard class).
- Q from Table 1 (named substances, by CAS) or Table 2 (by hazard class). A substance with
  several hazard classes takes the **lowest** Table 2 Q of its classes (GB 18218-2018,
  docs/domain.md §2.1); β then comes from Table 4 of the class that set Q (the governing
  class; between classes of equal Q the larger β) — a product choice the standard leaves
  open. A mixture is assessed by the one class it has been classified into.
The standard gives no colours; GeoRisk maps grade 1→red, 2→orange, 3→yellow, 4→blue.
"""

from __future__ import annotations

import math
from collections.abc import Collection, Sequence
from dataclasses import dataclass, field
from typing import Final

from layers.core.colors import RiskColor
from layers.core.errors import InvalidField

#: Table 5 — (minimum people within 500 m, α), checked top-down.
ALPHA_BANDS: Final[tuple[tuple[int, float], ...]] = (
    (100, 2.0),
    (50, 1.5),
    (30, 1.2),
    (1, 1.0),
    (0, 0.5),
)

#: Table 3 — correction factor β of the named toxic gases, keyed by CAS number.
TOXIC_GAS_BETA: Final[dict[str, float]] = {
    "630-08-0": 2,  # carbon monoxide 一氧化碳
    "7446-09-5": 2,  # sulphur dioxide 二氧化硫
    "7664-41-7": 2,  # ammonia 氨
    "75-21-8": 2,  # ethylene oxide 环氧乙烷
    "7647-01-0": 3,  # hydrogen chloride 氯化氢
    "74-83-9": 3,  # methyl bromide 溴甲烷
    "7782-50-5": 4,  # chlorine 氯
    "7783-06-4": 5,  # hydrogen sulphide 硫化氢
    "7664-39-3": 5,  # hydrogen fluoride 氟化氢
    "10102-44-0": 10,  # nitrogen dioxide 二氧化氮
    "74-90-8": 10,  # hydrogen cyanide 氰化氢
    "75-44-5": 20,  # phosgene 碳酰氯
    "7803-51-2": 20,  # phosphine 磷化氢
    "624-83-9": 20,  # methyl isocyanate 异氰酸甲酯
}

#: Table 4 — β by hazard class for substances not in Table 3.
CLASS_BETA: Final[dict[str, float]] = {
    "J1": 4,
    "J2": 1,
    "J3": 2,
    "J4": 2,
    "J5": 1,
    "W1.1": 2,
    "W1.2": 2,
    "W1.3": 2,
    "W2": 1.5,
    "W3": 1,
    "W4": 1,
    "W5.1": 1.5,
    "W5.2": 1,
    "W5.3": 1,
    "W5.4": 1,
    "W6.1": 1.5,
    "W6.2": 1,
    "W7.1": 1.5,
    "W7.2": 1,
    "W8": 1,
    "W9.1": 1,
    "W9.2": 1,
    "W10": 1,
    "W11": 1,
}

#: (lower bound of R, grade), checked top-down; every edge is inclusive (≥).
GRADE_BANDS: Final[tuple[tuple[float, int], ...]] = ((100, 1), (50, 2), (10, 3))
LOWEST_GRADE: Final = 4
GRADE_COLORS: Final[dict[int, RiskColor]] = {1: "red", 2: "orange", 3: "yellow", 4: "blue"}

#: R and S are sums of quotients; rounding before comparing keeps 25 × 2 × 2 from landing at
#: 99.99999999 and dropping a grade at exactly the standard's edge.
_EDGE_DECIMALS: Final = 9


class AssessmentError(InvalidField, ValueError):
    """A substance lacks what the formula needs; ``field`` names it for the API's 422."""


@dataclass(frozen=True)
class Substance:
    name: str
    q: float
    critical_q: float | None = None
    beta: float | None = None
    hazard_class: str | None = None  # the first (or, for a mixture, the classified) class
    cas: str | None = None
    more_classes: tuple[str, ...] = ()  # further hazard classes of a multi-hazard substance
    mixture: bool = False  # assessed by its one classified class (``hazard_class``)

    @property
    def classes(self) -> tuple[str, ...]:
        """Every hazard class, first as given, without repeats."""
        first = (self.hazard_class,) if self.hazard_class else ()
        return tuple(dict.fromkeys((*first, *self.more_classes)))


@dataclass(frozen=True)
class Contribution:
    name: str
    q: float
    critical_q: float
    beta: float
    ratio: float  # q / Q
    source_of_q: str  # "given", "table1" or "table2"
    source_of_beta: str  # "given", "table3" or "table4"
    governing_class: str | None = None  # the class whose Table 2 Q (and Table 4 β) applied


@dataclass(frozen=True)
class Assessment:
    S: float
    alpha: float
    R: float
    grade: int | None  # None when S < 1: not a major hazard source
    color: RiskColor | None
    contributions: list[Contribution] = field(default_factory=list)


def alpha_for(population_500m: int) -> float:
    if population_500m < 0:
        raise AssessmentError("population_500m", "must be ≥ 0")
    for minimum, alpha in ALPHA_BANDS:
        if population_500m >= minimum:
            return alpha
    raise AssertionError("unreachable: the last band starts at 0")


def governing_class(substance: Substance, table2: dict[str, float]) -> str | None:
    """The class that decides a multi-hazard substance: the lowest Table 2 Q, then the larger
    Table 4 β; a class without a Table 2 Q (``toxic_gas``, ``other``) only when no class has
    one. One class (or a mixture's classified class) governs by itself."""
    classes = substance.classes
    if len(classes) <= 1:
        return classes[0] if classes else None
    return min(
        classes,
        key=lambda c: (table2.get(c, math.inf), -CLASS_BETA.get(c, 0), classes.index(c)),
    )


def beta_for(substance: Substance, governing: str | None = None) -> tuple[float, str]:
    """An explicit β overrides; else Table 3 by CAS; else Table 4 by the governing class."""
    if substance.beta is not None:
        return substance.beta, "given"
    if substance.cas and substance.cas in TOXIC_GAS_BETA:
        return TOXIC_GAS_BETA[substance.cas], "table3"
    governing = governing or substance.hazard_class
    if governing and governing in CLASS_BETA:
        return CLASS_BETA[governing], "table4"
    raise AssessmentError(
        "beta",
        f"{substance.name}: give beta, a Table 3 CAS number or a Table 4 class (e.g. W4)",
    )


def grade_for(r_value: float) -> int:
    rounded = round(r_value, _EDGE_DECIMALS)
    for lower, grade in GRADE_BANDS:
        if rounded >= lower:
            return grade
    return LOWEST_GRADE


def critical_quantity_for(
    substance: Substance,
    index: int,
    table1: dict[str, float],
    table1_variants: Collection[str],
    table2: dict[str, float],
    governing: str | None = None,
) -> tuple[float, str]:
    """Q given; else Table 1 by CAS; else — only for a CAS Table 1 does not list — Table 2 by
    the governing class (the lowest Q of a multi-hazard substance's classes)."""
    if substance.critical_q is not None:
        return substance.critical_q, "given"
    if substance.cas and substance.cas in table1:
        return table1[substance.cas], "table1"
    if substance.cas and substance.cas in table1_variants:
        raise AssessmentError(
            f"substances[{index}].Q",
            f"{substance.name}: CAS {substance.cas} has several GB 18218-2018 Table 1 entries "
            "(by content); give Q",
        )
    governing = governing or substance.hazard_class
    if governing and governing in table2:
        return table2[governing], "table2"
    raise AssessmentError(
        f"substances[{index}].Q",
        f"{substance.name}: give Q, a CAS number listed in GB 18218-2018 Table 1 "
        "or a Table 2 class",
    )


def assess(
    population_500m: int,
    substances: Sequence[Substance],
    critical_quantity_by_cas: dict[str, float] | None = None,
    critical_quantity_by_class: dict[str, float] | None = None,
    table1_variant_cas: Collection[str] = (),
) -> Assessment:
    """Identify and grade one unit.

    Q, when not given, comes from ``critical_quantity_by_cas`` (Table 1) or, for a substance
    whose CAS Table 1 does not list, from ``critical_quantity_by_class`` (Table 2).
    ``table1_variant_cas`` are CAS numbers Table 1 lists with several Q (e.g. ammonium nitrate
    by combustible content): for those Q must be given, Table 2 does not apply.
    """
    if not substances:
        raise AssessmentError("substances", "at least one substance is required")
    table1 = critical_quantity_by_cas or {}
    table2 = critical_quantity_by_class or {}
    alpha = alpha_for(population_500m)
    contributions: list[Contribution] = []
    for index, sub in enumerate(substances):
        if not (sub.q > 0 and math.isfinite(sub.q)):
            raise AssessmentError(
                f"substances[{index}].q", f"{sub.name}: q must be a positive number of tonnes"
            )
        if sub.mixture and len(sub.classes) != 1:
            raise AssessmentError(
                f"substances[{index}].class",
                f"{sub.name}: a mixture is assessed by the one class it is classified into",
            )
        governing = governing_class(sub, table2)
        critical_q, q_source = critical_quantity_for(
            sub, index, table1, table1_variant_cas, table2, governing
        )
        if not (critical_q > 0 and math.isfinite(critical_q)):
            raise AssessmentError(f"substances[{index}].Q", f"{sub.name}: Q must be > 0")
        if sub.beta is not None and not (sub.beta > 0 and math.isfinite(sub.beta)):
            raise AssessmentError(f"substances[{index}].beta", f"{sub.name}: beta must be > 0")
        beta, beta_source = beta_for(sub, governing)
        ratio = sub.q / critical_q
        contributions.append(
            Contribution(sub.name, sub.q, critical_q, beta, ratio, q_source, beta_source, governing)
        )
    s_value = round(math.fsum(c.ratio for c in contributions), _EDGE_DECIMALS)
    r_value = round(alpha * math.fsum(c.beta * c.ratio for c in contributions), _EDGE_DECIMALS)
    if s_value < 1:
        return Assessment(s_value, alpha, r_value, None, None, contributions)
    grade = grade_for(r_value)
    return Assessment(s_value, alpha, r_value, grade, GRADE_COLORS[grade], contributions)
