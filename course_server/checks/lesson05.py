"""Checks for lesson 05's exercise: switching rooms in a lobby.

The learner's ``Lobby`` sits behind a lobby endpoint like lesson 05's: JSON frames ``join``,
``leave`` and ``message``, each member a ``fanout.Peer`` (its ``send`` only queues). To show
that something did *not* arrive, a check sends a marker after it and expects the marker next.
Besides switching, the checks leave from no room, leave a room others stay in, come back to a
room after leaving it, and listen from another room; room names are drawn (``cases.seeded``).
"""

from __future__ import annotations

import contextlib
import json
from collections.abc import AsyncIterator
from typing import Any

from fastapi import WebSocket
from websockets.asyncio.client import ClientConnection

from course_server.checks import CheckFailed, exercise, expect
from course_server.checks.cases import seeded
from course_server.checks.harness import Harness
from course_server.checks.talk import dial, receive
from course_server.lab.waiting import eventually
from course_server.realtime.fanout import Peer

switching = exercise(
    "05.1",
    "Switch rooms",
    target="Lobby",
    references=(
        "course_server.lessons.lobby:RoomManager",
        "course_server.seed.rooms:SeedRoomManager",
    ),
)

JOINED = {"type": "system", "message": "A user joined the room"}
LEFT = {"type": "system", "message": "A user left the room"}


def room_names(check: str, count: int = 3) -> list[str]:
    """``count`` different room names, drawn for the check (not the prompt's red and blue)."""
    rng = seeded(f"05.1 {check}")
    names = ("red", "blue", "green", "café", "部屋", "lobby 2", "general")
    return [f"{name}-{rng.randint(1, 99)}" for name in rng.sample(names, count)]


def serve_lobby(h: Harness, lobby_class: Any) -> Any:
    lobby = lobby_class()

    async def endpoint(websocket: WebSocket) -> None:
        await websocket.accept()
        peer = Peer(websocket)
        peer.start()
        try:
            async for message in peer.incoming():
                frame = json.loads(message["text"])
                if frame["type"] == "join":
                    lobby.join(peer, frame["room"])
                    peer.send({"type": "joined", "room": frame["room"]})  # for the check to wait
                elif frame["type"] == "leave":
                    lobby.leave(peer)
                    peer.send({"type": "left"})
                else:
                    lobby.say(peer, frame["content"])
        finally:
            try:
                lobby.leave(peer)
            finally:
                await peer.aclose()  # even if the learner's leave() raised

    h.websocket("/lobby", endpoint)
    return lobby


class Member:
    """A client in the lobby, with a name for hints."""

    def __init__(self, name: str, client: ClientConnection) -> None:
        self.name, self.client = name, client

    async def next(self) -> Any:
        return json.loads(await receive(self.client, self.name))

    async def join(self, room: str) -> None:
        await self.client.send(json.dumps({"type": "join", "room": room}))
        frame = await self.next()
        expect(frame == {"type": "joined", "room": room}, f"{self.name} joining {room} got {frame}")

    async def say(self, content: str) -> None:
        """Say something and wait for it to come back (``say`` includes the sender)."""
        await self.client.send(json.dumps({"type": "message", "content": content}))
        frame = await self.next()
        expect(
            frame == {"type": "message", "content": content},
            f"{self.name} said {content!r} and got {frame} first",
        )

    async def expect_next(self, wanted: Any, what: str) -> None:
        try:
            frame = await self.next()
        except CheckFailed as exc:
            raise CheckFailed(f"{self.name} should have {what}, but {exc}") from None
        expect(frame == wanted, f"{self.name} should have {what}, but got {frame}")


@contextlib.asynccontextmanager
async def members(h: Harness, *names: str) -> AsyncIterator[list[Member]]:
    """Connect one client per name; close them all on the way out."""
    assert h.server is not None
    async with contextlib.AsyncExitStack() as stack:
        clients = [await stack.enter_async_context(dial(h.server.ws("/lobby"))) for _ in names]
        yield [Member(name, client) for name, client in zip(names, clients, strict=True)]


async def rooms(h: Harness, lobby: Any) -> dict[str, int]:
    """The lobby's rooms and how many members each has, read on the server's loop."""
    counts: dict[str, int] = await h.on_server(
        lambda: {room: len(who) for room, who in lobby.rooms.items()}
    )
    return counts


@switching.check("joining a room tells its members, not the joiner")
async def _join(h: Harness, lobby_class: Any) -> None:
    serve_lobby(h, lobby_class)
    await h.serve()
    async with members(h, "alice", "bob") as (alice, bob):
        await alice.join("red")
        await bob.join("red")
        await alice.expect_next(JOINED, "heard that bob joined")
        await bob.say("hi")  # fails if bob heard about himself first
        await alice.expect_next({"type": "message", "content": "hi"}, "heard bob say hi")


@switching.check("switching rooms leaves the old room")
async def _switch(h: Harness, lobby_class: Any) -> None:
    serve_lobby(h, lobby_class)
    await h.serve()
    async with members(h, "alice", "bob", "carol") as (alice, bob, carol):
        await carol.join("blue")
        await alice.join("red")
        await bob.join("red")
        await alice.expect_next(JOINED, "heard that bob joined red")
        await bob.join("blue")
        await alice.expect_next(LEFT, "heard that bob left red for blue")
        await carol.expect_next(JOINED, "heard that bob joined blue")
        await bob.say("only for blue")
        await carol.expect_next(
            {"type": "message", "content": "only for blue"}, "heard bob in blue"
        )
        await alice.say("marker")  # fails if bob's message reached red too


