"""How a body goes on the wire: the rules of mail, and digest copies made to follow them.

RFC 5321/5322 ask three things of a body sent as it is (7bit, or 8bit with RFC 6152): lines
end in CRLF, no line is over 998 bytes, and no control characters but tab (and the line ends).
SMTP adds dot-stuffing: a line starting with "." gets another one on the way, which the
transport can skip for a body known to have none (DotFreeText, DotFreeMessage and
syndicate.mail.fastdata).

MailCopy turns a rendered digest issue (syndicate.digest.render.RenderedDigest, which knows
nothing of mail) into each subscriber's bodies: a part known to fit in mail as it is comes as
wire-ready bytes, sparing MessageFactory.build a scan and two copies of it. Whether it fits is
worked out once per issue from the literal text, then per subscriber from their values only
(the benchmark asks for thousands of copies a second).

    copy = MailCopy(rendered)                                  # once per rendered issue
    html, text = copy.bodies(subscriber, unsubscribe_url, preferences_url)   # each
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING

from syndicate.mail.headers import MAX_LINE

if TYPE_CHECKING:
    from syndicate.digest.context import DigestSubscriber
    from syndicate.digest.render import RenderedDigest

CRLF = b"\r\n"
# What may not appear in a mail body sent as it is (7bit or 8bit): C0 controls but tab and
# newline, DEL. For bytes.translate, which deletes them: a few µs where a regex search costs
# tens.
NOT_MAIL_SAFE = bytes([*range(0x00, 0x09), *range(0x0B, 0x20), 0x7F])
_UNSAFE_VALUE = re.compile(r"[\x00-\x1f\x7f]")


def fits_as_is(data: bytes) -> bool:
    """Whether a body (UTF-8, "\n" line ends) may go as it is: no control characters but tab
    and newline, no line over 998 bytes. (Non-ASCII is the transfer encoding's business.)"""
    return len(data.translate(None, NOT_MAIL_SAFE)) == len(data) and (
        max(map(len, data.split(b"\n"))) <= MAX_LINE
    )


class CrlfMessage(bytes):
    """A message as MessageFactory builds it: every line ends with CRLF, the last one too.

    The type says so, so that the SMTP transport can skip checking it (syndicate.mail.fastdata).
    """

    __slots__ = ()


class DotFreeMessage(CrlfMessage):
    """A CrlfMessage none of whose lines starts with ".": SMTP needs no dot-stuffing for it."""

    __slots__ = ()


class DotFreeText(bytes):
    """A wire-ready body part (UTF-8, CRLF line ends, fit for mail as it is) none of whose
    lines starts with "." (see MailCopy.bodies)."""

    __slots__ = ()


class WireBody:
    """A body split at its slots (literal text at even indexes of `parts`, slot names at odd
    ones), filled per subscriber as wire-ready bytes when it fits in mail as it is."""

    __slots__ = ("_dot_free", "_line_starts", "_lines", "_literal_safe", "_wire", "parts", "slots")

    def __init__(self, parts: Sequence[str]) -> None:
        self.parts = list(parts)
        self.slots = tuple((i, self.parts[i]) for i in range(1, len(self.parts), 2))
        self._lines: tuple[int, tuple[tuple[int, int], ...]] | None = None
        self._literal_safe: bool | None = None
        self._wire: list[bytes] = []
        self._dot_free = False  # no literal line starts with "."
        self._line_starts: tuple[str, ...] = ()  # slots whose value starts a line

    def fits_mail(self, values: Mapping[str, str]) -> bool:
        """Whether filled with `values` every line is at most 998 bytes and free of control
        characters, so the mail builder need not scan the whole body to find out. Worked out
        from the literal text once; per call it only looks at the values."""
        if self._literal_safe is None:
            self._analyse()
        if not self._literal_safe or any(_UNSAFE_VALUE.search(v) for v in values.values()):
            return False
        assert self._lines is not None
        longest_plain, with_slots = self._lines
        widest = max((len(v.encode("utf-8")) for v in values.values()), default=0)
        return longest_plain <= MAX_LINE and all(
            length + slots * widest <= MAX_LINE for length, slots in with_slots
        )

    def _analyse(self) -> None:
        """What fits_mail and fill_wire need to know of the literal text, worked out once."""
        literal = "".join(self.parts[::2]).encode("utf-8")
        self._literal_safe = len(literal.translate(None, NOT_MAIL_SAFE)) == len(literal)
        self._lines = self._line_shape()
        # The literal text as it goes on the wire: UTF-8 with CRLF line ends, made once.
        self._wire = [
            part.replace("\n", "\r\n").encode("utf-8") if i % 2 == 0 else b""
            for i, part in enumerate(self.parts)
        ]
        # A line starting with "." needs dot-stuffing in SMTP; knowing there is none
        # spares the transport a search of every message (syndicate.mail.fastdata).
        literals = self.parts[::2]
        # Lines start at the very beginning and after each newline; a literal after a
        # slot continues the slot's line (values hold no newline once fits_mail says so).
        self._dot_free = not any(
            line.startswith(".")
            for index, part in enumerate(literals)
            for number, line in enumerate(part.split("\n"))
            if number > 0 or index == 0
        )
        # A slot may start a line: after a newline, or after an empty literal (counted
        # to be safe: the slot before it may be empty).
        self._line_starts = tuple(
            name
            for index, name in self.slots
            if self.parts[index - 1] == "" or self.parts[index - 1].endswith("\n")
        )

    def fill_wire(self, values: Mapping[str, str]) -> bytes:
        """fill(), as wire-ready bytes (DotFreeText when no line starts with "."); only for
        values fits_mail() accepted."""
        parts = self._wire.copy()
        for index, name in self.slots:
            parts[index] = values[name].encode("utf-8")
        joined = b"".join(parts)
        if not self._dot_free:
            return joined
        starting = [values[name] for name in self._line_starts]
        if any(value.startswith(".") for value in starting):
            return joined
        if "" in starting:  # what follows an empty value starts the line: look (rare)
            dotted = joined.startswith(b".") or b"\n." in joined
            return joined if dotted else DotFreeText(joined)
        return DotFreeText(joined)

    def fill(self, values: Mapping[str, str]) -> str:
        """The body filled with `values`, as text."""
        parts = self.parts.copy()
        for index, name in self.slots:
            parts[index] = values[name]
        return "".join(parts)

    def _line_shape(self) -> tuple[int, tuple[tuple[int, int], ...]]:
        """The longest line without slots, and (length without slots, slots) of each line
        holding some; a NUL stands for each slot (the literal text has none)."""
        marked = "".join(p if i % 2 == 0 else "\x00" for i, p in enumerate(self.parts))
        longest_plain = 0
        with_slots = []
        for line in marked.encode("utf-8").split(b"\n"):
            slots = line.count(b"\x00")
            if slots:
                with_slots.append((len(line) - slots, slots))
            else:
                longest_plain = max(longest_plain, len(line))
        return longest_plain, tuple(with_slots)


class MailCopy:
    """A rendered digest issue as mail: each subscriber's bodies for MessageFactory.build."""

    __slots__ = ("_html", "_text", "rendered")

    def __init__(self, rendered: RenderedDigest) -> None:
        self.rendered = rendered
        self._html = WireBody(rendered.html_parts)
        self._text = WireBody(rendered.text_parts)

    def bodies(
        self, subscriber: DigestSubscriber, unsubscribe_url: str, preferences_url: str
    ) -> tuple[str | bytes, str | bytes]:
        """(html, text) of one subscriber's copy, as RenderedDigest.personalise() gives them:
        a part known to fit in mail as it is (no line over 998 bytes, no control characters)
        comes as wire-ready bytes (UTF-8, CRLF), any other part as text."""
        escaped, values = self.rendered.personal_values(
            subscriber, unsubscribe_url, preferences_url
        )
        html = self._html
        text = self._text
        return (
            html.fill_wire(escaped) if html.fits_mail(escaped) else html.fill(escaped),
            text.fill_wire(values) if text.fits_mail(values) else text.fill(values),
        )
