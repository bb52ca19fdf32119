"""Through the real nginx: two ``course_server`` replicas behind ``deploy/nginx.conf``, one Redis.

Each test gets a fresh cluster (``cluster_fixtures``). ``cluster.views[i]`` is nginx with the
same config, preferring replica ``i``: a client put there is on replica ``i`` until it dies,
then nginx sends its reconnection to the other one. ``cluster.kill(i)`` is a crash (SIGKILL).
"""

from __future__ import annotations

import asyncio
import json
import os
import re
import socket
from collections.abc import AsyncIterator

import httpx
import pytest
from cluster_fixtures import nginx_path
from conftest import wait_timeout
from websockets.asyncio.client import connect
from websockets.exceptions import ConnectionClosed

from course_server.clients.reconnecting import Connected, ReconnectingClient
from course_server.clients.scaling import join
from course_server.clients.sse import SSEvent, events
from course_server.realtime.backoff import Backoff
from course_server.realtime.messages import MessageEvent
from course_server.security.tokens import create_access_token
from course_server.tools import processes
from course_server.tools.cluster import CONFIG, Cluster, render

pytestmark = pytest.mark.anyio

FAST = Backoff(base=0.05, cap=0.5)


def is_from_nginx(response: httpx.Response) -> bool:
    """nginx's own error page (the app answers JSON): the request never reached a replica."""
    return response.headers["content-type"].startswith("text/html") and "nginx" in response.text


def test_the_rendered_config_is_deploys_own_but_the_upstream_servers_and_port() -> None:
    original = CONFIG.read_text(encoding="utf-8").splitlines()
    rendered = render("\n".join(original), listen=8080, replicas=[9001, 9002]).splitlines()
    assert set(original) - set(rendered) == {"    server app:8000;", "    listen 80;"}
    assert set(rendered) - set(original) == {
        "    server 127.0.0.1:9001;",
        "    server 127.0.0.1:9002;",
        "    listen 127.0.0.1:8080;",
    }


# Chat across replicas ---------------------------------------------------------------------------


async def test_a_message_sent_on_one_replica_reaches_a_client_on_the_other(
    cluster: Cluster,
) -> None:
    alice = await join(cluster.views[0], "across", "ada", timeout=wait_timeout())
    bob = await join(cluster.views[1], "across", "ben", timeout=wait_timeout())
    try:
        await alice.until("join", wait_timeout(), username="ben")
        await alice.say("hello from replica 0")
        [*_, frame] = await bob.until("message", wait_timeout(), username="ada")
        assert frame["content"] == "hello from replica 0"
    finally:
        await alice.close()
        await bob.close()


async def test_each_view_keeps_its_client_on_its_own_replica(cluster: Cluster) -> None:
    alice = await join(cluster.views[0], "pinned", "ada", timeout=wait_timeout())
    bob = await join(cluster.views[1], "pinned", "ben", timeout=wait_timeout())
    try:
        cluster.kill(1)
        with pytest.raises(ConnectionClosed):
            await bob.until("never", wait_timeout(10))  # its replica is gone: so is it
        await alice.say("still here")
        [*_, frame] = await alice.until("message", wait_timeout(), username="ada")
        assert frame["content"] == "still here"
    finally:
        await alice.close()
        await bob.close()


async def test_the_websocket_upgrade_passes_through_nginx(cluster: Cluster) -> None:
    async with connect(cluster.ws("/ws/echo"), open_timeout=wait_timeout()) as websocket:
        assert websocket.response is not None
        assert websocket.response.status_code == 101
        assert websocket.response.headers["Upgrade"].lower() == "websocket"
        await websocket.send("through the proxy")
        async with asyncio.timeout(wait_timeout()):
            assert "through the proxy" in str(await websocket.recv())


# Server-Sent Events --------------------------------------------------------------------------


async def test_the_first_event_arrives_while_the_server_has_not_sent_a_second(
    cluster: Cluster,
) -> None:
    # Two events a minute apart: a buffering proxy would hold the first until the stream ends.
    interval = 60.0
    async with httpx.AsyncClient(timeout=wait_timeout(10)) as http:
        stream = events(http, cluster.url("/events"), interval=interval, count=2)
        async with asyncio.timeout(min(wait_timeout(10), interval / 2)):
            first = await anext(aiter(stream))
        await stream.aclose()  # type: ignore[attr-defined]  # an async generator
    assert (first.id, json.loads(first.data)) == ("1", "Event 1")


async def publish(http: httpx.AsyncClient, cluster: Cluster, view: int, title: str) -> int:
    token = create_access_token("ada", cluster.jwt_secret, 600)
    response = await http.post(
        cluster.views[view].url("/notifications"),
        json={"title": title},
        headers={"Authorization": f"Bearer {token}"},
    )
    assert response.status_code == 201, response.text
    event_id: int = response.json()["id"]
    return event_id


async def notifications(
    http: httpx.AsyncClient, url: str, last_event_id: int
) -> AsyncIterator[SSEvent]:
    """The stream's notifications after ``last_event_id``, until the connection breaks."""
    try:
        async for event in events(http, url, last_event_id=str(last_event_id)):
            if event.comment is None:
                yield event
    except httpx.HTTPError:
        return  # the replica died under the stream


