"""Request bodies, read with a size limit before they are held whole in memory."""

from __future__ import annotations

import datetime as dt
import json
from typing import Annotated, Any, Final

from fastapi import Request
from pydantic import AfterValidator

from geo_api.errors import BadRequest, FieldError, InvalidInput, PayloadTooLarge


async def read_body(request: Request, limit: int) -> bytes:
    """The raw body; 413 as soon as it declares or streams more than ``limit`` bytes."""
    too_large = PayloadTooLarge(
        f"body: larger than {limit} bytes", [FieldError("body", f"limit is {limit} bytes")]
    )
    declared = request.headers.get("content-length", "")
    if declared.isdigit() and int(declared) > limit:
        raise too_large
    chunks: list[bytes] = []
    size = 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > limit:
            raise too_large
        chunks.append(chunk)
    return b"".join(chunks)


async def read_json(request: Request, limit: int) -> Any:
    """The body as JSON (400 naming ``body`` when it is not; 422 naming the member when a
    string holds a NUL character, which no PostgreSQL text column can store)."""
    raw = await read_body(request, limit)
    try:
        doc = json.loads(raw)
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise BadRequest(
            f"body: not valid JSON ({exc})", [FieldError("body", "not valid JSON")]
        ) from None
    except RecursionError:
        raise BadRequest(
            "body: JSON nested too deeply", [FieldError("body", "nested too deeply")]
        ) from None
    where = nul_path(doc)
    if where is not None:
        raise InvalidInput(f"{where}: contains a NUL character", [FieldError(where, NUL_REASON)])
    return doc


NUL_REASON = "contains a NUL character"


def nul_path(doc: Any, path: str = "") -> str | None:
    """The dotted path (``properties.name``, ``0.ts``) of the first string or key holding
    U+0000 in a parsed JSON document, or None."""
    stack: list[tuple[str, Any]] = [(path, doc)]
    while stack:
        at, value = stack.pop()
        if isinstance(value, str):
            if "\x00" in value:
                return at or "body"
        elif isinstance(value, dict):
            for k, v in value.items():
                name = f"{at}.{k}" if at else str(k)
                if "\x00" in k:
                    return name
                stack.append((name, v))
        elif isinstance(value, list):
            stack.extend((f"{at}.{i}" if at else str(i), v) for i, v in enumerate(value))
    return None


def no_nul(value: Any) -> Any:
    """Pydantic validator: PostgreSQL text cannot hold NUL, so refuse it as input (422)."""
    if isinstance(value, str) and "\x00" in value:
        raise ValueError(NUL_REASON)
    return value


#: A string parameter or body field that reaches SQL: no NUL characters.
Text = Annotated[str, AfterValidator(no_nul)]

#: Dates and times the database and ``datetime`` arithmetic (a day either side, any UTC
#: offset) can both hold. Wider than any data this service keeps.
DAY_MIN: Final = dt.date(1900, 1, 1)
DAY_MAX: Final = dt.date(2999, 12, 31)


def day_in_range(value: Any) -> Any:
    """Pydantic validator for ``date`` / ``datetime`` values: 1900-01-01 … 2999-12-31."""
    if value is None:
        return value
    day = value.date() if isinstance(value, dt.datetime) else value
    if not DAY_MIN <= day <= DAY_MAX:
        raise ValueError(f"must be between {DAY_MIN} and {DAY_MAX}")
    return value


Day = Annotated[dt.date, AfterValidator(day_in_range)]
Moment = Annotated[dt.datetime, AfterValidator(day_in_range)]


def batch_body_doc(what: str) -> dict[str, Any]:
    """OpenAPI ``requestBody`` of the batch ingest endpoints (JSON array, NDJSON or CSV)."""
    return {
        "requestBody": {
            "required": True,
            "description": f"{what} as a JSON array (application/json), NDJSON "
            "(application/x-ndjson) or CSV with a header (text/csv). `ts` is ISO 8601 with an "
            "offset.",
            "content": {
                "application/json": {"schema": {"type": "array", "items": {"type": "object"}}},
                "application/x-ndjson": {"schema": {"type": "string"}},
                "text/csv": {"schema": {"type": "string"}},
            },
        }
    }
