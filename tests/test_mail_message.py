"""Digest messages (syndicate.mail.message) through the Maildir outbox, parsed back with `email`."""

from __future__ import annotations

import email
import email.policy
import mailbox
from datetime import UTC, datetime
from email.message import EmailMessage
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from syndicate.clock import FrozenClock
from syndicate.config import load_settings
from syndicate.digest.context import DigestSubscriber
from syndicate.digest.render import RenderedDigest
from syndicate.errors import PermanentDeliveryError
from syndicate.mail import MessageFactory, OutboxTransport, message_id_for
from syndicate.mail.wire import MailCopy, WireBody
from syndicate.models import DigestIssue, Subscriber

SITE = "https://news.example.org"
UNSUBSCRIBE = f"{SITE}/unsubscribe/eyJzIjo3fQ.Zk1a2b.signature-part_xyz"
ARCHIVE = f"{SITE}/feeds/archive/index.html"
NAME = 'Zoë "Z" O\'Neil'
HTML = '<!doctype html>\n<p style="color: #333">Bonjour Zoë — café ☕</p>\n<a href="x">€</a>\n'
TEXT = "Bonjour Zoë — café ☕\n\nRead more: https://news.example.org/a?b=c\n"
NOW = datetime(2015, 12, 1, 9, 0, tzinfo=UTC)


def subscriber(id: int = 7, name: str = NAME, address: str = "zoe@example.org") -> Subscriber:
    return Subscriber(
        id=id,
        email=address,
        name=name,
        status="active",
        categories=(),
        consent_source="web",
        consented_at=datetime(2015, 1, 1, tzinfo=UTC),
    )


def factory(**overrides: object) -> MessageFactory:
    options: dict[str, object] = {
        "site_title": "Acme: News",
        "site_url": SITE,
        "sender": "Acme Newsletter <newsletter@example.org>",
        "subject": "Acme News: December 2015 — ünïcode",
        "archive_url": ARCHIVE,
        "reply_to": "Help Desk <help@example.org>",
        "clock": FrozenClock(NOW),
    }
    options.update(overrides)
    return MessageFactory(**options)  # type: ignore[arg-type]


MAILTO = "unsubscribe+u9466-7-abcdefghijklmnop@news.example.org"


def parse(raw: bytes) -> EmailMessage:
    message = email.message_from_bytes(raw, policy=email.policy.default)
    assert isinstance(message, EmailMessage)
    return message


def build(made: MessageFactory, who: Subscriber | None = None, **kwargs: str) -> bytes:
    who = who or subscriber()
    return made.build(
        who,
        kwargs.get("html", HTML),
        kwargs.get("text", TEXT),
        kwargs.get("unsubscribe_url", UNSUBSCRIBE),
        kwargs.get("message_id", message_id_for(3, who.id, made.domain)),
        kwargs.get("mailto", MAILTO),
    )


def bodies(message: EmailMessage) -> list[tuple[str, str]]:
    # On the wire line endings are CRLF; the text we handed in used "\n".
    return [
        (part.get_content_type(), part.get_content().replace("\r\n", "\n"))
        for part in message.iter_parts()
    ]


