"""No header or body injection through a name, on every message we send (issue 15).

A name like `=?utf-8?q?Eve=0D=0ABcc:_x@evil.example?=` used to reach the mail as a real
`Bcc:` header: the `email` package decodes the encoded-words it is given, then writes the
decoded text as it is. Each hostile name below goes through every message we send today, the
confirmation (`subscribers add --name`, the web subscribe form), the welcome (the web confirm
button) and the digest (MessageFactory, `digest send`), into the Maildir outbox and to a real
SMTP server (aiosmtpd, tests/smtpserver.py). The bytes are parsed back with `email`
(policy.default) and must hold exactly the headers we write, no Bcc, one Content-Type, one
multipart/alternative of text then HTML, and a To whose display name decodes to the literal
name typed.

Display names are read as RFC 2047 section 6.2 says, adjacent encoded-words joined without the
white space between them. Python 3.11's address parser keeps that space (CPython gh-128110,
fixed upstream), so for a name written as several encoded-words its `.display_name` has extra
spaces; where the name takes at most one encoded-word, `.display_name` is checked as well.
"""

from __future__ import annotations

import asyncio
import base64
import mailbox
import re
from datetime import UTC, datetime, timedelta
from email import policy
from email.header import decode_header, make_header
from email.message import EmailMessage
from email.parser import BytesParser
from email.utils import parseaddr
from pathlib import Path

import pytest
from click.testing import CliRunner, Result
from hypothesis import given
from hypothesis import strategies as st
from smtpserver import SmtpServer
from test_mail_send import drop_mail_section, prepared, smtp_config
from test_web_subscription import SECRET, open_web

from syndicate import subscribers as service
from syndicate.cli import cli
from syndicate.clock import FrozenClock
from syndicate.config import Settings, load_settings
from syndicate.mail import MessageFactory, headers
from syndicate.mail.confirm import build_confirmation
from syndicate.mail.headers import HeaderError, HeaderField
from syndicate.mail.outbox import OutboxTransport
from syndicate.mail.send import send_period
from syndicate.mail.transport import Transport
from syndicate.mail.welcome import build_welcome
from syndicate.models import Subscriber
from syndicate.store import Store
from syndicate.tokens import Tokens

SITE = "https://news.riverside-commons.example"  # [site] url of the bundled config.toml
DOMAIN = "news.riverside-commons.example"
SENDER = "newsletter@riverside-commons.example"  # [digest] from of the bundled config.toml
NOW = datetime(2016, 1, 1, 9, tzinfo=UTC)
PERIOD = "2015-12"  # the bundled examples have posts in it

SMUGGLE = "Eve\r\nBcc: x@evil.example"
BODY = "Eve\r\nContent-Type: text/html\r\n\r\n<h1>Click here</h1>"


def b64(text: str, charset: str = "utf-8") -> str:
    return base64.b64encode(text.encode(charset)).decode("ascii")


