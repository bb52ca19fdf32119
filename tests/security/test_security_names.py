"""The Security contract's names, attacked: registered names are owned, names are plain.

Against a real server on loopback with real clients, as an attacker would: an impostor claims
``alice`` with no proof, with bob's proof, with an expired or forged token, or by spelling her
name in fullwidth letters; names with fillers, mixed scripts, NUL or a right-to-left override
try to pass. The real alice, signed in by cookie or ``?token=``, works on every endpoint, and
guests are unaffected. Two processes sharing a Redis are in ``test_security_redis.py``.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager
from typing import Any
from urllib.parse import quote

import httpx
import pytest
from conftest import eventually, wait_timeout
from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import ConnectionClosed

from course_server import RunningServer, Settings, start
from course_server.security.tokens import SESSION_COOKIE, create_access_token

pytestmark = pytest.mark.anyio

SECRET = "test-secret-not-for-production-0123456789"
CYRILLIC_ALICE = "\u0430lice"  # Cyrillic а, then Latin: looks like alice
CYRILLIC_LOOKALIKE = "\u0430\u04cf\u0456\u0441\u0435"  # all Cyrillic, looks like alice
HANGUL_FILLER = "\u3164"  # a letter that shows nothing
IMPOSTOR = 4003
BAD_NAME = 1008


@pytest.fixture(scope="module")
def site() -> Iterator[RunningServer]:
    """One server for the module: every test uses rooms and names of its own."""
    with start(name="test-security-names", settings=Settings(jwt_secret=SECRET)) as running:
        yield running


@pytest.fixture(scope="module")
def tokens(site: RunningServer) -> dict[str, str]:
    """A token for alice and one for bob, from ``POST /token`` (each login hashes a password)."""
    passwords = {"alice": "wonderland", "bob": "builder"}
    return {
        user: httpx.post(site.url("/token"), data={"username": user, "password": password})
        .raise_for_status()
        .json()["access_token"]
        for user, password in passwords.items()
    }


@pytest.fixture(scope="module")
def alice_cookie(site: RunningServer) -> str:
    """Alice's session cookie, from ``POST /session``."""
    response = httpx.post(
        site.url("/session"), data={"username": "alice", "password": "wonderland"}
    )
    return response.raise_for_status().cookies[SESSION_COOKIE]


def with_token(path: str, token: str) -> str:
    return f"{path}?token={token}"


def cookie(value: str) -> dict[str, str]:
    return {"Cookie": f"{SESSION_COOKIE}={value}"}


async def recv_json(websocket: ClientConnection) -> dict[str, Any]:
    async with asyncio.timeout(wait_timeout()):
        return json.loads(await websocket.recv())


async def refused(url: str, **options: Any) -> tuple[int | None, str, list[str]]:
    """Connect to ``url`` and read until the server closes: its code, reason and any frames."""
    frames: list[str] = []
    async with connect(url, **options) as websocket:
        async with asyncio.timeout(wait_timeout()):
            try:
                while True:
                    frames.append(str(await websocket.recv()))
            except ConnectionClosed:
                pass
        return websocket.close_code, websocket.close_reason or "", frames


@asynccontextmanager
async def member(url: str, **options: Any) -> AsyncIterator[ClientConnection]:
    """A chat member whose own join has arrived: it holds its seat from here on."""
    async with connect(url, **options) as websocket:
        while (await recv_json(websocket))["type"] != "join":
            pass
        yield websocket


async def get(url: str) -> httpx.Response:
    async with httpx.AsyncClient() as client:
        return await client.get(url)


async def users(site: RunningServer, room: str) -> list[str]:
    return (await get(site.url(f"/rooms/{room}/users"))).json()["users"]


# --- registered names are owned: the chat -------------------------------------------------


async def test_an_anonymous_alice_in_the_chat_is_closed_4003_saying_why(
    site: RunningServer,
) -> None:
    code, reason, frames = await refused(site.ws("/chat/owned-1/alice"))
    assert (code, frames) == (IMPOSTOR, [])
    assert "alice" in reason and "sign in" in reason


