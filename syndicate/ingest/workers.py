"""Parsing and normalising in worker processes.

Both are pure CPU work in Python (feedparser, then nh3 and URL handling per entry). Done in
the event loop's process they would cap ingest at one core and stall everything else in the
loop (the web app, the scheduler) while a 10,000-entry feed is read. A pool of worker
processes uses every core and keeps the loop responsive.

Each feed may use `[ingest] parse_cpu_limit` seconds of CPU in its worker (RLIMIT_CPU, set
afresh per feed); past that the kernel kills the process. This is the backstop for input
nothing else foresaw: the HTML shapes known to be slow are refused per entry before nh3 sees
them (nesting.py).

A worker that dies (that limit, out of memory, a crash in a C parser) breaks the whole pool:
every feed in it at that moment fails, the culprit and the bystanders alike. Each of them is
parsed again alone, in a process of its own, so a bystander succeeds and only a feed whose
own process dies too fails. The broken pool is replaced once, by whichever feed notices
first; the others leave its successor alone.

`workers = 1` in [ingest] parses in-process instead: no pool, and no CPU limit.
"""

from __future__ import annotations

import asyncio
import functools
import logging
import math
import multiprocessing
import os
import pickle
import resource
import signal
import zlib
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import Executor, ProcessPoolExecutor
from concurrent.futures.process import BrokenProcessPool
from dataclasses import dataclass, field, replace
from datetime import datetime
from multiprocessing.connection import Connection
from typing import Any, overload

from syndicate.ingest.normalise import absolute_url, normalise_entry
from syndicate.ingest.parse import ParseError, parse_feed
from syndicate.ingest.raw import RawEntry
from syndicate.links import ONLY_PUBLIC, public_id, public_url, shown
from syndicate.markup.nesting import TooDeeplyNested
from syndicate.models import Post

log = logging.getLogger(__name__)

# CPU seconds per feed. On the development machine a 10 MB feed takes about 6 s with long
# posts, and about 40 s as 45,000 tiny entries.
DEFAULT_CPU_LIMIT = 60


# Posts per packed batch (PackedPosts): what the store takes at a time.
PACK_BATCH = 500


@dataclass(frozen=True, slots=True)
class PackedPosts(Sequence[Post]):
    """Posts pickled and compressed a batch at a time.

    What a worker process sends back for a 10,000-entry feed is then a few MB of bytes
    rather than tens of MB of objects; the store unpacks one batch at a time (batches()),
    so the whole feed's posts are never in memory at once as objects. Iterating, len() and
    indexing work as on a list, for callers that want the posts themselves.
    """

    chunks: tuple[bytes, ...]
    count: int

    @classmethod
    def pack(cls, posts: Sequence[Post], size: int = PACK_BATCH) -> PackedPosts:
        chunks = tuple(
            # Level 1: most of the saving (HTML compresses well) for little CPU.
            zlib.compress(pickle.dumps(list(posts[at : at + size]), pickle.HIGHEST_PROTOCOL), 1)
            for at in range(0, len(posts), size)
        )
        return cls(chunks, len(posts))

    def batches(self) -> Iterator[list[Post]]:
        for chunk in self.chunks:
            batch: list[Post] = pickle.loads(zlib.decompress(chunk))  # noqa: S301 (our own)
            yield batch

    def __len__(self) -> int:
        return self.count

    def __iter__(self) -> Iterator[Post]:
        for batch in self.batches():
            yield from batch

    @overload
    def __getitem__(self, index: int) -> Post: ...
    @overload
    def __getitem__(self, index: slice) -> list[Post]: ...
    def __getitem__(self, index: int | slice) -> Post | list[Post]:
        return list(self)[index]


def post_batches(posts: Sequence[Post], size: int = PACK_BATCH) -> Iterator[Sequence[Post]]:
    """`posts` a batch at a time: PackedPosts' own batches, or slices of a list."""
    if isinstance(posts, PackedPosts):
        yield from posts.batches()
        return
    for at in range(0, len(posts), size):
        yield posts[at : at + size]


@dataclass(frozen=True, slots=True)
class ParsedSource:
    """What a worker sends back: the feed's own fields and its normalised posts."""

    title: str | None
    link: str | None  # the feed's home page: a public http(s) URL, or None
    warning: str | None
    posts: Sequence[Post]  # a list, or PackedPosts from a worker process
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
    language: str | None = None,
) -> ParsedSource:
    """Bytes -> posts (`language`: the source's key, which overrides the feed's). Raises
    ParseError when the bytes are not a feed."""
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
                    language=language,
                )
            )
        except Exception as error:  # one odd entry must not cost the others
            reason = str(error) if isinstance(error, TooDeeplyNested) else repr(error)
            skipped.append(f"entry {index} ({_label(entry)}) skipped: {reason}")
    link = public_url(absolute_url(feed.link, url)) if feed.link else None
    if feed.link and not link:
        dropped.insert(0, f"the feed's link {shown(feed.link)} dropped: {ONLY_PUBLIC}")
    return ParsedSource(feed.title, link, feed.warning, posts, skipped, dropped, public_id(feed.id))


def _label(entry: RawEntry, limit: int = 100) -> str:
    """The entry's link or id, made safe for a log line (it is the feed's text)."""
    text = entry.link or entry.id or "no link or id"
    text = "".join(char if char.isprintable() else "?" for char in text[: limit + 1])
    return text if len(text) <= limit else text[: limit - 1] + "…"


def default_workers() -> int:
    return max(1, min(os.cpu_count() or 1, 8))


ParseTask = Callable[[bytes, str, str | None, str, str | None, datetime, str | None], ParsedSource]


