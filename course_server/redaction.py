"""Keep tokens out of the server's logs: ``?token=…`` is logged as ``?token=[REDACTED]``.

uvicorn logs every request with its full query string: HTTP requests on ``uvicorn.access``,
WebSocket handshakes (``"WebSocket /secure/ws?token=…" [accepted]``) on ``uvicorn.error``. A
token in a URL therefore lands in log files, which are kept longer and read by more people
than the token was ever meant for. ``install()`` puts a filter on those loggers that rewrites
the record before any handler formats it.
"""

from __future__ import annotations

import contextlib
import logging
import re
from collections.abc import Iterable, Iterator

SECRET_PARAMETERS = ("token", "access_token")
UVICORN_LOGGERS = ("uvicorn.error", "uvicorn.access")
REDACTED = "[REDACTED]"

_names = "|".join(map(re.escape, SECRET_PARAMETERS))
_secret_in_query = re.compile(rf"(?P<name>[?&](?:{_names})=)[^&\s\"']*", re.IGNORECASE)


def redact(text: str) -> str:
    """``/secure/ws?token=abc&x=1`` → ``/secure/ws?token=[REDACTED]&x=1``."""
    return _secret_in_query.sub(rf"\g<name>{REDACTED}", text)


class RedactTokens(logging.Filter):
    """Rewrites secret query parameters in a record's message and arguments; drops nothing.

    The arguments keep their places: uvicorn's access formatter unpacks them by position.
    """

    def filter(self, record: logging.LogRecord) -> bool:
        if isinstance(record.msg, str):
            record.msg = redact(record.msg)
        if isinstance(record.args, tuple):
            record.args = tuple(redact(a) if isinstance(a, str) else a for a in record.args)
        return True


def install(names: Iterable[str] = UVICORN_LOGGERS) -> None:
    """Add the filter to each logger once; uvicorn's logging set-up keeps existing filters."""
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
