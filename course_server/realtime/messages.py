"""The chat protocol's frames as pydantic models, and validation at the edge.

Everything a client sends goes through ``parse`` before the room sees it: the result is either a
typed, validated frame or an ``ErrorFrame`` with one of the documented ``ErrorCode`` values, never
an exception. The seed's handler called ``receive_json()`` and read ``data["type"]``: one frame
that is not JSON, or lacks a key, raised out of the loop and dropped the connection.

Client frames form a discriminated union on ``type``: pydantic reads ``type`` first and validates
the rest against that one model only, so a new kind of frame is one more model in ``ClientFrame``.
Fields a client sends beyond those a model declares are ignored; in particular the sender's name
always comes from the URL, never from a ``username`` field it might put in the frame.

``ErrorCode`` is the one list of error codes for every JSON endpoint of the app (the chat, the
lobby, private messages); an error frame never carries pydantic's own text, which names internal
models, echoes the input and links to the library's version-specific docs.
"""

from __future__ import annotations

import enum
from datetime import datetime
from typing import Annotated, Any, Literal

from pydantic import BaseModel, Field, TypeAdapter, ValidationError

# The name rule lives in names.py; re-exported here, where the chat protocol always had it.
from course_server.realtime.names import MAX_NAME_CHARS as MAX_NAME_CHARS
from course_server.realtime.names import NAME_PATTERN as NAME_PATTERN
from course_server.realtime.names import name_problem as name_problem

MAX_CONTENT_CHARS = 2000
"""Longest ``content`` a client may send, in characters (not a setting: part of the protocol)."""

MAX_CLIENT_MSG_ID_CHARS = 64

_MAX_ECHO_CHARS = 32  # of a client's own input quoted back in an error message


class ErrorCode(enum.StrEnum):
    """Every ``code`` an error frame can carry. After any of them the connection stays open.

    The one list for the whole app: the chat, the lobby (lesson 05) and private messages
    (lesson 03) answer bad frames with these codes and no others.
    """

    INVALID_JSON = "invalid_json"  # the text frame is not JSON at all
    INVALID_MESSAGE = "invalid_message"  # JSON, but the wrong shape, a missing field, a wrong type
    UNKNOWN_TYPE = "unknown_type"  # a ``type`` this server does not know
    CONTENT_TOO_LONG = "content_too_long"  # ``content`` over MAX_CONTENT_CHARS
    BINARY_NOT_SUPPORTED = "binary_not_supported"  # a binary frame: the protocol is JSON text
    RATE_LIMITED = "rate_limited"  # over the connection's or the user's rate: frame dropped
    NOT_IN_ROOM = "not_in_room"  # lobby: a message or a leave from a client in no room
    UNAVAILABLE = "unavailable"  # the server cannot reach its broker (Redis): send it again


# Client → server ---------------------------------------------------------------------------


class SendMessage(BaseModel):
    """``{"type": "message", "content": C, "client_msg_id": K?}``: say C to the room.

    ``client_msg_id`` is the client's own name for this message: the server acks it with the id
    it assigned, and a resend of the same K (after a reconnect) is acked again, not repeated.
    """

    type: Literal["message"]
    content: str = Field(min_length=1, max_length=MAX_CONTENT_CHARS)
    client_msg_id: str | None = Field(
        default=None, min_length=1, max_length=MAX_CLIENT_MSG_ID_CHARS
    )


class Ping(BaseModel):
    """``{"type": "ping"}``: an application-level heartbeat, answered ``{"type": "pong"}``.

    For browsers: JavaScript can neither send a WebSocket ping nor see one, so a page that wants
    to know its connection still works end to end asks here, and reconnects when no pong comes.
    """

    type: Literal["ping"]


# One model per ``type``; add the next kind of frame here.
ClientFrame = Annotated[SendMessage | Ping, Field(discriminator="type")]
_client_frame: TypeAdapter[ClientFrame] = TypeAdapter(ClientFrame)


# Server → client ---------------------------------------------------------------------------


class RoomEvent(BaseModel):
    """Something that happened in a room: it has an id and goes into the room's history."""

    type: str
    username: str
    content: str
    timestamp: datetime  # timezone-aware UTC; JSON shows it as ISO 8601, e.g. "…T12:00:00Z"
    id: int


class MessageEvent(RoomEvent):
    """A user's message, as every member of the room receives it."""

    type: Literal["message"] = "message"
    # Present only when the sender supplied one, so clients can match their own messages.
    client_msg_id: str | None = Field(default=None, exclude_if=lambda value: value is None)


class JoinEvent(RoomEvent):
    type: Literal["join"] = "join"


