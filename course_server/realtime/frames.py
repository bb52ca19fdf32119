"""Frame a broadcast once and write the same bytes to every receiver's socket (lesson 10).

Through ASGI, every delivery of a broadcast costs a chain of coroutines (Starlette's
``WebSocket.send``, each middleware's ``send``, the server's ``send``), then the server encodes
the text to UTF-8 and frames it, for each receiver anew. A frame from the server is not masked,
so with no extension negotiated its bytes are the same for every receiver: ``Framed`` encodes
and frames a message once, and a connection that offers ``write_frame`` takes those bytes as
they are, with one plain function call.

The two halves meet in the ASGI scope, the way servers offer extras to apps:

- the server's WebSocket protocol (``FrameWriter``, mixed into ``runner.SansIOProtocol``) puts
  its ``write_frame`` into ``scope["extensions"]`` under ``EXTENSION``, unless permessage-deflate
  was negotiated: compressed bytes differ per receiver, so those take the ASGI path;
- ``frame_writer(websocket)`` finds it, or returns None (another server, a test's fake): then
  the caller sends through ASGI as before. Nothing here is needed for correctness, only speed.

``write_frame`` refuses (returns False) whenever the plain path would wait or fail: the
connection is not open, or the transport paused writing because the client's buffers are full.
The caller then queues the frame and sends it the ASGI way, which waits: backpressure holds.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Any, Protocol

from websockets.frames import Frame, Opcode
from websockets.protocol import State
from websockets.server import ServerProtocol

EXTENSION = "course.websocket.write_frame"
"""The scope extension's name; its value is ``FrameWriter.write_frame``."""

WriteFrame = Callable[[bytes], bool]


class Framed:
    """One outgoing message, encoded once: ``data`` for ASGI, ``wire`` for ``write_frame``."""

    __slots__ = ("_wire", "data")

    def __init__(self, data: str | bytes) -> None:
        self.data = data
        self._wire: bytes | None = None

    @property
    def wire(self) -> bytes:
        """The whole WebSocket frame, unmasked and uncompressed; built on first use only."""
        if self._wire is None:
            if isinstance(self.data, str):
                frame = Frame(Opcode.TEXT, self.data.encode())
            else:
                frame = Frame(Opcode.BINARY, self.data)
            self._wire = frame.serialize(mask=False)
        return self._wire


def frame_writer(websocket: Any) -> WriteFrame | None:
    """The server's ``write_frame`` for this connection, or None where it offers none."""
    scope = getattr(websocket, "scope", None)  # tests hand a Peer fakes that have no scope
    if scope is None:
        return None
    writer: WriteFrame | None = scope.get("extensions", {}).get(EXTENSION)
    return writer


class _UvicornSansIO(Protocol):
    """What ``FrameWriter`` uses of uvicorn's ``WebSocketsSansIOProtocol`` (0.3x-0.5x).

    ``conn`` (the ``websockets`` state machine), ``transport`` and ``scope`` are attributes of
    uvicorn's implementation, not a documented API; ``handle_connect`` builds the scope.
    ``tests/realtime/test_frames.py`` fails loudly if a uvicorn upgrade moves any of them.
    """

    conn: ServerProtocol
    transport: asyncio.Transport
    scope: Any


class FrameWriter:
    """Mixed into uvicorn's sans-I/O WebSocket protocol: offers ``write_frame`` to the app."""

    _writing_paused = False

    def handle_connect(self, event: Any) -> None:
        super().handle_connect(event)  # type: ignore[misc]  # accepts the upgrade, builds scope
        this: _UvicornSansIO = self  # type: ignore[assignment]
        if this.transport.is_closing():
            return  # uvicorn refused the upgrade itself: there is no scope, no app to tell
        # Extensions are negotiated by now. With none, a frame is the same for every receiver.
        if not this.conn.extensions:
            this.scope["extensions"][EXTENSION] = self.write_frame

    def write_frame(self, frame: bytes) -> bool:
        """Write an already framed message now; False if it has to take the ASGI path.

        Refused unless the handshake is done and no close was sent or received (the state
        machine says OPEN), and unless the transport takes bytes without growing its buffer
        past the high-water mark (``pause_writing`` was not called, or ``resume_writing`` since).
        """
        this: _UvicornSansIO = self  # type: ignore[assignment]
        if this.conn.state is not State.OPEN or self._writing_paused:
            return False
        if this.transport.is_closing():
            return False
        this.transport.write(frame)
        return True

    # asyncio's Protocol contract: the transport calls these around its high-water mark.
    def pause_writing(self) -> None:
        self._writing_paused = True
        super().pause_writing()  # type: ignore[misc]

    def resume_writing(self) -> None:
        self._writing_paused = False
        super().resume_writing()  # type: ignore[misc]
