"""A small catalogue of real GB 18218-2018 Table 1 substances, for the seed and later look-ups.

Source: GB 18218-2018 《危险化学品重大危险源辨识》 — Table 1 (named substances and their
critical quantities Q, in tonnes), Table 3 (β of the toxic gases) and Table 4 (β by hazard
category of Table 2). β follows DOMAIN.md §2.1; the per-code numbers there agree with the
standard. Note that DOMAIN.md's *labels* for the Table 2 codes are shifted by one: in the
standard W1.x are explosives, W2 flammable gases, W3 aerosols, W4 oxidising gases and J1–J5
acute toxicity; this catalogue assigns codes as the standard does (e.g. LPG is W2, β 1.5).

``oel_mg_m3`` is the occupational exposure limit (GBZ 2.1, MAC or PC-TWA) that GB/T 50493-2019
uses for toxic-gas detector set points (level 1 = 100 % OEL, level 2 = 200 % OEL).

The grading formula itself (α, S, R, grades) lives in ``layers/gb18218.py``; this module is data.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Final


@dataclass(frozen=True)
class Substance:
    name_zh: str
    name_en: str
    cas: str
    critical_q_t: float  # GB 18218-2018 Table 1
    beta: float  # Table 3 for toxic gases, else Table 4 by hazard class
    hazard_class: str  # "toxic_gas" or a Table 2 code (W2, W5.1 …)
    state: str  # "gas" or "liquid" as stored
    flammable: bool
    toxic: bool
    oel_mg_m3: float | None = None
    un_number: str | None = None
    transport_class: str | None = None  # UN model regulations class of the tanker load


def _s(*args: object, **kw: object) -> Substance:
    return Substance(*args, **kw)  # type: ignore[arg-type]


#: Ordered, so index-based draws are deterministic.
CATALOGUE: Final[tuple[Substance, ...]] = (
    # Toxic gases: β from Table 3.
    _s("氨", "ammonia", "7664-41-7", 10, 2, "toxic_gas", "gas", True, True, 20, "1005", "2.3"),
    _s("氯", "chlorine", "7782-50-5", 5, 4, "toxic_gas", "gas", False, True, 1, "1017", "2.3"),
    _s(
        "硫化氢",
        "hydrogen sulphide",
        "7783-06-4",
        5,
        5,
        "toxic_gas",
        "gas",
        True,
        True,
        10,
        "1053",
        "2.3",
    ),
    _s(
        "氟化氢",
        "hydrogen fluoride",
        "7664-39-3",
        1,
        5,
        "toxic_gas",
        "gas",
        False,
        True,
        2,
        "1052",
        "8",
    ),
    _s("光气", "phosgene", "75-44-5", 0.3, 20, "toxic_gas", "gas", False, True, 0.5, "1076", "2.3"),
    _s(
        "一氧化碳",
        "carbon monoxide",
        "630-08-0",
        10,
        2,
        "toxic_gas",
        "gas",
        True,
        True,
        20,
        "1016",
        "2.3",
    ),
    _s(
        "二氧化硫",
        "sulphur dioxide",
        "7446-09-5",
        20,
        2,
        "toxic_gas",
        "gas",
        False,
        True,
        5,
        "1079",
        "2.3",
    ),
    _s(
        "氯化氢",
        "hydrogen chloride",
        "7647-01-0",
        20,
        3,
        "toxic_gas",
        "gas",
        False,
        True,
        7.5,
        "1050",
        "2.3",
    ),
    _s(
        "环氧乙烷",
        "ethylene oxide",
        "75-21-8",
        10,
        2,
        "toxic_gas",
        "gas",
        True,
        True,
        2,
        "1040",
        "2.3",
    ),
    _s(
        "氰化氢",
        "hydrogen cyanide",
        "74-90-8",
        1,
        10,
        "toxic_gas",
        "liquid",
        True,
        True,
        1,
        "1051",
        "6.1",
    ),
    # Flammable gases: Table 2 class W2, β 1.5.
    _s(
        "液化石油气",
        "liquefied petroleum gas",
        "68476-85-7",
        50,
        1.5,
        "W2",
        "gas",
        True,
        False,
        None,
        "1075",
        "2.1",
    ),
    _s("氢", "hydrogen", "1333-74-0", 5, 1.5, "W2", "gas", True, False, None, "1049", "2.1"),
    _s("甲烷", "methane", "74-82-8", 50, 1.5, "W2", "gas", True, False, None, "1971", "2.1"),
    _s("乙烯", "ethylene", "74-85-1", 50, 1.5, "W2", "gas", True, False, None, "1962", "2.1"),
    _s("丙烯", "propylene", "115-07-1", 20, 1.5, "W2", "gas", True, False, None, "1077", "2.1"),
    _s("乙炔", "acetylene", "74-86-2", 1, 1.5, "W2", "gas", True, False, None, "1001", "2.1"),
    _s("氯乙烯", "vinyl chloride", "75-01-4", 50, 1.5, "W2", "gas", True, False, 10, "1086", "2.1"),
    # Flammable liquids: W5.1 (category 1) β 1.5, W5.4 (categories 2–3, ordinary) β 1.
    _s(
        "汽油", "gasoline", "86290-81-5", 200, 1.5, "W5.1", "liquid", True, False, None, "1203", "3"
    ),
    _s("甲醇", "methanol", "67-56-1", 500, 1, "W5.4", "liquid", True, True, 25, "1230", "3"),
    _s("苯", "benzene", "71-43-2", 50, 1, "W5.4", "liquid", True, True, 6, "1114", "3"),
    _s("甲苯", "toluene", "108-88-3", 500, 1, "W5.4", "liquid", True, True, 50, "1294", "3"),
    _s("丙酮", "acetone", "67-64-1", 500, 1, "W5.4", "liquid", True, False, None, "1090", "3"),
    _s("乙醇", "ethanol", "64-17-5", 500, 1, "W5.4", "liquid", True, False, None, "1170", "3"),
    _s("苯乙烯", "styrene", "100-42-5", 500, 1, "W5.4", "liquid", True, False, 50, "2055", "3"),
)

BY_CAS: Final[dict[str, Substance]] = {s.cas: s for s in CATALOGUE}
