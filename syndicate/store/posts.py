"""Posts: idempotent upserts keyed by (source, guid), and the reads later stages need."""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable, Sequence
from dataclasses import asdict, dataclass, fields
from datetime import datetime
from typing import Any

from sqlalchemy import Text, bindparam, cast, func, select, true, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.ext.asyncio import AsyncConnection

from syndicate.models import Enclosure, Post, PostKey
from syndicate.store.base import Queries
from syndicate.store.tables import posts
from syndicate.store.versions import bump

_CHUNK = 500  # bound parameters per IN (...) stay well under SQLite's limit
_WRITE_BATCH = 500  # rows per executemany of an upsert


@dataclass(frozen=True, slots=True)
class UpsertCounts:
    new: int = 0
    updated: int = 0
    unchanged: int = 0


class PostQueries(Queries):
    async def upsert_posts(self, source: str, batch: Sequence[Post], now: datetime) -> UpsertCounts:
        """Store one poll's posts: insert new ones, update changed ones, count the rest.

        An entry seen before keeps its id and first-seen time; a changed one (content hash)
        gets a new `updated`. A post whose URL another source already holds is the same
        post, not a new one. Repeated guids within the batch count once (the first wins).
        """
        return await self.upsert_post_batches(source, [batch], now)

    async def upsert_post_batches(
        self, source: str, batches: Iterable[Sequence[Post]], now: datetime
    ) -> UpsertCounts:
        """upsert_posts() of one poll's posts given a batch at a time, in one transaction:
        a 10,000-entry feed's posts (and the rows made of them) need not all be in memory
        at once. A guid repeated in a later batch counts once, as within one."""
        new = updated = unchanged = 0
        seen: set[str] = set()
        async with self.write() as conn:
            known = await _known(conn, source)
            insert = _insert_ignoring_conflicts(conn)
            change = (
                update(posts)
                .where(posts.c.id == bindparam("row_id"))
                .values({c: bindparam(c) for c in _UPDATABLE})
            )
            for batch in batches:
                first = {post.guid: post for post in reversed(batch) if post.guid not in seen}
                unique = list(first.values())[::-1]
                seen.update(first)
                fresh = [post for post in unique if post.guid not in known]
                # A post without a public link (url "") is nobody else's post.
                elsewhere = await _urls_elsewhere(conn, source, {p.url for p in fresh if p.url})
                inserts = [post for post in fresh if post.url not in elsewhere]
                changed = [
                    (post, known[post.guid])
                    for post in unique
                    if post.guid in known and known[post.guid].content_hash != post.content_hash
                ]
                # A few rows at a time: the driver's copy of them for a big batch would
                # otherwise sit in memory all at once, next to the posts themselves.
                for at in range(0, len(inserts), _WRITE_BATCH):
                    await conn.execute(insert, [_row(p) for p in inserts[at : at + _WRITE_BATCH]])
                for at in range(0, len(changed), _WRITE_BATCH):
                    rows = [_update_row(p, old, now) for p, old in changed[at : at + _WRITE_BATCH]]
                    await conn.execute(change, rows)
                new += len(inserts)
                updated += len(changed)
                unchanged += len(unique) - len(inserts) - len(changed)
            if new or updated:
                await bump(conn)
        return UpsertCounts(new=new, updated=updated, unchanged=unchanged)

    async def count_posts(self, source: str | None = None) -> int:
        query = select(func.count()).select_from(posts)
        if source is not None:
            query = query.where(posts.c.source == source)
        async with self.read() as conn:
            return (await conn.execute(query)).scalar_one()

    async def post_counts(self) -> dict[str, int]:
        """Number of posts per source."""
        query = select(posts.c.source, func.count()).group_by(posts.c.source)
        async with self.read() as conn:
            return {source: count for source, count in await conn.execute(query)}

    async def post_keys(self) -> list[PostKey]:
        """Every post without its content, newest first (ties by id, so the order is stable)."""
        query = select(
            posts.c.id,
            posts.c.source,
            # As text, decoded once per distinct list below: 100,000 posts share a few
            # hundred lists of categories, and each decoded tuple is shared too.
            cast(posts.c.categories, Text).label("categories"),
            posts.c.published,
            posts.c.updated,
            posts.c.content_hash,
            posts.c.discussion_url,
            posts.c.reply_count,
            posts.c.language,
        ).order_by(posts.c.published.desc(), posts.c.id.desc())
        decoded: dict[str | None, tuple[str, ...]] = {}

        def categories(text: str | None) -> tuple[str, ...]:
            found = decoded.get(text)
            if found is None:
                found = decoded[text] = tuple(json.loads(text) or ()) if text else ()
            return found

        async with self.read() as conn:
            return [
                PostKey(
                    row.id,
                    row.source,
                    categories(row.categories),
                    row.published,
                    row.updated,
                    row.content_hash,
                    row.discussion_url,
                    row.reply_count,
                    row.language,
                )
                for row in await conn.execute(query)
            ]

    async def post_categories(self) -> list[str]:
        """Every category some stored post has, once each (as spelled; no order promised).

        The database unpacks the JSON lists and removes the repeats, so a few names come
        back rather than a row per post."""
        async with self.read() as conn:
            if conn.dialect.name == "postgresql":
                names = func.json_array_elements_text(posts.c.categories).table_valued("value")
            else:
                names = func.json_each(posts.c.categories).table_valued("value")
            query = select(names.c.value).select_from(posts).join(names, true()).distinct()
            return [str(name) for name in (await conn.execute(query)).scalars()]

    async def month_counts(
        self, month_start: Callable[[datetime], datetime]
    ) -> list[tuple[datetime, int]]:
        """Months with posts, newest first: (the month's start, its number of posts).

        `month_start(moment)` is the first instant of the month `moment` falls in (the site's
        time zone decides, so it is the caller's). Two lookups per month on the index of
        `published` (the newest post before a month, the posts within it), never a pass
        over every row: a site with years of posts has a few hundred months.
        """
        found: list[tuple[datetime, int]] = []
        before: datetime | None = None
        async with self.read() as conn:
            while True:
                newest = select(func.max(posts.c.published))
                if before is not None:
                    newest = newest.where(posts.c.published < before)
                moment = await conn.scalar(newest)
                if moment is None:
                    return found
                start = month_start(moment)
                within = select(func.count()).where(posts.c.published >= start)
                if before is not None:
                    within = within.where(posts.c.published < before)
                found.append((start, int(await conn.scalar(within) or 0)))
                before = start

    async def posts_by_ids(self, ids: Iterable[int]) -> dict[int, Post]:
        wanted, found = list(ids), {}
        async with self.read() as conn:
            for start in range(0, len(wanted), _CHUNK):
                query = select(posts).where(posts.c.id.in_(wanted[start : start + _CHUNK]))
                for row in await conn.execute(query):
                    found[row.id] = post_from_row(row._mapping)
        return found

    async def posts_between(self, start: datetime, end: datetime) -> list[Post]:
        """Posts published in [start, end), oldest first (ties by id)."""
        query = (
            select(posts)
            .where(posts.c.published >= start, posts.c.published < end)
            .order_by(posts.c.published, posts.c.id)
        )
        async with self.read() as conn:
            return [post_from_row(row._mapping) for row in await conn.execute(query)]

    async def recent_posts(self, limit: int = 50, *, source: str | None = None) -> list[Post]:
        """Newest first by published time; ties broken by id so the order is stable."""
        query = select(posts).order_by(posts.c.published.desc(), posts.c.id.desc()).limit(limit)
        if source is not None:
            query = query.where(posts.c.source == source)
        async with self.read() as conn:
            return [post_from_row(row._mapping) for row in await conn.execute(query)]


