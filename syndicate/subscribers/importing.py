"""Importing a CSV list of subscribers, of any length, with memory that does not grow with it.

The file is read a line at a time and every line checked as `subscribers add` checks its
arguments (checks.py). The lines that pass are written a batch at a time (BATCH_SIZE lines,
one transaction each): one SELECT for the addresses already known, one for the suppressed
ones among the new, one multi-row INSERT for the new and one UPDATE per set of changed
columns. A batch that fails is rolled back; the batches before it stay, and importing the
file again finishes the job (it is idempotent).

While a batch is written, the next one is read and checked in a thread, so the database's
work and the Python's overlap.

A repeated address is refused, naming the line that had it first. Within a batch a dict
finds it; across batches the database does: the row the first line wrote or compared has an
id, and `_FirstLines` keeps each id's line number in 4 bytes (4 MB for a million
subscribers) instead of every address in memory.
"""

from __future__ import annotations

import asyncio
import codecs
import csv
from array import array
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

from syndicate.categories import UnknownCategory, pick
from syndicate.errors import UsageError
from syndicate.statuses import SubscriberStatus
from syndicate.store import Store
from syndicate.store.subscriber_batches import (
    KnownSubscriber,
    SubscriberBatch,
    categories_json,
)
from syndicate.subscribers.checks import (
    EXPORT_COLUMNS,
    IMPORT_COLUMNS,
    SUPPRESSED,
    InvalidName,
    RejectedAddress,
    UnknownLanguage,
    clean_name,
    email_hash,
    normalise_categories,
    normalise_email,
    pick_language,
)

BATCH_SIZE = 5000  # lines per transaction
READ_CHUNK = 1 << 20  # bytes decoded at a time when checking the encoding

Reject = Callable[[int, str], None]  # (line number, reason)
Progress = Callable[[int, int, int], None]  # (bytes read, bytes in the file, lines done)


@dataclass
class ImportResult:
    imported: int = 0  # new subscribers
    updated: int = 0  # existing ones whose name, categories or language changed
    unchanged: int = 0
    rejected: int = 0
    # (line number, reason), in line order; empty when the caller took them with on_reject.
    rejects: list[tuple[int, str]] = field(default_factory=list)

    @property
    def lines(self) -> int:
        """Lines with something on them read so far."""
        return self.imported + self.updated + self.unchanged + self.rejected


async def import_csv(
    store: Store,
    path: Path,
    now: datetime,
    *,
    confirmed: bool = False,
    offered: Sequence[str] | None = None,
    languages: Sequence[str] | None = None,
    batch_size: int = BATCH_SIZE,
    on_reject: Reject | None = None,
    on_progress: Progress | None = None,
) -> ImportResult:
    """Import a CSV file with the header `email,name,categories,language` (categories split
    on ";"), its columns in any order.

    With `offered` (the site's categories: syndicate.categories), a line naming any other
    category is rejected, naming the choices; the others are spelled as `offered` spells
    them. None: categories are taken as written. Likewise `languages` (the site's, the
    default first: settings.site.offered_languages) for the language, picked as
    `subscribers add --language` picks it (checks.pick_language: "th-TH" is "th"); an empty
    cell is the site's default (stored as None). None: any well-formed tag.

    Only `email` is required. A known address gets the file's value of each column the file
    has, including an empty one (no name; no categories: every post; no language: the
    site's first), and keeps what the file has no column for, as well as its status, so
    importing an old list never resubscribes someone who unsubscribed (listmonk updates only
    the columns given, too). Names go through clean_name, as on the web form. Forgotten
    addresses, invalid ones, refused names, categories and languages, and repeats within
    the file are rejected with their line number, and the other lines are
    imported. New subscribers are pending unless `confirmed` (a list whose consent was
    already confirmed elsewhere).

    Rejects go to `on_reject` as each batch is written (in line order), or else into the
    result's list; `on_progress` hears how far into the file the import is after each batch.
    A file that is not UTF-8 is refused before anything is written.
    """
    if batch_size < 1:
        raise ValueError("batch_size must be at least 1")
    total = _check_readable(path)
    importer = _Importer(
        now=now,
        confirmed=confirmed,
        offered=offered,
        languages=languages,
        source=f"import:{path.name}",
        on_reject=on_reject,
    )
    try:
        with path.open(encoding="utf-8-sig", newline="") as file:
            reader = csv.reader(file)
            header = _header(path, next(reader, []))
            batch = importer.read(reader, header, batch_size)
            while True:
                # The next batch is read and checked (a thread) while this one is written
                # (the database's own process or thread): a batch costs the longer of the
                # two, not their sum.
                coming = None
                if batch.full:
                    coming = asyncio.ensure_future(
                        asyncio.to_thread(importer.read, reader, header, batch_size)
                    )
                try:
                    if batch.lines:
                        async with store.subscriber_batch() as writing:
                            await importer.write(writing, batch)
                except BaseException:
                    if coming is not None:
                        await asyncio.wait([coming])  # the file stays open until it is done
                    raise
                importer.flush_rejects(batch)
                if on_progress is not None:
                    on_progress(file.buffer.tell(), total, importer.result.lines)
                if coming is None:
                    break
                batch = await coming
    except (OSError, UnicodeDecodeError) as error:  # the file changed while it was read
        raise UsageError(f"{path}: cannot read: {error}") from None
    return importer.result


