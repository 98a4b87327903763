"""The ingest job: poll sources concurrently, then fetch -> parse -> normalise -> store.

One source failing (network, size, garbage, a bug) is recorded against that source and
never stops the others.
"""

from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass, field, replace

from syndicate import __version__
from syndicate.clock import Clock
from syndicate.config import Settings, SourceSettings, local_path
from syndicate.errors import FetchError, UsageError
from syndicate.ingest.backoff import after_failure, after_success
from syndicate.ingest.fetch import Fetcher, Validators
from syndicate.ingest.parse import ParseError
from syndicate.ingest.workers import ParsedSource, ParserPool, default_workers, post_batches
from syndicate.models import SourceState
from syndicate.store import Store

log = logging.getLogger(__name__)

MAX_DROPPED_WARNINGS = 10  # per source and poll


@dataclass(frozen=True, slots=True)
class SourceReport:
    name: str
    status: str  # "ok" | "not modified" | "failed" | "not due" (another worker polled it)
    http_status: int | None = None
    new: int = 0
    updated: int = 0
    unchanged: int = 0
    error: str | None = None
    warning: str | None = None


@dataclass(slots=True)
class IngestReport:
    sources: list[SourceReport] = field(default_factory=list)

    @property
    def failed(self) -> list[SourceReport]:
        return [report for report in self.sources if report.status == "failed"]

    @property
    def changed(self) -> bool:
        return any(report.new or report.updated for report in self.sources)


def make_fetcher(settings: Settings) -> Fetcher:
    ingest = settings.ingest
    return Fetcher(
        user_agent=f"syndicate/{__version__} (+{settings.site.url})",
        connect_timeout=ingest.connect_timeout,
        read_timeout=ingest.read_timeout,
        total_timeout=ingest.total_timeout,
        max_size=ingest.max_size,
        max_redirects=ingest.max_redirects,
        max_connections=ingest.concurrency,
        allow_private=ingest.allow_private,
    )


async def ingest(
    settings: Settings,
    store: Store,
    clock: Clock,
    *,
    only: str | None = None,
    due_only: bool = False,
    fetcher: Fetcher | None = None,
) -> IngestReport:
    """Poll the configured sources (one by name, or those due) and store their posts.

    Polling by hand (`only`, or not `due_only`) includes sources disabled after a 410, so an
    admin can check whether one is back. Posts are stored source by source; the sources'
    poll results are saved together at the end (a crash in between only means the next run
    fetches those sources again, which changes nothing).
    """
    if only is not None and settings.source(only) is None:
        names = ", ".join(s.name for s in settings.sources) or "none configured"
        raise UsageError(f"no source named {only!r} (sources: {names})")
    await store.sync_sources((source.name, source.url) for source in settings.sources)
    states = {state.name: state for state in await store.source_states()}
    now = clock.now()
    selected = [
        source
        for source in settings.sources
        if (source.name == only if only else source.enabled)
        and (not due_only or states[source.name].due(now))
    ]
    poll = Poller.open(settings, store, clock, fetcher)
    try:
        results = await asyncio.gather(
            *(poll.guarded(source, states[source.name]) for source in selected)
        )
    finally:
        await poll.aclose()
    await store.save_source_states([state for _, state in results])
    reports = [report for report, _ in results]
    if any(report.status == "not modified" for report in reports):
        # Nothing was parsed for those: all their stored posts are unchanged.
        counts = await store.post_counts()
        reports = [
            replace(r, unchanged=counts.get(r.name, 0)) if r.status == "not modified" else r
            for r in reports
        ]
    return IngestReport(reports)


