"""The SMTP transport against a real aiosmtpd server on 127.0.0.1 (tests/smtpserver.py)."""

from __future__ import annotations

import asyncio
import logging
import socket
import time

import pytest
from smtpserver import SmtpServer

from syndicate.config.settings import SmtpSettings
from syndicate.errors import (
    DeliveryError,
    PermanentDeliveryError,
    TransientDeliveryError,
    TransportUnavailable,
)
from syndicate.mail.smtp import SmtpTransport

SENDER = "news@example.org"
PASSWORD = "correct horse battery staple"


def message(n: int, to: str = "reader@example.net") -> bytes:
    return (
        f"From: News <{SENDER}>\r\nTo: {to}\r\nSubject: Issue {n}\r\n"
        f"Message-ID: <issue-{n}@example.org>\r\n\r\nHello, number {n}.\r\n.starts with a dot\r\n"
    ).encode()


def reader(n: int) -> str:
    return f"reader{n}@example.net"


async def test_messages_share_one_connection(smtp_server: SmtpServer) -> None:
    async with smtp_server.transport(pool=4) as transport:
        for n in range(5):
            await transport.send(message(n, reader(n)), SENDER, reader(n))

    received = smtp_server.messages
    assert [m.rcpt_tos for m in received] == [(reader(n),) for n in range(5)]
    assert {m.envelope_from for m in received} == {SENDER}
    assert received[2].content == message(2, reader(2))  # byte for byte, dot-stuffing undone
    assert smtp_server.sessions == 1
    commands = smtp_server.commands()
    assert commands.count("EHLO") == 1  # no re-EHLO per message
    assert commands.count("MAIL") == 5
    assert "RSET" not in commands


async def test_concurrent_sends_use_at_most_pool_connections(smtp_server: SmtpServer) -> None:
    smtp_server.slow(0.05, stage="DATA")  # so that messages really overlap
    async with smtp_server.transport(pool=4) as transport:
        await asyncio.gather(*(transport.send(message(n), SENDER, reader(n)) for n in range(20)))

    assert sorted(smtp_server.recipients()) == sorted(reader(n) for n in range(20))
    assert smtp_server.max_open_sessions == 4
    assert smtp_server.sessions == 4  # each connection carried several messages


@pytest.mark.parametrize("mechanism", ["LOGIN", "PLAIN"])
async def test_starttls_and_auth(smtp_server_factory, mechanism: str) -> None:
    server = smtp_server_factory(
        tls="starttls", users={"news": PASSWORD}, auth_mechanisms=[mechanism]
    )
    async with server.transport(username="news", password=PASSWORD) as transport:
        await transport.send(message(1), SENDER, reader(1))
        await transport.send(message(2), SENDER, reader(2))

    assert server.recipients() == [reader(1), reader(2)]
    assert server.auth_attempts == [(mechanism, "news")]  # logged in once, then reused
    commands = server.commands()
    assert commands[:4] == ["EHLO", "STARTTLS", "EHLO", "AUTH"]


async def test_wrong_password_is_a_clear_transient_error(smtp_server_factory, caplog) -> None:
    caplog.set_level(logging.DEBUG)
    server = smtp_server_factory(tls="starttls", users={"news": PASSWORD})
    wrong = "not-the-password-42"
    async with server.transport(username="news", password=wrong) as transport:
        with pytest.raises(TransportUnavailable) as caught:
            await transport.send(message(1), SENDER, reader(1))
        attempts = len(server.auth_attempts)
        # Remembered: the next message fails at once instead of logging in again.
        with pytest.raises(TransportUnavailable) as again:
            await transport.send(message(2), SENDER, reader(2))

    text = str(caught.value)
    assert text.startswith(f"SMTP 127.0.0.1:{server.port}: authentication failed for user 'news'")
    assert "535" in text
    assert caught.value.code == 535
    assert str(again.value) == text
    assert len(server.auth_attempts) == attempts
    assert server.messages == []
    for shown in (text, repr(caught.value.args), caplog.text):
        assert wrong not in shown


async def test_starttls_required_but_not_offered(smtp_server: SmtpServer) -> None:
    transport = smtp_server.transport(tls="starttls", username="news", password=PASSWORD)
    async with transport:
        with pytest.raises(TransportUnavailable) as caught:
            await transport.send(message(1), SENDER, reader(1))

    text = str(caught.value)
    assert text.startswith(f"SMTP 127.0.0.1:{smtp_server.port}: ")
    assert "does not offer STARTTLS" in text
    commands = smtp_server.commands()
    assert "AUTH" not in commands  # credentials never went out in clear
    assert "MAIL" not in commands


async def test_implicit_tls(smtp_server_factory) -> None:
    server = smtp_server_factory(tls="implicit", users={"news": PASSWORD})
    async with server.transport(username="news", password=PASSWORD) as transport:
        await transport.send(message(1), SENDER, reader(1))
    assert server.recipients() == [reader(1)]
    assert "STARTTLS" not in server.commands()


