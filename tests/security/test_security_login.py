"""The login throttle under attack: guesses by name and by address, floods, and two processes.

Spec, Security contract: ``POST /token`` and ``POST /session`` run at most 2 password hashes at
once; more than 5 failures for one username or one client address within 60 s → 429 with
``Retry-After``, the right password included, until the window passes; with Redis the counts are
every process's. Each client here connects from a loopback address of its own
(``credentials.client_from``), so one test's failures never trip another's.
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Iterator

import httpx
import pytest
from conftest import eventually, wait_timeout
from credentials import CHEAP, client_from, fresh_address
from pwdlib import PasswordHash

from benchmarks.login_flood import flood
from course_server import RunningServer, Settings, create_app, start
from course_server.clients.websocket import talk
from course_server.security.throttle import InProcessFailures, LoginThrottle, TooManyFailures
from course_server.security.tokens import SESSION_COOKIE, Users
from course_server.tools.processes import spawn
from course_server.tools.redis_server import RedisServer
from course_server.urls import ServerURLs

pytestmark = pytest.mark.anyio

SECRET = "login-throttle-tests-" * 2
PASSWORDS = {
    "alice": "wonderland",
    "bob": "builder",
    "carol": "cipher",
    "dave": "diver",
    "erin": "enigma",
}


@pytest.fixture(scope="module")
def server() -> Iterator[RunningServer]:
    """The spec's defaults (5 failures, 60 s, 2 hashes), with cheaply hashed users."""
    app = create_app(Settings(jwt_secret=SECRET, demo_users=PASSWORDS))
    app.state.users = Users(PASSWORDS, hasher=CHEAP)
    with start(app, name=f"test-{__name__}") as running:
        yield running


async def login(
    http: httpx.AsyncClient, server: ServerURLs, username: str, password: str
) -> httpx.Response:
    return await http.post(server.url("/token"), data={"username": username, "password": password})


async def fail(
    server: RunningServer, username: str, times: int, address: str | None = None
) -> None:
    """``times`` wrong passwords for ``username`` (each from a fresh address unless given)."""
    for _ in range(times):
        async with client_from(address) as http:
            assert (await login(http, server, username, "wrong")).status_code == 401


def assert_throttled(response: httpx.Response, window: int = 60) -> None:
    assert response.status_code == 429, response.text
    assert 1 <= int(response.headers["retry-after"]) <= window
    assert response.json() == {"detail": "Too many failed logins: try again later"}


# By name, by address


async def test_five_failures_for_a_name_refuse_its_right_password_with_429(
    server: RunningServer,
) -> None:
    await fail(server, "alice", 5)  # five addresses: only the name is over its limit
    async with client_from() as http:
        assert_throttled(await login(http, server, "alice", "wonderland"))


async def test_the_failures_of_one_name_leave_other_names_alone(server: RunningServer) -> None:
    await fail(server, "bob", 5)
    async with client_from() as http:
        assert (await login(http, server, "carol", "cipher")).status_code == 200


async def test_five_failures_from_an_address_refuse_every_name_from_it(
    server: RunningServer,
) -> None:
    address = fresh_address()
    for name in ["mallory", "trent", "eve", "oscar", "peggy"]:  # five names: one address
        await fail(server, name, 1, address)
    async with client_from(address) as http:
        assert_throttled(await login(http, server, "dave", "diver"))
    async with client_from() as elsewhere:
        assert (await login(elsewhere, server, "dave", "diver")).status_code == 200


async def test_cookie_login_is_throttled_too_and_sets_no_cookie(server: RunningServer) -> None:
    address = fresh_address()
    await fail(server, "nobody", 5, address)
    async with client_from(address) as http:
        form = {"username": "carol", "password": "cipher"}
        response = await http.post(server.url("/session"), data=form)
    assert_throttled(response)
    assert SESSION_COOKIE not in response.headers.get("set-cookie", "")


async def test_right_passwords_are_not_failures(server: RunningServer) -> None:
    async with client_from() as http:
        replies = [await login(http, server, "carol", "cipher") for _ in range(8)]
    assert [reply.status_code for reply in replies] == [200] * 8


async def test_unknown_names_are_counted_like_known_ones(server: RunningServer) -> None:
    await fail(server, "no-such-user", 5)
    async with client_from() as http:
        assert_throttled(await login(http, server, "no-such-user", "anything"))


