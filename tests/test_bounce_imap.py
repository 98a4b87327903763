"""ImapMailbox against a real Dovecot (tests/imapserver.py), and against hostile fake servers.

Dovecot covers what a real mailbox does in each TLS mode: listing, fetching without \\Seen,
moving (creating the folder), deleting, refusals. The fake servers (a socket and a script,
below) play what no sane server does: absurd literals, garbage, silence, echoed passwords.
"""

from __future__ import annotations

import socket
import threading
import time
import tracemalloc
from collections.abc import Callable, Iterator
from contextlib import contextmanager

import pytest
import trustme
from imapserver import ImapServer

from syndicate.bounces.imap import FetchedMail, ImapMailbox, MailboxUnavailable, _mailbox_name

TLS_MODES = ["none", "starttls", "implicit"]


def bounce(number: int, body: bytes = b"") -> bytes:
    return (
        b"From: MAILER-DAEMON@mx.example.net\r\n"
        b"To: news@example.org\r\n"
        b"Subject: Undelivered Mail Returned to Sender %d\r\n"
        b"\r\n"
        b"This is bounce number %d.\r\n" % (number, number)
    ) + body


def mailbox(server: ImapServer, max_size: int = 25_000_000, **overrides) -> ImapMailbox:
    return ImapMailbox(
        server.settings(**overrides),
        server.password,
        tls_context=server.client_tls_context(),
        max_size=max_size,
    )


@pytest.fixture(params=TLS_MODES)
def server(request: pytest.FixtureRequest, imap_server_factory) -> ImapServer:
    return imap_server_factory(tls=request.param)


# -- reading and finishing, in every TLS mode


def test_reads_moves_and_creates_the_processed_folder(server: ImapServer) -> None:
    for number in range(3):
        server.append(bounce(number))
    assert "Processed" not in server.folders()
    sessions = len(server.logouts(4))  # the four sessions above

    with mailbox(server) as box:
        uids = box.uids(10)
        assert len(uids) == 3
        assert uids == sorted(uids)
        fetched = [box.fetch(uid) for uid in uids]
        assert fetched == [FetchedMail(uid, bounce(n)) for n, uid in enumerate(uids)]
        box.done(uids[0])
        box.done(uids[1])
        assert box.uids(10) == [uids[2]]

    # One MOVE each: Dovecot counts no \\Deleted flag and no EXPUNGE for the session.
    assert " deleted=0 expunged=0 " in server.logouts(sessions + 1)[sessions]
    assert "Processed" in server.folders()
    assert server.messages("Processed") == [bounce(0), bounce(1)]
    assert server.messages("INBOX") == [bounce(2)]


def test_fetch_does_not_mark_seen(server: ImapServer) -> None:
    server.append(bounce(1))
    with mailbox(server) as box:
        (uid,) = box.uids(10)
        assert box.fetch(uid) is not None
    assert "\\Seen" not in server.flags("INBOX")[0]
    with mailbox(server) as box:
        box.done(uid)
    # Moved as it was: a person looking at Processed sees it was never opened by hand.
    assert "\\Seen" not in server.flags("Processed")[0]


def test_delete_removes_the_message(server: ImapServer) -> None:
    server.append(bounce(1))
    server.append(bounce(2))
    with mailbox(server, processed="delete") as box:
        first, second = box.uids(10)
        box.done(first)
        assert box.uids(10) == [second]
    assert server.messages("INBOX") == [bounce(2)]
    assert "Processed" not in server.folders()


def test_a_message_over_max_size_is_cut_and_still_moved_whole(server: ImapServer) -> None:
    big = bounce(1, b"x" * 5000 + b"\r\n")
    server.append(big)
    with mailbox(server, max_size=1000) as box:
        (uid,) = box.uids(10)
        mail = box.fetch(uid)
        assert mail == FetchedMail(uid, big[:1000])
        box.done(uid)
    assert server.messages("Processed") == [big]


