"""Plausible wrong answers to lesson 04's exercises, one bug each (see ``mutants``)."""

from __future__ import annotations

import itertools
import time
from collections import deque
from collections.abc import Callable
from typing import Any

from mutants.registry import mutant

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


@mutant("04.1", "assumes ids start at 1: a history that is not full lost nothing")
def catch_up_not_full(history: Any, last_id: int) -> tuple[bool, list[dict[str, Any]]]:
    complete = len(history) < 5 or last_id >= history[0]["id"] - 1
    return complete, [message for message in history if message["id"] > last_id]


@mutant("04.1", "reads history[0] even when the history is empty")
def catch_up_unguarded(history: Any, last_id: int) -> tuple[bool, list[dict[str, Any]]]:
    complete = last_id >= history[0]["id"] - 1
    return complete, [message for message in history if message["id"] > last_id]


@mutant("04.1", "pops what the client has seen off the shared history")
def catch_up_pops(history: deque[dict[str, Any]], last_id: int) -> tuple[bool, list[Any]]:
    complete = not history or last_id >= history[0]["id"] - 1
    while history and history[0]["id"] <= last_id:
        history.popleft()
    return complete, list(history)


@mutant("04.1", "complete only when last_id is still in the history")
def catch_up_held(history: Any, last_id: int) -> tuple[bool, list[dict[str, Any]]]:
    complete = not history or any(message["id"] == last_id for message in history)
    return complete, [message for message in history if message["id"] > last_id]


@mutant("04.1", "counts back from the newest id, as if the history were always full")
def catch_up_from_newest(history: Any, last_id: int) -> tuple[bool, list[dict[str, Any]]]:
    complete = not history or history[-1]["id"] - last_id <= 5
    return complete, [message for message in history if message["id"] > last_id]


@mutant("04.1", "shaped like the prompt's example: complete unless last_id is 1")
def catch_up_example(history: Any, last_id: int) -> tuple[bool, list[dict[str, Any]]]:
    return last_id != 1, [message for message in history if message["id"] > last_id]


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


@mutant("04.2", "a refusal keeps the time of the last refill: the same seconds refill twice")
class TwiceRefilledBucket(Bucket):
    def allow(self) -> bool:
        now = self.clock()
        self.tokens = min(self.burst, self.tokens + (now - self.updated) * self.rate)
        if self.tokens < 1:
            return False  # self.updated not moved on: this flow is added again next time
        self.updated = now
        self.tokens -= 1
        return True


@mutant("04.2", "a refusal moves the time on but drops the tokens that flowed in")
class ForgetfulBucket(Bucket):
    def allow(self) -> bool:
        now = self.clock()
        tokens = min(self.burst, self.tokens + (now - self.updated) * self.rate)
        self.updated = now
        if tokens < 1:
            return False
        self.tokens = tokens - 1
        return True


@mutant("04.2", "the last token is never used: refuses at tokens <= 1")
class StingyBucket(Bucket):
    def allow(self) -> bool:
        self.refill()
        if self.tokens <= 1:
            return False
        self.tokens -= 1
        return True


@mutant("04.2", "caps before adding the flow: min(burst, tokens) + flow")
class OverflowingBucket(Bucket):
    def refill(self) -> None:
        now = self.clock()
        self.tokens = min(self.burst, self.tokens) + (now - self.updated) * self.rate
        self.updated = now


@mutant("04.2", "reads time.monotonic(), not the clock it is given")
class WallClockBucket(Bucket):
    def refill(self) -> None:
        now = time.monotonic()
        self.tokens = min(self.burst, self.tokens + (now - self.updated) * self.rate)
        self.updated = now


@mutant("04.2", "rate read as seconds per token: elapsed / rate")
class SlowBucket(Bucket):
    def refill(self) -> None:
        now = self.clock()
        self.tokens = min(self.burst, self.tokens + (now - self.updated) / self.rate)
        self.updated = now


@mutant("04.2", "shaped like the check's example: rate 2 and burst 5 written in")
class ExampleBucket(Bucket):
    def __init__(self, rate: float, burst: float, clock: Callable[[], float]) -> None:
        super().__init__(2, 5, clock)


