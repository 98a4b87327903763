"""Posts' discussion threads: which posts need linking, and saving what was found."""

from __future__ import annotations

from collections.abc import AsyncIterator, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import bindparam, or_, select, text, update

from syndicate.models import Post
from syndicate.store.base import Queries
from syndicate.store.posts import post_from_row
from syndicate.store.tables import posts
from syndicate.store.values import pairs_table
from syndicate.store.versions import bump

BATCH = 500  # posts a batch of posts_to_link: a few MB of content at most


@dataclass(frozen=True, slots=True)
class Discussion:
    post_id: int
    url: str | None
    key: str | None  # None leaves the post to be linked again next time (the forum was down)
    checked_at: datetime
    topic_id: int | None = None
    reply_count: int | None = None


class ForumQueries(Queries):
    async def posts_to_link(
        self, keys: Mapping[str, str], *, everything: bool = False, batch: int = BATCH
    ) -> AsyncIterator[list[Post]]:
        """Posts of these sources whose discussion was not resolved with the source's current
        key (strategy and template), oldest first, `batch` at a time; all of them when
        `everything`.

        One query however many sources: the sources and their keys are one JSON parameter
        joined as a table (store.values), and the rows are streamed, so neither the
        statement nor the memory grows with the sources or the posts.
        """
        if not keys:
            return
        async with self.read() as conn:
            wanted = pairs_table(conn, keys, "wanted")
            query = select(posts).join(wanted, posts.c.source == wanted.c.key)
            if not everything:
                query = query.where(
                    or_(posts.c.discussion_key.is_(None), posts.c.discussion_key != wanted.c.value)
                )
            query = query.order_by(posts.c.published, posts.c.id)
            if conn.dialect.name == "postgresql":
                # A streamed result is a server-side cursor, which PostgreSQL plans for its
                # first tenth of rows: it walked the posts in `published` order, matching each
                # against every source (100,000 x 5,000 comparisons, 17 s of a warm poll of
                # 5,000 sources). Planned for all rows, it joins the sources to the index on
                # (source, discussion_key) and sorts the few that match.
                await conn.execute(text("SET LOCAL cursor_tuple_fraction = 1"))
            result = await conn.stream(query)
            async for rows in result.partitions(batch):
                yield [post_from_row(row._mapping) for row in rows]

    async def save_discussions(self, found: Sequence[Discussion]) -> None:
        if not found:
            return
        async with self.write() as conn:
            # Parameter names must differ from column names in an UPDATE.
            await conn.execute(
                update(posts)
                .where(posts.c.id == bindparam("post_id"))
                .values(
                    discussion_url=bindparam("d_url"),
                    discussion_key=bindparam("d_key"),
                    forum_checked_at=bindparam("d_checked_at"),
                    forum_topic_id=bindparam("d_topic_id"),
                    reply_count=bindparam("d_replies"),
                ),
                [
                    {
                        "post_id": d.post_id,
                        "d_url": d.url,
                        "d_key": d.key,
                        "d_checked_at": d.checked_at,
                        "d_topic_id": d.topic_id,
                        "d_replies": d.reply_count,
                    }
                    for d in found
                ],
            )
            await bump(conn)

    async def topics_to_refresh(self, checked_before: datetime, limit: int) -> list[Post]:
        """Posts with a forum topic whose reply count is oldest, for a refresh."""
        query = (
            select(posts)
            .where(posts.c.forum_topic_id.is_not(None), posts.c.forum_checked_at < checked_before)
            .order_by(posts.c.forum_checked_at)
            .limit(limit)
        )
        async with self.read() as conn:
            return [post_from_row(row._mapping) for row in await conn.execute(query)]

    async def save_reply_counts(self, counts: Mapping[int, int], checked_at: datetime) -> None:
        if not counts:
            return
        async with self.write() as conn:
            await conn.execute(
                update(posts)
                .where(posts.c.id == bindparam("post_id"))
                .values(reply_count=bindparam("d_count"), forum_checked_at=checked_at),
                [{"post_id": post_id, "d_count": count} for post_id, count in counts.items()],
            )
            await bump(conn)
