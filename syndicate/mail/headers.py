r"""Every header line syndicate sends is written here; any new message must use it too.

    fields = [
        headers.mailbox("From", "News", "news@example.org"),
        headers.mailbox("To", headers.printable(subscriber.name), subscriber.email),
        headers.text("Subject", subject),
        headers.fixed("Date", format_datetime(now)),
    ]
    raw = b"".join(field.line for field in fields) + ...   # then the MIME headers and body
    headers.verify(raw, fields)     # parse it back: the same names, one each, the same values

Why by hand: the `email` package decodes RFC 2047 encoded-words in the values it is given (an
Address display name, or any string set as a header under policy.SMTP or policy.default) and
then writes the decoded text as it is. A name typed as `=?utf-8?q?Eve=0D=0ABcc:_x@evil.org?=`
came out as "Eve", a line break and a real `Bcc: x@evil.org` header, and an encoded
Content-Type, blank line and HTML became an attacker's body. Here a value is always literal
text, and what a reader decodes is exactly what was given:

- words of ASCII letters, digits and the like (RFC 5322 atext), single-spaced, are written as
  they are; a display name of other printable ASCII becomes a quoted-string (\" and \\ escaped);
  an unstructured value (Subject) of printable ASCII is folded at its spaces;
- anything holding "=?", any other character (non-ASCII), a value too long for one line, or
  an unstructured value starting or ending with a space: RFC 2047 encoded-words (UTF-8) of the
  literal text, "=?utf-8?q?..." included, whole characters in each word, each word on its own
  line of at most 76 characters; an encoded-word's alphabet has no CR, LF or space, so it
  cannot end the line or the header;
- control characters (C0, DEL, C1, U+2028 and U+2029, lone surrogates) are refused with a
  ValueError naming the header. Text from the public (subscribers' names) goes through
  printable() first, which turns them into spaces, so that the name is shown and the
  subscriber still gets the mail;
- values we make (dates, message ids, URLs, MIME parameters) go through fixed(): printable
  ASCII without "=?", so no reader decodes anything in them.

Two checks, so that a future mistake fails loudly instead of sending injected mail:

- every line written is checked to be exactly one header field (ASCII, no control bytes, each
  CRLF followed by a space but the last, no line over 998 bytes) before it is returned;
- verify() parses a whole message back with the `email` parser (policy.default, as a mail
  reader does) and compares: the same header names in the same order, each once, no defects,
  and each decoded value equal to what was asked for. It costs milliseconds (the `email`
  parser is slow), so it runs on every one-off message (the confirmation, `digest preview
  --format eml`) and once per digest issue, on a sample copy with a hostile name
  (MessageFactory); each digest copy's To line gets the structural check, written by the
  same code as the sample's.

Proofs, welcome messages or any other message added later build their header block from
these functions and call verify() on the result (syndicate.mail.message.alternative_message
does both for a text + HTML message).
"""

from __future__ import annotations

import base64
import re
from collections.abc import Sequence
from dataclasses import dataclass
from email import policy
from email.header import decode_header, make_header
from email.message import EmailMessage
from email.parser import BytesParser
from email.utils import parseaddr

# RFC 5322's hard limit on a line, without the CRLF; the limit it recommends; and RFC 2047's
# limit on a line that holds encoded-words, and on one encoded-word.
MAX_LINE = 998
SOFT_LINE = 78
ENCODED_LINE = 76
ENCODED_WORD = 75

# C0 controls, DEL, C1 controls and the Unicode line and paragraph separators: none of them
# belongs in a header, and CR or LF would end it ("\r\nBcc: ..."). Lone surrogates (what
# Python makes of bytes that are not UTF-8 on a command line) cannot be encoded at all.
_CONTROL = "\x00-\x1f\x7f-\x9f\u2028\u2029\ud800-\udfff"
_CONTROLS = re.compile(f"[{_CONTROL}]")
_CONTROL_RUNS = re.compile(f"[{_CONTROL}]+")
# The bytes a written header may hold besides its CRLFs (which translate() deletes too).
_CONTROL_BYTES = bytes([*range(0x00, 0x20), 0x7F])

