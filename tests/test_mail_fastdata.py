"""The DATA fast path (syndicate.mail.fastdata) sends exactly what aiosmtplib would."""

from __future__ import annotations

import aiosmtplib.protocol
from hypothesis import given
from hypothesis import strategies as st

import syndicate.mail.smtp  # noqa: F401  (installs the fast path, as sending does)
from syndicate.mail import fastdata

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