async def test_last_event_id_resumes_the_stream_on_a_survivor_after_its_replica_is_killed(
    cluster: Cluster,
) -> None:
    async with httpx.AsyncClient(timeout=wait_timeout(10)) as http:
        before = await publish(http, cluster, 1, "before")
        received: list[tuple[str | None, str]] = []
        stream = notifications(http, cluster.views[0].url("/notifications/stream"), before - 1)
        async with asyncio.timeout(wait_timeout(10)):
            async for event in stream:
                received.append((event.id, json.loads(event.data)["title"]))
                if len(received) == 1:  # "before", from history: the stream is open
                    await publish(http, cluster, 1, "live")
                else:  # "live": now the replica serving this stream dies
                    cluster.kill(0)
        missed = [await publish(http, cluster, 1, f"missed {n}") for n in range(3)]
        last = received[-1][0]
        assert last is not None
        resumed = notifications(http, cluster.url("/notifications/stream"), int(last))
        async with asyncio.timeout(wait_timeout(10)):
            async for event in resumed:
                received.append((event.id, json.loads(event.data)["title"]))
                if len(received) == 5:
                    break
    assert received == [
        (str(before), "before"),
        (str(before + 1), "live"),
        *[(str(event_id), f"missed {n}") for n, event_id in enumerate(missed)],
    ]


# A replica dies under a chat client ----------------------------------------------------------


async def test_a_chat_client_resumes_through_nginx_on_another_replica_losing_nothing(
    cluster: Cluster,
) -> None:
    url = cluster.views[0].ws("/chat/failover/ada")
    bob = await join(cluster.views[1], "failover", "ben", timeout=wait_timeout())
    received: list[str] = []
    try:
        async with ReconnectingClient(url, backoff=FAST) as alice:
            async with asyncio.timeout(wait_timeout(30)):
                await alice.wait_open()
                await bob.until("join", wait_timeout(), username="ada")
                for n in range(5):
                    await bob.say(f"m{n}")
                async for event in alice:
                    if isinstance(event, MessageEvent):
                        received.append(event.content)
                        if len(received) == 5:  # all before the crash: now it happens
                            cluster.kill(0)
                            for n in range(5, 10):
                                await bob.say(f"m{n}")
                        if len(received) == 10:
                            break
                    if isinstance(event, Connected) and event.number == 2:
                        assert event.last_id is not None  # it resumes: ?last_id=
            # More than 2 if it came back before the survivor saw the dead replica's presence
            # expire: "name taken" (4000) until then, and the client retries.
            assert alice.connections >= 2
    finally:
        await bob.close()
    assert received == [f"m{n}" for n in range(10)]


# nginx's own limits --------------------------------------------------------------------------


async def test_nginx_refuses_a_body_over_its_limit_with_413(cluster: Cluster) -> None:
    async with httpx.AsyncClient(timeout=wait_timeout(10)) as http:
        response = await http.post(cluster.url("/notifications"), content=b"x" * (64 * 1024 + 1))
    assert response.status_code == 413
    assert is_from_nginx(response)


async def test_nginx_passes_a_body_under_its_limit_on_to_the_app(cluster: Cluster) -> None:
    # Over nginx's 16 KiB in-memory buffer: it goes through a temp file the workers must write.
    async with httpx.AsyncClient(timeout=wait_timeout(10)) as http:
        response = await http.post(cluster.url("/notifications"), content=b"x" * (48 * 1024))
    assert response.status_code == 401  # the app's answer: no bearer token
    assert not is_from_nginx(response)


def test_nginx_closes_a_connection_whose_headers_never_end(cluster: Cluster) -> None:
    host, port = cluster.http_url.removeprefix("http://").split(":")
    with socket.create_connection((host, int(port)), timeout=wait_timeout(30)) as sock:
        sock.sendall(b"GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\n")  # no blank line: slowloris
        assert sock.recv(1024) == b""  # closed by nginx after client_header_timeout (10 s)


async def test_nginx_throttles_a_flood_of_login_posts_with_429(cluster: Cluster) -> None:
    wrong = {"username": "ada", "password": "guess"}
    async with httpx.AsyncClient(timeout=wait_timeout(10)) as http:
        responses = [await http.post(cluster.url("/token"), data=wrong) for _ in range(12)]
    # The app throttles failed logins too (JSON); nginx's 429s are the ones the app never saw.
    refused = [r.status_code for r in responses if is_from_nginx(r)]
    assert refused == [429] * len(refused)
    assert len(refused) >= 12 - 6  # 1 + 5 in the burst reach the app, perhaps one more


# The command ------------------------------------------------------------------------------------


def test_the_cluster_command_serves_through_nginx_and_leaves_no_process_behind() -> None:
    nginx_path()
    command = processes.start("course_server.tools.cluster", timeout=wait_timeout(60))
    try:
        assert httpx.get(command.url("/healthz"), timeout=wait_timeout()).status_code == 200
    finally:
        assert command.stop(timeout=wait_timeout(20)) == 0
    children = [int(pid) for pid in re.findall(r"pid (\d+)", command.stdout())]
    assert len(children) == 3  # two replicas and nginx
    for pid in children:
        with pytest.raises(ProcessLookupError):
            os.kill(pid, 0)  # gone, and reaped: no orphan, no zombie
