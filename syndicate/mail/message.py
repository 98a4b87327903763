"""Digest messages: the issue's MIME skeleton built once, each subscriber's copy filled in cheaply.

    factory = MessageFactory.for_issue(settings, issue, clock=clock)     # once per issue
    html, text = rendered.personalise(subscriber, unsubscribe_url, preferences_url)
    raw = factory.build(subscriber, html, text, unsubscribe_url,
                        message_id_for(issue.id, subscriber.id, factory.domain))

What comes out is an RFC 5322 message with CRLF line endings:

    From, To, Subject, Date, Message-ID, [Reply-To], List-Id, List-Archive,
    List-Unsubscribe (https one-click URL + mailto), List-Unsubscribe-Post, MIME-Version
    multipart/alternative: text/plain first, text/html last (the last part is the preferred one)

Why not EmailMessage per subscriber: with policy.SMTP it costs about 2 ms a message, more than
rendering and sending together. The headers every copy shares go through the `email` package's
header registry and policy.SMTP once (so they are encoded and folded by the library), and are
kept as bytes; per message only To, Date, Message-ID and List-Unsubscribe are formatted (To's
display name RFC 2047-encoded with email.header / email.utils) and the two bodies are encoded
with binascii (quoted-printable or base64, the same C encoders `email` uses).

Header injection: every value put into a header is checked for control characters. Values an
admin configured (sender, reply-to, site title, subject, archive URL) raise ValueError naming the
field, once per issue, so a mistake is loud. A subscriber's name comes from a public form, so its
control characters are turned into spaces rather than failing that subscriber's delivery;
non-ASCII names are sent as encoded-words, which cannot carry a line break.
"""

from __future__ import annotations

import base64
import binascii
import re
import secrets
from dataclasses import dataclass
from email import policy
from email.header import Header
from email.utils import format_datetime, formataddr
from typing import TYPE_CHECKING
from urllib.parse import urlsplit

from syndicate.clock import Clock, SystemClock

if TYPE_CHECKING:
    from syndicate.config import Settings
    from syndicate.models import DigestIssue, Recipient, Subscriber

CRLF = b"\r\n"
# RFC 5322's hard limit on a line, without the CRLF.
MAX_LINE = 998
ONE_CLICK = "List-Unsubscribe=One-Click"

# C0 controls and DEL: CR and LF would start a new header, the others have no place in one.
_CONTROL = re.compile(r"[\x00-\x1f\x7f]")
_CONTROL_OR_SPACE = re.compile(r"[\x00-\x20\x7f]+")
_NEWLINES = re.compile(r"\r\n?")
# What disqualifies a body from being sent as it is (7bit), besides non-ASCII: control characters
# other than tab and newline (bytes.translate deletes them: a few µs, where a regex search costs
# tens), and a line longer than RFC 5322 allows.
_NOT_7BIT_BYTES = bytes([*range(0x00, 0x09), *range(0x0B, 0x20), 0x7F])
# A message id: <left@right>, no spaces, brackets or second "@".
_MESSAGE_ID = re.compile(r"<[!#-;=?A-Z^-~]+@[!#-;=?A-Z^-~]+>")
# An addr-spec we are willing to write without quoting: a dot-atom-ish local part and a domain.
_LOCAL_PART = re.compile(r"[A-Za-z0-9!#$%&'*+/=?^_`{|}~.-]+")
_DOMAIN = re.compile(r"[A-Za-z0-9-]+(?:\.[A-Za-z0-9-]+)*")
# A display name formataddr may write as a plain or quoted phrase; anything else (non-ASCII,
# something that looks like an encoded-word, very long) is written as RFC 2047 encoded-words.
_PLAIN_NAME_MAX = 60


def message_id_for(issue_id: int, subscriber_id: int, domain: str) -> str:
    """The Message-ID of one subscriber's copy of one issue.

    Derived, not random: a retry after a timeout or a crash sends the same id, so a receiving
    server or mail client that saw the first attempt can drop the duplicate.
    """
    return f"<digest-{int(issue_id)}-{int(subscriber_id)}@{_idna(domain, 'domain')}>"


