"""Published files: fingerprints of what was written, and WebSub pings still owed."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import bindparam, delete, insert, select, update

from syndicate.store.base import Queries
from syndicate.store.tables import published_files


@dataclass(frozen=True, slots=True)
class PublishedFile:
    path: str
    fingerprint: str
    sha256: str
    written_at: datetime
    ping_pending: bool


class PublishedQueries(Queries):
    async def published_files(self) -> dict[str, PublishedFile]:
        async with self.read() as conn:
            rows = await conn.execute(select(published_files))
            return {row.path: PublishedFile(**row._mapping) for row in rows}

    async def record_published(self, files: Iterable[PublishedFile]) -> None:
        """Insert or replace the rows of files just written (or confirmed unchanged)."""
        rows = [vars_of(file) for file in files]
        if not rows:
            return
        async with self.write() as conn:
            await conn.execute(_DELETE, [{"p_path": row["path"]} for row in rows])
            await conn.execute(insert(published_files), rows)

    async def forget_published(self, paths: Iterable[str]) -> None:
        rows = [{"p_path": path} for path in paths]
        if rows:
            async with self.write() as conn:
                await conn.execute(_DELETE, rows)

    async def set_ping_pending(self, paths: Iterable[str], pending: bool) -> None:
        rows = [{"p_path": path} for path in paths]
        if rows:
            async with self.write() as conn:
                await conn.execute(
                    update(published_files)
                    .where(published_files.c.path == bindparam("p_path"))
                    .values(ping_pending=pending),
                    rows,
                )


# One statement run for many paths (executemany), not one IN (...) with a value per file: a
# site of 5,000 sources publishes 15,000 feeds, and SQLite caps a statement at 32,766
# variables.
_DELETE = delete(published_files).where(published_files.c.path == bindparam("p_path"))


def vars_of(file: PublishedFile) -> dict[str, object]:
    return {name: getattr(file, name) for name in PublishedFile.__slots__}
