"""Who a connection is: registered names are owned, other names are guests; whose budget it spends.

The users of ``COURSE_DEMO_USERS`` are accounts. A connection that claims one of their names
(``/chat/{room}/{username}``, ``/ws/users/{user_id}``, a lobby ``join`` with a ``name``) must
prove it with a token naming that user: the session cookie from ``POST /session`` or
``?token=`` from ``POST /token``. Any other name is a guest's, open to anyone, unless
``COURSE_GUESTS=false``. A presented token must be good and name the user claimed, guest name or
not: a browser signed in as bob does not silently post as someone else.

This module is the rule only, no I/O: ``secure.identify`` checks the token (the one place a
handshake's token is verified) and builds the ``Identity`` the endpoints ask.
"""

from __future__ import annotations

import dataclasses
import ipaddress
import unicodedata
from collections.abc import Iterable

# Letters of other scripts that look like a Latin letter, by case. ``names.plain_name`` refuses
# a name that *mixes* Latin with them, but a name written wholly in one of those scripts passes
# (Cyrillic "аӏісе" shows as "alice"), and so do Latin lookalikes ("alıce", dotless i): mapped
# to the Latin letter they show as, such names claim the user they look like. The common cases,
# not Unicode's whole table (UTS #39 ``confusables.txt``).
LOOKALIKES = str.maketrans(
    {
        **dict(zip("асԁеһіјӏорԛѕԝхуү", "acdehijlopqswxyy", strict=True)),  # Cyrillic
        **dict(zip("АВСЕНІЈКМОРЅТХУҮӀԚԜ", "ABCEHIJKMOPSTXYYIQW", strict=True)),
        **dict(zip("αιοριυνχκγϲϳ", "aiopiuvxkycj", strict=True)),  # Greek
        **dict(zip("ΑΒΕΖΗΙΚΜΝΟΡΤΥΧϹͿ", "ABEZHIKMNOPTYXCJ", strict=True)),
        **dict(zip("ıȷɑɡɩօսհոցզ", "ijagiouhngq", strict=True)),  # Latin, Armenian
    }
)
LOOK_THE_SAME = str.maketrans("l1|0", "iiio")
"""After case folding: what a sans-serif font draws alike (``aIice`` is ``alice`` on screen)."""


def fold(name: str) -> str:
    """The form two names are compared in, what they look like: ``Alice``, ``ａｌｉｃｅ``,
    Cyrillic ``аӏісе`` and ``aIice`` all claim ``alice``."""
    plain = unicodedata.normalize("NFKC", name).translate(LOOKALIKES)
    return plain.casefold().translate(LOOK_THE_SAME)


def client_key(address: str) -> str:
    """The part of a client's address that counts as one client, for budgets and login limits.

    An IPv4 address whole; an IPv6 address by its /64 network: one customer is handed a whole
    /64, so counting each address would give an attacker 2**64 fresh budgets and login tries.
    An IPv4-mapped IPv6 address (``::ffff:10.0.0.1``) is its IPv4 address.
    """
    try:
        ip = ipaddress.ip_address(address)
    except ValueError:
        return address  # "unknown", or a name a test client gives: counted as it is
    if isinstance(ip, ipaddress.IPv6Address):
        if ip.ipv4_mapped is not None:
            return str(ip.ipv4_mapped)
        return str(ipaddress.IPv6Network((ip, 64), strict=False))
    return str(ip)


def owner(name: str, users: Iterable[str]) -> str | None:
    """The registered user whose name ``name`` is, or looks like, or None for a guest."""
    folded = fold(name)
    return next((user for user in users if fold(user) == folded), None)


@dataclasses.dataclass(frozen=True)
class Identity:
    """What a connection proved at its handshake, and from where it came."""

    user: str | None = None  # the user a good token names; None without one
    refused: str | None = None  # why a token it presented was refused
    address: str = ""  # the client's address (as uvicorn reports it, proxy headers applied)

    def claim_problem(self, name: str, users: Iterable[str], *, guests: bool) -> str | None:
        """Why this connection may not go by ``name`` (the 4003 reason), or None if it may."""
        if self.refused is not None:
            return self.refused
        registered = owner(name, users)
        if self.user is not None:
            if registered is None or registered != self.user:
                return "Token does not match username"
            return None
        if registered is not None:
            return f"{registered} is a registered user: sign in to use this name"
        if not guests:
            return "Sign in first: this server has no guest names"
        return None

    @property
    def budget(self) -> str:
        """The key of the rate-limit budget this connection shares with others.

        A signed-in user's connections share the user's budget, wherever they come from. A
        guest can take any number of names, so a budget per guest name would let one client
        multiply its rate by opening more names (20 names got 20 budgets): guests share one
        budget per client address instead. Many people behind one NAT then share it too; they
        can sign in to get a budget of their own. (An IPv6 client's address counts by its /64:
        ``client_key``.)
        """
        return f"user:{self.user}" if self.user is not None else f"guest@{client_key(self.address)}"
