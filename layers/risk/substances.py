"""A small catalogue of real GB 18218-2018 Table 1 substances, for the seed and later look-ups.

Source: GB 18218-2018 《危险化学品重大危险源辨识》 — Table 1 (named substances and their
critical quantities Q, in tonnes), Table 3 (β of the toxic gases) and Table 4 (β by hazard
category of Table 2), as docs/domain.md §2.1 gives them. Codes are the standard's: W1.x
explosives, W2 flammable gases, W3 aerosols, W4 oxidising gases, W5.x flammable liquids, J1–J5
acute toxicity (e.g. LPG is W2, β 1.5).

``oel_mg_m3`` is the occupational exposure limit (GBZ 2.1, MAC or PC-TWA) that GB/T 50493-2019
uses for toxic-gas detector set points (level 1 = 100 % OEL, level 2 = 200 % OEL).

The grading formula itself (α, S, R, grades) lives in ``layers/risk/gb18218.py``; this module
is data.

The standard's own tables ship as CSV next to this module and are the one source of truth for Q:

- ``data/gb18218_table1.csv`` — Table 1 (危险化学品名称及其临界量), entries 1–85 as the standard
  numbers them. One row per CAS number: entry 49 (甲烷，天然气) and entry 52 (液化石油气, with
  propane and butane) print several CAS numbers and so have several rows under one ``no``.
  Entries the standard prints without a CAS number (13 煤气, 45 硝酸铵肥料, 74 烷基铝) have an
  empty ``cas``. Variants that share a CAS (37–42 硝化纤维素 9004-70-0, 43–44 硝酸铵
  6484-52-2) keep their qualifier in ``name_zh``.
- ``data/gb18218_table2.csv`` — Table 2 (未在表1中列举的危险化学品类别及其临界量) by hazard
  code (J1–J5 acute toxicity, W1.x explosives, W2 flammable gases, W3 aerosols, W4 oxidising
  gases, W5.x flammable liquids …). W4 is 50 t, the 2018 edition's value (GB 18218-2009's
  equivalent row was 200 t; docs/domain.md §2.1), marked ``memory``: not confirmed here
  against a public page.

Source: GB 18218-2018 《危险化学品重大危险源辨识》 (SAMR/SAC, issued 2018-11-19, in force
2019-03-01). ``verified`` = the Q value was confirmed against a public page:
https://siyuancloud.com/90.html (2009→2018 changes: entries 37–45, 56, 82 and Table 2 J1–J5,
W6.1, W6.2) and http://www.zjhxpxh.org.cn/?id=3013&mod=newsdat (entries 49, 52, 66).
``memory`` = transcribed from the standard without such a confirmation.
"""

from __future__ import annotations

import csv
import io
import re
from collections import defaultdict
from dataclasses import dataclass
from importlib import resources
from typing import Final

from layers.core.vocab import CAS_PATTERN, HAZARD_CLASS_PATTERN


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
        20,  # Table 1 entry 13, 煤气 (CO, CO和H2、CH4的混合物等)
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
    # Propylene is not in Table 1: its Q is Table 2's W2 (flammable gases).
    _s("丙烯", "propylene", "115-07-1", 10, 1.5, "W2", "gas", True, False, None, "1077", "2.1"),
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


# -- GB 18218-2018 Tables 1 and 2 --------------------------------------------------------------
_DATA_PACKAGE: Final = "layers.risk"
_VERIFIED_VALUES: Final = {"verified": True, "memory": False}


class TableDataError(ValueError):
    """A shipped table file is malformed or disagrees with CATALOGUE."""


@dataclass(frozen=True)
class Table1Entry:
    no: int  # the standard's entry number; entries with several CAS numbers repeat it
    name_zh: str  # with the standard's qualifier, e.g. 硝酸铵(含可燃物≤0.2%)
    alias_zh: str  # the standard's aliases, ";"-separated
    name_en: str
    cas: str | None  # None where the standard prints no CAS number
    critical_q_t: float
    verified: bool  # Q confirmed against a public source (see the module docstring)


@dataclass(frozen=True)
class Table2Entry:
    code: str  # J1 … W11, as in layers.core.vocab.HAZARD_CLASS_PATTERN
    description_zh: str
    critical_q_t: float
    verified: bool


def _rows(filename: str) -> list[dict[str, str]]:
    text = resources.files(_DATA_PACKAGE).joinpath("data", filename).read_text(encoding="utf-8")
    return list(csv.DictReader(io.StringIO(text)))


def _quantity(raw: str, where: str) -> float:
    try:
        value = float(raw)
    except ValueError:
        raise TableDataError(f"{where}: critical_q_t {raw!r} is not a number") from None
    if not value > 0:
        raise TableDataError(f"{where}: critical_q_t must be > 0, got {raw!r}")
    return value


def _verified(raw: str, where: str) -> bool:
    if raw not in _VERIFIED_VALUES:
        raise TableDataError(f"{where}: verified must be 'verified' or 'memory', got {raw!r}")
    return _VERIFIED_VALUES[raw]


