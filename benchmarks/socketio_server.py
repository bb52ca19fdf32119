"""What many people pick instead: python-socketio with a room, in front of a FastAPI app.

Every client joins room ``bench`` when it connects; every ``message`` event is emitted to the
room, the sender included. python-socketio encodes the packet once per emit, then sends it to
each member in a task of its own. Served like the course app (same uvicorn settings).

``python -m benchmarks.socketio_server --port 0`` prints its URL, then serves until Ctrl+C.
"""

from __future__ import annotations

import argparse
from typing import Any

import socketio
from fastapi import FastAPI

from course_server.runner import serve
from course_server.settings import Settings

ROOM = "bench"


def create_socketio_app() -> socketio.ASGIApp:
    sio = socketio.AsyncServer(async_mode="asgi")

    @sio.event
    async def connect(sid: str, environ: dict[str, Any], auth: Any = None) -> None:
        await sio.enter_room(sid, ROOM)

    @sio.on("message")
    async def message(sid: str, data: Any) -> None:
        await sio.emit("message", data, room=ROOM)

    return socketio.ASGIApp(sio, other_asgi_app=FastAPI())


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=0)
    args = parser.parse_args()
    serve("socketio_server", create_socketio_app(), Settings.from_env(), args.host, args.port)


if __name__ == "__main__":
    main()