async def test_a_burst_of_guesses_gets_five_checked_and_the_rest_429(
    server: RunningServer,
) -> None:
    """Concurrent guesses see each other: a burst cannot slip under the limit while hashing."""
    address = fresh_address()
    async with client_from(address) as http:
        replies = await asyncio.gather(*(login(http, server, "burst", "x") for _ in range(20)))
    codes = sorted(reply.status_code for reply in replies)
    assert codes == [401] * 5 + [429] * 15


async def test_the_refusal_lasts_until_the_window_passes() -> None:
    settings = Settings(jwt_secret=SECRET, demo_users=PASSWORDS, login_window=1)
    app = create_app(settings)
    app.state.users = Users(PASSWORDS, hasher=CHEAP)
    with start(app, name=f"test-{__name__}-window") as short:
        await fail(short, "alice", 5)
        async with client_from() as http:
            assert_throttled(await login(http, short, "alice", "wonderland"), window=1)

            async def let_in() -> bool:
                return (await login(http, short, "alice", "wonderland")).status_code == 200

            await eventually(let_in, timeout=5, interval=0.2)


# Concurrency: instrumented, not timed


class GatedUsers(Users):
    """Users whose password check waits for ``release``, counting the checks under way."""

    def __init__(self) -> None:
        super().__init__(PASSWORDS, hasher=CHEAP)
        self.release = threading.Event()
        self.running = 0
        self.most = 0
        self._count = threading.Lock()

    def authenticate(self, username: str, password: str) -> bool:
        with self._count:
            self.running += 1
            self.most = max(self.most, self.running)
        try:
            self.release.wait(wait_timeout(10))
            return super().authenticate(username, password)
        finally:
            with self._count:
                self.running -= 1


@pytest.fixture
def gated() -> Iterator[tuple[RunningServer, GatedUsers]]:
    settings = Settings(jwt_secret=SECRET, demo_users=PASSWORDS, login_max_failures=100)
    app = create_app(settings)
    users = app.state.users = GatedUsers()
    with start(app, name=f"test-{__name__}-gated") as running:
        try:
            yield running, users
        finally:
            users.release.set()


async def test_at_most_two_password_checks_run_at_once(
    gated: tuple[RunningServer, GatedUsers],
) -> None:
    server, users = gated
    throttle: LoginThrottle = server.app.state.login_throttle
    async with client_from() as http:
        logins = [asyncio.create_task(login(http, server, f"u{n}", "x")) for n in range(6)]
        await eventually(lambda: users.running == 2 and throttle.waiting == 4)
        assert (users.running, throttle.hashing) == (2, 2)
        users.release.set()
        replies = await asyncio.gather(*logins)
    assert [reply.status_code for reply in replies] == [401] * 6
    assert users.most == 2


async def test_websockets_are_served_while_passwords_are_checked(
    gated: tuple[RunningServer, GatedUsers],
) -> None:
    """The checks run in worker threads: the event loop answers an echo meanwhile."""
    server, users = gated
    async with client_from() as http:
        logins = [asyncio.create_task(login(http, server, "alice", "x")) for _ in range(3)]
        await eventually(lambda: users.running == 2)
        replies = await talk(server.ws("/ws/echo"), "still here?", timeout=wait_timeout())
        assert replies == ["You said: still here?"]
        users.release.set()
        await asyncio.gather(*logins)


def test_the_cap_holds_on_a_new_event_loop() -> None:
    """A server restarted with the same app runs on a new loop: the cap must work there too."""
    throttle = LoginThrottle(InProcessFailures(100, 60), concurrency=1)

    async def two_at_once() -> list[bool]:
        gate = threading.Event()

        def verify() -> bool:
            return not gate.wait(wait_timeout())  # False, once the gate opens

        checks = [asyncio.create_task(throttle.check(f"u{n}", "a", verify)) for n in range(2)]
        await eventually(lambda: throttle.waiting == 1 and throttle.hashing == 1)
        gate.set()
        return await asyncio.gather(*checks)

    assert asyncio.run(two_at_once()) == [False, False]
    assert asyncio.run(two_at_once()) == [False, False]


async def test_names_no_one_tries_again_do_not_pile_up() -> None:
    """An attacker trying ever new names must not grow the in-process counts without bound."""
    failures = InProcessFailures(max_failures=5, window=1e-9)  # every failure stale at once
    most = 0
    for n in range(10_000):
        await failures.begin([f"user:{n}"], "attempt")
        most = max(most, len(failures._keys))
    assert most <= 1024


