"""The mail `syndicate bounces process` is given: one message, an mbox, a Maildir, or stdin.

    for mail in read_mail_files(path):     # path None or "-": one message from stdin
        await intake.process(mail.raw, origin="file", recipient=...)

A mail server's pipe or alias hands one message on stdin; an admin may point the command at
a saved message, a whole mbox or a Maildir. What it is is told by looking: a folder with
cur/ and new/ is a Maildir (read, never changed: processing again is harmless, each mail acts
once), a file starting "From " is an mbox, anything else one message. A message larger than
MAX_MAIL is read up to that size: the reports that matter are at its start.
"""

from __future__ import annotations

import mailbox
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO

MAX_MAIL = 25_000_000


class MailFileError(ValueError):
    """A path that cannot be read as mail; the message names it."""


@dataclass(frozen=True, slots=True)
class MailFile:
    where: str  # "stdin", the file, or "<mbox> #3", for messages about it
    raw: bytes


def read_mail_files(path: str | None, stdin: BinaryIO | None = None) -> Iterator[MailFile]:
    """Each message at `path` (see the module docstring); MailFileError for a path that is
    not there or not readable."""
    if path in (None, "-"):
        stream = stdin or sys.stdin.buffer
        yield MailFile("stdin", _without_from_line(_read_capped(stream)))
        return
    assert path is not None
    target = Path(path)
    try:
        if target.is_dir():
            yield from _maildir(target)
            return
        with target.open("rb") as handle:
            start = handle.read(5)
            if start == b"From ":
                handle.close()
                yield from _mbox(target)
                return
            handle.seek(0)
            yield MailFile(str(target), _read_capped(handle))
    except FileNotFoundError:
        raise MailFileError(f"{path}: no such file or folder") from None
    except (OSError, mailbox.Error) as error:
        raise MailFileError(f"{path}: cannot read it: {error}") from None


def _without_from_line(raw: bytes) -> bytes:
    """The message without the mbox "From sender date" line that Postfix's local delivery
    puts before it when it hands mail to a command: it is no header."""
    if raw.startswith(b"From "):
        return raw.partition(b"\n")[2]
    return raw


def _read_capped(stream: BinaryIO) -> bytes:
    data = stream.read(MAX_MAIL)
    while stream.read(1 << 20):  # drain the rest, so a pipe's writer is not left blocked
        pass
    return data


def _maildir(folder: Path) -> Iterator[MailFile]:
    if not (folder / "cur").is_dir() or not (folder / "new").is_dir():
        raise MailFileError(f"{folder}: a folder, but not a Maildir (no cur/ and new/)")
    box = mailbox.Maildir(folder, factory=None, create=False)
    for key in sorted(box.iterkeys()):
        try:
            with box.get_file(key) as handle:
                yield MailFile(f"{folder} {key}", _read_capped(handle))  # type: ignore[arg-type]
        except (KeyError, FileNotFoundError):  # removed while we read the folder
            continue


def _mbox(path: Path) -> Iterator[MailFile]:
    box = mailbox.mbox(path, factory=None, create=False)
    try:
        for number, key in enumerate(box.iterkeys(), start=1):
            yield MailFile(f"{path} #{number}", box.get_bytes(key)[:MAX_MAIL])
    finally:
        box.close()
