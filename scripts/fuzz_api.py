"""Fuzz every HTTP operation of the API and prove there is no 5xx (issue 8, "Checked by").

    python -m scripts.fuzz_api [--max-examples 50] [--role admin] [--seed 1] [--workers 4]
                               [--checks CHECKS] [--raw-schema] [--skip-probe]

What it does, in order:

1. **Database**: ``georisk_fuzz`` in the private cluster is dropped, re-created, migrated and
   seeded with a small demo city (scale 0.02, seed 7; ~5 s).
2. **Key**: one API key of ``--role`` (``enterprise`` keys get the first enterprise,
   ``regulator`` keys ``--districts`` if given). Its id is moved to 1357913579 so that
   ``DELETE /api/keys/{key_id}`` (fuzzed with small ids) cannot revoke the key the run uses.
3. **Server**: ``georisk serve`` as a subprocess on a free port (monitoring sweep off, body
   limit 1 MiB so 413 is cheap to reach, a throwaway token secret and CAP signing pair in
   ``<out>/cap`` so no real key is used); its log, with every traceback, is
   ``<out>/server.log``.
4. **Schemathesis** (the CLI of the installed 4.x, as a subprocess: it brings the coverage,
   fuzzing and stateful phases, shrinking and its own reports) against the schema served at
   ``http://127.0.0.1:<port>/openapi.json``, with the key header, checks ``--checks``
   (default: the contract's four, see below) and NUL bytes allowed in generated strings.
   Several write operations read their body by hand (GeoJSON features, models validated in
   the domain) and so document no ``requestBody``; unless ``--raw-schema`` is given, the
   served schema is copied to ``<out>/openapi.json`` with request-body schemas added for
   those (from the same pydantic models the server validates with; a GeoJSON Feature /
   FeatureCollection for the collections), so the fuzzer reaches their validation instead of
   stopping at "no body". Nothing else in the schema is changed.
5. **Hostile-value probe** (unless ``--skip-probe``): schemathesis rarely draws the values
   that break a database (``"\\x00"``, 2**63, NaN, year 0001/9999, 100 000 characters, lone
   surrogates, 10 000-deep JSON). The probe sends each of them, deterministically, into every
   query and path parameter of every operation and into every leaf of a valid body of every
   write, one at a time; a 4xx body holding database text (``psycopg``, ``SQLSTATE``,
   ``DETAIL:`` …) counts as a failure too.
6. **Summary**: operations tested, examples, every 5xx by operation with its status and a
   curl reproduction, and the unhandled exceptions found in the server log. Exit status 1 on
   any 5xx (from either phase or the log), else 0.

Skipped, and said so in the output: ``GET /api/alerts/stream`` (Server-Sent Events: the
response never ends, so schemathesis would only time out). Its input validation is covered by
the probe here (each hostile value in each of its parameters; the status and headers are read
and the stream is closed) and by tests/test_fuzz.py.

The default checks are the contract's (issue 16 item 4, tests/test_contract.py): no 5xx, and
every answer's body, status code and media type as /openapi.json documents them — each
operation documents its success body (a model, or the media type of its bytes) and its error
bodies (the problem body of geo_api/errors.py). ``--checks not_a_server_error`` gives the
issue 8 run alone.
"""

from __future__ import annotations

import argparse
import asyncio
import copy
import json
import re
import secrets
import shlex
import subprocess
import sys
import tempfile
import time
import urllib.parse
from collections import Counter, defaultdict
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import psycopg

from scripts import benchkit
from scripts.benchkit import free_port, recreate_database

ROOT = Path(__file__).resolve().parent.parent
DB_NAME = "georisk_fuzz"
KEY_ID = 1_357_913_579
STREAM_PATH = "/api/alerts/stream"
#: Server errors, and the documented contract: body schema, status code, media type.
CONTRACT_CHECKS = (
    "not_a_server_error,response_schema_conformance,status_code_conformance,"
    "content_type_conformance"
)
ROLES = ("admin", "regulator", "enterprise", "officer", "tile_reader", "ingest")


