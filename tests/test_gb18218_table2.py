"""GB 18218-2018 Table 2 completeness: W4, several hazard classes (the lowest Q), mixtures, the
grade edges — pure rules with hand-computed expectations, then the calculator and a stored
hazard source over real HTTP."""

from __future__ import annotations

import httpx
import psycopg
import pytest

from layers.risk.gb18218 import AssessmentError, Substance, assess
from layers.risk.substances import TABLE1_Q_BY_CAS, TABLE1_VARIANT_CAS, TABLE2_Q_BY_CLASS


def _assess(population: int, *subs: Substance):  # type: ignore[no-untyped-def]
    return assess(population, list(subs), TABLE1_Q_BY_CAS, TABLE2_Q_BY_CLASS, TABLE1_VARIANT_CAS)


def test_w4_oxidising_gas_60_t_gives_s_1_2() -> None:
    # Table 2 (2018): W4 Q = 50 t (2009 had 200 t, which would give S = 0.3 and no grade).
    # S = 60 / 50 = 1.2; β(W4) = 1; α(0 people) = 0.5 → R = 0.5 × 1 × 1.2 = 0.6 → grade 4.
    result = _assess(0, Substance("某氧化性气体", q=60, hazard_class="W4"))
    assert result.S == 1.2
    assert result.R == 0.6
    (c,) = result.contributions
    assert (c.critical_q, c.source_of_q, c.beta, c.governing_class) == (50, "table2", 1, "W4")
    assert (result.grade, result.color) == (4, "blue")


def test_gas_classed_w2_and_j3_takes_the_lower_q() -> None:
    # Table 2: W2 flammable gases 10 t, J3 (acute toxicity cat. 2–3, gases) 50 t → Q = 10 t.
    # β follows the class that set Q: W2 → 1.5. 25 t: S = 2.5; α(120 people) = 2 →
    # R = 2 × 1.5 × 2.5 = 7.5 → grade 4.
    assert (TABLE2_Q_BY_CLASS["W2"], TABLE2_Q_BY_CLASS["J3"]) == (10, 50)
    for order in (("W2", "J3"), ("J3", "W2")):
        sub = Substance("某有毒易燃气体", q=25, hazard_class=order[0], more_classes=order[1:])
        result = _assess(120, sub)
        (c,) = result.contributions
        assert (c.critical_q, c.governing_class, c.beta) == (10, "W2", 1.5), order
        assert (result.S, result.R, result.grade) == (2.5, 7.5, 4)


def test_lowest_q_then_larger_beta_between_equal_q() -> None:
    # J2 (50 t, β 1) and J3 (50 t, β 2): same Q, the larger β (J3) governs.
    sub = Substance("x", q=100, hazard_class="J2", more_classes=("J3",))
    (c,) = _assess(1, sub).contributions
    assert (c.critical_q, c.beta, c.governing_class) == (50, 2, "J3")
    # J1 (5 t, β 4) beats W4 (50 t, β 1): Q = 5, β = 4.
    (c,) = _assess(1, Substance("y", q=1, hazard_class="W4", more_classes=("J1",))).contributions
    assert (c.critical_q, c.beta) == (5, 4)


def test_table1_still_wins_for_a_named_substance_with_classes() -> None:
    # Ammonia (7664-41-7) is Table 1 (10 t) and Table 3 (β 2), whatever classes are given.
    sub = Substance("氨", q=20, cas="7664-41-7", hazard_class="W2", more_classes=("J3",))
    (c,) = _assess(0, sub).contributions
    assert (c.critical_q, c.source_of_q, c.beta, c.source_of_beta) == (10, "table1", 2, "table3")


def test_mixture_is_assessed_by_its_one_classified_class() -> None:
    # A flammable-liquid mixture classified W5.1: Q = 10 t, β = 1.5; 15 t → S = 1.5.
    (c,) = _assess(0, Substance("混合溶剂", q=15, hazard_class="W5.1", mixture=True)).contributions
    assert (c.critical_q, c.beta) == (10, 1.5)
    with pytest.raises(AssessmentError) as caught:
        _assess(
            0, Substance("混合物", q=1, hazard_class="W5.1", more_classes=("J3",), mixture=True)
        )
    assert caught.value.field == "substances[0].class"


@pytest.mark.parametrize(
    ("q", "r", "grade", "color"),
    [
        (2500, 100, 1, "red"),
        (2499.5, 99.98, 2, "orange"),
        (1250, 50, 2, "orange"),
        (1249.5, 49.98, 3, "yellow"),
        (250, 10, 3, "yellow"),
        (249.5, 9.98, 4, "blue"),
    ],
)
def test_grade_edges_are_inclusive(q: float, r: float, grade: int, color: str) -> None:
    # W4 from Table 2: Q = 50 t, β = 1; α(100 people) = 2 → R = 2 × q / 50 = q / 25 exactly:
    # 2500 t → R = 100 (first: R ≥ 100), 1250 t → 50 (second), 250 t → 10 (third).
    result = _assess(100, Substance("氧化性气体", q=q, hazard_class="W4"))
    assert result.R == r
    assert (result.grade, result.color) == (grade, color)


