"""Digest messages: the issue's MIME skeleton built once, each subscriber's copy filled in cheaply.

    factory = MessageFactory.for_issue(settings, issue, clock=clock)     # once per issue
    html, text = rendered.personalise(subscriber, unsubscribe_url, preferences_url)
    raw = factory.build(subscriber, html, text, unsubscribe_url,
                        message_id_for(issue.id, subscriber.id, factory.domain),
                        mailto="unsubscribe+u9466-42-...@example.org")   # or None: no mailto

What comes out is an RFC 5322 message with CRLF line endings:

    From, To, Subject, Date, Message-ID, [Reply-To], List-Id, List-Archive,
    List-Unsubscribe (https one-click URL [+ mailto]), List-Unsubscribe-Post, MIME-Version
    multipart/alternative: text/plain first, text/html last (the last part is the preferred one)

Why not EmailMessage per subscriber: with policy.SMTP it costs about 2 ms a message, more than
rendering and sending together; and the `email` package decodes encoded-words in the values it
is given, which let a name like "=?utf-8?q?Eve=0D=0ABcc:...?=" add headers. Every header line
is written by syndicate.mail.headers (literal text: plain, quoted or RFC 2047 encoded-words,
each line checked to be one header field). The headers every copy shares are written once per
issue and kept as bytes; per message only To, Date, Message-ID and List-Unsubscribe are
written, and the two bodies are encoded with binascii (quoted-printable or base64, the same C
encoders `email` uses).

Header injection: values an admin configured (sender, reply-to, site title, subject, archive
URL) raise ValueError naming the header when they hold control characters, once per issue, so
a mistake is loud. A subscriber's name comes from a public form, so its control characters
are turned into spaces (headers.printable) rather than failing that subscriber's delivery.
Each new factory builds a sample copy for a hostile name and parses it back (headers.verify):
the same headers, each once, the values as given, one multipart/alternative with text then
HTML; otherwise it raises HeaderError before anything is sent.

alternative_message() builds one-off messages (the confirmation, a preview) the same way, and
verifies each one.
"""

from __future__ import annotations

import base64
import binascii
import re
import secrets
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from email.message import EmailMessage
from email.utils import format_datetime
from typing import TYPE_CHECKING
from urllib.parse import urlsplit

import syndicate.mail.headers as headers
from syndicate.clock import Clock, SystemClock
from syndicate.mail.headers import MAX_LINE, HeaderError, HeaderField
from syndicate.mail.wire import CRLF, CrlfMessage, DotFreeMessage, DotFreeText, fits_as_is

if TYPE_CHECKING:
    from syndicate.config import Settings
    from syndicate.models import DigestIssue, Recipient, Subscriber

ONE_CLICK = "List-Unsubscribe=One-Click"
MAILTO_QUERY = "?subject=unsubscribe"
# The address of a mailto in List-Unsubscribe: ours (syndicate.mail.verp), so plain ASCII.
_MAILTO_ADDRESS = re.compile(r"[a-z0-9._+-]{1,64}@[a-z0-9-]+(?:\.[a-z0-9-]+)+")

_CONTROL_OR_SPACE = re.compile(r"[\x00-\x20\x7f]+")
_NEWLINES = re.compile(r"\r\n?")
# A message id: <left@right>, no spaces, brackets or second "@".
_MESSAGE_ID = re.compile(r"<[!#-;=?A-Z^-~]+@[!#-;=?A-Z^-~]+>")
SAMPLE_DATE = datetime(2015, 12, 1, 9, 30, tzinfo=UTC)
# The name each new factory writes into a sample copy and reads back (see _self_check):
# hostile encoded-words with quotes and a backslash, long enough to be folded. (The To writer
# is tested on many more in tests/test_mail_injection.py; this checks the issue's headers.)
SAMPLE_NAME = 'Zoë "Q" \\ =?utf-8?q?Eve=0D=0ABcc:_x@evil.example=0D=0AContent-Type:_text/html?='


def message_id_for(issue_id: int, subscriber_id: int, domain: str) -> str:
    """The Message-ID of one subscriber's copy of one issue.

    Derived, not random: a retry after a timeout or a crash sends the same id, so a receiving
    server or mail client that saw the first attempt can drop the duplicate.
    """
    return f"<digest-{int(issue_id)}-{int(subscriber_id)}@{headers.idna(domain, 'domain')}>"


