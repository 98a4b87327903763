"""`syndicate publish`: write the feeds and archives."""

from __future__ import annotations

from typing import TYPE_CHECKING

import click

from syndicate.cli.app import AppContext, cli, pass_app, run_async

if TYPE_CHECKING:
    from syndicate.publish.build import PublishReport


@cli.command("publish")
@pass_app
def publish_command(app: AppContext) -> None:
    """Write RSS, Atom and JSON feeds and the monthly archives into [publish] dir.

    Only documents whose posts or settings changed are rebuilt; documents for categories
    or sources that no longer exist are removed.

    \b
    Example:
      syndicate publish
    """
    from syndicate.publish.build import publish
    from syndicate.store import Store

    settings = app.settings

    async def go() -> PublishReport:
        async with await Store.open(settings.database_url) as store:
            return await publish(settings, store, app.clock)

    click.echo(run_async(go()).summary())