def test_login_refused_names_the_user_not_the_password(server: ImapServer) -> None:
    box = ImapMailbox(
        server.settings(), "not-the-password", tls_context=server.client_tls_context()
    )
    with pytest.raises(MailboxUnavailable) as caught:
        box.__enter__()
    message = str(caught.value)
    assert message.startswith(f"login refused for user 'bounces' at 127.0.0.1:{server.port}")
    assert "not-the-password" not in message
    assert server.password not in message
    assert "\n" not in message


def test_missing_folder_is_named(server: ImapServer) -> None:
    with pytest.raises(MailboxUnavailable, match=r"folder 'Bounces 2026' of user 'bounces'"):
        mailbox(server, folder="Bounces 2026").__enter__()


def test_done_twice_or_on_a_vanished_uid_is_harmless(server: ImapServer) -> None:
    server.append(bounce(1))
    server.append(bounce(2))
    with mailbox(server) as box:
        first, second = box.uids(10)
        box.done(first)
        box.done(first)
        box.done(second + 1000)
        assert box.fetch(first) is None
        assert box.fetch(second + 1000) is None
        assert box.uids(10) == [second]
    with mailbox(server, processed="delete") as box:
        box.done(first)
        box.done(second + 1000)
    assert server.messages("Processed") == [bounce(1)]
    assert server.messages("INBOX") == [bounce(2)]


# -- uids: order, limit, \Deleted


def test_uids_are_oldest_first_limited_and_skip_deleted(imap_server: ImapServer) -> None:
    for number in range(7):
        flags = ["\\Deleted"] if number in (1, 2) else []
        imap_server.append(bounce(number), flags=flags)
    with mailbox(imap_server) as box:
        everything = box.uids(100)
        assert len(everything) == 5
        # Windows of `limit` sequence numbers: the first window holds two flagged messages,
        # so the answer needs a second window and still starts with the oldest.
        assert box.uids(3) == everything[:3]
        assert box.uids(1) == everything[:1]
        assert box.uids(0) == []
        raws = [box.fetch(uid).raw for uid in everything]  # type: ignore[union-attr]
    assert raws == [bounce(n) for n in (0, 3, 4, 5, 6)]


def test_uids_sees_mail_that_arrived_during_the_session(imap_server: ImapServer) -> None:
    with mailbox(imap_server) as box:
        assert box.uids(10) == []
        imap_server.append(bounce(1))
        assert len(box.uids(10)) == 1


# -- servers without MOVE or UIDPLUS (Dovecot announcing less than it has)

BASE_CAPABILITIES = "IMAP4rev1 SASL-IR LITERAL+ ID ENABLE IDLE NAMESPACE"


def test_without_move_it_copies_flags_and_expunges(imap_server_factory) -> None:
    server = imap_server_factory(capabilities=BASE_CAPABILITIES + " UIDPLUS")
    server.append(bounce(1))
    server.append(bounce(2))
    sessions = len(server.logouts(2))
    with mailbox(server) as box:
        assert "MOVE" not in box._capabilities
        first, second = box.uids(10)
        box.done(first)
        box.done(first)
        assert box.uids(10) == [second]
    # COPY, \\Deleted and UID EXPUNGE (once: the second done found nothing to copy).
    assert " deleted=1 expunged=1 " in server.logouts(sessions + 1)[sessions]
    assert server.messages("Processed") == [bounce(1)]
    assert server.messages("INBOX") == [bounce(2)]


def test_without_uidplus_the_message_stays_flagged_deleted(imap_server_factory) -> None:
    server = imap_server_factory(capabilities=BASE_CAPABILITIES)
    server.append(bounce(1))
    server.append(bounce(2), flags=["\\Deleted"])  # another client's; must survive
    with mailbox(server, processed="delete") as box:
        (uid,) = box.uids(10)
        box.done(uid)
        assert box.uids(10) == []
    assert server.messages("INBOX") == [bounce(1), bounce(2)]
    assert all("\\Deleted" in flags for flags in server.flags("INBOX"))


# -- names, passwords, configuration


def test_non_ascii_folder_and_password(imap_server_factory) -> None:
    server = imap_server_factory(password="pässwörd-ü")
    server.append(bounce(1))
    with mailbox(server, processed_folder="Traité 台北") as box:
        (uid,) = box.uids(10)
        box.done(uid)
    assert "Trait&AOk- &U,BTFw-" in server.folders()
    assert server.messages("Trait&AOk- &U,BTFw-") == [bounce(1)]