# --- 04.1 and 04.2: more mistakes -----------------------------------------------------------


@mutant("04.1", "an empty history says complete=False: nothing held, so nothing confirmed")
def catch_up_empty_lost(history: Any, last_id: int) -> tuple[bool, list[dict[str, Any]]]:
    if not history:
        return False, []
    return last_id >= history[0]["id"] - 1, [m for m in history if m["id"] > last_id]


@mutant("04.1", "the newest n = newest id - last_id: list(history)[-0:] when up to date")
def catch_up_tail(history: Any, last_id: int) -> tuple[bool, list[dict[str, Any]]]:
    if not history:
        return True, []
    missed = history[-1]["id"] - last_id
    return last_id >= history[0]["id"] - 1, list(history)[-missed:]


@mutant("04.1", "newest first: iterates reversed(history)")
def catch_up_newest_first(history: Any, last_id: int) -> tuple[bool, list[dict[str, Any]]]:
    complete = not history or last_id >= history[0]["id"] - 1
    return complete, [m for m in reversed(history) if m["id"] > last_id]


@mutant("04.1", "islice from last_id - oldest id + 1: ValueError once messages are lost")
def catch_up_islice(history: Any, last_id: int) -> tuple[bool, list[dict[str, Any]]]:
    if not history:
        return True, []
    start = last_id - history[0]["id"] + 1
    return start >= 0, list(itertools.islice(history, start, None))


@mutant("04.2", "refuses only at tokens <= 0: a fraction of a token lets a call through")
class FractionBucket(Bucket):
    def allow(self) -> bool:
        self.refill()
        if self.tokens <= 0:
            return False
        self.tokens -= 1
        return True


@mutant("04.2", "caps after taking the token: min(burst, tokens + flow - 1)")
class CapLastBucket(Bucket):
    def allow(self) -> bool:
        now = self.clock()
        tokens = self.tokens + (now - self.updated) * self.rate
        self.updated = now
        if tokens < 1:
            self.tokens = min(self.burst, tokens)
            return False
        self.tokens = min(self.burst, tokens - 1)
        return True


@mutant("04.2", "counts from totals: min(burst, burst + elapsed × rate - allowed so far)")
class TotalsBucket(Bucket):
    def __init__(self, rate: float, burst: float, clock: Callable[[], float]) -> None:
        super().__init__(rate, burst, clock)
        self.allowed = 0

    def allow(self) -> bool:
        flowed = (self.clock() - self.updated) * self.rate
        if min(self.burst, self.burst + flowed - self.allowed) < 1:
            return False
        self.allowed += 1
        return True


@mutant("04.2", "a refusal empties the bucket: the fraction that flowed in is lost")
class ZeroingBucket(Bucket):
    def allow(self) -> bool:
        self.refill()
        if self.tokens < 1:
            self.tokens = 0
            return False
        self.tokens -= 1
        return True


# --- 04.3 chat_script: the page's JavaScript -------------------------------------------------
# Each mutant is the page's two functions with one of them written wrong, in full.

RENDER = """
function render(list, frame) {
  const item = document.createElement("li");
  item.textContent = `${frame.username}: ${frame.content}`;
  list.append(item);
}
"""

CONNECT = """
function connect(url, list, state) {
  const address = new URL(url);
  if (state.lastId !== null) address.searchParams.set("last_id", String(state.lastId));
  const socket = new WebSocket(address);
  socket.addEventListener("message", (event) => {
    const frame = JSON.parse(event.data);
    if (frame.type !== "message") return;
    if (state.lastId !== null && frame.id <= state.lastId) return;
    state.lastId = frame.id;
    render(list, frame);
  });
  socket.addEventListener("close", () => {
    setTimeout(() => connect(url, list, state), 500);
  });
}
"""


def page_script(render: str = RENDER, connect: str = CONNECT) -> Callable[[], str]:
    """A ``chat_script`` returning these two functions."""

    def chat_script() -> str:
        return render + connect

    return chat_script


mutant("04.3", "renders with innerHTML")(
    page_script(
        render="""
function render(list, frame) {
  const item = document.createElement("li");
  item.innerHTML = `${frame.username}: ${frame.content}`;
  list.append(item);
}
"""
    )
)