# -- set-up -------------------------------------------------------------------------------------
def prepare_database(name: str = DB_NAME) -> str:
    from geo_api.migrate import upgrade
    from layers.demo_city import seed_demo_city
    from scripts.benchkit import bench_url

    url = bench_url(name)
    recreate_database(url)
    upgrade(url)
    seed_demo_city(
        url, scale=0.02, seed=7, out_dir=Path(tempfile.mkdtemp(prefix="fuzz_city_")), progress=False
    )
    return url


def make_fuzz_key(url: str, role: str, districts: list[str] | None) -> str:
    """A key of ``role`` whose id is out of the fuzzer's reach (see the module docstring)."""
    from scripts.benchkit import make_key

    enterprise_id = None
    if role == "enterprise":
        with psycopg.connect(url) as conn:
            row = conn.execute("SELECT min(id) FROM enterprises").fetchone()
            enterprise_id = int(row[0]) if row and row[0] is not None else None
    key = make_key(
        url,
        role,
        f"fuzz {role}",
        enterprise_id=enterprise_id,
        districts=districts if role in ("regulator", "officer", "ingest") else None,
    )
    from layers.access.keys import hash_key

    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute(
            "UPDATE api_keys SET id = %s WHERE key_hash = %s",
            (KEY_ID + ROLES.index(role), hash_key(key)),
        )
    return key


def start_server(url: str, port: int, log: Path) -> subprocess.Popen[bytes]:
    """The shared server subprocess with a 1 MiB body limit (oversized fuzz bodies stay cheap).

    No real secret reaches it, whatever the caller's environment holds (docs/security.md):
    the token secret and the CAP signing pair are throwaway ones made here, so the fuzzed
    key, session and CAP routes sign with nothing a deployment trusts. Webhooks may reach
    127.0.0.1 (the probe's valid body points there) — never the database's own port."""
    from layers.alerts.cap_signature import write_key_pair

    cap_key, cap_cert = write_key_pair(log.parent / "cap", "fuzz run (throwaway)", 1)
    env = {
        "GEORISK_MONITORING_SWEEP_ENABLED": "false",
        "GEORISK_MAX_BODY_BYTES": str(1024 * 1024),
        "GEORISK_LOG_LEVEL": "warning",
        "GEORISK_AUTH_TOKEN_SECRET": secrets.token_urlsafe(48),
        "GEORISK_CAP_KEY_FILE": str(cap_key),
        "GEORISK_CAP_CERT_FILE": str(cap_cert),
        "GEORISK_WEBHOOK_ALLOW": "127.0.0.1/32",
    }
    return benchkit.start_server(url, port, log, env)


# -- schema ---------------------------------------------------------------------------------------
def _feature_schema(properties: dict[str, Any] | None = None) -> dict[str, Any]:
    geometry = {
        "type": "object",
        "properties": {
            "type": {"enum": ["Point", "LineString", "Polygon", "MultiPolygon"]},
            "coordinates": {"type": "array"},
        },
        "required": ["type", "coordinates"],
    }
    return {
        "type": "object",
        "properties": {
            "type": {"const": "Feature"},
            "geometry": geometry,
            "properties": properties or {"type": "object"},
        },
        "required": ["type", "geometry", "properties"],
    }


def body_schemas() -> dict[tuple[str, str], dict[str, Any]]:
    """Request-body schemas of the writes that read their body by hand (from the server's own
    models where it has them)."""
    from geo_api.routes.scores import DeductionInput
    from layers.catalog import CATALOG
    from layers.prevention.dual import HiddenDangerInput, HiddenDangerPatch, InspectionTaskInput
    from layers.risk.register import ContactsInput, RiskUnitInput

    def model(m: Any) -> dict[str, Any]:
        return dict(m.model_json_schema(ref_template="#/components/schemas/{model}"))

    out: dict[tuple[str, str], dict[str, Any]] = {
        ("post", "/api/enterprises/{enterprise_id}/deductions"): model(DeductionInput),
        ("post", "/api/enterprises/{enterprise_id}/hidden-dangers"): model(HiddenDangerInput),
        ("patch", "/api/hidden-dangers/{danger_id}"): model(HiddenDangerPatch),
        ("post", "/api/enterprises/{enterprise_id}/inspection-tasks"): model(InspectionTaskInput),
        ("post", "/api/enterprises/{enterprise_id}/risk-units"): _feature_schema(
            model(RiskUnitInput)
        ),
        ("put", "/api/risk-units/{unit_id}"): _feature_schema(model(RiskUnitInput)),
        ("put", "/api/enterprises/{enterprise_id}/contacts"): model(ContactsInput),
    }
    for name in CATALOG.collections:
        out[("post", f"/api/{name}")] = {
            "oneOf": [
                _feature_schema(),
                {
                    "type": "object",
                    "properties": {
                        "type": {"const": "FeatureCollection"},
                        "features": {"type": "array", "items": _feature_schema()},
                    },
                    "required": ["type", "features"],
                },
            ]
        }
    return out


