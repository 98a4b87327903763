"""A big feed is stored a batch at a time (issue 18: a 10,000-entry feed under 150 MB):
posts come back from a parser process packed, the store takes them batch by batch in one
transaction, and forum linking reads posts a page at a time."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import pytest
from test_forum import linked_project
from test_store_posts import post

from syndicate.clock import FrozenClock
from syndicate.forum import linker
from syndicate.ingest.workers import PackedPosts, ParserPool, post_batches
from syndicate.store import Store

NOW = datetime(2015, 12, 20, 12, 0, tzinfo=UTC)


def big_feed(entries: int) -> bytes:
    items = "".join(
        f"<item><title>Post {n}</title><link>https://blog.example/{n}/</link>"
        f"<guid>g{n}</guid><description>&lt;p&gt;Body {n}&lt;/p&gt;</description></item>"
        for n in range(entries)
    )
    head = '<?xml version="1.0"?><rss version="2.0"><channel><title>t</title>'
    return f"{head}{items}</channel></rss>".encode()


def test_packed_posts_are_the_same_posts_a_batch_at_a_time() -> None:
    posts = [post(str(n)) for n in range(1234)]
    packed = PackedPosts.pack(posts, size=500)
    assert len(packed) == 1234 and len(packed.chunks) == 3
    assert list(packed) == posts
    assert [len(batch) for batch in post_batches(packed)] == [500, 500, 234]
    assert packed[1233] == posts[1233] and packed[:2] == posts[:2]
    assert [len(batch) for batch in post_batches(posts, 1000)] == [1000, 234]
    assert list(PackedPosts.pack([])) == []


async def test_a_parser_process_sends_the_posts_back_packed() -> None:
    pool = ParserPool(workers=2)
    try:
        parsed = await pool.parse(big_feed(1200), "https://blog.example/feed", None, "b", None, NOW)
    finally:
        await pool.aclose()
    assert isinstance(parsed.posts, PackedPosts)
    assert [p.url for p in parsed.posts] == [f"https://blog.example/{n}/" for n in range(1200)]


async def test_batches_are_stored_in_one_go_and_a_repeated_guid_counts_once(
    store: Store,
) -> None:
    first = [post("1"), post("2", title="First 2")]
    second = [post("2", title="Second 2", content_hash="other"), post("3")]
    counts = await store.upsert_post_batches("blog", [first, second], NOW)
    assert (counts.new, counts.updated, counts.unchanged) == (3, 0, 0)
    titles = {p.guid: p.title for p in await store.recent_posts(10)}
    assert titles == {"1": "Post 1", "2": "First 2", "3": "Post 3"}  # the first one wins
    again = await store.upsert_post_batches("blog", [first, second], NOW)
    assert (again.new, again.updated, again.unchanged) == (0, 0, 3)


async def test_linking_goes_through_every_post_a_page_at_a_time(
    project: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(linker, "LINK_BATCH", 3)
    settings, store = await linked_project(project)
    async with store:
        report = await linker.link_discussions(settings, store, FrozenClock(NOW))
        again = await linker.link_discussions(settings, store, FrozenClock(NOW))
        relinked = await linker.link_discussions(settings, store, FrozenClock(NOW), everything=True)
        posts = await store.recent_posts(100)
    assert (report.linked, report.without_link, report.failed) == (28, 0, 0)
    assert (again.linked, again.without_link) == (0, 0)
    assert relinked.linked == 28
    assert all(p.discussion_url for p in posts) and len(posts) == 28
