"""Whether the database can be read, as /healthz asks: every table, and SQLite's quick_check.

    health = await store.health(integrity=True)
    health.state    # "ok", "unreachable", "unreadable" or "damaged"; health.detail says why

Reading the first row of every table is cheap and finds a database that is gone (a dropped
PostgreSQL database or table, an SQLite file that is not a database) or whose tables'
first pages are garbage. Damage further into an SQLite file shows only when that page is
read; `integrity=True` runs PRAGMA quick_check, which reads the whole file (about 2.5 ms
per MB measured here), so callers run it now and then, not on every request.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from sqlalchemy import literal, select
from sqlalchemy.exc import DBAPIError
from sqlalchemy.ext.asyncio import AsyncConnection

from syndicate.errors import StoreError
from syndicate.store.base import Queries
from syndicate.store.tables import metadata

HealthState = Literal["ok", "unreachable", "unreadable", "damaged"]


@dataclass(frozen=True, slots=True)
class DatabaseHealth:
    state: HealthState
    detail: str = ""  # the database's own words, for the log

    @property
    def ok(self) -> bool:
        return self.state == "ok"


class HealthQueries(Queries):
    async def health(self, *, integrity: bool = False) -> DatabaseHealth:
        """Connect, read a row of every table and, with `integrity` on SQLite, run
        PRAGMA quick_check. Never raises for a database that fails: says how it failed."""
        try:
            async with self.read() as conn:
                try:
                    for table in metadata.sorted_tables:
                        await conn.execute(select(literal(1)).select_from(table).limit(1))
                except (DBAPIError, StoreError, OSError) as error:
                    return DatabaseHealth("unreadable", first_line(error))
                if integrity and conn.dialect.name == "sqlite":
                    return await _quick_check(conn)
        except (DBAPIError, StoreError, OSError) as error:
            return DatabaseHealth("unreachable", first_line(error))
        return DatabaseHealth("ok")


async def _quick_check(conn: AsyncConnection) -> DatabaseHealth:
    try:
        found = (await conn.exec_driver_sql("PRAGMA quick_check")).scalars().all()
    except (DBAPIError, StoreError) as error:  # a page so broken that the check itself stops
        return DatabaseHealth("damaged", first_line(error))
    if found != ["ok"]:
        return DatabaseHealth("damaged", "; ".join(str(line) for line in found[:3]))
    return DatabaseHealth("ok")


def first_line(error: BaseException) -> str:
    """The driver's message, first line only (SQLAlchemy adds the SQL and a link; the
    engine's StoreError for a damaged SQLite file carries the driver's error as its cause)."""
    if isinstance(error, StoreError) and error.__cause__ is not None:
        error = error.__cause__
    original = getattr(error, "orig", None) or error
    return (str(original).strip().splitlines() or [type(original).__name__])[0]