def augment(schema: dict[str, Any]) -> list[str]:
    """Add the request bodies above where the served schema has none; returns what was added."""
    added = []
    for (method, path), body in body_schemas().items():
        op = schema.get("paths", {}).get(path, {}).get(method)
        if op is None or "requestBody" in op:
            continue
        defs = body.pop("$defs", {})
        schema.setdefault("components", {}).setdefault("schemas", {}).update(defs)
        op["requestBody"] = {"required": True, "content": {"application/json": {"schema": body}}}
        added.append(f"{method.upper()} {path}")
    return added


# -- schemathesis -------------------------------------------------------------------------------
@dataclass
class StRun:
    seconds: float = 0.0
    exit_code: int = 0
    report: dict[str, Any] = field(default_factory=dict)
    examples_by_op: Counter[str] = field(default_factory=Counter)
    text: str = ""


def run_schemathesis(
    location: str, base: str, key: str, args: argparse.Namespace, out: Path
) -> StRun:
    report_dir = out / "schemathesis"
    cmd = [
        str(Path(sys.executable).with_name("schemathesis")),
        "run",
        location,
        "--url",
        base,
        "-H",
        f"X-API-Key: {key}",
        "--exclude-path",
        STREAM_PATH,
        "--max-examples",
        str(args.max_examples),
        "--seed",
        str(args.seed),
        "--workers",
        str(args.workers),
        "--checks",
        args.checks,
        "--generation-allow-x00",
        "true",
        "--request-timeout",
        "60",
        "--report",
        "json,ndjson",
        "--report-dir",
        str(report_dir),
        "--no-color",
        "--warnings",
        "off",
    ]
    t0 = time.monotonic()
    proc = subprocess.run(cmd, cwd=out, capture_output=True, text=True, check=False)
    run = StRun(seconds=time.monotonic() - t0, exit_code=proc.returncode, text=proc.stdout)
    (out / "schemathesis.txt").write_text(proc.stdout + proc.stderr)
    reports = sorted(report_dir.glob("json-*.json"))
    if reports:
        run.report = json.loads(reports[-1].read_text())
    for nd in sorted(report_dir.glob("ndjson-*.ndjson"))[-1:]:
        for line in nd.read_text().splitlines():
            event = json.loads(line)
            done = event.get("ScenarioFinished")
            if done and done.get("recorder"):
                rec = done["recorder"]
                run.examples_by_op[rec.get("label", "?")] += len(rec.get("cases", {}))
    return run


# -- hostile-value probe ------------------------------------------------------------------------
HOSTILE_TEXT: list[Any] = [
    "\x00",
    "a\x00b",
    "x" * 100_001,
    "\ud800",
    "' OR 1=1 --",
    "%s",
    "-1",
    "0",
    "2147483648",
    "9223372036854775808",
    "-9223372036854775809",
    "1e309",
    "NaN",
    "Infinity",
    "0001-01-01",
    "9999-12-31",
    "10000-01-01",
    "2026-02-30",
    "0001-01-01T00:00:00+14:00",
    "9999-12-31T23:59:59-14:00",
    "1970-01-01T00:00:00",
    "-180,-90,180,90",
    "1,1,1,1",
    "nan,nan,nan,nan",
    "1e308,1e308,-1e308,-1e308",
    " ",
    "",
]
HOSTILE_JSON: list[Any] = [
    *HOSTILE_TEXT[:5],
    "0001-01-01",
    "9999-12-31T23:59:59-14:00",
    2**31,
    2**63,
    -(2**63) - 1,
    10**400,
    1e308,
    -1e308,
    float("nan"),
    float("inf"),
    -0.0,
    5e-324,
    -1,
    0,
    True,
    None,
    [],
    {},
    [[[[]]]],
]
RAW_BODIES: list[bytes] = [
    b"",
    b"null",
    b"[" * 10_000 + b"]" * 10_000,
    b'{"a":' * 10_000 + b"1" + b"}" * 10_000,
    b"NaN",
    b"\xff\xfe",
    b'{"type": "FeatureCollection", "features": NaN}',
    b"x" * (1024 * 1024 + 1),
]

