r"""A fast path for aiosmtplib's DATA preparation, for messages that are already clean.

aiosmtplib 5.1 prepares every message with two regular expressions over the whole body: one
turning lone CR and LF into CRLF (in `normalize_message_line_endings`, run once more by
`sendmail` to compute SIZE when the server offers it), and `(?m)^\.` to dot-stuff lines that
start with a period. Python's `re` scans such patterns byte by byte: for a 65 KB digest that
is about 1 ms a message, more than a third of all the CPU the sending loop spends
(bench/send.py, docs/performance.md).

Our messages come out of MessageFactory with CRLF line endings already, which `bytes.count`
confirms at memory speed, and dot-stuffing is one `bytes.replace` of "\n." (what `(?m)^\.`
matches, besides the start). `install()` puts both in place; a message whose line endings do
need fixing takes aiosmtplib's own path unchanged. tests/test_mail_fastdata.py checks that the
results are byte for byte the same as aiosmtplib's on arbitrary input.

It also remembers recent answers of aiosmtplib's `parse_address` (see below).

This replaces module-level names inside aiosmtplib (the functions that `protocol.py`,
`smtp.py` and `email.py` call, and the compiled pattern `protocol.py` calls `.sub` on). It is
done once, on purpose and in one place, and refuses to install over a version whose names
differ.
"""

from __future__ import annotations

import functools
import re
from typing import Any

import aiosmtplib.email
import aiosmtplib.protocol
import aiosmtplib.smtp

from syndicate.mail.message import CrlfMessage, DotFreeMessage

_original_normalize = aiosmtplib.protocol.normalize_message_line_endings
_original_period = aiosmtplib.protocol.PERIOD_REGEX
_original_parse_address = aiosmtplib.email.parse_address
_installed = False

# sendmail() validates the sender and the recipient, then mail() and rcpt() parse them again:
# four email.utils.parseaddr calls a message, each slower than building the message's
# headers. parse_address is a pure function of its argument, so remembering recent answers
# (the sender every time, the recipient the second time) changes nothing but the cost.
parse_address = functools.lru_cache(maxsize=4096)(_original_parse_address)


def normalize_message_line_endings(message: bytes) -> bytes:
    """aiosmtplib's function, with a fast path for messages whose line ends are all CRLF."""
    if isinstance(message, CrlfMessage):  # MessageFactory's output: CRLF throughout
        return message
    carriage_returns = message.count(b"\r")
    if carriage_returns == message.count(b"\n") == message.count(b"\r\n"):
        return message if message.endswith(b"\r\n") else message + b"\r\n"
    return _original_normalize(message)


class _PeriodStuffing:
    r"""Stands in for aiosmtplib's compiled `(?m)^\.`: `.sub(b"..", message)` with
    bytes.replace, which gives the same bytes at memory speed."""

    def __init__(self, pattern: re.Pattern[bytes]) -> None:
        self.pattern = pattern

    def sub(self, replacement: bytes, message: bytes, count: int = 0) -> bytes:
        if replacement != b".." or count:
            return self.pattern.sub(replacement, message, count)
        if type(message) is DotFreeMessage:  # built without a line starting with "."
            return message
        # `(?m)^` is the start and every position after a "\n", so this is the same result.
        if b"\n." not in message and not message.startswith(b"."):
            return message  # the usual case: a search instead of a copy
        stuffed = message.replace(b"\n.", b"\n..")
        return b"." + stuffed if message.startswith(b".") else stuffed

    def __getattr__(self, name: str) -> Any:  # anything else aiosmtplib might ask of it
        return getattr(self.pattern, name)


def install() -> None:
    """Put the fast paths in place (idempotent)."""
    global _installed
    if _installed:
        return
    expected = (
        _original_period.pattern == rb"(?m)^\."
        and aiosmtplib.smtp.normalize_message_line_endings is _original_normalize
        and aiosmtplib.smtp.parse_address is _original_parse_address
    )
    if not expected:
        return  # not the aiosmtplib this was written for: leave it alone
    aiosmtplib.protocol.normalize_message_line_endings = normalize_message_line_endings
    aiosmtplib.smtp.normalize_message_line_endings = normalize_message_line_endings
    aiosmtplib.protocol.PERIOD_REGEX = _PeriodStuffing(_original_period)  # type: ignore[assignment]
    aiosmtplib.smtp.parse_address = parse_address
    aiosmtplib.email.parse_address = parse_address  # what quote_address calls
    _installed = True


def original_prepare(message: bytes) -> bytes:
    """What aiosmtplib itself sends for `message` (tests compare against this)."""
    return _original_period.sub(b"..", _original_normalize(message))


def prepare(message: bytes) -> bytes:
    """What is sent with the fast paths."""
    return _PeriodStuffing(_original_period).sub(b"..", normalize_message_line_endings(message))