# atext (RFC 5322 3.2.3): a phrase of these words, one space apart, needs no quoting.
_ATOMS = re.compile(r"[A-Za-z0-9!#$%&'*+/=?^_`{|}~-]+(?: [A-Za-z0-9!#$%&'*+/=?^_`{|}~-]+)*")
_PRINTABLE_ASCII = re.compile(r"[ -~]*")
# Printable ASCII words: an unstructured value that can be written as it is (and folded at
# its spaces), no space at either end (a reader would drop it).
_TEXT = re.compile(r"[!-~]+(?: +[!-~]+)*")
# A dot-atom local part (RFC 5322 3.4.1) and a domain of LDH labels, written without quoting.
_LOCAL_PART = re.compile(r"[A-Za-z0-9!#$%&'*+/=?^_`{|}~-]+(?:\.[A-Za-z0-9!#$%&'*+/=?^_`{|}~-]+)*")
_DOMAIN = re.compile(r"[A-Za-z0-9-]+(?:\.[A-Za-z0-9-]+)*")
# A display name at most this long may be written as a phrase or quoted-string (one line).
_PLAIN_NAME_MAX = 60

# Q encoding (RFC 2047 4.2) with the characters allowed in a phrase (5(3)): the same words are
# then fit for Subject, a display name and List-Id.
_Q_SAFE = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789!*+-/"
_Q = tuple(chr(b) if b in _Q_SAFE else "_" if b == 0x20 else f"={b:02X}" for b in range(256))
_Q_START, _B_START, _END = "=?utf-8?q?", "=?utf-8?b?", "?="
_WRAPPING = len(_Q_START) + len(_END)


class HeaderError(ValueError):
    """A value that cannot be written into a header, or a written header that did not read
    back as meant. The message names the header."""


@dataclass(frozen=True, slots=True)
class HeaderField:
    """One header as written (`line`: "Name: value\\r\\n", folded) and what a reader must
    decode from it (`shows`: the text, or (display name, address) for a mailbox)."""

    name: str
    line: bytes
    shows: str | tuple[str, str]


def printable(text: str) -> str:
    """Public text made fit for a header: each run of control characters becomes a space
    (a smuggled "\\r\\nBcc: ..." is shown, harmlessly, as part of the name), ends stripped."""
    if _CONTROLS.search(text):
        text = _CONTROL_RUNS.sub(" ", text)
    return text.strip()


def text(name: str, value: str) -> HeaderField:
    """An unstructured header (Subject): the literal text, folded or encoded as needed."""
    _refuse_controls(name, value)
    prefix = f"{name}:"
    if not value:
        return HeaderField(name, _checked(name, f"{prefix} \r\n"), value)
    if "=?" not in value and _TEXT.fullmatch(value):
        line = _fold_at_spaces(prefix, value)
        if line is not None:
            return HeaderField(name, _checked(name, line), value)
    words = encoded_words(value, ENCODED_LINE - len(prefix) - 1)
    return HeaderField(name, _checked(name, _lines(prefix, words)), value)


def mailbox(name: str, display_name: str, address: str) -> HeaderField:
    """A header of one mailbox (From, To, Reply-To): the display name as literal text and
    the address as written (ASCII, the domain IDNA-encoded)."""
    line = mailbox_line(name, display_name, address)
    return HeaderField(name, line, (display_name, addr_spec(address, name)))


def mailbox_line(name: str, display_name: str, address: str) -> bytes:
    """mailbox()'s line alone: what each digest copy's To costs (a few µs for a plain name)."""
    spec = addr_spec(address, name)
    if not display_name:
        line = f"{name}: {spec}\r\n"
    elif _is_plain_phrase(display_name):
        # The usual name: atext words ("Ann Lee"), written as they are.
        line = f"{name}: {display_name} <{spec}>\r\n"
    else:
        _refuse_controls(name, display_name)
        line, _ = _phrase_line(name, display_name, f"<{spec}>")
    return _checked(name, line)


def configured_mailbox(name: str, value: str) -> HeaderField:
    """A mailbox from the config, "Name <address>" or a bare address ([digest] from and
    reply_to): the name between the quotes or before "<" is literal text, never decoded."""
    _refuse_controls(name, value)
    display_name, address = parseaddr(value)
    if not address:
        raise HeaderError(f"{name}: not an address: {value!r}")
    return mailbox(name, display_name, address)


def list_id(title: str, identifier: str) -> HeaderField:
    """List-Id (RFC 2919): the list's title as a phrase, then <identifier>."""
    name = "List-Id"
    _refuse_controls(name, title)
    if not _DOMAIN.fullmatch(identifier):
        raise HeaderError(f"{name}: not a list identifier: {identifier!r}")
    tail = f"<{identifier}>"
    if not title:
        return fixed(name, tail)
    # A reader shows List-Id as unstructured text: a quoted title with its quotes.
    line, shown = _phrase_line(name, title, tail)
    return HeaderField(name, _checked(name, line), shown)