def site_domain(site_url: str) -> str:
    """The host of the site's URL, ASCII (IDNA) and lower-case: the domain of list ids."""
    host = urlsplit(site_url).hostname
    if not host:
        raise ValueError(f"site URL: no host in {site_url!r}")
    return _idna(host, "site URL")


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
    lines starts with "." (see RenderedDigest.personalise_for_mail)."""

    __slots__ = ()


@dataclass(frozen=True, slots=True)
class _Body:
    cte: bytes
    data: bytes


class MessageFactory:
    """Builds the messages of one issue: construct once, call build() for each subscriber."""

    def __init__(
        self,
        *,
        site_title: str,
        site_url: str,
        sender: str,
        subject: str,
        archive_url: str,
        reply_to: str | None = None,
        clock: Clock | None = None,
        eight_bit: bool = False,
    ) -> None:
        self.domain = site_domain(site_url)
        # Whether bodies may go as 8bit (the transport accepts it: a Maildir, or an SMTP
        # server offering 8BITMIME). Quoted-printable is the most expensive step of building
        # a message, and it makes inlined HTML a third bigger ("=" becomes "=3D").
        self.eight_bit = eight_bit
        self._clock = clock or SystemClock()
        _check_url(archive_url, "List-Archive")
        self.mailto = f"mailto:unsubscribe@{self.domain}?subject=unsubscribe"
        list_id = f"digest.{self.domain}"
        # formataddr quotes the title when it has specials (RFC 2919: List-Id is a phrase and
        # an id in angle brackets) and encodes it when it is not ASCII.
        list_id_value = formataddr((_plain(site_title, "List-Id"), list_id), charset="utf-8")

        first = [("From", sender)]
        middle = [("Subject", subject)]
        rest = [
            *([("Reply-To", reply_to)] if reply_to is not None else []),
            ("List-Id", list_id_value),
        ]
        self._from = _fold_all(first)
        self._subject = _fold_all(middle)
        # Written as is: the policy would fold or encode a long URL, and _check_url has made
        # sure it is plain ASCII without spaces or brackets.
        self._rest = _fold_all(rest) + f"List-Archive: <{archive_url}>\r\n".encode("ascii")

        # "=_" can appear neither in quoted-printable output ("=" is always followed by two hex
        # digits or a line break) nor in base64; a 7bit body that contains the boundary is sent
        # as quoted-printable instead (see _encode), so no body can end the part early.
        self.boundary = "=_" + secrets.token_hex(16)
        delimiter = b"--" + self.boundary.encode("ascii")
        self._tail = (
            f"List-Unsubscribe-Post: {ONE_CLICK}\r\n"
            "MIME-Version: 1.0\r\n"
            f'Content-Type: multipart/alternative; boundary="{self.boundary}"\r\n'
            "\r\n"
        ).encode("ascii")
        self._text_head = delimiter + b'\r\nContent-Type: text/plain; charset="utf-8"\r\n'
        self._html_head = CRLF + delimiter + b'\r\nContent-Type: text/html; charset="utf-8"\r\n'
        self._close = CRLF + delimiter + b"--\r\n"
        self._delimiter = delimiter

    @classmethod
    def for_issue(
        cls,
        settings: Settings,
        issue: DigestIssue,
        *,
        archive_url: str | None = None,
        clock: Clock | None = None,
        eight_bit: bool = False,
    ) -> MessageFactory:
        """The factory for `issue` from the config: [site] title and url, [digest] from and
        reply_to. List-Archive defaults to the site's archive of months."""
        site = settings.site
        base = site.url.rstrip("/")
        return cls(
            site_title=site.title,
            site_url=site.url,
            sender=settings.digest.sender,
            subject=issue.subject,
            archive_url=archive_url or f"{base}/feeds/archive/index.html",
            reply_to=settings.digest.reply_to,
            clock=clock,
            eight_bit=eight_bit,
        )

    def message_id(self, issue_id: int, subscriber_id: int) -> str:
        return message_id_for(issue_id, subscriber_id, self.domain)

    def build(
        self,
        subscriber: Recipient | Subscriber,
        html: str | bytes,
        text: str | bytes,
        unsubscribe_url: str,
        message_id: str,
    ) -> bytes:
        """One subscriber's message, as the bytes to store or send (CRLF line endings).

        A body given as bytes is wire-ready: UTF-8 with CRLF line ends, no control characters
        but tab, no line over 998 bytes (RenderedDigest.personalise_for_mail works that out
        from the shared body once), so it is not scanned and copied again here.
        """
        if not _MESSAGE_ID.fullmatch(message_id):
            raise ValueError(f"Message-ID: not a message id: {message_id!r}")
        _check_url(unsubscribe_url, "List-Unsubscribe")
        now = self._clock.now()
        if now.tzinfo is None:
            raise ValueError("Date: the clock must give an aware datetime")
        text_body = _encode(text, self._delimiter, self.eight_bit)
        html_body = _encode(html, self._delimiter, self.eight_bit)
        unsubscribe = f"List-Unsubscribe: <{unsubscribe_url}>,\r\n <{self.mailto}>\r\n"
        # Header lines start with a name or a space, delimiters with "--": only the bodies
        # could start a line with ".", and a DotFreeText sent as it is does not.
        dot_free = text_body.data is text and html_body.data is html
        dot_free = dot_free and type(text) is DotFreeText and type(html) is DotFreeText
        return (DotFreeMessage if dot_free else CrlfMessage)(
            b"".join(
                (
                    self._from,
                    _to_header(subscriber.name, subscriber.email),
                    self._subject,
                    b"Date: ",
                    format_datetime(now).encode("ascii"),
                    b"\r\nMessage-ID: ",
                    message_id.encode("ascii"),
                    CRLF,
                    self._rest,
                    unsubscribe.encode("ascii"),
                    self._tail,
                    self._text_head,
                    text_body.cte,
                    text_body.data,
                    self._html_head,
                    html_body.cte,
                    html_body.data,
                    self._close,
                )
            )
        )


