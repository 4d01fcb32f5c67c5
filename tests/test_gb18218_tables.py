"""GB 18218-2018 Tables 1 and 2 as shipped data (pure: no database)."""

from __future__ import annotations

import dataclasses
import re
from collections import Counter

import pytest

from layers.core.vocab import CAS_PATTERN, HAZARD_CLASS_PATTERN
from layers.risk import substances
from layers.risk.gb18218 import AssessmentError, Substance, assess
from layers.risk.substances import (
    CATALOGUE,
    TABLE1,
    TABLE1_Q_BY_CAS,
    TABLE1_VARIANT_CAS,
    TABLE2,
    TABLE2_Q_BY_CLASS,
    TableDataError,
)


def test_table1_has_all_85_entries_and_one_row_per_cas() -> None:
    numbers = sorted({e.no for e in TABLE1})
    assert numbers == list(range(1, 86))
    # 49 甲烷/天然气 has two CAS numbers, 52 液化石油气 three (LPG, propane, butane).
    assert len(TABLE1) == 88
    repeated = {no: n for no, n in Counter(e.no for e in TABLE1).items() if n > 1}
    assert repeated == {49: 2, 52: 3}


def test_table1_cas_format_names_and_quantities() -> None:
    for entry in TABLE1:
        assert entry.name_zh and entry.name_en
        assert entry.critical_q_t > 0
        if entry.cas is not None:
            assert re.fullmatch(CAS_PATTERN, entry.cas), entry
    without_cas = {e.no for e in TABLE1 if e.cas is None}
    assert without_cas == {13, 45, 74}  # 煤气, 硝酸铵肥料, 烷基铝: the standard prints none


def test_table1_has_no_duplicate_name_cas_pairs() -> None:
    pairs = Counter((e.name_zh, e.cas) for e in TABLE1)
    assert [pair for pair, n in pairs.items() if n > 1] == []


def test_variants_share_a_cas_and_stay_out_of_the_lookup() -> None:
    assert TABLE1_VARIANT_CAS == {"9004-70-0", "6484-52-2"}
    for cas in TABLE1_VARIANT_CAS:
        assert cas not in TABLE1_Q_BY_CAS
    nitrocellulose = sorted(e.critical_q_t for e in TABLE1 if e.cas == "9004-70-0")
    assert nitrocellulose == [1, 1, 10, 50, 50, 50]
    ammonium_nitrate = {e.name_zh: e.critical_q_t for e in TABLE1 if e.cas == "6484-52-2"}
    assert sorted(ammonium_nitrate.values()) == [5, 50]
    assert ammonium_nitrate["硝酸铵(含可燃物≤0.2%)"] == 50


@pytest.mark.parametrize(
    ("cas", "q"),
    [
        # Confirmed against public pages (verified = True in the CSV).
        ("86290-81-5", 200),  # gasoline
        ("74-82-8", 50),  # methane
        ("8006-14-2", 50),  # natural gas
        ("68476-85-7", 50),  # LPG
        ("74-98-6", 50),  # propane (LPG entry)
        ("106-97-8", 50),  # butane (LPG entry)
        ("7782-44-7", 200),  # oxygen, compressed or liquefied
        ("506-93-4", 50),  # guanidine nitrate
    ],
)
def test_verified_table1_values(cas: str, q: float) -> None:
    assert TABLE1_Q_BY_CAS[cas] == q
    assert all(e.verified for e in TABLE1 if e.cas == cas)


@pytest.mark.parametrize(
    ("cas", "q"),
    [
        ("7664-41-7", 10),  # ammonia
        ("7782-50-5", 5),  # chlorine
        ("75-44-5", 0.3),  # phosgene
        ("624-83-9", 0.75),  # methyl isocyanate
        ("7446-11-9", 75),  # sulphur trioxide
        ("7757-79-1", 1000),  # potassium nitrate
        ("67-56-1", 500),  # methanol
        ("630-08-0", 20),  # carbon monoxide, named in entry 13 煤气(CO, …)
    ],
)
def test_table1_spot_checks(cas: str, q: float) -> None:
    assert TABLE1_Q_BY_CAS[cas] == q