def test_modified_utf7_follows_rfc_3501() -> None:
    assert _mailbox_name("~peter/mail/台北/日本語") == '"~peter/mail/&U,BTFw-/&ZeVnLIqe-"'
    assert _mailbox_name("A&B") == '"A&-B"'
    assert _mailbox_name('say "hi" \\') == '"say \\"hi\\" \\\\"'


def test_no_password_names_the_variable(imap_server: ImapServer) -> None:
    box = ImapMailbox(imap_server.settings(password_env="BOUNCE_PW"), None)
    with pytest.raises(MailboxUnavailable, match="no password \\(set BOUNCE_PW\\)"):
        box.__enter__()


def test_processed_folder_must_differ_from_the_folder(imap_server: ImapServer) -> None:
    with pytest.raises(MailboxUnavailable, match="read again forever"):
        mailbox(imap_server, processed_folder="INBOX").__enter__()
    # Deleting needs no second folder.
    with mailbox(imap_server, processed_folder="INBOX", processed="delete") as box:
        assert box.uids(5) == []


def test_use_outside_the_with_block_is_a_programming_error(imap_server: ImapServer) -> None:
    box = mailbox(imap_server)
    with pytest.raises(RuntimeError):
        box.uids(1)
    with box:
        pass
    with pytest.raises(RuntimeError):
        box.fetch(1)


def test_bad_uids_are_refused(imap_server: ImapServer) -> None:
    with mailbox(imap_server) as box:
        for bad in (0, -1, 2**32, True):
            with pytest.raises(ValueError, match="not an IMAP UID"):
                box.fetch(bad)
            with pytest.raises(ValueError, match="not an IMAP UID"):
                box.done(bad)


def test_exit_does_not_raise_when_the_server_is_gone(imap_server_factory) -> None:
    server = imap_server_factory()
    server.append(bounce(1))
    with mailbox(server) as box:
        server._terminate()
        with pytest.raises(MailboxUnavailable, match=f"127.0.0.1:{server.port}"):
            box.uids(10)
    # Leaving the block above raised nothing, although LOGOUT could not be sent.


# -- connections and TLS


def test_closed_port_fails_quickly() -> None:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]  # bound, never listening: connections are refused
        from syndicate.config.settings import ImapSettings

        settings = ImapSettings(host="127.0.0.1", port=port, tls="none", username="u")
        started = time.monotonic()
        with pytest.raises(MailboxUnavailable, match=f"^cannot connect to 127.0.0.1:{port}: "):
            ImapMailbox(settings, "pw").__enter__()
    assert time.monotonic() - started < 2


def test_starttls_not_offered_refuses_to_log_in(imap_server: ImapServer) -> None:
    box = mailbox(imap_server, tls="starttls")
    with pytest.raises(MailboxUnavailable, match="does not offer STARTTLS; not logging in"):
        box.__enter__()
    time.sleep(0.2)  # Dovecot logs the disconnection when it notices it
    assert "Login: user=" not in imap_server.log()
    assert "no auth attempts" in imap_server.log()


@pytest.mark.parametrize("tls", ["starttls", "implicit"])
def test_untrusted_certificate_is_a_tls_error(imap_server_factory, tls: str) -> None:
    server = imap_server_factory(tls=tls)
    import ssl

    stranger = ssl.create_default_context()
    trustme.CA().configure_trust(stranger)
    box = ImapMailbox(server.settings(), server.password, tls_context=stranger)
    with pytest.raises(MailboxUnavailable) as caught:
        box.__enter__()
    assert str(caught.value).startswith(f"TLS with 127.0.0.1:{server.port} failed: ")
    assert "CERTIFICATE_VERIFY_FAILED" in str(caught.value)
    assert "Login: user=" not in server.log()


def test_implicit_tls_against_a_plain_server_fails_cleanly(imap_server: ImapServer) -> None:
    with pytest.raises(MailboxUnavailable, match=f"^TLS with 127.0.0.1:{imap_server.port} failed"):
        mailbox(imap_server, tls="implicit").__enter__()