def packed(task: ParseTask, *args: Any) -> ParsedSource:
    """`task`'s result with its posts packed (PackedPosts), to cross a process boundary."""
    parsed = task(*args)
    return replace(parsed, posts=PackedPosts.pack(parsed.posts))


def run_limited(task: ParseTask, cpu_limit: int, *args: Any) -> ParsedSource:
    """Run `task` in this worker with at most `cpu_limit` more seconds of CPU.

    RLIMIT_CPU counts the whole life of the process, so the soft limit is set to what the
    worker has used so far plus the allowance, and put back afterwards. Past it the kernel
    sends SIGXCPU, which ends the process even inside nh3's or expat's C code.
    """
    soft, hard = resource.getrlimit(resource.RLIMIT_CPU)
    usage = resource.getrusage(resource.RUSAGE_SELF)
    limit = math.ceil(usage.ru_utime + usage.ru_stime) + cpu_limit
    if hard != resource.RLIM_INFINITY:
        limit = min(limit, hard)
    resource.setrlimit(resource.RLIMIT_CPU, (limit, hard))
    try:
        return task(*args)
    finally:
        resource.setrlimit(resource.RLIMIT_CPU, (soft, hard))


def _start_worker() -> None:
    # Ctrl-C reaches the whole process group; the parent decides how to stop, and a parser
    # killed mid-task would only print a traceback and break the pool.
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    # SIGXCPU dumps core by default: a parser killed at its CPU limit leaves no core file.
    resource.setrlimit(resource.RLIMIT_CORE, (0, resource.getrlimit(resource.RLIMIT_CORE)[1]))


class ParserDied(Exception):
    """A process parsing one feed alone ended without an answer."""

    def __init__(self, exitcode: int | None, cpu_limit: int) -> None:
        if exitcode == -signal.SIGXCPU:
            how = f"ran over its CPU limit of {cpu_limit} s ([ingest] parse_cpu_limit)"
        elif exitcode is not None and exitcode < 0:
            how = f"was killed by {signal.Signals(-exitcode).name}"
        else:
            how = f"exited with status {exitcode}"
        super().__init__(f"the parser process {how} reading this feed, twice")


def _parse_alone_in_child(
    send: Connection, task: ParseTask, cpu_limit: int, args: tuple[Any, ...]
) -> None:
    _start_worker()
    outcome: ParsedSource | Exception
    try:
        outcome = run_limited(task, cpu_limit, *args)
    except Exception as error:  # ParseError, or a bug: the parent raises it as the pool would
        outcome = error
    try:
        send.send(outcome)
    except Exception as error:  # an exception that does not pickle
        send.send(RuntimeError(f"{outcome!r} ({error})"))


def _parse_alone(task: ParseTask, cpu_limit: int, args: tuple[Any, ...]) -> ParsedSource:
    """Blocking: parse in a new process of its own; ParserDied says how it ended if it did."""
    context = multiprocessing.get_context("spawn")
    receive, send = context.Pipe(duplex=False)
    process = context.Process(
        target=_parse_alone_in_child, args=(send, task, cpu_limit, args), daemon=True
    )
    process.start()
    send.close()  # the child holds the only writer: recv() ends when the child does
    try:
        outcome: ParsedSource | Exception = receive.recv()
    except EOFError:
        process.join()
        raise ParserDied(process.exitcode, cpu_limit) from None
    finally:
        receive.close()
    process.join()
    if isinstance(outcome, Exception):
        raise outcome
    return outcome


class ParserPool:
    """Runs parse_and_normalise in a process pool started on first use (or inline)."""

    def __init__(
        self,
        workers: int,
        cpu_limit: int = DEFAULT_CPU_LIMIT,
        task: ParseTask = parse_and_normalise,  # a module-level function: it is pickled
    ) -> None:
        self.workers = workers
        self.cpu_limit = cpu_limit
        self.task = task
        self._executor: Executor | None = None
        self._alone = asyncio.Semaphore(workers)  # feeds parsed again, each in its process

    async def parse(
        self,
        body: bytes,
        url: str,
        content_type: str | None,
        source: str,
        default_category: str | None,
        now: datetime,
        language: str | None = None,
    ) -> ParsedSource:
        args = (body, url, content_type, source, default_category, now, language)
        if self.workers <= 1:
            return self.task(*args)
        loop = asyncio.get_running_loop()
        executor = self._pool()
        task = functools.partial(packed, self.task)
        try:
            return await loop.run_in_executor(executor, run_limited, task, self.cpu_limit, *args)
        except BrokenProcessPool:
            self._discard(executor)
        # A worker died with this feed in the pool, maybe reading it, maybe reading another.
        log.info("parsing again in a process of its own", extra={"source": source})
        async with self._alone:
            try:
                return await asyncio.to_thread(_parse_alone, task, self.cpu_limit, args)
            except ParserDied as died:
                raise ParseError(str(died)) from None

    def _pool(self) -> Executor:
        if self._executor is None:
            # "spawn": a fork of a process running an event loop and database threads is
            # not safe; spawned workers import only what parsing needs.
            self._executor = ProcessPoolExecutor(
                self.workers,
                mp_context=multiprocessing.get_context("spawn"),
                initializer=_start_worker,
            )
        return self._executor

    def _discard(self, broken: Executor) -> None:
        """Drop a broken pool, once: the next parse starts a new one, which stays."""
        if self._executor is broken:
            self._executor = None
            broken.shutdown(wait=False, cancel_futures=True)
            log.warning("a parser process died; the feeds it held are parsed again one by one")

    async def aclose(self) -> None:
        executor, self._executor = self._executor, None
        if executor is not None:
            await asyncio.to_thread(executor.shutdown, wait=True)