def test_every_verified_flag_is_a_bool_and_some_rows_are_verified() -> None:
    assert {e.verified for e in TABLE1} == {True, False}
    assert {e.verified for e in TABLE2} == {True, False}


def test_table2_codes_and_values() -> None:
    codes = [e.code for e in TABLE2]
    assert len(codes) == len(set(codes))
    for entry in TABLE2:
        assert re.fullmatch(HAZARD_CLASS_PATTERN, entry.code)
        assert entry.critical_q_t > 0 and entry.description_zh
    # W4 (oxidising gases): 50 t in the 2018 edition (200 t was GB 18218-2009's row).
    assert TABLE2_Q_BY_CLASS["W4"] == 50
    expected = {"J1": 5, "J2": 50, "J3": 50, "J4": 50, "J5": 500, "W6.1": 10, "W6.2": 50}
    assert {code: TABLE2_Q_BY_CLASS[code] for code in expected} == expected
    assert TABLE2_Q_BY_CLASS["W2"] == 10
    assert TABLE2_Q_BY_CLASS["W5.1"] == 10
    assert TABLE2_Q_BY_CLASS["W5.4"] == 5000


def test_catalogue_agrees_with_the_tables() -> None:
    for sub in CATALOGUE:
        if sub.cas in TABLE1_Q_BY_CAS:
            assert sub.critical_q_t == TABLE1_Q_BY_CAS[sub.cas], sub.name_en
        else:
            assert sub.critical_q_t == TABLE2_Q_BY_CLASS[sub.hazard_class], sub.name_en


def test_catalogue_mismatch_raises(monkeypatch: pytest.MonkeyPatch) -> None:
    ammonia = substances.BY_CAS["7664-41-7"]
    wrong = dataclasses.replace(ammonia, critical_q_t=11)
    monkeypatch.setattr(substances, "CATALOGUE", (*CATALOGUE, wrong))
    with pytest.raises(TableDataError, match="ammonia"):
        substances._check_catalogue()


def _assess_one(sub: Substance) -> tuple[float, str]:
    result = assess(
        0, [sub], TABLE1_Q_BY_CAS, TABLE2_Q_BY_CLASS, table1_variant_cas=TABLE1_VARIANT_CAS
    )
    (contribution,) = result.contributions
    return contribution.critical_q, contribution.source_of_q


def test_assess_takes_q_from_table2_by_class() -> None:
    # Propylene (115-07-1) is not in Table 1: flammable gas W2 → 10 t.
    assert _assess_one(Substance("丙烯", q=12, hazard_class="W2", cas="115-07-1")) == (10, "table2")
    assert _assess_one(Substance("某易燃液体", q=1, hazard_class="W5.3")) == (1000, "table2")
    result = assess(50, [Substance("丙烯", q=12, hazard_class="W2")], {}, TABLE2_Q_BY_CLASS)
    assert result.S == 1.2 and result.R == pytest.approx(1.5 * 1.5 * 1.2)


def test_table1_wins_over_table2_and_given_q_wins_over_both() -> None:
    assert _assess_one(Substance("甲醇", q=1, hazard_class="W5.3", cas="67-56-1")) == (
        500,
        "table1",
    )
    given = Substance("甲醇", q=1, critical_q=7, hazard_class="W5.3", cas="67-56-1")
    assert _assess_one(given) == (7, "given")


def test_variant_cas_needs_q_even_with_a_class() -> None:
    sub = Substance("硝酸铵", q=3, hazard_class="W9.1", cas="6484-52-2")
    with pytest.raises(AssessmentError, match="硝酸铵") as excinfo:
        _assess_one(sub)
    assert excinfo.value.field == "substances[0].Q"


def test_unknown_class_still_names_the_substance() -> None:
    with pytest.raises(AssessmentError, match="神秘物质") as excinfo:
        _assess_one(Substance("神秘物质", q=3, hazard_class="other", cas="999-99-9"))
    assert excinfo.value.field == "substances[0].Q"