# -- hostile servers: a socket and a script


def _login_script(tag: str, command: str) -> bytes | None:
    """What a minimal server answers; None: the test's script did not say."""
    replies = {
        "CAPABILITY": b"* CAPABILITY IMAP4rev1\r\n%s OK done\r\n",
        "LOGIN": b"%s OK logged in\r\n",
        "SELECT": b"* 1 EXISTS\r\n* OK [UIDVALIDITY 1] ok\r\n%s OK [READ-WRITE] selected\r\n",
        "LOGOUT": b"* BYE bye\r\n%s OK bye\r\n",
    }
    reply = replies.get(command)
    return None if reply is None else reply % tag.encode()


@contextmanager
def fake_server(
    greeting: bytes = b"* OK fake ready\r\n",
    script: Callable[[str, str, bytes], bytes | None] | None = None,
) -> Iterator[int]:
    """A one-connection server: greets, then answers each command with script(tag, verb, line)
    or the minimal login script; returning b"" stops answering (and keeps the socket open)."""
    listener = socket.create_server(("127.0.0.1", 0))
    stop = threading.Event()

    def serve() -> None:
        listener.settimeout(5)
        try:
            conn, _ = listener.accept()
        except OSError:
            return
        with conn:
            conn.sendall(greeting)
            reader = conn.makefile("rb")
            while not stop.is_set():
                try:
                    line = reader.readline()
                except OSError:
                    return
                if not line:
                    return
                tag, _, rest = line.decode(errors="replace").partition(" ")
                words = rest.split()
                verb = words[0].upper() if words else ""
                if verb == "UID" and len(words) > 1:
                    verb = "UID " + words[1].upper()
                reply = script(tag, verb, line) if script else None
                if reply is None:
                    reply = _login_script(tag, verb) or b"%s BAD what\r\n" % tag.encode()
                if reply == b"":
                    stop.wait(10)
                    return
                try:
                    conn.sendall(reply)
                except OSError:
                    return

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    try:
        yield listener.getsockname()[1]
    finally:
        stop.set()
        listener.close()
        thread.join(5)


def fake_settings(port: int, **overrides):
    from syndicate.config.settings import ImapSettings

    values = {"host": "127.0.0.1", "port": port, "tls": "none", "username": "u", "timeout": 1.0}
    values.update(overrides)
    return ImapSettings(**values)


def test_an_absurd_literal_in_the_greeting_takes_no_memory() -> None:
    tracemalloc.start()
    try:
        with fake_server(greeting=b"* OK {2000000000}\r\n") as port:
            started = time.monotonic()
            with pytest.raises(MailboxUnavailable, match="did not greet as an IMAP server"):
                ImapMailbox(fake_settings(port), "pw", max_size=1000).__enter__()
            _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert peak < 20_000_000
    assert time.monotonic() - started < 1


def test_an_absurd_literal_in_a_fetch_takes_no_memory() -> None:
    def script(tag: str, verb: str, line: bytes) -> bytes | None:
        if verb == "UID FETCH":
            return b"* 1 FETCH (UID 1 RFC822.SIZE 5 BODY[]<0> {3000000000}\r\nabc"
        return None

    tracemalloc.start()
    try:
        with fake_server(script=script) as port, ImapMailbox(fake_settings(port), "pw") as box:
            with pytest.raises(MailboxUnavailable, match="announced 3000000000 bytes"):
                box.fetch(1)
            _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert peak < 20_000_000


def test_an_endless_answer_is_cut_at_the_budget() -> None:
    flood = b"* OK " + b"x" * 1000 + b"\r\n"

    def script(tag: str, verb: str, line: bytes) -> bytes | None:
        if verb == "UID FETCH":
            return flood * 5000  # 5 MB of chatter and never a tagged reply
        return None

    with (
        fake_server(script=script) as port,
        ImapMailbox(fake_settings(port, timeout=5.0), "pw", max_size=1000) as box,
        pytest.raises(MailboxUnavailable, match="sent more than expected"),
    ):
        box.fetch(1)