_SQUARE = [[[121.5, 29.85], [121.51, 29.85], [121.51, 29.86], [121.5, 29.86], [121.5, 29.85]]]


async def _first_item_code(url: str, enterprise_id: int) -> str | None:
    """A deduction item of the enterprise's rule set, so the probe gets past ``item_code``."""
    from layers.prevention.scoring import rule_set_of

    conn = await psycopg.AsyncConnection.connect(url)
    async with conn:
        rule_set = await rule_set_of(conn, enterprise_id)
    return rule_set.items[0].code if rule_set and rule_set.items else None


def valid_bodies(url: str) -> dict[tuple[str, str], Any]:
    """One valid (or nearly valid) body per write, whose leaves the probe replaces."""
    with psycopg.connect(url) as conn:
        row = conn.execute("SELECT credit_code FROM enterprises ORDER BY id LIMIT 1").fetchone()
        credit = row[0] if row else "91330200MA00000001"
        row = conn.execute("SELECT code FROM districts ORDER BY id LIMIT 1").fetchone()
        district = row[0] if row else "330206"

    item_code = asyncio.run(_first_item_code(url, 1)) or "X1"

    def point(props: dict[str, Any]) -> dict[str, Any]:
        return {
            "type": "Feature",
            "geometry": {"type": "Point", "coordinates": [121.55, 29.87]},
            "properties": props,
        }

    def area(kind: str, props: dict[str, Any]) -> dict[str, Any]:
        return {
            "type": "Feature",
            "geometry": {"type": kind, "coordinates": _SQUARE},
            "properties": props,
        }

    unit = area(
        "Polygon",
        {
            "name": "tank farm",
            "method": "LEC",
            "likelihood": 3,
            "exposure": 6,
            "consequence": 7,
            "controls": "bund",
        },
    )
    return {
        ("post", "/api/keys"): {
            "name": "probe",
            "role": "regulator",
            "districts": [district],
            "expires_at": "2030-01-01T00:00:00Z",
        },
        ("post", "/api/auth/session"): {"key": "grk_x"},
        ("post", "/api/webhooks"): {
            "url": "http://127.0.0.1:9/hook",
            "secret": "s" * 16,
            "districts": [district],
            "rules": None,
        },
        ("post", "/api/assess/gb18218"): {
            "population_500m": 10,
            "substances": [
                {
                    "name": "chlorine",
                    "cas": "7782-50-5",
                    "q": 20,
                    "Q": 5,
                    "beta": 4,
                    "class": "toxic",
                }
            ],
        },
        ("post", "/api/alerts/{alert_id}/dispose"): {"outcome": "disposed", "note": "ok"},
        ("post", "/api/enterprises/{enterprise_id}/deductions"): {
            "item_code": item_code,
            "note": "found",
            "evidence_url": "http://e/x",
            "occurred_at": "2026-01-01T00:00:00Z",
        },
        ("post", "/api/enterprises/{enterprise_id}/hidden-dangers"): {
            "title": "leak",
            "is_major": False,
            "deadline": "2027-01-01",
            "found_at": "2026-01-01T00:00:00+08:00",
        },
        ("patch", "/api/hidden-dangers/{danger_id}"): {
            "title": "leak",
            "is_major": True,
            "deadline": "2027-01-01",
            "status": "rectifying",
        },
        ("post", "/api/enterprises/{enterprise_id}/inspection-tasks"): {
            "title": "check",
            "due_date": "2027-01-01",
        },
        ("post", "/api/enterprises/{enterprise_id}/risk-units"): unit,
        ("put", "/api/risk-units/{unit_id}"): unit,
        ("post", "/api/enterprises"): point(
            {"credit_code": "91330200MA99999999", "name": "P", "category": "production"}
        ),
        ("post", "/api/hazard-sources"): area(
            "Polygon",
            {
                "enterprise_credit_code": credit,
                "code": "P-1",
                "unit_name": "store",
                "unit_kind": "storage",
                "population_500m": 1,
                "substances": [{"name": "chlorine", "cas": "7782-50-5", "q": 20}],
            },
        ),
        ("post", "/api/monitoring-points"): point(
            {
                "code": "PMP-1",
                "hazard_source_id": 1,
                "kind": "gas_flammable",
                "unit": "%LEL",
                "level1": 25,
                "level2": 50,
            }
        ),
        ("post", "/api/pipelines"): {
            "type": "Feature",
            "geometry": {"type": "LineString", "coordinates": [[121.5, 29.85], [121.6, 29.9]]},
            "properties": {"code": "PL-P", "name": "p", "medium": "natural_gas"},
        },
        ("post", "/api/zones"): area("Polygon", {"code": "Z-P", "name": "z", "kind": "school"}),
        ("post", "/api/vehicles"): {"plate": "浙B12345", "carrier": "c", "kind": "tanker"},
        ("post", "/api/districts"): area("MultiPolygon", {"code": "339999", "name": "d"})
        | {"geometry": {"type": "MultiPolygon", "coordinates": [_SQUARE]}},
        ("post", "/api/positions"): [
            {
                "vehicle_id": 1,
                "ts": "2026-11-25T08:00:00+08:00",
                "lon": 121.55,
                "lat": 29.87,
                "speed_kmh": 30,
                "heading": 90,
                "alarm_bits": 0,
            }
        ],
        ("post", "/api/readings"): [
            {"point_id": 1, "ts": "2026-11-25T08:00:00+08:00", "value": 1.5}
        ],
    }


