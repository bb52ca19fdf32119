"""The attacks of the Security contract, one coroutine each, returning a ``Row``."""

from __future__ import annotations

import asyncio
import dataclasses
import json
import time
from collections.abc import Awaitable, Callable

import httpx
import psutil
from websockets.asyncio.client import connect

from attacks import clients
from benchmarks import floods
from course_server.clients.handshake import upgrade_request
from course_server.clients.misbehave import slow_headers
from course_server.tools.processes import ServerProcess

LOOKALIKES = {
    "Hangul filler": "\u3164",
    "Cyrillic а in alice": "\u0430lice",
    "fullwidth ａｌｉｃｅ": "\uff41\uff4c\uff49\uff43\uff45",
}


@dataclasses.dataclass(frozen=True)
class Row:
    attack: str
    expected: str
    got: str
    ok: bool


@dataclasses.dataclass
class Target:
    """The servers under attack: ``a`` and ``b`` (the same process without Redis)."""

    a: ServerProcess
    b: ServerProcess
    short: bool
    across: str = ""  # " (across processes)" when a and b are two processes sharing a Redis

    @property
    def flood_seconds(self) -> float:
        return 1.5 if self.short else 3.0


Probe = Callable[[Target], Awaitable[list[Row]]]
PROBES: list[Probe] = []


def probe(run: Probe) -> Probe:
    PROBES.append(run)
    return run


def refused(got: str) -> bool:
    return got.startswith(("close 4003", "close 1008", "HTTP 4"))


@probe
async def impostors(t: Target) -> list[Row]:
    """A registered name without proof, or with another user's proof, is closed with 4003."""
    bob = await clients.token(t.a, "bob", "builder")
    alice = await clients.token(t.a, "alice", "wonderland")
    rows = []
    async with connect(t.a.ws(f"/chat/general/alice?token={alice}")) as owner:
        await owner.recv()  # the owner's own join
        for what, path in [
            ("anonymous /chat/general/alice", "/chat/general/alice"),
            ("anonymous /ws/users/alice", "/ws/users/alice"),
            ("bob's token as alice in chat", f"/chat/general/alice?token={bob}"),
            ("bob's token as alice on /ws/users", f"/ws/users/alice?token={bob}"),
            ("forged token as alice", "/chat/general/alice?token=e30.e30.x"),
        ]:
            got = await clients.refusal(t.b, path)
            rows.append(Row(what + t.across, "close 4003", got, got.startswith("close 4003")))
        async with httpx.AsyncClient(timeout=clients.TIMEOUT) as http:
            users = (await http.get(t.b.url("/rooms/general/users"))).json()["users"]
        seat = users.count("alice") == 1 and owner.close_code is None
        got = f"alice seated {users.count('alice')}x, connection open: {owner.close_code is None}"
        rows.append(Row("owner's seat after impostors" + t.across, "untouched", got, seat))
    return rows


@probe
async def lookalike_names(t: Target) -> list[Row]:
    rows = []
    for what, name in LOOKALIKES.items():
        got = await clients.refusal(t.a, f"/chat/general/{name}")
        rows.append(Row(f"username: {what}", "refused", got, refused(got)))
    for what, room in [("NUL", "a\u0000b"), ("right-to-left override", "a\u202eb")]:
        async with connect(t.a.ws("/ws/lobby")) as ws:
            await ws.send(json.dumps({"type": "join", "room": room}))
            try:
                async with asyncio.timeout(clients.TIMEOUT):
                    reply = json.loads(await ws.recv())
                got = f"{reply.get('type')} {reply.get('code', '')}".strip()
            except Exception as exc:  # closed instead of an error frame: also a refusal
                got = f"{type(exc).__name__}"
        ok = got.startswith("error") or got.startswith("ConnectionClosed")
        rows.append(Row(f"lobby room name with {what}", "error frame", got, ok))
    return rows


@probe
async def hosts_and_origins(t: Target) -> list[Row]:
    port = clients.port_of(t.a)
    evil = f"attacker.example:{port}"
    rows = []
    request = f"GET /healthz HTTP/1.1\r\nHost: {evil}\r\nConnection: close\r\n\r\n"
    status = await clients.raw_request(t.a, request.encode())
    rows.append(Row("HTTP with a foreign Host", "400", status, " 400 " in status + " "))
    for path in ["/ws/echo", "/ws/lobby", "/chat/general/ana"]:
        upgrade = clients.handshake("attacker.example", port, path, origin=f"http://{evil}")
        status = await clients.raw_request(t.a, upgrade)
        ok = " 400 " in status + " "
        rows.append(Row(f"DNS rebinding: Host+Origin foreign on {path}", "400", status, ok))
    upgrade = clients.handshake("127.0.0.1", port, "/ws/echo", origin="null")
    status = await clients.raw_request(t.a, upgrade)
    rows.append(Row("Origin: null", "403", status, " 403 " in status + " "))
    return rows