async def test_untrusted_certificate_is_refused(smtp_server_factory) -> None:
    server = smtp_server_factory(tls="implicit")
    # The system's CAs do not know the test CA.
    async with SmtpTransport(server.settings()) as transport:
        with pytest.raises(TransportUnavailable, match="TLS handshake failed"):
            await transport.send(message(1), SENDER, reader(1))
    assert server.messages == []


async def test_4xx_is_transient_and_the_next_try_succeeds(smtp_server: SmtpServer) -> None:
    smtp_server.fail(1, code=451, text="4.7.1 Greylisted, come back later")
    async with smtp_server.transport() as transport:
        with pytest.raises(TransientDeliveryError) as caught:
            await transport.send(message(1), SENDER, reader(1))
        await transport.send(message(1), SENDER, reader(1))

    assert caught.value.code == 451
    assert f"<{reader(1)}> refused: 451 4.7.1 Greylisted" in str(caught.value)
    assert smtp_server.recipients() == [reader(1)]
    assert smtp_server.sessions == 1  # the refusal did not cost the connection


@pytest.mark.parametrize(("stage", "code"), [("RCPT", 550), ("DATA", 554)], ids=["rcpt", "data"])
async def test_5xx_is_permanent_and_names_the_recipient(
    smtp_server: SmtpServer, stage, code: int
) -> None:
    gone = "gone@example.net"
    smtp_server.reject(gone, code=code, text="5.1.1 No such user", stage=stage)
    async with smtp_server.transport() as transport:
        with pytest.raises(PermanentDeliveryError) as caught:
            await transport.send(message(1, gone), SENDER, gone)
        # A refused message does not poison the connection for the next one.
        await transport.send(message(2), SENDER, reader(2))

    assert caught.value.code == code
    assert caught.value.permanent
    text = str(caught.value)
    assert text.startswith(f"SMTP 127.0.0.1:{smtp_server.port}: ")
    assert f"<{gone}>" in text
    assert str(code) in text
    assert smtp_server.recipients() == [reader(2)]
    assert smtp_server.sessions == 1
    assert "RSET" in smtp_server.commands()


async def test_our_sender_refused_is_the_transport_unavailable_not_a_bounce(
    smtp_server: SmtpServer,
) -> None:
    smtp_server.fail(1, code=553, text="5.7.1 Sender not allowed", stage="MAIL")
    async with smtp_server.transport() as transport:
        with pytest.raises(TransportUnavailable) as caught:
            await transport.send(message(1), SENDER, reader(1))
        await transport.send(message(2), SENDER, reader(2))  # the connection is still good
    assert not caught.value.permanent and caught.value.code == 553
    assert f"sender <{SENDER}> refused (sending to <{reader(1)}>): 553" in str(caught.value)
    assert smtp_server.recipients() == [reader(2)]


async def test_drop_mid_data_is_transient_and_a_new_connection_follows(
    smtp_server: SmtpServer,
) -> None:
    smtp_server.drop(1, stage="DATA")
    async with smtp_server.transport() as transport:
        with pytest.raises(TransientDeliveryError) as caught:
            await transport.send(message(1), SENDER, reader(1))
        await transport.send(message(2), SENDER, reader(2))

    assert "connection lost" in str(caught.value)
    assert f"<{reader(1)}>" in str(caught.value)
    assert smtp_server.recipients() == [reader(2)]
    assert smtp_server.sessions == 2


async def until_closed(transport: SmtpTransport) -> None:
    """Wait (up to 10 s) until every idle connection of `transport` looks closed."""
    for _ in range(1000):
        if not any(smtp.is_connected for smtp in transport._idle):
            return
        await asyncio.sleep(0.01)
    raise AssertionError("the dropped connection still looks open")


@pytest.mark.parametrize("noticed", [True, False], ids=["noticed-idle", "found-on-use"])
async def test_connection_dropped_while_idle_is_replaced(
    smtp_server: SmtpServer, noticed: bool
) -> None:
    async with smtp_server.transport() as transport:
        await transport.send(message(1), SENDER, reader(1))
        smtp_server.hang_up_all()  # as a server's idle timeout does
        if noticed:  # the event loop sees the EOF before the next send: the idle one closes
            await until_closed(transport)
        # Otherwise the next MAIL hits the dead connection: one retry on a fresh one.
        await transport.send(message(2), SENDER, reader(2))

    assert smtp_server.recipients() == [reader(1), reader(2)]
    assert smtp_server.sessions == 2


async def test_slow_server_times_out(smtp_server: SmtpServer) -> None:
    # A reply 3 s late against a 0.3 s timeout: the message says which timeout ended it.
    smtp_server.slow(3.0, stage="DATA", times=1)
    async with smtp_server.transport(timeout=0.3) as transport:
        with pytest.raises(TransientDeliveryError, match=r"no reply within 0\.3 s") as caught:
            await transport.send(message(1), SENDER, reader(1))
        await transport.send(message(2), SENDER, reader(2))

    assert f"<{reader(1)}>" in str(caught.value)
    assert smtp_server.recipients() == [reader(2)]
    assert smtp_server.sessions == 2  # the timed-out connection was not reused


