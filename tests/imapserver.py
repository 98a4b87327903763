"""A real IMAP server (Debian's Dovecot) on 127.0.0.1 for tests, one throw-away instance each.

    def test_poll(imap_server):
        imap_server.append(b"From: mailer-daemon@example.net\\r\\n\\r\\nbounced\\r\\n")
        with ImapMailbox(imap_server.settings(), imap_server.password,
                         tls_context=imap_server.client_tls_context()) as mailbox:
            ...
        assert imap_server.messages("Processed") == [...]

    def test_tls(imap_server_factory):
        server = imap_server_factory(tls="implicit")

Why Dovecot and not a Python fake: MOVE, UIDPLUS, TRYCREATE, partial fetches, flags and the
TLS modes are what a real mailbox server does, and a fake would only repeat what the client
under test believes. Each server is ``dovecot -F -c <dir>/dovecot.conf`` in the foreground,
with everything it writes (sockets, state, log, mail) in a fresh directory removed at
teardown, on a port the OS picked, so neither an installed-but-stopped system Dovecot nor
one running on 143/993 matters: the system's config and service are never read or touched.

Dovecot and root. The tests run as root in CI, and Dovecot refuses two things there: its
login process must not run as root ("This process must not be run as root") and mail must
not be accessed with UID 0 ("userdb returned 0 as uid"). So as root the login processes run
as ``dovenull`` (or ``nobody``) and the mail user is ``nobody``, owning the mail folder; the
directory is 0711 so that user can reach its home. As any other user, every process runs as
that user (Dovecot cannot switch users then), and no process chroots (only root may).

    host, port, user, password      where and how to log in (one user, a random password)
    tls                             "none" (plaintext login allowed), "starttls" (offered and
                                    required before login) or "implicit" (TLS from the start)
    settings(**overrides)           ImapSettings for this server (tls as the server has it)
    client_tls_context()            a client context trusting the test CA (tests/smtpserver.py's)
    append(raw, folder="INBOX", flags=())   put a message in (creating the folder when missing)
    messages(folder="INBOX")        the raw messages in that folder, oldest first
    flags(folder="INBOX")           each message's flags, oldest first
    folders()                       every folder's name
    log()                           Dovecot's log so far
    logouts(count=0)                each finished session's "Logged out ... deleted=N
                                    expunged=N" line, waiting up to 3 s for `count` of them

append/messages/flags/folders use a connection of their own (imaplib), reading with
BODY.PEEK so that looking never sets \\Seen. If /usr/sbin/dovecot is missing the fixture
fails (no silent skip): scripts/test installs Debian's dovecot-imapd.
"""

from __future__ import annotations

import contextlib
import grp
import imaplib
import os
import pwd
import re
import secrets
import shutil
import signal
import socket
import ssl
import subprocess
import tempfile
import time
from collections.abc import Callable, Iterable, Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal, Self

import pytest
from smtpserver import certificate_authority
from smtpserver import client_tls_context as _client_tls_context

if TYPE_CHECKING:
    from syndicate.config.settings import ImapSettings

Tls = Literal["none", "starttls", "implicit"]
DOVECOT = Path("/usr/sbin/dovecot")
START_WITHIN = 15.0  # seconds Dovecot gets to answer on its port
STOP_WITHIN = 5.0


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def _quote(name: str) -> str:
    # Test folder names are ASCII; quoting keeps spaces and the like in one argument.
    return '"' + name.replace("\\", "\\\\").replace('"', '\\"') + '"'