def path_defaults(url: str) -> dict[str, str]:
    with psycopg.connect(url) as conn:
        row = conn.execute("SELECT code FROM districts ORDER BY id LIMIT 1").fetchone()
    return {
        "code": row[0] if row else "330206",
        "z": "12",
        "x": "3420",
        "y": "1700",
        "layers": "enterprises",
        "layer": "enterprises",
    }


def leaves(value: Any, path: tuple[Any, ...] = ()) -> Iterator[tuple[Any, ...]]:
    """Paths of every leaf and container of a JSON value (the root excluded)."""
    if path:
        yield path
    if isinstance(value, dict):
        for k, v in value.items():
            yield from leaves(v, (*path, k))
    elif isinstance(value, list):
        for i, v in enumerate(value):
            yield from leaves(v, (*path, i))


def replaced(value: Any, path: tuple[Any, ...], new: Any) -> Any:
    out = copy.deepcopy(value)
    target = out
    for p in path[:-1]:
        target = target[p]
    target[path[-1]] = new
    return out


@dataclass
class Hit:
    op: str
    status: int
    what: str
    method: str
    url: str
    body: bytes | None


#: What would mean database (or Python) text in an answer: issue 8 forbids it.
_DB_TEXT = re.compile(
    r"psycopg|SQLSTATE|Traceback|ERROR:  |DETAIL:  |relation \"|asyncpg|sqlalchemy"
)


@dataclass
class Probe:
    sent: Counter[str] = field(default_factory=Counter)
    statuses: Counter[int] = field(default_factory=Counter)
    hits: list[Hit] = field(default_factory=list)
    leaks: list[Hit] = field(default_factory=list)  # 4xx bodies holding database text
    seconds: float = 0.0


def _encode(value: Any) -> bytes:
    # json.dumps writes NaN/Infinity literals (as many clients do) and \ud800 as an escape.
    return json.dumps(value, ensure_ascii=True).encode()


def _q(v: str) -> str:
    return urllib.parse.quote(v, safe="", errors="surrogatepass")


def _short(v: Any) -> str:
    text = repr(v)
    return text if len(text) <= 40 else text[:30] + f"…({len(text)} chars)"


