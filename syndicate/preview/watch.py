"""What the live preview watches: the files whose change reloads the page.

    changes = Changes(lambda: watched_paths(settings))
    task = asyncio.create_task(changes.run())       # looks every `interval` seconds
    generation = await changes.wait(seen, timeout=20)   # returns once it moved past `seen`

The templates folder, the intro files (digest/intro/), the locales folder and the config
file. It polls their modification times rather than asking the kernel (inotify): a few dozen
files are read in well under a millisecond, it works the same on every system and in a
container's bind mount, and it needs no dependency. Editors' scratch files (".x.swp",
"x~", "#x#") are left out, so saving is one reload, not three.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
from collections.abc import Callable, Iterable
from pathlib import Path

from syndicate.config import Settings

Snapshot = frozenset[tuple[str, int, int]]
MAX_FILES = 5000  # per folder: a folder this big is not a templates folder; stop reading


def watched_paths(settings: Settings) -> list[Path]:
    return [
        settings.path.resolve(),
        settings.templates_dir,
        settings.resolve("digest/intro"),
        settings.locales_dir,
    ]


def snapshot(paths: Iterable[Path]) -> Snapshot:
    """(path, modification time in ns, size) of every file under `paths` (files or folders;
    one that does not exist counts as empty, so creating it is a change)."""
    seen: set[tuple[str, int, int]] = set()
    for path in paths:
        if path.is_dir():
            count = 0
            for folder, folders, files in os.walk(path):
                folders[:] = [name for name in folders if not name.startswith(".")]
                for name in files:
                    if _scratch(name):
                        continue
                    count += 1
                    if count > MAX_FILES:
                        break
                    _add(seen, Path(folder, name))
        else:
            _add(seen, path)
    return frozenset(seen)


def _scratch(name: str) -> bool:
    return name.startswith((".", "#")) or name.endswith(("~", ".swp", ".swx", ".tmp"))


def _add(seen: set[tuple[str, int, int]], path: Path) -> None:
    try:
        stat = path.stat()
    except OSError:  # gone between listing and reading it, or never there
        return
    seen.add((str(path), stat.st_mtime_ns, stat.st_size))


class Changes:
    """A count that goes up each time the watched files change (see the module)."""

    def __init__(self, paths: Callable[[], Iterable[Path]], interval: float = 0.25) -> None:
        self._paths = paths
        self.interval = interval
        self.generation = 0
        self._last = snapshot(paths())
        self._moved = asyncio.Event()

    def look(self, on_change: Callable[[], None] | None = None) -> bool:
        """Compare the files with the last look; on a change call `on_change` (before anyone
        waiting hears of it), count one generation more and return True."""
        now = snapshot(self._paths())
        if now == self._last:
            return False
        if on_change is not None:
            on_change()
        self._last = snapshot(self._paths())  # on_change may have changed what is watched
        self.generation += 1
        moved, self._moved = self._moved, asyncio.Event()
        moved.set()
        return True

    async def run(self, on_change: Callable[[], None] | None = None) -> None:
        """Look every `interval` seconds until cancelled."""
        while True:
            await asyncio.sleep(self.interval)
            self.look(on_change)

    async def wait(self, seen: int, timeout: float) -> int:  # noqa: ASYNC109 (a long poll's bound)
        """The generation, as soon as it is not `seen`, or after `timeout` seconds."""
        if self.generation != seen:
            return self.generation
        moved = self._moved
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(moved.wait(), timeout)
        return self.generation
