"""The DATA fast path (syndicate.mail.fastdata) sends exactly what aiosmtplib would."""

from __future__ import annotations

import aiosmtplib.protocol
import pytest
from hypothesis import given
from hypothesis import strategies as st
from test_mail_message import UNSUBSCRIBE, build, factory

import syndicate.mail.smtp  # noqa: F401  (installs the fast path, as sending does)
from syndicate.digest.context import DigestSubscriber
from syndicate.digest.render import RenderedDigest
from syndicate.mail import fastdata
from syndicate.mail.message import CrlfMessage, DotFreeText
from syndicate.mail.wire import MailCopy

# Bytes built from the characters that matter (CR, LF, ".") and a little else.
messages = st.lists(st.sampled_from([b"\r", b"\n", b"\r\n", b".", b"a", b" ", b"\xc3\xa9"])).map(
    b"".join
)


@given(messages)
def test_same_bytes_as_aiosmtplib(message: bytes) -> None:
    assert fastdata.prepare(message) == fastdata.original_prepare(message)


def test_the_fast_path_is_installed_and_takes_clean_messages() -> None:
    assert aiosmtplib.protocol.normalize_message_line_endings is (
        fastdata.normalize_message_line_endings
    )
    clean = b"Subject: x\r\n\r\nline\r\n"
    assert aiosmtplib.protocol.normalize_message_line_endings(clean) is clean
    assert aiosmtplib.protocol.PERIOD_REGEX.sub(b"..", clean) is clean
    stuffed = b"Subject: x\r\n\r\n.hidden\r\n"
    assert aiosmtplib.protocol.PERIOD_REGEX.sub(b"..", stuffed) == b"Subject: x\r\n\r\n..hidden\r\n"


texts = st.lists(st.sampled_from(["a", " ", "\r", "\n", "\r\n", ".", "é", "\t", "=", "-"])).map(
    "".join
)


@given(texts, texts)
def test_built_messages_are_crlf_throughout(text: str, html: str) -> None:
    # The claim CrlfMessage makes, which lets the fast path skip its check.
    raw = build(factory(eight_bit=True), text=text, html=html)
    assert isinstance(raw, CrlfMessage)
    assert fastdata._original_normalize(raw) == raw
    assert fastdata.prepare(raw) == fastdata.original_prepare(raw)


def outcome(parse, address: str) -> tuple[str, str]:
    try:
        return ("ok", parse(address))
    except ValueError as error:
        return ("refused", str(error))


@pytest.mark.parametrize(
    "address",
    ["ann@example.org", "Ann <ann@example.org>", "  bob@example.org ", "a b@c", "x@y>\r\nRSET"],
)
def test_parse_address_answers_as_aiosmtplib_does(address: str) -> None:
    for _ in range(2):  # the second time from memory
        assert outcome(fastdata.parse_address, address) == outcome(
            fastdata._original_parse_address, address
        )


pieces = st.lists(
    st.sampled_from(["a", ".", "\n", "é", " ", "%%SYNDICATE-NAME%%", "%%SYNDICATE-EMAIL%%"])
).map("".join)
names = st.sampled_from(["", "Ann", ".dot", "a.b", "Zoë"])


@given(pieces, pieces, names)
def test_personalised_messages_go_out_as_aiosmtplib_would_send_them(
    html: str, text: str, name: str
) -> None:
    # The claims of DotFreeText and DotFreeMessage, end to end: the fast path may skip
    # dot-stuffing only when aiosmtplib's own stuffing would have changed nothing.
    copy = RenderedDigest("S", html, text)
    person = DigestSubscriber.of(name, "zoe@example.org")
    html_part, text_part = MailCopy(copy).bodies(person, UNSUBSCRIBE, UNSUBSCRIBE)
    for part in (html_part, text_part):
        if isinstance(part, DotFreeText):
            assert not part.startswith(b".") and b"\n." not in part
    raw = build(factory(eight_bit=True), html=html_part, text=text_part)
    assert fastdata.prepare(raw) == fastdata.original_prepare(raw)