async def test_an_anonymous_alice_posts_nothing_and_the_room_never_sees_her(
    site: RunningServer,
) -> None:
    async with member(site.ws("/chat/owned-2/ana")) as ana:
        async with connect(site.ws("/chat/owned-2/alice")) as impostor:
            with contextlib.suppress(ConnectionClosed):  # it may be closed already
                await impostor.send(json.dumps({"type": "message", "content": "I am alice"}))
            async with asyncio.timeout(wait_timeout()):
                await impostor.wait_closed()
        assert impostor.close_code == IMPOSTOR
        await ana.send(json.dumps({"type": "message", "content": "still here"}))
        # The next frame ana gets is her own message: no join, no post from the impostor.
        assert (await recv_json(ana))["content"] == "still here"
        assert await users(site, "owned-2") == ["ana"]


@pytest.mark.parametrize(
    "proof",
    ["bob's token", "bob's cookie", "expired token", "forged token"],
)
async def test_alice_with_someone_elses_or_a_bad_proof_is_closed_4003(
    site: RunningServer, tokens: dict[str, str], proof: str
) -> None:
    path, headers = "/chat/owned-3/alice", {}
    if proof == "bob's token":
        path = with_token(path, tokens["bob"])
    elif proof == "bob's cookie":
        headers = cookie(tokens["bob"])
    elif proof == "expired token":
        path = with_token(path, create_access_token("alice", SECRET, -120))
    else:
        path = with_token(path, create_access_token("alice", "another-secret-" * 4, 60))
    code, reason, frames = await refused(site.ws(path), additional_headers=headers)
    assert (code, frames) == (IMPOSTOR, [])
    assert reason
    assert await users(site, "owned-3") == []


async def test_the_real_alice_keeps_her_seat_when_an_impostor_tries(
    site: RunningServer, tokens: dict[str, str]
) -> None:
    async with member(site.ws(with_token("/chat/owned-4/alice", tokens["alice"]))) as alice:
        code, _, _ = await refused(site.ws("/chat/owned-4/alice"))
        assert code == IMPOSTOR
        await alice.send(json.dumps({"type": "message", "content": "me"}))
        assert (await recv_json(alice))["content"] == "me"
        assert await users(site, "owned-4") == ["alice"]


async def test_an_impostor_seated_first_is_refused_so_the_real_alice_is_never_taken(
    site: RunningServer, tokens: dict[str, str]
) -> None:
    async with connect(site.ws("/chat/owned-5/alice")) as impostor:
        async with member(site.ws(with_token("/chat/owned-5/alice", tokens["alice"]))):
            assert await users(site, "owned-5") == ["alice"]
        async with asyncio.timeout(wait_timeout()):
            await impostor.wait_closed()
        assert impostor.close_code == IMPOSTOR


@pytest.mark.parametrize("how", ["token", "cookie"])
async def test_a_signed_in_alice_chats_as_alice(
    site: RunningServer, tokens: dict[str, str], alice_cookie: str, how: str
) -> None:
    path, headers = "/chat/owned-6/alice", {}
    if how == "token":
        path = with_token(path, tokens["alice"])
    else:
        headers = cookie(alice_cookie)
    async with member(site.ws(path), additional_headers=headers) as alice:
        await alice.send(json.dumps({"type": "message", "content": "hello"}))
        message = await recv_json(alice)
    assert (message["username"], message["content"]) == ("alice", "hello")


async def test_a_guest_name_needs_no_proof(site: RunningServer) -> None:
    async with member(site.ws("/chat/owned-7/carol")) as carol:
        await carol.send(json.dumps({"type": "message", "content": "hi"}))
        assert (await recv_json(carol))["username"] == "carol"


async def test_a_registered_name_in_other_case_is_still_owned(site: RunningServer) -> None:
    code, reason, _ = await refused(site.ws("/chat/owned-8/ALICE"))
    assert code == IMPOSTOR
    assert "alice" in reason


async def test_an_all_cyrillic_lookalike_of_alice_is_still_owned(site: RunningServer) -> None:
    # One script, so no "mixes scripts" refusal: on screen it is alice, so it is hers.
    code, reason, frames = await refused(site.ws(f"/chat/owned-9/{quote(CYRILLIC_LOOKALIKE)}"))
    assert (code, frames) == (IMPOSTOR, [])
    assert "alice" in reason
    assert await users(site, "owned-9") == []


# --- registered names are owned: private messages -----------------------------------------