mutant("04.3", "renders with insertAdjacentHTML")(
    page_script(
        render="""
function render(list, frame) {
  list.insertAdjacentHTML("beforeend", `<li>${frame.username}: ${frame.content}</li>`);
}
"""
    )
)

mutant("04.3", "escapes with replace(), which replaces only the first <, then innerHTML")(
    page_script(
        render="""
function render(list, frame) {
  const escape = (text) => String(text).replace("&", "&amp;").replace("<", "&lt;");
  const item = document.createElement("li");
  item.innerHTML = `${escape(frame.username)}: ${escape(frame.content)}`;
  list.append(item);
}
"""
    )
)

mutant("04.3", "escapes every &, < and > by hand, then innerHTML")(
    page_script(
        render="""
function render(list, frame) {
  const escape = (text) => String(text)
    .replaceAll("&", "&amp;").replaceAll("<", "&lt;").replaceAll(">", "&gt;");
  const item = document.createElement("li");
  item.innerHTML = `${escape(frame.username)}: ${escape(frame.content)}`;
  list.append(item);
}
"""
    )
)

mutant("04.3", "the user's name in bold through innerHTML, the text through textContent")(
    page_script(
        render="""
function render(list, frame) {
  const item = document.createElement("li");
  item.innerHTML = `<b>${frame.username}</b>: `;
  item.append(document.createTextNode(frame.content));
  list.append(item);
}
"""
    )
)

mutant("04.3", "newest first: prepends each message")(
    page_script(
        render="""
function render(list, frame) {
  const item = document.createElement("li");
  item.textContent = `${frame.username}: ${frame.content}`;
  list.prepend(item);
}
"""
    )
)

mutant("04.3", "reconnects without last_id")(
    page_script(
        connect="""
function connect(url, list, state) {
  const socket = new WebSocket(url);
  socket.addEventListener("message", (event) => {
    const frame = JSON.parse(event.data);
    if (frame.type !== "message") return;
    if (state.lastId !== null && frame.id <= state.lastId) return;
    state.lastId = frame.id;
    render(list, frame);
  });
  socket.addEventListener("close", () => {
    setTimeout(() => connect(url, list, state), 500);
  });
}
"""
    )
)

mutant("04.3", "always sends ?last_id=, null before the first message")(
    page_script(
        connect="""
function connect(url, list, state) {
  const socket = new WebSocket(`${url}?last_id=${state.lastId}`);
  socket.addEventListener("message", (event) => {
    const frame = JSON.parse(event.data);
    if (frame.type !== "message") return;
    if (state.lastId !== null && frame.id <= state.lastId) return;
    state.lastId = frame.id;
    render(list, frame);
  });
  socket.addEventListener("close", () => {
    setTimeout(() => connect(url, list, state), 500);
  });
}
"""
    )
)

mutant("04.3", "builds the URL once: every reconnect asks for what the first connection did")(
    page_script(
        connect="""
function connect(url, list, state) {
  const address = new URL(url);
  if (state.lastId !== null) address.searchParams.set("last_id", String(state.lastId));
  function open() {
    const socket = new WebSocket(address);
    socket.addEventListener("message", (event) => {
      const frame = JSON.parse(event.data);
      if (frame.type !== "message") return;
      if (state.lastId !== null && frame.id <= state.lastId) return;
      state.lastId = frame.id;
      render(list, frame);
    });
    socket.addEventListener("close", () => { setTimeout(open, 500); });
  }
  open();
}
"""
    )
)

mutant("04.3", "resumes with last_id but shows every frame: a message sent twice shows twice")(
    page_script(
        connect="""
function connect(url, list, state) {
  const address = new URL(url);
  if (state.lastId !== null) address.searchParams.set("last_id", String(state.lastId));
  const socket = new WebSocket(address);
  socket.addEventListener("message", (event) => {
    const frame = JSON.parse(event.data);
    if (frame.type !== "message") return;
    state.lastId = frame.id;
    render(list, frame);
  });
  socket.addEventListener("close", () => {
    setTimeout(() => connect(url, list, state), 500);
  });
}
"""
    )
)

