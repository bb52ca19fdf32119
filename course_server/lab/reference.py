"""The quick reference's tables (notebook 11), read from the code that holds each fact.

Close codes come from ``CloseCode`` and the comments beside its members, frame types from
``websockets``, settings from ``Settings`` and the settings module's own table, endpoints from the
app's routes. The README's endpoint table is checked against ``endpoints`` too.
"""

from __future__ import annotations

import dataclasses
import inspect
import re
from collections.abc import Iterable
from typing import NamedTuple

from fastapi import FastAPI
from fastapi.routing import APIRoute, APIWebSocketRoute
from websockets.frames import Opcode

from course_server import settings as settings_module
from course_server.realtime import closecodes
from course_server.realtime.closecodes import CloseCode
from course_server.settings import Settings

Row = tuple[object, ...]

FRAME_KINDS = {
    "CONT": "continuation of a fragmented message",
    "TEXT": "a UTF-8 text message (JSON travels here)",
    "BINARY": "a binary message",
    "CLOSE": "close: a 2-byte code and up to 123 bytes of reason",
    "PING": "ping: answered with a pong; the server's heartbeat",
    "PONG": "pong: the answer to a ping",
}


class Endpoint(NamedTuple):
    """One route: ``WS`` or its HTTP methods, the full path and the handler's name."""

    method: str
    path: str
    name: str


def markdown_table(header: tuple[str, ...], rows: Iterable[Row]) -> str:
    """A Markdown table; a ``|`` inside a cell is escaped."""
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    lines += ["| " + " | ".join(str(c).replace("|", r"\|") for c in row) + " |" for row in rows]
    return "\n".join(lines)


def close_codes() -> list[Row]:
    """(code, name, meaning) for every ``CloseCode``; the meaning is its definition's comment."""
    member = r"^\s+(\w+) = \d+(?:[ \t]+#[ \t]*(.*))?$"
    comments = dict(re.findall(member, inspect.getsource(closecodes), re.M))
    return [
        (int(code), name, comments.get(name) or "RFC 6455")
        for name, code in CloseCode.__members__.items()
    ]


def frame_types() -> list[Row]:
    """(opcode, frame, what it carries) for every RFC 6455 opcode ``websockets`` knows."""
    return [(f"0x{op.value:X}", op.name, FRAME_KINDS[op.name]) for op in Opcode]


def _default(field: dataclasses.Field[object]) -> object:
    # The signing key is random per process: showing one would only mislead.
    if field.name == "jwt_secret":
        return "random per process"
    if field.default_factory is not dataclasses.MISSING:
        return field.default_factory()
    return field.default


def settings() -> list[Row]:
    """(variable, meaning, default) for every ``Settings`` field."""
    table = settings_module.__doc__ or ""
    meanings = dict(re.findall(r"^\| (COURSE_\w+) \| (.*?) \|", table, re.M))
    rows: list[Row] = []
    for field in dataclasses.fields(Settings):
        variable = f"COURSE_{field.name.upper()}"
        rows.append((f"`{variable}`", meanings.get(variable, ""), f"`{_default(field)!r}`"))
    return rows


def _walk(routes: Iterable[object], prefix: str = "") -> Iterable[tuple[str, object]]:
    # FastAPI 0.165 wraps each included router; older versions copy its routes in, flat.
    for route in routes:
        inner = getattr(route, "original_router", None)
        if inner is None:
            yield prefix + getattr(route, "path", ""), route
        else:
            yield from _walk(inner.routes, prefix + route.include_context.prefix)  # type: ignore[attr-defined]


def endpoints(app: FastAPI) -> list[Endpoint]:
    """Every endpoint of ``app``, in the order it matches them (static mounts left out)."""
    found = []
    for path, route in _walk(app.routes):
        if isinstance(route, APIWebSocketRoute):
            found.append(Endpoint("WS", path, route.name))
        elif isinstance(route, APIRoute):
            found.append(Endpoint(", ".join(sorted(route.methods or ())), path, route.name))
    return found
