"""Request bodies, read with a size limit before they are held whole in memory."""

from __future__ import annotations

import datetime as dt
import json
from typing import Annotated, Any, Final, TypeVar

from fastapi import Request
from fastapi.encoders import jsonable_encoder
from fastapi.responses import JSONResponse
from pydantic import AfterValidator, BaseModel, ValidationError

from geo_api.errors import BadRequest, FieldError, InvalidInput, PayloadTooLarge, invalid_input


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


async def read_json(request: Request, limit: int, check_text: bool = True) -> Any:
    """The body as JSON (400 naming ``body`` when it is not; 422 naming the member when a
    string holds what no PostgreSQL text column can store: NUL, a lone surrogate).

    ``check_text=False`` leaves that to a caller whose own validation names the feature too
    (the collections: ``layers.imports.payload``)."""
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
    where = nul_path(doc) if check_text else None
    if where is not None:
        raise InvalidInput(f"{where}: {NUL_REASON}", [FieldError(where, NUL_REASON)])
    return doc


NUL_REASON = "contains a NUL character or a lone UTF-16 surrogate"


M = TypeVar("M", bound=BaseModel)


async def read_model(request: Request, model: type[M], *, optional: bool = False) -> M:
    """The body as one JSON object validated by ``model`` (422 naming each bad field);
    ``optional``: no body at all means the model's defaults."""
    if optional and not await request.body():
        return model()
    body = await read_json(request, request.app.state.settings.server.max_body_bytes)
    if not isinstance(body, dict):
        raise InvalidInput("body: expected a JSON object", [FieldError("body", "not an object")])
    try:
        return model.model_validate(body)
    except ValidationError as exc:
        raise invalid_input(exc) from None


def text_problem(value: str) -> bool:
    """True when PostgreSQL cannot store ``value`` as text: a NUL, or a lone surrogate
    (``"\\ud800"`` is legal JSON but is no Unicode character, so it has no UTF-8 form)."""
    if "\x00" in value:
        return True
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:
        return True
    return False


def nul_path(doc: Any, path: str = "") -> str | None:
    """The dotted path (``properties.name``, ``0.ts``) of the first string or key of a parsed
    JSON document that PostgreSQL cannot store as text (see ``text_problem``), or None."""
    stack: list[tuple[str, Any]] = [(path, doc)]
    while stack:
        at, value = stack.pop()
        if isinstance(value, str):
            if text_problem(value):
                return at or "body"
        elif isinstance(value, dict):
            for k, v in value.items():
                name = f"{at}.{k}" if at else str(k)
                if text_problem(k):
                    return name.encode("utf-8", "backslashreplace").decode()
                stack.append((name, v))
        elif isinstance(value, list):
            stack.extend((f"{at}.{i}" if at else str(i), v) for i, v in enumerate(value))
    return None


def no_nul(value: Any) -> Any:
    """Pydantic validator: what PostgreSQL text cannot hold is refused as input (422)."""
    if isinstance(value, str) and text_problem(value):
        raise ValueError(NUL_REASON)
    return value


#: A string parameter or body field that reaches SQL: no NUL, no lone surrogate.
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


def json_response(body: Any, status_code: int = 200) -> JSONResponse:
    """A JSON answer of database rows (datetimes, decimals encoded the FastAPI way)."""
    return JSONResponse(jsonable_encoder(body), status_code=status_code)


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


class BodyLimit:
    """ASGI guard: no request body above ``limit`` bytes reaches any route (413, JSON).

    Routes that read bodies themselves (``read_body``) check the same limit; this covers the
    ones whose body FastAPI parses into a model before any handler runs. A declared
    Content-Length is checked up front (uvicorn holds the client to it); a chunked body is
    buffered up to the limit and then replayed to the app, so nothing larger is ever held.
    """

    def __init__(self, app: Any, limit: int) -> None:
        self.app = app
        self.limit = limit

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        if scope["type"] != "http" or scope["method"] in ("GET", "HEAD", "OPTIONS"):
            await self.app(scope, receive, send)
            return
        headers = dict(scope["headers"])
        declared = headers.get(b"content-length", b"")
        if declared.isdigit():
            if int(declared) > self.limit:
                await self._refuse(send)
                return
            await self.app(scope, receive, send)
            return
        chunks: list[bytes] = []
        size = 0
        while True:
            message = await receive()
            if message["type"] != "http.request":
                return  # the client went away
            size += len(message.get("body", b""))
            if size > self.limit:
                await self._refuse(send)
                return
            chunks.append(message.get("body", b""))
            if not message.get("more_body", False):
                break
        body = b"".join(chunks)
        replayed = False

        async def replay() -> Any:
            nonlocal replayed
            if not replayed:
                replayed = True
                return {"type": "http.request", "body": body, "more_body": False}
            return await receive()

        await self.app(scope, replay, send)

    async def _refuse(self, send: Any) -> None:
        reason = f"limit is {self.limit} bytes"
        payload = json.dumps(
            {
                "detail": f"body: larger than {self.limit} bytes",
                "errors": [{"field": "body", "reason": reason}],
            }
        ).encode()
        await send(
            {
                "type": "http.response.start",
                "status": 413,
                "headers": [
                    (b"content-type", b"application/json"),
                    (b"content-length", str(len(payload)).encode()),
                    (b"connection", b"close"),
                ],
            }
        )
        await send({"type": "http.response.body", "body": payload})
