"""/openapi.json as the server really answers: errors are always ``application/json``.

FastAPI documents a route's extra responses (``responses={404: {"model": ErrorBody}}``) under
the route's own media type, so a GeoJSON route would claim its 404 is ``application/geo+json``
and a CSV route that it is ``text/csv``. Every error body is the house problem body
(geo_api/errors.py) sent as JSON, whatever the route; this moves them where they belong, once,
when the document is first built.
"""

from __future__ import annotations

from typing import Any

from fastapi import FastAPI

JSON = "application/json"


def errors_as_json(doc: dict[str, Any]) -> dict[str, Any]:
    """Each 4xx/5xx answer's schema under ``application/json`` only (in place)."""
    for item in doc.get("paths", {}).values():
        for op in item.values():
            if not isinstance(op, dict):
                continue
            for status, answer in op.get("responses", {}).items():
                content = answer.get("content")
                if not status.startswith(("4", "5")) or not content or list(content) == [JSON]:
                    continue
                schema = next((c["schema"] for c in content.values() if c.get("schema")), None)
                answer["content"] = {JSON: {"schema": schema}} if schema else {}
    return doc


def install_contract_openapi(app: FastAPI) -> None:
    """``app.openapi`` builds the document as usual, then puts the error bodies right."""
    build = app.openapi

    def openapi() -> dict[str, Any]:
        if app.openapi_schema is None:
            app.openapi_schema = errors_as_json(build())
        return app.openapi_schema

    app.openapi = openapi  # type: ignore[method-assign]
