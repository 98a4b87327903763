"""`syndicate ingest`: poll sources now."""

from __future__ import annotations

import sys
from typing import TYPE_CHECKING

import click

from syndicate.cli.app import AppContext, cli, pass_app, run_async
from syndicate.terminal import cell, say

if TYPE_CHECKING:
    from rich.table import Table

    from syndicate.ingest.poll import IngestReport, SourceReport
    from syndicate.publish.build import PublishReport


@cli.command("ingest")
@click.option("--source", "only", metavar="NAME", help="Poll only this source.")
@click.option("--no-publish", is_flag=True, help="Do not publish the feeds afterwards.")
@pass_app
def ingest_command(app: AppContext, only: str | None, no_publish: bool) -> None:
    """Poll every enabled source now and store new and changed posts.

    Prints a table per source (status, new, updated, unchanged, error), then publishes the
    feeds when anything changed. With more than 50 sources, those with nothing new (and no
    error or warning) are counted in one line instead of listed. Exits 0 when all sources
    succeeded and 1 when any failed; the others are still stored and published.

    \b
    Example:
      syndicate ingest --source riverside-news
    """
    from syndicate.forum.linker import link_discussions
    from syndicate.ingest.poll import ingest
    from syndicate.publish.build import publish
    from syndicate.store import Store

    settings = app.settings

    async def go() -> tuple[IngestReport, PublishReport | None]:
        async with await Store.open(settings.database_url) as store:
            report = await ingest(settings, store, app.clock, only=only)
            linked = await link_discussions(settings, store, app.clock)
            published = None
            if (report.changed or linked.linked) and not no_publish:
                published = await publish(settings, store, app.clock)
            return report, published

    report, published = run_async(go())
    listed, quiet = split_quiet(report)
    app.out.print(report_table(listed))
    if quiet:
        click.echo(f"{quiet:,} more sources: nothing new (not modified, or the same posts)")
    if published is not None:
        say(published.summary())
    if report.failed:
        sys.exit(1)


# Past this many sources a row each for the quiet ones would bury the few that changed or
# failed (and printing 5,000 rows took a fifth of a warm poll's time): they are counted.
QUIET_LISTED_UP_TO = 50


def split_quiet(report: IngestReport) -> tuple[list[SourceReport], int]:
    """The sources worth a row, and how many quiet ones (nothing new, no error or warning)
    are left out: none for a small site, where every source gets its row."""
    if len(report.sources) <= QUIET_LISTED_UP_TO:
        return list(report.sources), 0
    listed = [
        source
        for source in report.sources
        if source.status == "failed"
        or source.new
        or source.updated
        or source.error
        or source.warning
    ]
    return listed, len(report.sources) - len(listed)


def report_table(sources: list[SourceReport]) -> Table:
    from rich.table import Table

    table = Table(title=None, show_edge=False, pad_edge=False)
    for column in ("source", "status", "http", "new", "updated", "unchanged", "error"):
        table.add_column(
            column,
            justify="right" if column in ("http", "new", "updated", "unchanged") else "left",
            overflow="fold",
        )
    for source in sources:
        style = "red" if source.status == "failed" else None
        table.add_row(
            *map(
                cell,
                (
                    source.name,
                    source.status,
                    source.http_status or "-",
                    source.new,
                    source.updated,
                    source.unchanged,
                    source.error or source.warning or "",  # a feed server's words
                ),
            ),
            style=style,
        )
    return table
