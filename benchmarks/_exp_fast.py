import asyncio, sys, os
from collections import deque
import course_server.fanout as f

class Mailbox:
    __slots__ = ("_items", "_maxsize", "_waiter")
    def __init__(self, maxsize):
        self._items = deque(); self._maxsize = maxsize; self._waiter = None
    def qsize(self): return len(self._items)
    def empty(self): return not self._items
    def put_nowait(self, item):
        if len(self._items) >= self._maxsize: raise asyncio.QueueFull
        self._items.append(item)
        w = self._waiter
        if w is not None:
            self._waiter = None
            if not w.done(): w.set_result(None)
    def get_nowait(self):
        if not self._items: raise asyncio.QueueEmpty
        return self._items.popleft()
    async def get(self):
        while not self._items:
            self._waiter = asyncio.get_running_loop().create_future()
            await self._waiter
        return self._items.popleft()

orig_init = f.Peer.__init__
def __init__(self, websocket, *, queue_size=256, **kw):
    orig_init(self, websocket, queue_size=queue_size, **kw)
    self._queue = Mailbox(queue_size)
if not os.environ.get("EXP_QUEUE"):
    f.Peer.__init__ = __init__

if os.environ.get("EXP_DIRECT"):
    async def _drain(self):
        websocket = self.websocket
        send = websocket.send
        queue = self._queue
        try:
            while True:
                item = await queue.get()
                if isinstance(item, f._Close):
                    await self._send_close(item.code, item.reason)
                    return
                if isinstance(item, str):
                    await send({"type": "websocket.send", "text": item})
                else:
                    await send({"type": "websocket.send", "bytes": item})
        except (f.WebSocketDisconnect, RuntimeError, OSError):
            self._finish()
    f.Peer._drain = _drain

if os.environ.get("EXP_NOGC"):
    import gc; gc.disable()
if os.environ.get("EXP_UVLOOP"):
    import uvloop; uvloop.install()
from course_server.__main__ import main
sys.exit(main())
