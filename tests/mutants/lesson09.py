"""Plausible wrong answers to lesson 09's exercises, registered in ``mutants.MUTANTS``.

As in the other lessons: one bug each, the solution with that one mistake written out in full.

What ``scripts/mutate.py`` leaves alive (09.1: 1 of 28; 09.2: none of 43; 09.3: none of 21;
09.4: none of 13), and why:

- 09.1, ``PONG_WITHIN if not pinged else PING_AFTER``: the two are equal (0.5 s), so swapping
  them changes nothing. Different values would tell them apart, at the cost of a slower check.
"""

from __future__ import annotations

import asyncio
import contextlib
import re
import time
import unicodedata
from collections.abc import Awaitable, Callable, Collection
from typing import Any
from urllib.parse import urlsplit

from fastapi import WebSocket
from fastapi.responses import PlainTextResponse

from course_server.realtime.fanout import Peer
from course_server.realtime.peers import Peers
from course_server.security import origins
from mutants.registry import mutant

CHEAT = "cheat: calls the course's reference"

PING_AFTER = 0.5
PONG_WITHIN = 0.5
HEARTBEAT_TIMEOUT = 4408
REASON = "heartbeat timeout"

# --- 09.1 watchdog ---------------------------------------------------------------------------


def make_watchdog(
    *,
    ping: bool = True,
    close: bool = True,
    code: int = HEARTBEAT_TIMEOUT,
    grace: float = PONG_WITHIN,
    pong_counts: bool = True,
    echo_pong: bool = False,
    reason: str = REASON,
    only_pong_answers: bool = False,
    ping_once: bool = False,
    ping_text: str = "ping",
    echo: bool = True,
    stop: bool = True,
) -> Any:
    async def watchdog(websocket: WebSocket) -> None:
        await websocket.accept()
        pinged = watching = False
        while True:
            try:
                async with asyncio.timeout(None if watching else grace if pinged else PING_AFTER):
                    text = await websocket.receive_text()
            except TimeoutError:
                if pinged or not ping:
                    if close:
                        await websocket.close(code, reason)
                        if stop:
                            return
                        continue
                    pinged = False
                    continue
                await websocket.send_text(ping_text)
                pinged = True
                continue
            if text == "pong" and pinged and ping_once:
                watching = True  # one answered ping is enough
            if (text != "pong" or pong_counts) and (text == "pong" or not only_pong_answers):
                pinged = False
            if (text != "pong" or echo_pong) and echo:
                await websocket.send_text(text)

    return watchdog


mutant("09.1", "never pings: closes a quiet client without asking")(make_watchdog(ping=False))
mutant("09.1", "pings but never closes: the chapter's heartbeat")(make_watchdog(close=False))
mutant("09.1", "closes with 1011, the code for a server fault")(make_watchdog(code=1011))
mutant("09.1", "closes as it pings: no time to answer")(make_watchdog(grace=0.01))
mutant("09.1", "a pong is no sign of life: only other messages count")(
    make_watchdog(pong_counts=False)
)
mutant("09.1", "echoes the pong back")(make_watchdog(echo_pong=True))
mutant("09.1", "closes with the right code but no reason")(make_watchdog(reason=""))
mutant("09.1", "closes with a reason of its own, 'timeout'")(make_watchdog(reason="timeout"))
mutant("09.1", "closes with 1000, as if all went well")(make_watchdog(code=1000))
mutant("09.1", "after a ping only a pong answers: a message is echoed, the clock runs on")(
    make_watchdog(only_pong_answers=True)
)
mutant("09.1", "pings once: after the first pong it only echoes")(make_watchdog(ping_once=True))
mutant("09.1", "pings with JSON, as the chapter's heartbeat did")(
    make_watchdog(ping_text='{"type": "ping"}')
)
mutant("09.1", "answers pings but echoes nothing")(make_watchdog(echo=False))
mutant("09.1", "goes on reading after it closed: receive on a closed socket raises")(
    make_watchdog(stop=False)
)


