"""A source that is a local file: read it whole, bounded, and date it by its mtime.

The mtime stands in for Last-Modified, so an unchanged file is not read again (see
file_validator for when it can be trusted). Errors are one-line FetchErrors naming the path.
"""

from __future__ import annotations

import stat
import time
from email.utils import formatdate
from pathlib import Path

from syndicate.errors import FetchError


def read_file(
    source: str, path: Path, known_last_modified: str | None, max_size: int
) -> tuple[bytes | None, str | None]:
    """(body, last_modified); body is None when the mtime equals `known_last_modified`
    (the file is unchanged since that read). FetchError, one line, when it cannot be read."""
    try:
        info = path.stat()
        # Checked before opening: opening a FIFO or a device could block forever.
        if not stat.S_ISREG(info.st_mode):
            raise FetchError(source, f"not a regular file: {path}")
        last_modified = file_validator(info.st_mtime)
        if last_modified is not None and last_modified == known_last_modified:
            return None, last_modified
        if info.st_size > max_size:
            raise too_large(source, max_size)
        with path.open("rb") as file:
            body = file.read(max_size + 1)
    except FileNotFoundError:
        raise FetchError(source, f"no such file: {path}") from None
    except PermissionError:
        raise FetchError(source, f"cannot read {path}: permission denied") from None
    except OSError as error:
        raise FetchError(source, f"cannot read {path}: {error.strerror or error}") from None
    if len(body) > max_size:  # it grew after the stat
        raise too_large(source, max_size)
    return body, last_modified


def file_validator(mtime: float) -> str | None:
    """The mtime as an HTTP-date, or None while it cannot be trusted.

    An HTTP-date has whole seconds, so a second write within the same second as the one we
    read would keep the same date and go unnoticed. Until that second is over the date is
    not used (the content hash still saves the parse).
    """
    if int(mtime) >= int(time.time()):
        return None
    return formatdate(mtime, usegmt=True)


def too_large(source: str, max_size: int, *, status: int | None = None) -> FetchError:
    """A feed over [ingest] max_size, read from a file or over HTTP."""
    return FetchError(
        source,
        f"larger than {_size(max_size)}; raise [ingest] max_size if the feed really is this big",
        status=status,
    )


def _size(size: int) -> str:
    if size >= 1_000_000:
        return f"{size / 1_000_000:.1f} MB"
    if size >= 1_000:
        return f"{size / 1_000:.1f} kB"
    return f"{size} bytes"