async def test_connection_refused_makes_the_transport_unavailable() -> None:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    settings = SmtpSettings(host="127.0.0.1", port=port, tls="none")
    async with SmtpTransport(settings) as transport:
        with pytest.raises(TransportUnavailable) as caught:
            await transport.send(message(1), SENDER, reader(1))
    assert str(caught.value).startswith(f"SMTP 127.0.0.1:{port}: cannot connect")


async def test_rate_limit_spaces_messages(smtp_server: SmtpServer) -> None:
    async with smtp_server.transport(pool=4, rate=20) as transport:
        started = time.monotonic()
        await asyncio.gather(*(transport.send(message(n), SENDER, reader(n)) for n in range(6)))
        elapsed = time.monotonic() - started
    assert len(smtp_server.messages) == 6
    assert elapsed >= 0.24  # 5 gaps of 1/20 s


async def test_rate_limit_with_an_injected_clock(smtp_server: SmtpServer) -> None:
    now = 100.0
    slept: list[float] = []

    def clock() -> float:
        return now

    async def sleep(seconds: float) -> None:
        nonlocal now
        slept.append(round(seconds, 6))
        now += seconds

    transport = SmtpTransport(smtp_server.settings(rate=4), clock=clock, sleep=sleep)
    async with transport:
        for n in range(4):
            await transport.send(message(n), SENDER, reader(n))
        now += 10  # idle for a while: no burst is saved up, the next one goes at once
        await transport.send(message(4), SENDER, reader(4))
    assert slept == [0.25, 0.25, 0.25]
    assert len(smtp_server.messages) == 5


async def test_close_quits_every_connection(smtp_server: SmtpServer) -> None:
    smtp_server.slow(0.05, stage="DATA")
    transport = smtp_server.transport(pool=3)
    await asyncio.gather(*(transport.send(message(n), SENDER, reader(n)) for n in range(6)))
    assert smtp_server.sessions == 3
    await transport.close()

    assert smtp_server.quits == 3
    await smtp_server.wait_until(lambda: smtp_server.open_sessions == 0, what="all closed")
    with pytest.raises(TransientDeliveryError, match="closed"):
        await transport.send(message(9), SENDER, reader(9))
    await transport.close()  # twice is fine


async def test_close_lets_messages_in_flight_finish(smtp_server: SmtpServer) -> None:
    smtp_server.slow(0.2, stage="DATA")
    transport = smtp_server.transport(pool=1)
    in_flight = asyncio.create_task(transport.send(message(1), SENDER, reader(1)))
    waiting = asyncio.create_task(transport.send(message(2), SENDER, reader(2)))
    await smtp_server.wait_until(lambda: "DATA" in smtp_server.commands(), what="in flight")
    await transport.close()

    await in_flight  # delivered, not cut off
    with pytest.raises(TransientDeliveryError, match="closed"):
        await waiting  # never started: the caller will retry it later
    assert smtp_server.recipients() == [reader(1)]
    assert smtp_server.quits == 1


async def test_cancelled_send_does_not_leave_a_broken_connection(smtp_server: SmtpServer) -> None:
    smtp_server.slow(2.0, stage="DATA", times=1)
    async with smtp_server.transport(pool=1) as transport:
        task = asyncio.create_task(transport.send(message(1), SENDER, reader(1)))
        await smtp_server.wait_until(lambda: "DATA" in smtp_server.commands(), what="in DATA")
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
        await transport.send(message(2), SENDER, reader(2))
    assert smtp_server.recipients() == [reader(2)]
    assert smtp_server.sessions == 2


async def test_non_ascii_address_uses_smtputf8(smtp_server: SmtpServer) -> None:
    async with smtp_server.transport() as transport:
        await transport.send(message(1, "zoë@example.net"), SENDER, "zoë@example.net")
    assert smtp_server.recipients() == ["zoë@example.net"]


async def test_address_that_cannot_be_sent_is_permanent(smtp_server: SmtpServer) -> None:
    async with smtp_server.transport() as transport:
        with pytest.raises(PermanentDeliveryError, match="cannot send to"):
            await transport.send(message(1), SENDER, "evil@example.net\r\nRCPT TO:<x@y>")
        await transport.send(message(2), SENDER, reader(2))
    assert smtp_server.recipients() == [reader(2)]


def test_errors_are_delivery_errors() -> None:
    assert issubclass(TransientDeliveryError, DeliveryError)
    assert not TransientDeliveryError("x").permanent


async def test_8bitmime_is_asked_once_and_announced_on_mail(smtp_server: SmtpServer) -> None:
    async with smtp_server.transport() as transport:
        assert await transport.accepts_8bit()  # aiosmtpd offers 8BITMIME
        assert await transport.accepts_8bit()
        await transport.send(message(1), SENDER, reader(1))
    assert smtp_server.sessions == 1  # the question reused the pool's connection
    assert smtp_server.recipients() == [reader(1)]