def _fold_all(headers: list[tuple[str, str]]) -> bytes:
    """Headers encoded and folded by the email package (policy.SMTP: CRLF, RFC 2047)."""
    out = []
    for name, value in headers:
        # The header registry refuses CR and LF, but lets other control characters through.
        if _CONTROL.search(value):
            raise ValueError(f"{name}: control characters are not allowed in {value!r}")
        try:
            _, header = policy.SMTP.header_store_parse(name, value)
            folded = policy.SMTP.fold_binary(name, header)
        except (ValueError, TypeError) as error:
            raise ValueError(f"{name}: {error}") from None
        if getattr(header, "defects", None):
            raise ValueError(f"{name}: malformed value {value!r} ({header.defects[0]})")
        if any(len(line) > MAX_LINE for line in folded.split(CRLF)):
            raise ValueError(f"{name}: too long to fold: {value!r}")
        out.append(folded)
    return b"".join(out)


def _to_header(name: str, email: str) -> bytes:
    address = _address(email)
    # Control characters (a "\r\nBcc:" smuggled in through a subscribe form) become spaces: the
    # name is only shown, and a subscriber should not miss the digest over it.
    name = " ".join(_CONTROL_OR_SPACE.sub(" ", name).split())
    if not name:
        return f"To: {address}\r\n".encode("ascii")
    if name.isascii() and len(name) <= _PLAIN_NAME_MAX and "=?" not in name:
        # A phrase, quoted (with \" and \\ escaped) when it holds specials.
        value = formataddr((name, address))
    else:
        # Encoded-words of at most 75 characters each, folded onto continuation lines.
        words = Header(name, "utf-8", header_name="To").encode(linesep="\r\n")
        value = f"{words} <{address}>"
    return f"To: {value}\r\n".encode("ascii")


