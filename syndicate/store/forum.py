"""Posts' discussion threads: which posts need linking, and saving what was found."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import and_, bindparam, or_, select, update

from syndicate.models import Post
from syndicate.store.base import Queries
from syndicate.store.posts import post_from_row
from syndicate.store.tables import posts
from syndicate.store.versions import bump


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
        self,
        keys: Mapping[str, str],
        *,
        everything: bool = False,
        after: tuple[datetime, int] | None = None,
        limit: int | None = None,
    ) -> list[Post]:
        """Posts of these sources whose discussion was not resolved with the source's current
        key (strategy and template), oldest first; all of them when `everything`.

        A page at a time with `limit`, the next one `after` the (published, id) of the last
        post of the one before: a 10,000-entry feed's posts need not be in memory at once."""
        if not keys:
            return []
        if everything:
            condition = posts.c.source.in_(list(keys))
        else:
            condition = or_(
                *(
                    and_(
                        posts.c.source == source,
                        or_(posts.c.discussion_key.is_(None), posts.c.discussion_key != key),
                    )
                    for source, key in keys.items()
                )
            )
        if after is not None:
            published, last_id = after
            condition = and_(
                condition,
                or_(
                    posts.c.published > published,
                    and_(posts.c.published == published, posts.c.id > last_id),
                ),
            )
        query = select(posts).where(condition).order_by(posts.c.published, posts.c.id)
        if limit is not None:
            query = query.limit(limit)
        async with self.read() as conn:
            return [post_from_row(row._mapping) for row in await conn.execute(query)]

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