@switching.check("joining the room you are in changes nothing")
async def _rejoin(h: Harness, lobby_class: Any) -> None:
    lobby = serve_lobby(h, lobby_class)
    await h.serve()
    async with members(h, "alice", "bob") as (alice, bob):
        await alice.join("red")
        await bob.join("red")
        await alice.expect_next(JOINED, "heard that bob joined")
        await bob.join("red")
        await bob.say("still here")
        await alice.expect_next(
            {"type": "message", "content": "still here"}, "heard nothing about bob joining again"
        )
        expect(await rooms(h, lobby) == {"red": 2}, f"lobby.rooms holds {await rooms(h, lobby)}")


@switching.check("the last member out deletes the room")
async def _empty(h: Harness, lobby_class: Any) -> None:
    lobby = serve_lobby(h, lobby_class)
    await h.serve()
    async with members(h, "alice") as (alice,):
        await alice.join("red")
        await alice.join("blue")
        seen = await rooms(h, lobby)
        expect(seen == {"blue": 1}, f"after alice moved from red to blue, lobby.rooms held {seen}")
        await alice.client.send(json.dumps({"type": "leave"}))
        await alice.expect_next({"type": "left"}, "left")
        seen = await rooms(h, lobby)
        expect(seen == {}, f"after the last member left, lobby.rooms held {seen}")
        await alice.join("green")
        await alice.client.close()

    async def freed() -> bool:
        return await rooms(h, lobby) == {}

    try:
        await eventually(freed, timeout=2)
    except TimeoutError:
        seen = await rooms(h, lobby)
        raise CheckFailed(f"after the last client disconnected, lobby.rooms held {seen}") from None


async def left(member: Member) -> None:
    """``member`` leaves its room, and the check waits until the server has done it."""
    await member.client.send(json.dumps({"type": "leave"}))
    await member.expect_next({"type": "left"}, "left")


@switching.check("leaving when in no room changes nothing")
async def _leave_nowhere(h: Harness, lobby_class: Any) -> None:
    lobby = serve_lobby(h, lobby_class)
    await h.serve()
    (red,) = room_names("leave nowhere", 1)
    async with members(h, "alice", "bob") as (alice, bob):
        await left(alice)
        await bob.join(red)
        await alice.join(red)
        await bob.expect_next(JOINED, "heard that alice joined")
        seen = await rooms(h, lobby)
        expect(seen == {red: 2}, f"after alice left no room, then joined {red}: lobby.rooms {seen}")
    async with members(h, "carol") as (carol,):
        await carol.client.close()  # the endpoint calls leave() for a member in no room

    async def freed() -> bool:
        return await rooms(h, lobby) == {} or bool(h.errors)

    try:
        await eventually(freed, timeout=2)
    except TimeoutError:
        raise CheckFailed(
            f"after everyone left, lobby.rooms held {await rooms(h, lobby)}"
        ) from None
    expect(not h.errors, "leave() raised: for a member leaving, or for carol, in no room")


@switching.check("a room keeps its other members when one leaves")
async def _others_stay(h: Harness, lobby_class: Any) -> None:
    lobby = serve_lobby(h, lobby_class)
    await h.serve()
    (red,) = room_names("others stay", 1)
    async with members(h, "alice", "bob", "carol") as (alice, bob, carol):
        await alice.join(red)
        await bob.join(red)
        await alice.expect_next(JOINED, "heard that bob joined")
        await left(bob)
        await alice.expect_next(LEFT, "heard that bob left")
        seen = await rooms(h, lobby)
        expect(seen == {red: 1}, f"after bob left {red}, alice still in it: lobby.rooms {seen}")
        await carol.join(red)
        await alice.expect_next(JOINED, "heard that carol joined")


@switching.check("every member of the room hears a join and a leave, however many they are")
async def _everyone(h: Harness, lobby_class: Any) -> None:
    serve_lobby(h, lobby_class)
    await h.serve()
    (red,) = room_names("everyone", 1)
    names = ("alice", "bob", "carol", "dave", "erin")
    async with members(h, *names) as crowd:
        for n, member in enumerate(crowd):
            await member.join(red)
            for earlier in crowd[:n]:  # each one already in the room, not just one of them
                await earlier.expect_next(JOINED, f"heard that {member.name} joined {red}")
        leaver = crowd[2]
        await left(leaver)
        for member in crowd:
            if member is not leaver:
                await member.expect_next(LEFT, f"heard that {leaver.name} left {red}")


@switching.check("a member that left can join the same room again")
async def _back(h: Harness, lobby_class: Any) -> None:
    lobby = serve_lobby(h, lobby_class)
    await h.serve()
    (red,) = room_names("back", 1)
    async with members(h, "alice", "bob") as (alice, bob):
        await alice.join(red)
        await bob.join(red)
        await alice.expect_next(JOINED, "heard that bob joined")
        await left(bob)
        await alice.expect_next(LEFT, "heard that bob left")
        await bob.join(red)
        await alice.expect_next(JOINED, "heard that bob joined again")
        await alice.say("welcome back")
        await bob.expect_next(
            {"type": "message", "content": "welcome back"}, "heard alice, back in the room"
        )
        seen = await rooms(h, lobby)
        expect(seen == {red: 2}, f"after bob came back to {red}: lobby.rooms {seen}")


@switching.check("members of other rooms hear nothing of it")
async def _elsewhere(h: Harness, lobby_class: Any) -> None:
    serve_lobby(h, lobby_class)
    await h.serve()
    red, blue, green = room_names("elsewhere")
    async with members(h, "alice", "bob", "carol") as (alice, bob, carol):
        await carol.join(green)
        await alice.join(red)
        await bob.join(red)
        await alice.expect_next(JOINED, f"heard that bob joined {red}")
        await bob.join(blue)
        await alice.expect_next(LEFT, f"heard that bob left {red} for {blue}")
        await left(bob)
        await carol.say("marker")  # fails if carol, in another room, heard any of it first
