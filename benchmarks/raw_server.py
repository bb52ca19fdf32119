"""The raw bound: the ``websockets`` library's own server and its ``broadcast()``, no framework.

Every text ``X`` goes to every connection, the sender included, as ``Someone said: X``, like the
seed's ``/ws/broadcast``. ``broadcast()`` frames the message once per connection and writes it to
the socket's buffer without awaiting anything: about the least work one Python process can do
per delivery. (A connection whose buffer is full is skipped, so a slow one misses messages
rather than stalling anyone: that design choice is part of why it is fast.)

``python -m benchmarks.raw_server --port 0`` prints its URL, then serves until SIGINT or SIGTERM.
"""

from __future__ import annotations

import argparse
import asyncio
import signal

from websockets.asyncio.server import ServerConnection, broadcast, serve


async def main(host: str, port: int) -> None:
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(signum, stop.set)

    async def relay(websocket: ServerConnection) -> None:
        async for message in websocket:
            if isinstance(message, str):
                broadcast(server.connections, f"Someone said: {message}")

    async with serve(relay, host, port) as server:
        bound_host, bound_port = server.sockets[0].getsockname()[:2]
        print(f"raw_server serving on http://{bound_host}:{bound_port}", flush=True)
        await stop.wait()


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=0)
    args = parser.parse_args()
    asyncio.run(main(args.host, args.port))
