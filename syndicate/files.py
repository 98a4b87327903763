"""Writing published files so that a reader never sees half of one.

A folder that cannot be written (a full disk, a read-only mount, a path through a file)
raises PublishError naming the path and the reason: one line for the admin, no traceback.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import tempfile
from collections.abc import Iterator
from pathlib import Path

from syndicate.errors import PublishError


def prepare_folder(root: Path) -> None:
    """Make the publish folder and clear what a process killed mid-write left in it."""
    with _writing(root):
        root.mkdir(parents=True, exist_ok=True)
        remove_stale_temporaries(root)


def write_atomic(path: Path, data: bytes) -> None:
    """Write to a temporary file beside `path`, fsync it, then rename it over `path`.

    A rename within one folder is atomic: a reader (or a web server) sees the old file or
    the new one, never a mix, even if this process is killed mid-write. The folder is
    fsynced too so the rename itself survives a power cut.
    """
    with _writing(path):
        path.parent.mkdir(parents=True, exist_ok=True)
        handle, temp_name = tempfile.mkstemp(
            prefix=f".{path.name}.", suffix=".tmp", dir=path.parent
        )
        try:
            with os.fdopen(handle, "wb") as out:
                out.write(data)
                out.flush()
                os.fsync(out.fileno())
            temp = Path(temp_name)
            temp.chmod(0o644)  # mkstemp makes it 0600; web servers must read it
            temp.replace(path)
        except BaseException:
            Path(temp_name).unlink(missing_ok=True)
            raise
        _fsync_folder(path.parent)


def has_bytes(path: Path, data: bytes) -> bool:
    """True when `path` already holds exactly `data` (so it need not be rewritten)."""
    try:
        if path.stat().st_size != len(data):
            return False
        return path.read_bytes() == data
    except FileNotFoundError:
        return False


def file_stamp(path: Path) -> str | None:
    """Which file `path` is, cheaply: device, inode, size and mtime (ns), or None when
    there is none. Files are written by atomic rename, so a new version has a new inode;
    equal stamps mean the very file recorded, without reading it."""
    try:
        info = path.stat()
    except (FileNotFoundError, NotADirectoryError):
        return None
    return f"{info.st_dev}:{info.st_ino}:{info.st_size}:{info.st_mtime_ns}"


def holds(path: Path, digest: str) -> bool:
    """True when `path` holds the bytes whose SHA-256 is `digest` (as recorded when written)."""
    try:
        return hashlib.sha256(path.read_bytes()).hexdigest() == digest
    except (FileNotFoundError, IsADirectoryError):
        return False


def remove(path: Path, root: Path) -> bool:
    """Delete a published file and any folders it leaves empty, up to `root`."""
    with _writing(path):
        try:
            path.unlink()
        except FileNotFoundError:
            return False
    folder = path.parent
    while folder != root and folder.is_relative_to(root):
        try:
            folder.rmdir()
        except OSError:
            break
        folder = folder.parent
    return True


def remove_stale_temporaries(root: Path) -> int:
    """Temporary files left by a process killed mid-write."""
    removed = 0
    for temp in root.rglob(".*.tmp"):
        with contextlib.suppress(FileNotFoundError):
            temp.unlink()
            removed += 1
    return removed


@contextlib.contextmanager
def _writing(path: Path) -> Iterator[None]:
    try:
        yield
    except OSError as error:
        raise PublishError(f"cannot write {path}: {error.strerror or error}") from error


def _fsync_folder(folder: Path) -> None:
    fd = os.open(folder, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)
