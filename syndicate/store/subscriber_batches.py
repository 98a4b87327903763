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

import json
from collections.abc import AsyncIterator, Callable, Iterable, Mapping, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass
from typing import Any

from sqlalchemy import (
    JSON,
    ColumnElement,
    Text,
    bindparam,
    cast,
    func,
    literal,
    select,
    true,
    type_coerce,
    update,
)
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.ext.asyncio import AsyncConnection
from sqlalchemy.types import NullType

from syndicate.store.base import Queries
from syndicate.store.tables import subscribers, suppressions

CHUNK = 5000  # values in one IN list
STREAM_ROWS = 5000  # rows fetched at a time when streaming


@dataclass(frozen=True, slots=True)
class KnownSubscriber:
    """What an import compares a line with; the rest of the row is never touched."""

    id: int
    name: str
    # The column's JSON text as stored: most lines of a list bring the same categories
    # again, and comparing the text is much cheaper than decoding a million of them.
    categories_json: str
    language: str | None  # None: the site's first

    @property
    def categories(self) -> tuple[str, ...]:
        return tuple(json.loads(self.categories_json) or ())


def categories_json(categories: Sequence[str]) -> str:
    """The text the categories column stores for these (SQLAlchemy's JSON serialiser)."""
    return json.dumps(list(categories))


class SubscriberBatch:
    """The statements of one batch, on the connection of its transaction."""

    def __init__(self, conn: AsyncConnection) -> None:
        self._conn = conn

    async def known(self, emails: Iterable[str]) -> dict[str, KnownSubscriber]:
        """The subscribers among these (normalised) addresses, by address."""
        query = select(
            subscribers.c.id,
            subscribers.c.email,
            subscribers.c.name,
            cast(subscribers.c.categories, Text),
            subscribers.c.language,
        )
        found: dict[str, KnownSubscriber] = {}
        for chunk in _chunks(emails):
            where = self._among(subscribers.c.email, chunk)
            rows = (await self._conn.execute(query.where(where))).all()
            for subscriber_id, email, name, categories, language in rows:
                found[email] = KnownSubscriber(subscriber_id, name, categories, language)
        return found

    async def suppressed(self, hashes: Iterable[str]) -> set[str]:
        """Which of these address hashes are suppressed (their address was forgotten)."""
        query = select(suppressions.c.email_sha256)
        found: set[str] = set()
        for chunk in _chunks(hashes):
            where = self._among(suppressions.c.email_sha256, chunk)
            found.update((await self._conn.execute(query.where(where))).scalars().all())
        return found

    def _among(self, column: ColumnElement[str], values: list[str]) -> ColumnElement[bool]:
        """`column IN values` with the values as one JSON array parameter, which the
        database unpacks (json_each on SQLite, json_array_elements_text on PostgreSQL): the
        statement is the same for every chunk, and much cheaper to build and send than an
        IN list of thousands of parameters (or an array the driver adapts value by value)."""
        packed = bindparam("values", json.dumps(values))
        if self._conn.dialect.name == "postgresql":
            unpacked = func.json_array_elements_text(cast(packed, JSON)).column_valued()
            return column.in_(select(unpacked))
        unpacked = func.json_each(packed).table_valued("value").c.value
        return column.in_(select(unpacked))

    async def insert(
        self,
        people: Sequence[tuple[str, str, Sequence[str], str | None]],
        shared: Mapping[str, Any],
    ) -> dict[str, int]:
        """Insert new subscribers, given as (email, name, categories, language), with the
        `shared` values in every other column; their ids by address. An address that is there
        already (another process added it since `known`) is skipped and absent from the
        answer: the unique constraint decides, as in insert_subscriber.

        One statement for them all: INSERT ... SELECT over one JSON parameter holding the
        rows, which the database unpacks itself (json_each, json_array_elements). The
        statement stays the same whatever the number of rows, and no Python code runs per
        row and column to convert values, as it does for an executemany."""
        if not people:
            return {}
        rows = json.dumps(
            [
                [email, name, categories_json(categories), language]
                for email, name, categories, language in people
            ],
            ensure_ascii=False,
        )
        if self._conn.dialect.name == "postgresql":
            value = func.json_array_elements(cast(bindparam("rows", rows), JSON)).column_valued()
            email, name = value.op("->>")(0), value.op("->>")(1)
            chosen = cast(value.op("->>")(2), JSON)
            language = value.op("->>")(3)  # a JSON null is SQL NULL
            dialect: Any = postgresql
        else:
            value = func.json_each(bindparam("rows", rows)).table_valued("value").c.value
            email, name = func.json_extract(value, "$[0]"), func.json_extract(value, "$[1]")
            chosen = func.json_extract(value, "$[2]")
            language = func.json_extract(value, "$[3]")
            dialect = sqlite
        columns = ["email", "name", "categories", "language", *shared]
        constants = [literal(v, subscribers.c[key].type) for key, v in shared.items()]
        # WHERE true: SQLite would read "INSERT ... SELECT ... FROM t ON CONFLICT" as a join.
        source = select(email, name, chosen, language, *constants).where(true())
        statement = (
            dialect.insert(subscribers)
            .from_select(columns, source)
            .on_conflict_do_nothing(index_elements=["email"])
            .returning(subscribers.c.id, subscribers.c.email)
        )
        result = await self._conn.execute(statement)
        return {row[1]: row[0] for row in result}

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

    async def stream_subscriber_rows(
        self, names: Sequence[str]
    ) -> AsyncIterator[Sequence[Sequence[Any]]]:
        """These columns of every subscriber in id order, a block of STREAM_ROWS rows at a
        time (a server-side cursor on PostgreSQL, one await per block), so memory stays flat
        however long the list.

        The values are the driver's, JSON ones as their text: `subscriber_value(name)`
        turns one into what Subscriber holds. At a million rows the conversions are most of
        the cost, and a list shares most values (an import gives all its rows the same
        dates), so the caller converts each distinct value once."""
        raw = [
            cast(column, Text) if isinstance(column.type, JSON) else type_coerce(column, NullType())
            for column in (subscribers.c[name] for name in names)
        ]
        query = select(*raw).order_by(subscribers.c.id)
        async with self.read() as conn:
            result = await conn.stream(query.execution_options(yield_per=STREAM_ROWS))
            async for block in result.partitions(STREAM_ROWS):
                yield block

    def subscriber_value(self, name: str) -> Callable[[Any], Any]:
        """What Subscriber holds for a value of column `name` from stream_subscriber_rows."""
        column = subscribers.c[name]
        if name == "categories":
            return lambda text: tuple(json.loads(text) or ()) if text is not None else ()
        dialect = self.engine.dialect
        process = column.type.dialect_impl(dialect).result_processor(dialect, None)
        return process or (lambda value: value)


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