@dataclass(frozen=True, slots=True)
class Poller:
    """What polling a source needs, shared by all the sources of one run (or of a worker):
    one HTTP client, one parser pool, and a limit on how many sources are polled at once."""

    settings: Settings
    store: Store
    clock: Clock
    fetcher: Fetcher
    parser: ParserPool
    limit: asyncio.Semaphore
    own_fetcher: bool = True

    @classmethod
    def open(
        cls, settings: Settings, store: Store, clock: Clock, fetcher: Fetcher | None = None
    ) -> Poller:
        """A Poller for `settings`; a `fetcher` given is the caller's to close."""
        return cls(
            settings,
            store,
            clock,
            fetcher or make_fetcher(settings),
            ParserPool(
                settings.ingest.workers or default_workers(), settings.ingest.parse_cpu_limit
            ),
            asyncio.Semaphore(settings.ingest.concurrency),
            own_fetcher=fetcher is None,
        )

    async def aclose(self) -> None:
        await self.parser.aclose()
        if self.own_fetcher:
            await self.fetcher.aclose()

    async def guarded(
        self, source: SourceSettings, state: SourceState
    ) -> tuple[SourceReport, SourceState]:
        async with self.limit:
            try:
                return await self.poll(source, state)
            except Exception as error:
                # A bug must cost one source, not the run; the traceback goes to the log.
                log.exception("unexpected error polling", extra={"source": source.name})
                message = f"internal error: {type(error).__name__}: {error}"
                failed = after_failure(
                    state, now=self.clock.now(), every=source.every, error=message
                )
                return SourceReport(source.name, "failed", error=message), failed

    async def poll(
        self, source: SourceSettings, state: SourceState
    ) -> tuple[SourceReport, SourceState]:
        """fetch -> parse -> normalise -> store for one source; failures recorded on it."""
        now = self.clock.now()
        validators = Validators(state.etag, state.last_modified, state.content_hash)
        try:
            result = await self.fetcher.fetch(
                source.name, self._url(source, state), validators, configured_url=source.url
            )
        except FetchError as error:
            message = str(error).removeprefix(f"{error.source}: ")
            log.warning("fetch failed: %s", message, extra={"source": source.name})
            failed = after_failure(
                state,
                now=now,
                every=source.every,
                error=message,
                status=error.status,
                retry_after=error.retry_after,
                gone=error.gone,
            )
            return SourceReport(source.name, "failed", error.status, error=message), failed

        fetched = replace(
            state,
            etag=result.etag,
            last_modified=result.last_modified,
            content_hash=result.content_hash,
            permanent_url=result.permanent_url or state.permanent_url,
        )
        if result.not_modified or result.body is None:
            report = SourceReport(source.name, "not modified", result.status)
            return report, after_success(fetched, now=now, every=source.every, status=result.status)
        # The body is not kept past the parse: a big feed's bytes need not sit in memory
        # next to its posts while they are stored.
        body, result = result.body, replace(result, body=None)
        try:
            parsed = await self.parser.parse(
                body,
                result.url,
                result.content_type,
                source.name,
                source.category,
                now,
                source.language,
            )
            del body
        except ParseError as error:
            log.warning("%s", error, extra={"source": source.name})
            # Forget the new hash, so that the same bytes are parsed again next time.
            failed = after_failure(
                replace(fetched, content_hash=state.content_hash),
                now=now,
                every=source.every,
                error=str(error),
                status=result.status,
            )
            return SourceReport(source.name, "failed", result.status, error=str(error)), failed
        for problem in filter(None, [parsed.warning, *parsed.skipped]):
            log.warning("%s", problem, extra={"source": source.name})
        _warn_dropped(source.name, parsed.dropped)

        counts = await self.store.upsert_post_batches(source.name, post_batches(parsed.posts), now)
        log.info(
            "%d new, %d updated, %d unchanged",
            counts.new,
            counts.updated,
            counts.unchanged,
            extra={"source": source.name},
        )
        report = SourceReport(
            source.name,
            "ok",
            result.status,
            counts.new,
            counts.updated,
            counts.unchanged,
            warning=_warning(parsed),
        )
        done = replace(
            fetched, feed_title=parsed.title, feed_link=parsed.link, feed_id=parsed.feed_id
        )
        return report, after_success(done, now=now, every=source.every, status=result.status)

    def _url(self, source: SourceSettings, state: SourceState) -> str:
        if state.permanent_url:
            return state.permanent_url
        try:
            path = local_path(source.url, self.settings.base_dir)
        except ValueError:
            return source.url  # the fetcher reports what is wrong with it
        return str(path) if path is not None else source.url


def _warn_dropped(source: str, dropped: list[str]) -> None:
    """One line per entry that lost a URL, at most MAX_DROPPED_WARNINGS a poll: a feed full
    of bad links must not bury every other line of the log."""
    for line in dropped[:MAX_DROPPED_WARNINGS]:
        log.warning("%s", line, extra={"source": source})
    if len(dropped) > MAX_DROPPED_WARNINGS:
        log.warning(
            "%d more entries with URLs dropped",
            len(dropped) - MAX_DROPPED_WARNINGS,
            extra={"source": source},
        )


def _warning(parsed: ParsedSource) -> str | None:
    """The feed's own warning and the first entry skipped, for the report's one line."""
    skipped = parsed.skipped
    if len(skipped) > 1:
        skipped = [f"{len(skipped)} entries skipped, the first: {skipped[0]}"]
    return "; ".join(filter(None, [parsed.warning, *skipped])) or None