def test_message_through_the_outbox_has_every_header(tmp_path: Path) -> None:
    outbox = OutboxTransport(tmp_path / "outbox")
    key = outbox.write(build(factory()), "zoe@example.org")

    box = mailbox.Maildir(tmp_path / "outbox", factory=None, create=False)
    assert list(box.keys()) == [key]
    assert (tmp_path / "outbox" / "new" / key).is_file()  # delivered, not left in tmp/
    raw = box.get_bytes(key)
    message = parse(raw)

    assert message["X-Envelope-To"] == "zoe@example.org"
    assert message["From"] == "Acme Newsletter <newsletter@example.org>"
    [to] = message["To"].addresses
    assert (to.display_name, to.addr_spec) == (NAME, "zoe@example.org")
    assert message["Subject"] == "Acme News: December 2015 — ünïcode"
    assert message["Date"].datetime == NOW
    assert message["Message-ID"] == "<digest-3-7@news.example.org>"
    assert message["Reply-To"].addresses[0].addr_spec == "help@example.org"
    assert message["List-Id"] == '"Acme: News" <digest.news.example.org>'
    assert message["List-Archive"] == f"<{ARCHIVE}>"
    unsubscribe = [u.strip() for u in str(message["List-Unsubscribe"]).split(",")]
    assert unsubscribe == [
        f"<{UNSUBSCRIBE}>",
        f"<mailto:{MAILTO}?subject=unsubscribe>",
    ]
    assert message["List-Unsubscribe-Post"] == "List-Unsubscribe=One-Click"
    assert message["MIME-Version"] == "1.0"
    assert message.get_content_type() == "multipart/alternative"
    assert bodies(message) == [("text/plain", TEXT), ("text/html", HTML)]
    for part in message.iter_parts():
        assert part.get_content_charset() == "utf-8"
    assert not message.defects
    assert all(not part.defects for part in message.walk())
    # Every header once, every line within RFC 5322's limit, CRLF throughout.
    names = [name.lower() for name in message]
    assert len(names) == len(set(names))
    assert all(len(line) <= 998 for line in raw.split(b"\r\n"))
    assert b"\n" not in raw.replace(b"\r\n", b"")


def test_without_an_unsubscribe_mailbox_there_is_no_mailto() -> None:
    # Nobody would read mail sent to it: List-Unsubscribe offers the one-click URL alone.
    message = parse(factory().build(subscriber(), HTML, TEXT, UNSUBSCRIBE, "<a@b>"))
    assert message["List-Unsubscribe"] == f"<{UNSUBSCRIBE}>"
    assert message["List-Unsubscribe-Post"] == "List-Unsubscribe=One-Click"


def test_message_id_is_stable_per_issue_and_subscriber() -> None:
    made = factory()
    again = factory(clock=FrozenClock(datetime(2015, 12, 2, tzinfo=UTC)))
    first = parse(build(made))["Message-ID"]
    assert parse(build(again))["Message-ID"] == first  # a retry, another day
    other = parse(build(made, subscriber(id=8, address="b@example.org")))["Message-ID"]
    assert other != first
    assert message_id_for(4, 7, made.domain) != first
    assert message_id_for(3, 7, "News.Example.ORG") == first


def test_without_reply_to_and_name() -> None:
    message = parse(build(factory(reply_to=None), subscriber(name="")))
    assert "Reply-To" not in message
    assert message["To"] == "zoe@example.org"


@pytest.mark.parametrize(
    "name",
    [
        "Zoë\r\nBcc: x@evil.example",
        "Mallory\r\nBcc: x@evil.example",
        "Mallory\nBcc: x@evil.example\n\nbody",
        "=?utf-8?q?x?=\r\nBcc: x@evil.example",
        "Ünï " * 40 + "\rBcc: x@evil.example",  # long: folded encoded-words
    ],
)
def test_hostile_name_never_adds_a_header(name: str) -> None:
    raw = build(factory(), subscriber(name=name))
    message = parse(raw)
    assert "Bcc" not in message
    assert not any(line.lower().startswith(b"bcc") for line in raw.split(b"\r\n"))
    [to] = message["To"].addresses
    assert to.addr_spec == "zoe@example.org"
    assert "Bcc: x@evil.example" in to.display_name  # shown, harmlessly, on one line
    assert bodies(message) == [("text/plain", TEXT), ("text/html", HTML)]


@pytest.mark.parametrize(
    ("field", "value", "named"),
    [
        ("subject", "December\nBcc: x@evil.example", "Subject"),
        ("subject", "December\r\n\r\n<p>body</p>", "Subject"),
        ("subject", "December\x00", "Subject"),
        ("sender", "News <news@example.org>\r\nBcc: x@evil.example", "From"),
        ("reply_to", "help@example.org\nBcc: x@evil.example", "Reply-To"),
        ("site_title", "Acme\r\nBcc: x@evil.example", "List-Id"),
        ("archive_url", f"{SITE}/a\r\nBcc: x@evil.example", "List-Archive"),
        ("site_url", "not a url", "site URL"),
    ],
)
def test_hostile_issue_values_are_rejected_naming_the_field(
    field: str, value: str, named: str
) -> None:
    with pytest.raises(ValueError, match=named):
        factory(**{field: value})