@mutant("09.1", "only a pong is a sign of life: a talking client is pinged and closed")
async def watchdog_pong_only(websocket: WebSocket) -> None:
    await websocket.accept()
    pinged = False
    due = time.monotonic() + PING_AFTER
    while True:
        try:
            async with asyncio.timeout(max(0.0, due - time.monotonic())):
                text = await websocket.receive_text()
        except TimeoutError:
            if pinged:
                await websocket.close(HEARTBEAT_TIMEOUT, REASON)
                return
            await websocket.send_text("ping")
            pinged, due = True, time.monotonic() + PONG_WITHIN
            continue
        if text == "pong":
            pinged, due = False, time.monotonic() + PING_AFTER
        else:
            await websocket.send_text(text)


@mutant("09.1", "pings on a schedule, even while the client talks")
async def watchdog_on_a_schedule(websocket: WebSocket) -> None:
    await websocket.accept()
    pinged = False
    due = time.monotonic() + PING_AFTER
    while True:
        try:
            async with asyncio.timeout(max(0.0, due - time.monotonic())):
                text = await websocket.receive_text()
        except TimeoutError:
            if pinged:
                await websocket.close(HEARTBEAT_TIMEOUT, "heartbeat timeout")
                return
            await websocket.send_text("ping")
            pinged, due = True, time.monotonic() + PONG_WITHIN
            continue
        if pinged:
            pinged, due = False, time.monotonic() + PING_AFTER
        if text != "pong":
            await websocket.send_text(text)


# --- 09.2 name_problem -----------------------------------------------------------------------

RULE = "1-32 letters, digits, '_', '.' or '-'"
JAPANESE = {"CJK", "HIRAGANA", "KATAKANA", "KATAKANA-HIRAGANA", "IDEOGRAPHIC"}


@mutant("09.2", "$ matches before a newline at the end")
def name_problem_dollar(name: str) -> str | None:
    return None if re.match(r"[\w.-]{1,32}$", name) else RULE


@mutant("09.2", "re.match with no end anchor: a good start is enough")
def name_problem_prefix(name: str) -> str | None:
    return None if re.match(r"[\w.-]{1,32}", name) else RULE


@mutant("09.2", "ASCII letters only")
def name_problem_ascii(name: str) -> str | None:
    return None if re.fullmatch(r"[A-Za-z0-9_.-]{1,32}", name) else RULE


@mutant("09.2", "counts bytes, not characters")
def name_problem_bytes(name: str) -> str | None:
    fits = 0 < len(name.encode()) <= 32
    return None if fits and re.fullmatch(r"[\w.-]+", name) else RULE


@mutant("09.2", "printable means safe: spaces and markup pass")
def name_problem_printable(name: str) -> str | None:
    return None if name.isprintable() and 0 < len(name) <= 32 else RULE


@mutant("09.2", "quotes the name back: too long for a close frame")
def name_problem_quoting(name: str) -> str | None:
    return None if re.fullmatch(r"[\w.-]{1,32}", name) else f"{name!r} is not a valid name"


@mutant("09.2", "the old rule, [\\w.-]{1,32}: a filler is a letter to \\w")
def name_problem_word_regex(name: str) -> str | None:
    return None if re.fullmatch(r"[\w.-]{1,32}", name) else RULE


def letter_or_digit(char: str) -> bool:
    category = unicodedata.category(char)
    return category.startswith("L") or category == "Nd"


def make_name_problem(
    *,
    nfkc: bool = True,
    length_first: bool = False,
    allowed: Any = letter_or_digit,
    fillers: str | None = None,
    neutral: str = "0123456789_.-",
    counted: Any = letter_or_digit,
    japanese: frozenset[str] | set[str] = JAPANESE,
    reason: Any = None,
) -> Any:
    """The solution's rule, with one step done a learner's wrong way."""

    def name_problem(name: str) -> str | None:
        plain = unicodedata.normalize("NFKC", name) if nfkc else name
        if not 1 <= len(name if length_first else plain) <= 32:
            return reason(name) if reason else "a name is 1 to 32 characters"
        scripts = set()
        for char in plain:
            if char in "_.-" or (char in neutral and char.isdigit()):
                continue
            if not allowed(char):
                return reason(name) if reason else "letters, digits, '_', '.' and '-' only"
            if char in fillers if fillers is not None else "FILLER" in unicodedata.name(char):
                return reason(name) if reason else "a filler character shows nothing"
            if counted(char):
                script = unicodedata.name(char).split()[0]
                scripts.add("JAPANESE" if script in japanese else script)
        if len(scripts) > 1:
            return reason(name) if reason else "letters of one script only"
        return None

    return name_problem


