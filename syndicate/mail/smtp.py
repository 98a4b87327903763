"""The `smtp` transport: a pool of reused aiosmtplib connections, paced by a rate limit.

    async with SmtpTransport(settings.mail.smtp, password=secret(...)) as transport:
        await asyncio.gather(*(transport.send(raw, sender, to) for raw, to in batch))

Why a pool. aiosmtplib sends one message at a time per connection and has no PIPELINING, so
each message costs a few round trips on its connection; parallelism therefore means several
connections. Opening one costs far more than a message (TCP, greeting, EHLO, a TLS handshake
and AUTH), so connections are made lazily, kept open and reused for message after message.
A semaphore of ``pool`` slots bounds the messages in flight, and so the connections: a task
holding a slot takes an idle connection, or opens one when there is none. Idle connections
wait in a LIFO stack, so a trickle of mail keeps one warm connection busy instead of many.
A connection that broke (timeout, disconnect, an unexpected error, a cancelled task) is closed
and forgotten, never put back: its state is unknown, and the next message opens a new one.

After a refusal (4xx/5xx on MAIL, RCPT or DATA) aiosmtplib's ``sendmail`` sends RSET itself,
and a connection that is still open afterwards is clean for the next message, so a bad
address does not poison the connection it was tried on. A server may drop a connection while
it idles here; a drop noticed by the event loop makes it look closed and it is replaced
before use, and one noticed only when the next message is tried (a disconnect, or a 421
"closing channel") is retried once on a fresh connection. Retrying after a disconnect mid-DATA
can, rarely, deliver a message twice (the server kept it but its reply was lost); SMTP accepts
that risk (RFC 5321 section 6.1), and losing the message would be worse.

How errors map (every message starts with "SMTP host:port:" and names the recipient):

    5xx on RCPT or DATA                PermanentDeliveryError(code)  the server refused for good
    4xx reply, timeout or disconnect   TransientDeliveryError(code)  try again later
      during a transaction
    cannot connect, AUTH failed,       TransportUnavailable          nothing can be sent now;
      STARTTLS or AUTH not offered,      (a TransientDeliveryError)  the address is not to
      TLS handshake failed, 5xx on MAIL                              blame: no subscriber may
      (our sender refused)                                           be marked bounced

A configuration error is remembered for a short while (_CONFIG_RETRY_AFTER) and raised again
without contacting the server, so a wrong password does not become one failed login per
message, which is how accounts get locked. With ``tls = "starttls"`` the server must offer
STARTTLS: credentials and mail never go out in clear because the server forgot to offer it.

The rate limit (``rate`` messages per second for the whole pool) spaces messages at least
1/rate apart: each takes the next free start time and sleeps until then. The clock and sleep
are injectable, for tests.
"""

from __future__ import annotations

import asyncio
import logging
import re
import ssl
import time
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, Self

import aiosmtplib
from aiosmtplib import (
    SMTPAuthenticationError,
    SMTPConnectError,
    SMTPConnectResponseError,
    SMTPException,
    SMTPNotSupported,
    SMTPRecipientsRefused,
    SMTPResponseException,
    SMTPSenderRefused,
    SMTPServerDisconnected,
    SMTPTimeoutError,
)

from syndicate.errors import (
    DeliveryError,
    PermanentDeliveryError,
    TransientDeliveryError,
    TransportUnavailable,
)
from syndicate.mail.fastdata import FastSMTP

if TYPE_CHECKING:
    from syndicate.config.settings import SmtpSettings

__all__ = ["SmtpTransport"]

log = logging.getLogger(__name__)

# How long a configuration error (a refused login, no STARTTLS) is raised again from memory
# before the server is asked again: long enough that a pool pushing thousands of messages
# logs in a handful of times, short enough that a fixed account is noticed soon.
_CONFIG_RETRY_AFTER = 60.0
# QUIT at close() is a courtesy; a server that does not answer must not hold shutdown up.
_QUIT_TIMEOUT = 5.0
_SERVICE_CLOSING = 421  # "closing transmission channel": the connection is gone
# Envelope addresses are bare addresses. aiosmtplib parses display-name forms and silently
# drops what follows an address ("a@b\r\nRCPT TO:<c@d>" goes to a@b), so refuse these first.
_UNSAFE_ADDRESS = re.compile(r"[\x00-\x20\x7f<>]")


