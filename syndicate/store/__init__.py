"""All SQL lives behind one Store object; its methods come from one module per noun.

    async with await Store.open(settings.database_url) as store:
        await store.claim_run("digest:2015-12", owner, now)

Opening a store applies pending migrations, so every command works on a fresh database.
"""

from __future__ import annotations

import asyncio
from types import TracebackType

from sqlalchemy.exc import DBAPIError, SQLAlchemyError
from sqlalchemy.ext.asyncio import AsyncEngine

from syndicate.errors import StoreError
from syndicate.store import migrate
from syndicate.store.bounces import BounceQueries
from syndicate.store.dashboard import DashboardQueries
from syndicate.store.deliveries import DeliveryQueries
from syndicate.store.engine import create_engine, safe_url
from syndicate.store.forum import ForumQueries
from syndicate.store.health import DatabaseHealth, HealthQueries
from syndicate.store.health import first_line as _first_line
from syndicate.store.issues import IssueQueries
from syndicate.store.posts import PostQueries
from syndicate.store.published import PublishedQueries
from syndicate.store.runs import RunQueries
from syndicate.store.sources import SourceQueries
from syndicate.store.subscriber_batches import SubscriberBatchQueries
from syndicate.store.subscribers import SubscriberQueries
from syndicate.store.versions import VersionQueries

__all__ = ["DatabaseHealth", "Store"]


class Store(
    BounceQueries,
    DashboardQueries,
    DeliveryQueries,
    ForumQueries,
    HealthQueries,
    IssueQueries,
    PostQueries,
    PublishedQueries,
    RunQueries,
    SourceQueries,
    SubscriberBatchQueries,
    SubscriberQueries,
    VersionQueries,
):
    def __init__(self, engine: AsyncEngine, url: str) -> None:
        self.engine = engine
        self.url = url
        self._sqlite_writer = asyncio.Lock() if engine.dialect.name == "sqlite" else None

    @classmethod
    async def open(cls, url: str, *, upgrade: bool = True) -> Store:
        """Connect, and unless told not to, migrate the schema to the newest revision."""
        try:
            store = cls(create_engine(url), url)
        except (SQLAlchemyError, ValueError, OSError) as error:
            raise StoreError(f"cannot use database {safe_url(url)}: {error}") from None
        if upgrade:
            try:
                await store.upgrade()
            except BaseException:
                await store.close()
                raise
        return store

    async def upgrade(self) -> tuple[str | None, str]:
        """Apply pending migrations; return the (before, after) revisions."""
        try:
            async with self.write() as conn:
                return await conn.run_sync(migrate.upgrade)
        except (DBAPIError, OSError) as error:
            raise StoreError(
                f"cannot open database {safe_url(self.url)}: {_first_line(error)}"
            ) from None
        except migrate.MigrationError as error:
            # Alembic does not know the database's revision: a newer syndicate migrated it.
            raise StoreError(
                f"cannot migrate {safe_url(self.url)}: {error}; is it from a newer syndicate?"
            ) from None

    async def revision(self) -> str | None:
        async with self.read() as conn:
            return await conn.run_sync(migrate.current_revision)

    async def close(self) -> None:
        await self.engine.dispose()

    async def __aenter__(self) -> Store:
        return self

    async def __aexit__(
        self,
        kind: type[BaseException] | None,
        error: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        await self.close()
