"""The servers the fan-out benchmark compares, each started in a process of its own.

- ``course``: the course's chat room (``/chat/{room}/{user}``): a ``Peer`` per connection, each
  with a bounded queue and a writer task; ``Group.broadcast`` only queues.
- ``naive``: the seed's ``ConnectionManager``: ``await send_text`` to each connection in turn.
- ``socketio``: python-socketio with a room, in front of FastAPI: what many people pick instead.
- ``raw``: the ``websockets`` library's own server and ``broadcast()``, no framework: the bound.

``PEERS`` are designs outside Python, skipped (with a one-line reason) where their runtime is
missing; ``python -m benchmarks.fanout`` runs them too, the lesson's notebook does not:

- ``node ws``: Node's ``ws`` library, ``for (const c of wss.clients) c.send(data)``: how far a
  plain loop in another runtime gets (``benchmarks/node_ws_server.js``).

The four Python designs run on the same uvicorn settings where uvicorn is involved
(``runner.make_config``), on the standard asyncio event loop, with rate limiting off
(``COURSE_RATE_LIMIT=0``).
"""

from __future__ import annotations

from benchmarks import node_ws
from benchmarks.harness import Design

ROOM = "bench"
SOCKETIO_PATH = "/socket.io/?EIO=4&transport=websocket"
_COURSE_ENV = (
    ("COURSE_RATE_LIMIT", "0"),  # a benchmark sender is a flood by design
    ("COURSE_JWT_SECRET", "benchmark-only"),  # silences the CLI's random-secret warning
    # Accept permessage-deflate when a scenario's clients offer it (browsers always do), so the
    # "deflate" runs measure its cost; the course's own default is off, for that cost.
    ("COURSE_WS_DEFLATE", "on"),
)

COURSE = Design(
    name="course",
    module="course_server",
    wire="chat",
    receiver_path=lambda i: f"/chat/{ROOM}/r{i:05d}",
    sender_path=f"/chat/{ROOM}/sender",
    env=_COURSE_ENV,
    args=("--log-level", "warning"),
    ready_path="/healthz",
)
NAIVE = Design(
    name="naive",
    module="benchmarks.naive_server",
    wire="plain",
    receiver_path=lambda i: "/naive/ws/broadcast",
    sender_path="/naive/ws/broadcast",
    env=_COURSE_ENV,
)
SOCKETIO = Design(
    name="socketio",
    module="benchmarks.socketio_server",
    wire="socketio",
    receiver_path=lambda i: SOCKETIO_PATH,
    sender_path=SOCKETIO_PATH,
    env=_COURSE_ENV,
)
RAW = Design(
    name="raw",
    module="benchmarks.raw_server",
    wire="plain",
    receiver_path=lambda i: "/",
    sender_path="/",
)

NODE_WS = Design(
    name="node ws",
    module="benchmarks.node_ws",
    wire="plain",
    receiver_path=lambda i: "/",
    sender_path="/",
    prepare=node_ws.prepare,
)

DESIGNS: dict[str, Design] = {d.name: d for d in (COURSE, NAIVE, SOCKETIO, RAW)}
PEERS: dict[str, Design] = {d.name: d for d in (NODE_WS,)}
EVERY: dict[str, Design] = DESIGNS | PEERS