def run_probe(base: str, key: str, schema: dict[str, Any], url: str) -> Probe:
    probe = Probe()
    bodies = valid_bodies(url)
    defaults = path_defaults(url)
    t0 = time.monotonic()
    headers = {"X-API-Key": key}
    with httpx.Client(base_url=base, headers=headers, timeout=60) as http:

        def send(
            op: str,
            method: str,
            path: str,
            what: str,
            *,
            params: dict[str, str] | None = None,
            content: bytes | None = None,
            extra: dict[str, str] | None = None,
        ) -> None:
            hdrs = dict(extra or {})
            if content is not None:
                hdrs["content-type"] = "application/json"
            if params:  # encoded here: a lone surrogate goes out as (invalid) UTF-8 bytes
                path += "?" + "&".join(f"{_q(k)}={_q(v)}" for k, v in params.items())
            status = 0
            for attempt in (1, 2):  # after a 500 the server may close the kept-alive socket
                try:
                    if path.startswith(STREAM_PATH):
                        with http.stream(method, path, headers=hdrs, timeout=10) as r:
                            status = r.status_code
                    else:
                        r = http.request(method, path, content=content, headers=hdrs)
                        status = r.status_code
                        if status >= 400 and _DB_TEXT.search(r.text):
                            probe.leaks.append(Hit(op, status, what, method, base + path, content))
                    break
                except (httpx.InvalidURL, UnicodeEncodeError, httpx.LocalProtocolError):
                    return  # the client cannot even send it (a lone surrogate in a header)
                except (httpx.ReadError, httpx.RemoteProtocolError) as exc:
                    if attempt == 2:
                        status = 599
                        what += f" (connection lost: {type(exc).__name__})"
                except httpx.HTTPError as exc:
                    status = 599
                    what += f" ({type(exc).__name__})"
                    break
            probe.sent[op] += 1
            probe.statuses[status] += 1
            if status >= 500:
                probe.hits.append(Hit(op, status, what, method, base + path, content))

        for path, ops in schema.get("paths", {}).items():
            for method, op_doc in ops.items():
                if method not in ("get", "post", "put", "patch", "delete"):
                    continue
                op = f"{method.upper()} {path}"
                params = [p for p in op_doc.get("parameters", []) if p["in"] in ("path", "query")]
                base_path: dict[str, str] = {}
                for p in params:
                    if p["in"] != "path":
                        continue
                    enum = p.get("schema", {}).get("enum")
                    base_path[p["name"]] = str(enum[0]) if enum else defaults.get(p["name"], "1")

                def fill(values: dict[str, str], path: str = path) -> str:
                    out = path
                    for n, v in values.items():
                        out = out.replace("{" + n + "}", _q(v))
                    return out

                body = bodies.get((method, path))
                content = _encode(body) if body is not None else None
                for p in params:
                    for v in HOSTILE_TEXT:
                        what = f"{p['in']} {p['name']}={_short(v)}"
                        if p["in"] == "path":
                            if v == "":
                                continue
                            send(
                                op,
                                method.upper(),
                                fill({**base_path, p["name"]: v}),
                                what,
                                content=content,
                            )
                        else:
                            send(
                                op,
                                method.upper(),
                                fill(base_path),
                                what,
                                params={p["name"]: v},
                                content=content,
                            )
                if path == STREAM_PATH:
                    for v in HOSTILE_TEXT:
                        send(
                            op,
                            "GET",
                            path,
                            f"header Last-Event-ID={_short(v)}",
                            extra={"Last-Event-ID": v} if "\x00" not in v else None,
                        )
                if method == "get" or (method == "delete" and body is None):
                    if not params:
                        send(op, method.upper(), path, "no parameters")
                    continue
                # Writes: whole hostile bodies, then each leaf of a valid one replaced.
                for raw in RAW_BODIES:
                    send(op, method.upper(), fill(base_path), f"body {_short(raw)}", content=raw)
                if body is None:
                    continue
                for leaf in leaves(body):
                    for v in HOSTILE_JSON:
                        send(
                            op,
                            method.upper(),
                            fill(base_path),
                            f"body {'.'.join(map(str, leaf))}={_short(v)}",
                            content=_encode(replaced(body, leaf, v)),
                        )
                if isinstance(body, dict):
                    for odd in ("zz_unknown\x00", "zz_\ud800"):
                        send(
                            op,
                            method.upper(),
                            fill(base_path),
                            f"body with an unknown key {odd!r}",
                            content=_encode({**body, odd: 1}),
                        )
    probe.seconds = time.monotonic() - t0
    return probe


