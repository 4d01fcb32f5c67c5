"""The domain's error family (layers/core/errors.py) and its one HTTP map (geo_api/errors.py).

No database: the classes, the statuses and the bodies they become are checked directly; the
routes' answers are checked over HTTP by the tests of each resource.
"""

from __future__ import annotations

import subprocess
import sys

import pytest

import geo_api.errors as http_errors
from layers.access.keys import KeyProblem
from layers.alerts.lifecycle import AlertNotFound
from layers.core import errors
from layers.core.bodies import BodyError
from layers.risk.diagram import EnterpriseNotFound
from layers.risk.gb18218 import AssessmentError
from layers.risk.hexagons import UnknownLayer
from layers.risk.units import UnitAssessmentError


def test_the_domain_family_imports_no_web_framework() -> None:
    code = "import sys, layers.core.errors; assert 'fastapi' not in sys.modules, 'fastapi'"
    subprocess.run([sys.executable, "-c", code], check=True)


def test_geo_api_names_are_the_domain_classes() -> None:
    for name in errors.__all__:
        assert getattr(http_errors, name) is getattr(errors, name), name
    assert http_errors.GeoRiskError is errors.DomainError


@pytest.mark.parametrize(
    ("exc", "status", "detail", "fields"),
    [
        (AlertNotFound(7), 404, "alert 7 not found", ["alert_id"]),
        (EnterpriseNotFound(9), 404, "enterprise 9 not found", ["id"]),
        (UnknownLayer("nope"), 404, "unknown layer 'nope'", ["layer"]),
        (AssessmentError("beta", "give beta"), 422, "beta: give beta", ["beta"]),
        (UnitAssessmentError("exposure", "required"), 422, "exposure: required", ["exposure"]),
        (KeyProblem("role", "unknown"), 422, "role: unknown", ["role"]),
        (BodyError("body: not UTF-8"), 400, "body: not UTF-8", ["body"]),
        (errors.TransitionRefused("refused", current="new"), 409, "refused", []),
        (errors.Conflict("duplicate"), 409, "duplicate", []),
        (errors.PayloadTooLarge("big"), 413, "big", []),
        (errors.Unauthorized("who"), 401, "who", []),
        (errors.Forbidden("no"), 403, "no", []),
        (errors.BadRequest("bad"), 400, "bad", []),
        (errors.DomainError("plain"), 400, "plain", []),
    ],
)
def test_each_error_has_one_status_and_names_its_field(
    exc: errors.DomainError,
    status: int,
    detail: str,
    fields: list[str],
) -> None:
    assert http_errors.ErrorMap().status_for(exc) == status
    assert exc.message.startswith(detail) and str(exc) == exc.message
    assert [e.field for e in exc.errors] == fields
    assert all(e.reason for e in exc.errors)


def test_classes_that_were_builtin_errors_still_are() -> None:
    """``except ValueError`` / ``except LookupError`` written against them still holds."""
    assert issubclass(AlertNotFound, LookupError) and issubclass(EnterpriseNotFound, LookupError)
    for klass in (AssessmentError, UnitAssessmentError, KeyProblem, BodyError, UnknownLayer):
        assert issubclass(klass, ValueError), klass


def test_one_name_for_a_refused_transition() -> None:
    """Alerts, alarms and hidden dangers all refuse a step with ``TransitionRefused``: a
    ``Conflict`` carrying the state found and the step asked for."""
    import layers.alerts.lifecycle as lifecycle
    import layers.monitoring.alarms as alarms
    import layers.prevention.dual as dual

    refused = dual._refused("rectified", "found")
    assert isinstance(refused, errors.Conflict)
    assert (refused.current, refused.wanted) == ("rectified", "found")
    assert refused.errors[0].as_dict() == {
        "field": "status",
        "reason": "current state is 'rectified'",
    }
    assert str(lifecycle._refused(3, "disposed", "acknowledge")) == (
        "alert 3 is disposed: cannot acknowledge it"
    )
    for module in (alarms, dual, lifecycle):
        names = {n for n, v in vars(module).items() if isinstance(v, type)}
        assert not names & {"IllegalTransition", "LifecycleError"}, module
