"""The typed contract (issue 16 item 4): every operation documents its success body and its
errors, and what the server really answers conforms, for every role.

1. **Documented** (no server needed): each operation of /openapi.json has a 2xx answer; every
   2xx with a body names its media type and a schema — JSON bodies (and each event of an SSE
   stream) a model of ``components/schemas``, other bodies (tiles, packages, images, PDF,
   CSV, CAP, Atom) a string — and every 4xx/5xx it lists is the house problem body
   (``ErrorBody``). A route added later
   without ``response_model=`` / ``responses=`` fails here.
2. **Conforms** (schemathesis, Python API): per role, every operation is called with
   generated inputs (random ones, then the same operation on real rows of the demo city so
   success bodies are checked, not only 404s) and each answer is checked with
   ``not_a_server_error``, ``response_schema_conformance``, ``status_code_conformance`` and
   ``content_type_conformance``. Reads run for every role, writes for the administrator and
   for the roles that may make some (enterprise, ingest); the administrator gets invalid
   inputs too. Every failure is listed with a curl line; the server log must hold no
   traceback.

Writes that read their body by hand get the request-body schemas of scripts/fuzz_api.py, so
the fuzzer sends features and registers, not nothing. They run against a throwaway database of
this module's own (``<test db>_contract``, seeded with the same small demo city, dropped at the
end) behind a server process of its own: the fuzzer's new enterprises, deleted risk units and
revoked keys never reach the shared test database, so no other test's counts change. The role
keys made here get ids far above what the fuzzer draws, so ``DELETE /api/keys/{key_id}``
cannot revoke the key a run uses.

Skipped by the fuzzer, checked here by hand: the two SSE streams (``/api/alerts/stream``,
``/api/changes/stream``) never end, so their status and media type are checked and their first
event is validated against the documented event model before the connection is closed.
"""

from __future__ import annotations

import json
import subprocess
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import httpx
import psycopg
import pytest
import schemathesis
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis.errors import Unsatisfiable
from jsonschema import Draft202012Validator
from schemathesis import GenerationMode
from schemathesis.checks import (
    content_type_conformance,
    not_a_server_error,
    response_schema_conformance,
    status_code_conformance,
)

from geo_api.app import create_app
from geo_api.errors import ErrorBody
from geo_api.models.health import HealthUnavailable
from layers.access.keys import hash_key
from layers.catalog import CATALOG, Catalog
from layers.catalog.model import Layer, Prop, Rest, rest_prop
from scripts.benchkit import drop_database, free_port, make_key, recreate_database
from scripts.fuzz_api import augment, start_server
from tests.conftest import TEST_SCALE, TEST_SEED, auth, make_settings

JSON_MEDIA = ("application/json", "application/geo+json")
METHODS = ("get", "post", "put", "patch", "delete")
NO_BODY = {"204", "304"}  # statuses that carry no body by definition (RFC 9110)
STREAMS = ("/api/alerts/stream", "/api/changes/stream")
EVENTS = "text/event-stream"


def _offline_openapi(catalog: Catalog = CATALOG) -> dict[str, Any]:
    """The document of an app that never opens its pool (no request is served)."""
    app = create_app(make_settings("postgresql://georisk@127.0.0.1:9/none"), catalog)
    doc: dict[str, Any] = app.openapi()
    return doc


def _operations(doc: dict[str, Any]) -> Iterator[tuple[str, str, dict[str, Any]]]:
    for path, item in doc["paths"].items():
        for method, op in item.items():
            if method in METHODS:
                yield method, path, op


