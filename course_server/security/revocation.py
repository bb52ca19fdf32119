"""Lesson 06, signing out for real: a deny list of token ids, each kept until its token expires.

A JWT is valid until its ``exp`` whoever holds it, so ``DELETE /session`` alone would only make
the browser forget its cookie: a copy taken earlier would still work. Every token carries a
``jti`` (its id); signing out records that id here until the token would have expired anyway,
and ``tokens.verify``, the one check every endpoint runs, refuses a token whose id is listed.
The list stays small: an entry lives no longer than one token lifetime.

In-process by default; with ``settings.redis_url`` the list is in Redis (``scaling.revocation``),
so a token signed out on one process is refused by every process.
"""

from __future__ import annotations

import time
from typing import Protocol


class Revocations(Protocol):
    """Token ids signed out, each until its token's expiry (``app.state.revocations``)."""

    async def revoke(self, jti: str, expires: float) -> None:
        """Refuse the token ``jti`` from now until ``expires`` (a Unix time)."""
        ...

    async def revoked(self, jti: str) -> bool:
        """Was token ``jti`` signed out (and has not expired since)?"""
        ...


class InProcessRevocations:
    """The default: this process's memory, ``{jti: expiry}``."""

    def __init__(self) -> None:
        self._until: dict[str, float] = {}

    async def revoke(self, jti: str, expires: float) -> None:
        now = time.time()
        # Expired tokens are refused anyway: drop them, so the list holds live tokens only.
        self._until = {j: at for j, at in self._until.items() if at > now}
        if expires > now:
            self._until[jti] = expires

    async def revoked(self, jti: str) -> bool:
        return self._until.get(jti, 0.0) > time.time()

    def __len__(self) -> int:
        return len(self._until)
