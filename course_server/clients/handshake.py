"""The WebSocket opening handshake, by hand: the HTTP Upgrade request and the 101 answer, raw.

A WebSocket starts life as an HTTP/1.1 request asking to switch protocols (RFC 6455, section 4).
The client sends a random ``Sec-WebSocket-Key``; the server proves it speaks WebSocket (and is not
some HTTP cache replaying an old answer) by returning ``Sec-WebSocket-Accept``: the SHA-1 of the
key followed by a GUID fixed in the RFC, base64-encoded. After the blank line that ends the 101
response, the same TCP connection carries WebSocket frames instead of HTTP.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import dataclasses
import hashlib
import re

from websockets.frames import Close, Frame, Opcode

from course_server.realtime.closecodes import CloseCode

# RFC 6455, section 1.3: the same for every WebSocket server in the world.
WEBSOCKET_GUID = "258EAFA5-E914-47DA-95CA-C5AB0DC85B11"
# The RFC's own example key; real clients send 16 fresh random bytes, base64-encoded.
SAMPLE_KEY = "dGhlIHNhbXBsZSBub25jZQ=="
MAX_RESPONSE_HEAD = 16 * 1024
GIVE_UP_AFTER = 5.0


def accept_key(sec_websocket_key: str) -> str:
    """The ``Sec-WebSocket-Accept`` a server must answer ``sec_websocket_key`` with."""
    digest = hashlib.sha1((sec_websocket_key + WEBSOCKET_GUID).encode("ascii")).digest()
    return base64.b64encode(digest).decode("ascii")


@dataclasses.dataclass(frozen=True)
class Handshake:
    """The exact bytes of one opening handshake, as they crossed the wire."""

    request: bytes
    response: bytes

    @property
    def status(self) -> int:
        """The response's status code (101 when the server switched to WebSocket)."""
        return int(self.response.split(b" ", 2)[1])

    def header(self, name: str) -> str | None:
        """One response header's value (case-insensitive name), or None."""
        for line in self.response.decode("latin-1").split("\r\n")[1:]:
            key, sep, value = line.partition(":")
            if sep and key.strip().lower() == name.lower():
                return value.strip()
        return None


def upgrade_request(host: str, port: int, path: str, key: str = SAMPLE_KEY) -> bytes:
    """The smallest valid WebSocket Upgrade request: five headers, then a blank line."""
    lines = [
        f"GET {path} HTTP/1.1",
        f"Host: {host}:{port}",
        "Upgrade: websocket",
        "Connection: Upgrade",
        f"Sec-WebSocket-Key: {key}",
        "Sec-WebSocket-Version: 13",
        "",
        "",
    ]
    return "\r\n".join(lines).encode("ascii")


async def open_handshake(
    host: str, port: int, path: str = "/ws/echo", key: str = SAMPLE_KEY
) -> Handshake:
    """Perform the opening handshake over a plain TCP socket and return both messages' bytes.

    The connection is then closed the proper way: a (masked, as every client frame must be)
    close frame with code 1000, and the server's close frame read back. It all takes well under
    a second on one machine; ``GIVE_UP_AFTER`` seconds bound it anyway.
    """
    request = upgrade_request(host, port, path, key)
    async with asyncio.timeout(GIVE_UP_AFTER):
        # The limit bounds readuntil(): a response head larger than this is refused.
        reader, writer = await asyncio.open_connection(host, port, limit=MAX_RESPONSE_HEAD)
        try:
            writer.write(request)
            await writer.drain()
            response = await reader.readuntil(b"\r\n\r\n")
            if b" 101 " in response.split(b"\r\n", 1)[0]:
                goodbye = Close(CloseCode.NORMAL_CLOSURE, "").serialize()
                writer.write(Frame(Opcode.CLOSE, goodbye).serialize(mask=True))
                await writer.drain()
                await reader.read(MAX_RESPONSE_HEAD)  # the server's close frame
        finally:
            writer.close()
            with contextlib.suppress(OSError):
                await writer.wait_closed()
    return Handshake(request=request, response=response)


def printable(message: bytes, vary: tuple[str, ...] = ("date",)) -> str:
    """An HTTP message head as text, one header a line, values that change per run masked.

    ``\\r\\n`` line ends become plain newlines; ``Date`` (by default) shows as ``<varies>``.
    """
    text = message.decode("latin-1").replace("\r\n", "\n").rstrip("\n")
    for name in vary:
        text = re.sub(rf"(?im)^({re.escape(name)}):.*$", r"\1: <varies>", text)
    return text
