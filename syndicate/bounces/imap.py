"""Reading the bounce mailbox ([bounces.imap]) over IMAP, one message at a time.

    with ImapMailbox(settings.bounces.imap, password) as mailbox:
        for uid in mailbox.uids(settings.bounces.imap.batch):
            mail = mailbox.fetch(uid)
            if mail is not None:
                ...                     # parse and store the outcome
            mailbox.done(uid)           # only then: move it to processed_folder, or delete it

Why this shape. The caller stores what a message said before the message leaves the folder,
so a crash between the two reads the message again on the next poll instead of losing it;
the store must therefore accept the same message twice. Nothing here marks mail \\Seen
(``BODY.PEEK``), so a person looking at the mailbox sees what the poller has not finished.

Why imaplib. It is the standard library's, synchronous and small; the worker runs a poll in
a thread. It trusts the server more than we do, so ``_Capped`` bounds what it reads: imaplib
reads an IMAP literal ``{n}`` with one ``read(n)``, and a buffered read allocates ``n`` bytes
up front, so a hostile or broken server announcing ``{99999999999}`` would take the memory
before a byte arrived. Every operation (connect, login, one fetch ...) may read at most
``max_size`` plus 1 MiB in all; past that the connection is dropped and MailboxUnavailable
raised. ``settings.timeout`` applies to connecting and to every read of the socket; a server
that trickles a byte per timeout is not cut off by it (each read succeeds).

Big messages. ``fetch`` asks for at most ``max_size`` bytes (``BODY.PEEK[]<0.max_size>``): a
larger message comes back cut there, headers and the start of the body, which is where a
bounce report says what it is about; a warning is logged. It is still processed and moved.

TLS. "implicit" connects with TLS (IMAPS, port 993 by default); "starttls" connects in clear,
requires the server to offer STARTTLS and upgrades before anything else, and refuses to log
in otherwise (a server, or someone in between, that drops STARTTLS from the list must not
get the password in clear); a PREAUTH greeting is refused there too. "none" sends the login
and password in clear: only for a server on the same machine or a trusted network.
``tls_context`` defaults to ``ssl.create_default_context()`` (system CAs, host name checked).

Login uses AUTHENTICATE PLAIN when offered (it carries any UTF-8 password), else LOGIN.

Done. ``processed = "move"``: UID MOVE (RFC 6851) when the server has MOVE, else UID COPY,
\\Deleted and UID EXPUNGE (RFC 4315 UIDPLUS); a missing ``processed_folder`` is created (and
subscribed) when the server answers [TRYCREATE]. ``"delete"``: \\Deleted and UID EXPUNGE.
Without UIDPLUS the message is left flagged \\Deleted, which ``uids`` skips: a plain EXPUNGE
would also remove what other clients flagged. ``done`` on a UID that is already gone (done
twice, or removed by someone else) does nothing, as IMAP commands on absent UIDs do nothing.

Errors. Anything that makes the mailbox unusable raises MailboxUnavailable, one line naming
host:port, and the user or folder concerned; the password never appears (even when a
server echoes it back). Instances are not thread-safe: one per thread, one poll per ``with``.
"""

from __future__ import annotations

import contextlib
import imaplib
import logging
import re
import ssl
from base64 import b64encode
from collections.abc import Callable
from dataclasses import dataclass
from functools import partial
from typing import TYPE_CHECKING, Any, Self, TypeVar

from syndicate.errors import SyndicateError

if TYPE_CHECKING:
    from types import TracebackType

    from syndicate.config.settings import ImapSettings

log = logging.getLogger(__name__)

_HEADROOM = 1 << 20  # bytes an operation may read beyond max_size: response lines, flags
_UID = re.compile(rb"\bUID (\d{1,10})\b")
_BODY_LITERAL = re.compile(rb"\bBODY\[\](?:<0>)? \{\d+\}\Z")
_SIZE = re.compile(rb"\bRFC822\.SIZE (\d{1,20})\b")
_UID_MAX = 2**32 - 1
T = TypeVar("T")


class MailboxUnavailable(SyndicateError):
    """The mailbox cannot be read now: connection, TLS, login, folder or a broken server."""


@dataclass(frozen=True, slots=True)
class FetchedMail:
    uid: int
    raw: bytes  # the message as stored, or its first max_size bytes when it is bigger


class _Capped:
    """Mixed into imaplib's classes: at most ``budget`` bytes read until it is reset."""

    budget: int
    abort: type[Exception]

    def read(self, size: int) -> bytes:
        if size > self.budget:
            raise self.abort(f"the server announced {size} bytes, more than expected")
        self.budget -= size
        return super().read(size)  # type: ignore[misc]

    def readline(self) -> bytes:
        line: bytes = super().readline()  # type: ignore[misc]
        self.budget -= len(line)
        if self.budget < 0:
            raise self.abort("the server sent more than expected")
        return line