# Names without control characters, at most 200 characters (what the web form takes): each
# must be shown exactly as typed.
TYPED = [
    "=?utf-8?q?Eve=0D=0ABcc:_x@evil.example?=",  # Q, UTF-8: a Bcc smuggled in
    f"=?utf-8?b?{b64(SMUGGLE)}?=",  # B
    "=?iso-8859-1?q?=C8ve=0D=0ABcc:_x@evil.example?=",  # other charsets
    f"=?windows-1252?b?{b64('È' + SMUGGLE[1:], 'cp1252')}?=",
    "=?UTF-8?Q?Eve?= =?UTF-8?Q?=0D=0ABcc:_x@evil.example?=",  # split over two words
    "=?utf-8*en?q?Eve=0D=0ABcc:_x@evil.example?=",  # RFC 2231 language tag
    # An encoded Content-Type, a blank line and an HTML body: the attacker's message.
    "=?utf-8?q?Eve=0D=0AContent-Type:_text/html=0D=0A=0D=0A<h1>Click_here</h1>?=",
    f"=?utf-8?b?{b64(BODY)}?=",
    '"Eve" <eve@evil.example>, x@evil.example',  # a second address
    'Eve \\"Q\\" \\\\ O\'Neil "quoted" (comment) \\',  # quotes and backslashes
    "Zoë Ünïcödé =?utf-8?q?=0D=0A?= 日本語 😀",
    "A" * 200,  # very long, one word
    " ".join(["Ünïcödé"] * 25),  # very long, non-ASCII (199 characters)
    "=?utf-8?q?" + "=0D=0ABcc:_x@evil.example" * 7 + "?=",  # very long encoded-word
]
# Names with control characters or line separators: `subscribers add`, import and the form
# refuse them (subscribers.clean_name), but a row stored before that check, or written by
# hand, may still hold one; the mail shows each run of them as a space.
CONTROLS = [
    (SMUGGLE, "Eve Bcc: x@evil.example"),
    (
        "Eve\nContent-Type: text/html\n\n<h1>Click here</h1>",
        "Eve Content-Type: text/html <h1>Click here</h1>",
    ),
    ("Eve\rBcc: x@evil.example", "Eve Bcc: x@evil.example"),
    ("Eve\u2028Bcc: x@evil.example\u2029", "Eve Bcc: x@evil.example"),
    ("Eve\x1b[31m\x7fRed", "Eve [31m Red"),
]
NAMES = [(name, name) for name in TYPED] + CONTROLS
# What subscribers.clean_name refuses: C0 and C1 controls, DEL, U+2028 and U+2029.
REFUSED = re.compile("[\x00-\x1f\x7f-\x9f\u2028\u2029]")

CONFIRMATION = [
    "From",
    "To",
    "Subject",
    "Date",
    "Message-ID",
    "Auto-Submitted",
    "MIME-Version",
    "Content-Type",
]
DIGEST = [
    "From",
    "To",
    "Subject",
    "Date",
    "Message-ID",
    "List-Id",
    "List-Archive",
    "List-Unsubscribe",
    "List-Unsubscribe-Post",
    "MIME-Version",
    "Content-Type",
]
OUTBOX = ["Return-Path", "X-Envelope-To"]  # what the Maildir transport prepends


def parse(raw: bytes) -> EmailMessage:
    message = BytesParser(policy=policy.default).parsebytes(raw)
    assert isinstance(message, EmailMessage)
    return message


def display_name(message: EmailMessage, header: str = "To") -> str:
    """The display name as RFC 2047 reads it (see the module docstring)."""
    [raw] = [value for name, value in message.raw_items() if name == header]
    phrase, _ = parseaddr(raw.replace("\r", "").replace("\n", ""))
    return str(make_header(decode_header(phrase)))


def check(raw: bytes, names: list[str], address: str, shown: str) -> EmailMessage:
    """`raw` holds exactly the headers `names`, one message to `address` showing `shown`."""
    message = parse(raw)
    assert [name for name, _ in message.raw_items()] == names
    head = raw.split(b"\r\n\r\n", 1)[0]
    assert head.isascii()
    assert not re.search(rb"(?im)^(bcc|cc)\s*:", head)
    assert "Bcc" not in message
    assert len(message.get_all("Content-Type") or []) == 1
    assert message.get_content_type() == "multipart/alternative"
    assert [part.get_content_type() for part in message.iter_parts()] == [
        "text/plain",
        "text/html",
    ]
    assert all(not part.defects for part in message.walk())
    [to] = message["To"].addresses
    assert to.addr_spec == address
    assert display_name(message) == shown
    [raw_to] = [value for name, value in message.raw_items() if name == "To"]
    if raw_to.count("=?") <= 1:  # at most one encoded-word: gh-128110 does not apply
        assert to.display_name == shown
    html = message.get_body(("html",))
    assert html is not None and "<h1>Click" not in html.get_content()
    return message


def outbox_bytes(folder: Path) -> dict[str, bytes]:
    """Each message in the Maildir as stored (not parsed and written again), by recipient."""
    maildir = mailbox.Maildir(folder, factory=None, create=False)
    stored = {}
    for key in maildir.iterkeys():
        raw = maildir.get_bytes(key)
        [recipient] = re.findall(rb"^X-Envelope-To: (\S+)\r$", raw, flags=re.MULTILINE)
        stored[recipient.decode()] = raw
    return stored


