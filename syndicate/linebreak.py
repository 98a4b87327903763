"""Breaking one line of text for the plain-text part of an email.

Thai, Lao, Khmer and Burmese put no spaces between words, so a wrapper that breaks only at
spaces leaves a Thai paragraph as one line hundreds of columns wide, often past RFC 5322's
998 bytes (which then forces the whole part into quoted-printable). Here a line is broken:

- at `width` display columns (`display_width`): a combining mark, a format character (zero
  width joiner, soft hyphen) or a Hangul medial or final jamo takes no column, an East Asian
  wide or fullwidth character (CJK, kana, most emoji) takes two, anything else one. The rule
  is per code point, so an emoji ZWJ sequence counts as the sum of its emoji: it may wrap a
  little early, never late;
- only where UAX #14 allows a line break, as ICU finds it (with ICU's dictionaries for the
  scripts written without spaces), and only at one of these: after a space, or beside a
  letter of a script that breaks between letters (Thai, Lao, Khmer, Myanmar, Tai Tham, Tai
  Viet, New Tai Lue, and East Asian wide characters). So a Latin, Greek or Cyrillic line
  breaks at spaces as before (less the few UAX #14 forbids: none puts "!" or "»" at the
  start of a line), and a URL or a hyphenated word is never cut where UAX #14 would cut
  it (after "/" or "-"); nor is a whitespace-delimited chunk with "://" or starting
  "www." (an IRI with a Thai path);
- never inside a grapheme cluster (UAX #29, ICU's character breaks): Thai vowel and tone
  marks, Khmer subscripts, Burmese medials and emoji ZWJ sequences stay whole;
- never over MAX_LINE_BYTES of UTF-8: a "word" wider than `width` stays whole on its line,
  unless it is longer than that, when it is cut at grapheme cluster boundaries (and a single
  cluster over the limit, which no language writes, at code points).

Pure ASCII lines take the old road, textwrap, so English output is byte for byte what it
was (and as fast). The module is floor: it imports nothing from syndicate.
"""

from __future__ import annotations

import bisect
import functools
import re
import textwrap
import unicodedata
from collections.abc import Callable
from itertools import accumulate, pairwise

# RFC 5322 section 2.1.1: a line is at most 998 characters (octets, for 8bit) without its
# CRLF. The same number as syndicate.mail.wire.MAX_LINE, which the floor cannot import.
MAX_LINE_BYTES = 998

# The locale for ICU's breakers: the dictionaries are chosen by script, not by locale, and
# the root rules are UAX #14's.
_LOCALE = "und"

# Scripts whose lines may break between letters, by block (UAX #14's class SA): Thai, Lao,
# Myanmar, Khmer, Khmer Symbols, New Tai Lue, Tai Tham, Myanmar Extended-B and -A, Tai Viet.
_SPACELESS_BLOCKS = (
    (0x0E00, 0x0EFF),
    (0x1000, 0x109F),
    (0x1780, 0x17FF),
    (0x1980, 0x19FF),
    (0x1A20, 0x1AAF),
    (0xA9E0, 0xA9FF),
    (0xAA60, 0xAADF),
)
_ZERO_WIDTH_CATEGORIES = frozenset({"Mn", "Me", "Cf"})
_SURROGATE = re.compile("[\ud800-\udfff]")


class _CharTable(dict[str, int]):
    """A character -> a number about it, computed by `measure` on first use. A line has few
    distinct characters; the table stops growing at _CAP, so hostile text with every code
    point costs time, not memory."""

    _CAP = 1 << 16

    def __init__(self, measure: Callable[[str], int]) -> None:
        super().__init__()
        self._measure = measure

    def __missing__(self, char: str) -> int:
        value = self._measure(char)
        if len(self) < self._CAP:
            self[char] = value
        return value


def _columns(char: str) -> int:
    if unicodedata.category(char) in _ZERO_WIDTH_CATEGORIES or 0x1160 <= ord(char) <= 0x11FF:
        return 0
    return 2 if unicodedata.east_asian_width(char) in ("W", "F") else 1


def _breaks_between_letters(char: str) -> bool:
    point = ord(char)
    return unicodedata.east_asian_width(char) in ("W", "F") or any(
        low <= point <= high for low, high in _SPACELESS_BLOCKS
    )


_COLUMNS = _CharTable(_columns)
_BYTES = _CharTable(lambda char: len(char.encode("utf-8", "surrogatepass")))
_SPACELESS = _CharTable(_breaks_between_letters)


def display_width(text: str) -> int:
    """The columns `text` takes in a terminal or a monospaced mail client (the rule is in the
    module's docstring)."""
    return len(text) if text.isascii() else sum(map(_COLUMNS.__getitem__, text))


def utf8_length(text: str) -> int:
    """Bytes of `text` in UTF-8 (a lone surrogate, which cannot be sent, counts three)."""
    return len(text) if text.isascii() else len(text.encode("utf-8", "surrogatepass"))


def wrap_line(line: str, width: int) -> list[str]:
    """One line (no line breaks in it) as lines of at most `width` columns, but a word wider
    than that whole on a line of its own, and no line over MAX_LINE_BYTES. Spaces where a
    line is broken, and at the end, are dropped; indentation at the start is kept if the
    first word fits after it. Tabs are expanded. A blank line gives [""]. All as textwrap
    does."""
    if width <= 0:
        raise ValueError(f"invalid width {width!r} (must be > 0)")
    if line.isascii():
        # textwrap as before; a width over the byte limit is capped to it (ASCII is a byte a
        # column), and what is still longer is one word: cut it, every ASCII character is a
        # grapheme cluster of its own (CR, the one exception, cannot be inside a line).
        lines = _ascii_wrapper(width).wrap(line)
        if len(line) > MAX_LINE_BYTES and any(len(piece) > MAX_LINE_BYTES for piece in lines):
            lines = [
                piece[start : start + MAX_LINE_BYTES]
                for piece in lines
                for start in range(0, len(piece), MAX_LINE_BYTES)
            ]
        return lines or [""]
    return _wrap_unicode(line.expandtabs(), width)