async def test_failures_from_one_ipv6_network_add_up_whatever_the_address() -> None:
    """An attacker with a /64 (one customer's share) tries each guess from a new address."""
    throttle = LoginThrottle(InProcessFailures(max_failures=5, window=60), concurrency=2)
    for n in range(5):
        assert not await throttle.check(f"name{n}", f"2001:db8::{n + 1}", lambda: False)
    with pytest.raises(TooManyFailures):
        await throttle.check("other", "2001:db8::ffff", lambda: True)


# Memory: a flood of wrong logins against `python -m course_server`, real argon2


async def test_forty_concurrent_wrong_logins_grow_the_server_by_less_than_300_mb() -> None:
    """Each from its own address and name, so that every one is hashed (~64 MiB apiece)."""
    with spawn() as server:
        result = await flood(server, server.pid, 40, timeout=wait_timeout(120))
    assert result.codes == {401: 40}
    assert result.growth < 300_000_000


# Timing: an unknown name costs what a wrong password costs


class CountingHasher(PasswordHash):
    """pwdlib's hasher, counting the verifications (what a login costs)."""

    verified = 0

    def verify(self, password: str | bytes, hash: str | bytes) -> bool:
        self.verified += 1
        return super().verify(password, hash)


@pytest.mark.parametrize("username", ["erin", "mallory"])
async def test_a_failed_login_costs_one_verification_whether_or_not_the_name_exists(
    server: RunningServer, username: str
) -> None:
    hasher = CountingHasher(CHEAP.hashers)
    users = Users(PASSWORDS, hasher=hasher)
    users.authenticate("alice", "warm-up")  # the one-off hashing of every password
    hasher.verified = 0
    previous, server.app.state.users = server.app.state.users, users
    try:
        async with client_from() as http:
            assert (await login(http, server, username, "wrong")).status_code == 401
    finally:
        server.app.state.users = previous
    assert hasher.verified == 1


# Two processes sharing Redis


@pytest.fixture(scope="module")
def shared(redis_server: RedisServer) -> Iterator[tuple[RunningServer, RunningServer]]:
    """Servers "A" and "B" sharing a Redis (nothing else), with cheaply hashed users."""
    settings = Settings(jwt_secret=SECRET, demo_users=PASSWORDS, redis_url=redis_server.url)
    pair = []
    for name in "ab":
        app = create_app(settings)
        app.state.users = Users(PASSWORDS, hasher=CHEAP)
        pair.append(start(app, name=f"test-{__name__}-{name}"))
    yield pair[0], pair[1]
    for running in pair:
        running.stop()


async def test_failures_on_two_processes_add_up_for_a_name(
    shared: tuple[RunningServer, RunningServer],
) -> None:
    a, b = shared
    await fail(a, "alice", 3)
    await fail(b, "alice", 2)
    async with client_from() as http:
        assert_throttled(await login(http, a, "alice", "wonderland"))
        assert_throttled(await login(http, b, "alice", "wonderland"))


async def test_failures_on_two_processes_add_up_for_an_address(
    shared: tuple[RunningServer, RunningServer],
) -> None:
    a, b = shared
    address = fresh_address()
    await fail(a, "x1", 3, address)
    await fail(b, "x2", 2, address)
    async with client_from(address) as http:
        assert_throttled(await login(http, b, "bob", "builder"))


async def test_a_success_on_one_process_is_no_failure_on_the_other(
    shared: tuple[RunningServer, RunningServer],
) -> None:
    a, b = shared
    address = fresh_address()
    async with client_from(address) as http:
        for _ in range(3):
            assert (await login(http, a, "carol", "cipher")).status_code == 200
            assert (await login(http, b, "carol", "cipher")).status_code == 200


async def test_while_redis_is_down_logins_answer_503_not_unlimited_guesses(
    shared: tuple[RunningServer, RunningServer], redis_server: RedisServer
) -> None:
    a, _ = shared
    await asyncio.to_thread(redis_server.stop)
    try:
        async with client_from() as http:
            response = await login(http, a, "bob", "builder")
    finally:
        await asyncio.to_thread(redis_server.start)
    assert response.status_code == 503
    assert response.headers["retry-after"] == "1"
    async with client_from() as http:
        assert (await login(http, a, "bob", "builder")).status_code == 200
