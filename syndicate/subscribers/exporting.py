"""Exporting every subscriber as CSV (importable again) or a JSON array, streamed: rows are
read from the database and written out a block at a time, so a list of a million takes no
more memory than a list of ten."""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Callable, Sequence
from datetime import datetime
from typing import Any, Literal

from syndicate.store import Store
from syndicate.subscribers.checks import EXPORT_COLUMNS


async def write_export(
    store: Store, write: Callable[[str], object], kind: Literal["csv", "json"] = "csv"
) -> int:
    """Write every subscriber to `write` as it is read; the number written. The text is the
    same, byte for byte, as `json.dumps(rows, ensure_ascii=False, indent=2)` or a CSV file
    with EXPORT_COLUMNS as its header, each followed by a newline."""
    values = [_Memo(store.subscriber_value(name)) for name in EXPORT_COLUMNS]
    csv_rows = _CsvRows(values)
    count = 0
    if kind == "csv":
        write(",".join(EXPORT_COLUMNS) + "\n")
    async for block in store.stream_subscriber_rows(EXPORT_COLUMNS):
        if kind == "csv":
            write(csv_rows.lines(block))
        else:
            write(_json_records(block, values, first=count == 0))
        count += len(block)
    if kind == "json":
        write("\n]\n" if count else "[]\n")
    return count


class _CsvRows:
    """Rows as csv.writer writes them, without its cost (5 us a row) when no value of a
    block needs quoting (a comma, a quote, a line break), which is checked on the whole
    block's text at once. None (no language: the site's first) is an empty cell, as
    csv.writer writes it. Categories and dates go from the driver's value to their text
    once per distinct value."""

    def __init__(self, values: list[_Memo]) -> None:
        self._values = values
        categories, moment = values[2], values[5]  # the three dates share a type
        self._categories = _Memo(lambda raw: ";".join(categories[raw]))
        self._moment = _Memo(lambda raw: _iso(moment[raw]) or "")

    def lines(self, block: Sequence[Sequence[Any]]) -> str:
        categories, moment = self._categories, self._moment
        text = "".join(
            [
                f"{email},{name},{categories[cats]},{status},{source},{moment[c1]},"
                f"{moment[c2]},{moment[c3]},{bounces},{language or ''}\n"
                for email, name, cats, status, source, c1, c2, c3, bounces, language in block
            ]
        )
        rows = len(block)
        plain = text.count(",") == (len(EXPORT_COLUMNS) - 1) * rows and text.count("\n") == rows
        if plain and '"' not in text and "\r" not in text:  # what else csv.writer quotes
            return text
        out = io.StringIO()
        writer = csv.writer(out, lineterminator="\n")
        for row in block:
            cells = [value[raw] for value, raw in zip(self._values, row, strict=True)]
            cells[2] = ";".join(cells[2])
            writer.writerow([_iso(c) if isinstance(c, datetime) else c for c in cells])
        return out.getvalue()


def _json_records(block: Sequence[Sequence[Any]], values: list[_Memo], *, first: bool) -> str:
    """The rows as the items of json.dumps(rows, ensure_ascii=False, indent=2)."""
    parts: list[str] = []
    for row in block:
        record = {
            column: _iso(value[raw]) if column.endswith("_at") else value[raw]
            for column, value, raw in zip(EXPORT_COLUMNS, values, row, strict=True)
        }
        record["categories"] = list(record["categories"])
        text = json.dumps(record, ensure_ascii=False, indent=2)
        parts.append("  " + text.replace("\n", "\n  "))  # the array's indentation
    return ("[\n" if first else ",\n") + ",\n".join(parts)


async def export(store: Store, kind: Literal["csv", "json"] = "csv") -> str:
    """Every subscriber as one string (write_export streams the same text)."""
    parts: list[str] = []
    await write_export(store, parts.append, kind)
    return "".join(parts)


def _iso(moment: datetime | None) -> str | None:
    return moment.isoformat() if moment else None


class _Memo(dict[Any, Any]):
    """A function's answers by argument: `memo[x]` computes `make(x)` once per distinct x
    (at most 10,000 remembered), at the cost of a dict lookup when it is known."""

    def __init__(self, make: Callable[[Any], Any]) -> None:
        super().__init__()
        self._make = make

    def __missing__(self, key: Any) -> Any:
        if len(self) >= 10_000:
            self.clear()
        value = self[key] = self._make(key)
        return value
