"""Reloading the worker's config: on SIGHUP, and when the file changes on disk.

    watcher = ConfigWatcher(path, worker, on_event=print)
    await watcher.reload("SIGHUP")     # from a signal handler's task
    await watcher.watch()              # forever: a changed file is reloaded within WATCH_EVERY

A config that does not validate is logged, a line per problem as `syndicate check` prints
them, and the worker carries on with the one it has. Watching polls the file's stat rather
than using inotify: one stat every two seconds costs nothing and works on every filesystem.
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


class ConfigWatcher:
    def __init__(
        self, path: Path, worker: Worker, *, on_event: Callable[[str], None] = lambda line: None
    ) -> None:
        self.path = path
        self.worker = worker
        self.on_event = on_event
        self._seen = self._stamp()
        self._lock = asyncio.Lock()  # a SIGHUP and a file change at once: one after the other

    async def watch(self) -> None:
        while True:
            await asyncio.sleep(WATCH_EVERY)
            # A file being rewritten may be caught half-written: that fails validation, is
            # logged, and the next change (the rest of the write) is reloaded.
            if self._stamp() not in (None, self._seen):
                await self.reload(f"{self.path.name} changed")

    async def reload(self, why: str) -> bool:
        """Load the file and hand a valid config to the worker; False when it was invalid."""
        async with self._lock:
            self._seen = self._stamp()
            try:
                settings = await asyncio.to_thread(load_settings, self.path)
            except ConfigError as error:
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
                log.exception("reloading the config failed")
                self.on_event(f"{why}: reload failed: {type(error).__name__}: {error}")
                return False
            self.on_event(f"{why}: reloaded" + (f" ({'; '.join(changes)})" if changes else ""))
            return True

    def _stamp(self) -> tuple[int, int, int] | None:
        try:
            stat = self.path.stat()
        except OSError:
            return None
        return stat.st_mtime_ns, stat.st_size, stat.st_ino