class ImapServer:
    """One Dovecot instance on 127.0.0.1 with one user; see the module doc."""

    def __init__(
        self,
        *,
        tls: Tls = "none",
        user: str = "bounces",
        password: str | None = None,
        capabilities: str | None = None,
    ) -> None:
        if not DOVECOT.exists():
            pytest.fail(
                f"{DOVECOT} is missing: the IMAP tests need Debian's dovecot-imapd, which "
                "scripts/test installs (as root: apt-get install dovecot-imapd)",
                pytrace=False,
            )
        self.tls: Tls = tls
        # What the server announces after login (Dovecot's imap_capability), to play a server
        # without MOVE or UIDPLUS; None: Dovecot's own list.
        self.capabilities = capabilities
        self.host = "127.0.0.1"
        self.port = 0
        self.user = user
        self.password = password or secrets.token_urlsafe(12)
        self._dir = Path(tempfile.mkdtemp(prefix="syndicate-dovecot-"))
        self._process: subprocess.Popen[bytes] | None = None

    # -- life cycle

    def start(self) -> Self:
        try:
            for attempt in range(3):
                self.port = _free_port()
                self._write_config()
                if self._launch():
                    return self
                # Another process took the port between _free_port and Dovecot's bind: retry.
                if "Address already in use" not in self.log() or attempt == 2:
                    break
            pytest.fail(f"dovecot did not start; its log:\n{self.log()}", pytrace=False)
        except BaseException:
            self.stop()
            raise

    def stop(self) -> None:
        self._terminate()
        shutil.rmtree(self._dir, ignore_errors=True)

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(self, *exc_info: object) -> None:
        self.stop()

    def _write_config(self) -> None:
        root = os.geteuid() == 0
        me = pwd.getpwuid(os.geteuid()).pw_name
        if root:
            mail_user = pwd.getpwnam("nobody")
            login_user = "dovenull" if _user_exists("dovenull") else "nobody"
            self._dir.chmod(0o711)  # the mail user must reach its home below it
        else:
            mail_user = pwd.getpwuid(os.geteuid())
            login_user = me
        home = self._dir / "home"
        home.mkdir(exist_ok=True)
        for name in ("run", "state"):
            (self._dir / name).mkdir(exist_ok=True)
        if root:
            os.chown(home, mail_user.pw_uid, mail_user.pw_gid)
        (self._dir / "users").write_text(f"{self.user}:{{PLAIN}}{self.password}\n", "utf-8")
        ssl_lines = "ssl = no\n"
        if self.tls != "none":
            issued = certificate_authority().issue_cert("127.0.0.1", "localhost")
            issued.private_key_and_cert_chain_pem.write_to_path(str(self._dir / "cert.pem"))
            issued.private_key_pem.write_to_path(str(self._dir / "key.pem"))
            ssl_lines = (
                "ssl = required\n"
                f"ssl_cert = <{self._dir / 'cert.pem'}\n"
                f"ssl_key = <{self._dir / 'key.pem'}\n"
            )
        capability_line = ""
        if self.capabilities is not None:
            capability_line = f"imap_capability = {self.capabilities}\n"
        imap_port, imaps_port = (0, self.port) if self.tls == "implicit" else (self.port, 0)
        (self._dir / "dovecot.conf").write_text(
            f"""\
# A throw-away test instance (tests/imapserver.py); nothing of /etc/dovecot is read.
protocols = imap
listen = 127.0.0.1
base_dir = {self._dir / "run"}
state_dir = {self._dir / "state"}
log_path = {self._dir / "dovecot.log"}
info_log_path = {self._dir / "dovecot.log"}
default_internal_user = {me}
default_internal_group = {grp.getgrgid(os.getegid()).gr_name}
default_login_user = {login_user}
first_valid_uid = 1
{ssl_lines}
# Plaintext login only where there is no TLS at all ("none"); with starttls it is refused
# until STARTTLS (LOGINDISABLED), as a well-configured server does.
disable_plaintext_auth = {"no" if self.tls == "none" else "yes"}
auth_mechanisms = plain login
# A refused login answers at once instead of after 2 s (the default slows password guessing).
auth_failure_delay = 0
{capability_line}passdb {{
  driver = passwd-file
  args = {self._dir / "users"}
}}
userdb {{
  driver = static
  args = uid={mail_user.pw_uid} gid={mail_user.pw_gid} home={home}/%u
}}
mail_location = maildir:~/Maildir
# No chroot: only root may chroot, and a test instance gains nothing from it.
service imap-login {{
  chroot =
  inet_listener imap {{
    port = {imap_port}
  }}
  inet_listener imaps {{
    port = {imaps_port}
  }}
}}
service anvil {{
  chroot =
}}
"""
        )

    def _launch(self) -> bool:
        """Start Dovecot and wait until a client can log in; False if it did not."""
        self._terminate()
        (self._dir / "dovecot.log").unlink(missing_ok=True)  # a new attempt, a new log
        with (self._dir / "dovecot.out").open("wb") as out:
            self._process = subprocess.Popen(
                [str(DOVECOT), "-F", "-c", str(self._dir / "dovecot.conf")],
                stdin=subprocess.DEVNULL,
                stdout=out,
                stderr=subprocess.STDOUT,
                start_new_session=True,  # its children share its process group, ended together
            )
        deadline = time.monotonic() + START_WITHIN
        while time.monotonic() < deadline:
            # A master whose children cannot start keeps running, retrying them: its log says.
            if self._process.poll() is not None or "Fatal: " in self.log():
                self._terminate()
                return False
            try:
                self._connect().logout()
            except (OSError, imaplib.IMAP4.error):
                time.sleep(0.05)
            else:
                return True
        self._terminate()
        return False

    def _terminate(self) -> None:
        """Kill the instance and every process it started, at once.

        Its process group, not just the master: a stopped master leaves its log, stats and
        open imap processes behind for a while (an imap process even goes on serving its
        client). Nothing in the directory is worth a clean shutdown, which takes over 1 s.
        """
        process, self._process = self._process, None
        if process is None:
            return
        with contextlib.suppress(ProcessLookupError):
            os.killpg(process.pid, signal.SIGKILL)  # its own group: start_new_session
        process.wait(STOP_WITHIN)

    # -- what the client under test needs

    def client_tls_context(self) -> ssl.SSLContext:
        """A client context that trusts the test CA (and checks the host name)."""
        return _client_tls_context()

    def settings(self, **overrides: Any) -> ImapSettings:
        """ImapSettings for this server and user (tls as the server has it), plus overrides."""
        from syndicate.config.settings import ImapSettings

        values: dict[str, Any] = {
            "host": self.host,
            "port": self.port,
            "tls": self.tls,
            "username": self.user,
            "timeout": 5.0,
        }
        values.update(overrides)
        return ImapSettings(**values)

    # -- looking inside, through a connection of our own

    def append(self, raw: bytes, folder: str = "INBOX", flags: Iterable[str] = ()) -> None:
        with self._session() as imap:
            imap.create(_quote(folder))  # NO when it exists; that is fine
            flag_list = "(" + " ".join(flags) + ")" if flags else None
            typ, data = imap.append(_quote(folder), flag_list, None, raw)
            assert typ == "OK", data

    def messages(self, folder: str = "INBOX") -> list[bytes]:
        return [raw for raw, _ in self._read(folder)]

    def flags(self, folder: str = "INBOX") -> list[set[str]]:
        return [flags for _, flags in self._read(folder)]

    def folders(self) -> list[str]:
        with self._session() as imap:
            typ, data = imap.list()
            assert typ == "OK", data
        names = []
        for line in data:
            assert isinstance(line, bytes), line
            match = re.fullmatch(rb'\(.*?\) (?:NIL|".*?") "?(.*?)"?', line)
            assert match, line
            names.append(match.group(1).decode())
        return sorted(names)

    def log(self) -> str:
        text = ""
        for name in ("dovecot.out", "dovecot.log"):
            with contextlib.suppress(OSError):
                text += (self._dir / name).read_text(errors="replace")
        return text

    def logouts(self, count: int = 0, within: float = 3.0) -> list[str]:
        """Each finished session's "Logged out ..." log line (with its deleted= and expunged=
        counters), waiting until there are at least `count` (Dovecot logs asynchronously)."""
        deadline = time.monotonic() + within
        while True:
            lines = [line for line in self.log().splitlines() if ": Logged out " in line]
            if len(lines) >= count:
                return lines
            if time.monotonic() > deadline:
                pytest.fail(f"fewer than {count} sessions in the log:\n{self.log()}", pytrace=False)
            time.sleep(0.02)

    def _read(self, folder: str) -> list[tuple[bytes, set[str]]]:
        with self._session() as imap:
            typ, data = imap.select(_quote(folder), readonly=True)
            assert typ == "OK", data
            typ, data = imap.uid("FETCH", "1:*", "(FLAGS BODY.PEEK[])")
            assert typ == "OK", data
        found = []
        for item in data:
            if isinstance(item, tuple):
                flags = re.search(rb"FLAGS \((.*?)\)", item[0])
                assert flags, item[0]
                found.append((item[1], set(flags.group(1).decode().split())))
        return found

    def _connect(self) -> imaplib.IMAP4:
        if self.tls == "implicit":
            return imaplib.IMAP4_SSL(
                self.host, self.port, ssl_context=self.client_tls_context(), timeout=5
            )
        imap = imaplib.IMAP4(self.host, self.port, timeout=5)
        if self.tls == "starttls":
            imap.starttls(self.client_tls_context())
        return imap

    @contextlib.contextmanager
    def _session(self) -> Iterator[imaplib.IMAP4]:
        imap = self._connect()
        try:
            secret = f"\0{self.user}\0{self.password}".encode()  # PLAIN: any UTF-8 password
            imap.authenticate("PLAIN", lambda _challenge: secret)
            yield imap
        finally:
            with contextlib.suppress(OSError, imaplib.IMAP4.error):
                imap.logout()


def _user_exists(name: str) -> bool:
    try:
        pwd.getpwnam(name)
    except KeyError:
        return False
    return True


@pytest.fixture
def imap_server() -> Iterator[ImapServer]:
    """A running Dovecot without TLS (plaintext login allowed), with one empty INBOX."""
    with ImapServer() as server:
        yield server


@pytest.fixture
def imap_server_factory() -> Iterator[Callable[..., ImapServer]]:
    """Start Dovecot servers with options (tls=, user=, password=, capabilities=).

    All of them stop after the test.
    """
    servers: list[ImapServer] = []

    def start(**options: Any) -> ImapServer:
        server = ImapServer(**options)
        servers.append(server)
        return server.start()

    yield start
    for server in servers:
        server.stop()
