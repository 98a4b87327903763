"""Parsing and normalising in worker processes.

Both are pure CPU work in Python (feedparser, then nh3 and URL handling per entry). Done in
the event loop's process they would cap ingest at one core and stall everything else in the
loop (the web app, the scheduler) while a 10,000-entry feed is read. A pool of worker
processes uses every core and keeps the loop responsive; a worker that a hostile feed
crashes costs that source only, and the pool is started again.

`workers = 1` in [ingest] parses in-process instead (no pool).
"""

from __future__ import annotations

import asyncio
import logging
import multiprocessing
import os
import signal
from concurrent.futures import Executor, ProcessPoolExecutor
from concurrent.futures.process import BrokenProcessPool
from dataclasses import dataclass, field
from datetime import datetime

from syndicate.ingest.normalise import absolute_url, normalise_entry
from syndicate.ingest.parse import ParseError, parse_feed
from syndicate.links import ONLY_PUBLIC, public_id, public_url, shown
from syndicate.models import Post

log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class ParsedSource:
    """What a worker sends back: the feed's own fields and its normalised posts."""

    title: str | None
    link: str | None  # the feed's home page: a public http(s) URL, or None
    warning: str | None
    posts: list[Post]
    skipped: list[str] = field(default_factory=list)  # entries that could not be normalised
    dropped: list[str] = field(default_factory=list)  # URLs we may not publish, per entry
    feed_id: str | None = None  # the feed's own id (Atom <id>, JSON Feed feed_url), if usable


def parse_and_normalise(
    body: bytes,
    url: str,
    content_type: str | None,
    source: str,
    default_category: str | None,
    now: datetime,
) -> ParsedSource:
    """Bytes -> posts. Raises ParseError when the bytes are not a feed."""
    feed = parse_feed(body, url, content_type)
    posts: list[Post] = []
    skipped: list[str] = []
    dropped: list[str] = []
    for index, entry in enumerate(feed.entries):
        try:
            posts.append(
                normalise_entry(
                    entry,
                    source=source,
                    feed_url=url,
                    feed_link=feed.link,
                    default_category=default_category,
                    now=now,
                    warn=dropped.append,
                )
            )
        except Exception as error:  # one odd entry must not cost the others
            skipped.append(f"entry {index}: {type(error).__name__}: {error}")
    link = public_url(absolute_url(feed.link, url)) if feed.link else None
    if feed.link and not link:
        dropped.insert(0, f"the feed's link {shown(feed.link)} dropped: {ONLY_PUBLIC}")
    return ParsedSource(feed.title, link, feed.warning, posts, skipped, dropped, public_id(feed.id))


def default_workers() -> int:
    return max(1, min(os.cpu_count() or 1, 8))


def _ignore_interrupts() -> None:
    # Ctrl-C reaches the whole process group; the parent decides how to stop, and a parser
    # killed mid-task would only print a traceback and break the pool.
    signal.signal(signal.SIGINT, signal.SIG_IGN)


class ParserPool:
    """Runs parse_and_normalise in a process pool started on first use (or inline)."""

    def __init__(self, workers: int) -> None:
        self.workers = workers
        self._executor: Executor | None = None

    async def parse(
        self,
        body: bytes,
        url: str,
        content_type: str | None,
        source: str,
        default_category: str | None,
        now: datetime,
    ) -> ParsedSource:
        args = (body, url, content_type, source, default_category, now)
        if self.workers <= 1:
            return parse_and_normalise(*args)
        loop = asyncio.get_running_loop()
        try:
            return await loop.run_in_executor(self._pool(), parse_and_normalise, *args)
        except BrokenProcessPool:
            # The worker died (out of memory, a crash in a C parser) on this feed: start a
            # fresh pool for the other sources and blame only this one.
            self._shutdown()
            raise ParseError("the parser process died reading this feed") from None

    def _pool(self) -> Executor:
        if self._executor is None:
            # "spawn": a fork of a process running an event loop and database threads is
            # not safe; spawned workers import only what parsing needs.
            self._executor = ProcessPoolExecutor(
                self.workers,
                mp_context=multiprocessing.get_context("spawn"),
                initializer=_ignore_interrupts,
            )
        return self._executor

    def _shutdown(self) -> None:
        if self._executor is not None:
            self._executor.shutdown(wait=False, cancel_futures=True)
            self._executor = None

    async def aclose(self) -> None:
        executor, self._executor = self._executor, None
        if executor is not None:
            await asyncio.to_thread(executor.shutdown, wait=True)
