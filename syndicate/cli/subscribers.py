"""`syndicate subscribers ...`: add, import, list, remove, export and forget subscribers."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from datetime import datetime
from pathlib import Path
from typing import Literal, TypeVar

import click
from rich.table import Table

from syndicate import subscribers as service
from syndicate.cli.app import AppContext, cli, pass_app, run_async
from syndicate.models import Subscriber
from syndicate.store import Store

T = TypeVar("T")


def _with_store(app: AppContext, work: Callable[[Store], Awaitable[T]]) -> T:
    database_url = app.settings.database_url

    async def go() -> T:
        async with await Store.open(database_url) as store:
            return await work(store)

    return run_async(go())


@cli.group()
def subscribers() -> None:
    """Manage the digest's subscribers.

    \b
    Example:
      syndicate subscribers add ann@example.org --name Ann --category News
    """


@subscribers.command()
@click.argument("email")
@click.option("--name", default="", help="The subscriber's name, used in the greeting.")
@click.option(
    "--category",
    "categories",
    multiple=True,
    metavar="C",
    help="Only posts in this category (repeatable; default: all posts).",
)
@click.option(
    "--confirmed",
    is_flag=True,
    help="They already confirmed (no double opt-in): active at once. Reactivates an "
    "unsubscribed address.",
)
@pass_app
def add(
    app: AppContext, email: str, name: str, categories: tuple[str, ...], confirmed: bool
) -> None:
    """Add a subscriber: pending confirmation, or active with --confirmed.

    \b
    Example:
      syndicate subscribers add ann@example.org --name Ann --category News --confirmed
    """
    now = app.clock.now()
    subscriber, created = _with_store(
        app,
        lambda store: service.add(
            store, email, now, name=name, categories=categories, confirmed=confirmed
        ),
    )
    if created:
        # No confirmation email exists yet (issue 7, item 2): say what is true.
        state = "active" if subscriber.status == "active" else "pending confirmation"
        click.echo(f"added {subscriber.email}: {state}")
    else:
        click.echo(f"{subscriber.email} already subscribed: {subscriber.status}")


@subscribers.command("import")
@click.argument("file", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option(
    "--confirmed",
    is_flag=True,
    help="New subscribers are active at once (their consent was confirmed elsewhere).",
)
@pass_app
def import_(app: AppContext, file: Path, confirmed: bool) -> None:
    """Import subscribers from a CSV file with the header email,name,categories.

    Categories are separated by ";". Importing again is harmless: known addresses get the
    file's name and categories and keep their status. Bad lines are listed by number and
    the rest imported; the exit status is 1 if any line was rejected.

    \b
    Example:
      syndicate subscribers import members.csv
    """
    now = app.clock.now()
    result = _with_store(
        app, lambda store: service.import_csv(store, file, now, confirmed=confirmed)
    )
    click.echo(
        f"imported {result.imported}, updated {result.updated}, unchanged {result.unchanged}, "
        f"rejected {len(result.rejects)}"
    )
    for line, reason in result.rejects:
        click.echo(f"line {line}: {reason}", err=True)
    if result.rejects:
        raise SystemExit(1)


@subscribers.command("list")
@click.option(
    "--status", type=click.Choice(service.STATUSES), help="Only subscribers with this status."
)
@pass_app
def list_(app: AppContext, status: str | None) -> None:
    """Show subscribers with their status and categories.

    \b
    Example:
      syndicate subscribers list --status active
    """
    found = _with_store(app, lambda store: service.list_subscribers(store, status))
    table = Table(show_edge=False, pad_edge=False)
    for column in ("email", "name", "status", "categories", "since", "source"):
        table.add_column(column, overflow="fold")
    for subscriber in found:
        table.add_row(
            subscriber.email,
            subscriber.name,
            subscriber.status,
            ", ".join(subscriber.categories) or "all",
            _day(_since(subscriber)),
            subscriber.consent_source,
        )
    app.out.print(table)
    click.echo(f"{len(found)} subscribers")


@subscribers.command()
@click.argument("email")
@pass_app
def remove(app: AppContext, email: str) -> None:
    """Unsubscribe an address (the record is kept; use forget to erase it).

    \b
    Example:
      syndicate subscribers remove ann@example.org
    """
    now = app.clock.now()
    subscriber = _with_store(app, lambda store: service.remove(store, email, now))
    click.echo(f"unsubscribed {subscriber.email}")


@subscribers.command()
@click.option(
    "--format",
    "kind",
    type=click.Choice(["csv", "json"]),
    default="csv",
    show_default=True,
    help="CSV imports back with `subscribers import`.",
)
@pass_app
def export(app: AppContext, kind: Literal["csv", "json"]) -> None:
    """Print every subscriber, with status and consent, to stdout.

    \b
    Example:
      syndicate subscribers export --format json > subscribers.json
    """
    click.echo(_with_store(app, lambda store: service.export(store, kind)), nl=False)


@subscribers.command()
@click.argument("email")
@pass_app
def forget(app: AppContext, email: str) -> None:
    """Erase a subscriber's personal data; only a hash stays, so they cannot be re-added.

    \b
    Example:
      syndicate subscribers forget ann@example.org
    """
    now = app.clock.now()
    _with_store(app, lambda store: service.forget(store, email, now))
    click.echo("forgotten: the record is deleted and the address suppressed")


def _since(subscriber: Subscriber) -> datetime | None:
    if subscriber.status == "unsubscribed":
        return subscriber.unsubscribed_at
    return subscriber.confirmed_at or subscriber.consented_at


def _day(moment: datetime | None) -> str:
    return moment.strftime("%Y-%m-%d") if moment else "-"