def fixed(name: str, *parts: str) -> HeaderField:
    """A header whose value we made (a date, a message id, URLs in angle brackets, MIME
    parameters): printable ASCII without "=?", the parts on one line each (folded)."""
    for part in parts:
        if not part or not _PRINTABLE_ASCII.fullmatch(part) or "=?" in part:
            raise HeaderError(f"{name}: not a value for a header: {part!r}")
    line = f"{name}: " + "\r\n ".join(parts) + "\r\n"
    return HeaderField(name, _checked(name, line), " ".join(parts))


def addr_spec(address: str, name: str = "To") -> str:
    """The address as written in a header: a dot-atom local part, the domain IDNA-encoded and
    lower-cased; HeaderError (naming the header) for one this writer cannot write."""
    local, at, domain = address.rpartition("@")
    if at and local and not local.isascii():
        # It would need SMTPUTF8 end to end, which this sender does not speak.
        raise HeaderError(f"{name}: a non-ASCII mailbox name needs SMTPUTF8: {address!r}")
    if not at or not _LOCAL_PART.fullmatch(local):
        raise HeaderError(f"{name}: not an address this writer can write: {address!r}")
    return f"{local}@{idna(domain, name)}"


def idna(domain: str, name: str) -> str:
    """`domain` in ASCII (IDNA), lower-case; HeaderError naming `name` when it is none."""
    if domain.isascii() and _DOMAIN.fullmatch(domain):
        # What the idna codec gives for an ASCII name (a third of the cost of a To line).
        if all(0 < len(label) < 64 for label in domain.split(".")):
            return domain.lower()
        raise HeaderError(f"{name}: not a domain: {domain!r}")
    try:
        ascii_domain = domain.encode("idna").decode("ascii").lower()
    except UnicodeError:
        raise HeaderError(f"{name}: not a domain: {domain!r}") from None
    if not _DOMAIN.fullmatch(ascii_domain):
        raise HeaderError(f"{name}: not a domain: {domain!r}")
    return ascii_domain


def encoded_words(value: str, first: int) -> list[str]:
    """`value` as RFC 2047 encoded-words (UTF-8): the first at most `first` characters long,
    the others at most 75, each holding whole characters. Q encoding when it is the shorter
    (mostly ASCII text), else B (base64)."""
    data = value.encode("utf-8")
    if sum(len(_Q[byte]) for byte in data) <= (len(data) + 2) // 3 * 4:
        return _q_words(value, first)
    return _b_words(value, first)


def verify(message: bytes, fields: Sequence[HeaderField]) -> EmailMessage:
    """Parse `message` back (policy.default, as a mail reader does) and check that its header
    block is `fields`: the same names in the same order, each once, no defects, each value
    decoding to what it `shows`. HeaderError otherwise; the parsed message when all is well.

    A display name is read as RFC 2047 (6.2) says, adjacent encoded-words joined without the
    white space between them (email.header.decode_header). Python 3.11's address parser keeps
    that space (CPython gh-128110, fixed upstream), so it would misread every name written as
    more than one encoded-word; it still checks the rest: one mailbox, its address, no defects.
    """
    parsed = BytesParser(policy=policy.default).parsebytes(message)
    assert isinstance(parsed, EmailMessage)
    names = [name for name, _ in parsed.raw_items()]
    meant = [field.name for field in fields]
    if names != meant or len({name.lower() for name in names}) != len(names):
        raise HeaderError(f"header check: the message has {names}, not {meant}, each once")
    if parsed.defects:
        raise HeaderError(f"header check: {parsed.defects[0]!r}")
    for field, (name, raw) in zip(fields, parsed.raw_items(), strict=True):
        try:
            value = policy.default.header_fetch_parse(name, raw)
        except (ValueError, TypeError) as error:  # e.g. a display name that decodes to CR LF
            raise HeaderError(f"{name}: header check: {error}") from None
        if value.defects:
            raise HeaderError(f"{name}: header check: {value.defects[0]!r}")
        read: object
        if isinstance(field.shows, tuple):
            addresses = getattr(value, "addresses", ())
            if len(addresses) != 1 or len(value.groups) != 1:
                read = addresses
            else:
                phrase, _ = parseaddr(raw.replace("\r", "").replace("\n", ""))
                read = (str(make_header(decode_header(phrase))), addresses[0].addr_spec)
        else:
            read = str(value)
        if read != field.shows:
            raise HeaderError(f"{name}: header check: reads {read!r}, not {field.shows!r}")
    return parsed


# --- writing ---------------------------------------------------------------------------------


def _is_plain_phrase(phrase: str) -> bool:
    """Atext words one space apart, short, and nothing a reader could take for an
    encoded-word ("=?" and "?" are atext)."""
    return len(phrase) <= _PLAIN_NAME_MAX and "=?" not in phrase and bool(_ATOMS.fullmatch(phrase))