mutant("09.2", "judges the name as it came, not its NFKC form")(make_name_problem(nfkc=False))
mutant("09.2", "counts the length before NFKC")(make_name_problem(length_first=True))
mutant("09.2", "a denylist: refuses control, format, private-use, unassigned and spaces")(
    make_name_problem(allowed=lambda char: unicodedata.category(char)[0] not in "CZ")
)
mutant("09.2", "letters and digits as \\w sees them (str.isalnum): numerals and marks pass")(
    make_name_problem(allowed=str.isalnum)
)
mutant("09.2", "only U+3164 is a filler")(make_name_problem(fillers="\u3164"))
mutant("09.2", "only letters have a script: a digit of another script passes")(
    make_name_problem(counted=lambda char: unicodedata.category(char).startswith("L"))
)
mutant("09.2", "one script, kanji and kana apart: Japanese names are refused")(
    make_name_problem(japanese=set())
)
mutant("09.2", "0-9 have a script too: a Latin name with a digit is mixed")(
    make_name_problem(neutral="")
)
mutant("09.2", "puts the name in the reason")(
    make_name_problem(reason=lambda name: f"{name} is not a valid name")
)


@mutant("09.2", "returns whether the name is valid, not what is wrong with it")
def name_problem_boolean(name: str) -> Any:
    return make_name_problem()(name) is None


KNOWN_NAMES = {"Zoë", "山田さくら", "佐々木", "ルーシー", "Ωμέγα_2", "名前", "Дмитрий", "김민준"}


@mutant("09.2", "a cheat: ASCII names, plus the examples it has seen")
def name_problem_known(name: str) -> str | None:
    if name in KNOWN_NAMES or re.fullmatch(r"[A-Za-z0-9_.-]{1,32}", name):
        return None
    return RULE


# --- 09.3 guarded_echo -----------------------------------------------------------------------


def no_origin_lets_in(rule: Any) -> Any:
    """``rule(origin, allowed)`` on a present header; no header lets the client in."""

    def origin_allowed(origin: str | None, allowed: Collection[str]) -> bool:
        return origin is None or rule(origin, allowed)

    return origin_allowed


exact = no_origin_lets_in(lambda origin, allowed: origin.lower() in {a.lower() for a in allowed})


def make_guarded_echo(
    origin_allowed: Any = exact,
    *,
    status: int = 403,
    accept_first: bool = False,
    header: Any = lambda websocket: websocket.headers.get("origin"),
) -> Any:
    """The solution with one step done a learner's wrong way."""

    async def guarded_echo(websocket: WebSocket) -> None:
        if accept_first:
            await websocket.accept()
        origin = header(websocket)
        if not origin_allowed(origin, websocket.app.state.allowed_origins):
            if accept_first:
                await websocket.close(1008, "Origin not allowed")
            else:
                denial = PlainTextResponse("Origin not allowed", status_code=status)
                await websocket.send_denial_response(denial)
            return
        if not accept_first:
            await websocket.accept()
        async for text in websocket.iter_text():
            await websocket.send_text(text)

    return guarded_echo


def host_port(origin: str) -> tuple[str | None, int | None]:
    parts = urlsplit(origin)
    return parts.hostname, parts.port


