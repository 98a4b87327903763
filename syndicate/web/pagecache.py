"""A page rendered once per change, not once per request.

    cache = RenderedOnce(store.content_version)
    body = await cache.get(web.pages, templates_dir, render)   # the same bytes until a change

    pages = PerLanguage(store.content_version)                   # one page per language
    body = await pages("th").get(web.pages, templates_dir, render_thai)

The key of a rendered page is the store's change counter (syndicate/store/versions.py),
the pages object in use (a config reload replaces it) and the templates
folder's files (their names, sizes and mtimes: an admin's edit shows without a restart).

Under load many requests arrive together. The counter is read by one of them at a time:
a request that arrives while a read is in flight waits for that read rather than starting
its own. A read that started before the request could miss a change committed a moment
earlier; the next request sees it. Rendering is single-flight the same way. The templates
folder is looked at no more than once a second.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Generic, TypeVar

TEMPLATE_CHECK_SECONDS = 1.0

Stamp = tuple[tuple[str, int, int], ...]
T = TypeVar("T")


class RenderedOnce(Generic[T]):
    """One page's bytes (or anything else made from the store), kept while its key holds."""

    def __init__(self, read_version: Callable[[], Awaitable[int]]) -> None:
        self._read_version = read_version
        self._templates_dir: Path | None = None
        self._reading: asyncio.Future[int] | None = None
        self._rendering: asyncio.Future[T] | None = None
        self._rendering_key: tuple[object, ...] | None = None
        self._key: tuple[object, ...] | None = None
        self._body: T | None = None
        self._stamp: Stamp = ()
        self._stamped_at = -TEMPLATE_CHECK_SECONDS

    async def get(
        self, owner: object, templates_dir: Path, render: Callable[[], Awaitable[T]]
    ) -> T:
        """The page for `owner` (the object itself is part of the key) from the templates in
        `templates_dir`, rendered by `render` when the key changed since the last time."""
        key = (await self._version(), owner, self._templates(templates_dir))
        if key == self._key and self._body is not None:
            return self._body
        if self._rendering is None or self._rendering_key != key:
            self._rendering_key = key
            self._rendering = asyncio.ensure_future(render())
        rendering = self._rendering
        try:
            body = await asyncio.shield(rendering)
        finally:
            if self._rendering is rendering:
                self._rendering = None  # done, or failed: the next request tries again
        if self._rendering_key == key:
            self._key, self._body = key, body
        return body

    async def _version(self) -> int:
        if self._reading is None:
            reading = asyncio.ensure_future(self._read_version())
            self._reading = reading
            reading.add_done_callback(self._read_done)
        return await asyncio.shield(self._reading)

    def _read_done(self, reading: asyncio.Future[int]) -> None:
        if self._reading is reading:
            self._reading = None

    def _templates(self, folder: Path) -> Stamp:
        now = time.monotonic()
        if folder != self._templates_dir or now - self._stamped_at >= TEMPLATE_CHECK_SECONDS:
            self._templates_dir, self._stamped_at = folder, now
            self._stamp = stamp(folder)
        return self._stamp


class PerLanguage(Generic[T]):
    """A RenderedOnce per language tag: a Thai page is never the answer to an English
    reader, and readers of two languages in turn do not make each other's page render
    again. Only tags the site offers reach it (web/language.py), so it stays small."""

    def __init__(self, read_version: Callable[[], Awaitable[int]]) -> None:
        self._read_version = read_version
        self._pages: dict[str, RenderedOnce[T]] = {}

    def __call__(self, language: str) -> RenderedOnce[T]:
        found = self._pages.get(language)
        if found is None:
            found = self._pages[language] = RenderedOnce(self._read_version)
        return found


def stamp(folder: Path) -> Stamp:
    """Every file under `folder`: (relative path, size, mtime in ns)."""
    found = []
    for path in sorted(folder.rglob("*")) if folder.is_dir() else []:
        try:
            info = path.stat()
        except OSError:
            continue
        if path.is_file():
            found.append((path.relative_to(folder).as_posix(), info.st_size, info.st_mtime_ns))
    return tuple(found)
