"""One problem found in a digest issue, its words safe to print and to show.

What a problem says can come from the feeds (a link's URL, an image's address) or from a
server (a status phrase, a TLS error), so it may hold anything: a carriage return that
rewrites a terminal line, an escape sequence that recolours it, a right-to-left override
that makes a URL read backwards, or ten kilobytes of URL. A Problem cleans its own fields
when it is made, so no caller can forget: control and bidirectional formatting characters
are written as visible escapes (``\\x1b``, ``\\u202e``) and long text is shortened in the
middle, keeping the start and the end a reader recognises. The page still escapes HTML;
this is about text that is printed.
"""

from __future__ import annotations

import unicodedata
from dataclasses import dataclass

KINDS = ("template", "link", "image", "size", "spam", "reader")
SEVERITIES = ("error", "warning", "info")

MAX_WHERE = 300  # characters: a location is one line on a page or in a terminal
MAX_MESSAGE = 1000  # a sentence, maybe with a URL and a few rule names in it
MAX_URL = 160  # a URL quoted inside a message

# Invisible but meaningful to a terminal or to text layout: embeddings, overrides, isolates
# and marks that change the direction text is shown in (Trojan Source, CVE-2021-42574).
_BIDI = frozenset("\u061c\u200e\u200f\u202a\u202b\u202c\u202d\u202e\u2066\u2067\u2068\u2069")
_ELLIPSIS = "…"


@dataclass(frozen=True, slots=True)
class Problem:
    """A problem for the admin: what kind, where in the issue, and one plain sentence.

    ``where`` is a template's "templates/email/digest.html.j2:42", a URL, an
    ``<img src=...>`` or a part of the message; ``severity`` is "error" (fix it before
    sending), "warning" (worth a look) or "info" (for the record).
    """

    kind: str  # "template" | "link" | "image" | "size" | "spam" | "reader"
    where: str
    message: str
    severity: str = "error"  # "error" | "warning" | "info"

    def __post_init__(self) -> None:
        if self.kind not in KINDS:
            raise ValueError(f"unknown problem kind {self.kind!r}")
        if self.severity not in SEVERITIES:
            raise ValueError(f"unknown severity {self.severity!r}")
        # Frozen: the cleaned text replaces the given one before anyone can read it.
        object.__setattr__(self, "where", shown(self.where, MAX_WHERE))
        object.__setattr__(self, "message", shown(self.message, MAX_MESSAGE))


def shown(text: str, limit: int) -> str:
    """``text`` safe to print on one line: controls as escapes, at most ``limit`` characters
    (a longer text keeps its start and end around an ellipsis)."""
    visible = "".join(_escaped(character) for character in text)
    return shortened(visible, limit)


def shortened(text: str, limit: int) -> str:
    """``text`` cut to ``limit`` characters in the middle: "https://a.example/very…end"."""
    if len(text) <= limit:
        return text
    tail = limit // 3
    head = limit - tail - len(_ELLIPSIS)
    return text[:head] + _ELLIPSIS + text[len(text) - tail :]


def url_shown(url: str) -> str:
    """A URL as quoted inside a message: escaped and at most MAX_URL characters."""
    return shown(url, MAX_URL)


def _escaped(character: str) -> str:
    if character == " ":
        return character
    if character in _BIDI or unicodedata.category(character) in ("Cc", "Zl", "Zp"):
        code = ord(character)
        return f"\\x{code:02x}" if code < 0x100 else f"\\u{code:04x}"
    return character
