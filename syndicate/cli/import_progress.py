"""A rich progress bar for `subscribers import`: how far into the file, rows/s and ETA, on
stderr, with the rejected lines printed above it as they are found."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass

from rich.console import Console
from rich.progress import (
    BarColumn,
    DownloadColumn,
    Progress,
    ProgressColumn,
    Task,
    TextColumn,
    TimeRemainingColumn,
)
from rich.text import Text

from syndicate.terminal import printable, say


class LineRateColumn(ProgressColumn):
    def render(self, task: Task) -> Text:
        rate = task.fields.get("rate", 0.0)
        return Text(f"{rate:,.0f} lines/s" if rate else "- lines/s")


@dataclass(frozen=True, slots=True)
class ImportDisplay:
    progress: Callable[[int, int, int], None]  # (bytes read, file size, lines done)
    reject: Callable[[int, str], None]  # (line number, reason)


@contextmanager
def import_progress(console: Console | None = None) -> Iterator[ImportDisplay]:
    """On a terminal, a bar over the file's bytes; elsewhere (cron, a pipe) no bar, and each
    rejected line is one plain line on stderr, as it always was."""
    console = console or Console(stderr=True)

    def plain_reject(line: int, reason: str) -> None:
        say(f"line {line}: {reason}", err=True)  # quotes the file

    if not console.is_terminal:
        yield ImportDisplay(lambda done, total, lines: None, plain_reject)
        return
    progress = Progress(
        TextColumn("importing"),
        BarColumn(),
        DownloadColumn(),
        TextColumn("{task.fields[lines]:,} lines"),
        LineRateColumn(),
        TextColumn("ETA"),
        TimeRemainingColumn(),
        console=console,
        transient=False,
    )
    task = progress.add_task("import", total=None, lines=0)
    started = time.monotonic()

    def update(done: int, total: int, lines: int) -> None:
        elapsed = time.monotonic() - started
        rate = lines / elapsed if elapsed > 0 else 0.0
        progress.update(task, completed=done, total=total, lines=lines, rate=rate)

    def reject(line: int, reason: str) -> None:
        # Through the bar's console, so the line lands above the bar and the bar stays whole.
        console.print(Text(printable(f"line {line}: {reason}")), soft_wrap=True)

    with progress:
        yield ImportDisplay(update, reject)