def _undocumented(doc: dict[str, Any]) -> list[str]:
    """Every way an operation falls short of the contract, one line each."""
    problems: list[str] = []
    components = doc.get("components", {}).get("schemas", {})
    # The problem body; /healthz's 503 is its own (a probe's ``{"status": "unavailable"}``).
    error_refs = {f"#/components/schemas/{m.__name__}" for m in (ErrorBody, HealthUnavailable)}
    for method, path, op in _operations(doc):
        where = f"{method.upper()} {path}"
        responses: dict[str, Any] = op.get("responses", {})
        successes = {s: r for s, r in responses.items() if s.startswith("2")}
        if not successes:
            problems.append(f"{where}: no 2xx answer")
        for status, answer in successes.items():
            content = answer.get("content") or {}
            if status in NO_BODY:
                if content:
                    problems.append(f"{where} {status}: a body on a status that has none")
                continue
            if not content:
                problems.append(f"{where} {status}: no media type")
            for media, spec in content.items():
                schema = spec.get("schema") or {}
                kind = media.split(";")[0]  # parameters (``;version=3.0``) say nothing of JSON
                if kind in JSON_MEDIA or kind.endswith("+json") or kind == EVENTS:
                    # A model (of one event, for a stream): referenced, or inlined with its
                    # fields (``json_variant``).
                    ref = schema.get("$ref", "")
                    if ref and ref.rsplit("/", 1)[-1] not in components:
                        problems.append(f"{where} {status} {media}: {ref} is missing")
                    elif not ref and not schema.get("properties"):
                        problems.append(f"{where} {status} {media}: not a model ({schema})")
                elif schema.get("type") != "string":
                    problems.append(f"{where} {status} {media}: not a string ({schema})")
        for status, answer in responses.items():
            if not status.startswith(("4", "5")):
                continue
            content = answer.get("content") or {}
            schema = content.get("application/json", {}).get("schema", {})
            if list(content) != ["application/json"] or schema.get("$ref") not in error_refs:
                problems.append(f"{where} {status}: not the problem body ({content})")
    return problems


def test_every_operation_documents_its_bodies() -> None:
    doc = _offline_openapi()
    operations = list(_operations(doc))
    assert len(operations) >= 87, len(operations)
    assert _undocumented(doc) == []
    # FastAPI's own 422 body is not what the server sends (geo_api/errors.py): never listed.
    assert "HTTPValidationError" not in doc["components"]["schemas"]


def test_the_contract_check_fails_on_an_undocumented_route() -> None:
    """The check above can fail: a body without a schema, an error without the problem body
    and a JSON body without a model are each named."""
    doc = {
        "paths": {
            "/x": {
                "get": {"responses": {"200": {"description": "ok"}}},
                "post": {
                    "responses": {
                        "201": {"content": {"application/json": {"schema": {"type": "object"}}}},
                        "404": {"content": {"application/json": {"schema": {}}}},
                    }
                },
                "put": {"responses": {"200": {"content": {"text/csv": {"schema": {}}}}}},
            }
        },
        "components": {"schemas": {}},
    }
    problems = _undocumented(doc)
    assert problems == [
        "GET /x 200: no media type",
        "POST /x 201 application/json: not a model ({'type': 'object'})",
        "POST /x 404: not the problem body ({'application/json': {'schema': {}}})",
        "PUT /x 200 text/csv: not a string ({})",
    ]


_PLANT_LAYER = Layer(
    name="contract_plants",
    title="Contract plants",
    description="a layer declared by this test only",
    audience="city",
    from_sql="enterprises t",
    geom_sql="t.geom",
    geometry_type="point",
    properties=(
        Prop("name", "t.name", "String", "plant name"),
        rest_prop("score", "t.diagnosis_score", "Number"),
        rest_prop("hazmat", "t.is_hazmat", "Boolean"),
        rest_prop("since", "t.licence_expiry", "Date"),
    ),
    rest=Rest(noun="plant"),
)


def test_a_new_layer_documents_its_collection_from_its_declaration() -> None:
    """The collection bodies come from the catalogue: a layer declared nowhere else gets its
    FeatureCollection, Feature and properties models, field by field and typed."""
    doc = _offline_openapi(CATALOG.with_layers(_PLANT_LAYER))
    assert _undocumented(doc) == []
    listing = doc["paths"]["/api/contract-plants"]["get"]["responses"]["200"]["content"]
    assert listing["application/geo+json"]["schema"] == {
        "$ref": "#/components/schemas/ContractPlantsCollection"
    }
    schemas = doc["components"]["schemas"]
    props = schemas["ContractPlantsProperties"]
    assert sorted(props["required"]) == ["hazmat", "name", "score", "since"]
    types = {name: spec["anyOf"][0] for name, spec in props["properties"].items()}
    assert types == {
        "name": {"type": "string"},
        "score": {"type": "number"},
        "hazmat": {"type": "boolean"},
        "since": {"type": "string"},
    }
    assert props["properties"]["name"]["description"] == "plant name"
    geometry = schemas["ContractPlantsGeometry"]["properties"]["type"]
    assert geometry["enum"] == ["Point", "MultiPoint"]


# -- conformance: schemathesis for every role -------------------------------------------------
KEY_ID = 1_975_310_000  # role keys live far above the ids the fuzzer draws (int4 max 2**31-1)


