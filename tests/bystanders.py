"""Bystanders: chat members that talk at a steady pace in a thread of their own while a test
does something nasty to the same room, and then say whether they lost anything.

Each sends ``NAME N`` every ``interval`` seconds until the ``with`` block ends, then ``NAME
done``, and reads until it has heard every bystander's ``done``. Everything a bystander says
must reach every bystander exactly once, in the order it was said.
"""

from __future__ import annotations

import asyncio
import json
import threading
from typing import Self

from conftest import wait_timeout
from websockets.asyncio.client import ClientConnection, connect

from course_server import RunningServer


class Bystanders:
    def __init__(
        self, server: RunningServer, room: str, count: int = 3, interval: float = 0.01
    ) -> None:
        self.urls = {f"bystander{n}": server.ws(f"/chat/{room}/bystander{n}") for n in range(count)}
        self.interval = interval
        self.sent: dict[str, list[str]] = {name: [] for name in self.urls}
        # heard[listener][speaker]: what the listener heard from that speaker, in order
        self.heard = {name: {speaker: [] for speaker in self.urls} for name in self.urls}
        self._ready = threading.Event()
        self._stop = threading.Event()
        self._error: BaseException | None = None
        self._thread = threading.Thread(target=self._run, name="bystanders", daemon=True)

    def __enter__(self) -> Self:
        self._thread.start()
        if not self._ready.wait(wait_timeout()) or self._error is not None:
            self._stop.set()
            raise RuntimeError("the bystanders did not join") from self._error
        return self

    def __exit__(self, *exc_info: object) -> None:
        self._stop.set()
        self._thread.join(wait_timeout(15))
        if self._thread.is_alive():
            raise TimeoutError("the bystanders did not finish")
        if self._error is not None:
            raise self._error

    def summary(self) -> str:
        said = sum(len(lines) for lines in self.sent.values())
        heard = [sum(len(lines) for lines in by.values()) for by in self.heard.values()]
        return f"{len(self.urls)} bystanders said {said} messages; each heard {heard}"

    def assert_everyone_got_everything(self) -> None:
        for listener, by_speaker in self.heard.items():
            for speaker, lines in by_speaker.items():
                assert lines == self.sent[speaker], f"{listener} on {speaker}'s messages"

    def _run(self) -> None:
        try:
            asyncio.run(self._main())
        except BaseException as exc:  # surfaced in the test's thread by __exit__
            self._error = exc
            self._ready.set()

    async def _main(self) -> None:
        clients = {name: await self._join(name, url) for name, url in self.urls.items()}
        self._ready.set()
        listeners = [asyncio.create_task(self._listen(n, ws)) for n, ws in clients.items()]
        try:
            await asyncio.gather(*(self._talk(name, ws) for name, ws in clients.items()))
            async with asyncio.timeout(wait_timeout(10)):  # for every "done" to arrive
                await asyncio.gather(*listeners)
        finally:
            for listener in listeners:
                listener.cancel()
            for websocket in clients.values():
                await websocket.close()

    async def _join(self, name: str, url: str) -> ClientConnection:
        websocket = await connect(url, max_queue=None)
        async with asyncio.timeout(wait_timeout()):
            while True:
                frame = json.loads(await websocket.recv())
                if frame["type"] == "join" and frame["username"] == name:
                    return websocket

    async def _talk(self, name: str, websocket: ClientConnection) -> None:
        n = 0
        while not self._stop.is_set():
            text = f"{name} {n}"
            await websocket.send(json.dumps({"type": "message", "content": text}))
            self.sent[name].append(text)
            n += 1
            await asyncio.sleep(self.interval)  # the pace of the conversation
        await websocket.send(json.dumps({"type": "message", "content": f"{name} done"}))

    async def _listen(self, name: str, websocket: ClientConnection) -> None:
        waiting_for = set(self.urls)
        while waiting_for:
            frame = json.loads(await websocket.recv())
            speaker = frame.get("username")
            if frame["type"] != "message" or speaker not in waiting_for:
                continue
            if frame["content"] == f"{speaker} done":
                waiting_for.discard(speaker)
            else:
                self.heard[name][speaker].append(frame["content"])
