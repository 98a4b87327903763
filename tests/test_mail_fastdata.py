"""FastSMTP (syndicate.mail.fastdata) sends exactly what aiosmtplib would, without patching it.

Three kinds of check: the fast functions against aiosmtplib's own on hypothesis-generated
input; whole SMTP sessions of aiosmtplib.SMTP and FastSMTP, byte for byte, on a fixed corpus
(tests/smtpwire.py records what each client sends); and the source of every upstream
function FastSMTP copies, pinned, so an aiosmtplib upgrade that changes one fails here.
"""

from __future__ import annotations

import hashlib
import inspect
import os
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import aiosmtplib
import aiosmtplib.email
import aiosmtplib.protocol
import pytest
from aiosmtplib.protocol import PERIOD_REGEX, normalize_message_line_endings
from hypothesis import given
from hypothesis import strategies as st
from smtpwire import WireServer
from test_mail_message import UNSUBSCRIBE, build, factory

from syndicate.digest.context import DigestSubscriber
from syndicate.digest.render import RenderedDigest
from syndicate.mail import fastdata
from syndicate.mail.fastdata import FastSMTP
from syndicate.mail.message import CrlfMessage, DotFreeMessage, DotFreeText
from syndicate.mail.wire import MailCopy

TESTS = Path(__file__).parent


def upstream_prepare(message: bytes) -> bytes:
    """What aiosmtplib's own functions make of a message for DATA (prepare() must match)."""
    return PERIOD_REGEX.sub(b"..", normalize_message_line_endings(message))


# Bytes built from the characters that matter (CR, LF, ".") and a little else.
messages = st.lists(st.sampled_from([b"\r", b"\n", b"\r\n", b".", b"a", b" ", b"\xc3\xa9"])).map(
    b"".join
)


@given(messages)
def test_same_bytes_as_aiosmtplib(message: bytes) -> None:
    assert fastdata.prepare(message) == upstream_prepare(message)
    # sendmail's SIZE is the length of the normalised message.
    normalized = aiosmtplib.protocol.normalize_message_line_endings(message)
    assert fastdata.normalize_line_endings(message) == normalized


def test_the_fast_paths_take_clean_messages_without_copying() -> None:
    clean = b"Subject: x\r\n\r\nline\r\n"
    assert fastdata.normalize_line_endings(clean) is clean
    assert fastdata.dot_stuff(clean) is clean
    stuffed = b"Subject: x\r\n\r\n.hidden\r\n"
    assert fastdata.dot_stuff(stuffed) == b"Subject: x\r\n\r\n..hidden\r\n"


texts = st.lists(st.sampled_from(["a", " ", "\r", "\n", "\r\n", ".", "é", "\t", "=", "-"])).map(
    "".join
)


@given(texts, texts)
def test_built_messages_are_crlf_throughout(text: str, html: str) -> None:
    # The claim CrlfMessage makes, which lets the fast path skip its check.
    raw = build(factory(eight_bit=True), text=text, html=html)
    assert isinstance(raw, CrlfMessage)
    assert aiosmtplib.protocol.normalize_message_line_endings(raw) == raw
    assert fastdata.prepare(raw) == upstream_prepare(raw)