class _Imap(_Capped, imaplib.IMAP4):
    def __init__(self, budget: int, *args: Any, **kwargs: Any) -> None:
        self.budget = budget  # before __init__, which reads the greeting
        super().__init__(*args, **kwargs)


class _ImapSsl(_Capped, imaplib.IMAP4_SSL):
    def __init__(self, budget: int, *args: Any, **kwargs: Any) -> None:
        self.budget = budget
        super().__init__(*args, **kwargs)


class ImapMailbox:
    """One IMAP session on ``settings.folder``; see the module doc."""

    def __init__(
        self,
        settings: ImapSettings,
        password: str | None,
        *,
        tls_context: ssl.SSLContext | None = None,
        max_size: int = 25_000_000,
    ) -> None:
        if max_size < 1:
            raise ValueError("max_size must be at least 1 byte")
        self._settings = settings
        self._password = password
        self._tls_context = tls_context
        self._max_size = max_size
        self._budget = max_size + _HEADROOM
        host = f"[{settings.host}]" if ":" in settings.host else settings.host  # IPv6
        self._where = f"{host}:{settings.effective_port}"
        self._imap: imaplib.IMAP4 | None = None
        self._capabilities: frozenset[str] = frozenset()

    # -- the session

    def __enter__(self) -> Self:
        settings = self._settings
        if settings.processed == "move" and settings.processed_folder == settings.folder:
            raise MailboxUnavailable(
                f"IMAP {self._where}: processed_folder is the folder being read "
                f"({settings.folder!r}); processed mail would be read again forever"
            )
        folder = _mailbox_name(settings.folder)
        imap = self._connect()
        try:
            self._login(imap)
            self._capabilities = self._capabilities_now(imap)
            self._select(imap, folder)
        except BaseException:
            _close(imap)
            raise
        self._imap = imap
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        imap, self._imap = self._imap, None
        if imap is not None:
            _close(imap)

    def uids(self, limit: int) -> list[int]:
        """UIDs of the folder's messages not flagged \\Deleted, oldest first, at most limit."""
        imap = self._session()
        if limit < 1:
            return []
        # Re-selecting counts what arrived since; searching windows of sequence numbers (in
        # UID order) keeps each answer small however big the folder is.
        exists = self._select(imap, _mailbox_name(self._settings.folder))
        found: list[int] = []
        start = 1
        while len(found) < limit and start <= exists:
            end = min(exists, start + limit - 1)
            window = f"{start}:{end}"
            search = partial(imap.uid, "SEARCH", window, "UNDELETED")
            typ, data = self._call(imap, search, "SEARCH")
            if typ != "OK":
                raise self._unavailable("SEARCH", data)
            for line in data:
                if isinstance(line, bytes):
                    found.extend(
                        int(word) for word in line.split() if word.isdigit() and len(word) <= 10
                    )
            start = end + 1
        return sorted({uid for uid in found if 0 < uid <= _UID_MAX})[:limit]

    def fetch(self, uid: int) -> FetchedMail | None:
        """The message with this UID (cut at max_size bytes), or None when it is gone."""
        imap = self._session()
        uid = _checked(uid)
        # One round trip, and a compliant server sends at most max_size bytes of the body.
        wanted = f"(RFC822.SIZE BODY.PEEK[]<0.{self._max_size}>)"
        typ, data = self._call(imap, lambda: imap.uid("FETCH", str(uid), wanted), "FETCH")
        if typ != "OK":
            raise self._unavailable(f"FETCH of message {uid}", data)
        for index, item in enumerate(data):
            if not isinstance(item, tuple) or not _BODY_LITERAL.search(item[0]):
                continue
            # The UID may come before the body or after it (then in the next item).
            after = data[index + 1] if index + 1 < len(data) else b""
            text = item[0] + (after if isinstance(after, bytes) else b"")
            found = _UID.search(text)
            if found is None or int(found.group(1)) != uid:
                continue  # another message's data, sent unasked
            raw = item[1][: self._max_size]
            size = _SIZE.search(text)
            if size is not None and int(size.group(1)) > self._max_size:
                log.warning(
                    "IMAP %s: message %d is %s bytes; only its first %d are read",
                    self._where,
                    uid,
                    size.group(1).decode(),
                    self._max_size,
                )
            return FetchedMail(uid=uid, raw=raw)
        return None

    def done(self, uid: int) -> None:
        """Move the message to processed_folder, or delete it (settings.processed)."""
        imap = self._session()
        uid = _checked(uid)
        if self._settings.processed == "move":
            target = _mailbox_name(self._settings.processed_folder)
            if "MOVE" in self._capabilities:
                self._to_folder(imap, "MOVE", uid, target)
                return
            self._to_folder(imap, "COPY", uid, target)
        flag = r"(\Deleted)"
        typ, data = self._call(
            imap, lambda: imap.uid("STORE", str(uid), "+FLAGS.SILENT", flag), "STORE"
        )
        if typ != "OK":
            raise self._unavailable(f"flagging message {uid} \\Deleted", data)
        if "UIDPLUS" in self._capabilities:
            typ, data = self._call(imap, lambda: imap.uid("EXPUNGE", str(uid)), "EXPUNGE")
            if typ != "OK":
                raise self._unavailable(f"expunging message {uid}", data)

    # -- the steps

    def _connect(self) -> imaplib.IMAP4:
        settings = self._settings
        context = self._tls_context or ssl.create_default_context()
        port = settings.effective_port
        try:
            if settings.tls == "implicit":
                imap: imaplib.IMAP4 = _ImapSsl(
                    self._budget,
                    settings.host,
                    port,
                    ssl_context=context,
                    timeout=settings.timeout,
                )
            else:
                imap = _Imap(self._budget, settings.host, port, timeout=settings.timeout)
        except ssl.SSLError as error:
            raise MailboxUnavailable(
                f"TLS with {self._where} failed: {self._line(error)}"
            ) from None
        except OSError as error:
            raise MailboxUnavailable(
                f"cannot connect to {self._where}: {self._line(error)}"
            ) from None
        except imaplib.IMAP4.error as error:
            raise MailboxUnavailable(
                f"IMAP {self._where} did not greet as an IMAP server: {self._line(error)}"
            ) from None
        if settings.tls != "starttls":
            return imap
        try:
            if imap.state != "NONAUTH":
                raise MailboxUnavailable(
                    f"IMAP {self._where} logged us in before STARTTLS (PREAUTH); "
                    'refusing a session without TLS (tls = "starttls")'
                )
            if "STARTTLS" not in imap.capabilities:
                raise MailboxUnavailable(
                    f"IMAP {self._where} does not offer STARTTLS; not logging in without TLS "
                    '(tls = "starttls")'
                )
            imap.budget = self._budget  # type: ignore[attr-defined]
            imap.starttls(context)
        except ssl.SSLError as error:
            _close(imap)
            raise MailboxUnavailable(
                f"TLS with {self._where} failed: {self._line(error)}"
            ) from None
        except (OSError, imaplib.IMAP4.error) as error:
            _close(imap)
            raise MailboxUnavailable(
                f"STARTTLS with {self._where} failed: {self._line(error)}"
            ) from None
        except MailboxUnavailable:
            _close(imap)
            raise
        return imap

    def _login(self, imap: imaplib.IMAP4) -> None:
        settings = self._settings
        user = settings.username
        refused = f"login refused for user {user!r} at {self._where}"
        if imap.state != "NONAUTH":
            return  # PREAUTH over TLS: the server knows who we are
        if self._password is None:
            raise MailboxUnavailable(f"{refused}: no password (set {settings.password_env})")
        password = self._password
        plain = "AUTH=PLAIN" in imap.capabilities
        if not plain and "LOGINDISABLED" in imap.capabilities:
            raise MailboxUnavailable(f"{refused}: the server allows no login here (LOGINDISABLED)")
        if not plain and (
            not (user + password).isascii() or any(c in user + password for c in "\r\n\0")
        ):
            raise MailboxUnavailable(
                f"{refused}: the user name or password has characters LOGIN cannot carry, "
                "and the server offers no AUTHENTICATE PLAIN"
            )
        imap.budget = self._budget  # type: ignore[attr-defined]
        try:
            if plain:
                secret = f"\0{user}\0{password}".encode()
                imap.authenticate("PLAIN", lambda _challenge: secret)
            else:
                imap.login(user, password)
        except ssl.SSLError as error:
            raise MailboxUnavailable(
                f"TLS with {self._where} failed: {self._line(error)}"
            ) from None
        except (OSError, imaplib.IMAP4.error) as error:
            raise MailboxUnavailable(f"{refused}: {self._line(error)}") from None

    def _capabilities_now(self, imap: imaplib.IMAP4) -> frozenset[str]:
        # Asked again: servers offer more once logged in (Dovecot: MOVE, UIDPLUS), and
        # imaplib keeps only the list from before the login.
        typ, data = self._call(imap, imap.capability, "CAPABILITY")
        if typ != "OK":
            raise self._unavailable("CAPABILITY", data)
        return frozenset(
            word.decode(errors="replace").upper()
            for line in data
            if isinstance(line, bytes)
            for word in line.split()
        )

    def _select(self, imap: imaplib.IMAP4, folder: str) -> int:
        name = self._settings.folder
        what = f"folder {name!r} of user {self._settings.username!r} at {self._where}"
        typ, data = self._call(imap, lambda: imap.select(folder), "SELECT")
        if typ != "OK":
            raise MailboxUnavailable(f"cannot open {what}: {self._line(_text(data))}")
        count = data[0] if data else None
        if not isinstance(count, bytes) or not count.isdigit():
            raise MailboxUnavailable(f"IMAP {self._where} did not say how many messages {what} has")
        return int(count)

    def _to_folder(self, imap: imaplib.IMAP4, command: str, uid: int, target: str) -> None:
        folder = self._settings.processed_folder
        for attempt in range(2):
            typ, data = self._call(imap, lambda: imap.uid(command, str(uid), target), command)
            if typ == "OK":
                return
            if attempt == 0 and "[TRYCREATE]" in _text(data).upper():
                self._create(imap, target)
                continue
            break
        raise MailboxUnavailable(
            f"IMAP {self._where}: cannot {command.lower()} message {uid} to folder {folder!r}: "
            f"{self._line(_text(data))}"
        )

    def _create(self, imap: imaplib.IMAP4, target: str) -> None:
        typ, data = self._call(imap, lambda: imap.create(target), "CREATE")
        if typ != "OK" and "[ALREADYEXISTS]" not in _text(data).upper():
            raise MailboxUnavailable(
                f"IMAP {self._where}: cannot create folder "
                f"{self._settings.processed_folder!r}: {self._line(_text(data))}"
            )
        # So that a mail client shows it; a refusal changes nothing for us.
        self._call(imap, lambda: imap.subscribe(target), "SUBSCRIBE")

    # -- helpers

    def _session(self) -> imaplib.IMAP4:
        if self._imap is None:
            raise RuntimeError("ImapMailbox is used outside its with block")
        return self._imap

    def _call(self, imap: imaplib.IMAP4, step: Callable[[], T], what: str) -> T:
        """Run one command with a fresh read budget; a broken session is MailboxUnavailable."""
        imap.budget = self._budget  # type: ignore[attr-defined]
        try:
            return step()
        except ssl.SSLError as error:
            raise MailboxUnavailable(
                f"TLS with {self._where} failed: {self._line(error)}"
            ) from None
        except (OSError, imaplib.IMAP4.error) as error:
            raise MailboxUnavailable(f"IMAP {self._where} ({what}): {self._line(error)}") from None

    def _unavailable(self, what: str, data: list[Any]) -> MailboxUnavailable:
        return MailboxUnavailable(f"IMAP {self._where}: {what} refused: {self._line(_text(data))}")

    def _line(self, reason: object) -> str:
        """The reason as one short line, without the password even if a server echoed it."""
        text = reason.decode(errors="replace") if isinstance(reason, bytes) else str(reason)
        if self._password:
            text = text.replace(self._password, "****")
        text = " ".join("".join(c if c.isprintable() else " " for c in text).split())
        return text[:300] or "(no reason given)"