@pytest.mark.parametrize(
    ("kwargs", "named"),
    [
        ({"unsubscribe_url": f"{UNSUBSCRIBE}\r\nBcc: x@evil.example"}, "List-Unsubscribe"),
        ({"unsubscribe_url": "javascript:alert(1)"}, "List-Unsubscribe"),
        ({"unsubscribe_url": f"{UNSUBSCRIBE}>, <https://evil.example/"}, "List-Unsubscribe"),
        ({"message_id": "<a@b>\r\nBcc: x@evil.example"}, "Message-ID"),
        ({"message_id": "no-brackets@b"}, "Message-ID"),
        ({"mailto": f"{MAILTO}>\r\nBcc: x@evil.example"}, "List-Unsubscribe"),
        ({"mailto": f"{MAILTO}?cc=x@evil.example"}, "List-Unsubscribe"),
        ({"mailto": "Zoë@example.org"}, "List-Unsubscribe"),
    ],
)
def test_hostile_per_message_values_are_rejected(kwargs: dict[str, str], named: str) -> None:
    with pytest.raises(ValueError, match=named):
        build(factory(), **kwargs)


@pytest.mark.parametrize(
    "address",
    ["zoe@example.org\r\nBcc: x@evil.example", "zoë@example.org", "zoe", "a b@example.org"],
)
def test_bad_addresses_are_rejected(address: str) -> None:
    with pytest.raises(ValueError, match="To"):
        build(factory(), subscriber(address=address))


def test_international_domain_is_idna_encoded() -> None:
    message = parse(build(factory(), subscriber(address="zoe@bücher.example")))
    assert message["To"].addresses[0].addr_spec == "zoe@xn--bcher-kva.example"


@pytest.mark.parametrize(
    ("text", "encoding"),
    [
        ("Plain ASCII.\nSecond line  \n.\nFrom here\n", "7bit"),
        ("No final newline", "7bit"),
        ("windows\r\nline endings\rold mac\n", "7bit"),
        ("x" * 5000 + "\n", "quoted-printable"),  # longer than a line may be
        ("tab\tand bell\x07\n", "quoted-printable"),
        ("Привет, мир! Ελληνικά 日本語\n" * 20, "base64"),
        ("Le café est ouvert tous les jours, déjà à huit heures.\n", "quoted-printable"),
    ],
)
def test_bodies_decode_back_exactly(text: str, encoding: str) -> None:
    message = parse(build(factory(), text=text, html=f"<pre>{text}</pre>"))
    expected = text.replace("\r\n", "\n").replace("\r", "\n")
    assert bodies(message) == [("text/plain", expected), ("text/html", f"<pre>{expected}</pre>")]
    text_part, _ = message.iter_parts()
    assert text_part["Content-Transfer-Encoding"] == encoding


def test_a_body_holding_the_boundary_cannot_end_its_part() -> None:
    made = factory()
    hostile = f"before\n--{made.boundary}--\nafter\n"
    message = parse(build(made, text=hostile, html=hostile))
    assert bodies(message) == [("text/plain", hostile), ("text/html", hostile)]


async def test_async_send_and_many_messages(tmp_path: Path) -> None:
    outbox = OutboxTransport(tmp_path / "outbox")
    for _ in range(3):
        await outbox.send(build(factory()), "news@example.org", "zoe@example.org")
    stored = mailbox.Maildir(tmp_path / "outbox", factory=None, create=False)
    assert len(stored) == 3
    for key in stored.iterkeys():
        message = parse(stored.get_bytes(key))
        assert message["Return-Path"] == "<news@example.org>"
        assert message["X-Envelope-To"] == "zoe@example.org"
    with pytest.raises(ValueError, match="envelope"):
        outbox.write(b"Subject: x\r\n\r\n", "a@b.example\r\nBcc: x@evil.example")
    with pytest.raises(PermanentDeliveryError, match="envelope sender"):
        await outbox.send(b"Subject: x\r\n\r\n", "x\r\nBcc: y@evil.example", "a@b.example")