# -- report -------------------------------------------------------------------------------------
def curl(method: str, url: str, body: bytes | None, out: Path, n: int) -> str:
    parts = ["curl", "-sS", "-X", method, shlex.quote(url), "-H", "'X-API-Key: $KEY'"]
    if body is not None:
        parts += ["-H", "'content-type: application/json'"]
        if len(body) > 300 or b"\x00" in body:
            f = out / f"repro_{n}.json"
            f.write_bytes(body)
            parts += ["--data-binary", f"@{f}"]
        else:
            parts += ["--data-binary", shlex.quote(body.decode("utf-8", "backslashreplace"))]
    return " ".join(parts)


_EXC_LINE = re.compile(r"^([A-Za-z_][\w.]*(?:Error|Exception|Timeout|Shutdown|Exit))(?::|$)")


def server_errors(log: Path) -> Counter[str]:
    """``request  ->  exception`` of every unhandled error in the server log."""
    found: Counter[str] = Counter()
    lines = log.read_text(errors="replace").splitlines()
    for i, line in enumerate(lines):
        if line.startswith("unhandled error on "):
            exc = "?"
            for nxt in lines[i + 1 : i + 400]:
                if nxt.startswith("unhandled error on "):
                    break
                if _EXC_LINE.match(nxt):
                    exc = nxt.strip()  # the last one is the one that escaped
            found[f"{line[len('unhandled error on ') :][:120]}  ->  {exc[:160]}"] += 1
    return found


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0] if __doc__ else None)
    ap.add_argument("--max-examples", type=int, default=50, help="per operation and phase")
    ap.add_argument("--role", choices=ROLES, default="admin")
    ap.add_argument("--districts", nargs="*", default=None, help="regulator / officer scope")
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--workers", type=int, default=4)
    ap.add_argument("--checks", default=CONTRACT_CHECKS)
    ap.add_argument("--raw-schema", action="store_true", help="fuzz the served schema as is")
    ap.add_argument("--skip-probe", action="store_true", help="schemathesis only")
    ap.add_argument("--skip-schemathesis", action="store_true", help="probe only")
    ap.add_argument("--out", type=Path, default=None, help="working directory (default: a tmp)")
    args = ap.parse_args(argv)

    out = (args.out or Path(tempfile.mkdtemp(prefix="fuzz_api_"))).resolve()
    out.mkdir(parents=True, exist_ok=True)
    t_start = time.monotonic()
    url = prepare_database()
    key = make_fuzz_key(url, args.role, args.districts)
    port = free_port()
    log = out / "server.log"
    server = start_server(url, port, log)
    base = f"http://127.0.0.1:{port}"
    try:
        schema = httpx.get(f"{base}/openapi.json", timeout=30).json()
        ops = [f"{m.upper()} {p}" for p, o in schema["paths"].items() for m in o]
        print(f"fuzz_api: role={args.role} server={base} log={log}")
        print(f"  schema {base}/openapi.json: {len(ops)} operations")
        print(
            f"  SKIPPED by schemathesis: GET {STREAM_PATH} (SSE, never ends) — covered by the"
            " hostile-value probe below and tests/test_fuzz.py"
        )
        location = f"{base}/openapi.json"
        if not args.raw_schema:
            added = augment(schema)
            location = str(out / "openapi.json")
            Path(location).write_text(json.dumps(schema))
            print(
                f"  request bodies added to the schema for {len(added)} operations that read"
                " theirs by hand:"
            )
            for a in added:
                print(f"    {a}")
        hits: list[tuple[str, int, str, str]] = []  # op, status, what, repro
        st: StRun | None = None
        if not args.skip_schemathesis:
            st = run_schemathesis(location, base, key, args, out)
            rep = st.report
            tc = rep.get("test_cases", {})
            print(
                f"\nschemathesis ({st.seconds:.0f} s, exit {st.exit_code}, seed {args.seed},"
                f" --max-examples {args.max_examples}, checks {args.checks}):"
            )
            o = rep.get("operations", {})
            print(
                f"  operations: {o.get('tested', '?')} tested of {o.get('selected', '?')}"
                f" selected ({o.get('total', '?')} in the schema)"
            )
            print(
                f"  test cases: {tc.get('generated', '?')} generated,"
                f" {tc.get('with_failures', '?')} with failures,"
                f" {tc.get('errored', '?')} errored"
            )
            for failure in rep.get("failures", []):
                print(
                    f"  FAILURE {failure.get('code')} {failure.get('title')}:"
                    f" {failure.get('count')} — {', '.join(failure.get('operations', []))}"
                )
            for err in rep.get("errors", []):
                # A schemathesis/hypothesis error while *generating* (no request was answered
                # with it): reported, but it is no server error and does not fail the run.
                print(f"  TOOL ERROR (not a server response) {json.dumps(err)[:300]}")
            _print_st_errors(st.text)
            if rep.get("failures") or rep.get("errors"):
                print(f"  details and curl reproductions: {out / 'schemathesis.txt'}")
                _print_st_failures(st.text)
            examples = dict(st.examples_by_op)
            low = sorted(examples.items(), key=lambda kv: kv[1])[:5]
            print(
                f"  examples per operation: min {low[0][1] if low else 0}"
                f" ({', '.join(k for k, _ in low[:3])}), total {sum(examples.values())}"
            )
        if not args.skip_probe:
            probe = run_probe(base, key, schema, url)
            print(
                f"\nhostile-value probe ({probe.seconds:.0f} s): {sum(probe.sent.values())}"
                f" requests over {len(probe.sent)} operations; statuses"
                f" {dict(sorted(probe.statuses.items()))}"
            )
            by_op: dict[str, list[Hit]] = defaultdict(list)
            for h in probe.hits:
                by_op[h.op].append(h)
            for op, hs in sorted(by_op.items()):
                print(f"  {op}: {len(hs)} server errors")
                for n, h in enumerate(hs[:5]):
                    repro = curl(h.method, h.url, h.body, out, len(hits) + n)
                    print(f"    {h.status} {h.what}\n      {repro}")
                for h in hs:
                    hits.append((op, h.status, h.what, ""))
            print(f"  4xx bodies holding database text: {len(probe.leaks)}")
            for n, h in enumerate(probe.leaks[:10]):
                repro = curl(h.method, h.url, h.body, out, 900 + n)
                print(f"    {h.op} {h.status} {h.what}\n      {repro}")
                hits.append((h.op, h.status, h.what + " (database text)", ""))
        outage = log.read_text(errors="replace").count("database unavailable on ")
        if outage:
            print(
                f"\nnote: the server logged {outage} 'database unavailable' (503) answers: the"
                " PostgreSQL cluster was unreachable or restarting during the run (not an input"
                " error; re-run)."
            )
        errors = server_errors(log)
        print(f"\nserver log: {sum(errors.values())} unhandled errors")
        for line, n in errors.most_common(40):
            print(f"  {n:4d} × {line}")
        st_failed = bool(st and st.report.get("failures"))
        bad = st_failed or bool(hits) or bool(errors)
        print(
            f"\n{'FAIL' if bad else 'OK'}: {len(hits)} probe 5xx, schemathesis"
            f" {'failures' if st_failed else 'clean'}, total {time.monotonic() - t_start:.0f} s"
        )
        return 1 if bad else 0
    finally:
        server.terminate()
        try:
            server.wait(timeout=15)
        except subprocess.TimeoutExpired:
            server.kill()


def _print_st_errors(text: str) -> None:
    """Operation and message of each error in schemathesis' ERRORS section."""
    start = text.find("= ERRORS =")
    if start < 0:
        return
    end = min(
        i
        for i in (text.find("= FAILURES =", start), text.find("= SUMMARY =", start), len(text))
        if i > 0
    )
    lines = [line for line in text[start:end].splitlines()[1:] if line.strip()]
    for i, line in enumerate(lines):
        if line.startswith("___"):
            print(f"    {line.strip('_ ')}: {' / '.join(lines[i + 1 : i + 3])[:200]}")


def _print_st_failures(text: str) -> None:
    """The FAILURES section of schemathesis' own output (it holds the curl reproductions)."""
    start = text.find("= FAILURES =")
    end = text.find("= SUMMARY =")
    if start >= 0:
        section = text[start : end if end > start else None]
        print("\n".join("    " + line for line in section.splitlines()[:200]))


if __name__ == "__main__":
    raise SystemExit(main())
