"""Credentials never reach a log line or an error body (issue 18 §1).

:func:`redact` is the one rule: API keys (``grk_…``) keep their first twelve characters — the
prefix ``GET /api/keys`` shows, so an operator can still tell which key called — and lose the
rest; signed tokens (anything JWT-shaped: session cookies, bearer tokens, tile tokens) and the
values of credential-carrying query parameters (``key``, ``t``, ``token``, …), ``Authorization``
and ``X-API-Key`` headers are replaced by ``…``.

:func:`install_log_redaction` applies it to every log record made in the process, whichever
logger makes it — uvicorn's access and error loggers, ours, httpx's — by wrapping the record
factory: a filter on some handlers would miss the handlers uvicorn (re)configures after us and
the child loggers that only propagate. :class:`RedactingFilter` is the same rule for a logging
configuration of an operator's own.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Callable
from typing import Any, Final

from layers.access.keys import KEY_PREFIX, SHOWN_CHARS

ELLIPSIS: Final = "…"

_KEY = re.escape(KEY_PREFIX) + r"[A-Za-z0-9_\-]{4,}"
_JWT = r"eyJ[A-Za-z0-9_\-]{2,}\.[A-Za-z0-9_\-]{2,}\.[A-Za-z0-9_\-]*"
#: Query parameters that carry credentials here or in URLs we log (``tk``: Tianditu's key in a
#: base-map URL). ``t`` is the tile token.
_PARAMS = r"key|api_key|apikey|t|tk|token|access_token|id_token|refresh_token|session|password"
_PATTERN: Final = re.compile(
    rf"(?P<param>(?<![A-Za-z0-9_])(?:{_PARAMS})=)(?P<pvalue>[^&\s\"'<>]+)"
    rf"|(?P<bearer>(?i:\b(?:bearer|basic))\s+)(?P<bvalue>[A-Za-z0-9_\-.~+/=]+)"
    rf"|(?P<header>(?i:x-api-key)[\"']?\s*[:=]\s*[\"']?)(?P<hvalue>[^\s\"',;}}]+)"
    rf"|(?P<userinfo>://[^/\s:@]+:)(?P<uvalue>[^@\s/]+)(?=@)"
    rf"|(?P<key>{_KEY})"
    rf"|(?P<jwt>{_JWT})"
)
#: Cheap pre-check: a line holding none of these needs no regular expression.
_HINTS: Final = (KEY_PREFIX, "eyJ", "=", "earer", "asic", "pi-key", "PI-KEY", "pi-Key", "@")


def _hide(value: str) -> str:
    """A credential's value as it may be shown: a key's listed prefix, else nothing."""
    if value.startswith(KEY_PREFIX) and len(value) > SHOWN_CHARS:
        return value[:SHOWN_CHARS] + ELLIPSIS
    return ELLIPSIS


def _replace(m: re.Match[str]) -> str:
    if m["param"] is not None:
        return m["param"] + _hide(m["pvalue"])
    if m["bearer"] is not None:
        return m["bearer"] + _hide(m["bvalue"])
    if m["header"] is not None:
        return m["header"] + _hide(m["hvalue"])
    if m["userinfo"] is not None:  # a password in a URL (a database URL in an error)
        return m["userinfo"] + ELLIPSIS
    return _hide(m[0])


def redact(text: str) -> str:
    """``text`` with every credential in it replaced (see the module's docstring)."""
    if not any(hint in text for hint in _HINTS):
        return text
    return _PATTERN.sub(_replace, text)


def redact_value(value: Any) -> Any:
    """A log argument or body value with credentials removed; numbers and other types whose
    text holds none are passed on unchanged (formatters such as uvicorn's access log rely on
    their arguments' types)."""
    if isinstance(value, str):
        return redact(value)
    if value is None or isinstance(value, (bool, int, float)):
        return value
    text = str(value)
    cleaned = redact(text)
    return value if cleaned == text else cleaned


_traceback_formatter = logging.Formatter()


#: Loggers whose formatter reads the arguments themselves (uvicorn's access log unpacks them
#: into client, method, path, version, status): their arguments are redacted one by one.
ARGUMENT_FORMATTED: Final = frozenset({"uvicorn.access"})


def redact_record(record: logging.LogRecord) -> None:
    """Redact a record in place: its message, its arguments, its traceback and stack."""
    if record.args and record.name in ARGUMENT_FORMATTED:
        if isinstance(record.args, tuple):
            record.args = tuple(redact_value(a) for a in record.args)
    elif record.args:
        # The message as it will read: ``key=%s`` and its argument only make a credential
        # together, and the format string's own ``%s`` must not be taken for one.
        try:
            text = record.msg % record.args if isinstance(record.msg, str) else None
        except (TypeError, ValueError, KeyError):
            text = None
        if text is None:
            record.args = (
                tuple(redact_value(a) for a in record.args)
                if isinstance(record.args, tuple)
                else {k: redact_value(v) for k, v in record.args.items()}
            )
        else:
            cleaned = redact(text)
            if cleaned != text:  # untouched records keep their arguments
                record.msg, record.args = cleaned, None
    elif isinstance(record.msg, str):
        record.msg = redact(record.msg)
    elif record.msg is not None and not isinstance(record.msg, (int, float)):
        record.msg = redact_value(record.msg)
    if record.exc_info and record.exc_info[0] is not None and not record.exc_text:
        # Formatted once here, redacted; formatters use ``exc_text`` when it is set.
        record.exc_text = redact(_traceback_formatter.formatException(record.exc_info))
    if record.stack_info:
        record.stack_info = redact(record.stack_info)


class RedactingFilter(logging.Filter):
    """The rule as a logging filter (for handlers of a logging configuration)."""

    def filter(self, record: logging.LogRecord) -> bool:
        redact_record(record)
        return True


def install_log_redaction() -> None:
    """Redact every log record of this process at birth (idempotent)."""
    current: Callable[..., logging.LogRecord] = logging.getLogRecordFactory()
    if getattr(current, "georisk_redacts", False):
        return

    def factory(*args: Any, **kwargs: Any) -> logging.LogRecord:
        record = current(*args, **kwargs)
        redact_record(record)
        return record

    factory.georisk_redacts = True  # type: ignore[attr-defined]
    logging.setLogRecordFactory(factory)
