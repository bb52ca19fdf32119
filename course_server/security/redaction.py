"""Keep tokens and cookies out of the logs: ``?token=…`` is logged as ``?token=[REDACTED]``.

uvicorn logs every request with its full query string: HTTP requests on ``uvicorn.access``,
WebSocket handshakes (``"WebSocket /secure/ws?token=…" [accepted]``) on ``uvicorn.error``. At
debug level the ``websockets`` library logs each handshake's headers, the session cookie
included, and at trace level uvicorn logs each ASGI scope. A secret in a log lands in files that
are kept longer and read by more people than the secret was ever meant for.

So every log line is rewritten before any handler formats it (``redact``): the value of a
``token`` or ``access_token`` parameter however it is spelled (``%74oken``, ``ToKeN``, repeated),
the value of a ``Cookie``, ``Set-Cookie`` or ``Authorization`` header however it is printed (a
header line, a tuple or a dict), a ``"token"`` field of a JSON text, and anything shaped like a
JWT, wherever it appears. ``install()`` puts this on every record the process creates (a record
factory) and, as a filter, on uvicorn's loggers.
"""

from __future__ import annotations

import contextlib
import logging
import re
from collections.abc import Callable, Iterable, Iterator
from typing import Any
from urllib.parse import unquote_plus

SECRET_PARAMETERS = ("token", "access_token")
SECRET_HEADERS = ("authorization", "proxy-authorization", "cookie", "set-cookie")
UVICORN_LOGGERS = ("uvicorn.error", "uvicorn.access")
REDACTED = "[REDACTED]"

_headers = "|".join(map(re.escape, SECRET_HEADERS))
_parameters = "|".join(map(re.escape, SECRET_PARAMETERS))
# ``Cookie: session=…`` as a header line (websockets' debug log prints one per header).
_header_line = re.compile(rf"(?P<keep>\b(?:{_headers})\s*:\s*)[^\r\n]*", re.IGNORECASE)
# ``(b'cookie', b'session=…')`` or ``'cookie': '…'``: headers inside a logged scope or dict.
_header_repr = re.compile(
    rf"(?P<keep>['\"](?:{_headers})['\"]\s*[,:]\s*b?)(?P<q>['\"])(?:\\.|(?!(?P=q)).)*(?P=q)",
    re.IGNORECASE,
)
# ``name=value`` after a query string's (or a scope's) separators; the name is checked decoded.
_pair = re.compile(r"(?P<lead>^|[?&;'\"\s(,])(?P<name>[^=&;?#\s'\"]+)=(?P<value>[^&;#\s'\"]*)")
# ``"token": "…"``: the first-message auth frame, as the websockets debug log prints it.
_json_field = re.compile(
    rf"(?P<keep>(?P<q>['\"])(?:{_parameters})(?P=q)\s*:\s*)(?P<v>['\"])[^'\"]*(?P=v)",
    re.IGNORECASE,
)
# A JWT (a JSON header, base64url: it starts ``eyJ``), whatever carries it.
_jwt = re.compile(r"eyJ[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+\.[A-Za-z0-9_-]*")


def _secret_name(name: str) -> bool:
    """Is this parameter name, once decoded as a server would (repeatedly), a secret's?"""
    for _ in range(3):  # %2574oken → %74oken → token
        decoded = unquote_plus(name)
        if decoded == name:
            break
        name = decoded
    return name.strip().lower() in SECRET_PARAMETERS


def _pair_redacted(match: re.Match[str]) -> str:
    if not _secret_name(match["name"]):
        return match[0]
    return f"{match['lead']}{match['name']}={REDACTED}"


def redact(text: str) -> str:
    """``/secure/ws?token=abc&x=1`` → ``/secure/ws?token=[REDACTED]&x=1``; cookies, JWTs too."""
    text = _header_line.sub(rf"\g<keep>{REDACTED}", text)
    text = _header_repr.sub(rf"\g<keep>\g<q>{REDACTED}\g<q>", text)
    text = _pair.sub(_pair_redacted, text)
    text = _json_field.sub(rf"\g<keep>\g<v>{REDACTED}\g<v>", text)
    return _jwt.sub(REDACTED, text)


