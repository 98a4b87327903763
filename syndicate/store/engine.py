"""Creating the async engine: URL dialects, SQLite pragmas, the var/ folder."""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from sqlalchemy import Connection, Engine, ExceptionContext, event
from sqlalchemy import create_engine as sa_create_engine
from sqlalchemy.engine import make_url
from sqlalchemy.ext.asyncio import AsyncEngine, create_async_engine

from syndicate.errors import StoreError

SQLITE_BUSY_TIMEOUT_MS = 10_000
# SQLite's primary result codes for a damaged file, SQLITE_CORRUPT and SQLITE_NOTADB (the
# low byte of an extended code).
SQLITE_DAMAGED = frozenset({11, 26})
WRITE_OPTION = "syndicate_write"  # execution option marking a transaction that writes


def async_url(url: str) -> str:
    """Pick the async driver for a plain or sync URL (sqlite -> aiosqlite, psycopg async)."""
    parsed = make_url(url)
    if parsed.get_backend_name() == "sqlite":
        parsed = parsed.set(drivername="sqlite+aiosqlite")
    elif parsed.get_backend_name() == "postgresql":
        parsed = parsed.set(drivername="postgresql+psycopg")
    return parsed.render_as_string(hide_password=False)


def safe_url(url: str) -> str:
    """The URL with any password masked, for messages and logs."""
    return make_url(url).render_as_string(hide_password=True)


def create_engine(url: str) -> AsyncEngine:
    parsed = make_url(async_url(url))
    if parsed.get_backend_name() == "sqlite":
        if parsed.database and parsed.database != ":memory:":
            Path(parsed.database).parent.mkdir(parents=True, exist_ok=True)
        engine = create_async_engine(parsed)
        event.listen(engine.sync_engine, "connect", _sqlite_pragmas)
        event.listen(engine.sync_engine, "begin", _sqlite_begin)
        event.listen(engine.sync_engine, "handle_error", _damaged_sqlite(parsed.database))
        return engine
    return create_async_engine(parsed, pool_pre_ping=True)


def create_sync_engine(url: str) -> Engine:
    """A synchronous engine on the same database, for a connection that a thread of its own
    uses (syndicate.store.outcomes); the schema is already migrated by the async one."""
    parsed = make_url(url)
    if parsed.get_backend_name() == "sqlite":
        engine = sa_create_engine(parsed.set(drivername="sqlite"))
        event.listen(engine, "connect", _sqlite_pragmas)
        event.listen(engine, "begin", _sqlite_begin)
        event.listen(engine, "handle_error", _damaged_sqlite(parsed.database))
        return engine
    return sa_create_engine(parsed.set(drivername="postgresql+psycopg"), pool_pre_ping=True)


def _sqlite_pragmas(dbapi_connection: Any, _record: object) -> None:
    # WAL lets the web app read while the worker writes; the busy timeout makes a writer
    # wait for another instead of failing at once with "database is locked".
    # The busy timeout first: switching a new file to WAL takes a lock too, and two processes
    # opening a fresh database at once would otherwise fail at once with "database is locked".
    cursor = dbapi_connection.cursor()
    cursor.execute(f"PRAGMA busy_timeout={SQLITE_BUSY_TIMEOUT_MS}")
    _switch_to_wal(cursor)
    cursor.execute("PRAGMA foreign_keys=ON")
    cursor.execute("PRAGMA synchronous=NORMAL")
    cursor.close()
    # Take transactions out of the sqlite3 module's hands (it would not BEGIN before DDL
    # or SELECT); _sqlite_begin issues BEGIN itself.
    dbapi_connection.isolation_level = None


def _switch_to_wal(cursor: Any) -> None:
    """PRAGMA journal_mode=WAL, tried again while it meets "database is locked".

    Two connections switching a new file to WAL at the same moment each hold a shared lock
    and want an exclusive one; SQLite then answers one of them "database is locked" at once,
    without the busy timeout (waiting could only deadlock). The other finishes in
    milliseconds, after which the switch is a no-op: so a short wait and a retry, for at most
    the busy timeout. Seen 1 run in 10 of two `Store.open` at once on a new file."""
    deadline = time.monotonic() + SQLITE_BUSY_TIMEOUT_MS / 1000
    while True:
        try:
            cursor.execute("PRAGMA journal_mode=WAL")
            return
        except Exception as error:  # the driver's OperationalError (sqlite3 or aiosqlite's)
            if "locked" not in str(error) or time.monotonic() > deadline:
                raise
        time.sleep(0.02)


def _damaged_sqlite(database: str | None) -> Callable[[ExceptionContext], None]:
    def check(context: ExceptionContext) -> None:
        # Whichever query meets the damage (opening, a migration, any read or write): one
        # StoreError the edges print as a line, rather than a DatabaseError and its SQL.
        code = getattr(context.original_exception, "sqlite_errorcode", None)
        if code is not None and code & 0xFF in SQLITE_DAMAGED:
            raise StoreError(
                f"database {database} is damaged: {context.original_exception} "
                "(restore it from a backup)"
            ) from context.original_exception

    return check


def _sqlite_begin(connection: Connection) -> None:
    # A transaction that will write takes the write lock up front (BEGIN IMMEDIATE): a
    # deferred one that reads first and writes later can fail with "database is locked"
    # however long the busy timeout, and two of them could both read "not migrated yet".
    immediate = connection.get_execution_options().get(WRITE_OPTION, False)
    connection.exec_driver_sql("BEGIN IMMEDIATE" if immediate else "BEGIN")
