"""Enterprise colour rules: diagnosis bands at their edges, one-level raise, reason order."""

from __future__ import annotations

import pytest

from layers.risk.enterprise import EnterpriseFacts, LiveRules, diagnosis_color, rate


@pytest.mark.parametrize(
    ("score", "color"),
    [
        (0, "red"),
        (59.99, "red"),
        (60, "orange"),
        (74.99, "orange"),
        (75, "yellow"),
        (89.99, "yellow"),
        (90, "blue"),
        (100, "blue"),
    ],
)
def test_diagnosis_bands(score: float, color: str) -> None:
    assert diagnosis_color(score) == color


def test_inherent_is_the_worst_input_and_reasons_are_worst_first() -> None:
    rating = rate(
        EnterpriseFacts(
            1,
            diagnosis_score=95,
            worst_source_grade=3,
            worst_source_code="HS-1",
            worst_unit_color="orange",
            worst_unit_name="罐区",
        )
    )
    assert rating.inherent == "orange"
    assert rating.dynamic == "orange"
    assert [r.code for r in rating.reasons] == [
        "risk_unit",
        "hazard_source_grade",
        "diagnosis_score",
    ]


def test_open_major_hidden_danger_raises_exactly_one_level_and_is_listed_first() -> None:
    before = EnterpriseFacts(7, diagnosis_score=80)  # yellow
    after = EnterpriseFacts(7, diagnosis_score=80, open_major_dangers=1, major_danger_title="泄漏")
    assert rate(before).dynamic == "yellow"
    rating = rate(after)
    assert rating.inherent == "yellow"
    assert rating.dynamic == "orange"
    assert rating.reasons[0].code == "open_major_hidden_danger"
    assert rating.reasons[0].raises


def test_several_live_conditions_still_raise_one_level_and_red_is_the_cap() -> None:
    many = EnterpriseFacts(
        2, diagnosis_score=92, open_major_dangers=2, red_points=3, parking_alerts=1
    )
    assert rate(many).dynamic == "yellow"  # blue raised once, not three times
    red = EnterpriseFacts(3, worst_source_grade=1, red_points=1)
    assert rate(red).dynamic == "red"


def test_score_threshold_is_inclusive_and_configurable() -> None:
    facts = EnterpriseFacts(4, diagnosis_score=92, score_points=6)
    assert rate(facts).dynamic == "yellow"
    assert rate(facts, LiveRules(score_measure_threshold=9)).dynamic == "blue"
    assert rate(EnterpriseFacts(4, diagnosis_score=92, score_points=5)).dynamic == "blue"


def test_unassessed_enterprise_is_blue_with_a_reason() -> None:
    rating = rate(EnterpriseFacts(5))
    assert (rating.inherent, rating.dynamic) == ("blue", "blue")
    assert rating.reasons[0].code == "not_assessed"
    assert rating.reasons[0].zh and rating.reasons[0].en
