"""LEC and LS colours at the threshold edges (docs/domain.md §2.3)."""

from __future__ import annotations

import pytest

from layers.risk.units import LecThresholds, UnitAssessmentError, lec, ls


@pytest.mark.parametrize(
    ("l_value", "e_value", "c_value", "d_value", "color"),
    [
        (10, 6, 7, 420, "red"),  # well above 320
        (1, 10, 40, 400, "red"),
        (6, 6, 7, 252, "orange"),
        (0.5, 10, 40, 200, "orange"),
        (10, 2, 15, 300, "orange"),
        (1, 10, 15, 150, "yellow"),
        (1, 3, 40, 120, "yellow"),
        (10, 1, 7, 70, "blue"),  # D = 70 exactly is blue (≤ 70)
        (1, 1, 1, 1, "blue"),
    ],
)
def test_lec_examples(
    l_value: float, e_value: float, c_value: float, d_value: float, color: str
) -> None:
    assert lec(l_value, e_value, c_value) == (d_value, color)


def test_lec_edges_with_custom_thresholds_hit_exactly() -> None:
    # 320 and 160 are not products of the LEC scales (only 70 is), so move the bounds onto
    # reachable products to prove each edge is exclusive: D equal to a bound stays below it.
    edges = LecThresholds(red_above=360, orange_above=180, yellow_above=60)
    assert lec(6, 6, 15, edges) == (540, "red")
    assert lec(3, 6, 15, edges) == (270, "orange")
    assert lec(6, 2, 15, edges) == (180, "yellow")  # 180 is not > 180
    assert lec(6, 10, 1, edges) == (60, "blue")  # 60 is not > 60
    assert lec(1, 6, 100, edges) == (600, "red")
    assert lec(6, 10, 3, edges) == (180, "yellow")


@pytest.mark.parametrize(
    ("likelihood", "severity", "r_value", "color"),
    [
        (5, 5, 25, "red"),
        (4, 5, 20, "red"),
        (4, 4, 16, "orange"),
        (3, 3, 9, "orange"),
        (2, 4, 8, "yellow"),
        (2, 2, 4, "yellow"),
        (1, 3, 3, "blue"),
        (1, 1, 1, "blue"),
    ],
)
def test_ls_matrix_edges(likelihood: int, severity: int, r_value: int, color: str) -> None:
    assert ls(likelihood, severity) == (r_value, color)


def test_values_off_the_scale_name_the_field() -> None:
    with pytest.raises(UnitAssessmentError) as caught:
        lec(5, 6, 7)
    assert caught.value.field == "likelihood"
    with pytest.raises(UnitAssessmentError) as caught:
        ls(3, 6)
    assert caught.value.field == "severity"
