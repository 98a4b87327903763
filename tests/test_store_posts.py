"""Storing posts on SQLite and PostgreSQL: idempotent, change-aware, one post per URL."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime, timedelta

from syndicate.models import Enclosure, Post
from syndicate.store import Store

T0 = datetime(2015, 12, 1, 9, tzinfo=UTC)


def post(guid: str, source: str = "blog", **changes: object) -> Post:
    base = Post(
        source=source,
        guid=guid,
        url=f"https://blog.example/{guid}",
        title=f"Post {guid}",
        published=T0,
        updated=T0,
        first_seen=T0,
        content_hash=f"h-{guid}",
        authors=("Ann",),
        categories=("Rivers", "Events"),
        summary_html="<p>s</p>",
        content_html="<p>c</p>",
        excerpt="c",
        enclosure=Enclosure("https://blog.example/r.pdf", "application/pdf", 10),
    )
    return replace(base, **changes)


async def test_repolling_never_duplicates(store: Store) -> None:
    batch = [post("1"), post("2")]
    await store.upsert_posts("blog", batch, T0)
    counts = await store.upsert_posts("blog", batch, T0 + timedelta(hours=1))
    assert (counts.new, counts.updated, counts.unchanged) == (0, 0, 2)
    assert await store.count_posts() == 2


async def test_first_upsert_counts_new(store: Store) -> None:
    counts = await store.upsert_posts("blog", [post("1"), post("2")], T0)
    assert (counts.new, counts.updated, counts.unchanged) == (2, 0, 0)


async def test_a_changed_entry_updates_its_row(store: Store) -> None:
    await store.upsert_posts("blog", [post("1")], T0)
    later = T0 + timedelta(days=2)
    edited = post("1", title="Post 1 (corrected)", content_hash="h-1b", first_seen=later)
    counts = await store.upsert_posts("blog", [edited], later)
    assert (counts.new, counts.updated, counts.unchanged) == (0, 1, 0)
    [stored] = await store.recent_posts()
    assert stored.title == "Post 1 (corrected)"
    assert stored.updated == later  # the feed gave no newer date, so "now"
    assert stored.first_seen == T0  # first seen stays first seen
    assert stored.published == T0


async def test_a_dateless_entry_keeps_its_first_date(store: Store) -> None:
    await store.upsert_posts("blog", [post("1", published=T0, updated=T0, first_seen=T0)], T0)
    later = T0 + timedelta(days=5)
    edited = post("1", published=later, updated=later, first_seen=later, content_hash="h-1b")
    await store.upsert_posts("blog", [edited], later)
    [stored] = await store.recent_posts()
    assert stored.published == T0


async def test_duplicate_guids_in_one_batch_count_once(store: Store) -> None:
    counts = await store.upsert_posts("blog", [post("1"), post("1", title="again"), post("2")], T0)
    assert (counts.new, counts.updated, counts.unchanged) == (2, 0, 0)
    titles = sorted(p.title for p in await store.recent_posts())
    assert titles == ["Post 1", "Post 2"]


async def test_same_url_through_two_sources_is_one_post(store: Store) -> None:
    await store.upsert_posts("blog", [post("1")], T0)
    counts = await store.upsert_posts(
        "planet", [post("x", source="planet", url="https://blog.example/1")], T0
    )
    assert (counts.new, counts.unchanged) == (0, 1)
    assert await store.count_posts() == 1


async def test_posts_round_trip(store: Store) -> None:
    original = post("1")
    await store.upsert_posts("blog", [original], T0)
    [stored] = await store.recent_posts()
    assert stored.id is not None
    assert replace(stored, id=None) == original


async def test_recent_posts_newest_first(store: Store) -> None:
    batch = [post(str(i), published=T0 + timedelta(days=i)) for i in range(5)]
    await store.upsert_posts("blog", batch, T0)
    recent = await store.recent_posts(3)
    assert [p.guid for p in recent] == ["4", "3", "2"]
    assert [p.guid for p in await store.recent_posts(10, source="other")] == []


async def test_many_posts_in_one_batch(store: Store) -> None:
    batch = [post(str(i)) for i in range(2_000)]
    counts = await store.upsert_posts("blog", batch, T0)
    assert counts.new == 2_000
    again = await store.upsert_posts("blog", batch, T0)
    assert again.unchanged == 2_000
