"""A real SMTP server (aiosmtpd) on 127.0.0.1 for tests, recording mail and scriptable.

    async def test_send(smtp_server):
        async with smtp_server.transport(pool=2) as transport:   # an SmtpTransport for it
            await transport.send(raw, "news@example.org", "ann@example.net")
        assert smtp_server.recipients() == ["ann@example.net"]
        assert smtp_server.messages[0].content == raw_with_crlf

    def test_tls(smtp_server_factory):
        server = smtp_server_factory(tls="starttls", users={"news": "s3cret"})
        transport = server.transport(username="news", password="s3cret")

The server runs in its own thread with its own event loop (aiosmtpd's Controller), on a port
the OS picks, so tests in the client's loop talk to it over real sockets. Everything it
records is guarded by a lock and read as snapshots, so it is safe to inspect at any time:

    messages        list of Received(envelope_from, rcpt_tos, content, session) accepted
    recipients()    every accepted recipient, in order
    sessions        connections accepted so far; open_sessions, max_open_sessions
    commands()      the SMTP verbs received ("EHLO", "MAIL", ... "QUIT"), optionally of one
                    session; quits is how many QUITs arrived
    auth_attempts   (mechanism, login) of each AUTH the authenticator saw (no passwords)

Scripting, applied in the server at the stage named ("MAIL", "RCPT" or "DATA", where DATA
is the end of the message, after its content arrived):

    fail(times, code=451, ...)      the next `times` commands at `stage` get a 4xx (or code)
    reject(address, code=550, ...)  every command at `stage` for that recipient is refused
    drop(times=1, stage="DATA")     hang up without a reply (mid-transaction)
    slow(seconds, stage="DATA")     wait before replying (times=None: every time)
    hang_up_all()                   close every open connection now, as an idle timeout does
    clear_script()                  back to accepting everything

``tls`` is "none", "starttls" (offered, and required before MAIL) or "implicit" (TLS from the
first byte); ``users`` turns on AUTH (required before MAIL) with those logins and passwords.
The certificate comes from a test CA (trustme) that ``client_tls_context`` trusts.
Fixtures: ``smtp_server`` (plain, no auth) and ``smtp_server_factory(**options)``; both stop
their servers after the test. Registered in tests/conftest.py through ``pytest_plugins``.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import ssl
import threading
import time
from collections.abc import Awaitable, Callable, Iterable, Iterator
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Literal, Self

import pytest
import trustme
from aiosmtpd.controller import Controller
from aiosmtpd.smtp import SMTP, AuthResult, Envelope, LoginPassword, Session

if TYPE_CHECKING:
    from syndicate.config.settings import SmtpSettings
    from syndicate.mail.smtp import SmtpTransport

Stage = Literal["MAIL", "RCPT", "DATA"]
Tls = Literal["none", "starttls", "implicit"]
HOSTNAME = "smtp.test"  # what the server calls itself; also spares a getfqdn() per session


@dataclass(frozen=True)
class Received:
    envelope_from: str
    rcpt_tos: tuple[str, ...]
    content: bytes  # as received: CRLF line ends, dot-stuffing undone
    session: int  # which connection brought it, numbered from 1


@dataclass
class _Rule:
    stage: Stage
    action: Literal["reply", "drop", "delay"]
    reply: str = ""
    address: str | None = None  # only for this recipient (None: any)
    times: int | None = None  # how many more times it applies (None: always)
    seconds: float = 0.0


@functools.cache
def certificate_authority() -> trustme.CA:
    """One CA for the whole test run (making keys takes a while)."""
    return trustme.CA()


@functools.cache
def _server_tls_context() -> ssl.SSLContext:
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    certificate_authority().issue_cert("127.0.0.1", "localhost", HOSTNAME).configure_cert(context)
    return context


def client_tls_context() -> ssl.SSLContext:
    """A client context that trusts the test CA (and verifies host names as usual)."""
    context = ssl.create_default_context()
    certificate_authority().configure_trust(context)
    return context


class SmtpServer:
    """An aiosmtpd server on 127.0.0.1 that records and can be scripted; see the module doc."""

    def __init__(
        self,
        *,
        tls: Tls = "none",
        users: dict[str, str] | None = None,
        auth_mechanisms: Iterable[str] = ("LOGIN", "PLAIN"),
        host: str = "127.0.0.1",
    ) -> None:
        self.host = host
        self.port = 0
        self.tls: Tls = tls
        self.users = dict(users or {})
        self.client_tls_context = client_tls_context() if tls != "none" else None
        self._lock = threading.Lock()
        self._messages: list[Received] = []
        self._commands: list[tuple[int, str]] = []
        self._auth_attempts: list[tuple[str, str]] = []
        self._rules: list[_Rule] = []
        self._open: set[_Session] = set()
        self._sessions = 0
        self._max_open = 0
        self._started = False
        options: dict[str, Any] = {"server_hostname": HOSTNAME}
        if tls == "implicit":
            options["ssl_context"] = _server_tls_context()
        elif tls == "starttls":
            options["tls_context"] = _server_tls_context()
            options["require_starttls"] = True
        if self.users:
            offered = {name.upper() for name in auth_mechanisms}
            options["authenticator"] = self._authenticate
            # aiosmtpd counts only STARTTLS as TLS, and warns about AUTH without TLS when
            # it enforces AUTH itself; so _Handler.handle_MAIL enforces it instead.
            options["auth_require_tls"] = tls == "starttls"
            options["auth_exclude_mechanism"] = [m for m in ("LOGIN", "PLAIN") if m not in offered]
        self._controller = _Controller(self, _Handler(self), hostname=host, port=0, **options)

    # -- life cycle

    def start(self) -> Self:
        self._controller.start()
        self.port = self._controller.port
        with self._lock:
            self._started = True  # the controller's own probe connection is not counted
        return self

    def stop(self) -> None:
        self.hang_up_all()
        self._controller.stop()

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(self, *exc_info: object) -> None:
        self.stop()

    # -- what the transport under test needs

    def settings(self, **overrides: Any) -> SmtpSettings:
        """SmtpSettings pointing at this server (tls as the server has it), plus overrides."""
        from syndicate.config.settings import SmtpSettings

        values: dict[str, Any] = {"host": self.host, "port": self.port, "tls": self.tls}
        values.update(overrides)
        return SmtpSettings(**values)

    def transport(self, *, password: str | None = None, **overrides: Any) -> SmtpTransport:
        """An SmtpTransport for this server, trusting its certificate."""
        from syndicate.mail.smtp import SmtpTransport

        return SmtpTransport(
            self.settings(**overrides), password=password, tls_context=self.client_tls_context
        )

    # -- what it saw (snapshots, safe from any thread)

    @property
    def messages(self) -> list[Received]:
        with self._lock:
            return list(self._messages)

    def recipients(self) -> list[str]:
        with self._lock:
            return [address for message in self._messages for address in message.rcpt_tos]

    @property
    def sessions(self) -> int:
        with self._lock:
            return self._sessions

    @property
    def open_sessions(self) -> int:
        with self._lock:
            return len(self._open)

    @property
    def max_open_sessions(self) -> int:
        with self._lock:
            return self._max_open

    def commands(self, session: int | None = None) -> list[str]:
        with self._lock:
            return [verb for number, verb in self._commands if session in (None, number)]

    @property
    def quits(self) -> int:
        return self.commands().count("QUIT")

    @property
    def auth_attempts(self) -> list[tuple[str, str]]:
        with self._lock:
            return list(self._auth_attempts)

    async def wait_for(self, count: int, within: float = 5.0) -> list[Received]:
        """Wait (without blocking the caller's event loop) until `count` messages arrived."""
        deadline = time.monotonic() + within
        while len(messages := self.messages) < count:
            if time.monotonic() > deadline:
                raise AssertionError(f"{len(messages)} of {count} messages after {within} s")
            await asyncio.sleep(0.01)
        return messages

    async def wait_until(
        self, condition: Callable[[], bool], within: float = 5.0, what: str = "condition"
    ) -> None:
        """Wait until `condition()` (a check of the recorded state) is true."""
        deadline = time.monotonic() + within
        while not condition():
            if time.monotonic() > deadline:
                raise AssertionError(f"{what} not met after {within} s")
            await asyncio.sleep(0.01)

    # -- scripting

    def fail(
        self,
        times: int,
        code: int = 451,
        text: str = "4.3.0 Try again later",
        stage: Stage = "RCPT",
    ) -> None:
        """Answer the next `times` commands at `stage` with `code text`, then accept."""
        self._add(_Rule(stage, "reply", f"{code} {text}", times=times))

    def reject(
        self,
        address: str,
        code: int = 550,
        text: str = "5.1.1 No such user here",
        stage: Stage = "RCPT",
    ) -> None:
        """Refuse `address` at `stage` every time (DATA: messages that include it)."""
        self._add(_Rule(stage, "reply", f"{code} {text}", address=address))

    def drop(self, times: int = 1, stage: Stage = "DATA") -> None:
        """Hang up without replying, the next `times` times `stage` is reached."""
        self._add(_Rule(stage, "drop", times=times))

    def slow(self, seconds: float, stage: Stage = "DATA", times: int | None = None) -> None:
        """Wait `seconds` before replying at `stage` (every time, or the next `times`)."""
        self._add(_Rule(stage, "delay", seconds=seconds, times=times))

    def clear_script(self) -> None:
        with self._lock:
            self._rules.clear()

    def hang_up_all(self) -> None:
        """Close every open connection, waiting until the server has done so."""
        with self._lock:
            sessions = list(self._open)
        if not sessions:
            return
        done = threading.Event()

        def close_all() -> None:
            for session in sessions:
                if session.transport is not None:
                    session.transport.close()
            done.set()

        with contextlib.suppress(RuntimeError):  # the loop is already closed
            self._controller.loop.call_soon_threadsafe(close_all)
            done.wait(5)

    # -- inside the server thread

    def _add(self, rule: _Rule) -> None:
        with self._lock:
            self._rules.append(rule)

    def _take_rules(self, stage: Stage, addresses: Iterable[str]) -> list[_Rule]:
        """The rules that apply now, each used up once."""
        addresses = set(addresses)
        chosen = []
        with self._lock:
            for rule in self._rules:
                if rule.stage != stage or rule.times == 0:
                    continue
                if rule.address is not None and rule.address not in addresses:
                    continue
                if rule.times is not None:
                    rule.times -= 1
                chosen.append(rule)
        return chosen

    async def _scripted(self, stage: Stage, server: SMTP, addresses: Iterable[str]) -> str | None:
        """Run the rules for `stage`; the reply to send instead of accepting, if any."""
        for rule in self._take_rules(stage, addresses):
            if rule.action == "delay":
                await asyncio.sleep(rule.seconds)
            elif rule.action == "drop":
                assert server.transport is not None
                server.transport.close()
                # connection_lost() cancels this session's task, and with it this wait.
                await asyncio.get_running_loop().create_future()
            else:
                return rule.reply
        return None

    def _opened(self, session: _Session) -> int:
        with self._lock:
            if not self._started:
                return 0
            self._sessions += 1
            self._open.add(session)
            self._max_open = max(self._max_open, len(self._open))
            return self._sessions

    def _closed(self, session: _Session) -> None:
        with self._lock:
            self._open.discard(session)

    def _command(self, session: _Session, verb: str) -> None:
        with self._lock:
            self._commands.append((session.number, verb))

    def _received(self, envelope: Envelope, session: _Session) -> None:
        content = envelope.content
        assert isinstance(content, bytes)
        message = Received(
            envelope.mail_from or "", tuple(envelope.rcpt_tos), content, session.number
        )
        with self._lock:
            self._messages.append(message)

    def _authenticate(
        self,
        server: SMTP,
        session: Session,
        envelope: Envelope,
        mechanism: str,
        auth_data: Any,
    ) -> AuthResult:
        assert isinstance(auth_data, LoginPassword)
        login = auth_data.login.decode("utf-8", "replace")
        password = auth_data.password.decode("utf-8", "replace")
        with self._lock:
            self._auth_attempts.append((mechanism, login))
        ok = login in self.users and self.users[login] == password
        return AuthResult(success=ok, handled=False)


class _Handler:
    """aiosmtpd's hooks: scripted replies first, then accept and record."""

    def __init__(self, owner: SmtpServer) -> None:
        self.owner = owner

    async def handle_MAIL(
        self, server: SMTP, session: Session, envelope: Envelope, address: str, options: list
    ) -> str:
        if self.owner.users and not session.authenticated:
            return "530 5.7.0 Authentication required"
        reply = await self.owner._scripted("MAIL", server, ())
        if reply:
            return reply
        envelope.mail_from = address
        envelope.mail_options.extend(options)
        return "250 OK"

    async def handle_RCPT(
        self, server: SMTP, session: Session, envelope: Envelope, address: str, options: list
    ) -> str:
        reply = await self.owner._scripted("RCPT", server, (address,))
        if reply:
            return reply
        envelope.rcpt_tos.append(address)
        envelope.rcpt_options.extend(options)
        return "250 OK"

    async def handle_DATA(self, server: SMTP, session: Session, envelope: Envelope) -> str:
        reply = await self.owner._scripted("DATA", server, envelope.rcpt_tos)
        if reply:
            return reply
        assert isinstance(server, _Session)
        self.owner._received(envelope, server)
        return "250 2.0.0 OK queued"


class _Session(SMTP):
    """One connection: numbers itself, counts open connections and records each command."""

    def __init__(self, owner: SmtpServer, handler: _Handler, **options: Any) -> None:
        super().__init__(handler, **options)
        self.owner = owner
        self.number = 0
        self._counted = False
        # aiosmtpd dispatches commands through this table; wrapping its entries records
        # every verb without re-declaring each smtp_* method.
        self._smtp_methods = {
            verb: self._recording(verb, method) for verb, method in self._smtp_methods.items()
        }

    def _recording(
        self, verb: str, method: Callable[[str], Awaitable[None]]
    ) -> Callable[[str], Awaitable[None]]:
        async def run(arg: str) -> None:
            self.owner._command(self, verb)
            await method(arg)

        return run

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        first = self.transport is None  # called again once STARTTLS has finished
        super().connection_made(transport)
        if first:
            self.number = self.owner._opened(self)
            self._counted = True

    def connection_lost(self, error: Exception | None) -> None:
        super().connection_lost(error)
        if self._counted:
            self._counted = False
            self.owner._closed(self)


class _Controller(Controller):
    def __init__(self, owner: SmtpServer, handler: _Handler, **options: Any) -> None:
        super().__init__(handler, **options)
        self.owner = owner

    def factory(self) -> SMTP:
        return _Session(self.owner, self.handler, **self.SMTP_kwargs)

    def _trigger_server(self) -> None:
        # Bound to port 0: learn the real port before the controller probes it.
        assert self.server is not None
        self.port = self.server.sockets[0].getsockname()[1]
        super()._trigger_server()


@pytest.fixture
def smtp_server() -> Iterator[SmtpServer]:
    """A running plain SMTP server (no TLS, no AUTH) that accepts everything."""
    with SmtpServer() as server:
        yield server


@pytest.fixture
def smtp_server_factory() -> Iterator[Callable[..., SmtpServer]]:
    """Start servers with options (tls=, users=, auth_mechanisms=); all stop afterwards."""
    servers: list[SmtpServer] = []

    def start(**options: Any) -> SmtpServer:
        server = SmtpServer(**options).start()
        servers.append(server)
        return server

    yield start
    for server in servers:
        server.stop()