def invoke(config: Path, *args: str) -> Result:
    return CliRunner().invoke(cli, ["--config", str(config), *args], catch_exceptions=False)


def address_of(number: int) -> str:
    return f"reader{number}@example.org"


async def stored_names(settings: Settings) -> dict[str, str]:
    async with await Store.open(settings.database_url) as store:
        return {s.email: s.name for s in await store.list_subscribers()}


class Recording:
    """A transport that keeps the bytes it is given, then hands them to another one."""

    def __init__(self, inner: Transport) -> None:
        self.inner = inner
        self.sent: list[tuple[bytes, str]] = []

    async def send(self, message: bytes, envelope_from: str, envelope_to: str) -> None:
        self.sent.append((bytes(message), envelope_to))
        await self.inner.send(message, envelope_from, envelope_to)

    async def accepts_8bit(self) -> bool:
        return await self.inner.accepts_8bit()

    async def close(self) -> None:
        await self.inner.close()


def subscriber(name: str, address: str = "eve@example.org") -> Subscriber:
    return Subscriber(
        id=7,
        email=address,
        name=name,
        status="active",
        categories=(),
        consent_source="web",
        consented_at=NOW,
    )


# --- the header writer -----------------------------------------------------------------------


@pytest.mark.parametrize(("name", "shown"), NAMES)
def test_every_kind_of_header_reads_back_the_literal_text(name: str, shown: str) -> None:
    fields = [
        headers.mailbox("To", headers.printable(name), "eve@example.org"),
        headers.text("Subject", shown),
        headers.list_id(shown, "digest.news.example"),
    ]
    raw = b"".join(field.line for field in fields) + b"\r\nbody\r\n"
    headers.verify(raw, fields)
    message = parse(raw)
    assert [name for name, _ in message.raw_items()] == ["To", "Subject", "List-Id"]
    assert display_name(message) == shown
    assert message["Subject"] == shown
    assert message["To"].addresses[0].addr_spec == "eve@example.org"
    lines = raw.split(b"\r\n")
    assert all(len(line) <= 76 for line in lines if b"=?" in line)  # RFC 2047's limit


@given(st.text(max_size=250))
def test_any_text_reads_back_as_given(text: str) -> None:
    shown = headers.printable(text)
    fields = [
        headers.mailbox("To", shown, "a@example.org"),
        headers.text("Subject", shown),
        headers.list_id(shown, "digest.example.org"),
        headers.configured_mailbox("Reply-To", f'"{shown}" <b@example.org>')
        if '"' not in shown and "\\" not in shown
        else headers.mailbox("Reply-To", shown, "b@example.org"),
    ]
    headers.verify(b"".join(field.line for field in fields) + b"\r\n", fields)


@given(st.from_regex(r"[A-Za-z0-9.-]{1,80}", fullmatch=True))
def test_the_ascii_domain_shortcut_agrees_with_the_idna_codec(domain: str) -> None:
    try:
        expected: str | None = domain.encode("idna").decode("ascii").lower()
        assert expected is not None
        if not re.fullmatch(r"[a-z0-9-]+(?:\.[a-z0-9-]+)*", expected):
            expected = None
    except UnicodeError:
        expected = None
    try:
        written: str | None = headers.idna(domain, "To")
    except HeaderError:
        written = None
    assert written == expected


def test_control_characters_in_configured_values_are_refused_naming_the_header() -> None:
    for make, named in [
        (lambda: headers.text("Subject", "December\r\nBcc: x@evil.example"), "Subject"),
        (lambda: headers.configured_mailbox("From", "News\x00 <n@example.org>"), "From"),
        (lambda: headers.list_id("Acme\u2028Bcc: x", "digest.example.org"), "List-Id"),
        (lambda: headers.fixed("List-Archive", "<https://x/a>\r\nBcc: x"), "List-Archive"),
        (lambda: headers.fixed("List-Archive", "<https://x/?a==?utf-8?q?x?=>"), "List-Archive"),
        (lambda: headers.mailbox("To", "Eve\nBcc: x", "eve@example.org"), "To"),
    ]:
        with pytest.raises(HeaderError, match=named):
            make()


