"""Lesson 07's Lua scripts against a real Redis: ids, history, presence, resends, reaping.

No server here: each test plays one or two "processes" by calling the scripts the way
``RedisRooms`` does (through ``redis_commands.to_call``), and reads Redis' keys directly.
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator, Iterator
from typing import Any

import pytest
from conftest import wait_timeout
from redis.asyncio import Redis

from course_server.realtime.fanout import Peer
from course_server.realtime.messages import SendMessage
from course_server.scaling.commands import Command, Kind, to_call
from course_server.scaling.link import Scripts, connect
from course_server.scaling.presence import Presence
from course_server.scaling.scripts import PROCS, RoomKeys, proc_rooms
from course_server.scaling.shared_room import Member, MemberState, SharedRoom
from course_server.tools.redis_server import RedisServer

pytestmark = pytest.mark.anyio

HISTORY = 3
LIMIT = 4  # client_msg_ids remembered per room


@pytest.fixture(scope="module")
def redis_url() -> Iterator[str]:
    with RedisServer(timeout=wait_timeout(10)) as server:
        yield server.url


@pytest.fixture
async def client(redis_url: str) -> AsyncIterator[Redis]:
    client = connect(redis_url, "test")
    await client.flushall()
    yield client
    await client.aclose()


class Process:
    """One server process, as the scripts see it: an id, a heartbeat, its members' commands."""

    def __init__(self, client: Redis, name: str, room: str = "general") -> None:
        self.client, self.name, self.scripts = client, name, Scripts(client)
        self.room = SharedRoom(room, lambda *_: None)

    async def beat(self, ttl: float = 60.0) -> list[Any]:
        return await self.scripts.call("HEARTBEAT", [PROCS], [self.name, int(ttl * 1000)])

    async def run(self, kind: Kind, username: str, **options: Any) -> Any:
        member = Member(username, Peer.__new__(Peer), options.pop("last_id", None))
        member.state = MemberState.JOINED
        member.joined_id = options.pop("joined_id", 0)
        command = Command(kind, self.room, member, options.pop("message", None))
        call = to_call(command, self.name, HISTORY, LIMIT)
        assert call is not None
        return await self.scripts.call(*call)

    async def join(self, username: str, last_id: int | None = None) -> Any:
        return await self.run("join", username, last_id=last_id)

    async def say(self, username: str, content: str, key: str | None = None) -> Any:
        message = SendMessage(type="message", content=content, client_msg_id=key)
        return await self.run("post", username, message=message)


def event_ids(reply: list[Any]) -> list[int]:
    return [json.loads(event)["id"] for event in reply[4:]]


@pytest.fixture
async def alive(client: Redis) -> Process:
    process = Process(client, "p1")
    await process.beat()
    return process


async def test_ids_are_consecutive_per_room_whichever_process_records(
    client: Redis, alive: Process
) -> None:
    other = Process(client, "p2")
    await other.beat()
    assert (await alive.join("alice"))[1] == 1
    assert (await other.join("bob"))[1] == 2
    assert [(await p.say(n, "x"))[1] for p, n in [(alive, "alice"), (other, "bob")]] == [3, 4]


async def test_event_is_stored_and_published_with_its_id_first(
    client: Redis, alive: Process
) -> None:
    keys = RoomKeys.of("general")
    async with client.pubsub() as pubsub:
        await pubsub.subscribe(keys.channel)
        await pubsub.get_message(timeout=wait_timeout())  # the confirmation
        await alive.join("alice")
        published = await pubsub.get_message(timeout=wait_timeout())
    [(entry_id, fields)] = await client.xrange(keys.log)
    assert entry_id == "0-1"
    assert published["data"] == fields["e"]
    assert fields["e"].startswith('{"id":1,"type":"join","username":"alice"')


async def test_a_name_held_by_a_live_process_is_taken(client: Redis, alive: Process) -> None:
    other = Process(client, "p2")
    await alive.join("alice")
    assert await other.join("alice") == [0]


async def test_a_name_held_by_a_dead_process_is_taken_over_after_its_leave(
    client: Redis, alive: Process
) -> None:
    dead = Process(client, "p0")
    await dead.beat(ttl=0)  # expired at once
    await dead.join("alice")
    await alive.join("bob")
    reply = await alive.join("alice")
    kinds = [json.loads(event)["type"] for event in reply[4:]]
    assert (reply[0], reply[1], kinds) == (1, 4, ["join", "join", "leave", "join"])


async def test_history_is_exactly_the_last_history_size_events(
    client: Redis, alive: Process
) -> None:
    await alive.join("alice")
    for n in range(5):
        await alive.say("alice", f"m{n}")
    assert await client.xlen(RoomKeys.of("general").log) == HISTORY
    assert event_ids(await alive.join("bob")) == [4, 5, 6, 7]  # the 3 held, then bob's join


