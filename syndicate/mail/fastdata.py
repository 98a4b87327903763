r"""FastSMTP: aiosmtplib's SMTP client with fast paths for messages that are already clean.

aiosmtplib 5.1 prepares every message with two regular expressions over the whole body: one
turning lone CR and LF into CRLF (`normalize_message_line_endings`, which `sendmail` also runs
once more to compute SIZE when the server offers it), and `(?m)^\.` to dot-stuff lines that
start with a period. Python's `re` scans such patterns byte by byte: for a 65 KB digest that
is about 1 ms a message, more than a third of all the CPU the sending loop spent
(bench/send.py, docs/performance.md). And `sendmail` parses the sender and the recipient
twice each (`parse_address`, an `email.utils.parseaddr`), which costs more than building
the message's headers.

Our messages come out of MessageFactory with CRLF line endings already (`CrlfMessage`, or
`bytes.count` confirms it at memory speed), and dot-stuffing is one `bytes.replace` of "\n."
(what `(?m)^\.` matches, besides the start). A message whose line endings do need fixing
takes aiosmtplib's own function.

Nothing inside aiosmtplib is replaced: FastSMTP is a subclass, and SmtpTransport opens its
connections with it. It overrides four public methods (`sendmail`, `mail`, `rcpt`, `data`),
each aiosmtplib 5.1.3's step for step with only the calls above swapped for ours; `data` does
the protocol's `execute_data_command` here, on the protocol's own lock. The copies read a few
of aiosmtplib's private names (`_sendmail_lock`, `_ehlo_or_helo_if_needed`, `_send_recipients`,
the protocol's `_command_lock` and `_response_pending`) as its own methods do.

tests/test_mail_fastdata.py checks that what goes out is byte for byte what aiosmtplib itself
sends (the fast functions on hypothesis input, and whole SMTP sessions of both clients on a
fixed corpus, refusals included), pins the source of every upstream function copied here so
that an aiosmtplib upgrade changing one fails a test naming it, and checks that importing and
using syndicate.mail leaves every attribute of aiosmtplib's modules and classes as it was.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
from collections.abc import Iterable, Sequence
from typing import Literal

import aiosmtplib
from aiosmtplib import (
    SMTPDataError,
    SMTPNotSupported,
    SMTPRecipientRefused,
    SMTPRecipientsRefused,
    SMTPResponse,
    SMTPResponseException,
    SMTPSenderRefused,
    SMTPServerDisconnected,
    SMTPStatus,
    SMTPTimeoutError,
)
from aiosmtplib.email import parse_address as _upstream_parse_address
from aiosmtplib.protocol import SMTPProtocol
from aiosmtplib.protocol import normalize_message_line_endings as _upstream_normalize
from aiosmtplib.typing import Default

from syndicate.mail.message import CrlfMessage, DotFreeMessage

__all__ = ["FastSMTP"]

_Timeout = float | Literal[Default.token] | None

# sendmail() validates the sender and the recipient, then mail() and rcpt() parse them again:
# four email.utils.parseaddr calls a message. parse_address is a pure function of its
# argument, so remembering recent answers (the sender every time, the recipient the second
# time) changes nothing but the cost. A refusal (ValueError) is not remembered.
parse_address = functools.lru_cache(maxsize=4096)(_upstream_parse_address)


def quote_address(address: str) -> str:
    """aiosmtplib.email.quote_address, through the remembered parse_address."""
    return f"<{parse_address(address)}>"


def normalize_line_endings(message: bytes) -> bytes:
    """aiosmtplib's normalize_message_line_endings, with a fast path for messages whose line
    ends are all CRLF already."""
    if isinstance(message, CrlfMessage):  # MessageFactory's output: CRLF throughout
        return message
    if message.count(b"\r") == message.count(b"\n") == message.count(b"\r\n"):
        return message if message.endswith(b"\r\n") else message + b"\r\n"
    return _upstream_normalize(message)


def dot_stuff(message: bytes) -> bytes:
    r"""aiosmtplib's `PERIOD_REGEX.sub(b"..", message)` (`(?m)^\.`) with bytes.replace."""
    if type(message) is DotFreeMessage:  # built without a line starting with "."
        return message
    # `(?m)^` is the start and every position after a "\n", so this is the same result.
    if b"\n." not in message and not message.startswith(b"."):
        return message  # the usual case: a search instead of a copy
    stuffed = message.replace(b"\n.", b"\n..")
    return b"." + stuffed if message.startswith(b".") else stuffed


def prepare(message: bytes) -> bytes:
    """The message as DATA carries it (before the final "."), by the fast paths."""
    return dot_stuff(normalize_line_endings(message))