def test_the_check_fails_loudly_when_a_header_reads_otherwise() -> None:
    to = headers.mailbox("To", "Eve", "eve@example.org")
    subject = headers.text("Subject", "December")
    # What the email package wrote for the hostile name: a real Bcc line.
    injected = b"To: Eve <eve@example.org>\r\nBcc: x@evil.example\r\nSubject: December\r\n\r\n"
    with pytest.raises(HeaderError, match="Bcc"):
        headers.verify(injected, [to, subject])
    twice = to.line + to.line + subject.line + b"\r\n"
    with pytest.raises(HeaderError, match="each once"):
        headers.verify(twice, [to, to, subject])
    # A literal value written as it is, which a reader decodes into something else.
    literal = "=?utf-8?q?Dec=0D=0ABcc:_x?="
    raw = b"Subject: " + literal.encode() + b"\r\n\r\n"
    with pytest.raises(HeaderError, match="Subject: header check: reads"):
        headers.verify(raw, [HeaderField("Subject", raw, literal)])
    raw = b"To: " + literal.encode() + b" <eve@example.org>\r\n\r\n"
    with pytest.raises(HeaderError, match="To: header check"):
        headers.verify(raw, [HeaderField("To", raw, (literal, "eve@example.org"))])
    # The last line of defence of every writer: a line that is not one header field.
    for line in ("To: Eve\r\nBcc: x@evil.example\r\n", "To: Eve\nBcc: x\r\n", "To: Eve\r\n\r\n"):
        with pytest.raises(HeaderError, match="not one header field"):
            headers._checked("To", line)