# -- over HTTP -----------------------------------------------------------------------------
def test_calculator_takes_a_list_of_classes_and_names_bad_codes(client: httpx.Client) -> None:
    body = {
        "population_500m": 120,
        "substances": [{"name": "某气体", "q": 25, "class": ["J3", "W2"]}],
    }
    answer = client.post("/api/assess/gb18218", json=body)
    assert answer.status_code == 200, answer.text
    line = answer.json()["substances"][0]
    assert (line["Q"], line["Q_from"], line["class_used"], line["beta"]) == (
        10,
        "table2",
        "W2",
        1.5,
    )
    assert answer.json()["R"] == 7.5

    w4 = {"population_500m": 0, "substances": [{"name": "氧", "q": 60, "class": "W4"}]}
    assert client.post("/api/assess/gb18218", json=w4).json()["S"] == 1.2

    bad = {"population_500m": 0, "substances": [{"name": "x", "q": 1, "class": ["W2", "W99"]}]}
    refused = client.post("/api/assess/gb18218", json=bad)
    assert refused.status_code == 422
    assert "class" in refused.json()["errors"][0]["field"]
    mixture = {
        "population_500m": 0,
        "substances": [{"name": "x", "q": 1, "class": ["W2", "J3"], "mixture": True}],
    }
    refused = client.post("/api/assess/gb18218", json=mixture)
    assert refused.status_code == 422 and "class" in refused.json()["errors"][0]["field"]


def test_stored_hazard_source_with_two_classes_is_graded_by_the_lower_q(
    client: httpx.Client, db: psycopg.Connection
) -> None:
    (eid,) = db.execute(
        "INSERT INTO enterprises (credit_code, name, category, is_hazmat, geom) VALUES"
        " ('91330200T2B18218X1', 'table-2 test', 'storage', true,"
        " ST_SetSRID(ST_Point(126.9, 34.9), 4326)) RETURNING id"
    ).fetchone()
    try:
        feature = {
            "type": "Feature",
            "geometry": {
                "type": "Polygon",
                "coordinates": [
                    [
                        [126.9, 34.9],
                        [126.901, 34.9],
                        [126.901, 34.901],
                        [126.9, 34.901],
                        [126.9, 34.9],
                    ]
                ],
            },
            "properties": {
                "enterprise_id": eid,
                "code": "T2-HS1",
                "unit_name": "球罐区",
                "unit_kind": "storage",
                "population_500m": 120,
                "substances": [
                    {"name": "某有毒易燃气体", "q": 25, "class": ["J3", "W2"]},
                    {"name": "氧化性气体", "q": 60, "class": "W4"},
                    {"name": "某毒气", "q": 1, "Q": 1000, "beta": 1, "class": ["W2", "toxic_gas"]},
                ],
            },
        }
        created = client.post("/api/hazard-sources", json=feature)
        assert created.status_code == 201, created.text
        hid = created.json()["id"]
        # S = 25/10 + 60/50 + 1/1000 = 3.701;
        # R = 2 × (1.5 × 2.5 + 1 × 1.2 + 1 × 0.001) = 9.902 → grade 4, blue.
        row = db.execute(
            "SELECT s_value, r_value, grade, color FROM hazard_sources WHERE id = %s", (hid,)
        ).fetchone()
        assert row is not None
        assert (round(row[0], 6), round(row[1], 6), row[2], row[3]) == (3.701, 9.902, 4, "blue")
        stored = db.execute(
            "SELECT hazard_class, more_classes FROM hazard_source_substances"
            " WHERE hazard_source_id = %s ORDER BY id",
            (hid,),
        ).fetchall()
        assert stored == [("J3", ["W2"]), ("W4", []), ("W2", ["toxic_gas"])]
        item = client.get(f"/api/hazard-sources/{hid}").json()
        assert item["properties"]["substances"][0]["classes"] == ["J3", "W2"]

        bad = dict(feature, properties=dict(feature["properties"], code="T2-HS2"))
        bad["properties"]["substances"] = [{"name": "x", "q": 1, "class": "W4.5"}]
        refused = client.post("/api/hazard-sources", json=bad)
        assert refused.status_code == 422
        assert "class" in refused.json()["errors"][0]["field"]
    finally:
        db.execute("DELETE FROM enterprises WHERE id = %s", (eid,))
