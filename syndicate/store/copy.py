"""Copying every row of one syndicate database into another, empty one (SQLite to PostgreSQL).

    report = await copy_database("sqlite:////srv/syndicate/var/syndicate.db", settings.database_url)

Both databases are migrated to the newest schema first, so their tables are the same. The
tables are copied in foreign-key order, a batch at a time (a big database never sits in
memory), in one transaction on the target: the copy happens entirely or not at all. The
source is read in one transaction too, a consistent snapshot even if something writes to it
meanwhile (what is written after the snapshot is not copied: stop the worker first). A target
that already has rows is refused. Each id counter of the target is then moved past the
copied ids and past every id the source ever handed out (a forgotten subscriber's row is
gone, but their id is in old links and must never be given to someone else).
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from contextlib import AsyncExitStack, asynccontextmanager
from dataclasses import dataclass
from pathlib import Path

from sqlalchemy import Table, func, insert, select, text
from sqlalchemy.engine import URL, make_url
from sqlalchemy.exc import DBAPIError
from sqlalchemy.ext.asyncio import AsyncConnection

from syndicate.errors import StoreError, UsageError
from syndicate.store import Store, _first_line
from syndicate.store.engine import async_url, safe_url
from syndicate.store.tables import metadata

BATCH_SIZE = 1000  # rows read and written at a time


@dataclass(frozen=True, slots=True)
class CopyReport:
    source: str  # both URLs with any password masked
    target: str
    revision: str
    rows: dict[str, int]  # copied per table, in the order they were copied

    @property
    def total(self) -> int:
        return sum(self.rows.values())


async def copy_database(
    source_url: str,
    target_url: str,
    *,
    batch_size: int = BATCH_SIZE,
    on_table: Callable[[str, int], None] | None = None,
) -> CopyReport:
    """Copy every row of every table from `source_url` into the empty `target_url`.

    `on_table(name, rows)` is called as each table is done. Raises UsageError when the source
    is the target or a SQLite file that does not exist, StoreError when the target has rows
    or a row cannot be written (nothing is copied then).
    """
    _check_source(source_url, target_url)
    async with AsyncExitStack() as stack:
        source = await stack.enter_async_context(await Store.open(source_url))
        target = await stack.enter_async_context(await Store.open(target_url))
        revision = await target.revision()
        source_revision = await source.revision()
        if revision is None or source_revision != revision:
            raise StoreError(
                f"{safe_url(source_url)} is at revision {source_revision} and "
                f"{safe_url(target_url)} at {revision}; both must be at the same revision"
            )
        rows: dict[str, int] = {}
        copying: str | None = None  # the table being copied, for the error message
        try:
            async with target.write() as into, _snapshot(source) as out:
                await _lock_tables(into)
                await _refuse_rows(into, target_url)
                handed_out = await _ids_handed_out(out)
                for table in metadata.sorted_tables:
                    copying = table.name
                    rows[table.name] = await _copy_table(out, into, table, batch_size)
                    if on_table is not None:
                        on_table(table.name, rows[table.name])
                copying = None
                if into.dialect.name == "postgresql":
                    await _reset_sequences(into, handed_out)
                else:
                    await _raise_sqlite_sequences(into, handed_out)
        except DBAPIError as error:
            what = f"table {copying}" if copying else "the copy"
            raise StoreError(
                f"cannot copy {what} into {safe_url(target_url)}, so nothing was copied: "
                f"{_first_line(error)}"
            ) from None
    return CopyReport(safe_url(source_url), safe_url(target_url), revision, rows)


def _check_source(source_url: str, target_url: str) -> None:
    source, target = _comparable(source_url), _comparable(target_url)
    if source == target:
        raise UsageError(f"{safe_url(source_url)} is the target database itself")
    if source.get_backend_name() == "sqlite" and source.database not in (None, "", ":memory:"):
        path = Path(source.database)
        if not path.is_file():
            # Opening it would create an empty database, and there would be nothing to copy.
            raise UsageError(f"cannot copy from {safe_url(source_url)}: no such file {path}")


def _comparable(url: str) -> URL:
    """The URL with the async driver and, for a SQLite file, its absolute path."""
    parsed = make_url(async_url(url))
    if parsed.get_backend_name() == "sqlite" and parsed.database not in (None, "", ":memory:"):
        parsed = parsed.set(database=str(Path(parsed.database).resolve()))
    return parsed


@asynccontextmanager
async def _snapshot(store: Store) -> AsyncIterator[AsyncConnection]:
    """A read-only transaction that sees one state of the whole database."""
    async with store.read() as conn:
        if conn.dialect.name == "postgresql":
            # Read committed would let each table's SELECT see a later state than the last.
            conn = await conn.execution_options(
                isolation_level="REPEATABLE READ", postgresql_readonly=True
            )
        # SQLite in WAL mode: one read transaction sees one snapshot.
        async with conn.begin():
            yield conn


async def _lock_tables(conn: AsyncConnection) -> None:
    # On SQLite the write transaction (BEGIN IMMEDIATE) already holds off other writers. On
    # PostgreSQL this does, so no row lands between the emptiness check and the copy.
    if conn.dialect.name == "postgresql":
        names = ", ".join(
            conn.dialect.identifier_preparer.format_table(table) for table in metadata.sorted_tables
        )
        await conn.execute(text(f"LOCK TABLE {names} IN EXCLUSIVE MODE"))


async def _refuse_rows(conn: AsyncConnection, url: str) -> None:
    found = {}
    for table in metadata.sorted_tables:
        count = (await conn.execute(select(func.count()).select_from(table))).scalar_one()
        if count:
            found[table.name] = count
    if found:
        listed = ", ".join(f"{count_rows(count)} in {name}" for name, count in found.items())
        raise StoreError(
            f"the target database {safe_url(url)} is not empty ({listed}); "
            "copy into an empty database"
        )


async def _copy_table(
    source: AsyncConnection, target: AsyncConnection, table: Table, batch_size: int
) -> int:
    # Rows come out as Python values (aware datetimes, decoded JSON, booleans) and go in
    # through the same column types, which store them the target's way.
    query = select(table).order_by(*table.primary_key.columns)
    result = await source.stream(query.execution_options(yield_per=batch_size))
    copied = 0
    async for batch in result.partitions():
        await target.execute(insert(table), [row._asdict() for row in batch])
        copied += len(batch)
    return copied


async def _ids_handed_out(conn: AsyncConnection) -> dict[str, int]:
    """The largest id each table has ever handed out, where the database keeps count
    (PostgreSQL's sequences; SQLite's sqlite_sequence, for AUTOINCREMENT tables)."""
    if conn.dialect.name == "sqlite":
        rows = await conn.execute(text("SELECT name, seq FROM sqlite_sequence"))
        return {name: seq for name, seq in rows}
    found: dict[str, int] = {}
    for table in metadata.sorted_tables:
        column = table.autoincrement_column
        if column is None:
            continue
        last = (
            await conn.execute(
                text("SELECT pg_sequence_last_value(pg_get_serial_sequence(:t, :c)::regclass)"),
                {"t": table.name, "c": column.name},
            )
        ).scalar_one()
        if last is not None:
            found[table.name] = last
    return found


async def _reset_sequences(conn: AsyncConnection, handed_out: dict[str, int]) -> None:
    """Point each serial id's sequence past the largest copied id and past the largest the
    source handed out (at 1 for an empty table that never had one).

    Explicit ids in an INSERT do not advance a PostgreSQL sequence; without this the next
    subscriber or post would be given id 1 and collide with a copied row.
    """
    for table in metadata.sorted_tables:
        column = table.autoincrement_column
        if column is None:
            continue
        sequence = func.pg_get_serial_sequence(table.name, column.name)
        largest = func.greatest(func.coalesce(func.max(column), 0), handed_out.get(table.name, 0))
        # "Called" at the largest (the next is one more), so that a later copy out of this
        # database reads it back; at 1, not called, when there is none.
        await conn.execute(select(func.setval(sequence, func.greatest(largest, 1), largest > 0)))


async def _raise_sqlite_sequences(conn: AsyncConnection, handed_out: dict[str, int]) -> None:
    """Move sqlite_sequence past the largest id the source handed out, for the AUTOINCREMENT
    tables (inserting the copied rows moved it past those already)."""
    for table in metadata.sorted_tables:
        if not table.kwargs.get("sqlite_autoincrement") or table.name not in handed_out:
            continue
        values = {"name": table.name, "seq": handed_out[table.name]}
        await conn.execute(
            text(
                "INSERT INTO sqlite_sequence (name, seq) SELECT :name, 0 "
                "WHERE NOT EXISTS (SELECT 1 FROM sqlite_sequence WHERE name = :name)"
            ),
            values,
        )
        await conn.execute(
            text("UPDATE sqlite_sequence SET seq = max(seq, :seq) WHERE name = :name"), values
        )


def count_rows(count: int) -> str:
    return f"{count:,} row" if count == 1 else f"{count:,} rows"