def _check_readable(path: Path) -> int:
    """The file's size, once it is known to be readable UTF-8 to the end (decoded a chunk at
    a time), so a bad byte near the end is found before the first batch is written."""
    decoder = codecs.getincrementaldecoder("utf-8-sig")()
    size = 0
    try:
        with path.open("rb") as file:
            while chunk := file.read(READ_CHUNK):
                size += len(chunk)
                decoder.decode(chunk)
            decoder.decode(b"", final=True)
    except OSError as error:
        raise UsageError(f"{path}: cannot read: {error}") from None
    except UnicodeDecodeError as error:
        # error.object is what the decoder held: the end of the file read so far.
        offset = size - len(error.object) + error.start
        raise UsageError(
            f"{path}: cannot read: not UTF-8 at byte {offset}: {error.reason}"
        ) from None
    return size


def _header(path: Path, row: list[str]) -> list[str]:
    header = [column.strip().lower() for column in row]
    if "email" not in header:
        columns = ",".join(IMPORT_COLUMNS)
        raise UsageError(f"{path}: line 1: the header must name the columns {columns}")
    unknown = [column for column in header if column not in EXPORT_COLUMNS]
    if unknown:
        raise UsageError(f"{path}: line 1: unknown column {unknown[0]!r}")
    repeated = [column for index, column in enumerate(header) if column in header[:index]]
    if repeated:
        raise UsageError(f"{path}: line 1: the column {repeated[0]!r} appears twice")
    return header


@dataclass(slots=True)
class _Line:
    """A line whose address is valid, waiting for its batch to be written."""

    number: int
    address: str
    name: str | None  # None: the file has no such column, the subscriber's own value stays
    categories: tuple[str, ...] | None
    # "" for an empty cell: the site's default, stored as None (which means no column here).
    language: str | None = None
    # Why its name, categories or language are refused. The database may still show it
    # repeats an earlier line, which is said instead (as for a repeat within the batch).
    error: str | None = None


@dataclass(slots=True)
class _Batch:
    lines: list[_Line]
    full: bool  # as many lines as a batch takes: the file may have more
    rejects: list[tuple[int, str]]  # (line number, reason), reading's then writing's