async def test_resume_is_complete_when_nothing_after_last_id_was_evicted(alive: Process) -> None:
    await alive.join("alice")
    for n in range(4):
        await alive.say("alice", f"m{n}")  # ids 2..5; ids 3..5 held
    reply = await alive.join("bob", last_id=2)
    assert (reply[2], reply[3], event_ids(reply)) == (1, 3, [3, 4, 5, 6])


async def test_resume_is_incomplete_when_events_after_last_id_were_evicted(
    alive: Process,
) -> None:
    await alive.join("alice")
    for n in range(4):
        await alive.say("alice", f"m{n}")
    reply = await alive.join("bob", last_id=1)
    assert (reply[2], reply[3], event_ids(reply)) == (0, 3, [3, 4, 5, 6])


async def test_resume_after_an_id_never_given_is_incomplete_with_all_held(
    alive: Process,
) -> None:
    await alive.join("alice")
    reply = await alive.join("bob", last_id=99)
    assert (reply[2], reply[3], event_ids(reply)) == (0, 1, [1, 2])


async def test_a_resend_returns_the_first_id_and_records_nothing(alive: Process) -> None:
    await alive.join("alice")
    assert await alive.say("alice", "hi", key="k1") == [1, 2]
    assert await alive.say("alice", "hi", key="k1") == [0, 2]
    assert (await alive.say("alice", "next"))[1] == 3


async def test_remembered_client_msg_ids_are_bounded(client: Redis, alive: Process) -> None:
    await alive.join("alice")
    for n in range(LIMIT + 1):
        await alive.say("alice", "x", key=f"k{n}")
    keys = RoomKeys.of("general")
    assert await client.hlen(keys.sent) == LIMIT
    assert (await alive.say("alice", "x", key="k0"))[0] == 1  # forgotten: a new message


async def test_a_post_from_someone_this_process_does_not_hold_is_refused(alive: Process) -> None:
    assert await alive.say("mallory", "hi") == [-1]


async def test_the_last_leave_frees_the_room_but_keeps_its_counter_a_while(
    client: Redis, alive: Process
) -> None:
    await alive.join("alice")
    await alive.say("alice", "hi", key="k")
    assert await alive.run("leave", "alice", joined_id=1) == 3
    keys = RoomKeys.of("general")
    assert await client.exists(keys.log, keys.users, keys.owners, keys.sent, keys.sentq) == 0
    assert await client.get(keys.seq) == "3" and await client.ttl(keys.seq) > 0
    assert await client.hlen(proc_rooms("p1")) == 0


async def test_a_leave_for_an_older_membership_of_the_same_name_does_nothing(
    alive: Process,
) -> None:
    await alive.join("alice")  # id 1
    assert await alive.run("leave", "alice", joined_id=7) == 0


async def test_ids_go_on_from_the_floor_after_redis_lost_its_data(
    client: Redis, alive: Process
) -> None:
    await alive.join("alice")
    alive.room.last_seen = 41  # what this process had seen before the restart
    await client.flushall()
    await alive.beat()
    assert (await alive.join("bob"))[1] == 42


async def test_users_of_an_expired_process_are_not_listed(client: Redis, alive: Process) -> None:
    dead = Process(client, "p0")
    await dead.beat()
    await dead.join("zed")
    await alive.join("alice")
    keys = RoomKeys.of("general")
    roster = [keys.seq, keys.log, keys.users, keys.owners, PROCS]
    assert await alive.scripts.call("ROSTER", roster, []) == ["zed", "alice"]
    await dead.beat(ttl=0)
    assert await alive.scripts.call("ROSTER", roster, []) == ["alice"]


async def test_a_heartbeat_reaps_an_expired_process_and_its_users_leave(
    client: Redis, alive: Process
) -> None:
    dead = Process(client, "p0")
    await dead.beat(ttl=0)
    await dead.join("zed")
    await alive.join("alice")
    presence = Presence(
        client,
        alive.scripts,
        "p1",
        interval=1,
        ttl=60,
        history_size=HISTORY,
        on_beat=lambda _: None,
    )
    await presence.beat()
    keys = RoomKeys.of("general")
    [*_, (_, last)] = await client.xrange(keys.log)
    assert json.loads(last["e"])["type"] == "leave"
    assert await client.zscore(PROCS, "p0") is None
    assert await client.exists(proc_rooms("p0")) == 0
    assert await client.hgetall(keys.owners) == {"alice": "p1"}


async def test_a_clean_exit_with_no_users_is_forgotten_at_once(
    client: Redis, alive: Process
) -> None:
    await alive.scripts.call("RETIRE", [PROCS, proc_rooms("p1")], ["p1"])
    assert await client.zscore(PROCS, "p1") is None


async def test_a_heartbeat_after_being_forgotten_reports_the_loss(alive: Process) -> None:
    assert (await alive.beat())[0] == 0
    await alive.client.zrem(PROCS, "p1")
    assert (await alive.beat())[0] == 1