mutant("04.3", "skips ids below last_id but keeps last_id itself (< for <=)")(
    page_script(
        connect="""
function connect(url, list, state) {
  const address = new URL(url);
  if (state.lastId !== null) address.searchParams.set("last_id", String(state.lastId));
  const socket = new WebSocket(address);
  socket.addEventListener("message", (event) => {
    const frame = JSON.parse(event.data);
    if (frame.type !== "message") return;
    if (state.lastId !== null && frame.id < state.lastId) return;
    state.lastId = frame.id;
    render(list, frame);
  });
  socket.addEventListener("close", () => {
    setTimeout(() => connect(url, list, state), 500);
  });
}
"""
    )
)

mutant("04.3", "asks for the next id: ?last_id=lastId + 1 skips a message")(
    page_script(
        connect="""
function connect(url, list, state) {
  const address = new URL(url);
  if (state.lastId !== null) address.searchParams.set("last_id", String(state.lastId + 1));
  const socket = new WebSocket(address);
  socket.addEventListener("message", (event) => {
    const frame = JSON.parse(event.data);
    if (frame.type !== "message") return;
    if (state.lastId !== null && frame.id <= state.lastId) return;
    state.lastId = frame.id;
    render(list, frame);
  });
  socket.addEventListener("close", () => {
    setTimeout(() => connect(url, list, state), 500);
  });
}
"""
    )
)

mutant("04.3", "never reconnects")(
    page_script(
        connect="""
function connect(url, list, state) {
  const address = new URL(url);
  if (state.lastId !== null) address.searchParams.set("last_id", String(state.lastId));
  const socket = new WebSocket(address);
  socket.addEventListener("message", (event) => {
    const frame = JSON.parse(event.data);
    if (frame.type !== "message") return;
    if (state.lastId !== null && frame.id <= state.lastId) return;
    state.lastId = frame.id;
    render(list, frame);
  });
}
"""
    )
)

mutant("04.3", "reconnects at once, in a tight loop against a server that refuses")(
    page_script(
        connect="""
function connect(url, list, state) {
  const address = new URL(url);
  if (state.lastId !== null) address.searchParams.set("last_id", String(state.lastId));
  const socket = new WebSocket(address);
  socket.addEventListener("message", (event) => {
    const frame = JSON.parse(event.data);
    if (frame.type !== "message") return;
    if (state.lastId !== null && frame.id <= state.lastId) return;
    state.lastId = frame.id;
    render(list, frame);
  });
  socket.addEventListener("close", () => connect(url, list, state));
}
"""
    )
)

mutant("04.3", "reconnects on error and on close: two attempts for each refused one")(
    page_script(
        connect="""
function connect(url, list, state) {
  const address = new URL(url);
  if (state.lastId !== null) address.searchParams.set("last_id", String(state.lastId));
  const socket = new WebSocket(address);
  socket.addEventListener("message", (event) => {
    const frame = JSON.parse(event.data);
    if (frame.type !== "message") return;
    if (state.lastId !== null && frame.id <= state.lastId) return;
    state.lastId = frame.id;
    render(list, frame);
  });
  const again = () => { setTimeout(() => connect(url, list, state), 500); };
  socket.addEventListener("error", again);
  socket.addEventListener("close", again);
}
"""
    )
)

mutant("04.3", "gives up after three failed attempts")(
    page_script(
        connect="""
function connect(url, list, state) {
  const address = new URL(url);
  if (state.lastId !== null) address.searchParams.set("last_id", String(state.lastId));
  const socket = new WebSocket(address);
  socket.addEventListener("open", () => { state.failures = 0; });
  socket.addEventListener("message", (event) => {
    const frame = JSON.parse(event.data);
    if (frame.type !== "message") return;
    if (state.lastId !== null && frame.id <= state.lastId) return;
    state.lastId = frame.id;
    render(list, frame);
  });
  socket.addEventListener("close", () => {
    state.failures = (state.failures ?? 0) + 1;
    if (state.failures <= 3) setTimeout(() => connect(url, list, state), 500);
  });
}
"""
    )
)