def test_garbage_greeting() -> None:
    with (
        fake_server(greeting=b"\x00\xff garbage, not IMAP\r\n") as port,
        pytest.raises(MailboxUnavailable, match=f"127.0.0.1:{port}"),
    ):
        ImapMailbox(fake_settings(port), "pw").__enter__()


def test_a_silent_server_times_out() -> None:
    with fake_server(greeting=b"") as port:
        started = time.monotonic()
        with pytest.raises(MailboxUnavailable, match=f"127.0.0.1:{port}"):
            ImapMailbox(fake_settings(port, timeout=0.5), "pw").__enter__()
    assert time.monotonic() - started < 3


def test_a_server_that_stops_answering_mid_session_times_out() -> None:
    def script(tag: str, verb: str, line: bytes) -> bytes | None:
        return b"" if verb == "UID SEARCH" else None

    with (
        fake_server(script=script) as port,
        ImapMailbox(fake_settings(port, timeout=0.5), "pw") as box,
    ):
        started = time.monotonic()
        with pytest.raises(MailboxUnavailable, match="SEARCH"):
            box.uids(10)
        assert time.monotonic() - started < 3


def test_a_password_echoed_by_the_server_is_hidden() -> None:
    def script(tag: str, verb: str, line: bytes) -> bytes | None:
        if verb == "LOGIN":
            return b"%s NO you said %s\r\n" % (tag.encode(), line.split()[-1])
        return None

    with fake_server(script=script) as port, pytest.raises(MailboxUnavailable) as caught:
        ImapMailbox(fake_settings(port), "hunter2-secret").__enter__()
    assert "hunter2-secret" not in str(caught.value)
    assert str(caught.value).startswith("login refused for user 'u'")


def test_preauth_before_starttls_is_refused() -> None:
    greeting = b"* PREAUTH [CAPABILITY IMAP4rev1 STARTTLS] welcome, no password needed\r\n"
    with (
        fake_server(greeting=greeting) as port,
        pytest.raises(MailboxUnavailable, match="PREAUTH"),
    ):
        ImapMailbox(fake_settings(port, tls="starttls"), "pw").__enter__()


def test_a_login_with_line_breaks_is_not_sent() -> None:
    seen: list[bytes] = []

    def script(tag: str, verb: str, line: bytes) -> bytes | None:
        seen.append(line)
        return None

    with (
        fake_server(script=script) as port,
        pytest.raises(MailboxUnavailable, match="characters LOGIN cannot carry"),
    ):
        ImapMailbox(fake_settings(port), "pw\r\nA1 DELETE INBOX").__enter__()
    assert not any(b"LOGIN" in line or b"DELETE" in line for line in seen)


def test_fetch_ignores_other_messages_data() -> None:
    def script(tag: str, verb: str, line: bytes) -> bytes | None:
        if verb == "UID FETCH":
            return (
                b"* 2 FETCH (UID 9 BODY[]<0> {5}\r\nother)\r\n"
                b"* 1 FETCH (FLAGS (\\Seen))\r\n%s OK done\r\n" % tag.encode()
            )
        return None

    with fake_server(script=script) as port, ImapMailbox(fake_settings(port), "pw") as box:
        assert box.fetch(1) is None


def test_a_missing_dovecot_fails_the_test_saying_how_to_install_it(monkeypatch) -> None:
    from pathlib import Path

    import imapserver

    monkeypatch.setattr(imapserver, "DOVECOT", Path("/nonexistent/sbin/dovecot"))
    with pytest.raises(pytest.fail.Exception, match="scripts/test installs"):
        ImapServer()


def test_a_dovecot_that_cannot_start_fails_the_test_with_its_log() -> None:
    class Broken(ImapServer):
        def _write_config(self) -> None:
            super()._write_config()
            with (self._dir / "dovecot.conf").open("a") as config:
                config.write("no_such_setting_anywhere = 1\n")

    server = Broken()
    started = time.monotonic()
    with pytest.raises(pytest.fail.Exception, match=r"(?s)did not start.*no_such_setting_anywhere"):
        server.start()
    assert time.monotonic() - started < 5
    assert not server._dir.exists()  # cleaned up all the same