def _cas_ok(cas: str) -> bool:
    """CAS_PATTERN plus the check digit (weighted sum of the other digits, mod 10)."""
    if not re.fullmatch(CAS_PATTERN, cas):
        return False
    digits = cas.replace("-", "")
    body, check = digits[:-1], int(digits[-1])
    return sum(i * int(d) for i, d in enumerate(reversed(body), start=1)) % 10 == check


def _load_table1() -> tuple[Table1Entry, ...]:
    entries = []
    for line, row in enumerate(_rows("gb18218_table1.csv"), start=2):
        where = f"gb18218_table1.csv line {line}"
        cas = row["cas"].strip() or None
        if cas is not None and not _cas_ok(cas):
            raise TableDataError(f"{where}: bad CAS number {cas!r}")
        entries.append(
            Table1Entry(
                no=int(row["no"]),
                name_zh=row["name_zh"],
                alias_zh=row["alias_zh"],
                name_en=row["name_en"],
                cas=cas,
                critical_q_t=_quantity(row["critical_q_t"], where),
                verified=_verified(row["verified"], where),
            )
        )
    return tuple(entries)


def _load_table2() -> tuple[Table2Entry, ...]:
    entries = []
    for line, row in enumerate(_rows("gb18218_table2.csv"), start=2):
        where = f"gb18218_table2.csv line {line}"
        code = row["code"]
        if not re.fullmatch(HAZARD_CLASS_PATTERN, code) or code in ("toxic_gas", "other"):
            raise TableDataError(f"{where}: {code!r} is not a Table 2 hazard code")
        entries.append(
            Table2Entry(
                code=code,
                description_zh=row["description_zh"],
                critical_q_t=_quantity(row["critical_q_t"], where),
                verified=_verified(row["verified"], where),
            )
        )
    return tuple(entries)


TABLE1: Final[tuple[Table1Entry, ...]] = _load_table1()
TABLE2: Final[tuple[Table2Entry, ...]] = _load_table2()


#: Substances the standard names inside an entry's description but prints no CAS number for:
#: entry 13 reads 煤气(CO，CO和H2、CH4的混合物等), i.e. carbon monoxide itself is a 煤气.
_NAMED_IN_ENTRY: Final[dict[str, int]] = {"630-08-0": 13}


def _q_by_cas(
    entries: tuple[Table1Entry, ...],
) -> tuple[dict[str, float], frozenset[str]]:
    """Split Table 1 into CAS → Q and the CAS numbers that carry several Q values.

    Nitrocellulose (9004-70-0: 1, 10 or 50 t by water/alcohol/nitrogen content) and ammonium
    nitrate (6484-52-2: 5 or 50 t by combustible content) share one CAS number across variants;
    the CAS alone cannot pick the right Q, so those CAS numbers stay out of the look-up and the
    caller must give Q explicitly (falling back to Table 2 would be wrong: they *are* listed).
    """
    seen: defaultdict[str, set[float]] = defaultdict(set)
    for entry in entries:
        if entry.cas is not None:
            seen[entry.cas].add(entry.critical_q_t)
    for cas, no in _NAMED_IN_ENTRY.items():
        seen[cas].update(e.critical_q_t for e in entries if e.no == no)
    single = {cas: next(iter(qs)) for cas, qs in seen.items() if len(qs) == 1}
    variants = frozenset(cas for cas, qs in seen.items() if len(qs) > 1)
    return single, variants


_BY_CAS, _VARIANTS = _q_by_cas(TABLE1)

#: GB 18218-2018 Table 1: CAS → Q (t). CAS numbers with several variants are left out (see
#: TABLE1_VARIANT_CAS); Q must then be given.
TABLE1_Q_BY_CAS: Final[dict[str, float]] = _BY_CAS
#: CAS numbers listed in Table 1 with more than one Q (variants by content).
TABLE1_VARIANT_CAS: Final[frozenset[str]] = _VARIANTS
#: GB 18218-2018 Table 2: hazard code → Q (t), for substances not named in Table 1.
TABLE2_Q_BY_CLASS: Final[dict[str, float]] = {e.code: e.critical_q_t for e in TABLE2}


def _check_catalogue() -> None:
    """CATALOGUE's Q must be the standard's: Table 1 by CAS, else Table 2 by class."""
    problems = []
    for sub in CATALOGUE:
        if sub.cas in TABLE1_VARIANT_CAS:
            problems.append(f"{sub.name_en} {sub.cas}: Table 1 lists several Q for this CAS")
            continue
        if sub.cas in TABLE1_Q_BY_CAS:
            expected, source = TABLE1_Q_BY_CAS[sub.cas], "Table 1"
        elif sub.hazard_class in TABLE2_Q_BY_CLASS:
            expected, source = TABLE2_Q_BY_CLASS[sub.hazard_class], f"Table 2 {sub.hazard_class}"
        else:
            problems.append(f"{sub.name_en} {sub.cas}: neither in Table 1 nor in a Table 2 class")
            continue
        if sub.critical_q_t != expected:
            problems.append(
                f"{sub.name_en} {sub.cas}: CATALOGUE Q {sub.critical_q_t} t, {source} {expected} t"
            )
    if problems:
        raise TableDataError("CATALOGUE disagrees with GB 18218-2018: " + "; ".join(problems))


_check_catalogue()