def _mailbox_name(name: str) -> str:
    """A folder name as an IMAP quoted string, non-ASCII in modified UTF-7 (RFC 3501 5.1.3)."""
    out: list[str] = []
    pending: list[str] = []

    def flush() -> None:
        if pending:
            encoded = b64encode("".join(pending).encode("utf-16-be")).rstrip(b"=")
            out.append("&" + encoded.decode().replace("/", ",") + "-")
            pending.clear()

    for char in name:
        if " " <= char <= "~":
            flush()
            out.append("&-" if char == "&" else char)
        else:
            pending.append(char)
    flush()
    quoted = "".join(out).replace("\\", "\\\\").replace('"', '\\"')
    return f'"{quoted}"'


def _checked(uid: int) -> int:
    if isinstance(uid, bool) or not isinstance(uid, int) or not 0 < uid <= _UID_MAX:
        raise ValueError(f"not an IMAP UID: {uid!r}")
    return uid


def _text(data: list[Any]) -> str:
    parts = [item for item in data if isinstance(item, bytes | str)]
    return " ".join(p.decode(errors="replace") if isinstance(p, bytes) else p for p in parts)


def _close(imap: imaplib.IMAP4) -> None:
    """LOGOUT, and close the socket whatever happens; never raises (we are leaving anyway)."""
    imap.budget = _HEADROOM  # type: ignore[attr-defined]
    with contextlib.suppress(Exception):
        imap.logout()
    with contextlib.suppress(Exception):
        imap.shutdown()  # after a LOGOUT that failed midway; harmless after one that worked
