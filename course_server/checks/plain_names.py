"""Names for exercise 09.2's checks: ordinary names in many scripts, and names built to be unsafe.

"Names are plain" (the course spec): a name is judged by its NFKC form, which is 1 to
``MAX_NAME_CHARS`` characters, each a letter or decimal digit of one script, ``_``, ``.`` or
``-``; control, format, private-use, unassigned and filler characters, and mixed scripts, are
refused. ``unsafe`` says why a name breaks that rule, but only where any reading of the
exercise's prompt agrees: of scripts it knows only the well-known ones (``SCRIPTS``), so a
learner who finds scripts another way than the prompt's (the first word of the Unicode name) is
not failed over a rare letter.

The hypothesis strategies draw ordinary names (``ordinary_names``: one script, digits, ``_.-``)
and names with one to three unsafe characters put in (``tricky_names``).
"""

from __future__ import annotations

import unicodedata

from hypothesis import strategies as st

MAX_NAME_CHARS = 32

LETTERS = frozenset({"Lu", "Ll", "Lt", "Lm", "Lo"})
NEUTRAL = frozenset("0123456789_.-")
"""Characters that belong to every script."""

JAPANESE = frozenset({"CJK", "HIRAGANA", "KATAKANA", "KATAKANA-HIRAGANA", "IDEOGRAPHIC"})
"""First words of Unicode names that Japanese writes together (kanji, kana, ー, 々)."""

SCRIPTS = frozenset(
    {"LATIN", "CYRILLIC", "GREEK", "ARMENIAN", "GEORGIAN", "HEBREW", "ARABIC", "THAI"}
    | {"HANGUL", "BENGALI", "DEVANAGARI", "JAPANESE"}
)
"""The scripts ``unsafe`` knows; letters of any other script are not counted as a mix."""


def _run(first: int, last: int) -> str:
    return "".join(map(chr, range(first, last + 1)))


ALPHABETS: dict[str, str] = {
    "Latin": "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZéèêëçñöüßøåæłœžščěřůýíáóúàâîôû",
    "Cyrillic": _run(0x0430, 0x044F) + _run(0x0410, 0x042F) + "ёЁіїєґ",
    "Greek": _run(0x03B1, 0x03C9) + _run(0x0391, 0x03A1) + _run(0x03A3, 0x03A9) + "άέήίόύώ",
    "Hebrew": _run(0x05D0, 0x05EA),
    "Arabic": _run(0x0627, 0x063A) + _run(0x0641, 0x064A),
    "Thai": _run(0x0E01, 0x0E2E),
    "Hangul": _run(0xAC00, 0xD7A3),
    "Japanese": _run(0x4E00, 0x9FA5) + _run(0x3041, 0x3096) + _run(0x30A1, 0x30FA) + "ー々",
}
"""Ordinary letters of some scripts: names made of one of these (and 0-9, ``_.-``) must pass."""

CONTROL = "\x00\x07\x08\t\n\r\x1b\x7f\x85\x9b"
FORMAT = "\u00ad\u061c\u180e\u200b\u200c\u200d\u200e\u200f\u202a\u202e\u2060\u2066\u2069\ufeff"
PRIVATE_USE = "\ue000\uf8ff\U000f0000\U0010fffd"
UNASSIGNED = "".join(
    c for c in "\u0378\u0380\u0ee0\U000e0080\U0002fffd" if unicodedata.category(c) == "Cn"
)
"""Code points no Unicode version assigns yet (filtered: a later Python may know some)."""
FILLERS = "\u3164\uffa0\u115f\u1160"
SPACES = " \u00a0\u2002\u2009\u3000\u2028"
SYMBOLS = "<>/\\'\";:!?@#$%&*()[]{}+=~`|,😀\u2044"
NUMERALS = "ↂ༳〇"
"""Numbers that are not decimal digits: ``\\w`` (``str.isalnum``) lets them in."""
MARKS = "\u0489\u1ab0\u20dd"
"""Combining marks that NFKC joins to no letter."""

OTHER_DIGITS = "০৪५"
"""Decimal digits of other scripts (Bengali, Devanagari): ``০`` looks like ``o``."""

UNSAFE: dict[str, str] = {
    "a control character": CONTROL,
    "a format character": FORMAT,
    "a private-use character": PRIVATE_USE,
    "an unassigned code point": UNASSIGNED,
    "a filler": FILLERS,
    "a space": SPACES,
    "a symbol or punctuation": SYMBOLS,
    "a numeral": NUMERALS,
    "a combining mark": MARKS,
}


def script(char: str) -> str:
    """The prompt's script of a character: its Unicode name's first word; Japanese as one."""
    word = unicodedata.name(char, "?").split()[0]
    return "JAPANESE" if word in JAPANESE else word


def describe(char: str) -> str:
    """``U+200B ZERO WIDTH SPACE (Cf)``: a character as a hint names it."""
    name = unicodedata.name(char, "no name")
    return f"U+{ord(char):04X} {name} ({unicodedata.category(char)})"


def hidden(char: str) -> bool:
    """Does ``char`` show as nothing, or as part of its neighbour (a mark, a space, a filler)?"""
    category = unicodedata.category(char)
    return category[0] in "CMZ" or "FILLER" in unicodedata.name(char, "")


def unsafe(name: str) -> str | None:
    """Why ``name`` is not plain, by any reading of the prompt; None if nothing is certain."""
    plain = unicodedata.normalize("NFKC", name)
    if not 1 <= len(plain) <= MAX_NAME_CHARS:
        return f"its NFKC form {plain!r} has {len(plain)} characters"
    scripts: dict[str, str] = {}
    for char in plain:
        if char in NEUTRAL:
            continue
        category = unicodedata.category(char)
        if category not in LETTERS and category != "Nd":
            return f"its NFKC form has {describe(char)}, neither a letter nor a decimal digit"
        if "FILLER" in unicodedata.name(char, ""):
            return f"its NFKC form has {describe(char)}, a letter that shows nothing"
        if script(char) in SCRIPTS:
            scripts.setdefault(script(char), char)
    if len(scripts) > 1:
        shown = " and ".join(f"{describe(c)} ({s.lower()})" for s, c in scripts.items())
        return f"it mixes scripts: {shown}"
    return None


@st.composite
def ordinary_names(draw: st.DrawFn, scripts: tuple[str, ...] = tuple(ALPHABETS)) -> str:
    """A name of 1 to 32 characters: letters of one script, with some 0-9, ``_``, ``.``, ``-``."""
    alphabet = ALPHABETS[draw(st.sampled_from(scripts))]
    letters = st.sampled_from(alphabet)
    chars = st.one_of(letters, letters, letters, st.sampled_from(sorted(NEUTRAL)))
    return "".join(draw(st.lists(chars, min_size=1, max_size=MAX_NAME_CHARS)))


@st.composite
def tricky_names(draw: st.DrawFn) -> str:
    """An ordinary name with one to three characters put in: unsafe ones, or another script's."""
    name = list(draw(ordinary_names()))
    growing = "ﷺﬃ㍻"  # NFKC makes each several characters
    pools = [*UNSAFE.values(), *ALPHABETS.values(), OTHER_DIGITS, growing]
    for _ in range(draw(st.sampled_from([1, 1, 1, 2, 3]))):
        char = draw(st.sampled_from(draw(st.sampled_from(pools))))
        name.insert(draw(st.integers(0, len(name))), char)
    return "".join(name)


def any_text() -> st.SearchStrategy[str]:
    """Any text at all, for what the pools above do not think of."""
    return st.text(st.characters(exclude_categories=["Cs"]), max_size=40)
