"""Request bodies, read with a size limit before they are held whole in memory."""

from __future__ import annotations

import json
from typing import Any

from fastapi import Request

from geo_api.errors import BadRequest, FieldError, PayloadTooLarge


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
    """The body as JSON (400 naming ``body`` when it is not)."""
    raw = await read_body(request, limit)
    try:
        return json.loads(raw)
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise BadRequest(
            f"body: not valid JSON ({exc})", [FieldError("body", "not valid JSON")]
        ) from None


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
