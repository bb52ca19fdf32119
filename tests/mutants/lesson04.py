"""Plausible wrong answers to lesson 04's exercises, one bug each (see ``mutants``)."""

from __future__ import annotations

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