class FastSMTP(aiosmtplib.SMTP):
    """aiosmtplib.SMTP, sending byte for byte the same, with the fast paths above.

    Each method below is aiosmtplib 5.1.3's, step for step, except where a comment says
    "fast path"; tests/test_mail_fastdata.py pins the upstream source they copy.
    """

    async def sendmail(
        self,
        sender: str,
        recipients: str | Sequence[str],
        message: str | bytes,
        /,
        *,
        mail_options: Iterable[str] | None = None,
        rcpt_options: Iterable[str] | None = None,
        timeout: _Timeout = Default.token,  # noqa: ASYNC109 (aiosmtplib's signature)
    ) -> tuple[dict[str, SMTPResponse], str]:
        if isinstance(recipients, str):
            recipients = [recipients]
        mail_options = [] if mail_options is None else list(mail_options)
        rcpt_options = [] if rcpt_options is None else list(rcpt_options)

        if any(option.lower() == "smtputf8" for option in mail_options):
            mailbox_encoding = "utf-8"
        else:
            mailbox_encoding = "ascii"

        # Validate all addresses before sending anything (fast path: remembered).
        parse_address(sender)
        for recipient in recipients:
            parse_address(recipient)

        if self._sendmail_lock is None:
            self._sendmail_lock = asyncio.Lock()

        async with self._sendmail_lock:
            await self._ehlo_or_helo_if_needed()

            if mailbox_encoding == "utf-8" and not self.supports_extension("smtputf8"):
                raise SMTPNotSupported("SMTPUTF8 is not supported by this server")

            if self.supports_extension("size"):
                # RFC 1870: the size as transmitted in DATA (fast path: no regex for CRLF).
                message_bytes = message.encode("ascii") if isinstance(message, str) else message
                mail_options.insert(0, f"size={len(normalize_line_endings(message_bytes))}")

            try:
                await self.mail(
                    sender, options=mail_options, encoding=mailbox_encoding, timeout=timeout
                )
                recipient_errors = await self._send_recipients(
                    recipients, rcpt_options, encoding=mailbox_encoding, timeout=timeout
                )
                response = await self.data(message, timeout=timeout)
            except (SMTPResponseException, SMTPRecipientsRefused) as exc:
                # If we got an error, reset the envelope.
                # (A failed reset is not the news; the error above is.)
                with contextlib.suppress(ConnectionError, SMTPResponseException):
                    await self.rset(timeout=timeout)
                raise exc

        return recipient_errors, response.message

    async def mail(
        self,
        sender: str,
        /,
        *,
        options: Iterable[str] | None = None,
        encoding: str = "ascii",
        timeout: _Timeout = Default.token,  # noqa: ASYNC109 (aiosmtplib's signature)
    ) -> SMTPResponse:
        await self._ehlo_or_helo_if_needed()
        options_bytes = [option.encode("ascii") for option in options or ()]
        response = await self.execute_command(
            b"MAIL",
            b"FROM:" + quote_address(sender).encode(encoding),  # fast path: remembered
            *options_bytes,
            timeout=timeout,
        )
        if response.code != SMTPStatus.completed:
            raise SMTPSenderRefused(response.code, response.message, sender)
        return response

    async def rcpt(
        self,
        recipient: str,
        /,
        *,
        options: Iterable[str] | None = None,
        encoding: str = "ascii",
        timeout: _Timeout = Default.token,  # noqa: ASYNC109 (aiosmtplib's signature)
    ) -> SMTPResponse:
        await self._ehlo_or_helo_if_needed()
        options_bytes = [option.encode("ascii") for option in options or ()]
        response = await self.execute_command(
            b"RCPT",
            b"TO:" + quote_address(recipient).encode(encoding),  # fast path: remembered
            *options_bytes,
            timeout=timeout,
        )
        if response.code not in (SMTPStatus.completed, SMTPStatus.will_forward):
            raise SMTPRecipientRefused(response.code, response.message, recipient)
        return response

    async def data(
        self,
        message: str | bytes,
        /,
        *,
        timeout: _Timeout = Default.token,  # noqa: ASYNC109 (aiosmtplib's signature)
    ) -> SMTPResponse:
        if self.protocol is None:
            raise SMTPServerDisconnected("Connection lost")
        await self._ehlo_or_helo_if_needed()
        if timeout is Default.token:
            timeout = self.timeout
        if isinstance(message, str):
            message = message.encode("ascii")
        try:
            return await _execute_data_command(self.protocol, message, timeout)
        except (SMTPServerDisconnected, SMTPTimeoutError):
            self.close()
            raise


async def _execute_data_command(
    protocol: SMTPProtocol, message: bytes, seconds: float | None
) -> SMTPResponse:
    """SMTPProtocol.execute_data_command, with the message prepared by the fast paths."""
    lock = protocol._command_lock
    if lock is None:
        raise SMTPServerDisconnected("Server not connected")
    message = prepare(message) + b".\r\n"  # fast path
    async with lock:
        # Mark a reply as expected before each send, as aiosmtplib does: data arriving when
        # none is expected is dropped.
        protocol._response_pending = True
        protocol.write(b"DATA\r\n")
        start_response = await protocol.read_response(timeout=seconds)
        if start_response.code != SMTPStatus.start_input:
            raise SMTPDataError(start_response.code, start_response.message)
        protocol._response_pending = True
        protocol.write(message)
        response = await protocol.read_response(timeout=seconds)
        if response.code != SMTPStatus.completed:
            raise SMTPDataError(response.code, response.message)
    return response
