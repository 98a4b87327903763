"""Subscribers a batch at a time: what an import of a big list writes, and what an export
reads, without a statement or a result that grows with the list.

    async with store.subscriber_batch() as batch:   # one transaction
        known = await batch.known(addresses)        # one SELECT per CHUNK addresses
        ...
        ids = await batch.insert(new_rows)          # executemany, multi-row VALUES
        await batch.update(changes)                 # executemany per set of changed columns

Every IN list is cut at CHUNK, far below SQLite's 32,766 variables, whatever the caller's
batch size.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterable, Mapping, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass
from typing import Any

from sqlalchemy import bindparam, select, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.ext.asyncio import AsyncConnection

from syndicate.models import Subscriber
from syndicate.store.base import Queries
from syndicate.store.subscribers import subscriber_from_row
from syndicate.store.tables import subscribers, suppressions

CHUNK = 5000  # values in one IN list
STREAM_ROWS = 5000  # rows fetched at a time when streaming


@dataclass(frozen=True, slots=True)
class KnownSubscriber:
    """What an import compares a line with; the rest of the row is never touched."""

    id: int
    name: str
    categories: tuple[str, ...]


class SubscriberBatch:
    """The statements of one batch, on the connection of its transaction."""

    def __init__(self, conn: AsyncConnection) -> None:
        self._conn = conn

    async def known(self, emails: Iterable[str]) -> dict[str, KnownSubscriber]:
        """The subscribers among these (normalised) addresses, by address."""
        query = select(
            subscribers.c.id, subscribers.c.email, subscribers.c.name, subscribers.c.categories
        )
        found: dict[str, KnownSubscriber] = {}
        for chunk in _chunks(emails):
            rows = await self._conn.execute(query.where(subscribers.c.email.in_(chunk)))
            for row in rows:
                found[row.email] = KnownSubscriber(row.id, row.name, tuple(row.categories or ()))
        return found

    async def suppressed(self, hashes: Iterable[str]) -> set[str]:
        """Which of these address hashes are suppressed (their address was forgotten)."""
        query = select(suppressions.c.email_sha256)
        found: set[str] = set()
        for chunk in _chunks(hashes):
            rows = await self._conn.execute(query.where(suppressions.c.email_sha256.in_(chunk)))
            found.update(row.email_sha256 for row in rows)
        return found

    async def insert(self, rows: Sequence[Mapping[str, Any]]) -> dict[str, int]:
        """Insert new subscribers; their ids by address. An address that is there already
        (another process added it since `known`) is skipped and absent from the answer:
        the unique constraint decides, as in insert_subscriber."""
        if not rows:
            return {}
        dialect = postgresql if self._conn.dialect.name == "postgresql" else sqlite
        statement = (
            dialect.insert(subscribers)
            .on_conflict_do_nothing(index_elements=["email"])
            .returning(subscribers.c.id, subscribers.c.email)
        )
        values = [{**row, "categories": list(row.get("categories") or ())} for row in rows]
        result = await self._conn.execute(statement, values)
        return {row.email: row.id for row in result}

    async def update(self, changes: Sequence[tuple[int, Mapping[str, Any]]]) -> None:
        """Set the given columns of each subscriber id: one executemany per set of columns,
        so a column a line does not change is not written (not even with its own value)."""
        groups: dict[tuple[str, ...], list[dict[str, Any]]] = {}
        for subscriber_id, values in changes:
            params = {f"new_{key}": _bind_value(key, value) for key, value in values.items()}
            groups.setdefault(tuple(sorted(values)), []).append({"row_id": subscriber_id, **params})
        for columns, params in groups.items():
            statement = (
                update(subscribers)
                .where(subscribers.c.id == bindparam("row_id"))
                .values({column: bindparam(f"new_{column}") for column in columns})
            )
            await self._conn.execute(statement, params)


class SubscriberBatchQueries(Queries):
    @asynccontextmanager
    async def subscriber_batch(self) -> AsyncIterator[SubscriberBatch]:
        """One write transaction for one batch: committed when the block ends, rolled back
        if it raises (the batches before it stay)."""
        async with self.write() as conn:
            yield SubscriberBatch(conn)

    async def stream_subscribers(self) -> AsyncIterator[Subscriber]:
        """Every subscriber in id order, fetched STREAM_ROWS at a time (a server-side cursor
        on PostgreSQL), so memory stays flat however long the list."""
        query = select(subscribers).order_by(subscribers.c.id)
        async with self.read() as conn:
            result = await conn.stream(query.execution_options(yield_per=STREAM_ROWS))
            async for row in result.mappings():
                yield subscriber_from_row(row)


def _bind_value(column: str, value: Any) -> Any:
    return list(value or ()) if column == "categories" else value


def _chunks(values: Iterable[str]) -> Iterable[list[str]]:
    chunk: list[str] = []
    for value in values:
        chunk.append(value)
        if len(chunk) == CHUNK:
            yield chunk
            chunk = []
    if chunk:
        yield chunk