@functools.lru_cache(maxsize=8)
def _ascii_wrapper(width: int) -> textwrap.TextWrapper:
    # One per width, not one per line as textwrap.wrap makes: wrapping does not change it.
    return textwrap.TextWrapper(
        min(width, MAX_LINE_BYTES), break_long_words=False, break_on_hyphens=False
    )


def _wrap_unicode(line: str, width: int) -> list[str]:
    # Columns of line[:i] for every i, and bytes if the line has more than a line may hold:
    # a piece's are then a subtraction.
    columns = list(accumulate(map(_COLUMNS.__getitem__, line), initial=0))
    sizes = None
    if utf8_length(line) > MAX_LINE_BYTES:
        sizes = list(accumulate(map(_BYTES.__getitem__, line), initial=0))
    elif columns[-1] <= width:
        return [line.rstrip(" ")]
    lines: list[str] = []
    start = 0  # where the line being filled starts
    text_end = -1  # where its text (its last piece less trailing spaces) ends; -1: no text yet
    breaks = _break_opportunities(line)
    for begin, end in pairwise(breaks):
        # Spaces at the end of a piece hang past the width (and are dropped at a break), as
        # textwrap's do.
        body_end = end
        while body_end > begin and line[body_end - 1] == " ":
            body_end -= 1
        if columns[body_end] - columns[start] > width or (
            sizes is not None and sizes[body_end] - sizes[start] > MAX_LINE_BYTES
        ):
            if text_end >= 0:
                lines.append(line[start:text_end])
            # else only indentation came before, and it goes (as in textwrap) rather than
            # make a line of spaces
            start, text_end = begin, -1
        if body_end > begin:
            text_end = body_end
    lines.append(line[start:].rstrip(" "))
    if sizes is not None and any(utf8_length(piece) > MAX_LINE_BYTES for piece in lines):
        # A word longer than a line may be: cut it.
        lines = [part for piece in lines for part in _cut_to_bytes(piece)]
    return lines


def _break_opportunities(line: str) -> list[int]:
    """The places `line` may be broken (see the module's docstring), as indices into it,
    from 0 to len(line) inclusive."""
    candidates = _ends("line", line)[:-1]
    if not candidates:
        return [0, len(line)]
    clusters = set(_ends("character", line))
    links = _link_spans(line)
    spaceless = _SPACELESS
    breaks = [0]
    for at in candidates:
        if at in clusters and (
            line[at - 1] == " "
            or ((spaceless[line[at - 1]] or spaceless[line[at]]) and not _inside(links, at))
        ):
            breaks.append(at)
    breaks.append(len(line))
    return breaks


def _link_spans(line: str) -> list[tuple[int, int]]:
    """Whitespace-delimited chunks that are links, to be kept whole as textwrap keeps them:
    (start, end) in order."""
    if "://" not in line and "www." not in line:
        return []
    return [
        match.span()
        for match in re.finditer(r"\S+", line)
        if "://" in match[0] or match[0].startswith("www.")
    ]


def _inside(spans: list[tuple[int, int]], at: int) -> bool:
    """Whether `at` is strictly inside one of `spans` (sorted, not overlapping)."""
    if not spans:
        return False
    index = bisect.bisect_left(spans, (at,)) - 1  # the last span that starts before `at`
    return index >= 0 and at < spans[index][1]


def _cut_to_bytes(line: str) -> list[str]:
    """`line` in pieces of at most MAX_LINE_BYTES, cut only between grapheme clusters (a
    cluster longer than that alone, at code points)."""
    pieces: list[str] = []
    start = size = 0
    for begin, end in pairwise([0, *_ends("character", line)]):
        cluster_size = utf8_length(line[begin:end])
        if size and size + cluster_size > MAX_LINE_BYTES:
            pieces.append(line[start:begin])
            start, size = begin, 0
        if cluster_size > MAX_LINE_BYTES:  # hundreds of marks on one letter: not a language
            for at in range(begin, end):
                char_size = utf8_length(line[at])
                if size + char_size > MAX_LINE_BYTES:
                    pieces.append(line[start:at])
                    start, size = at, 0
                size += char_size
        else:
            size += cluster_size
    pieces.append(line[start:])
    return pieces


def _ends(kind: str, text: str) -> list[int]:
    """Where ICU's `kind` ("line" or "character") breaker ends each segment of `text`, as
    indices into it. The last is len(text)."""
    # Imported here: ICU loads 30 MB of data, which a command that never wraps a non-ASCII
    # line (`syndicate --version`) should not pay for.
    from icu4py.breakers import CharacterBreaker, LineBreaker

    breaker = LineBreaker if kind == "line" else CharacterBreaker
    if _SURROGATE.search(text):
        # ICU takes UTF-8, which has no lone surrogates; U+FFFD in their place keeps every
        # index (one code point for one), and the text itself is left as it was.
        text = _SURROGATE.sub("\ufffd", text)
    ends = [end for _, end in breaker(text, _LOCALE).segments()]
    if len(text.encode("utf-16-le")) != 2 * len(text):
        # ICU counts UTF-16 code units, two for a character past U+FFFF (an emoji).
        units = accumulate((2 if char > "\uffff" else 1 for char in text), initial=0)
        index_of = {unit: index for index, unit in enumerate(units)}
        ends = [index_of[end] for end in ends]
    return ends
