"""`syndicate db ...`: the database schema."""

from __future__ import annotations

import click

from syndicate.cli.app import AppContext, cli, pass_app, run_async
from syndicate.store import Store
from syndicate.store.engine import safe_url


@cli.group()
def db() -> None:
    """Manage the database schema (other commands migrate it on first use too)."""


@db.command()
@pass_app
def upgrade(app: AppContext) -> None:
    """Apply pending migrations to the database in [storage] database.

    \b
    Example:
      syndicate db upgrade
    """
    url = app.settings.database_url

    async def go() -> tuple[str | None, str]:
        store = await Store.open(url, upgrade=False)
        async with store:
            return await store.upgrade()

    before, after = run_async(go())
    where = safe_url(url)
    if before == after:
        click.echo(f"{where}: already at revision {after}")
    else:
        click.echo(f"{where}: upgraded from {before or 'empty'} to revision {after}")
