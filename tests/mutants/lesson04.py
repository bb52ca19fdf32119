"""Plausible wrong answers to lesson 04's exercises, one bug each (see ``mutants``)."""

from __future__ import annotations

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
