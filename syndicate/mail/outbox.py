"""The `outbox` transport: each message becomes a file in a Maildir (`[mail] outbox`).

No mail server needed: admins can look at what would be sent, and another program (or a
person) can pick the files up from `new/`. mailbox.Maildir writes a message into `tmp/` and
then moves it into `new/`, so a reader never sees half a message, even after a crash mid-write.
The files are not fsync'ed: a kill -9 of this process loses nothing written, a power cut may.
"""

from __future__ import annotations

import asyncio
import mailbox
import re
import threading
from pathlib import Path

from syndicate.errors import PermanentDeliveryError, TransientDeliveryError

# The envelope recipient is recorded in a header (Maildir has no envelope), so it must not be
# able to start another one.
_UNSAFE = re.compile(r"[\x00-\x20\x7f<>]")
ENVELOPE_HEADER = b"X-Envelope-To"


class OutboxTransport:
    """Delivers into the Maildir at `path`, creating it (and cur/, new/, tmp/) if needed."""

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)
        # Maildir creates only the last folder; var/ does not exist yet on a PostgreSQL setup.
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._maildir = mailbox.Maildir(self.path, factory=None, create=True)
        # Maildir's unique file names come from a class-wide counter that threads could race
        # on (the clash is caught, but as an error), and send() runs write() in worker threads.
        self._lock = threading.Lock()

    def write(self, message: bytes, envelope_to: str, envelope_from: str = "") -> str:
        """Store `message` (bytes, CRLF or LF line endings) for `envelope_to`; the Maildir key."""
        _check_envelope(envelope_to, "recipient")
        if envelope_from:
            _check_envelope(envelope_from, "sender")
        # Like Return-Path and Delivered-To added by local delivery agents, prepended so that
        # a DKIM signature over the message's own headers stays valid.
        line_end = b"\r\n" if message[: message.find(b"\n") + 1].endswith(b"\r\n") else b"\n"
        envelope = ENVELOPE_HEADER + b": " + envelope_to.encode("utf-8") + line_end
        if envelope_from:
            return_path = b"Return-Path: <" + envelope_from.encode("utf-8") + b">" + line_end
            envelope = return_path + envelope
        with self._lock:
            return self._maildir.add(envelope + message)

    async def send(self, message: bytes, envelope_from: str, envelope_to: str) -> None:
        """The Transport interface: write() off the event loop (a slow disk can block)."""
        try:
            await asyncio.to_thread(self.write, message, envelope_to, envelope_from)
        except ValueError as error:
            raise PermanentDeliveryError(str(error)) from None
        except OSError as error:
            # A full disk or a permission problem: nothing is wrong with the message itself.
            raise TransientDeliveryError(f"outbox {self.path}: {error}") from None

    async def accepts_8bit(self) -> bool:
        """A Maildir file holds 8bit bodies as well as any other (mail readers expect them)."""
        return True

    async def close(self) -> None:
        """Nothing to release: every message is already in its file."""


def _check_envelope(address: str, role: str) -> None:
    if not address or "@" not in address or _UNSAFE.search(address):
        raise ValueError(f"envelope {role}: not an address: {address!r}")