def outcome(parse: Callable[[str], str], address: str) -> tuple[str, str]:
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
            aiosmtplib.email.parse_address, address
        )
        assert outcome(fastdata.quote_address, address) == outcome(
            aiosmtplib.email.quote_address, address
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
    assert fastdata.prepare(raw) == upstream_prepare(raw)


# --- whole sessions, byte for byte --------------------------------------------------------------

CORPUS: list[bytes | str] = [
    b"Subject: plain\r\n\r\nHello.\r\n",
    b"Subject: no final line end\r\n\r\nHello.",
    b"Subject: lone LF\n\nline one\nline two\n",
    b"Subject: lone CR\r\rline\rmixed\r\n\n\r",
    b".Subject: a leading dot\r\n\r\n.one\r\n..two\r\n.\r\nend\r\n",
    b"Subject: a dot after LF\n.\n.x\n",
    b"",
    b".",
    "Subject: a str message\n\n.dot\n",
    CrlfMessage(b"Subject: built\r\n\r\nno dots\r\n"),
    CrlfMessage(b"Subject: built\r\n\r\n.dot\r\n"),
    DotFreeMessage(b"Subject: built, dot-free\r\n\r\n\xc3\xa9t\xc3\xa9\r\n"),
]
ENVELOPES = [
    ("news@example.org", "ann@example.net", None),
    ("News <news@example.org>", ["Ann <ann@example.net>", "bob@example.net"], None),
    ("news@example.org", "zoë@example.net", ["SMTPUTF8", "BODY=8BITMIME"]),
]
SCRIPTS = [
    {},
    {b"RCPT": b"550 5.1.1 no such user"},
    {b"MAIL": b"451 4.3.0 try later"},
    {b"DATA": b"554 5.5.1 no valid recipients"},
    {b"END": b"552 5.3.4 too big"},
    {b"RSET": b"421 4.7.0 closing", b"END": b"450 4.2.0 busy"},
]


async def session(
    smtp_class: type[aiosmtplib.SMTP], script: dict[bytes, bytes], calls: list[Any]
) -> tuple[list[Any], bytes]:
    """Run `calls` (sendmail's arguments) on one connection of `smtp_class`; what each call
    returned or raised, and every byte the server received."""
    results: list[Any] = []
    async with WireServer(script) as server:
        smtp = smtp_class(
            hostname="127.0.0.1", port=server.port, local_hostname="client.test", start_tls=False
        )
        await smtp.connect()
        for sender, recipients, message, options in calls:
            try:
                results.append(
                    await smtp.sendmail(sender, recipients, message, mail_options=options)
                )
            except (aiosmtplib.SMTPException, ValueError) as error:
                results.append((type(error), str(error)))
            if not smtp.is_connected:
                await smtp.connect()
        if smtp.is_connected:
            await smtp.quit()
    return results, b"\0".join(server.transcripts)


@pytest.mark.parametrize("script", SCRIPTS, ids=lambda script: "-".join(map(bytes.decode, script)))
async def test_whole_sessions_are_byte_for_byte_aiosmtplibs(script: dict[bytes, bytes]) -> None:
    calls = [(*envelope[:2], message, envelope[2]) for envelope in ENVELOPES for message in CORPUS]
    calls.append(("news@example.org", "a b@example.net", CORPUS[0], None))  # refused address
    theirs = await session(aiosmtplib.SMTP, script, calls)
    ours = await session(FastSMTP, script, calls)
    assert ours[0] == theirs[0]
    assert ours[1] == theirs[1]
    if not script:  # everything accepted: the messages went out, dot-stuffed
        assert ours[1].count(b"\r\n..one\r\n") == len(ENVELOPES)


# --- upstream, pinned ---------------------------------------------------------------------------

# sha256 (first 16 hex digits) of the source of each aiosmtplib function that FastSMTP copies
# or relies on being pure, as of aiosmtplib 5.1.3.
PINNED = {
    "SMTP.sendmail": "c30688c0a6881505",
    "SMTP.mail": "aa44c3d243b35260",
    "SMTP.rcpt": "00b4c28151b6c900",
    "SMTP.data": "ac54fc47aec81b08",
    "SMTPProtocol.execute_data_command": "a55f9634add2db08",
    "protocol.normalize_message_line_endings": "b2996d67955888e8",
    "email.parse_address": "821eaa5ea3bd41f4",
    "email.quote_address": "9f59e28fbb07142b",
}
UPSTREAM = {
    "SMTP.sendmail": aiosmtplib.SMTP.sendmail,
    "SMTP.mail": aiosmtplib.SMTP.mail,
    "SMTP.rcpt": aiosmtplib.SMTP.rcpt,
    "SMTP.data": aiosmtplib.SMTP.data,
    "SMTPProtocol.execute_data_command": aiosmtplib.protocol.SMTPProtocol.execute_data_command,
    "protocol.normalize_message_line_endings": aiosmtplib.protocol.normalize_message_line_endings,
    "email.parse_address": aiosmtplib.email.parse_address,
    "email.quote_address": aiosmtplib.email.quote_address,
}


@pytest.mark.parametrize("name", PINNED)
def test_the_upstream_code_fastsmtp_mirrors_is_unchanged(name: str) -> None:
    digest = hashlib.sha256(inspect.getsource(UPSTREAM[name]).encode()).hexdigest()[:16]
    assert digest == PINNED[name], (
        f"aiosmtplib's {name} changed (aiosmtplib {aiosmtplib.__version__}). FastSMTP in "
        "syndicate/mail/fastdata.py copies it: read the new source, carry the change over to "
        f"the copy, then pin the new hash here ({digest})."
    )


def test_the_patterns_the_fast_paths_replace_are_unchanged() -> None:
    assert aiosmtplib.protocol.PERIOD_REGEX.pattern == rb"(?m)^\."
    assert aiosmtplib.protocol.LINE_ENDINGS_REGEX.pattern == rb"(?:\r\n|\n|\r(?!\n))"


# --- nothing inside aiosmtplib is replaced ------------------------------------------------------

UNTOUCHED = """
import asyncio, importlib, pkgutil, sys
import aiosmtplib

names = ["aiosmtplib"] + [
    "aiosmtplib." + module.name
    for module in pkgutil.iter_modules(aiosmtplib.__path__)
    if not module.name.startswith("_")
]
modules = [importlib.import_module(name) for name in names]

def snapshot():
    seen = {}
    for module in modules:
        for key, value in vars(module).items():
            seen[(module.__name__, key)] = value
            if isinstance(value, type) and value.__module__.startswith("aiosmtplib"):
                for attribute, member in vars(value).items():
                    seen[(module.__name__, key, attribute)] = member
    return seen

before = snapshot()

import syndicate.mail
import syndicate.mail.smtp
from smtpwire import WireServer
from syndicate.config.settings import SmtpSettings

async def send():
    async with WireServer() as server:
        settings = SmtpSettings(host="127.0.0.1", port=server.port, tls="none")
        async with syndicate.mail.smtp.SmtpTransport(settings) as transport:
            raw = b"Subject: hi\\r\\n\\r\\n.dot\\r\\n"
            await transport.send(raw, "a@example.org", "b@example.org")
    assert b"\\r\\n..dot\\r\\n" in server.transcripts[0], server.transcripts

asyncio.run(send())
after = snapshot()
changed = sorted(
    repr(key) for key in before.keys() | after.keys() if before.get(key) is not after.get(key)
)
print("\\n".join(changed) or "untouched")
"""


def test_importing_and_sending_leaves_aiosmtplib_untouched() -> None:
    # A fresh interpreter, so that aiosmtplib is seen before anything of ours is imported.
    result = subprocess.run(
        [sys.executable, "-c", UNTOUCHED],
        capture_output=True,
        text=True,
        timeout=60,
        env={**os.environ, "PYTHONPATH": os.pathsep.join([str(TESTS), str(TESTS.parent)])},
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "untouched"