_UPDATABLE = (
    "url",
    "title",
    "authors",
    "categories",
    "published",
    "updated",
    "summary_html",
    "content_html",
    "excerpt",
    "image_url",
    "image_alt",
    "image_width",
    "image_height",
    "enclosure",
    "comments_url",
    "language",
    "zawgyi",
    "content_hash",
)


@dataclass(frozen=True, slots=True)
class _Known:
    id: int
    content_hash: str
    first_seen: datetime
    published: datetime
    updated: datetime


async def _known(conn: AsyncConnection, source: str) -> dict[str, _Known]:
    rows = await conn.execute(
        select(
            posts.c.guid,
            posts.c.id,
            posts.c.content_hash,
            posts.c.first_seen,
            posts.c.published,
            posts.c.updated,
        ).where(posts.c.source == source)
    )
    return {
        row.guid: _Known(row.id, row.content_hash, row.first_seen, row.published, row.updated)
        for row in rows
    }


async def _urls_elsewhere(conn: AsyncConnection, source: str, urls: Iterable[str]) -> set[str]:
    wanted, found = list(urls), set()
    for start in range(0, len(wanted), _CHUNK):
        chunk = wanted[start : start + _CHUNK]
        result = await conn.execute(
            select(posts.c.url).where(posts.c.url.in_(chunk), posts.c.source != source)
        )
        found.update(result.scalars())
    return found


def _insert_ignoring_conflicts(conn: AsyncConnection) -> Any:
    # Two workers polling the same source at once must not fail on the unique key.
    dialect = postgresql if conn.dialect.name == "postgresql" else sqlite
    return dialect.insert(posts).on_conflict_do_nothing(index_elements=["source", "guid"])


_COLUMNS = tuple(field.name for field in fields(Post) if field.name != "id")


def _row(post: Post) -> dict[str, Any]:
    # Not dataclasses.asdict: its deep copies cost more than the SQL for a batch of posts.
    row = {column: getattr(post, column) for column in _COLUMNS}
    row["authors"] = list(post.authors)
    row["categories"] = list(post.categories)
    row["enclosure"] = asdict(post.enclosure) if post.enclosure else None
    return row


def _update_row(post: Post, old: _Known, now: datetime) -> dict[str, Any]:
    row = _row(post)
    if post.published == post.first_seen:
        # The entry has no usable date, so the normaliser used "now": keep the first one.
        row["published"] = old.published
    # The entry changed: its updated time moves forward even if the feed did not say so.
    row["updated"] = post.updated if post.updated > old.updated else max(now, old.updated)
    return {"row_id": old.id, **{key: row[key] for key in _UPDATABLE}}


def post_from_row(row: Any) -> Post:
    values = dict(row)
    values.pop("discussion_key", None)  # bookkeeping of the forum linker, not part of a Post
    values["authors"] = tuple(values["authors"] or ())
    values["categories"] = tuple(values["categories"] or ())
    values["enclosure"] = Enclosure(**values["enclosure"]) if values["enclosure"] else None
    return Post(**values)


__all__ = ["PostQueries", "UpsertCounts", "post_from_row"]