def test_a_writer_mistake_stops_the_digest_before_anything_is_sent(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # As if a later change wrote a name's encoded-words... as the name itself.
    monkeypatch.setattr(headers, "encoded_words", lambda value, first: [value])
    with pytest.raises(HeaderError, match="To"):
        factory()


# --- values from the config are literal too --------------------------------------------------

EVIL = "=?utf-8?q?News=0D=0ABcc:_x@evil.example?="


def factory(**overrides: str) -> MessageFactory:
    values = {
        "site_title": "Riverside Commons News",
        "site_url": SITE,
        "sender": f"Riverside Commons <{SENDER}>",
        "subject": "Riverside Commons News: December 2015",
        "archive_url": f"{SITE}/feeds/archive/index.html",
    }
    values.update(overrides)
    return MessageFactory(**values, clock=FrozenClock(NOW))  # type: ignore[arg-type]


def test_configured_values_are_written_as_literal_text() -> None:
    made = factory(
        site_title=EVIL,
        sender=f'"{EVIL}" <news@example.org>',
        subject=EVIL,
        reply_to=f'"{EVIL}" <help@example.org>',
    )
    raw = made.build(subscriber(EVIL), "<p>hi</p>\n", "hi\n", f"{SITE}/u/x", "<a@b.example>")
    names = [*DIGEST[:5], "Reply-To", *DIGEST[5:]]
    message = check(raw, names, "eve@example.org", EVIL)
    assert display_name(message, "From") == EVIL
    assert message["From"].addresses[0].addr_spec == "news@example.org"
    assert display_name(message, "Reply-To") == EVIL
    assert message["Subject"] == EVIL
    assert message["List-Id"] == f"{EVIL} <digest.{DOMAIN}>"


def test_the_confirmation_s_configured_values_are_literal(project: Path) -> None:
    # The title is any text; a sender's name may not be an encoded-word (config refuses it,
    # see test_config.py) but may hold quotes, commas and what looks like a header.
    sender_name = 'News, "Desk" (Bcc: x@evil.example)'
    quoted = sender_name.replace('"', '\\\\\\"')  # \" in a quoted name, in a TOML string
    config = project / "config.toml"
    text = config.read_text()
    text = text.replace('title = "Riverside Commons News"', f'title = "{EVIL}"')
    text = text.replace(
        'from = "Riverside Commons <newsletter@riverside-commons.example>"',
        f'from = "\\"{quoted}\\" <{SENDER}>"\n'
        f'reply_to = "\\"{quoted}\\" <help@riverside-commons.example>"',
    )
    config.write_text(text)
    settings = load_settings(config)
    raw = build_confirmation(
        settings, subscriber(EVIL), f"{SITE}/confirm/token", clock=FrozenClock(NOW)
    )
    names = [*CONFIRMATION[:5], "Reply-To", *CONFIRMATION[5:]]
    message = check(raw, names, "eve@example.org", EVIL)
    assert display_name(message, "From") == sender_name
    assert display_name(message, "Reply-To") == sender_name
    assert message["Subject"] == f"Confirm your subscription to {EVIL}"

    raw = build_welcome(
        settings,
        subscriber(EVIL),
        Tokens(SECRET, FrozenClock(NOW)),
        clock=FrozenClock(NOW),
        latest_issue=None,
    )
    message = check(raw, names, "eve@example.org", EVIL)
    assert display_name(message, "From") == sender_name
    assert display_name(message, "Reply-To") == sender_name
    assert message["Subject"] == f"Welcome to {EVIL}"


def test_a_preview_file_is_written_the_same_way(project: Path) -> None:
    config = project / "config.toml"
    text = config.read_text()
    config.write_text(text.replace('title = "Riverside Commons News"', f'title = "{EVIL}"'))
    assert invoke(config, "ingest", "--no-publish").exit_code == 0
    out = project / "preview.eml"
    preview = ("digest", "preview", "--month", PERIOD, "--format", "eml", "-o", str(out))
    result = invoke(config, *preview)
    assert result.exit_code == 0, result.output
    message = parse(out.read_bytes())
    assert message["Subject"] == f"{EVIL}: December 2015"
    assert [name for name, _ in message.raw_items()] == [
        "From",
        "To",
        "Subject",
        "MIME-Version",
        "Content-Type",
    ]


# --- the confirmation ------------------------------------------------------------------------


@pytest.mark.parametrize(("name", "shown"), NAMES)
def test_the_confirmation_shows_any_name_literally(project: Path, name: str, shown: str) -> None:
    settings = load_settings(project / "config.toml")
    raw = build_confirmation(
        settings, subscriber(name), f"{SITE}/confirm/token", clock=FrozenClock(NOW)
    )
    message = check(raw, CONFIRMATION, "eve@example.org", shown)
    text = message.get_body(("plain",))
    assert text is not None and "\nBcc:" not in text.get_content()


# --- the welcome -----------------------------------------------------------------------------


@pytest.mark.parametrize(("name", "shown"), NAMES)
def test_the_welcome_shows_any_name_literally(project: Path, name: str, shown: str) -> None:
    settings = load_settings(project / "config.toml")
    raw = build_welcome(
        settings,
        subscriber(name),
        Tokens(SECRET, FrozenClock(NOW)),
        clock=FrozenClock(NOW),
        latest_issue=f"{SITE}/feeds/digest/{PERIOD}.html",
    )
    message = check(raw, CONFIRMATION, "eve@example.org", shown)
    text = message.get_body(("plain",))
    assert text is not None and "\nBcc:" not in text.get_content()


async def test_the_web_confirm_button_welcomes_every_name_cleanly(
    web_settings: Settings,
) -> None:
    """Each name through the form, then the confirmation link's button: the welcome email
    holds exactly our headers and the name as typed."""
    await subscribe_all(web_settings, OutboxTransport(web_settings.outbox_dir))
    transport = Recording(OutboxTransport(web_settings.outbox_dir))
    async for web in open_web(web_settings, transport):
        for address, _, _ in taken():
            found = await web.subscriber(address)
            assert found is not None
            response = await web.confirm(web.link("confirm", found))
            assert response.status_code == 200, response.text
    assert [to for _, to in transport.sent] == [address for address, _, _ in taken()]
    for (raw, _), (address, _, shown) in zip(transport.sent, taken(), strict=True):
        message = check(raw, CONFIRMATION, address, shown)
        assert message["Subject"] == "Welcome to Riverside Commons News"


def test_cli_add_stores_names_as_typed_and_confirms_them_cleanly(
    project: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("SYNDICATE_SECRET", SECRET)
    config = project / "config.toml"
    add_each(config)
    settings = load_settings(config)
    # Stored as typed (white space at the ends stripped): never decoded as RFC 2047.
    stored = asyncio.run(stored_names(settings))
    assert stored == {address: name.strip() for address, name, _ in taken()}

    messages = outbox_bytes(settings.outbox_dir)
    assert sorted(messages) == sorted(address for address, _, _ in taken())
    for address, _, shown in taken():
        check(messages[address], OUTBOX + CONFIRMATION, address, shown)


def test_cli_add_over_smtp_reaches_only_the_subscriber(
    project: Path, monkeypatch: pytest.MonkeyPatch, smtp_server: SmtpServer
) -> None:
    monkeypatch.setenv("SYNDICATE_SECRET", SECRET)
    drop_mail_section(project)
    config = project / "config.toml"
    config.write_text(config.read_text() + smtp_config(smtp_server))
    add_each(config)

    received = smtp_server.messages
    assert smtp_server.recipients() == [address for address, _, _ in taken()]
    for address, _, shown in taken():
        [message] = [m for m in received if m.rcpt_tos == (address,)]
        assert message.envelope_from == SENDER
        check(message.content, CONFIRMATION, address, shown)


def add_each(config: Path, *options: str) -> None:
    """`subscribers add` with each name: the ones REFUSED fail with one clear line."""
    for number, (name, _) in enumerate(NAMES):
        result = invoke(config, "subscribers", "add", address_of(number), "--name", name, *options)
        if REFUSED.search(name):
            assert result.exit_code == 2
            assert result.output == "error: the name contains control characters\n"
        else:
            assert result.exit_code == 0, result.output


@pytest.fixture
def web_settings(project: Path, database_url: str, monkeypatch: pytest.MonkeyPatch) -> Settings:
    monkeypatch.setenv("SYNDICATE_SECRET", SECRET)
    config = project / "config.toml"
    config.write_text(
        config.read_text().replace(
            'database = "sqlite:///var/syndicate.db"', f'database = "{database_url}"'
        )
    )
    return load_settings(config)


async def subscribe_all(settings: Settings, transport: Transport) -> None:
    """Each name through the form, one after the other past its rate limit: the ones REFUSED
    are refused, the others stored as typed (never decoded as RFC 2047)."""
    async for web in open_web(settings, transport):
        for number, (name, _) in enumerate(NAMES):
            response = await web.subscribe(address_of(number), name=name, categories=["Rivers"])
            refused = REFUSED.search(name)
            assert response.status_code == (400 if refused else 200), response.text
            web.clock.advance(timedelta(minutes=10))  # the form's rate limit
        stored = {s.email: s.name for s in await web.store.list_subscribers()}
        assert stored == {address: name.strip() for address, name, _ in taken()}


def taken() -> list[tuple[str, str, str]]:
    """(address, name, shown) of each name the form and `subscribers add` take, in order."""
    return [
        (address_of(number), name, shown)
        for number, (name, shown) in enumerate(NAMES)
        if not REFUSED.search(name)
    ]


async def test_the_web_form_stores_names_as_typed_and_confirms_them_cleanly(
    web_settings: Settings,
) -> None:
    await subscribe_all(web_settings, OutboxTransport(web_settings.outbox_dir))
    messages = outbox_bytes(web_settings.outbox_dir)
    assert sorted(messages) == sorted(address for address, _, _ in taken())
    for address, _, shown in taken():
        check(messages[address], OUTBOX + CONFIRMATION, address, shown)


async def test_the_web_form_over_smtp_sends_the_bytes_built_to_the_subscriber_only(
    web_settings: Settings, smtp_server: SmtpServer
) -> None:
    transport = Recording(smtp_server.transport())
    await subscribe_all(web_settings, transport)
    received = smtp_server.messages
    assert [m.rcpt_tos for m in received] == [(address,) for address, _, _ in taken()]
    for message, (built, to), (address, _, shown) in zip(
        received, transport.sent, taken(), strict=True
    ):
        assert to == address
        assert message.envelope_from == SENDER
        assert message.content == built  # the header block (and body) unaltered on the way
        check(message.content, CONFIRMATION, address, shown)


# --- the digest ------------------------------------------------------------------------------


@pytest.mark.parametrize(("name", "shown"), NAMES)
def test_a_digest_copy_shows_any_name_literally(name: str, shown: str) -> None:
    made = factory()
    raw = made.build(subscriber(name), "<p>hi</p>\n", "hi\n", f"{SITE}/u/x", "<a@b.example>")
    check(raw, DIGEST, "eve@example.org", shown)


def add_readers(config: Path) -> None:
    """Every name a reader: the ones `subscribers add` takes through it, the others as rows
    stored before names were checked."""
    add_each(config, "--confirmed")
    asyncio.run(add_unchecked_readers(load_settings(config).database_url))


async def add_unchecked_readers(database_url: str) -> None:
    async with await Store.open(database_url) as store:
        for number, (name, _) in enumerate(NAMES):
            if REFUSED.search(name):
                await add_unchecked(store, address_of(number), name)


async def add_unchecked(store: Store, address: str, name: str) -> None:
    """An active reader whose name never went through subscribers.clean_name."""
    await store.insert_subscriber(
        {
            "email": address,
            "name": name,
            "status": "active",
            "categories": [],
            "consent_source": "cli",
            "consented_at": NOW,
            "confirmed_at": NOW,
            "created_at": NOW,
        }
    )


def test_digest_send_writes_clean_copies_for_every_name(project: Path) -> None:
    config = project / "config.toml"
    assert invoke(config, "ingest", "--no-publish").exit_code == 0
    add_readers(config)
    sent = invoke(config, "digest", "send", "--month", PERIOD)
    assert sent.exit_code == 0, sent.output
    assert f"sent {len(NAMES)}, deferred 0, failed 0" in sent.stdout

    messages = outbox_bytes(load_settings(config).outbox_dir)
    assert sorted(messages) == sorted(address_of(n) for n in range(len(NAMES)))
    for number, (_, shown) in enumerate(NAMES):
        address = address_of(number)
        check(messages[address], OUTBOX + DIGEST, address, shown)


def test_digest_send_over_smtp_reaches_each_reader_once(
    project: Path, smtp_server: SmtpServer
) -> None:
    drop_mail_section(project)
    config = project / "config.toml"
    config.write_text(config.read_text() + smtp_config(smtp_server))
    assert invoke(config, "ingest", "--no-publish").exit_code == 0
    add_readers(config)
    sent = invoke(config, "digest", "send", "--month", PERIOD)
    assert sent.exit_code == 0, sent.output

    received = smtp_server.messages
    expected = sorted(address_of(n) for n in range(len(NAMES)))
    assert sorted(smtp_server.recipients()) == expected  # each once, nobody else
    for number, (_, shown) in enumerate(NAMES):
        [message] = [m for m in received if m.rcpt_tos == (address_of(number),)]
        assert message.envelope_from == SENDER
        check(message.content, DIGEST, address_of(number), shown)


async def test_the_digest_over_smtp_arrives_as_built(
    project: Path, database_url: str, smtp_server: SmtpServer
) -> None:
    drop_mail_section(project)
    settings, store = await prepared(project, database_url, smtp_config(smtp_server))
    async with store:
        for number, (name, _) in enumerate(NAMES):
            if REFUSED.search(name):
                await add_unchecked(store, address_of(number), name)
            else:
                await service.add(store, address_of(number), NOW, name=name, confirmed=True)
        transport = Recording(smtp_server.transport(pool=1))
        report = await send_period(settings, store, FrozenClock(NOW), PERIOD, transport=transport)
    assert report is not None and report.counts.sent == len(NAMES)
    received = smtp_server.messages
    assert [m.rcpt_tos for m in received] == [(to,) for _, to in transport.sent]
    shown = {address_of(number): shown for number, (_, shown) in enumerate(NAMES)}
    for message, (built, to) in zip(received, transport.sent, strict=True):
        assert message.content == built  # the header block (and body) unaltered on the way
        check(message.content, DIGEST, to, shown[to])
