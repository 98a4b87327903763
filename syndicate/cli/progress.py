"""A rich progress bar for digest sending: sent, failed, deferred, rate and ETA on stderr."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager

from rich.console import Console
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    ProgressColumn,
    Task,
    TextColumn,
    TimeRemainingColumn,
)
from rich.text import Text

from syndicate.mail.send import SendCounts


class RateColumn(ProgressColumn):
    def render(self, task: Task) -> Text:
        speed = task.finished_speed or task.speed
        return Text(f"{speed:,.0f} msg/s" if speed else "- msg/s")


@contextmanager
def send_progress(console: Console | None = None) -> Iterator[Callable[[SendCounts], None]]:
    """Yields the callback IssueSender calls after each message. On a terminal it draws a
    bar; elsewhere (cron, logs) nothing is drawn and the command's summary says it all."""
    console = console or Console(stderr=True)
    if not console.is_terminal:
        # rich would still print the bar's last frame when it stops, before any error line.
        yield lambda counts: None
        return
    progress = Progress(
        TextColumn("sending"),
        BarColumn(),
        MofNCompleteColumn(),
        TextColumn("sent {task.fields[sent]}  failed {task.fields[failed]}"),
        TextColumn("deferred {task.fields[deferred]}"),
        RateColumn(),
        TextColumn("ETA"),
        TimeRemainingColumn(),
        console=console,
        transient=False,
    )
    task = progress.add_task("send", total=None, sent=0, failed=0, deferred=0)

    def update(counts: SendCounts) -> None:
        progress.update(
            task,
            total=counts.total,
            completed=counts.done,
            sent=counts.sent,
            failed=counts.failed,
            deferred=counts.deferred,
        )

    with progress:
        yield update
