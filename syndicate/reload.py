"""Reloading the worker's config: on SIGHUP, and when the file changes on disk.

    watcher = ConfigWatcher(path, worker, on_event=print)
    await watcher.reload("SIGHUP")     # from a signal handler's task
    await watcher.watch()              # forever: a changed file is reloaded within WATCH_EVERY

A config that does not validate is logged, a line per problem as `syndicate check` prints
them, and the worker carries on with the one it has. So it does when the worker cannot
switch to a valid one (the database away, say): then the file is tried again at each look
until the switch works, as well as at the next change or SIGHUP. Watching polls the file's
stat rather than using inotify: one stat every two seconds costs nothing and works on every
filesystem.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from pathlib import Path

from syndicate.config import load_settings
from syndicate.errors import ConfigError
from syndicate.worker import Worker

log = logging.getLogger(__name__)

WATCH_EVERY = 2.0  # seconds
Stamp = tuple[int, int, int]  # a file's mtime, size and inode: changed when it was saved


class ConfigWatcher:
    def __init__(
        self, path: Path, worker: Worker, *, on_event: Callable[[str], None] = lambda line: None
    ) -> None:
        self.path = path
        self.worker = worker
        self.on_event = on_event
        self._seen = self._stamp()  # the file the running config was read from
        self._failed: tuple[Stamp | None, str] | None = None  # the last switch that failed
        self._lock = asyncio.Lock()  # a SIGHUP and a file change at once: one after the other

    async def watch(self) -> None:
        while True:
            await asyncio.sleep(WATCH_EVERY)
            # A file being rewritten may be caught half-written: that fails validation, is
            # logged, and the next change (the rest of the write) is reloaded. A valid file
            # the worker could not switch to is not recorded as seen: it is tried again here.
            stamp = self._stamp()
            if stamp not in (None, self._seen):
                retry = self._failed is not None and self._failed[0] == stamp
                await self.reload(f"{self.path.name} changed", retry=retry)

    async def reload(self, why: str, *, retry: bool = False) -> bool:
        """Load the file and hand a valid config to the worker; False when it was invalid or
        the worker could not switch to it (it then carries on with the config it has).

        `retry`: the watcher trying again a file that failed; failing the same way again is
        not reported a second time.
        """
        async with self._lock:
            stamp = self._stamp()
            try:
                settings = await asyncio.to_thread(load_settings, self.path)
            except ConfigError as error:
                self._seen = stamp  # a broken file waits for the next change
                problems = str(error).splitlines()
                for line in problems:
                    log.error("%s", line)
                self.on_event(
                    f"{why}: not reloaded, {len(problems)} problem(s) (logged); "
                    "carrying on with the running config"
                )
                return False
            try:
                changes = await self.worker.reload(settings)
            except Exception as error:  # the database away, say: the watcher must go on
                reason = _one_line(error)
                log.debug("the reload failed", exc_info=True)
                if not (retry and self._failed == (stamp, reason)):
                    self.on_event(
                        f"{why}: not reloaded: {reason}; carrying on with the running config "
                        "(tried again until it works, or at the next change or SIGHUP)"
                    )
                self._failed = (stamp, reason)
                return False
            self._seen, self._failed = stamp, None
            self.on_event(f"{why}: reloaded" + (f" ({'; '.join(changes)})" if changes else ""))
            return True

    def _stamp(self) -> Stamp | None:
        try:
            stat = self.path.stat()
        except OSError:
            return None
        return stat.st_mtime_ns, stat.st_size, stat.st_ino


def _one_line(error: Exception) -> str:
    # A database error's text goes on with the SQL and a link: its first line says it.
    return (str(error).strip().splitlines() or [type(error).__name__])[0]
