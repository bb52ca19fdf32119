"""Limits (lesson 09): names in chat URLs, quoted input, rate limits per connection and per user.

The frame size limit (1009) and content length are tested with the chat (``test_chat.py``), the
token bucket itself in ``test_ratelimit.py``.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Iterator
from urllib.parse import quote

import pytest
from conftest import eventually, wait_timeout
from websockets.asyncio.client import ClientConnection, connect

from course_server import RunningServer, Settings, start
from course_server.realtime.messages import MAX_NAME_CHARS, ErrorFrame, name_problem, parse
from course_server.realtime.ratelimit import FloodGuard, TokenBucket, UserBuckets, Verdict
from course_server.security.tokens import create_access_token
from course_server.seed.ratelimit import SeedRateLimiter

pytestmark = pytest.mark.anyio

SECRET = "test-secret-not-for-production-0123456789"


class FakeClock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


async def close_of(websocket: ClientConnection) -> tuple[int | None, str | None]:
    async with asyncio.timeout(wait_timeout()):
        await websocket.wait_closed()
    return websocket.close_code, websocket.close_reason


# Names in the URL ---------------------------------------------------------------------------


@pytest.mark.parametrize("name", ["alice", "Zoë", "東京", "bob.smith-2", "x" * MAX_NAME_CHARS])
def test_names_of_letters_digits_and_dot_dash_underscore_are_fine(name: str) -> None:
    assert name_problem("username", name) is None


@pytest.mark.parametrize(
    "name",
    ["", "x" * (MAX_NAME_CHARS + 1), "a b", "<img>", "alice\u200b", "tab\there", "a/b", "😀"],
)
def test_names_with_other_characters_or_too_long_are_refused(name: str) -> None:
    assert name_problem("username", name) == (
        f"Invalid username: 1-{MAX_NAME_CHARS} letters, digits, '_', '.' or '-'"
    )


@pytest.mark.parametrize(
    ("room", "username", "kind"),
    [("general", "<img src=x>", "username"), ("a room", "ana", "room name")],
)
async def test_a_bad_name_in_the_url_is_accepted_then_closed_1008_with_the_rule(
    server: RunningServer, room: str, username: str, kind: str
) -> None:
    path = f"/chat/{quote(room, safe='')}/{quote(username, safe='')}"
    async with connect(server.ws(path)) as websocket:
        code, reason = await close_of(websocket)
    assert code == 1008
    assert reason is not None and reason.startswith(f"Invalid {kind}: 1-{MAX_NAME_CHARS}")
    assert server.app.state.chat_rooms.users(room) == []


async def test_a_name_in_another_script_joins(server: RunningServer) -> None:
    async with connect(server.ws(f"/chat/{quote('東京')}/{quote('Zoë')}")) as websocket:
        assert json.loads(await websocket.recv())["username"] == "Zoë"


# Quoting a client's input back ------------------------------------------------------------


def test_an_unknown_type_is_quoted_back_shortened() -> None:
    frame = parse(json.dumps({"type": "x" * 50_000}))
    assert isinstance(frame, ErrorFrame)
    assert len(frame.message) < 100
    assert frame.message.startswith("unknown type 'xxxx")


def test_error_messages_never_carry_pydantics_own_report() -> None:
    for raw in ['{"type": "message", "content": 5}', '{"type": 5}', "[]", "{", '{"type": "x"}']:
        frame = parse(raw)
        assert isinstance(frame, ErrorFrame)
        assert "pydantic" not in frame.message and "input_value" not in frame.message


# Rate limits: per connection and per user ---------------------------------------------------


def test_user_buckets_live_while_the_user_has_a_connection() -> None:
    buckets = UserBuckets(rate=1)
    first = buckets.acquire("alice")
    assert buckets.acquire("alice") is first  # a second connection shares the bucket
    buckets.release("alice")
    assert "alice" in buckets
    buckets.release("alice")
    assert len(buckets) == 0
    buckets.release("alice")  # once too often: harmless


def test_user_buckets_memory_follows_the_users_online_not_all_ever_seen() -> None:
    buckets = UserBuckets(rate=1)
    for n in range(10_000):
        buckets.acquire(f"user-{n}")
        buckets.release(f"user-{n}")
    assert len(buckets) == 0


def test_a_spent_bucket_outlives_its_last_connection_until_it_has_refilled() -> None:
    clock = FakeClock()
    buckets = UserBuckets(rate=1, clock=clock)  # a burst of 2, refilled in 2 s
    assert buckets.acquire("ana").allow(2)
    buckets.release("ana")
    again = buckets.acquire("ana")  # a reconnect at once: the same, empty bucket
    assert not again.allow()
    buckets.release("ana")
    clock.now = 2.0
    assert len(buckets) == 0  # refilled: forgotten, as a newcomer would get a full one anyway


def test_the_seed_limiter_keeps_every_user_ever_seen() -> None:
    limiter = SeedRateLimiter(max_messages=10, window_seconds=60)
    for n in range(1_000):
        limiter.is_allowed(f"user-{n}")
    assert len(limiter.message_counts) == 1_000


def test_a_frame_passes_only_when_connection_and_user_both_have_a_token() -> None:
    clock = FakeClock()
    user = TokenBucket(rate=1, burst=3, clock=clock)
    tab1 = FloodGuard(rate=1, burst=2, user=user, clock=clock)
    tab2 = FloodGuard(rate=1, burst=2, user=user, clock=clock)
    verdicts = [tab1.check(), tab1.check(), tab1.check(), tab2.check(), tab2.check()]
    # tab1: two, then its own bucket is empty; tab2: one more, then the user's is empty.
    assert verdicts == [Verdict.ALLOW, Verdict.ALLOW, Verdict.DROP, Verdict.ALLOW, Verdict.DROP]
    assert tab2.bucket.tokens == 1  # a refused frame takes no token from either bucket


@pytest.fixture
def slow() -> Iterator[RunningServer]:
    """Rate 0.5/s: each connection a burst of 1, each user (twice the rate) a burst of 2."""
    settings = Settings(jwt_secret=SECRET, rate_limit=0.5)
    with start(name="limits-slow", settings=settings) as server:
        yield server


def signed_in(path: str, user: str) -> str:
    """``path`` with a token for ``user``: a signed-in user's budget is the user's own."""
    return f"{path}?token={create_access_token(user, SECRET, 60)}"


async def test_a_users_connections_share_one_budget(slow: RunningServer) -> None:
    rooms = ["red", "green", "blue"]
    tabs = [await connect(slow.ws(signed_in(f"/chat/{room}/alice", "alice"))) for room in rooms]
    try:
        for tab in tabs:
            json.loads(await tab.recv())  # her join
        answers = []
        for tab in tabs:  # one message per room: each connection is within its own limit
            await tab.send('{"type": "message", "content": "hi"}')
            answers.append(json.loads(await tab.recv()))
        assert [a.get("code", a["type"]) for a in answers] == ["message", "message", "rate_limited"]
        assert len(slow.app.state.user_buckets) == 1
    finally:
        for tab in tabs:
            await tab.close()
    await eventually(lambda: len(slow.app.state.user_buckets) == 0)


async def test_a_user_out_of_budget_leaves_other_users_theirs(slow: RunningServer) -> None:
    paths = [
        ("/chat/red/alice", "alice"),
        ("/chat/green/alice", "alice"),
        ("/chat/blue/bob", "bob"),
    ]
    clients = [await connect(slow.ws(signed_in(path, user))) for path, user in paths]
    try:
        kinds = []
        for websocket in clients:  # alice spends her whole budget, then bob speaks
            await websocket.recv()  # the join
            await websocket.send('{"type": "message", "content": "hi"}')
            kinds.append(json.loads(await websocket.recv())["type"])
        assert kinds == ["message", "message", "message"]
    finally:
        for websocket in clients:
            await websocket.close()