@dataclass(frozen=True)
class ContractServer:
    base_url: str
    keys: dict[str, str]
    url: str
    known: dict[str, Any]  # path parameters that name real rows the scoped keys may see


#: Real rows for the path parameters, so success bodies are checked too, not only 404s:
#: an enterprise with a register (hidden dangers), and rows of its own or of its district.
#: ``key_id`` is left to the fuzzer: a real one would revoke a role's key mid-run.
_KNOWN_SQL = """
WITH e AS (SELECT e.id, e.district FROM enterprises e JOIN hidden_dangers h
           ON h.enterprise_id = e.id WHERE e.district IS NOT NULL ORDER BY e.id LIMIT 1)
SELECT e.id, e.district,
  coalesce((SELECT min(id) FROM alerts WHERE district = e.district),
           (SELECT min(id) FROM alerts)),
  (SELECT min(id) FROM alarms),
  (SELECT min(id) FROM risk_units WHERE enterprise_id = e.id),
  coalesce((SELECT min(id) FROM vehicles WHERE district = e.district),
           (SELECT min(id) FROM vehicles)),
  (SELECT min(id) FROM hidden_dangers WHERE enterprise_id = e.id),
  (SELECT min(id) FROM inspection_tasks)
FROM e
"""
_KNOWN_NAMES = (
    "enterprise_id",
    "code",
    "alert_id",
    "alarm_id",
    "unit_id",
    "vehicle_id",
    "danger_id",
    "task_id",
)


def _throwaway_url(database_url: str) -> str:
    parts = urlsplit(database_url)
    return urlunsplit(parts._replace(path=parts.path + "_contract"))


def _role_key(url: str, role: str, index: int, district: str, enterprise: int) -> str:
    scope: dict[str, Any] = {}
    if role == "enterprise":
        scope["enterprise_id"] = enterprise
    elif role in ("regulator", "officer", "ingest"):
        scope["districts"] = [district]
    key = make_key(url, role, f"contract {role}", **scope)
    with psycopg.connect(url, autocommit=True) as db:
        db.execute(
            "UPDATE api_keys SET id = %s WHERE key_hash = %s", (KEY_ID + index, hash_key(key))
        )
    return key