async def test_an_anonymous_alice_on_ws_users_is_closed_4003_and_gets_no_private_message(
    site: RunningServer, tokens: dict[str, str]
) -> None:
    async with connect(site.ws(with_token("/ws/users/alice", tokens["alice"]))) as alice:
        code, reason, frames = await refused(site.ws("/ws/users/alice"))
        async with connect(site.ws("/ws/users/ben")) as ben:
            await ben.send(json.dumps({"type": "private_message", "to": "alice", "message": "pw"}))
            async with asyncio.timeout(wait_timeout()):
                while (frame := await alice.recv()) != "From ben: pw":
                    assert frame == "ben joined!"
    assert (code, frames) == (IMPOSTOR, [])
    assert "sign in" in reason


async def test_a_signed_in_alice_gets_her_private_messages_by_cookie(
    site: RunningServer, alice_cookie: str
) -> None:
    async with connect(site.ws("/ws/users/alice"), additional_headers=cookie(alice_cookie)) as me:
        await me.send(json.dumps({"type": "private_message", "to": "alice", "message": "note"}))
        async with asyncio.timeout(wait_timeout()):
            assert await me.recv() == "From alice: note"


async def test_bobs_token_cannot_listen_as_alice(
    site: RunningServer, tokens: dict[str, str]
) -> None:
    code, _, frames = await refused(site.ws(with_token("/ws/users/alice", tokens["bob"])))
    assert (code, frames) == (IMPOSTOR, [])


# --- registered names are owned: the lobby ------------------------------------------------


async def test_an_anonymous_join_named_alice_in_the_lobby_is_closed_4003_unseated(
    site: RunningServer,
) -> None:
    async with connect(site.ws("/ws/lobby")) as watcher:
        await watcher.send(json.dumps({"type": "join", "room": "owned-lobby-1"}))
        assert (await recv_json(watcher))["type"] == "presence"
        async with connect(site.ws("/ws/lobby")) as impostor:
            await impostor.send(
                json.dumps({"type": "join", "room": "owned-lobby-1", "name": "alice"})
            )
            async with asyncio.timeout(wait_timeout()):
                await impostor.wait_closed()
        assert impostor.close_code == IMPOSTOR
        assert "sign in" in (impostor.close_reason or "")
        await watcher.send(json.dumps({"type": "message", "content": "next"}))
        assert await recv_json(watcher) == {"type": "message", "content": "next"}


@pytest.mark.parametrize("how", ["token", "cookie"])
async def test_a_signed_in_alice_joins_the_lobby_under_her_name(
    site: RunningServer, tokens: dict[str, str], alice_cookie: str, how: str
) -> None:
    path, headers = "/ws/lobby", {}
    if how == "token":
        path = with_token(path, tokens["alice"])
    else:
        headers = cookie(alice_cookie)
    async with connect(site.ws(path), additional_headers=headers) as alice:
        await alice.send(json.dumps({"type": "join", "room": f"lobby-{how}", "name": "alice"}))
        presence = await recv_json(alice)
    assert presence["names"] == ["alice"]


# --- names are plain ----------------------------------------------------------------------


async def test_fullwidth_alice_is_alice_and_needs_her_proof(site: RunningServer) -> None:
    code, reason, _ = await refused(site.ws(f"/chat/plain-1/{quote('ａｌｉｃｅ')}"))
    assert code == IMPOSTOR
    assert "alice" in reason


async def test_fullwidth_alice_signed_in_joins_as_plain_alice(
    site: RunningServer, tokens: dict[str, str]
) -> None:
    path = with_token(f"/chat/plain-2/{quote('ａｌｉｃｅ')}", tokens["alice"])
    async with connect(site.ws(path)) as alice:
        join = await recv_json(alice)
    assert join["username"] == "alice"


@pytest.mark.parametrize(
    ("name", "why"),
    [
        (CYRILLIC_ALICE, "mixes scripts"),
        (HANGUL_FILLER, "U+3164"),
        ("ana\u3164", "U+3164"),
        ("\u115f", "U+115F"),
        ("\uffa0", "U+FFA0"),
        ("ana\x00", "Invalid username"),
        ("\u202eana", "Invalid username"),  # right-to-left override
    ],
)
async def test_a_deceptive_username_is_closed_1008_with_the_reason(
    site: RunningServer, name: str, why: str
) -> None:
    code, reason, frames = await refused(site.ws(f"/chat/plain-3/{quote(name)}"))
    assert (code, frames) == (BAD_NAME, [])
    assert why in reason


