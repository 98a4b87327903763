"""What every query module shares: the engine, and read or write transactions."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from syndicate.store.engine import WRITE_OPTION


class Queries:
    engine: AsyncEngine
    url: str
    # SQLite has one writer at a time. Queueing this process's writers here is much faster
    # than letting them spin in SQLite's busy handler, which sleeps up to 100 ms per retry;
    # other processes are still held off by the busy timeout.
    _sqlite_writer: asyncio.Lock | None

    @asynccontextmanager
    async def write(self) -> AsyncIterator[AsyncConnection]:
        """A transaction that writes: committed on success, rolled back on error."""
        async with self._sqlite_writer or contextlib.nullcontext(), self.engine.connect() as conn:
            conn = await conn.execution_options(**{WRITE_OPTION: True})
            async with conn.begin():
                yield conn

    @asynccontextmanager
    async def read(self) -> AsyncIterator[AsyncConnection]:
        async with self.engine.connect() as conn:
            yield conn