def _redact_argument(argument: Any) -> Any:
    if isinstance(argument, (int, float)) or argument is None:
        return argument  # a %d stays a number
    text = argument if isinstance(argument, str) else str(argument)
    clean = redact(text)
    return argument if clean == text else clean


def scrub(record: logging.LogRecord) -> None:
    """Redact a record in place: its arguments, its message, its traceback."""
    if isinstance(record.args, tuple) and record.args:
        # The arguments keep their places: uvicorn's access formatter unpacks them by position.
        record.args = tuple(_redact_argument(a) for a in record.args)
    elif not record.args and isinstance(record.msg, str):
        record.msg = redact(record.msg)  # a template with arguments is checked once formatted
    try:
        message = record.getMessage()
    except Exception:  # a broken format string: the handler reports it, as without us
        return
    if redact(message) != message:  # a secret made of several arguments: keep the text only
        record.msg, record.args = redact(message), None
        record.__dict__.pop("color_message", None)  # uvicorn's coloured copy of the template
    if record.exc_info and not record.exc_text:
        text = logging.Formatter().formatException(record.exc_info)
        if redact(text) != text:
            record.exc_text = redact(text)
    if record.stack_info:
        record.stack_info = redact(record.stack_info)


class RedactTokens(logging.Filter):
    """Rewrites secrets in a record's message, arguments and traceback; drops nothing."""

    def filter(self, record: logging.LogRecord) -> bool:
        scrub(record)
        return True


def _redacting(factory: Callable[..., logging.LogRecord]) -> Callable[..., logging.LogRecord]:
    def create(*args: Any, **kwargs: Any) -> logging.LogRecord:
        record = factory(*args, **kwargs)
        scrub(record)
        return record

    create.redacts = True  # type: ignore[attr-defined]  # a marker on the function object
    return create


def install(names: Iterable[str] = (*UVICORN_LOGGERS, "uvicorn.asgi")) -> None:
    """Redact every record this process creates, and add the filter to each logger once.

    The record factory covers every logger and handler (a debug log of ``websockets``, a test's
    capture); the filters cover uvicorn's loggers even if another factory replaces ours later.
    """
    factory = logging.getLogRecordFactory()
    if not getattr(factory, "redacts", False):
        logging.setLogRecordFactory(_redacting(factory))
    for name in names:
        logger = logging.getLogger(name)
        if not any(isinstance(f, RedactTokens) for f in logger.filters):
            logger.addFilter(RedactTokens())


class _Lines(logging.Handler):
    def __init__(self, lines: list[str]) -> None:
        super().__init__(logging.INFO)
        self.lines = lines

    def emit(self, record: logging.LogRecord) -> None:
        self.lines.append(record.getMessage())


@contextlib.contextmanager
def captured(names: Iterable[str] = UVICORN_LOGGERS) -> Iterator[list[str]]:
    """Collect what these loggers log at INFO and above, instead of printing it.

    For notebooks and tests: the list fills while the block runs (lines logged by a server
    thread included) and the loggers are put back as they were afterwards.
    """
    lines: list[str] = []
    handler = _Lines(lines)
    loggers = [logging.getLogger(name) for name in names]
    saved = [(logger.level, logger.propagate) for logger in loggers]
    for logger in loggers:
        logger.addHandler(handler)
        logger.setLevel(logging.INFO)
        logger.propagate = False  # not to the console handler uvicorn put on "uvicorn"
    try:
        yield lines
    finally:
        for logger, (level, propagate) in zip(loggers, saved, strict=True):
            logger.removeHandler(handler)
            logger.setLevel(level)
            logger.propagate = propagate
