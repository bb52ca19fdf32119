"""Tokens stay out of the logs (``security.redaction``), checked on a real server's log."""

from __future__ import annotations

import logging
from collections.abc import Iterator

import httpx
import pytest
from conftest import eventually, wait_timeout

from course_server import RunningServer, Settings, start
from course_server.clients.websocket import attempt
from course_server.security.redaction import RedactTokens, captured, install, redact
from course_server.security.tokens import create_access_token

pytestmark = pytest.mark.anyio

SECRET = "lesson-06-tests-" * 4


@pytest.mark.parametrize(
    ("logged", "shown"),
    [
        ("/secure/ws?token=abc.def.ghi", "/secure/ws?token=[REDACTED]"),
        ("/a?x=1&token=abc&y=2", "/a?x=1&token=[REDACTED]&y=2"),
        ("/a?access_token=abc", "/a?access_token=[REDACTED]"),
        ("/a?TOKEN=abc", "/a?TOKEN=[REDACTED]"),
        ('"WebSocket /a?token=abc" 401', '"WebSocket /a?token=[REDACTED]" 401'),
        ("/a?tokens=abc&mytoken=abc", "/a?tokens=abc&mytoken=abc"),
        ("/a?last_id=3", "/a?last_id=3"),
    ],
)
def test_redact(logged: str, shown: str) -> None:
    assert redact(logged) == shown


def test_filter_redacts_arguments_in_place() -> None:
    """uvicorn's access formatter unpacks the arguments by position: they must stay put."""
    record = logging.LogRecord(
        "uvicorn.access", logging.INFO, __file__, 1, '%s - "%s %s" %d',
        ("127.0.0.1:5000", "GET", "/healthz?token=abc", 200), None,
    )  # fmt: skip
    assert RedactTokens().filter(record) is True
    assert record.args == ("127.0.0.1:5000", "GET", "/healthz?token=[REDACTED]", 200)


def test_install_adds_one_filter_per_logger() -> None:
    install(["course-test-logger"])
    install(["course-test-logger"])
    filters = logging.getLogger("course-test-logger").filters
    assert [type(f) for f in filters] == [RedactTokens]


def test_captured_puts_the_loggers_back() -> None:
    logger = logging.getLogger("course-test-captured")
    logger.setLevel(logging.WARNING)
    with captured([logger.name]) as lines:
        logger.info("seen")
    logger.info("not seen")
    assert lines == ["seen"]
    assert (logger.level, logger.propagate, logger.handlers) == (logging.WARNING, True, [])


@pytest.fixture(scope="module")
def server() -> Iterator[RunningServer]:
    """A server that logs at INFO, like ``python -m course_server`` does by default."""
    settings = Settings(jwt_secret=SECRET, log_level="info")
    with start(name=f"test-{__name__}", settings=settings) as running:
        yield running


@pytest.fixture
def lines() -> Iterator[list[str]]:
    with captured() as collected:
        yield collected


async def logged(lines: list[str], fragment: str) -> str:
    """The first line containing ``fragment``, once the server has logged it."""

    async def found() -> bool:
        return any(fragment in line for line in lines)

    await eventually(found)
    return next(line for line in lines if fragment in line)


async def test_accepted_handshake_is_logged_without_its_token(
    server: RunningServer, lines: list[str]
) -> None:
    token = create_access_token("alice", SECRET, 60)
    await attempt(server.ws(f"/secure/ws?token={token}"), '{"type":"refresh","token":"x"}')
    line = await logged(lines, "[accepted]")
    assert '"WebSocket /secure/ws?token=[REDACTED]" [accepted]' in line
    assert all(token not in line for line in lines)


async def test_refused_handshake_is_logged_without_its_token(
    server: RunningServer, lines: list[str]
) -> None:
    await attempt(server.ws("/secure/ws?token=forged.token.value"))
    line = await logged(lines, "/secure/ws?")
    assert line.endswith('"WebSocket /secure/ws?token=[REDACTED]" 401')
    assert all("forged.token.value" not in line for line in lines)


async def test_http_access_log_is_redacted_too(server: RunningServer, lines: list[str]) -> None:
    async with httpx.AsyncClient(timeout=wait_timeout()) as http:
        await http.get(server.url("/healthz?token=s3cret&x=1"))
    line = await logged(lines, "GET /healthz")
    assert '"GET /healthz?token=[REDACTED]&x=1 HTTP/1.1" 200' in line
    assert all("s3cret" not in line for line in lines)