def site_domain(site_url: str) -> str:
    """The host of the site's URL, ASCII (IDNA) and lower-case: the domain of list ids."""
    host = urlsplit(site_url).hostname
    if not host:
        raise ValueError(f"site URL: no host in {site_url!r}")
    return headers.idna(host, "site URL")


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

        self._from = headers.configured_mailbox("From", sender)
        self._subject_text = subject
        self._subject = headers.text("Subject", subject)
        # Other copies' subjects (readers of other languages), each encoded once.
        self._subjects: dict[str, HeaderField] = {}
        self._rest = [
            *([headers.configured_mailbox("Reply-To", reply_to)] if reply_to is not None else []),
            # RFC 2919: the site's title as a phrase, then the list's id.
            headers.list_id(site_title, f"digest.{self.domain}"),
            headers.fixed("List-Archive", f"<{archive_url}>"),
        ]
        self._rest_bytes = b"".join(field.line for field in self._rest)

        # "=_" can appear neither in quoted-printable output ("=" is always followed by two hex
        # digits or a line break) nor in base64; a 7bit body that contains the boundary is sent
        # as quoted-printable instead (see _encode), so no body can end the part early.
        self.boundary = "=_" + secrets.token_hex(16)
        delimiter = b"--" + self.boundary.encode("ascii")
        self._tail = [
            headers.fixed("List-Unsubscribe-Post", ONE_CLICK),
            *_mime_fields(self.boundary),
        ]
        self._tail_bytes = b"".join(field.line for field in self._tail) + CRLF
        self._text_head = delimiter + b'\r\nContent-Type: text/plain; charset="utf-8"\r\n'
        self._html_head = CRLF + delimiter + b'\r\nContent-Type: text/html; charset="utf-8"\r\n'
        self._close = CRLF + delimiter + b"--\r\n"
        self._delimiter = delimiter
        self._self_check()

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
        return cls.for_subject(
            settings, issue.subject, archive_url=archive_url, clock=clock, eight_bit=eight_bit
        )

    @classmethod
    def for_subject(
        cls,
        settings: Settings,
        subject: str,
        *,
        archive_url: str | None = None,
        clock: Clock | None = None,
        eight_bit: bool = False,
    ) -> MessageFactory:
        """As for_issue, for a copy with this subject that is not a stored issue's (the live
        preview's)."""
        site = settings.site
        base = site.url.rstrip("/")
        return cls(
            site_title=site.title,
            site_url=site.url,
            sender=settings.digest.sender,
            subject=subject,
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
        mailto: str | None = None,
        *,
        subject: str | None = None,
    ) -> bytes:
        """One subscriber's message, as the bytes to store or send (CRLF line endings).

        `subject` is their copy's, when it is not the issue's (a reader of another
        language); each distinct one is encoded once.

        `mailto` is the address of List-Unsubscribe's mailto (RFC 8058's fallback: the
        subscriber's unsubscribe mailbox address, syndicate.mail.verp); None leaves it out,
        since nobody would read that mail.

        A body given as bytes is wire-ready: UTF-8 with CRLF line ends, no control characters
        but tab, no line over 998 bytes (wire.MailCopy.bodies works that out
        from the shared body once), so it is not scanned and copied again here.
        """
        return self._assemble(
            subscriber,
            html,
            text,
            unsubscribe_url,
            message_id,
            self._clock.now(),
            mailto,
            self._subject_field(subject),
        )

    def _subject_field(self, subject: str | None) -> HeaderField:
        if subject is None or subject == self._subject_text:
            return self._subject
        if subject not in self._subjects:
            self._subjects[subject] = headers.text("Subject", subject)
        return self._subjects[subject]

    def _assemble(
        self,
        subscriber: Recipient | Subscriber | _Sample,
        html: str | bytes,
        text: str | bytes,
        unsubscribe_url: str,
        message_id: str,
        now: datetime,
        mailto: str | None = None,
        subject: HeaderField | None = None,
    ) -> bytes:
        if not _MESSAGE_ID.fullmatch(message_id) or "=?" in message_id:
            raise HeaderError(f"Message-ID: not a message id: {message_id!r}")
        _check_url(unsubscribe_url, "List-Unsubscribe")
        if mailto is not None and not _MAILTO_ADDRESS.fullmatch(mailto):
            raise HeaderError(f"List-Unsubscribe: not a mailto address: {mailto!r}")
        if now.tzinfo is None:
            raise ValueError("Date: the clock must give an aware datetime")
        text_body = _encode(text, self._delimiter, self.eight_bit)
        html_body = _encode(html, self._delimiter, self.eight_bit)
        # Date, Message-ID and List-Unsubscribe are written as they are: the clock's date in
        # RFC 5322's format, and an id and a URL the checks above held to printable ASCII
        # without spaces, brackets or "=?" (what headers.fixed would check again).
        if mailto is None:
            unsubscribe = f"List-Unsubscribe: <{unsubscribe_url}>\r\n"
        else:
            unsubscribe = (
                f"List-Unsubscribe: <{unsubscribe_url}>,\r\n <mailto:{mailto}{MAILTO_QUERY}>\r\n"
            )
        # Header lines start with a name or a space, delimiters with "--": only the bodies
        # could start a line with ".", and a DotFreeText sent as it is does not.
        dot_free = text_body.data is text and html_body.data is html
        dot_free = dot_free and type(text) is DotFreeText and type(html) is DotFreeText
        return (DotFreeMessage if dot_free else CrlfMessage)(
            b"".join(
                (
                    self._from.line,
                    # Public text: control characters become spaces, the rest is literal.
                    headers.mailbox_line(
                        "To", headers.printable(subscriber.name), subscriber.email
                    ),
                    (subject or self._subject).line,
                    b"Date: ",
                    format_datetime(now).encode("ascii"),
                    b"\r\nMessage-ID: ",
                    message_id.encode("ascii"),
                    CRLF,
                    self._rest_bytes,
                    unsubscribe.encode("ascii"),
                    self._tail_bytes,
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

    def _self_check(self) -> None:
        """Build a copy for SAMPLE_NAME and read it back: HeaderError unless every header
        reads as written, each once, in one multipart/alternative of text then HTML. About
        10 ms (the `email` parser is slow), once per issue."""
        sample = _Sample(name=SAMPLE_NAME, email=f"sample@{self.domain}")
        unsubscribe = f"https://{self.domain}/unsubscribe/sample-token"
        message_id = message_id_for(0, 0, self.domain)
        mailto = f"unsubscribe+u1-1-sample@{self.domain}"
        raw = self._assemble(
            sample, "<p>html</p>\n", "text\n", unsubscribe, message_id, SAMPLE_DATE, mailto
        )
        fields = [
            self._from,
            headers.mailbox("To", SAMPLE_NAME, sample.email),
            self._subject,
            headers.fixed("Date", format_datetime(SAMPLE_DATE)),
            headers.fixed("Message-ID", message_id),
            *self._rest,
            headers.fixed(
                "List-Unsubscribe", f"<{unsubscribe}>,", f"<mailto:{mailto}{MAILTO_QUERY}>"
            ),
            *self._tail,
        ]
        check_alternative(headers.verify(raw, fields))


@dataclass(frozen=True, slots=True)
class _Sample:
    name: str
    email: str


def alternative_message(fields: Sequence[HeaderField], text: str, html: str) -> bytes:
    """A one-off message (CRLF): the header `fields`, then MIME-Version and Content-Type, and
    a multipart/alternative of `text` then `html` (7bit, quoted-printable or base64: no 8bit,
    since the transport is not asked). Read back before it is returned (headers.verify and
    check_alternative), so a header that reads otherwise than written is a HeaderError.

    What any message other than a digest copy is built with: the confirmation today, proofs
    and welcome messages when they come.
    """
    boundary = "=_" + secrets.token_hex(16)
    delimiter = b"--" + boundary.encode("ascii")
    all_fields = [*fields, *_mime_fields(boundary)]
    text_body = _encode(text, delimiter)
    html_body = _encode(html, delimiter)
    raw = b"".join(
        (
            *(field.line for field in all_fields),
            CRLF,
            delimiter,
            b'\r\nContent-Type: text/plain; charset="utf-8"\r\n',
            text_body.cte,
            text_body.data,
            CRLF,
            delimiter,
            b'\r\nContent-Type: text/html; charset="utf-8"\r\n',
            html_body.cte,
            html_body.data,
            CRLF,
            delimiter,
            b"--\r\n",
        )
    )
    check_alternative(headers.verify(raw, all_fields))
    return raw


def check_alternative(message: EmailMessage) -> None:
    """HeaderError unless `message` is one multipart/alternative of text/plain then
    text/html, without defects."""
    parts = [part.get_content_type() for part in message.iter_parts()]
    if message.get_content_type() != "multipart/alternative" or parts != [
        "text/plain",
        "text/html",
    ]:
        raise HeaderError(
            f"message check: {message.get_content_type()} of {parts}, not text then HTML"
        )
    for part in message.walk():
        if part.defects:
            raise HeaderError(f"message check: {part.defects[0]!r}")


def _mime_fields(boundary: str) -> list[HeaderField]:
    return [
        headers.fixed("MIME-Version", "1.0"),
        headers.fixed("Content-Type", f'multipart/alternative; boundary="{boundary}"'),
    ]


def _check_url(url: str, field: str) -> None:
    """A URL that can sit between angle brackets in a header: http(s), ASCII, no spaces, no
    "=?" (a reader would try to decode an encoded-word there)."""
    if (
        not url.startswith(("https://", "http://"))
        or not url.isascii()
        or _CONTROL_OR_SPACE.search(url)
        or "<" in url
        or ">" in url
        or "=?" in url
        or len(url) > MAX_LINE - len("List-Unsubscribe: <>,")
    ):
        raise HeaderError(f"{field}: not a URL for a header: {url!r}")


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
    if (eight_bit or data.isascii()) and delimiter not in data and fits_as_is(data):
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