def test_for_issue_reads_the_config(tmp_path: Path) -> None:
    config = tmp_path / "config.toml"
    config.write_text(
        '[site]\ntitle = "Ünïted News"\nurl = "https://news.example.org/"\n'
        '[digest]\nfrom = "News <news@example.org>"\nreply_to = "help@example.org"\n',
        encoding="utf-8",
    )
    issue = DigestIssue(
        id=3,
        period="2015-12",
        subject="December",
        post_ids=(),
        html="",
        text="",
        created_at=NOW,
    )
    made = MessageFactory.for_issue(load_settings(config), issue, clock=FrozenClock(NOW))
    message = parse(build(made, message_id=made.message_id(issue.id, 7)))
    assert message["List-Id"] == "Ünïted News <digest.news.example.org>"
    assert message["List-Archive"] == f"<{ARCHIVE}>"
    assert message["From"] == "News <news@example.org>"
    assert message["Reply-To"] == "help@example.org"
    assert message["Subject"] == "December"
    assert message["Message-ID"] == "<digest-3-7@news.example.org>"


def test_eight_bit_bodies_go_as_they_are_when_the_transport_accepts_them() -> None:
    raw = build(factory(eight_bit=True))
    assert b"Content-Transfer-Encoding: 8bit" in raw
    assert b"=3D" not in raw and "café ☕".encode() in raw
    assert bodies(parse(raw)) == [("text/plain", TEXT), ("text/html", HTML)]
    # A line too long for SMTP still goes quoted-printable, 8bit allowed or not.
    long_line = "un café au lait, s'il vous plaît. " * 40 + "\n"
    message = parse(build(factory(eight_bit=True), text=long_line, html=long_line))
    assert [part["Content-Transfer-Encoding"] for part in message.iter_parts()] == [
        "quoted-printable"
    ] * 2
    assert bodies(message) == [("text/plain", long_line), ("text/html", long_line)]


def mail_safe(body: str) -> bool:
    data = body.encode("utf-8")
    forbidden = bytes([*range(0x00, 0x09), *range(0x0B, 0x20), 0x7F])
    return len(data.translate(None, forbidden)) == len(data) and (
        max(map(len, data.split(b"\n"))) <= 998
    )


chunks = st.sampled_from(["a", "é", " ", "\n", "\r", "\x0c", "%%SYNDICATE-NAME%%", "x" * 300])
values = st.sampled_from(["", "Ann", "Zoë " * 60, "bad\nname", "x" * 500])


@given(st.lists(chunks, max_size=12).map("".join), values)
def test_the_precheck_never_lets_an_unsafe_body_through(marked: str, name: str) -> None:
    # Soundness of the wire precheck: whatever it says fits really does.
    pieces = WireBody(RenderedDigest("S", marked, "").html_parts)
    filled = pieces.fill({"NAME": name})
    if pieces.fits_mail({"NAME": name}):
        assert mail_safe(filled)


def test_wire_ready_bodies_build_the_same_message() -> None:
    copy = RenderedDigest("S", "<p>%%SYNDICATE-GREETING%%</p>\n" * 3, "%%SYNDICATE-NAME%%\n")
    person = DigestSubscriber.of("Zoë", "zoe@example.org")
    html, text = MailCopy(copy).bodies(person, UNSUBSCRIBE, UNSUBSCRIBE)
    assert isinstance(html, bytes) and isinstance(text, bytes)
    assert (html.decode(), text.decode()) == tuple(
        part.replace("\n", "\r\n") for part in copy.personalise(person, UNSUBSCRIBE, UNSUBSCRIBE)
    )
    for eight_bit in (True, False):  # without 8bit, wire-ready text is encoded after all
        made = factory(eight_bit=eight_bit)
        wire = made.build(subscriber(), html, text, UNSUBSCRIBE, "<a@b>")
        plain = made.build(subscriber(), html.decode(), text.decode(), UNSUBSCRIBE, "<a@b>")
        assert wire == plain
    long_name = DigestSubscriber.of("Z" * 999, "zoe@example.org")
    assert isinstance(MailCopy(copy).bodies(long_name, UNSUBSCRIBE, UNSUBSCRIBE)[1], str)