@probe
async def bodies(t: Target) -> list[Row]:
    rows = []
    async with httpx.AsyncClient(timeout=30) as http:
        big = b"x" * (40 * 1024 * 1024)
        response = await http.post(t.a.url("/feed/publish"), content=big)
        rows.append(
            Row(
                "40 MiB body to /feed/publish",
                "413",
                str(response.status_code),
                response.status_code == 413,
            )
        )

        async def chunks() -> object:
            for _ in range(32):
                yield b"y" * 65536

        response = await http.post(t.a.url("/feed/publish"), content=chunks())
        rows.append(
            Row("2 MiB chunked body", "413", str(response.status_code), response.status_code == 413)
        )
        response = await http.post(t.a.url("/notifications"), json={"message": "hi"})
        rows.append(
            Row(
                "POST /notifications without a token",
                "401",
                str(response.status_code),
                response.status_code == 401,
            )
        )
    return rows


@probe
async def teaching_routes(t: Target) -> list[Row]:
    got = await clients.refusal(t.a, "/naive/ws/robust?timeout=1e-7")
    ok = got.startswith("HTTP 4")
    return [Row("/naive/ws/robust on python -m course_server", "HTTP 403/404", got, ok)]


@probe
async def channel_floods(t: Target) -> list[Row]:
    """One client floods each channel, reconnecting after every 1008 (``benchmarks.floods``)."""
    seconds = t.flood_seconds
    rate = 20  # COURSE_RATE_LIMIT's default
    # One client's budget: 2×rate, bursts of 4×rate; +1: the token refilling as the flood ends.
    bound = int(4 * rate + 2 * rate * seconds) + 1
    bob = await clients.token(t.a, "bob", "builder")  # the bystander who counts
    rows = []
    for channel, relayed, sent in await floods.measure(t.a, seconds, token=bob):
        rows.append(
            Row(
                f"one client floods {channel} for {seconds:g} s ({sent} sent)",
                f"≤ {bound} relayed",
                str(relayed),
                relayed <= bound,
            )
        )
    return rows


@probe
async def revocation(t: Target) -> list[Row]:
    cookie = await clients.session_cookie(t.a, "alice", "wonderland")
    headers = {"Cookie": f"session={cookie}"}  # a copy the attacker kept before the sign-out
    async with httpx.AsyncClient(timeout=clients.TIMEOUT, headers=headers) as http:
        await http.delete(t.a.url("/session"))
        session = await http.get(t.b.url("/session"))
    ws = await clients.refusal(t.b, "/secure/ws/cookie", headers=headers)
    chat = await clients.refusal(t.b, "/chat/general/alice", headers=headers)
    return [
        Row(
            "GET /session with a signed-out cookie" + t.across,
            "401",
            str(session.status_code),
            session.status_code == 401,
        ),
        Row("/secure/ws/cookie with a signed-out cookie" + t.across, "refused", ws, refused(ws)),
        Row(
            "chat as alice with a signed-out cookie" + t.across,
            "close 4003",
            chat,
            chat.startswith("close 4003"),
        ),
    ]


@probe
async def login_throttle(t: Target) -> list[Row]:
    """Run last: it locks 127.0.0.1 out of logins for the window."""
    rows = []
    async with httpx.AsyncClient(timeout=60) as http:
        statuses = []
        for i in range(6):
            server = t.a if i % 2 == 0 else t.b  # spread over both processes when there are two
            response = await http.post(
                server.url("/token"), data={"username": "bob", "password": f"guess{i}"}
            )
            statuses.append(response.status_code)
        right = await http.post(t.b.url("/token"), data={"username": "bob", "password": "builder"})
        rows.append(
            Row(
                "6 wrong passwords for bob" + t.across,
                "401×5 then 429",
                " ".join(map(str, statuses)),
                statuses[:5] == [401] * 5 and statuses[5] == 429,
            )
        )
        after = right.headers.get("retry-after")
        rows.append(
            Row(
                "then the right password",
                "429 with Retry-After",
                f"{right.status_code} Retry-After={after}",
                right.status_code == 429 and after is not None,
            )
        )
    return rows


