"""Change counters: a cheap way to know that what a page shows may have changed.

Every transaction that changes what the site shows of its posts (new and changed posts,
their discussion links and reply counts, the sources' titles and links) bumps the
`content` counter in the same transaction, so a reader sees the new number only together
with the new rows. The web app renders its home page once per value (syndicate.web.home)
instead of once per request. Reading the counter is one primary-key lookup, whatever the
number of posts.

A missing row reads as 0; the first bump inserts it (so a fresh database holds no rows,
which `db copy` expects of its target).
"""

from __future__ import annotations

from sqlalchemy import select
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.ext.asyncio import AsyncConnection

from syndicate.store.base import Queries
from syndicate.store.tables import versions

CONTENT = "content"


class VersionQueries(Queries):
    async def content_version(self) -> int:
        """The `content` counter: it changes whenever what the pages show of posts may have."""
        async with self.read() as conn:
            value = await conn.scalar(select(versions.c.version).where(versions.c.name == CONTENT))
        return int(value or 0)


async def bump(conn: AsyncConnection, name: str = CONTENT) -> None:
    """Add one to counter `name` inside the caller's (writing) transaction.

    Called last in the transaction: on PostgreSQL the row stays locked until the commit, so
    concurrent writers wait for each other only for that long.
    """
    dialect = postgresql if conn.dialect.name == "postgresql" else sqlite
    statement = dialect.insert(versions).values(name=name, version=1)
    await conn.execute(
        statement.on_conflict_do_update(
            index_elements=["name"], set_={"version": versions.c.version + 1}
        )
    )