def _address(email: str) -> str:
    """The addr-spec as written in To: ASCII, the domain IDNA-encoded."""
    local, at, domain = email.rpartition("@")
    if not at or not _LOCAL_PART.fullmatch(local) or ".." in local:
        # A non-ASCII local part would need SMTPUTF8, which this builder does not speak.
        raise ValueError(f"To: not an address this builder can write: {email!r}")
    return f"{local}@{_idna(domain, 'To')}"


def _idna(domain: str, field: str) -> str:
    try:
        ascii_domain = domain.encode("idna").decode("ascii").lower()
    except UnicodeError:
        raise ValueError(f"{field}: not a domain: {domain!r}") from None
    if not _DOMAIN.fullmatch(ascii_domain):
        raise ValueError(f"{field}: not a domain: {domain!r}")
    return ascii_domain


def _plain(value: str, field: str) -> str:
    if _CONTROL.search(value):
        raise ValueError(f"{field}: control characters are not allowed in {value!r}")
    return value


def _check_url(url: str, field: str) -> None:
    """A URL that can sit between angle brackets in a header: http(s), ASCII, no spaces."""
    if (
        not url.startswith(("https://", "http://"))
        or not url.isascii()
        or _CONTROL_OR_SPACE.search(url)
        or "<" in url
        or ">" in url
        or len(url) > MAX_LINE - len("List-Unsubscribe: <>,")
    ):
        raise ValueError(f"{field}: not a URL for a header: {url!r}")


def _encode(body: str | bytes, delimiter: bytes, eight_bit: bool = False) -> _Body:
    """A body as UTF-8 with the cheapest transfer encoding that is safe for it.

    Line endings become CRLF (RFC 5322's, and what the two encoders below expect to keep).
    7bit and 8bit (RFC 6152, when allowed) send the text as it is: no control characters
    but tab and newline, no line over 998 bytes, and nothing that looks like the boundary.
    Bytes are wire-ready already (see MessageFactory.build).
    """
    if isinstance(body, bytes):
        if (eight_bit or body.isascii()) and delimiter not in body:
            cte = b"7bit" if body.isascii() else b"8bit"
            return _Body(b"Content-Transfer-Encoding: " + cte + b"\r\n\r\n", body)
        body = body.decode("utf-8").replace("\r\n", "\n")  # encode it below after all
    if "\r" in body:  # a quick scan spares the regex on the usual, "\n"-only bodies
        body = _NEWLINES.sub("\n", body)
    data = body.encode("utf-8")
    if (
        (eight_bit or data.isascii())
        and delimiter not in data
        and len(data.translate(None, _NOT_7BIT_BYTES)) == len(data)
        and max(map(len, data.split(b"\n"))) <= MAX_LINE
    ):
        cte = b"7bit" if data.isascii() else b"8bit"
        return _Body(b"Content-Transfer-Encoding: " + cte + b"\r\n\r\n", data.replace(b"\n", CRLF))
    # Quoted-printable triples every non-ASCII byte, base64 grows everything by a third: QP
    # keeps mostly-Latin text readable and small, base64 wins for Greek, Cyrillic, CJK...
    non_ascii_extra = len(data) - len(body)  # extra UTF-8 bytes, roughly the non-ASCII share
    if non_ascii_extra * 11 > len(data):
        encoded = base64.encodebytes(data)  # 76-character lines
        return _Body(b"Content-Transfer-Encoding: base64\r\n\r\n", encoded.replace(b"\n", CRLF))
    encoded = binascii.b2a_qp(data, quotetabs=False, istext=True, header=False)
    return _Body(
        b"Content-Transfer-Encoding: quoted-printable\r\n\r\n", encoded.replace(b"\n", CRLF)
    )
