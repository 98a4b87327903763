"""A site with more than 1,000 sources: ingest, forum linking (template and feed strategies),
publishing (a feed per source), `sources`, `status` and the worker's start all work, and no
statement grows with the number of sources (issue 18).

Every statement sent to the database is watched (a SQLAlchemy event on every engine): one
with more bound values than FEWER_THAN_SOURCES fails the test, and so does a read-only
command that sends a query per source. SQLite refuses a statement of more than 32,766
variables, or an expression tree deeper than 1,000 (an OR of 1,000 terms), so code that
builds `IN (...)` or an OR chain with a term per source breaks a real site of 5,000 sources.
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner, Result
from sqlalchemy import Engine, event
from sqlalchemy.engine.interfaces import ExecuteStyle

from syndicate.cli import cli
from syndicate.clock import FrozenClock
from syndicate.config import Settings, load_settings
from syndicate.forum.linker import link_discussions
from syndicate.forum.template import post_id
from syndicate.ingest.poll import ingest
from syndicate.publish.build import publish
from syndicate.store import Store
from syndicate.worker import Worker

SOURCES = 1_200  # more than SQLite's old 999 variables and its expression depth of 1,000
FEWER_THAN_SOURCES = 1_000  # bound values a statement may carry (or an executemany row)
NOW = datetime(2015, 12, 20, 12, 0, tzinfo=UTC)
REPO = Path(__file__).resolve().parent.parent
TEMPLATE = "https://forum.example/t/{source}/{slug}-{id}"


@dataclass
class Statements:
    """What was sent to the database: the most bound values in one statement, and a count."""

    largest: int = 0
    largest_sql: str = ""
    count: int = 0
    log: list[str] = field(default_factory=list)

    def check(self) -> None:
        assert self.largest < FEWER_THAN_SOURCES, (
            f"a statement with {self.largest} bound values grows with the sources: "
            f"{self.largest_sql[:300]}"
        )


@pytest.fixture
def statements() -> Iterator[Statements]:
    seen = Statements()

    def before(
        conn: Any,
        cursor: Any,
        statement: str,
        parameters: Any,
        context: Any,
        executemany: bool,
    ) -> None:
        seen.count += 1
        # SQLAlchemy's own batches of an INSERT of many rows are sized by SQLAlchemy, below
        # the database's limits, whatever the number of rows.
        if context is not None and context.execute_style is ExecuteStyle.INSERTMANYVALUES:
            return
        rows = parameters if executemany else [parameters]
        size = max((len(row) for row in rows if row is not None), default=0)
        if size > seen.largest:
            seen.largest, seen.largest_sql = size, statement

    event.listen(Engine, "before_cursor_execute", before)
    try:
        yield seen
    finally:
        event.remove(Engine, "before_cursor_execute", before)


def feed(number: int, entries: int) -> str:
    items = "".join(
        f"<item><title>Post {n} of source {number}</title>"
        f"<link>https://blog{number}.example/{n}/post-{n}/</link>"
        f"<comments>https://talk{number}.example/t/{n}</comments>"
        f"<guid>https://blog{number}.example/?p={n}</guid>"
        f"<category>Rivers</category>"
        f"<pubDate>Tue, {1 + n:02d} Dec 2015 09:00:00 +0000</pubDate>"
        f"<description>Entry {n} of source {number}.</description></item>"
        for n in range(entries)
    )
    return (
        '<?xml version="1.0" encoding="UTF-8"?><rss version="2.0"><channel>'
        f"<title>Blog {number}</title><link>https://blog{number}.example/</link>"
        f"<description>Source {number}</description>{items}</channel></rss>"
    )


def entries_of(number: int) -> int:
    return 1 + number % 2


def write_site(root: Path, database_url: str, count: int) -> Path:
    """A config.toml with `count` local-file sources, every other one on the template
    strategy (the rest on the default, the feed's own comments link)."""
    (root / "in").mkdir(exist_ok=True)
    blocks = []
    for number in range(count):
        path = root / "in" / f"s{number:04d}.xml"
        if not path.exists():
            path.write_text(feed(number, entries_of(number)), encoding="utf-8")
        forum = '\nforum = "template"' if number % 2 == 0 else ""
        blocks.append(f'[[sources]]\nname = "s{number:04d}"\nurl = "in/{path.name}"{forum}\n')
    if not (root / "templates").exists():
        (root / "templates").symlink_to(REPO / "templates")
    config = root / "config.toml"
    config.write_text(
        f"""
[site]
title = "Many sources"
url = "https://many.example"

[storage]
database = "{database_url}"

[ingest]
workers = 1  # tiny feeds: parsing in-process is quicker than starting a pool

[forum]
url_template = "{TEMPLATE}"

[publish]
dir = "public"
formats = ["rss", "atom"]  # a file a source and format, each fsynced: two keep it quick

"""
        + "\n".join(blocks),
        encoding="utf-8",
    )
    return config


async def test_more_than_a_thousand_sources(
    tmp_path: Path, database_url: str, statements: Statements
) -> None:
    config = write_site(tmp_path, database_url, SOURCES)
    settings = load_settings(config)
    assert len(settings.sources) == SOURCES
    clock = FrozenClock(NOW)
    posts = sum(entries_of(number) for number in range(SOURCES))

    async with await Store.open(settings.database_url) as store:
        report = await ingest(settings, store, clock)
        assert not report.failed, report.failed[:3]
        assert len(report.sources) == SOURCES
        assert sum(source.new for source in report.sources) == posts
        assert await store.count_posts() == posts
        assert await store.post_counts() == {f"s{n:04d}": entries_of(n) for n in range(SOURCES)}

        linked = await link_discussions(settings, store, clock)
        assert (linked.linked, linked.without_link, linked.failed) == (posts, 0, 0)
        await _assert_links(store)
        assert (await link_discussions(settings, store, clock)).linked == 0  # all done

        published = await publish(settings, store, clock)
        folder = settings.publish_dir
        for number in range(SOURCES):
            for ext in ("rss", "atom"):
                assert (folder / "source" / f"s{number:04d}.{ext}").is_file()
        text = (folder / "source" / "s0000.atom").read_text(encoding="utf-8")
        assert "Post 0 of source 0" in text and "https://forum.example/t/s0000/" in text
        assert "https://talk1.example/t/1" in (folder / "source" / "s0001.rss").read_text()
        assert len(published.written) >= 2 * SOURCES
        again = await publish(settings, store, clock)
        assert again.written == [] and again.unchanged == published.unchanged + len(
            published.written
        )

        relinked = await link_discussions(settings, store, clock, everything=True)
        assert relinked.linked == posts
        statements.check()

        before = statements.count
        await _start_and_stop_a_worker(settings, store, clock)
        # Reading the sources' states is one query, not one per source.
        assert statements.count - before < SOURCES // 4

    # The command line reads the sources' health and their posts in a few queries.
    for command in ("sources", "status"):
        before = statements.count
        shown = await asyncio.to_thread(invoke, config, command)
        assert shown.exit_code == 0, shown.output
        assert "s0000" in shown.stdout and f"s{SOURCES - 1:04d}" in shown.stdout
        assert statements.count - before < 50, f"`{command}`: a query per source"
    statements.check()

    # Most sources leave the config: their rows and their published feeds go.
    kept = write_site(tmp_path, database_url, 100)
    smaller = load_settings(kept)
    async with await Store.open(smaller.database_url) as store:
        await ingest(smaller, store, clock)
        assert len(await store.source_states()) == 100
        gone = await publish(smaller, store, clock)
        assert len(gone.removed) == 2 * (SOURCES - 100)
        assert not (smaller.publish_dir / "source" / "s0100.rss").exists()
        assert (smaller.publish_dir / "source" / "s0099.rss").is_file()
    statements.check()


async def _assert_links(store: Store) -> None:
    by_source = {post.source: post for post in await store.recent_posts(limit=10_000)}
    template = by_source["s0000"]
    assert template.discussion_url == (
        f"https://forum.example/t/s0000/{template.url.rstrip('/').rsplit('/', 1)[1]}"
        f"-{post_id(template)}"
    )
    assert by_source["s0001"].discussion_url == by_source["s0001"].comments_url
    assert by_source["s1199"].discussion_url == by_source["s1199"].comments_url
    assert all(post.discussion_url for post in by_source.values())


async def _start_and_stop_a_worker(settings: Settings, store: Store, clock: FrozenClock) -> None:
    """Every source was just polled: the worker schedules a poll job for each."""
    worker = Worker(settings, store, clock, owner="many-sources-test")
    await worker.start()
    try:
        await asyncio.wait_for(worker.caught_up.wait(), 60)
        polls = [job for job in worker.scheduler.get_jobs() if job.id.startswith("poll:")]
        assert len(polls) == SOURCES
    finally:
        await worker.stop()


def invoke(config: Path, command: str) -> Result:
    return CliRunner().invoke(cli, ["--config", str(config), command], catch_exceptions=False)
