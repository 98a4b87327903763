"""`syndicate db ...`: the database schema, and copying a database into another."""

from __future__ import annotations

import click

from syndicate.cli.app import AppContext, cli, pass_app, run_async

# The store's own default (syndicate.store.copy.BATCH_SIZE; a test keeps them equal), here so
# that `--help` does not import SQLAlchemy.
COPY_BATCH_SIZE = 1000


@cli.group()
def db() -> None:
    """Manage the database: its schema (other commands migrate it on first use too), and
    copying another database into it."""


@db.command()
@pass_app
def upgrade(app: AppContext) -> None:
    """Apply pending migrations to the database in [storage] database.

    \b
    Example:
      syndicate db upgrade
    """
    from syndicate.store import Store
    from syndicate.store.engine import safe_url

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


@db.command("copy")
@click.argument("from_url", metavar="FROM_URL")
@click.option(
    "--batch-size",
    type=click.IntRange(min=1),
    default=COPY_BATCH_SIZE,
    show_default=True,
    help="Rows read and written at a time.",
)
@pass_app
def copy_command(app: AppContext, from_url: str, batch_size: int) -> None:
    """Copy every row of database FROM_URL into the empty one in [storage] database.

    This is how to move from SQLite to PostgreSQL. Stop the worker first. Both databases
    are migrated to the newest schema, then every table is copied in one transaction on the
    target, so either everything is copied or nothing is. A target that already has rows is
    refused. A relative SQLite path in FROM_URL is relative to the current folder.

    \b
    Example:
      syndicate --config new.toml db copy sqlite:///var/syndicate.db
    """
    from syndicate.store.copy import copy_database, count_rows

    url = app.settings.database_url

    def copied(table: str, rows: int) -> None:
        click.echo(f"{table}: {count_rows(rows)}")

    report = run_async(copy_database(from_url, url, batch_size=batch_size, on_table=copied))
    click.echo(
        f"copied {count_rows(report.total)} in {len(report.rows)} tables from {report.source} "
        f"to {report.target} (revision {report.revision})"
    )
