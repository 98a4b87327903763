"""Exporting every subscriber as CSV (importable again) or a JSON array, streamed: rows are
read from the database and written out a block at a time, so a list of a million takes no
more memory than a list of ten."""

from __future__ import annotations

import asyncio
import csv
import io
import json
import re
from collections.abc import AsyncIterator, Callable
from datetime import datetime
from typing import Any, Literal, TypeVar

from syndicate.store import Store
from syndicate.subscribers.checks import EXPORT_COLUMNS

T = TypeVar("T")
_NEEDS_QUOTES = re.compile(r'["\r\n]')  # besides a comma, what csv.writer quotes


async def write_export(
    store: Store, write: Callable[[str], object], kind: Literal["csv", "json"] = "csv"
) -> int:
    """Write every subscriber to `write` as it is read; the number written. The text is the
    same, byte for byte, as `json.dumps(rows, ensure_ascii=False, indent=2)` or a CSV file
    with EXPORT_COLUMNS as its header, each followed by a newline."""
    when = _IsoFormat()
    count = 0
    if kind == "csv":
        write(",".join(EXPORT_COLUMNS) + "\n")
    async for block in _ahead(store.stream_subscriber_columns(EXPORT_COLUMNS)):
        if kind == "csv":
            write(_csv_lines(block, when))
        else:
            write(_json_records(block, when, first=count == 0))
        count += len(block)
    if kind == "json":
        write("\n]\n" if count else "[]\n")
    return count


def _csv_lines(block: list[tuple[Any, ...]], when: _IsoFormat) -> str:
    """The rows as csv.writer writes them, without its cost (5 us a row) for the rows that
    need no quoting at all: no comma, quote or line break in any value."""
    lines: list[str] = []
    for email, name, categories, status, source, consented, confirmed, left, bounces in block:
        cats = ";".join(categories)
        line = (
            f"{email},{name},{cats},{status},{source},{when(consented) or ''},"
            f"{when(confirmed) or ''},{when(left) or ''},{bounces}\n"
        )
        if line.count(",") != len(EXPORT_COLUMNS) - 1 or _NEEDS_QUOTES.search(
            line, 0, len(line) - 1
        ):
            out = io.StringIO()
            row = (email, name, cats, status, source, when(consented), when(confirmed))
            csv.writer(out, lineterminator="\n").writerow((*row, when(left), bounces))
            line = out.getvalue()
        lines.append(line)
    return "".join(lines)


def _json_records(block: list[tuple[Any, ...]], when: _IsoFormat, *, first: bool) -> str:
    """The rows as the items of json.dumps(rows, ensure_ascii=False, indent=2)."""
    parts: list[str] = []
    for email, name, categories, status, source, consented, confirmed, left, bounces in block:
        values = (
            email,
            name,
            list(categories),
            status,
            source,
            when(consented),
            when(confirmed),
            when(left),
            bounces,
        )
        record = json.dumps(
            dict(zip(EXPORT_COLUMNS, values, strict=True)), ensure_ascii=False, indent=2
        )
        parts.append("  " + record.replace("\n", "\n  "))  # the array's indentation
    return ("[\n" if first else ",\n") + ",\n".join(parts)


async def export(store: Store, kind: Literal["csv", "json"] = "csv") -> str:
    """Every subscriber as one string (write_export streams the same text)."""
    parts: list[str] = []
    await write_export(store, parts.append, kind)
    return "".join(parts)


async def _ahead(blocks: AsyncIterator[T]) -> AsyncIterator[T]:
    """The blocks of `blocks`, each asked for before the one before it is handed out: the
    database driver's thread fetches the next rows while this one formats the last."""
    iterator = aiter(blocks)
    coming: asyncio.Future[T] = asyncio.ensure_future(anext(iterator))
    try:
        while True:
            try:
                block = await coming
            except StopAsyncIteration:
                return
            coming = asyncio.ensure_future(anext(iterator))
            await asyncio.sleep(0)  # let it start: hand the fetch to the driver's thread
            yield block
    finally:
        coming.cancel()


class _IsoFormat:
    """datetime.isoformat, once per distinct moment: a list imported at once shares them."""

    def __init__(self) -> None:
        self._known: dict[datetime, str] = {}

    def __call__(self, moment: datetime | None) -> str | None:
        if moment is None:
            return None
        text = self._known.get(moment)
        if text is None:
            if len(self._known) >= 10_000:
                self._known.clear()
            text = self._known[moment] = moment.isoformat()
        return text
