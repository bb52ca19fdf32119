"""Every WebSocket close code the course sends or acts on, in one place.

1000–1015 are RFC 6455's (section 7.4.1; the names are those ``websockets.frames.CloseCode``
uses); 4000–4999 are left to applications, and these are the course's. The numbers and the
reasons sent with them are the server's public contract (COURSE_SPEC): clients branch on them,
so they never change. A member is an ``int``: pass it wherever a close code goes.
"""

from __future__ import annotations

import enum


class CloseCode(enum.IntEnum):
    """A close code: RFC 6455's, then the course's own (4000–4999)."""

    NORMAL_CLOSURE = 1000
    GOING_AWAY = 1001  # server shutting down
    PROTOCOL_ERROR = 1002
    UNSUPPORTED_DATA = 1003  # a binary frame where only text is spoken
    ABNORMAL_CLOSURE = 1006  # never sent: what a client reports when no close frame came
    INVALID_DATA = 1007
    POLICY_VIOLATION = 1008
    # Aliases of 1008, named for why the course sends it:
    INVALID_NAME = 1008  # a room name or username that ``names.plain_name`` refuses
    RATE_LIMIT_EXCEEDED = 1008  # the client went on flooding after its errors
    MESSAGE_TOO_BIG = 1009  # a frame over COURSE_MAX_MESSAGE_BYTES
    INTERNAL_ERROR = 1011

    USERNAME_TAKEN = 4000  # "Username taken": someone in the room already has the name
    AUTH_REQUIRED = 4001  # the first message was not {"type": "auth", ...}
    AUTH_TIMEOUT = 4002  # no first message within settings.auth_timeout
    INVALID_TOKEN = 4003  # bad signature, expired, or someone else's name
    SLOW_CONSUMER = 4008  # the send queue overflowed: the client stopped reading