def _refuse_controls(name: str, value: str) -> None:
    if _CONTROLS.search(value):
        raise HeaderError(f"{name}: control characters are not allowed in {value!r}")


def _phrase_line(name: str, phrase: str, tail: str) -> tuple[str, str]:
    """`name: phrase tail` with the phrase bare, quoted or encoded; and the value as a reader
    of unstructured text shows it (quotes and all, or decoded)."""
    prefix = f"{name}:"
    if "=?" not in phrase and _PRINTABLE_ASCII.fullmatch(phrase):
        if _ATOMS.fullmatch(phrase):
            written = phrase
        else:
            written = '"' + phrase.replace("\\", "\\\\").replace('"', '\\"') + '"'
        if len(prefix) + len(written) + len(tail) + 2 <= SOFT_LINE:
            return f"{prefix} {written} {tail}\r\n", f"{written} {tail}"
    words = encoded_words(phrase, ENCODED_LINE - len(prefix) - 1)
    shown = f"{phrase} {tail}"
    # The address (or list id) after the last word when that line stays within 76
    # characters, else on a line of its own.
    last_line = (len(prefix) if len(words) == 1 else 0) + 1 + len(words[-1])
    if last_line + 1 + len(tail) <= ENCODED_LINE:
        words[-1] = f"{words[-1]} {tail}"
        return _lines(prefix, words), shown
    return _lines(prefix, [*words, tail]), shown


def _lines(prefix: str, words: list[str]) -> str:
    """The first word after the header name, each other one on a continuation line."""
    return f"{prefix} " + "\r\n ".join(words) + "\r\n"


def _fold_at_spaces(prefix: str, value: str) -> str | None:
    """`prefix value` folded before single spaces into lines of at most 78 characters where
    possible (unfolding gives the value back exactly); None when a word would make a line
    longer than 998 characters."""
    lines: list[str] = []
    current = prefix
    for word in value.split(" "):
        # Fold before this word when the line would be too long, and only at a single space
        # (after something other than the name and a space), so no line is blank.
        too_long = len(current) + 1 + len(word) > SOFT_LINE
        if word and too_long and current != prefix and not current.endswith(" "):
            lines.append(current)
            current = ""
        current = f"{current} {word}"
    lines.append(current)
    if any(len(line) > MAX_LINE for line in lines):
        return None
    return "\r\n".join(lines) + "\r\n"


def _q_words(value: str, first: int) -> list[str]:
    words: list[str] = []
    pieces: list[str] = []
    used = 0
    room = first - _WRAPPING
    for char in value:
        code = ord(char)
        piece = _Q[code] if code < 0x80 else "".join(_Q[byte] for byte in char.encode("utf-8"))
        if pieces and used + len(piece) > room:
            words.append(_Q_START + "".join(pieces) + _END)
            pieces, used, room = [], 0, ENCODED_WORD - _WRAPPING
        pieces.append(piece)
        used += len(piece)
    words.append(_Q_START + "".join(pieces) + _END)
    return words


def _b_words(value: str, first: int) -> list[str]:
    words: list[str] = []
    chunk = bytearray()
    room = first - _WRAPPING
    for char in value:
        data = char.encode("utf-8")
        if chunk and (len(chunk) + len(data) + 2) // 3 * 4 > room:
            words.append(_B_START + base64.b64encode(chunk).decode("ascii") + _END)
            chunk, room = bytearray(), ENCODED_WORD - _WRAPPING
        chunk += data
    words.append(_B_START + base64.b64encode(chunk).decode("ascii") + _END)
    return words


def _checked(name: str, line: str) -> bytes:
    """`line` as bytes, once it is sure to be one header field named `name`: ASCII, its only
    control bytes the CRLFs, each CRLF but the last followed by a space (a continuation line,
    not blank), no line over 998 bytes."""
    try:
        data = line.encode("ascii")
    except UnicodeEncodeError:
        raise HeaderError(f"{name}: not ASCII once written: {line!r}") from None
    line_ends = data.count(b"\r\n")
    if (
        not data.endswith(b"\r\n")
        or not data.startswith(f"{name}: ".encode("ascii"))
        # translate() deletes every control byte: two for each CRLF, and no others.
        or len(data) - len(data.translate(None, _CONTROL_BYTES)) != 2 * line_ends
        or (line_ends > 1 and (data.count(b"\r\n ") != line_ends - 1 or b"\r\n \r\n" in data))
        or (len(data) > MAX_LINE and max(map(len, data.split(b"\r\n"))) > MAX_LINE)
    ):
        raise HeaderError(f"{name}: not one header field once written: {line!r}")
    return data