class LeaveEvent(RoomEvent):
    type: Literal["leave"] = "leave"


class ResumeFrame(BaseModel):
    """First frame after connecting with ``?last_id=N``: can the gap since N be filled?

    ``complete`` is true when every event after N is still held (they follow, oldest first); when
    false, some were evicted and only those still held follow. ``oldest_id`` is the oldest event
    still held, or None when the history is empty.
    """

    type: Literal["resume"] = "resume"
    complete: bool
    after: int
    oldest_id: int | None


class AckFrame(BaseModel):
    """To the sender only: its message ``client_msg_id`` got the room id ``id``."""

    type: Literal["ack"] = "ack"
    client_msg_id: str
    id: int


class ErrorFrame(BaseModel):
    """To one client only, about the frame it just sent; nothing else in the room changes."""

    type: Literal["error"] = "error"
    code: ErrorCode
    message: str


class Pong(BaseModel):
    """The answer to a ``ping``, queued behind whatever the server was already sending."""

    type: Literal["pong"] = "pong"


PONG = Pong()

ServerFrame = Annotated[
    MessageEvent | JoinEvent | LeaveEvent | ResumeFrame | AckFrame | ErrorFrame | Pong,
    Field(discriminator="type"),
]
"""Any frame the server sends; ``TypeAdapter(ServerFrame)`` parses them for a typed client."""


# Validation at the edge --------------------------------------------------------------------


def parse(frame: str | bytes) -> SendMessage | Ping | ErrorFrame:
    """Validate one frame from a client: the typed frame, or the error to send back."""
    if isinstance(frame, bytes):
        return error(ErrorCode.BINARY_NOT_SUPPORTED, "send JSON text frames, not binary ones")
    try:
        return _client_frame.validate_json(frame)
    except ValidationError as exc:
        return error(*explain(exc, tagged=True))


def error(code: ErrorCode, message: str) -> ErrorFrame:
    return ErrorFrame(code=code, message=message)


_MAX_PROBLEMS = 3  # reported per frame: a list of 10,000 bad items must not make a 1 MB answer


def explain(exc: ValidationError, *, tagged: bool = False) -> tuple[ErrorCode, str]:
    """The error code and the short message a client gets for a frame that failed validation.

    The one rule for every JSON endpoint (the chat, the lobby, private messages, lesson 02's
    ``/ws/json``): the code is the first problem's, the message names up to ``_MAX_PROBLEMS``
    problems as ``field: what is wrong``. Never pydantic's report itself: no model names, no
    docs links, and a client's own input is only quoted back shortened. ``tagged``: the model
    is a union told apart by ``type``, whose tag pydantic puts first in every location.
    """
    problems = exc.errors(include_url=False)
    code, _ = _explain_one(problems[0], tagged)
    said = [_explain_one(problem, tagged)[1] for problem in problems[:_MAX_PROBLEMS]]
    if len(problems) > _MAX_PROBLEMS:
        said.append(f"and {len(problems) - _MAX_PROBLEMS} more")
    return code, "; ".join(said)


def _explain_one(problem: Any, tagged: bool) -> tuple[ErrorCode, str]:
    """One of pydantic's complaints as an error code and a human message."""
    kind = problem["type"]
    # The location inside the frame ("content"), without a union's tag in front.
    where = ".".join(str(part) for part in problem["loc"][1 if tagged else 0 :])
    if kind == "json_invalid":
        return ErrorCode.INVALID_JSON, f"Invalid JSON: {problem['ctx']['error']}"
    if kind == "union_tag_invalid" and isinstance(problem["input"].get("type"), str):
        known = problem["ctx"]["expected_tags"]
        tag = _shorten(problem["ctx"]["tag"])
        return ErrorCode.UNKNOWN_TYPE, f"unknown type {tag!r}: use {known}"
    if kind == "string_too_long" and where == "content":
        limit = problem["ctx"]["max_length"]
        return ErrorCode.CONTENT_TOO_LONG, f"content is over {limit} characters"
    if kind in {"dict_type", "model_type", "model_attributes_type"} and not where:
        return ErrorCode.INVALID_MESSAGE, 'send a JSON object with a "type" field'
    if kind in {"union_tag_not_found", "union_tag_invalid"}:
        return ErrorCode.INVALID_MESSAGE, 'the object needs a string "type" field'
    return ErrorCode.INVALID_MESSAGE, f"{where}: {problem['msg']}" if where else problem["msg"]


def _shorten(text: str) -> str:
    """A client's own words, quoted back no longer than needed to recognise them."""
    return text if len(text) <= _MAX_ECHO_CHARS else text[: _MAX_ECHO_CHARS - 1] + "…"