class _FirstLines:
    """The line of the file each subscriber id was taken from, 0 for none yet: an array of
    4-byte numbers indexed by id, and a dict for the odd id far beyond the others."""

    DENSE_LIMIT = 1 << 24  # ids below it live in the array (at most 64 MB)

    def __init__(self) -> None:
        self._dense = array("I")
        self._sparse: dict[int, int] = {}

    def get(self, subscriber_id: int) -> int:
        if subscriber_id < len(self._dense):
            return self._dense[subscriber_id]
        return self._sparse.get(subscriber_id, 0)

    def set(self, subscriber_id: int, line: int) -> None:
        if subscriber_id >= self.DENSE_LIMIT:
            self._sparse[subscriber_id] = line
            return
        if subscriber_id >= len(self._dense):
            grown = max(subscriber_id + 1, len(self._dense) * 5 // 4)
            self._dense.frombytes(bytes((grown - len(self._dense)) * self._dense.itemsize))
        self._dense[subscriber_id] = line


class _Importer:
    def __init__(
        self,
        *,
        now: datetime,
        confirmed: bool,
        offered: Sequence[str] | None,
        languages: Sequence[str] | None,
        source: str,
        on_reject: Reject | None,
    ) -> None:
        self.result = ImportResult()
        self._offered = offered
        self._languages = languages
        self._on_reject = on_reject
        self._first_lines = _FirstLines()
        self._suppressed_lines: dict[str, int] = {}  # few: only forgotten addresses
        self._categories: dict[str, tuple[str, ...] | str] = {}  # a cell's result or error
        self._categories_json: dict[tuple[str, ...], str] = {}
        self._language_cells: dict[str, tuple[str, str | None]] = {}  # (language, error)
        self._batch_lines: dict[str, int] = {}
        self._read_rejects: list[tuple[int, str]] = []  # of the batch being read
        self._rejects: list[tuple[int, str]] = []  # of the batch being written
        self._shared = {  # the columns every new subscriber of this import has alike
            "status": SubscriberStatus.ACTIVE if confirmed else SubscriberStatus.PENDING,
            "consent_source": source,
            "consented_at": now,
            "confirmed_at": now if confirmed else None,
            "bounce_count": 0,
            "created_at": now,
        }

    # --- reading and checking ---------------------------------------------------------

    def read(self, reader: Any, header: list[str], size: int) -> _Batch:
        """The next `size` lines with a valid address (fewer at the end of the file) from a
        csv.reader (whose type is private); the others are rejected on the way.

        It may run in a thread while the batch before is written: it touches nothing that
        writing does (cross-batch repeats are only looked for by `write`)."""
        self._batch_lines = {}
        self._read_rejects = []
        lines: list[_Line] = []
        width = len(header)
        email = header.index("email")
        name = header.index("name") if "name" in header else None
        categories = header.index("categories") if "categories" in header else None
        language = header.index("language") if "language" in header else None
        for row in reader:
            number: int = reader.line_num  # where the row ends: a quoted cell may span lines
            # A line with an address is not blank: only the others need a closer look.
            if len(row) != width or not row[email].strip():
                if any(cell.strip() for cell in row):
                    self._read_rejects.append((number, self._bad_shape(row, width, email)))
                continue
            line = self._check(
                number,
                row[email],
                None if name is None else row[name],
                None if categories is None else row[categories],
                None if language is None else row[language],
            )
            if line is not None:
                lines.append(line)
                if len(lines) == size:
                    break
        return _Batch(lines, len(lines) == size, self._read_rejects)

    @staticmethod
    def _bad_shape(row: list[str], width: int, email: int) -> str:
        if len(row) != width:
            return f"{len(row)} fields, the header has {width}"
        return "missing email address"

    def _check(
        self,
        number: int,
        email: str,
        name: str | None,
        categories: str | None,
        language: str | None,
    ) -> _Line | None:
        """The line, unless its address is invalid or repeats one in this batch. None for
        a column the file does not have: the subscriber's own value stays."""
        try:
            address = normalise_email(email)
        except RejectedAddress as error:
            self._read_rejects.append((number, str(error)))
            return None
        first = self._batch_lines.get(address)
        if first:
            self._read_rejects.append((number, f"{address}: repeats line {first}"))
            return None
        line = _Line(number, address, None, None)
        try:
            line.name = None if name is None else clean_name(name)
        except InvalidName as error:
            line.error = f"{address}: {error}"
            return line
        if categories is not None:
            picked = self._pick(categories)
            if isinstance(picked, str):
                line.error = f"{address}: {picked}"
                return line
            line.categories = picked
        if language is not None:
            # The cache inline: a list mostly repeats one or two cells, a million times.
            known = self._language_cells.get(language)
            line.language, error = known if known is not None else self._language(language)
            if error is not None:
                line.error = f"{address}: {error}"
                return line
        self._batch_lines[address] = number
        return line

    def _pick(self, cell: str) -> tuple[str, ...] | str:
        """The categories a cell names, or why they are refused. A list uses few distinct
        cells, so each is worked out once (the cache is dropped if a file has very many)."""
        known = self._categories.get(cell)
        if known is not None:
            return known
        categories = normalise_categories(cell.split(";"))
        try:
            picked: tuple[str, ...] | str = (
                pick(categories, self._offered) if self._offered is not None else categories
            )
        except UnknownCategory as error:
            picked = str(error)
        if len(self._categories) >= 10_000:
            self._categories.clear()
        self._categories[cell] = picked
        return picked

    def _language(self, cell: str) -> tuple[str, str | None]:
        """The language a cell names ("" for the site's default) and None, or "" and why it
        is refused, remembered for the cell's next lines (_check looks there first): a list
        uses few distinct cells, as it does for categories."""
        try:
            answer: tuple[str, str | None] = (pick_language(cell, self._languages) or "", None)
        except UnknownLanguage as error:
            answer = ("", str(error))
        if len(self._language_cells) >= 10_000:
            self._language_cells.clear()
        self._language_cells[cell] = answer
        return answer

    # --- writing ------------------------------------------------------------------------

    async def write(self, batch: SubscriberBatch, read: _Batch) -> None:
        """Write the batch's lines; a line whose address an earlier batch had is a repeat:
        the row of that address has its line number, or a suppressed address has one."""
        self._rejects = read.rejects
        known = await batch.known(line.address for line in read.lines)
        new: list[_Line] = []
        changes: list[tuple[int, dict[str, Any]]] = []
        for line in read.lines:
            found = known.get(line.address)
            if found is not None:
                first = self._first_lines.get(found.id)
            else:
                first = self._suppressed_lines.get(line.address, 0)
            if first:
                self._reject(line.number, f"{line.address}: repeats line {first}")
            elif line.error is not None:
                self._reject(line.number, line.error)
            elif found is None:
                new.append(line)
            else:
                self._compare(line, found, changes)
        await self._insert(batch, new, changes)
        await batch.update(changes)

    def _compare(
        self, line: _Line, found: KnownSubscriber, changes: list[tuple[int, dict[str, Any]]]
    ) -> None:
        self._first_lines.set(found.id, line.number)
        change: dict[str, Any] = {}
        if line.name is not None and line.name != found.name:
            change["name"] = line.name
        if line.categories is not None and not self._same(line.categories, found):
            change["categories"] = line.categories
        if line.language is not None and (line.language or None) != found.language:
            change["language"] = line.language or None
        if change:
            changes.append((found.id, change))
            self.result.updated += 1
        else:
            self.result.unchanged += 1

    def _same(self, categories: tuple[str, ...], found: KnownSubscriber) -> bool:
        text = self._categories_json.get(categories)
        if text is None:
            if len(self._categories_json) >= 10_000:
                self._categories_json.clear()
            text = self._categories_json[categories] = categories_json(categories)
        # The same text is the same list; other text may still be (written elsewhere, with
        # other spacing), so only then is it decoded.
        return found.categories_json == text or found.categories == categories

    async def _insert(
        self,
        batch: SubscriberBatch,
        new: list[_Line],
        changes: list[tuple[int, dict[str, Any]]],
    ) -> None:
        hashes = {line.address: email_hash(line.address) for line in new}
        suppressed = await batch.suppressed(hashes.values())
        fresh: list[_Line] = []
        for line in new:
            if hashes[line.address] in suppressed:
                self._suppressed_lines[line.address] = line.number
                self._reject(line.number, f"{line.address}: {SUPPRESSED}")
            else:
                fresh.append(line)
        people = [
            (line.address, line.name or "", line.categories or (), line.language or None)
            for line in fresh
        ]
        ids = await batch.insert(people, self._shared)
        raced: list[_Line] = []
        for line in fresh:
            subscriber_id = ids.get(line.address)
            if subscriber_id is None:
                raced.append(line)
            else:
                self._first_lines.set(subscriber_id, line.number)
                self.result.imported += 1
        if raced:
            # Added by another process between our SELECT and INSERT: now a known address.
            known = await batch.known(line.address for line in raced)
            for line in raced:
                found = known.get(line.address)
                if found is None:
                    self._reject(line.number, f"{line.address}: could not be added; import again")
                else:
                    self._compare(line, found, changes)

    # --- rejects ------------------------------------------------------------------------

    def _reject(self, number: int, reason: str) -> None:
        self._rejects.append((number, reason))

    def flush_rejects(self, batch: _Batch) -> None:
        """Hand over the batch's rejects in line order (some are only known once written)."""
        batch.rejects.sort()
        self.result.rejected += len(batch.rejects)
        if self._on_reject is None:
            self.result.rejects.extend(batch.rejects)
        else:
            for number, reason in batch.rejects:
                self._on_reject(number, reason)
