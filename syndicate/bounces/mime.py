"""Bounded, never-raising reading of hostile mail: parsing, walking, header text.

Everything that comes back to a return path is untrusted and often damaged, so each helper here
caps what it reads (bytes parsed, header length, depth and number of MIME parts, text decoded)
and turns any failure of the `email` package into "nothing here" rather than an exception.
The caps are far above anything a real bounce needs: the report parts of a DSN or an ARF come
before the returned original message, which is the only part that can be big.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Iterator
from email import policy
from email.errors import MessageError
from email.message import Message
from email.parser import BytesParser, HeaderParser
from email.policy import Compat32
from email.utils import getaddresses

# A bounce that returns a 25 MB original still has its report in its first few kilobytes, so
# no more than this is parsed. Measured: 10 MB parsed whole took 0.16 s and ~40 MB; the worst
# 2 MiB (65,000 tiny MIME parts) took 1.0 s in the email parser alone, so half of that.
MAX_PARSE_BYTES = 1024 * 1024
# The compat32 parameter parser is quadratic in the number of ";" of a header, and it runs on
# every Content-Type the parser or flufl.bounce looks at: parameters past this are dropped.
MAX_PARAM_HEADER = 1024
MAX_HEADER = 8192  # any other header field (long References stay whole)
MAX_DEPTH = 32  # nesting of multiparts and message/rfc822 that a walk follows
MAX_PARTS = 500  # MIME parts a walk visits
MAX_TEXT = 64 * 1024  # characters of one text part read for status codes and addresses

_PARAM_HEADERS = frozenset({"content-type", "content-disposition"})


class _BoundedPolicy(Compat32):
    """compat32 (what flufl.bounce expects) with every header value cut to a safe length."""

    def header_source_parse(self, sourcelines: list[str]) -> tuple[str, str]:
        name, value = super().header_source_parse(sourcelines)
        limit = MAX_PARAM_HEADER if name.lower() in _PARAM_HEADERS else MAX_HEADER
        return name, value[:limit]


BOUNDED = _BoundedPolicy()


def parse(raw: bytes) -> Message | None:
    """The message of `raw` (its first MAX_PARSE_BYTES), or None if nested too deep to parse.

    The parser raises RecursionError on message/rfc822 nested a few hundred deep, and that is
    the only failure it is known to have: it records damage as defects and carries on.
    """
    try:
        return BytesParser(policy=BOUNDED).parsebytes(raw[:MAX_PARSE_BYTES])
    except RecursionError:
        return None


def walk(msg: Message) -> Iterator[tuple[Message, int]]:
    """The parts of `msg`'s own MIME tree with their depth, depth first, without recursion and
    within the caps.

    A multipart's children are visited; an enclosed message (message/rfc822, a returned
    original or one a person forwards) is a part, but its insides are not: a bounce quoted in
    a forwarded message is not a bounce of ours, and the blocks of message/delivery-status
    are read by who reads that part.
    """
    stack: list[tuple[Message, int]] = [(msg, 0)]
    seen = 0
    while stack and seen < MAX_PARTS:
        part, depth = stack.pop()
        seen += 1
        yield part, depth
        payload = part.get_payload()
        if depth < MAX_DEPTH and isinstance(payload, list) and is_multipart(part):
            children = [child for child in payload if isinstance(child, Message)]
            stack.extend((child, depth + 1) for child in reversed(children))


def is_multipart(part: Message) -> bool:
    return content_type(part).startswith("multipart/")


def content_type(part: Message) -> str:
    try:
        return part.get_content_type()
    except (MessageError, ValueError, TypeError, IndexError):
        return "text/plain"


def param(part: Message, name: str) -> str:
    """A Content-Type parameter as a plain string ("" when absent or unreadable)."""
    try:
        value = part.get_param(name)
    except (MessageError, ValueError, TypeError, IndexError):
        return ""
    if isinstance(value, tuple):  # RFC 2231 (charset, language, value)
        value = value[2]
    return value if isinstance(value, str) else ""


def raw_values(msg: Message, name: str, limit: int = 100) -> list[str]:
    """The first `limit` values of header `name` as stored: str, never the Header objects
    compat32 returns for a value with 8-bit bytes (those keep them as surrogate escapes)."""
    wanted = name.lower()
    values: list[str] = []
    for key, value in msg.raw_items():
        if key.lower() == wanted:
            values.append(str(value))
            if len(values) >= limit:
                break
    return values


def raw_value(msg: Message, name: str) -> str:
    values = raw_values(msg, name)
    return values[0] if values else ""


_CONTROL_CATEGORIES = frozenset({"Cc", "Cs", "Zl", "Zp"})
_SPACES = re.compile(r"\s+")


def one_line(text: str, limit: int) -> str:
    """`text` as one line: control characters, surrogates and line separators become spaces,
    runs of spaces one space, and at most `limit` characters."""
    text = text[: limit * 4]
    cleaned = "".join(" " if unicodedata.category(ch) in _CONTROL_CATEGORIES else ch for ch in text)
    return _SPACES.sub(" ", cleaned).strip()[:limit]


def decoded(value: str, limit: int) -> str:
    """An unstructured header (Subject) decoded from RFC 2047 words, as one line.

    The modern header parser decodes encoded words leniently (an unknown charset becomes a
    defect, not an error); if it fails anyway, the raw text is better than nothing.
    """
    value = value[: limit * 10]
    try:
        text = str(policy.default.header_factory("subject", value))
    except Exception:  # any failure of the header parser on hostile input
        text = value
    return one_line(text, limit)


def addresses(values: list[str], limit: int = 50) -> list[str]:
    """The addr-specs in address header values, lower-cased, without duplicates, in order.

    Anything that is not a plausible addr-spec (no "@", spaces, control characters, 8-bit
    bytes left as surrogate escapes) is dropped rather than passed on to the caller.
    """
    found: list[str] = []
    examined = 0  # duplicates count too: 60,000 "To: x" lines once took a second
    for value in values:
        try:
            pairs = getaddresses([value])
        except Exception:  # the address parser on hostile input: no address in this value
            pairs = []
        for _name, address in pairs:
            examined += 1
            if examined > 10 * limit:
                return found
            address = clean_address(address)
            if address and address not in found:
                found.append(address)
                if len(found) >= limit:
                    return found
    return found


_BAD_ADDRESS = re.compile(r"[\s\x00-\x1f\x7f<>()\[\],;\"\\\ud800-\udfff]")


def clean_address(address: str) -> str:
    address = address.strip().strip("<>").strip().lower()
    if len(address) > 320 or address.count("@") != 1 or _BAD_ADDRESS.search(address):
        return ""
    local, domain = address.split("@")
    return address if local and domain else ""


def header_block(text: str) -> Message:
    """Header fields in `text` (a text/rfc822-headers part, a block of a DSN) as a Message."""
    return HeaderParser(policy=BOUNDED).parsestr(text[:MAX_TEXT], headersonly=True)


def text_of(part: Message) -> str:
    """The decoded text of a leaf part, at most MAX_TEXT characters ("" for non-text).

    Only the first stretch of the transfer-encoded payload is decoded, so a big part costs no
    more than a small one.
    """
    payload = part.get_payload()
    if not isinstance(payload, str):
        return ""
    encoding = str(part.get("content-transfer-encoding", "")).strip().lower()
    head = payload[: MAX_TEXT * 2]
    probe = Message()
    probe.set_payload(head)
    if encoding:
        probe["Content-Transfer-Encoding"] = encoding
    try:
        data = probe.get_payload(decode=True)
    except Exception:  # a damaged transfer encoding
        data = None
    if not isinstance(data, bytes):
        return head[:MAX_TEXT]
    charset = param(part, "charset") or "utf-8"
    try:
        text = data.decode(charset, errors="replace")
    except (LookupError, ValueError):
        text = data.decode("utf-8", errors="replace")
    return text[:MAX_TEXT]


def slim(msg: Message, budget: int = 4 * MAX_TEXT, max_parts: int = 100) -> None:
    """Cut `msg` down to what a bounce notice needs: at most `max_parts` parts, `budget`
    characters of text in all, no non-text payload, no nesting past MAX_DEPTH.

    For flufl.bounce, whose detectors each read every line of every part, some once per
    pattern: 2 MB of returned attachment, or 5,000 tiny parts, took one to two seconds. The
    notice that names the failed recipients is at the top of a bounce, in its first
    kilobytes. Every part is visited without recursion, not only the ones `walk` shows.
    """
    stack: list[tuple[Message, int]] = [(msg, 0)]
    parts_left = max_parts - 1
    while stack:
        part, depth = stack.pop()
        payload = part.get_payload()
        if isinstance(payload, list):
            children = [child for child in payload if isinstance(child, Message)]
            kept = children[: max(0, parts_left)] if depth < MAX_DEPTH else []
            parts_left -= len(kept)
            part.set_payload(kept)
            stack.extend((child, depth + 1) for child in reversed(kept))
        elif not isinstance(payload, str):
            continue
        elif not content_type(part).startswith("text/"):
            part.set_payload("")
        else:
            keep = max(0, min(len(payload), MAX_TEXT, budget))
            budget -= keep
            if keep < len(payload):
                part.set_payload(payload[:keep])
