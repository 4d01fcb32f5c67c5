"""The warning models' registry is complete: every alert rule of issue 14 item 3 is raised by
exactly one registered model, which names its source, and each rule is routed."""

from __future__ import annotations

from collections import Counter

import psycopg

from layers.core.vocab import TERMINAL_ALARM_RULES, WARNING_MODEL_RULES
from layers.transport.warnings.registry import MODELS


def test_every_model_rule_has_exactly_one_registered_model() -> None:
    raised = Counter(rule for model in MODELS for rule in model.rules)
    expected = set(WARNING_MODEL_RULES) | set(TERMINAL_ALARM_RULES)
    assert set(raised) == expected, sorted(expected ^ set(raised))
    assert all(n == 1 for n in raised.values()), raised
    assert len({m.name for m in MODELS}) == len(MODELS)


def test_every_model_names_its_source() -> None:
    for model in MODELS:
        assert len(model.source.strip()) > 10, model.name


def test_every_model_rule_is_routed(db: psycopg.Connection) -> None:
    rows = dict(db.execute("SELECT rule, departments FROM alert_routes").fetchall())
    for rule in (*WARNING_MODEL_RULES, *TERMINAL_ALARM_RULES):
        assert rows.get(rule), f"{rule} has no route"