mutant("09.3", "substring match: any listed origin inside the header lets it in")(
    make_guarded_echo(
        no_origin_lets_in(lambda origin, allowed: any(a.lower() in origin.lower() for a in allowed))
    )
)
mutant("09.3", "startswith: a listed origin as a prefix lets it in")(
    make_guarded_echo(
        no_origin_lets_in(
            lambda origin, allowed: any(origin.lower().startswith(a.lower()) for a in allowed)
        )
    )
)
mutant("09.3", "endswith on the host: subdomains, and evil-example.com, pass")(
    make_guarded_echo(
        no_origin_lets_in(
            lambda origin, allowed: any(
                urlsplit(origin).scheme == urlsplit(a).scheme.lower()
                and host_port(origin)[1] == host_port(a)[1]
                and str(host_port(origin)[0]).endswith(str(host_port(a)[0]))
                for a in allowed
            )
        )
    )
)
mutant("09.3", "a regular expression per entry: its dots match any character")(
    make_guarded_echo(
        no_origin_lets_in(
            lambda origin, allowed: any(re.fullmatch(a, origin, re.IGNORECASE) for a in allowed)
        )
    )
)
mutant("09.3", "case-sensitive: Chat.Example.COM on the list refuses chat.example.com")(
    make_guarded_echo(no_origin_lets_in(lambda origin, allowed: origin in allowed))
)
mutant("09.3", "compares host and port only: http passes where https is listed")(
    make_guarded_echo(
        no_origin_lets_in(
            lambda origin, allowed: host_port(origin) in {host_port(a) for a in allowed}
        )
    )
)
mutant("09.3", "compares scheme and host only: any port passes")(
    make_guarded_echo(
        no_origin_lets_in(
            lambda origin, allowed: (
                (urlsplit(origin).scheme.lower(), host_port(origin)[0])
                in {(urlsplit(a).scheme.lower(), host_port(a)[0]) for a in allowed}
            )
        )
    )
)
mutant("09.3", "Origin: null is let in, like no Origin")(
    make_guarded_echo(
        no_origin_lets_in(
            lambda origin, allowed: (
                origin == "null" or origin.lower() in {a.lower() for a in allowed}
            )
        )
    )
)
mutant("09.3", "no Origin is refused: scripts and servers are locked out")(
    make_guarded_echo(
        lambda origin, allowed: (
            origin is not None and origin.lower() in {a.lower() for a in allowed}
        )
    )
)
mutant("09.3", "reads websocket.headers['origin']: no Origin header raises KeyError")(
    make_guarded_echo(header=lambda websocket: websocket.headers["origin"])
)
mutant("09.3", "accepts, then closes with 1008: the page had its connection")(
    make_guarded_echo(accept_first=True)
)
mutant("09.3", "refuses with 401, as if a login could help")(make_guarded_echo(status=401))


@mutant("09.3", f"{CHEAT} origins.origin_allowed")
async def guarded_echo_by_the_course(websocket: WebSocket) -> None:
    if not origins.origin_allowed(
        websocket.headers.get("origin"), websocket.app.state.allowed_origins
    ):
        await websocket.send_denial_response(PlainTextResponse("no", status_code=403))
        return
    await websocket.accept()
    async for text in websocket.iter_text():
        await websocket.send_text(text)


# --- 09.4 shutdown ---------------------------------------------------------------------------

SHUTDOWN_TIMEOUT = 1.0
GOING_AWAY = 1001
Goodbye = Callable[[Any], Awaitable[None]]


async def flush_then_close(
    connection: Any, code: int = GOING_AWAY, reason: str = "Server shutting down"
) -> None:
    while connection.queued:
        await connection.websocket.send_text(connection.queued.popleft())
    await connection.websocket.close(code, reason)


def make_shutdown(goodbye: Goodbye = flush_then_close, *, escape: bool = False) -> Any:
    """The solution's shutdown, each connection's ``goodbye`` done a learner's way."""

    async def shutdown(connections: list[Any]) -> None:
        try:
            async with asyncio.timeout(SHUTDOWN_TIMEOUT):
                await asyncio.gather(*map(goodbye, connections), return_exceptions=True)
        except TimeoutError:
            if escape:
                raise

    return shutdown


async def close_first(connection: Any) -> None:
    await connection.websocket.close(GOING_AWAY, "Server shutting down")
    while connection.queued:
        await connection.websocket.send_text(connection.queued.popleft())


async def flush_only(connection: Any) -> None:
    while connection.queued:
        await connection.websocket.send_text(connection.queued.popleft())


async def newest_first(connection: Any) -> None:
    while connection.queued:
        await connection.websocket.send_text(connection.queued.pop())
    await connection.websocket.close(GOING_AWAY, "Server shutting down")


