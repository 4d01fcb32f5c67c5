"""Enterprise colour rules: diagnosis bands at their edges, one-level raise, reason order."""

from __future__ import annotations

import pytest

from layers.risk.enterprise import EnterpriseFacts, diagnosis_color, rate


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


def _measure(points: int, raise_by: int, **kw: object) -> EnterpriseFacts:
    """A score measure reached, as layers/prevention/scoring.py reports it."""
    return EnterpriseFacts(
        4,
        score_points=points,
        score_measure_code="key_supervision",
        score_measure_zh="列为重点监管对象",
        score_measure_en="Key supervision",
        score_colour_raise=raise_by,
        **kw,  # type: ignore[arg-type]
    )


def test_a_score_measure_raises_by_its_own_levels() -> None:
    """The rule set says how far (docs/rules.md); no measure, no reason."""
    assert rate(EnterpriseFacts(4, diagnosis_score=92, score_points=5)).dynamic == "blue"
    one = rate(_measure(6, 1, diagnosis_score=92))
    assert one.dynamic == "yellow"
    assert one.reasons[0].code == "safety_score_threshold"
    assert "Key supervision (key_supervision)" in one.reasons[0].en
    assert rate(_measure(12, 2, diagnosis_score=92)).dynamic == "orange"
    assert rate(_measure(12, 3, diagnosis_score=92)).dynamic == "red"
    # A measure without a colour effect is listed but raises nothing.
    none = rate(_measure(3, 0, diagnosis_score=92))
    assert none.dynamic == "blue" and not none.reasons[0].raises
    # With another live condition: the larger of one level and the measure's raise.
    assert rate(_measure(12, 2, diagnosis_score=92, red_points=1)).dynamic == "orange"
    assert rate(_measure(3, 0, diagnosis_score=92, red_points=1)).dynamic == "yellow"
    # Not assessed: the lowest level raised by the measure.
    assert rate(_measure(12, 2)).dynamic == "orange"


def test_unassessed_enterprise_is_grey_naming_every_missing_input() -> None:
    rating = rate(EnterpriseFacts(5))
    assert (rating.inherent, rating.dynamic) == ("grey", "grey")
    assert [r.code for r in rating.reasons] == ["not_assessed"]
    reason = rating.reasons[0]
    assert reason.color == "grey" and not reason.raises
    assert reason.en == "not assessed: no diagnosis score, no major hazard source, no risk unit"
    assert reason.zh == "未评估：无安全风险诊断得分，无重大危险源，无风险单元"


def test_not_assessed_reason_tells_a_missing_source_from_an_unassessable_one() -> None:
    ungradable = rate(EnterpriseFacts(5, hazard_sources=2, unassessed_sources=1))
    assert ungradable.inherent == "grey"
    assert "1 hazard source(s) not assessed" in ungradable.reasons[0].en
    below_one = rate(EnterpriseFacts(5, hazard_sources=1))  # assessed, S < 1: no grade
    assert below_one.inherent == "grey"
    assert "no unit is a major hazard source (S < 1)" in below_one.reasons[0].en


@pytest.mark.parametrize(
    ("facts", "inherent", "dynamic"),
    [
        # The edge: one input of any kind is enough to leave grey.
        (EnterpriseFacts(6, diagnosis_score=90), "blue", "blue"),
        (EnterpriseFacts(6, diagnosis_score=89.99), "yellow", "yellow"),
        (EnterpriseFacts(6, worst_unit_color="blue", worst_unit_name="库房"), "blue", "blue"),
        (EnterpriseFacts(6, worst_source_grade=4, worst_source_code="HS"), "blue", "blue"),
        # Not assessed with a live condition: grey inherent, yellow (blue raised once) dynamic.
        (EnterpriseFacts(6, red_points=1), "grey", "yellow"),
        (EnterpriseFacts(6, lost_detectors=1), "grey", "yellow"),
        (EnterpriseFacts(6, open_major_dangers=1, red_points=2), "grey", "yellow"),
        # Assessing can only keep or raise the dynamic colour: blue + live is yellow too.
        (EnterpriseFacts(6, diagnosis_score=95, red_points=1), "blue", "yellow"),
        (EnterpriseFacts(6, diagnosis_score=80, red_points=1), "yellow", "orange"),
    ],
)
def test_not_assessed_at_the_edge(facts: EnterpriseFacts, inherent: str, dynamic: str) -> None:
    rating = rate(facts)
    assert (rating.inherent, rating.dynamic) == (inherent, dynamic)
    codes = [r.code for r in rating.reasons]
    assert ("not_assessed" in codes) == (inherent == "grey")


def test_not_assessed_with_a_live_condition_lists_live_reasons_first() -> None:
    rating = rate(
        EnterpriseFacts(
            8, red_points=2, score_points=6, score_measure_code="m", score_colour_raise=1
        )
    )
    assert [r.code for r in rating.reasons] == [
        "red_monitoring_point",
        "safety_score_threshold",
        "not_assessed",
    ]
    assert all(r.raises for r in rating.reasons[:2])


def test_detector_lost_during_alarm_is_listed_first_and_raises_one_level() -> None:
    facts = EnterpriseFacts(
        9,
        diagnosis_score=80,
        lost_detectors=2,
        lost_detector_codes="GD-1, GD-2",
        open_major_dangers=1,
        red_points=1,
    )
    rating = rate(facts)
    assert (rating.inherent, rating.dynamic) == ("yellow", "orange")
    first = rating.reasons[0]
    assert first.code == "detector_lost_during_alarm" and first.raises
    assert first.en == "2 detector(s) offline during an open level-2 alarm (GD-1, GD-2)"
    assert "GD-1" in first.zh
    assert [r.code for r in rating.reasons[1:3]] == [
        "open_major_hidden_danger",
        "red_monitoring_point",
    ]
    alone = rate(EnterpriseFacts(9, diagnosis_score=80, lost_detectors=1))
    assert alone.dynamic == "orange"