async def login_flood(server: ServerProcess) -> list[Row]:
    """40 concurrent wrong logins: the server's memory and a bystander's echo round trips."""
    process = psutil.Process(server.pid)
    before = process.memory_info().rss
    peak = before
    stalls: list[float] = []
    done = asyncio.Event()

    async def sample() -> None:
        nonlocal peak
        while not done.is_set():
            peak = max(peak, process.memory_info().rss)
            await asyncio.sleep(0.02)  # sampling pace, not a wait for readiness

    async def echo() -> None:
        async with connect(server.ws("/ws/echo")) as ws:
            while not done.is_set():
                started = time.monotonic()
                await ws.send("ping")
                await ws.recv()
                stalls.append(time.monotonic() - started)
                await asyncio.sleep(0.02)

    async with httpx.AsyncClient(timeout=120) as http:
        tasks = [asyncio.create_task(sample()), asyncio.create_task(echo())]
        logins = [
            http.post(server.url("/token"), data={"username": f"user{i}", "password": "x"})
            for i in range(40)
        ]
        answers = await asyncio.gather(*logins, return_exceptions=True)
        done.set()
        await asyncio.gather(*tasks)
    grown = (peak - before) / 2**20
    codes = sorted({getattr(a, "status_code", type(a).__name__) for a in answers}, key=str)
    return [
        Row(
            "40 concurrent wrong logins: memory", "grows ≤ 300 MB", f"+{grown:.0f} MB", grown <= 300
        ),
        Row("  … their answers", "401 or 429", " ".join(map(str, codes)), set(codes) <= {401, 429}),
        Row(
            "  … /ws/echo round trip meanwhile",
            "(figure)",
            f"max {max(stalls) * 1000:.0f} ms",
            True,
        ),
    ]


async def slowloris(server: ServerProcess, count: int, header_timeout: float) -> list[Row]:
    give_up = header_timeout * 3 + 5
    port = clients.port_of(server)
    request = f"GET /healthz HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\n".encode()
    handshake = upgrade_request("127.0.0.1", port, "/ws/echo").removesuffix(b"\r\n")
    cut = await asyncio.gather(
        *(slow_headers(port, request, 0.5, give_up) for _ in range(count)),
        *(slow_headers(port, handshake, 0.5, give_up) for _ in range(count // 5)),
    )
    rows = []
    for what, times in [
        (f"{count} slowloris clients (a header every 0.5 s)", cut[:count]),
        (f"{count // 5} half-sent WebSocket handshakes", cut[count:]),
    ]:
        held = sum(t is None for t in times)
        got = f"{held} still open after {give_up:g} s" if held else f"all cut by {max(times):.1f} s"
        rows.append(Row(what, f"cut after ~{header_timeout:g} s", got, not held))
    return rows


async def secrets_in_logs(server: ServerProcess) -> tuple[list[str], Callable[[], list[Row]]]:
    """Send tokens every way a client can spell them; the rows read the log once it stopped."""
    jwt = await clients.token(server, "alice", "wonderland")
    paths = [
        f"/secure/ws?%74oken={jwt}",
        f"/secure/ws?ToKeN={jwt}&token={jwt}",
        f"/secure/ws?token={jwt}",
    ]
    for path in paths:
        await clients.refusal(server, path)
    cookie = await clients.session_cookie(server, "bob", "builder")
    headers = {"Cookie": f"session={cookie}"}
    async with httpx.AsyncClient(timeout=clients.TIMEOUT, headers=headers) as http:
        await http.get(server.url("/session"))
    await clients.refusal(server, "/secure/ws/cookie", headers=headers)

    def rows() -> list[Row]:
        log = server.stderr() + server.stdout()  # the error log and the access log
        leaked = [name for name, value in [("token", jwt), ("cookie", cookie)] if value in log]
        lines = len(log.splitlines())
        got = f"leaked: {', '.join(leaked)}" if leaked else f"none in {lines} debug lines"
        return [
            Row(
                "tokens (%74oken, ToKeN, repeated) and cookies in the debug log",
                "none",
                got,
                not leaked and lines > 0,
            )
        ]

    return [jwt, cookie], rows