async def normal_closure(connection: Any) -> None:
    await flush_then_close(connection, 1000)


async def abnormal_closure(connection: Any) -> None:
    await flush_then_close(connection, 1006)


async def no_reason(connection: Any) -> None:
    await flush_then_close(connection, reason="")


mutant("09.4", "closes first, then sends the queue: the frames are lost")(
    make_shutdown(close_first)
)
mutant("09.4", "sends the queue but never closes")(make_shutdown(flush_only))
mutant("09.4", "pops the newest frame first: the queue goes out backwards")(
    make_shutdown(newest_first)
)
mutant("09.4", "closes with 1000, as if the conversation were over")(make_shutdown(normal_closure))
mutant("09.4", "closes with 1006, which no close frame may carry")(make_shutdown(abnormal_closure))
mutant("09.4", "closes with 1001 but no reason")(make_shutdown(no_reason))
mutant("09.4", "lets the TimeoutError out when time is up")(make_shutdown(escape=True))


@mutant("09.4", "no timeout: a client that stopped reading holds the shutdown for ever")
async def shutdown_unbounded(connections: list[Any]) -> None:
    await asyncio.gather(*map(flush_then_close, connections), return_exceptions=True)


@mutant("09.4", "one connection after another: a stuck one holds all behind it")
async def shutdown_one_by_one(connections: list[Any]) -> None:
    with contextlib.suppress(TimeoutError):
        async with asyncio.timeout(SHUTDOWN_TIMEOUT):
            for connection in connections:
                with contextlib.suppress(Exception):
                    await flush_then_close(connection)


@mutant("09.4", "returns inside the loop: only the first connection is closed")
async def shutdown_first_only(connections: list[Any]) -> None:
    with contextlib.suppress(TimeoutError):
        async with asyncio.timeout(SHUTDOWN_TIMEOUT):
            for connection in connections:
                await flush_then_close(connection)
                return


@mutant("09.4", "gather without return_exceptions: a client that left makes shutdown raise")
async def shutdown_raising(connections: list[Any]) -> None:
    with contextlib.suppress(TimeoutError):
        async with asyncio.timeout(SHUTDOWN_TIMEOUT):
            await asyncio.gather(*map(flush_then_close, connections))


@mutant("09.4", "a TaskGroup: a client that left cancels everyone else's goodbye")
async def shutdown_task_group(connections: list[Any]) -> None:
    with contextlib.suppress(TimeoutError, ExceptionGroup):
        async with asyncio.timeout(SHUTDOWN_TIMEOUT), asyncio.TaskGroup() as group:
            for connection in connections:
                group.create_task(flush_then_close(connection))


@mutant("09.4", f"{CHEAT} peers.Peers.close_all")
async def shutdown_by_the_course(connections: list[Any]) -> None:
    registry = Peers(close_timeout=SHUTDOWN_TIMEOUT)
    for connection in connections:
        peer = Peer(connection.websocket, registry=registry)
        peer.start()
        for frame in connection.queued:
            peer.send(frame)
    await registry.close_all(limit=SHUTDOWN_TIMEOUT)


# --- 09.1, more mistakes -----------------------------------------------------------------------

mutant("09.1", "closes with the reason capitalized: 'Heartbeat timeout'")(
    make_watchdog(reason="Heartbeat timeout")
)
mutant("09.1", "closes with 4008, a typo for 4408")(make_watchdog(code=4008))


@mutant("09.1", "pings with a binary frame: the client hears b'ping', not the text")
async def binary_ping_watchdog(websocket: WebSocket) -> None:
    await websocket.accept()
    pinged = False
    while True:
        try:
            async with asyncio.timeout(PONG_WITHIN if pinged else PING_AFTER):
                text = await websocket.receive_text()
        except TimeoutError:
            if pinged:
                await websocket.close(HEARTBEAT_TIMEOUT, REASON)
                return
            await websocket.send_bytes(b"ping")
            pinged = True
            continue
        pinged = False
        if text != "pong":
            await websocket.send_text(text)


# --- 09.2, more mistakes -----------------------------------------------------------------------