class SmtpTransport:
    """Delivers over SMTP through up to ``settings.pool`` reused connections.

    ``password`` is used when ``settings.username`` is set; ``tls_context`` verifies the
    server's certificate (default: the system's trusted CAs). ``clock`` and ``sleep`` drive
    the rate limit and exist for tests.
    """

    def __init__(
        self,
        settings: SmtpSettings,
        *,
        password: str | None = None,
        tls_context: ssl.SSLContext | None = None,
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], Awaitable[object]] = asyncio.sleep,
    ) -> None:
        self.settings = settings
        self._where = f"SMTP {settings.host}:{settings.port}"
        self._password = password
        if tls_context is None and settings.tls != "none":
            tls_context = ssl.create_default_context()
        self._tls_context = tls_context
        self._clock = clock
        self._sleep = sleep
        self._interval = 1.0 / settings.rate if settings.rate else 0.0
        self._next_start = 0.0
        self._slots = asyncio.Semaphore(settings.pool)
        self._idle: list[aiosmtplib.SMTP] = []
        self._closed = False
        # aiosmtplib looks the FQDN up (in a thread) for every connection unless told.
        self._local_hostname: str | None = None
        self._config_error: tuple[float, str, int | None] | None = None
        self._eight_bit: bool | None = None

    async def __aenter__(self) -> Self:
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.close()

    async def send(self, message: bytes, envelope_from: str, envelope_to: str) -> None:
        """Send one pre-built message (bytes with CRLF or LF line ends) to one recipient."""
        if self._closed:
            raise TransientDeliveryError(f"{self._where}: the transport is closed")
        if _UNSAFE_ADDRESS.search(envelope_to) or "@" not in envelope_to:
            raise PermanentDeliveryError(f"{self._where}: cannot send to {envelope_to!r}")
        if _UNSAFE_ADDRESS.search(envelope_from):
            raise PermanentDeliveryError(
                f"{self._where}: cannot send from {envelope_from!r} (to <{envelope_to}>)"
            )
        async with self._slots:
            if self._closed:  # close() began while this message waited for a slot
                raise TransientDeliveryError(f"{self._where}: the transport is closed")
            if self._interval:
                await self._pace()
            # SMTPUTF8 only when needed: not every server offers it, and most mail is ASCII.
            options = None if envelope_from.isascii() and envelope_to.isascii() else ["SMTPUTF8"]
            smtp = self._take_idle()
            reused = smtp is not None
            while True:
                if smtp is None:
                    smtp = await self._connect()
                keep = False
                mail_options = options
                if smtp.supports_extension("8bitmime"):
                    # RFC 6152: say so when the body may hold 8bit text (see accepts_8bit).
                    mail_options = [*(options or ()), "BODY=8BITMIME"]
                try:
                    await smtp.sendmail(
                        envelope_from, [envelope_to], message, mail_options=mail_options
                    )
                    keep = True
                    return
                except (SMTPResponseException, SMTPRecipientsRefused) as error:
                    # sendmail already sent RSET; if the line is still up it is clean.
                    keep = smtp.is_connected
                    if not (reused and not keep and _code(error) == _SERVICE_CLOSING):
                        raise self._refusal(error, envelope_from, envelope_to) from error
                except SMTPServerDisconnected as error:
                    if not reused:
                        raise TransientDeliveryError(
                            f"{self._where}: connection lost sending to <{envelope_to}>: "
                            f"{self._scrub(error.message)}"
                        ) from error
                except SMTPTimeoutError as error:
                    # The RSET after a refusal timed out: the refusal is the news.
                    context = error.__context__
                    if isinstance(context, SMTPResponseException | SMTPRecipientsRefused):
                        raise self._refusal(context, envelope_from, envelope_to) from error
                    raise TransientDeliveryError(
                        f"{self._where}: no reply within {self.settings.timeout:g} s "
                        f"sending to <{envelope_to}>"
                    ) from error
                except SMTPNotSupported as error:
                    keep = smtp.is_connected  # refused before any command was sent
                    raise PermanentDeliveryError(
                        f"{self._where}: cannot send to <{envelope_to}>: {error.message}"
                    ) from error
                except SMTPException as error:
                    raise TransientDeliveryError(
                        f"{self._where}: sending to <{envelope_to}> failed: "
                        f"{self._scrub(error.message)}"
                    ) from error
                except ValueError as error:
                    # An address with characters that cannot go on a command line. It may
                    # be found after MAIL was accepted, so the connection is not reused.
                    raise PermanentDeliveryError(
                        f"{self._where}: cannot send to <{envelope_to}>: {error}"
                    ) from error
                finally:
                    # Also on CancelledError: a connection left mid-command is closed.
                    if keep:
                        self._idle.append(smtp)
                    else:
                        smtp.close()
                # Only a reused connection that turned out dead gets here (a disconnect or
                # a 421): most likely the server dropped it while idle, so once more on a
                # new connection, and from then on errors are reported.
                reused, smtp = False, None

    async def close(self) -> None:
        """Let messages in flight finish, fail those still waiting, QUIT every connection."""
        if self._closed:
            return
        self._closed = True
        # Holding every slot means nothing is in flight; waiters queued before us wake first,
        # see _closed and give their slot back.
        for _ in range(self.settings.pool):
            await self._slots.acquire()
        idle, self._idle = self._idle, []
        await asyncio.gather(*(_quit(smtp) for smtp in idle))
        if idle:
            log.debug("%s: closed %d connection(s)", self._where, len(idle))

    async def accepts_8bit(self) -> bool:
        """Whether the server offers 8BITMIME (asked once, on a pooled connection), so that
        message bodies may go as 8bit instead of quoted-printable."""
        if self._eight_bit is None:
            async with self._slots:
                smtp = self._take_idle() or await self._connect()
                self._eight_bit = smtp.supports_extension("8bitmime")
                self._idle.append(smtp)
        return self._eight_bit

    async def _pace(self) -> None:
        """Wait for this message's start time: at least 1/rate after the previous one's."""
        now = self._clock()
        start = max(now, self._next_start)
        self._next_start = start + self._interval
        if start > now:
            await self._sleep(start - now)

    def _take_idle(self) -> aiosmtplib.SMTP | None:
        """The most recently used idle connection that is still open, if any."""
        while self._idle:
            smtp = self._idle.pop()
            if smtp.is_connected:
                return smtp
            smtp.close()  # the server hung up while it idled; aiosmtplib noticed
        return None

    async def _connect(self) -> aiosmtplib.SMTP:
        """A new connection, greeted, upgraded to TLS and logged in as the settings say."""
        settings = self.settings
        if self._config_error is not None:
            failed_at, text, code = self._config_error
            if self._clock() - failed_at < _CONFIG_RETRY_AFTER:
                raise TransportUnavailable(text, code=code)
            self._config_error = None
        # aiosmtplib's client, minus two regex scans of every message (see fastdata).
        smtp = FastSMTP(
            hostname=settings.host,
            port=settings.port,
            timeout=settings.timeout,
            local_hostname=self._local_hostname,
            use_tls=settings.tls == "implicit",
            start_tls=False,  # STARTTLS is done below, where its absence is an error
            tls_context=self._tls_context,
        )
        try:
            await smtp.connect()
            self._local_hostname = smtp.local_hostname
            await smtp.ehlo()
            if settings.tls == "starttls":
                if not smtp.supports_extension("starttls"):
                    raise self._config_failure(
                        'the server does not offer STARTTLS, which tls = "starttls" requires; '
                        'use the submission port with STARTTLS, tls = "implicit" (port 465), '
                        'or tls = "none" only for a relay you trust'
                    )
                await smtp.starttls()
                await smtp.ehlo()  # RFC 3207: forget what was said before TLS
            if settings.username is not None:
                await self._login(smtp, settings.username)
        except DeliveryError:
            smtp.close()
            raise
        except Exception as error:
            smtp.close()
            raise self._connect_failure(error) from error
        except BaseException:  # cancelled mid-handshake: leave nothing half open
            smtp.close()
            raise
        log.debug("%s: connection opened (tls=%s)", self._where, settings.tls)
        return smtp

    async def _login(self, smtp: aiosmtplib.SMTP, username: str) -> None:
        if not smtp.supports_extension("auth"):
            raise self._config_failure(
                f"username {username!r} is set but the server does not offer AUTH"
                + (" (many servers offer it only over TLS)" if self.settings.tls == "none" else "")
            )
        try:
            await smtp.login(username, self._password or "")
        except SMTPAuthenticationError as error:
            detail = f"{error.code} {self._scrub(error.message)}"
            if error.code >= 500:
                hint = (
                    "no password was given: set the environment variable that password_env names"
                    if self._password is None
                    else "check the username, and the password in the environment variable "
                    "that password_env names"
                )
                raise self._config_failure(
                    f"authentication failed for user {username!r}: {detail} ({hint})",
                    code=error.code,
                ) from error
            raise TransientDeliveryError(
                f"{self._where}: authentication for user {username!r} failed for now: {detail}",
                code=error.code,
            ) from error

    def _config_failure(self, reason: str, *, code: int | None = None) -> TransportUnavailable:
        """A setup error that a retry will not fix until the config or server changes."""
        text = f"{self._where}: {reason}"
        self._config_error = (self._clock(), text, code)
        return TransportUnavailable(text, code=code)

    def _connect_failure(self, error: Exception) -> TransportUnavailable:
        """Anything else going wrong while opening a connection: not the recipient's fault."""
        if isinstance(error, SMTPTimeoutError):
            return TransportUnavailable(
                f"{self._where}: no reply within {self.settings.timeout:g} s while connecting"
            )
        if isinstance(error, ssl.SSLError) or isinstance(error.__cause__, ssl.SSLError):
            cause = error if isinstance(error, ssl.SSLError) else error.__cause__
            return self._config_failure(
                f"TLS handshake failed: {cause} (is tls = {self.settings.tls!r} right for "
                "this port, and does the certificate match the host?)"
            )
        if isinstance(error, SMTPConnectResponseError):
            return TransportUnavailable(
                f"{self._where}: the server refused the connection: "
                f"{error.code} {self._scrub(error.message)}",
                code=error.code,
            )
        if isinstance(error, SMTPConnectError):
            return TransportUnavailable(f"{self._where}: cannot connect: {error.message}")
        if isinstance(error, SMTPResponseException):
            return TransportUnavailable(
                f"{self._where}: connection setup refused: "
                f"{error.code} {self._scrub(error.message)}",
                code=error.code,
            )
        text = error.message if isinstance(error, SMTPException) else str(error)
        return TransportUnavailable(
            f"{self._where}: connection setup failed: {self._scrub(text) or type(error).__name__}"
        )

    def _refusal(
        self,
        error: SMTPResponseException | SMTPRecipientsRefused,
        envelope_from: str,
        envelope_to: str,
    ) -> DeliveryError:
        """The server's reply to MAIL, RCPT or DATA as a delivery error: 5xx is for good."""
        if isinstance(error, SMTPRecipientsRefused):
            # One recipient per transaction, so one refusal.
            error = error.recipients[0]
        if isinstance(error, SMTPSenderRefused):
            what = f"sender <{envelope_from}> refused (sending to <{envelope_to}>)"
        elif error.code == _SERVICE_CLOSING:
            what = f"server closing the connection (sending to <{envelope_to}>)"
        else:
            what = f"<{envelope_to}> refused"
        text = f"{self._where}: {what}: {error.code} {self._scrub(error.message)}"
        if isinstance(error, SMTPSenderRefused) and error.code >= 500:
            # Our own From refused: every message would be, and no subscriber is to blame.
            return TransportUnavailable(text, code=error.code)
        kind = PermanentDeliveryError if 500 <= error.code < 600 else TransientDeliveryError
        return kind(text, code=error.code if error.code > 0 else None)

    def _scrub(self, text: str) -> str:
        """Server text, one line, without the password in case a server echoes it."""
        text = " ".join(text.split())
        if self._password:
            text = text.replace(self._password, "***")
        return text


def _code(error: SMTPResponseException | SMTPRecipientsRefused) -> int:
    if isinstance(error, SMTPRecipientsRefused):
        return error.recipients[0].code
    return error.code


async def _quit(smtp: aiosmtplib.SMTP) -> None:
    try:
        if smtp.is_connected:
            await smtp.quit(timeout=_QUIT_TIMEOUT)
    except (SMTPException, OSError):
        pass  # it is going away either way
    finally:
        smtp.close()
