"""Exporting every subscriber as CSV (importable again) or a JSON array, streamed: rows are
read from the database and written out a block at a time, so a list of a million takes no
more memory than a list of ten."""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Callable
from datetime import datetime
from typing import Any, Literal

from syndicate.models import Subscriber
from syndicate.store import Store
from syndicate.subscribers.checks import EXPORT_COLUMNS

FLUSH_ROWS = 2000  # rows formatted before they are handed to `write`


async def write_export(
    store: Store, write: Callable[[str], object], kind: Literal["csv", "json"] = "csv"
) -> int:
    """Write every subscriber to `write` as it is read; the number written. The text is the
    same, byte for byte, as `json.dumps(rows, ensure_ascii=False, indent=2)` or a CSV file
    with EXPORT_COLUMNS as its header, each followed by a newline."""
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    if kind == "csv":
        writer.writerow(EXPORT_COLUMNS)
    count = 0
    async for subscriber in store.stream_subscribers():
        if kind == "csv":
            writer.writerow(_csv_row(subscriber))
        else:
            out.write("[\n" if count == 0 else ",\n")
            record = json.dumps(_export_row(subscriber), ensure_ascii=False, indent=2)
            out.write("  " + record.replace("\n", "\n  "))  # the array's indentation
        count += 1
        if count % FLUSH_ROWS == 0:
            write(out.getvalue())
            out.seek(0)
            out.truncate()
    if kind == "json":
        out.write("\n]\n" if count else "[]\n")
    write(out.getvalue())
    return count


async def export(store: Store, kind: Literal["csv", "json"] = "csv") -> str:
    """Every subscriber as one string (write_export streams the same text)."""
    parts: list[str] = []
    await write_export(store, parts.append, kind)
    return "".join(parts)


def _when(moment: datetime | None) -> str | None:
    return moment.isoformat() if moment else None


def _csv_row(subscriber: Subscriber) -> tuple[Any, ...]:
    return (
        subscriber.email,
        subscriber.name,
        ";".join(subscriber.categories),
        subscriber.status,
        subscriber.consent_source,
        _when(subscriber.consented_at),
        _when(subscriber.confirmed_at),
        _when(subscriber.unsubscribed_at),
        subscriber.bounce_count,
    )


def _export_row(subscriber: Subscriber) -> dict[str, Any]:
    return {
        "email": subscriber.email,
        "name": subscriber.name,
        "categories": list(subscriber.categories),
        "status": subscriber.status,
        "consent_source": subscriber.consent_source,
        "consented_at": _when(subscriber.consented_at),
        "confirmed_at": _when(subscriber.confirmed_at),
        "unsubscribed_at": _when(subscriber.unsubscribed_at),
        "bounce_count": subscriber.bounce_count,
    }