@pytest.fixture(scope="module")
def contract_server(
    database_url: str, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[ContractServer]:
    """A server of its own over a throwaway copy of the demo city (see the module docstring)."""
    from geo_api.migrate import upgrade
    from layers.demo_city import seed_demo_city

    url = _throwaway_url(database_url)
    recreate_database(url)
    upgrade(url)
    out = tmp_path_factory.mktemp("contract_city")
    seed_demo_city(url, scale=TEST_SCALE, seed=TEST_SEED, out_dir=out, progress=False)
    with psycopg.connect(url) as db:
        row = db.execute(_KNOWN_SQL).fetchone()
    assert row is not None and None not in row, row
    known: dict[str, Any] = dict(zip(_KNOWN_NAMES, row, strict=True))
    known.update(item_id=1, layer="enterprises", layers="enterprises")
    enterprise, district = int(known["enterprise_id"]), str(known["code"])
    roles = ("admin", "regulator", "enterprise", "officer", "tile_reader", "ingest")
    keys = {r: _role_key(url, r, i, district, enterprise) for i, r in enumerate(roles)}
    # Its own process (the full fuzz run's: throwaway token secret and CAP signing pair, body
    # limit 1 MiB, no monitoring sweep), so generating cases and answering them do not share
    # one interpreter lock.
    port, log = free_port(), out / "server.log"
    server = start_server(url, port, log)
    try:
        yield ContractServer(f"http://127.0.0.1:{port}", keys, url, known)
    finally:
        server.terminate()
        try:
            server.wait(timeout=15)
        except subprocess.TimeoutExpired:
            server.kill()
            server.wait()
        drop_database(url)
    unhandled = [line for line in log.read_text().splitlines() if "Traceback" in line]
    assert not unhandled, log.read_text()[-4000:]


CHECKS = [
    not_a_server_error,
    response_schema_conformance,
    status_code_conformance,
    content_type_conformance,
]


def _run_operation(
    operation: Any,
    base_url: str,
    headers: dict[str, str],
    examples: int,
    mode: GenerationMode,
    path_parameters: dict[str, Any] | None = None,
) -> list[str]:
    """Up to ``examples`` generated calls of one operation (its path parameters fixed when
    given); every failed check is kept (no shrinking: the curl line reproduces it)."""
    failures: list[str] = []

    @settings(
        max_examples=examples,
        deadline=None,
        derandomize=True,
        database=None,
        phases=[Phase.explicit, Phase.generate],
        suppress_health_check=list(HealthCheck),
    )
    @given(case=operation.as_strategy(generation_mode=mode, path_parameters=path_parameters))
    def run(case: Any) -> None:
        try:
            case.call_and_validate(base_url=base_url, headers=headers, checks=CHECKS, timeout=60)
        except (Exception, BaseExceptionGroup) as exc:  # failed checks, a broken connection
            curl = case.as_curl_command(headers=headers)
            failures.append(f"{operation.label}: {str(exc)[:1500]}\n    {curl}")

    try:
        run()
    except Unsatisfiable:  # nothing to negate (no parameters, no body): nothing to send
        assert mode is GenerationMode.NEGATIVE, operation.label
    return failures


#: (role, methods fuzzed, examples per operation and pass). Every role gets valid inputs
#: (random, then on real rows); the administrator, whom no route refuses, invalid ones too
#: (the error bodies do not depend on the role). Sized to keep the module near 3 minutes.
PLAN: list[tuple[str, tuple[str, ...], int]] = [
    ("admin", METHODS, 4),
    ("regulator", ("get",), 3),
    ("enterprise", ("get", "post", "put", "patch"), 3),
    ("officer", ("get",), 3),
    ("tile_reader", ("get",), 3),
    ("ingest", ("get", "post"), 3),
]


@pytest.mark.parametrize(("role", "methods", "examples"), PLAN, ids=[p[0] for p in PLAN])
def test_answers_conform_to_the_documented_contract(
    contract_server: ContractServer, role: str, methods: tuple[str, ...], examples: int
) -> None:
    base = contract_server.base_url
    # The writes that read their body by hand (GeoJSON features, models validated in the
    # domain) document none; the full fuzz run's request-body schemas let the fuzzer reach
    # their success paths too. Responses are the server's own document, unchanged.
    doc = httpx.get(f"{base}/openapi.json", timeout=30).json()
    augment(doc)
    schema = schemathesis.openapi.from_dict(doc)
    key = contract_server.keys[role]
    # Both credentials, so neither a generated Bearer nor a generated X-API-Key replaces it.
    headers = {**auth(key), "Authorization": f"Bearer {key}"}
    failures: list[str] = []
    tested = 0
    for result in schema.get_all_operations():
        operation = result.ok()
        if operation.method.lower() not in methods or operation.path in STREAMS:
            continue
        tested += 1
        modes = [GenerationMode.POSITIVE]
        if role == "admin":
            modes.append(GenerationMode.NEGATIVE)
        for mode in modes:
            failures += _run_operation(operation, base, headers, examples, mode)
        names = {p.name for p in operation.path_parameters}
        real = {n: v for n, v in contract_server.known.items() if n in names}
        if real:  # the same operation on real rows: success bodies, not just 404s
            positive = GenerationMode.POSITIVE
            failures += _run_operation(operation, base, headers, examples, positive, real)
    assert tested >= 20, tested
    assert not failures, f"{len(failures)} failures:\n" + "\n".join(failures)


@pytest.mark.parametrize(
    ("path", "params", "first"),
    [
        ("/api/changes/stream", {}, "hello"),
        ("/api/alerts/stream", {"since": "2000-01-01T00:00:00Z"}, "alert"),  # replays alerts
    ],
)
def test_event_streams_answer_their_documented_events(
    contract_server: ContractServer, path: str, params: dict[str, str], first: str
) -> None:
    """The streams the fuzzer cannot call (they never end): the media type, then the first
    event, parsed by the SSE rules, validates against the documented event model and its
    ``data`` is JSON."""
    base = contract_server.base_url
    doc = httpx.get(f"{base}/openapi.json", timeout=30).json()
    documented = doc["paths"][path]["get"]["responses"]["200"]["content"]
    assert list(documented) == [EVENTS]
    schema = {**documented[EVENTS]["schema"], "components": doc["components"]}
    headers = auth(contract_server.keys["admin"])
    with httpx.stream("GET", f"{base}{path}", params=params, headers=headers, timeout=30) as r:
        assert r.status_code == 200
        assert r.headers["content-type"].split(";")[0] == EVENTS
        event = _first_event(r.iter_lines())
    assert event["event"] == first, event
    Draft202012Validator(schema).validate(event)
    assert isinstance(json.loads(event["data"]), dict)


def _first_event(lines: Iterator[str]) -> dict[str, Any]:
    """The first block with an ``event:`` field (``retry:`` blocks and comments skipped)."""
    fields: dict[str, Any] = {}
    for line in lines:
        if not line:
            if "event" in fields:
                return fields
            fields = {}
        elif not line.startswith(":"):
            name, _, value = line.partition(":")
            value = value.removeprefix(" ")
            fields[name] = int(value) if name == "retry" else value
    raise AssertionError("the stream ended without an event")


def test_every_collection_answers_its_documented_schema(
    contract_server: ContractServer,
) -> None:
    """Each catalogue collection's page and first item, from the live server, validate against
    the schemas /openapi.json derives from the catalogue (the same check schemathesis makes,
    here on every collection's real rows, deterministically)."""
    base = contract_server.base_url
    doc = httpx.get(f"{base}/openapi.json", timeout=30).json()
    with httpx.Client(base_url=base, headers=auth(contract_server.keys["admin"])) as http:
        for name, coll in CATALOG.collections.items():
            listing = http.get(f"/api/{name}", params={"limit": 3}, timeout=60)
            assert listing.status_code == 200, (name, listing.text)
            assert listing.headers["content-type"] == "application/geo+json"
            page = _valid(doc, f"/api/{name}", listing.json())
            assert page["features"], f"the demo city has {name}"
            first = page["features"][0]
            declared = {p.name for p in CATALOG.layers[coll.layer].properties if p.rest}
            assert set(first["properties"]) == declared, name
            if coll.item_route:
                item = http.get(f"/api/{name}/{first['id']}", timeout=60)
                assert item.status_code == 200, (name, item.text)
                assert _valid(doc, f"/api/{name}/{{item_id}}", item.json()) == first


def _valid(doc: dict[str, Any], path: str, body: Any) -> Any:
    content = doc["paths"][path]["get"]["responses"]["200"]["content"]
    schema = content["application/geo+json"]["schema"]
    Draft202012Validator({**schema, "components": doc["components"]}).validate(body)
    return body


# -- what the conformance run found -----------------------------------------------------------
@pytest.mark.parametrize(
    ("path", "raw"),
    [
        ("/api/assess/gb18218", b"\xff\x42\x00"),  # not UTF-8, not JSON
        ("/api/webhooks", b'{"url": "\xe9"}'),  # Latin-1, not UTF-8
    ],
)
def test_a_body_that_is_not_json_is_the_problem_body(
    contract_server: ContractServer, path: str, raw: bytes
) -> None:
    """FastAPI refused it with its own ``{"detail": "There was an error parsing the body"}``:
    no ``errors``, no field, not the body /openapi.json documents for a 400."""
    headers = {**auth(contract_server.keys["admin"]), "content-type": "application/json"}
    r = httpx.post(f"{contract_server.base_url}{path}", content=raw, headers=headers, timeout=30)
    assert r.status_code == 400, r.text
    body = r.json()
    assert ErrorBody.model_validate(body).errors[0].field == "body", body
    assert body["detail"].startswith("body: "), body


def test_framework_404_and_405_are_the_problem_body(contract_server: ContractServer) -> None:
    base = contract_server.base_url
    headers = auth(contract_server.keys["admin"])
    missing = httpx.get(f"{base}/api/no-such-thing", headers=headers, timeout=30)
    assert missing.status_code == 404
    assert ErrorBody.model_validate(missing.json()).errors[0].field == "path"
    wrong = httpx.put(f"{base}/api/risk/summary", headers=headers, timeout=30)
    assert wrong.status_code == 405
    assert ErrorBody.model_validate(wrong.json()).errors[0].field == "method"
    assert wrong.headers["allow"] == "GET"


def test_refused_transitions_are_documented_409s() -> None:
    """Acknowledging a disposed alert (or alarm) answers 409, which /openapi.json did not list
    (schemathesis: undocumented status code)."""
    paths = _offline_openapi()["paths"]
    for path in (
        "/api/alerts/{alert_id}/ack",
        "/api/alerts/{alert_id}/dispose",
        "/api/alarms/{alarm_id}/ack",
        "/api/alarms/{alarm_id}/dispose",
    ):
        assert "409" in paths[path]["post"]["responses"], path
    assert "409" in paths["/api/hidden-dangers/{danger_id}"]["patch"]["responses"]