async def test_a_deceptive_room_name_in_the_chat_is_closed_1008(site: RunningServer) -> None:
    code, reason, _ = await refused(site.ws("/chat/" + quote("gen\u0435ral") + "/ana"))
    assert code == BAD_NAME
    assert reason.startswith("Invalid room name")


async def test_a_deceptive_user_id_on_ws_users_is_closed_1008(site: RunningServer) -> None:
    code, reason, _ = await refused(site.ws(f"/ws/users/{quote(CYRILLIC_ALICE)}"))
    assert code == BAD_NAME
    assert "mixes scripts" in reason


@pytest.mark.parametrize("room", ["blue\x00", "\u202eeulb", "\u3164", "bl\u0443e"])
async def test_a_deceptive_lobby_room_gets_an_error_and_no_room(
    site: RunningServer, room: str
) -> None:
    async with connect(site.ws("/ws/lobby")) as client:
        await client.send(json.dumps({"type": "join", "room": room}))
        answer = await recv_json(client)
    assert answer["type"] == "error"
    assert "Invalid room name" in answer["message"]
    assert room not in (await get(site.url("/lobby/rooms"))).json()["rooms"]


async def test_a_deceptive_lobby_display_name_gets_an_error(site: RunningServer) -> None:
    async with connect(site.ws("/ws/lobby")) as client:
        await client.send(json.dumps({"type": "join", "room": "plain-4", "name": CYRILLIC_ALICE}))
        answer = await recv_json(client)
    assert answer["type"] == "error"
    assert "mixes scripts" in answer["message"]


async def test_a_deceptive_room_in_the_users_endpoint_is_a_422_saying_why(
    site: RunningServer,
) -> None:
    response = await get(site.url(f"/rooms/{quote(HANGUL_FILLER)}/users"))
    assert response.status_code == 422
    assert "U+3164" in response.json()["detail"]


async def test_a_fullwidth_room_is_the_plain_room(site: RunningServer) -> None:
    async with member(site.ws(f"/chat/{quote('ｐｌａｉｎ５')}/ana")):
        assert await users(site, "plain5") == ["ana"]


# --- COURSE_GUESTS=false -------------------------------------------------------------------


@pytest.fixture(scope="module")
def members_only() -> Iterator[RunningServer]:
    settings = Settings(jwt_secret=SECRET, guests=False)
    with start(name="test-security-members-only", settings=settings) as running:
        yield running


async def test_without_guests_an_anonymous_guest_name_is_closed_4003(
    members_only: RunningServer,
) -> None:
    code, reason, _ = await refused(members_only.ws("/chat/general/ana"))
    assert code == IMPOSTOR
    assert "Sign in" in reason


async def test_without_guests_an_anonymous_private_message_listener_is_closed_4003(
    members_only: RunningServer,
) -> None:
    code, _, frames = await refused(members_only.ws("/ws/users/ana"))
    assert (code, frames) == (IMPOSTOR, [])


async def test_without_guests_a_lobby_join_under_a_guest_name_is_closed_4003(
    members_only: RunningServer,
) -> None:
    async with connect(members_only.ws("/ws/lobby")) as client:
        await client.send(json.dumps({"type": "join", "room": "blue", "name": "ana"}))
        async with asyncio.timeout(wait_timeout()):
            await client.wait_closed()
    assert client.close_code == IMPOSTOR


async def test_without_guests_a_signed_in_user_chats(members_only: RunningServer) -> None:
    token = create_access_token("bob", SECRET, 60)
    async with member(members_only.ws(with_token("/chat/general/bob", token))) as bob:
        await bob.send(json.dumps({"type": "message", "content": "members only"}))
        assert (await recv_json(bob))["username"] == "bob"
    await eventually(lambda: members_only.app.state.chat_rooms.users("general") == [])


def test_guests_default_to_open_and_read_from_the_environment() -> None:
    assert Settings().guests is True
    assert Settings.from_env({"COURSE_GUESTS": "false"}).guests is False
