"""Lesson 06 with lesson 07's Redis: a signed-out token is refused by every process.

One key per signed-out token, ``course:revoked:<jti>``, that Redis deletes by itself when the
token expires (``SET … PXAT exp``): the list never outgrows the tokens still alive.

Rides on the process's Redis connection (``RedisLink``). Fails closed: while Redis is
unreachable, signing out answers 503 (the token was not recorded: try again) and tokens are
refused (HTTP 503), since one of them might have been signed out.
"""

from __future__ import annotations

import time

from fastapi import HTTPException

from course_server.scaling.link import FAILURES, RedisLink
from course_server.scaling.scripts import PREFIX
from course_server.security.tokens import TokenUnchecked

REVOKED = PREFIX + "revoked:"
UNCHECKED = "Token cannot be checked: cannot reach Redis right now"


class RedisRevocations:
    """``revocation.Revocations`` in Redis, through the process's link."""

    def __init__(self, link: RedisLink) -> None:
        self.link = link

    async def revoke(self, jti: str, expires: float) -> None:
        until_ms = int(expires * 1000)
        if until_ms <= time.time() * 1000:
            return  # expired already: refused without us
        try:
            await self.link.client.set(REVOKED + jti, 1, pxat=until_ms)
        except FAILURES:
            detail = "Sign-out cannot reach Redis right now: sign out again in a moment"
            raise HTTPException(503, detail, headers={"Retry-After": "1"}) from None

    async def revoked(self, jti: str) -> bool:
        try:
            return bool(await self.link.client.exists(REVOKED + jti))
        except FAILURES:
            raise TokenUnchecked(UNCHECKED) from None