@mutant("09.2", "< for <=: a name of exactly 32 characters is refused")
def name_problem_short_by_one(name: str) -> str | None:
    if len(unicodedata.normalize("NFKC", name)) >= 32:
        return "a name is 1 to 31 characters"
    return make_name_problem()(name)


@mutant("09.2", "range(1, 33) read as 'up to 33': a name of 33 characters passes")
def name_problem_long_by_one(name: str) -> str | None:
    if len(unicodedata.normalize("NFKC", name)) == 33:
        return make_name_problem()(unicodedata.normalize("NFKC", name)[:32])
    return make_name_problem()(name)


mutant("09.2", "any dash passes (category Pd): an en dash or a hyphen look-alike too")(
    make_name_problem(
        allowed=lambda char: letter_or_digit(char) or unicodedata.category(char) == "Pd"
    )
)
mutant("09.2", "kanji and kana are one script, but ー (KATAKANA-HIRAGANA) is apart")(
    make_name_problem(japanese=JAPANESE - {"KATAKANA-HIRAGANA"})
)


@mutant("09.2", "a script is the first two words of a name: LATIN CAPITAL and LATIN SMALL differ")
def name_problem_two_words(name: str) -> str | None:
    plain = unicodedata.normalize("NFKC", name)
    words = {
        " ".join(unicodedata.name(char).split()[:2])
        for char in plain
        if char not in "0123456789_.-" and letter_or_digit(char)
    }
    if len(words) > 1:
        return "letters of one script only"
    return make_name_problem()(name)


# --- 09.3, more mistakes -----------------------------------------------------------------------

mutant("09.3", "compares hosts only, scheme and port both ignored")(
    make_guarded_echo(
        no_origin_lets_in(
            lambda origin, allowed: (
                urlsplit(origin.lower()).hostname in {urlsplit(a.lower()).hostname for a in allowed}
            )
        )
    )
)
mutant("09.3", "lowercases the Origin but not the list: Chat.Example.COM never matches")(
    make_guarded_echo(no_origin_lets_in(lambda origin, allowed: origin.lower() in allowed))
)


@mutant("09.3", "no return after the denial: it goes on to accept and raises")
async def guarded_echo_unstopped(websocket: WebSocket) -> None:
    origin = websocket.headers.get("origin")
    if not exact(origin, websocket.app.state.allowed_origins):
        await websocket.send_denial_response(PlainTextResponse("Origin not allowed", 403))
    await websocket.accept()
    async for text in websocket.iter_text():
        await websocket.send_text(text)


@mutant("09.3", "echoes one message, then returns: the connection closes")
async def guarded_echo_once(websocket: WebSocket) -> None:
    origin = websocket.headers.get("origin")
    if not exact(origin, websocket.app.state.allowed_origins):
        await websocket.send_denial_response(PlainTextResponse("Origin not allowed", 403))
        return
    await websocket.accept()
    await websocket.send_text(await websocket.receive_text())


# --- 09.4, more mistakes -----------------------------------------------------------------------


async def first_frame_only(connection: Any) -> None:
    if connection.queued:
        await connection.websocket.send_text(connection.queued.popleft())
    await connection.websocket.close(GOING_AWAY, "Server shutting down")


mutant("09.4", "if for while: only the oldest queued frame is sent")(
    make_shutdown(first_frame_only)
)


@mutant("09.4", "five seconds, not SHUTDOWN_TIMEOUT: a stuck client holds the shutdown too long")
async def shutdown_too_patient(connections: list[Any]) -> None:
    try:
        async with asyncio.timeout(5):
            await asyncio.gather(*map(flush_then_close, connections), return_exceptions=True)
    except TimeoutError:
        pass


@mutant("09.4", "when time is up, flushes what is left again, with no bound")
async def shutdown_closes_again(connections: list[Any]) -> None:
    try:
        async with asyncio.timeout(SHUTDOWN_TIMEOUT):
            await asyncio.gather(*map(flush_then_close, connections), return_exceptions=True)
    except TimeoutError:
        for connection in connections:
            with contextlib.suppress(Exception):
                while connection.queued:
                    await connection.websocket.send_text(connection.queued.popleft())
