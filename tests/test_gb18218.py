"""GB 18218-2018 worked examples at every edge of α, S and R (the standard uses ≥)."""

from __future__ import annotations

import pytest

from layers.risk.gb18218 import AssessmentError, Substance, alpha_for, assess, beta_for, grade_for


@pytest.mark.parametrize(
    ("people", "alpha"),
    [(0, 0.5), (1, 1.0), (29, 1.0), (30, 1.2), (49, 1.2), (50, 1.5), (99, 1.5), (100, 2.0)],
)
def test_alpha_bands_at_edges(people: int, alpha: float) -> None:
    assert alpha_for(people) == alpha


@pytest.mark.parametrize(
    ("r_value", "grade"),
    [(100, 1), (99.999, 2), (50, 2), (49.999, 3), (10, 3), (9.999, 4), (0.01, 4), (250, 1)],
)
def test_grade_edges_are_inclusive(r_value: float, grade: int) -> None:
    assert grade_for(r_value) == grade


def test_r_exactly_100_is_grade_one_red() -> None:
    # α = 2 (100 people), chlorine β = 4 (Table 3), q/Q = 12.5 → R = 2 × 4 × 12.5 = 100.
    result = assess(100, [Substance("chlorine", q=62.5, critical_q=5, cas="7782-50-5")])
    assert result.R == 100
    assert (result.grade, result.color) == (1, "red")


def test_r_exactly_50_and_10() -> None:
    # α = 1 (1 person); flammable liquid W4 β = 1; q/Q = 50 and 10.
    fifty = assess(1, [Substance("toluene", q=25000, critical_q=500, hazard_class="W4")])
    ten = assess(1, [Substance("toluene", q=5000, critical_q=500, hazard_class="W4")])
    assert (fifty.R, fifty.grade, fifty.color) == (50, 2, "orange")
    assert (ten.R, ten.grade, ten.color) == (10, 3, "yellow")


def test_sum_of_fractions_lands_exactly_on_the_edge() -> None:
    # 0.1 + 0.2 style sums must not fall to 99.99999: three parts of 1/3 each, α = 2, β = 2.
    parts = [Substance(f"ammonia {i}", q=250 / 3, critical_q=10, cas="7664-41-7") for i in range(3)]
    result = assess(100, parts)
    assert result.R == 100 and result.grade == 1


def test_s_exactly_one_is_a_major_hazard_and_below_is_not() -> None:
    at_one = assess(0, [Substance("ammonia", q=10, critical_q=10, cas="7664-41-7")])
    assert at_one.S == 1 and at_one.grade == 4 and at_one.color == "blue"
    assert at_one.R == 0.5 * 2 * 1
    below = assess(0, [Substance("ammonia", q=9.99, critical_q=10, cas="7664-41-7")])
    assert below.grade is None and below.color is None


def test_mixture_sums_each_substance() -> None:
    # S = 20/5 + 100/500 = 4.2; R = 1.5 × (4 × 4 + 1 × 0.2) = 24.3 → grade 3.
    result = assess(
        60,
        [
            Substance("chlorine", q=20, critical_q=5, cas="7782-50-5"),
            Substance("methanol", q=100, critical_q=500, hazard_class="W5.2"),
        ],
    )
    assert result.S == pytest.approx(4.2)
    assert result.R == pytest.approx(24.3)
    assert result.grade == 3


@pytest.mark.parametrize(
    ("cas", "beta"),
    [
        ("7783-06-4", 5),  # H2S is 5 (public code often says 3)
        ("7664-39-3", 5),
        ("75-44-5", 20),
        ("7803-51-2", 20),
        ("624-83-9", 20),
        ("10102-44-0", 10),
        ("74-90-8", 10),
        ("7647-01-0", 3),
        ("74-83-9", 3),
        ("630-08-0", 2),
    ],
)
def test_table3_beta(cas: str, beta: float) -> None:
    assert beta_for(Substance("x", q=1, cas=cas)) == (beta, "table3")


def test_carbon_dioxide_is_not_a_table3_gas() -> None:
    with pytest.raises(AssessmentError) as caught:
        beta_for(Substance("carbon dioxide", q=1, cas="124-38-9"))
    assert caught.value.field == "beta"


def test_explicit_beta_overrides_tables_and_q_comes_from_table1() -> None:
    result = assess(
        0,
        [Substance("ammonia", q=20, cas="7664-41-7", beta=7)],
        critical_quantity_by_cas={"7664-41-7": 10},
    )
    contribution = result.contributions[0]
    assert (contribution.beta, contribution.source_of_beta) == (7, "given")
    assert (contribution.critical_q, contribution.source_of_q) == (10, "table1")
    assert result.R == 0.5 * 7 * 2


def test_missing_q_names_the_field() -> None:
    with pytest.raises(AssessmentError) as caught:
        assess(0, [Substance("mystery", q=5, hazard_class="W4")])
    assert caught.value.field == "substances[0].Q"
