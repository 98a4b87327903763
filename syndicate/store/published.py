"""Published files: fingerprints of what was written, and WebSub pings still owed."""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from datetime import datetime
from typing import TypeVar

from sqlalchemy import delete, insert, select, update

from syndicate.store.base import Queries
from syndicate.store.tables import published_files

T = TypeVar("T")
_CHUNK = 500


@dataclass(frozen=True, slots=True)
class PublishedFile:
    path: str
    fingerprint: str
    sha256: str
    written_at: datetime
    ping_pending: bool
    stamp: str | None = None  # files.file_stamp() of the file written


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
            for chunk in _chunks(rows):
                paths = [row["path"] for row in chunk]
                await conn.execute(delete(published_files).where(published_files.c.path.in_(paths)))
                await conn.execute(insert(published_files), chunk)

    async def forget_published(self, paths: Iterable[str]) -> None:
        paths = list(paths)
        if paths:
            async with self.write() as conn:
                for chunk in _chunks(paths):
                    await conn.execute(
                        delete(published_files).where(published_files.c.path.in_(chunk))
                    )

    async def set_ping_pending(self, paths: Iterable[str], pending: bool) -> None:
        paths = list(paths)
        if paths:
            async with self.write() as conn:
                for chunk in _chunks(paths):
                    await conn.execute(
                        update(published_files)
                        .where(published_files.c.path.in_(chunk))
                        .values(ping_pending=pending)
                    )


def _chunks(items: list[T]) -> Iterator[list[T]]:
    """A few hundred at a time: one IN (...) per path would pass SQLite's 32,766 variables
    with 5,000 sources' feeds."""
    for start in range(0, len(items), _CHUNK):
        yield items[start : start + _CHUNK]


def vars_of(file: PublishedFile) -> dict[str, object]:
    return {name: getattr(file, name) for name in PublishedFile.__slots__}
