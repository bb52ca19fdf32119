"""Plausible wrong answers to the exercises, one bug each: every one must fail some check.

``MUTANTS[exercise_id]`` maps a description of the bug to the implementation that has it. Each
is the solution with that one mistake, written out in full (no text surgery on the solution), so
a mutant stays readable and keeps meaning the same thing when the solution is reworded.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import operator
from collections.abc import AsyncIterator, Callable
from typing import Annotated, Any, Literal

import jwt
from fastapi import Header, Request, WebSocket, WebSocketDisconnect
from fastapi.sse import ServerSentEvent
from pydantic import BaseModel, ValidationError
from websockets.asyncio.client import connect

from course_server.feed import Feed, Poll

MUTANTS: dict[str, dict[str, Any]] = {}


def mutant(exercise_id: str, bug: str) -> Callable[[Any], Any]:
    def register(implementation: Any) -> Any:
        MUTANTS.setdefault(exercise_id, {})[bug] = implementation
        return implementation

    return register


# --- 02.1 guess ------------------------------------------------------------------------------


def make_guess(*, handle_text: bool = True, lose_code: int = 4000, swap: bool = False):
    async def guess(websocket: WebSocket, secret: int) -> None:
        await websocket.accept()
        wrong = 0
        while True:
            text = await websocket.receive_text()
            if handle_text and not text.lstrip("-").isdigit():
                await websocket.send_text("send a whole number")
                continue
            number = int(text)  # without the check above: ValueError ends the endpoint
            if number == secret:
                await websocket.close(1000, "Correct")
                return
            wrong += 1
            if wrong == 5:
                await websocket.close(lose_code, "Out of guesses")
                return
            await websocket.send_text("higher" if (secret > number) != swap else "lower")

    return guess


mutant("02.1", "int() on text that is not a number ends the game")(make_guess(handle_text=False))
mutant("02.1", "out of guesses closes with 1000")(make_guess(lose_code=1000))
mutant("02.1", "higher and lower swapped")(make_guess(swap=True))


@mutant("02.1", "closes before accept: the client sees HTTP 403, not the code")
async def guess_closes_before_accept(websocket: WebSocket, secret: int) -> None:
    if secret:
        await websocket.close(4000, "Out of guesses")


# --- 02.2 calculator -------------------------------------------------------------------------


class Calculation(BaseModel):
    op: Literal["add", "sub", "mul", "div"]
    a: float
    b: float


OPERATIONS = {
    "add": operator.add,
    "sub": operator.sub,
    "mul": operator.mul,
    "div": operator.truediv,
}


@mutant("02.2", "receive_json(): text that is not JSON ends the connection")
async def calculator_receive_json(websocket: WebSocket) -> None:
    await websocket.accept()
    while True:
        data = await websocket.receive_json()
        try:
            request = Calculation.model_validate(data)
        except ValidationError as exc:
            await websocket.send_json({"type": "error", "code": "invalid", "message": str(exc)})
            continue
        if request.op == "div" and request.b == 0:
            await websocket.send_json({"type": "error", "code": "division_by_zero", "message": ""})
            continue
        value = OPERATIONS[request.op](request.a, request.b)
        await websocket.send_json({"type": "result", "value": value})


def make_calculator(*, zero_check: bool = True, binary_check: bool = True):
    async def calculator(websocket: WebSocket) -> None:
        await websocket.accept()
        while True:
            message = await websocket.receive()
            if message["type"] == "websocket.disconnect":
                return
            if binary_check and message.get("text") is None:
                await websocket.close(1003)
                return
            try:
                request = Calculation.model_validate_json(message.get("text") or "")
            except ValidationError as exc:
                first = exc.errors()[0]
                code = "invalid_json" if first["type"] == "json_invalid" else "invalid"
                await websocket.send_json({"type": "error", "code": code, "message": "bad"})
                continue
            if zero_check and request.op == "div" and request.b == 0:
                error = {"type": "error", "code": "division_by_zero", "message": "b is zero"}
                await websocket.send_json(error)
                continue
            value = OPERATIONS[request.op](request.a, request.b)
            await websocket.send_json({"type": "result", "value": value})

    return calculator


mutant("02.2", "division by zero raises")(make_calculator(zero_check=False))
mutant("02.2", "a binary frame is treated as bad JSON")(make_calculator(binary_check=False))


# --- 03.1 Hub --------------------------------------------------------------------------------


class BaseHub:
    def __init__(self) -> None:
        self.connections: list[WebSocket] = []

    async def connect(self, websocket: WebSocket) -> None:
        await websocket.accept()
        self.connections.append(websocket)

    def disconnect(self, websocket: WebSocket) -> None:
        if websocket in self.connections:
            self.connections.remove(websocket)


@mutant("03.1", "the seed's: a dead connection raises out of the loop")
class SeedHub(BaseHub):
    async def broadcast_except(self, message: str, exclude: WebSocket) -> None:
        for connection in self.connections:
            if connection != exclude:
                await connection.send_text(message)


@mutant("03.1", "sends to the sender too")
class EchoingHub(BaseHub):
    async def broadcast_except(self, message: str, exclude: WebSocket) -> None:
        for connection in list(self.connections):
            try:
                await connection.send_text(message)
            except (WebSocketDisconnect, RuntimeError):
                self.disconnect(connection)


@mutant("03.1", "skips a dead connection but keeps it")
class HoardingHub(BaseHub):
    async def broadcast_except(self, message: str, exclude: WebSocket) -> None:
        for connection in list(self.connections):
            if connection is not exclude:
                try:
                    await connection.send_text(message)
                except (WebSocketDisconnect, RuntimeError):
                    pass


# --- 03.2 Outbox -----------------------------------------------------------------------------


class BaseOutbox:
    cut_off_code = 4008
    queue_size: int | None = None  # None: the size the endpoint asks for

    def __init__(self, websocket: WebSocket, size: int = 8) -> None:
        self.websocket = websocket
        maxsize = size if self.queue_size is None else self.queue_size
        self.queue: asyncio.Queue[str] = asyncio.Queue(maxsize=maxsize)
        self.closing: asyncio.Task[None] | None = None

    def send(self, message: str) -> bool:
        if self.closing is not None:
            return False
        try:
            self.queue.put_nowait(message)
        except asyncio.QueueFull:
            return self.overflow()
        return True

    def overflow(self) -> bool:
        close = self.websocket.close(self.cut_off_code, "slow consumer")
        self.closing = asyncio.get_running_loop().create_task(close)
        return False

    async def drain(self) -> None:
        while self.closing is None:
            message = await self.queue.get()
            await self.websocket.send_text(message)


@mutant("03.2", "an unbounded queue: a stalled client is never cut off")
class UnboundedOutbox(BaseOutbox):
    queue_size = 0


@mutant("03.2", "a full queue drops the message but keeps the client")
class DroppingOutbox(BaseOutbox):
    def overflow(self) -> bool:
        return False


@mutant("03.2", "cuts off with 1000 instead of 4008")
class PoliteOutbox(BaseOutbox):
    cut_off_code = 1000


@mutant("03.2", "send() still says True after the cut-off")
class OptimisticOutbox(BaseOutbox):
    def send(self, message: str) -> bool:
        super().send(message)
        return True


# --- 04.1 catch_up ---------------------------------------------------------------------------


@mutant("04.1", "resends the last message the client saw (>= instead of >)")
def catch_up_repeats(history: Any, last_id: int) -> tuple[bool, list[dict[str, Any]]]:
    complete = not history or last_id >= history[0]["id"] - 1
    return complete, [message for message in history if message["id"] >= last_id]


@mutant("04.1", "counts by position in the deque, not by id")
def catch_up_by_position(history: Any, last_id: int) -> tuple[bool, list[dict[str, Any]]]:
    complete = not history or last_id >= history[0]["id"] - 1
    return complete, list(history)[last_id:]


@mutant("04.1", "always says complete")
def catch_up_always_complete(history: Any, last_id: int) -> tuple[bool, list[dict[str, Any]]]:
    return True, [message for message in history if message["id"] > last_id]


@mutant("04.1", "off by one on complete: the oldest held message counts as a loss")
def catch_up_strict(history: Any, last_id: int) -> tuple[bool, list[dict[str, Any]]]:
    complete = not history or last_id >= history[0]["id"]
    return complete, [message for message in history if message["id"] > last_id]


# --- 04.2 TokenBucket ------------------------------------------------------------------------


class Bucket:
    def __init__(self, rate: float, burst: float, clock: Callable[[], float]) -> None:
        self.rate, self.burst, self.clock = rate, burst, clock
        self.tokens = burst
        self.updated = clock()

    def refill(self) -> None:
        now = self.clock()
        self.tokens = min(self.burst, self.tokens + (now - self.updated) * self.rate)
        self.updated = now

    def allow(self) -> bool:
        self.refill()
        if self.tokens < 1:
            return False
        self.tokens -= 1
        return True


@mutant("04.2", "starts empty")
class EmptyBucket(Bucket):
    def __init__(self, rate: float, burst: float, clock: Callable[[], float]) -> None:
        super().__init__(rate, burst, clock)
        self.tokens = 0


@mutant("04.2", "no cap: an idle bucket fills past burst")
class BottomlessBucket(Bucket):
    def refill(self) -> None:
        now = self.clock()
        self.tokens += (now - self.updated) * self.rate
        self.updated = now


@mutant("04.2", "a fixed window: full again every second")
class WindowBucket(Bucket):
    def refill(self) -> None:
        if self.clock() - self.updated >= 1:
            self.tokens, self.updated = self.burst, self.clock()


@mutant("04.2", "whole tokens only: fractions of a token are lost")
class WholeTokenBucket(Bucket):
    def refill(self) -> None:
        now = self.clock()
        self.tokens = min(self.burst, self.tokens + int((now - self.updated) * self.rate))
        self.updated = now


@mutant("04.2", "a refused event still takes a token")
class GreedyBucket(Bucket):
    def allow(self) -> bool:
        self.refill()
        self.tokens -= 1
        return self.tokens >= 0


# --- 05.1 Lobby ------------------------------------------------------------------------------

JOINED = {"type": "system", "message": "A user joined the room"}
LEFT = {"type": "system", "message": "A user left the room"}


class BaseLobby:
    def __init__(self) -> None:
        self.rooms: dict[str, set[Any]] = {}
        self.room_of: dict[Any, str] = {}

    def join(self, member: Any, room: str) -> None:
        if self.room_of.get(member) == room:
            return
        self.leave(member)
        members = self.rooms.setdefault(room, set())
        for other in members:
            other.send(JOINED)
        members.add(member)
        self.room_of[member] = room

    def leave(self, member: Any) -> None:
        room = self.room_of.pop(member, None)
        if room is None:
            return
        members = self.rooms[room]
        members.discard(member)
        if not members:
            del self.rooms[room]
        for other in members:
            other.send(LEFT)

    def say(self, member: Any, content: str) -> None:
        room = self.room_of.get(member)
        for other in self.rooms.get(room, set()) if room is not None else set():
            other.send({"type": "message", "content": content})


@mutant("05.1", "switching joins the new room without leaving the old one")
class StickyLobby(BaseLobby):
    def join(self, member: Any, room: str) -> None:
        if self.room_of.get(member) == room:
            return
        members = self.rooms.setdefault(room, set())
        for other in members:
            other.send(JOINED)
        members.add(member)
        self.room_of[member] = room

    def leave(self, member: Any) -> None:
        room = self.room_of.pop(member, None)
        for members in self.rooms.values():
            members.discard(member)
        if room is not None and not self.rooms[room]:
            del self.rooms[room]


@mutant("05.1", "the joiner hears about itself")
class ChattyLobby(BaseLobby):
    def join(self, member: Any, room: str) -> None:
        if self.room_of.get(member) == room:
            return
        self.leave(member)
        self.rooms.setdefault(room, set()).add(member)
        self.room_of[member] = room
        for other in self.rooms[room]:
            other.send(JOINED)


@mutant("05.1", "empty rooms are kept: the seed's leak")
class LeakyLobby(BaseLobby):
    def leave(self, member: Any) -> None:
        room = self.room_of.pop(member, None)
        if room is not None:
            self.rooms[room].discard(member)
            for other in self.rooms[room]:
                other.send(LEFT)


@mutant("05.1", "rejoining the same room leaves and joins again")
class RestlessLobby(BaseLobby):
    def join(self, member: Any, room: str) -> None:
        self.leave(member)
        members = self.rooms.setdefault(room, set())
        for other in members:
            other.send(JOINED)
        members.add(member)
        self.room_of[member] = room


# --- 08.1 squares ----------------------------------------------------------------------------


def make_squares(*, resume: int = 1, named: bool = True, retry_every: bool = False):
    """``resume``: where to start after Last-Event-ID N: N + resume (0: repeats N; None: 1)."""

    async def squares(
        last_event_id: Annotated[int | None, Header()] = None, count: int = 5
    ) -> AsyncIterator[ServerSentEvent]:
        first = (last_event_id or 0) + resume if resume is not None else 1
        first = max(first, 1)
        for n in range(first, count + 1):
            yield ServerSentEvent(
                id=str(n),
                event="square" if named else None,
                data={"n": n, "square": n * n},
                retry=2000 if n == first or retry_every else None,
            )

    return squares


@mutant("08.1", "reads Last-Event-ID from the query string, so never sees the header")
async def squares_from_query(
    last_event_id: int | None = None, count: int = 5
) -> AsyncIterator[ServerSentEvent]:
    first = (last_event_id or 0) + 1
    for n in range(first, count + 1):
        yield ServerSentEvent(
            id=str(n),
            event="square",
            data={"n": n, "square": n * n},
            retry=2000 if n == first else None,
        )


mutant("08.1", "resends the event the client already has")(make_squares(resume=0))
mutant("08.1", "ignores Last-Event-ID: starts over")(make_squares(resume=None))
mutant("08.1", "unnamed events")(make_squares(named=False))
mutant("08.1", "retry on every event")(make_squares(retry_every=True))


@mutant("08.1", "no ids: a browser cannot resume")
async def squares_without_ids(
    last_event_id: Annotated[int | None, Header()] = None, count: int = 5
) -> AsyncIterator[ServerSentEvent]:
    for n in range((last_event_id or 0) + 1, count + 1):
        yield ServerSentEvent(event="square", data={"n": n, "square": n * n}, retry=2000)


# --- 08.2 parse_events -----------------------------------------------------------------------


def make_parser(
    *,
    join: bool = True,
    comments: bool = True,
    strip: bool = False,
    keep_id: bool = True,
    need_data: bool = True,
    reset_name: bool = True,
):
    def parse_events(lines: list[str]) -> list[dict[str, str]]:
        events: list[dict[str, str]] = []
        data: list[str] = []
        name, last_id = "", ""
        for line in [*lines, ""]:
            if not line:
                if data or not need_data:
                    joined = "\n".join(data) if join else (data[-1] if data else "")
                    events.append({"event": name or "message", "data": joined, "id": last_id})
                    if not keep_id:
                        last_id = ""
                if data or reset_name:
                    name = ""
                data = []
                continue
            if line.startswith(":") and comments:
                continue
            field, _, value = line.partition(":")
            value = value.strip() if strip else value.removeprefix(" ")
            if field == "data" or (field == "" and not comments):
                data.append(value)
            elif field == "event":
                name = value
            elif field == "id":
                last_id = value
        return events

    return parse_events


mutant("08.2", "keeps only the last data line")(make_parser(join=False))
mutant("08.2", "reads comments as data")(make_parser(comments=False))
mutant("08.2", "strips every space around the value")(make_parser(strip=True))
mutant("08.2", "forgets the id after each event")(make_parser(keep_id=False))
mutant("08.2", "dispatches events with no data")(make_parser(need_data=False))
mutant("08.2", "an event name outlives a blank line with no data")(make_parser(reset_name=False))


# --- 01.1 long_poll --------------------------------------------------------------------------


@mutant("01.1", "short polling: answers at once, news or not")
async def short_poll(request: Request, after: int = 0, wait: float = 5.0) -> Poll:
    feed: Feed = request.app.state.feed
    return Poll(events=feed.after(after), last_id=feed.last_id)


@mutant("01.1", "sleeps the whole wait, then answers")
async def sleepy_poll(request: Request, after: int = 0, wait: float = 5.0) -> Poll:
    feed: Feed = request.app.state.feed
    if not feed.after(after):
        await asyncio.sleep(wait)
    return Poll(events=feed.after(after), last_id=feed.last_id)


@mutant("01.1", "no deadline: waits forever when nothing comes")
async def patient_poll(request: Request, after: int = 0, wait: float = 5.0) -> Poll:
    feed: Feed = request.app.state.feed
    if not feed.after(after):
        async with contextlib.aclosing(feed.subscribe(after)) as news:
            async for _event in news:
                break
    return Poll(events=feed.after(after), last_id=feed.last_id)


@mutant("01.1", "lets the timeout escape: HTTP 500 instead of an empty answer")
async def raising_poll(request: Request, after: int = 0, wait: float = 5.0) -> Poll:
    feed: Feed = request.app.state.feed
    if not feed.after(after):
        async with asyncio.timeout(wait), contextlib.aclosing(feed.subscribe(after)) as news:
            async for _event in news:
                break
    return Poll(events=feed.after(after), last_id=feed.last_id)


# --- 01.2 collect ----------------------------------------------------------------------------


def make_collect(*, resume: Callable[[list[dict[str, Any]]], int] | None) -> Any:
    """``resume(events)``: the ``after`` to reconnect with; None: no reconnecting at all."""

    async def collect(url: str, count: int) -> list[dict[str, Any]]:
        events: list[dict[str, Any]] = []
        after = 0
        while len(events) < count:
            async with connect(f"{url}?after={after}") as websocket:
                async for message in websocket:
                    events.append(json.loads(message))
                    if len(events) == count:
                        break
            if resume is None:
                break
            after = resume(events)
        return events

    return collect


mutant("01.2", "reconnects from the start: repeats events")(make_collect(resume=lambda e: 0))
mutant("01.2", "reconnects one past the last id: skips events")(
    make_collect(resume=lambda e: e[-1]["id"] + 1)
)
mutant("01.2", "gives up when the connection drops")(make_collect(resume=None))


# --- 06.1 first_message_auth -----------------------------------------------------------------

SECRET = "exercise-secret-not-for-production"


class Auth(BaseModel):
    type: Literal["auth"]
    token: str


def make_auth(*, timeout: float | None = 1.0, verify_exp: bool = True, bad_code: int = 4003):
    async def first_message_auth(websocket: WebSocket) -> None:
        await websocket.accept()
        try:
            async with asyncio.timeout(timeout):
                first = await websocket.receive_text()
        except TimeoutError:
            await websocket.close(4002, "Authentication timeout")
            return
        try:
            auth = Auth.model_validate_json(first)
        except ValidationError:
            await websocket.close(4001, "Authentication required")
            return
        try:
            options = {"verify_exp": verify_exp}
            user = jwt.decode(auth.token, SECRET, algorithms=["HS256"], options=options)["sub"]
        except jwt.InvalidTokenError:
            await websocket.close(bad_code, "Invalid token")
            return
        await websocket.send_json({"type": "auth_success", "user_id": user})
        while True:
            await websocket.send_text(f"{user}: {await websocket.receive_text()}")

    return first_message_auth


mutant("06.1", "no deadline: a silent client waits forever")(make_auth(timeout=None))
mutant("06.1", "expired tokens are let in")(make_auth(verify_exp=False))
mutant("06.1", "a bad token closes with 4001, like a missing one")(make_auth(bad_code=4001))


@mutant("06.1", "the seed's way: the token in the query string, closed before accept")
async def query_token_auth(websocket: WebSocket, token: str | None = None) -> None:
    if token is None:
        await websocket.close(4001, "Token required")
        return
    await websocket.accept()


@mutant("06.1", "receive_json(): a first message that is not JSON crashes the endpoint")
async def crashing_auth(websocket: WebSocket) -> None:
    await websocket.accept()
    try:
        async with asyncio.timeout(1.0):
            first = await websocket.receive_json()
    except TimeoutError:
        await websocket.close(4002, "Authentication timeout")
        return
    if first.get("type") != "auth":
        await websocket.close(4001, "Authentication required")
        return
    try:
        user = jwt.decode(first["token"], SECRET, algorithms=["HS256"])["sub"]
    except jwt.InvalidTokenError:
        await websocket.close(4003, "Invalid token")
        return
    await websocket.send_json({"type": "auth_success", "user_id": user})
    while True:
        await websocket.send_text(f"{user}: {await websocket.receive_text()}")
