"""Plausible wrong answers to lesson 09's exercises, registered in ``mutants.MUTANTS``.

As in the other lessons: one bug each, the solution with that one mistake written out in full.
"""

from __future__ import annotations

import asyncio
import re
import time
from typing import Any

from fastapi import WebSocket

from mutants.registry import mutant

PING_AFTER = 0.5
PONG_WITHIN = 0.5
HEARTBEAT_TIMEOUT = 4408

# --- 09.1 watchdog ---------------------------------------------------------------------------


def make_watchdog(
    *,
    ping: bool = True,
    close: bool = True,
    code: int = HEARTBEAT_TIMEOUT,
    grace: float = PONG_WITHIN,
    pong_counts: bool = True,
    echo_pong: bool = False,
) -> Any:
    async def watchdog(websocket: WebSocket) -> None:
        await websocket.accept()
        pinged = False
        while True:
            try:
                async with asyncio.timeout(grace if pinged else PING_AFTER):
                    text = await websocket.receive_text()
            except TimeoutError:
                if pinged or not ping:
                    if close:
                        await websocket.close(code, "heartbeat timeout")
                        return
                    pinged = False
                    continue
                await websocket.send_text("ping")
                pinged = True
                continue
            if text != "pong" or pong_counts:
                pinged = False
            if text != "pong" or echo_pong:
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
