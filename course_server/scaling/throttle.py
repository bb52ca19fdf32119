"""Lesson 06 with lesson 07's Redis: failed logins counted for every process at once.

The same sliding window as ``throttle.InProcessFailures``, kept in one sorted set per key
(members: attempts, scores: when, in Redis's own clock so that every process agrees). One Lua
script checks every key and counts the attempt under all of them, atomically: two processes
cannot both let the fifth guess through. Each set expires a window after its last attempt.

Rides on the process's Redis connection (``RedisLink``). While Redis is unreachable, logins
answer 503: without the counts, guesses would be unlimited.

Keys: ``course:login:user:<sha256 of the name>``, ``course:login:addr:<client address>`` (an
IPv6 address by its /64 network).
"""

from __future__ import annotations

from collections.abc import Sequence

from fastapi import HTTPException

from course_server.scaling.link import FAILURES, RedisLink
from course_server.scaling.scripts import PREFIX

KEYS = PREFIX + "login:"

# KEYS the attempt's keys   ARGV window_ms max_failures attempt
# → 0 if the attempt was counted, else the milliseconds until every key has room again
BEGIN = """
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local window = tonumber(ARGV[1])
local most = tonumber(ARGV[2])
local wait = 0
for _, key in ipairs(KEYS) do
  redis.call('ZREMRANGEBYSCORE', key, '-inf', now - window)
  local count = redis.call('ZCARD', key)
  if count >= most then
    local oldest = redis.call('ZRANGE', key, count - most, count - most, 'WITHSCORES')
    wait = math.max(wait, tonumber(oldest[2]) + window - now, 1)
  end
end
if wait > 0 then
  return wait
end
for _, key in ipairs(KEYS) do
  redis.call('ZADD', key, now, ARGV[3])
  redis.call('PEXPIRE', key, window)
end
return 0
"""

UNAVAILABLE = "Login cannot reach Redis right now: log in again in a moment"


class RedisFailures:
    """``throttle.Failures`` in Redis, through the process's link."""

    def __init__(self, link: RedisLink, max_failures: int, window: float) -> None:
        self.link = link
        self.max_failures = max_failures
        self.window_ms = max(1, round(window * 1000))

    async def begin(self, keys: Sequence[str], attempt: str) -> float:
        script = self.link.client.register_script(BEGIN)
        names = [KEYS + key for key in keys]
        try:
            wait_ms = await script(names, [self.window_ms, self.max_failures, attempt])
        except FAILURES:
            raise HTTPException(503, UNAVAILABLE, headers={"Retry-After": "1"}) from None
        return int(wait_ms) / 1000

    async def forgive(self, keys: Sequence[str], attempt: str) -> None:
        try:
            async with self.link.client.pipeline(transaction=False) as pipe:
                for key in keys:
                    pipe.zrem(KEYS + key, attempt)
                await pipe.execute()
        except FAILURES:
            pass  # the attempt stays counted as a failure: the safe side
