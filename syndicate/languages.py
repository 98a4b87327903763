"""Language tags: reading them from feeds and browsers, and telling a text's language by its
script when nothing else says.

    language_tag(" EN_us ")                         -> "en-US"   (None: not a tag)
    primary("th-TH")                                -> "th"
    script_language("ภาษาไทย ...")                  -> "th"      (None: not unambiguous)
    post_language(source="my", declared="en", text) -> "my"      (the source's key wins)
    best_match("th-TH,th;q=0.9,en;q=0.5", ["en", "th"]) -> "th"
    language_name("th")                             -> "ไทย"     (what a reader picks)

Thai, Lao, Khmer and Myanmar are each written in a script of their own, so a text mostly in
one of them is in that language whatever a feed declares: WordPress writes the site's
`<language>en-US</language>` on every post, also on the Thai ones. Other scripts are shared
by many languages (Latin, Cyrillic, Arabic...) and say nothing on their own.

No imports from the rest of the package: every layer may use this.
"""

from __future__ import annotations

import re
from collections.abc import Sequence

# BCP 47, as far as feeds and browsers use it: a 2-3 letter language, then subtags of 1-8
# letters or digits ("en", "en-US", "zh-Hant-TW", "my-MM"). "_" is read as "-" (Java locales
# and some feeds write en_US).
_TAG = re.compile(r"[A-Za-z]{2,3}(?:-[A-Za-z0-9]{1,8})*")
MAX_TAG = 35
# Scripts that belong to one language each here, by Unicode block.
_SCRIPTS = (
    ("th", ((0x0E00, 0x0E7F),)),
    ("lo", ((0x0E80, 0x0EFF),)),
    ("km", ((0x1780, 0x17FF), (0x19E0, 0x19FF))),
    ("my", ((0x1000, 0x109F), (0xA9E0, 0xA9FF), (0xAA60, 0xAA7F))),
)
# A text is in a script's language when at least this share of its letters are in it.
SCRIPT_SHARE = 0.5
_SAMPLE = 2000  # characters looked at: enough to tell, cheap for a long post


def language_tag(value: object) -> str | None:
    """A tag written the usual way (language lower-case, a 2-letter region upper-case, a
    4-letter script title-case), or None when `value` is not one."""
    if not isinstance(value, str):
        return None
    text = value.strip().replace("_", "-")
    if not text or len(text) > MAX_TAG or not _TAG.fullmatch(text):
        return None
    first, *rest = text.split("-")
    parts = [first.lower()]
    for part in rest:
        if len(part) == 2 and part.isalpha():
            parts.append(part.upper())
        elif len(part) == 4 and part.isalpha():
            parts.append(part.title())
        else:
            parts.append(part.lower())
    return "-".join(parts)


def primary(tag: str) -> str:
    """The language subtag of a tag: "th" of "th-TH"."""
    return tag.split("-", 1)[0].lower()


def script_language(text: str) -> str | None:
    """The language whose own script most of `text`'s letters are in (Thai, Lao, Khmer,
    Myanmar), or None."""
    letters = 0
    counts = dict.fromkeys((language for language, _ in _SCRIPTS), 0)
    for char in text[:_SAMPLE]:
        if not char.isalpha() and not _is_mark(char):
            continue
        letters += 1
        code = ord(char)
        if code < 0x0E00:
            continue
        for language, blocks in _SCRIPTS:
            if any(start <= code <= end for start, end in blocks):
                counts[language] += 1
                break
    if not letters:
        return None
    language, count = max(counts.items(), key=lambda item: item[1])
    return language if count and count >= letters * SCRIPT_SHARE else None


def post_language(source: str | None, declared: str | None, text: str) -> str | None:
    """A post's language: the source's `language` key; else what the feed declares, unless
    the text is unambiguously in another script's language; else the script's language."""
    if tag := language_tag(source):
        return tag
    declared_tag = language_tag(declared)
    by_script = script_language(text)
    if by_script and (declared_tag is None or primary(declared_tag) != by_script):
        return by_script
    return declared_tag


def best_match(accept_language: str | None, offered: Sequence[str]) -> str | None:
    """The first of `offered` (tags, in the site's order) that an Accept-Language header
    prefers, by quality then order: an exact tag, else the same language ("th-TH" asks for
    "th"); None when it asks for none of them. A malformed header asks for nothing."""
    if not accept_language or not offered:
        return None
    wanted: list[tuple[float, int, str]] = []
    for position, item in enumerate(accept_language.split(",")[:50]):
        name, _, params = item.strip().partition(";")
        quality = 1.0
        for param in params.split(";"):
            key, _, value = param.strip().partition("=")
            if key.strip().lower() == "q":
                try:
                    quality = float(value)
                except ValueError:
                    quality = 0.0
        if not 0 < quality <= 1:
            continue
        if name.strip() == "*":
            wanted.append((quality, position, offered[0]))
        elif tag := language_tag(name):
            wanted.append((quality, position, tag))
    for _, _, tag in sorted(wanted, key=lambda item: (-item[0], item[1])):
        for choice in offered:
            if choice.lower() == tag.lower():
                return choice
        for choice in offered:
            if primary(choice) == primary(tag):
                return choice
    return None


def language_name(tag: str) -> str:
    """The language's name in itself ("ไทย" for "th"), for a reader choosing it; the tag
    when Babel does not know it."""
    from babel import Locale, UnknownLocaleError

    try:
        return Locale.parse(tag, sep="-").get_display_name() or tag
    except (ValueError, UnknownLocaleError):
        return tag


def _is_mark(char: str) -> bool:
    # Thai vowel and tone marks, Khmer and Myanmar signs are combining marks (Mn/Mc), not
    # letters, yet they are as much the script as its consonants.
    code = ord(char)
    return 0x0E00 <= code <= 0x109F or 0x1780 <= code <= 0x17FF
