"""`syndicate forum ...`: discussion links."""

from __future__ import annotations

import sys
from typing import TYPE_CHECKING

import click

from syndicate.cli.app import AppContext, cli, pass_app, run_async

if TYPE_CHECKING:
    from syndicate.forum.linker import ForumReport
    from syndicate.publish.build import PublishReport


@cli.group()
def forum() -> None:
    """Link posts to their discussion threads on the forum."""


@forum.command()
@click.option("--no-publish", is_flag=True, help="Do not publish the feeds afterwards.")
@pass_app
def relink(app: AppContext, no_publish: bool) -> None:
    """Resolve every post's discussion link again with the current strategy and template.

    Posts are relinked on their own when a source's strategy or the URL template changes;
    this forces it for all. Discourse topics are found again, never created twice.

    \b
    Example:
      syndicate forum relink
    """
    from syndicate.forum.linker import link_discussions
    from syndicate.publish.build import publish
    from syndicate.store import Store

    settings = app.settings

    async def go() -> tuple[ForumReport, PublishReport | None]:
        async with await Store.open(settings.database_url) as store:
            report = await link_discussions(settings, store, app.clock, everything=True)
            published = None if no_publish else await publish(settings, store, app.clock)
            return report, published

    report, published = run_async(go())
    click.echo(report.summary())
    if published is not None:
        click.echo(published.summary())
    if report.failed:
        sys.exit(1)
