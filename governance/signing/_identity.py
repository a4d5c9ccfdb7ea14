"""Identities (principals, actors, approvers) compared as people, not as strings.

:func:`normalise_identity` applies NFKC, case folding and trimming, and refuses what would let one
person pass as two: control and format characters (``alice\\u200b``), whitespace inside a name,
mixed scripts (``al\\u0456ce``: Latin with a Cyrillic letter) and whole-script confusables (a name
entirely in Cyrillic that reads as Latin).  :func:`skeleton` is the Unicode TR39 skeleton idea
(NFD, each character replaced by its confusable prototype, NFD again), over the confusables data
of ``confusable_homoglyphs``; two different principals with one skeleton are refused by the trust
store.
"""

from __future__ import annotations

import unicodedata
from functools import lru_cache
from typing import Any

from governance.errors import InputError

__all__ = ["normalise_identity", "same_person_name", "skeleton"]

_REFUSED_CATEGORIES = ("Cc", "Cf", "Cs", "Co", "Cn", "Zl", "Zp", "Zs")
_NEUTRAL_SCRIPTS = frozenset({"COMMON", "INHERITED"})
# script mixes that are one writing system (TR39 "highly restrictive"): Japanese, Chinese, Korean
_WRITING_SYSTEMS = (frozenset({"LATIN", "HAN", "HIRAGANA", "KATAKANA"}), frozenset({"LATIN", "HAN", "BOPOMOFO"}),
                    frozenset({"LATIN", "HAN", "HANGUL"}))


def _data() -> tuple[Any, Any]:
    from confusable_homoglyphs import categories, confusables  # loads its tables: imported on first use

    return categories, confusables


def normalise_identity(raw: str, what: str = "identity") -> str:
    """``raw`` as NFKC, case-folded and trimmed; :class:`InputError` (naming ``what``) for names
    that are empty, carry invisible or control characters, mix scripts or are whole-script confusable."""
    text = unicodedata.normalize("NFKC", unicodedata.normalize("NFKC", raw or "").casefold()).strip()
    if not text:
        raise InputError(f"{what}: empty identity")
    odd = [c for c in text if unicodedata.category(c) in _REFUSED_CATEGORIES]
    if odd:
        names = ", ".join(f"U+{ord(c):04X} {unicodedata.name(c, 'unnamed')}" for c in dict.fromkeys(odd))
        raise InputError(f"{what}: {raw!r} contains invisible, control or space characters ({names})")
    categories, confusables = _data()
    scripts = {categories.alias(c) for c in text} - _NEUTRAL_SCRIPTS
    if len(scripts) > 1 and not any(scripts <= allowed for allowed in _WRITING_SYSTEMS):
        raise InputError(f"{what}: {raw!r} mixes scripts ({', '.join(sorted(scripts))}); "
                         "identities must be written in one script")
    if len(scripts) == 1 and scripts != {"LATIN"}:
        letters = [c for c in text if categories.alias(c) not in _NEUTRAL_SCRIPTS]
        if letters and all(confusables.is_confusable(c, preferred_aliases=["latin"]) for c in letters):
            raise InputError(f"{what}: {raw!r} is written in {next(iter(scripts)).title()} but every letter "
                             "looks like a Latin one (a whole-script confusable); refused")
    return text


@lru_cache(maxsize=1)
def _prototypes() -> dict[str, str]:
    """character -> prototype: the ASCII (else the lowest) member of its confusable group."""
    _, confusables = _data()
    table: dict[str, str] = {}
    for char, glyphs in confusables.confusables_data.items():
        group = [char, *(g["c"].replace("\u200e", "") for g in glyphs)]
        ascii_members = sorted(g for g in group if g.isascii() and g.isprintable() and len(g) == 1)
        if ascii_members and not char.isascii():
            table[char] = ascii_members[0]
    return table


def skeleton(identity: str) -> str:
    """A TR39-style skeleton of a normalised identity: equal skeletons mean "looks the same"."""
    table = _prototypes()
    text = unicodedata.normalize("NFD", identity)
    mapped = "".join(table.get(c, c) for c in text)
    return unicodedata.normalize("NFD", mapped).casefold()


def same_person_name(a: str, b: str) -> bool:
    """Whether two (raw) names denote the same identity after normalisation."""
    try:
        return normalise_identity(a) == normalise_identity(b)
    except InputError:
        return False
