"""`syndicate ingest`: poll sources now."""

from __future__ import annotations

import sys
from typing import TYPE_CHECKING

import click

from syndicate.cli.app import AppContext, cli, pass_app, run_async
from syndicate.terminal import cell, say

if TYPE_CHECKING:
    from rich.table import Table

    from syndicate.ingest.poll import IngestReport
    from syndicate.publish.build import PublishReport


@cli.command("ingest")
@click.option("--source", "only", metavar="NAME", help="Poll only this source.")
@click.option("--no-publish", is_flag=True, help="Do not publish the feeds afterwards.")
@pass_app
def ingest_command(app: AppContext, only: str | None, no_publish: bool) -> None:
    """Poll every enabled source now and store new and changed posts.

    Prints a table per source (status, new, updated, unchanged, error), then publishes the
    feeds when anything changed. Exits 0 when all sources succeeded and 1 when any failed;
    the others are still stored and published.

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
    app.out.print(report_table(report))
    if published is not None:
        say(published.summary())
    if report.failed:
        sys.exit(1)


def report_table(report: IngestReport) -> Table:
    from rich.table import Table

    table = Table(title=None, show_edge=False, pad_edge=False)
    for column in ("source", "status", "http", "new", "updated", "unchanged", "error"):
        table.add_column(
            column,
            justify="right" if column in ("http", "new", "updated", "unchanged") else "left",
            overflow="fold",
        )
    for source in report.sources:
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
