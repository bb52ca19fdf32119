"""The one rule for room names and usernames: plain names that look like what they are.

Every place a name enters the app (the chat URL, ``/ws/users/{user_id}`` and the ``to`` of a
private message, the lobby's room and display names, ``GET /rooms/{room}/users``) goes through
``plain_name``: it NFKC-normalises the name, so fullwidth ``ａｌｉｃｅ`` *is* ``alice`` (and
needs alice's proof, see ``identity.py``), and refuses what could make one name pass for
another on screen:

- characters outside ``NAME_PATTERN`` (spaces, markup, slashes, emoji);
- control, format (zero-width space, right-to-left override), private-use and unassigned
  code points, and the "filler" letters that render as nothing at all (U+3164 Hangul filler,
  U+115F, U+1160, U+FFA0, U+2800 braille blank, …), which ``\\w`` would let through;
- letters of more than one script (Latin ``a`` with Cyrillic ``а`` looks like plain ``alice``).
  Japanese, Chinese and Korean names mix scripts by nature: the combinations of Unicode's
  "highly restrictive" profile (UTS #39 §5.2) stay allowed.
"""

from __future__ import annotations

import re
import unicodedata

from pydantic import AfterValidator
from pydantic_core import PydanticCustomError

MAX_NAME_CHARS = 32
"""Longest room name or username, in characters (the browser page asks the same)."""

NAME_PATTERN = re.compile(rf"[\w.-]{{1,{MAX_NAME_CHARS}}}")
"""Letters and digits of any script, ``_``, ``.`` and ``-``: what the chat page allows too."""

# Code points with the Default_Ignorable_Code_Point property that are letters (so ``\w`` takes
# them) or symbols, plus the braille blank: all render as empty space. Python's ``unicodedata``
# has no DI property, hence the list; control and format characters are refused by category.
FILLERS = frozenset(
    "\u115f\u1160\u17b4\u17b5\u2800\u3164\uffa0\u034f\u180b\u180c\u180d\u180e\u180f\u00ad\ufeff"
)
_INVISIBLE_CATEGORIES = {"Cc", "Cf", "Co", "Cn", "Cs", "Zl", "Zp"}

# A letter's script, read from the first word of its Unicode name ("CYRILLIC SMALL LETTER A"):
# the stdlib has no Script property. Names that start with one of these are script-neutral.
_NEUTRAL = {"DIGIT", "LOW", "FULL", "HYPHEN-MINUS", "COMBINING"}
_ALIASES = {"CJK": "HAN", "IDEOGRAPHIC": "HAN", "KATAKANA-HIRAGANA": "KATAKANA"}
# UTS #39 "highly restrictive": one script, or Latin with Han and the scripts Han is written with.
_ALLOWED_MIXES = (
    frozenset({"LATIN", "HAN", "HIRAGANA", "KATAKANA"}),
    frozenset({"LATIN", "HAN", "BOPOMOFO"}),
    frozenset({"LATIN", "HAN", "HANGUL"}),
)


class BadName(ValueError):
    """A name refused by the rule; ``str(exc)`` is the reason, short enough for a close frame."""


def pattern_problem(kind: str) -> str:
    """The reason given for a name outside ``NAME_PATTERN`` (the lesson 09 wording)."""
    return f"Invalid {kind}: 1-{MAX_NAME_CHARS} letters, digits, '_', '.' or '-'"


def scripts(name: str) -> set[str]:
    """The scripts of ``name``'s letters and marks, by the first word of their Unicode names."""
    found = set()
    for char in name:
        if char.isascii():
            if char.isalpha():
                found.add("LATIN")
            continue
        word = unicodedata.name(char, "UNKNOWN").split(" ", 1)[0]
        if word not in _NEUTRAL:
            found.add(_ALIASES.get(word, word))
    return found


def plain_name(kind: str, value: str) -> str:
    """``value`` NFKC-normalised, or ``BadName`` saying why it cannot be a ``kind``."""
    name = unicodedata.normalize("NFKC", value)
    if NAME_PATTERN.fullmatch(name) is None:
        raise BadName(pattern_problem(kind))
    # What is left passed ``\w``, which takes the fillers: letters that render as nothing.
    for char in value + name:  # the client's own character first, in the reason
        if unicodedata.category(char) in _INVISIBLE_CATEGORIES or char in FILLERS:
            raise BadName(f"Invalid {kind}: invisible character U+{ord(char):04X}")
    found = scripts(name)
    if len(found) > 1 and not any(found <= mix for mix in _ALLOWED_MIXES):
        raise BadName(f"Invalid {kind}: mixes scripts ({', '.join(sorted(found)).lower()})")
    return name


def name_problem(kind: str, value: str) -> str | None:
    """Why ``value`` cannot be a ``kind`` (room name, username), or None if it can."""
    try:
        plain_name(kind, value)
    except BadName as exc:
        return str(exc)
    return None


def plain(kind: str) -> AfterValidator:
    """For a pydantic field, ``Annotated[str, plain("room name")]``: the rule, as validation.

    A refused name fails validation with the rule's reason as its whole message.
    """

    def validate(value: str) -> str:
        try:
            return plain_name(kind, value)
        except BadName as exc:
            raise PydanticCustomError("invalid_name", str(exc)) from None

    return AfterValidator(validate)
