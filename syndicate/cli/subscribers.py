"""`syndicate subscribers ...`: add, confirm, import, list, remove, export and forget."""

from __future__ import annotations

import sys
from collections.abc import Awaitable, Callable
from datetime import datetime, tzinfo
from pathlib import Path
from typing import TYPE_CHECKING, Literal, TypeVar
from urllib.parse import urlsplit

import click

from syndicate.cli.app import AppContext, cli, pass_app, run_async
from syndicate.errors import DeliveryError
from syndicate.models import Subscriber
from syndicate.statuses import SubscriberStatus
from syndicate.terminal import cell, say

if TYPE_CHECKING:
    from syndicate import subscribers as service
    from syndicate.config import Settings
    from syndicate.store import Store

T = TypeVar("T")
Copy = tuple[str, str, "datetime | None", "str | None"]  # period, status, sent at, error


def _with_store(app: AppContext, work: Callable[[Store], Awaitable[T]]) -> T:
    from syndicate.store import Store

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
      syndicate subscribers add ann@example.org --name Ann --category Rivers
    """


@subscribers.command()
@click.argument("email")
@click.option(
    "--name",
    default="",
    help="The subscriber's name, used in the greeting (at most 200 characters, no control "
    "characters).",
)
@click.option(
    "--category",
    "categories",
    multiple=True,
    metavar="C",
    help="Only posts in this category, one of the site's (repeatable; default: all posts).",
)
@click.option(
    "--confirmed",
    is_flag=True,
    help="They already confirmed (no double opt-in): active at once, no email. Reactivates "
    "an unsubscribed address.",
)
@click.option(
    "--language",
    metavar="TAG",
    help="The language they read, one of [site] languages (default: the first).",
)
@pass_app
def add(
    app: AppContext,
    email: str,
    name: str,
    categories: tuple[str, ...],
    confirmed: bool,
    language: str | None,
) -> None:
    """Add a subscriber and email them a link to confirm (double opt-in).

    They get no digest until they open the link (valid for 7 days). Adding a pending
    address again sends a new link; an active one is left alone. With --confirmed the
    subscriber is active at once and nothing is sent. The email goes through [mail]
    transport: with the outbox, it is a file in the Maildir. If it cannot be handed over,
    the subscriber stays pending and the exit status is 1. A category must be one of the
    site's ([site] categories in the config); any other is an error naming them (exit 2).

    \b
    Example:
      syndicate subscribers add ann@example.org --name Ann --category Rivers
      syndicate subscribers add cy@example.org --category Wildlife --category "Field notes"
      syndicate subscribers add bob@example.org --confirmed
      syndicate subscribers add som@example.org --language th
    """
    from syndicate import subscribers as service
    from syndicate.categories import offered_categories, pick
    from syndicate.mail.confirm import send_confirmation
    from syndicate.mail.transport import open_transport
    from syndicate.tokens import Tokens, signing_secret

    settings = app.settings
    clock = app.clock
    reads = offered_language(language, settings.site.offered_languages)

    async def work(store: Store) -> tuple[Subscriber, bool, DeliveryError | None]:
        chosen = pick(categories, await offered_categories(settings, store))
        subscriber, created = await service.add(
            store,
            email,
            clock.now(),
            name=name,
            categories=chosen,
            confirmed=confirmed,
            language=reads,
        )
        if subscriber.status != SubscriberStatus.PENDING:
            return subscriber, created, None
        tokens = Tokens(signing_secret(settings), clock)
        transport = open_transport(settings)
        try:
            await send_confirmation(settings, subscriber, transport, tokens, clock)
        except DeliveryError as error:
            # The subscriber stays as added (pending): nothing to undo, a retry resends.
            return subscriber, created, error
        finally:
            await transport.close()
        return subscriber, created, None

    subscriber, created, failed = _with_store(app, work)
    if failed is not None:
        added = "added, " if created else ""
        say(
            f"error: confirmation not sent to {subscriber.email}: {failed} "
            f"({added}still pending; add it again to retry)",
            err=True,
        )
        raise SystemExit(1)
    done = f"added {subscriber.email}" if created else f"{subscriber.email} already subscribed"
    sent = ""
    if subscriber.status == SubscriberStatus.PENDING:
        sent = f"; confirmation sent to {subscriber.email} {_via(settings)}"
    click.echo(f"{done}: {subscriber.status}{sent}")


@subscribers.command("confirm")
@click.argument("link", metavar="TOKEN_OR_URL")
@pass_app
def confirm(app: AppContext, link: str) -> None:
    """Confirm a subscription by hand, with the link from its confirmation email.

    For when the subscriber cannot open it (or an admin checks the flow): paste the whole
    URL from the message in the outbox, or just the token after /confirm/. An expired link
    cannot be confirmed: add the address again to send a new one. Once confirmed, they get
    the welcome email (unless [digest] welcome = false), as when they press the button.

    \b
    Example:
      syndicate subscribers confirm https://news.example.org/confirm/MQ.Zk1a2b.x9Q...
    """
    from syndicate import subscribers as service
    from syndicate.mail.transport import open_transport
    from syndicate.tokens import Tokens, signing_secret

    settings = app.settings
    tokens = Tokens(signing_secret(settings), app.clock)

    async def work(store: Store) -> service.Confirmed:
        transport = open_transport(settings)
        try:
            return await service.confirm_subscription(
                settings, store, transport, tokens, app.clock, _token(link)
            )
        finally:
            await transport.close()

    confirmed = _with_store(app, work)
    subscriber = confirmed.subscriber
    if not confirmed.newly:
        click.echo(f"{subscriber.email} was already confirmed: {subscriber.status}")
        return
    welcome = ""
    if confirmed.welcomed:
        welcome = f"; welcome sent {_via(settings)}"
    elif settings.digest.welcome:
        welcome = "; the welcome email could not be sent (the log says why)"
    click.echo(f"confirmed {subscriber.email}: active{welcome}")


def _token(link: str) -> str:
    """The token in a confirm URL (<site>/confirm/<token>), or the argument as it is."""
    text = link.strip()
    path = urlsplit(text).path if "://" in text else text
    if "/confirm/" in path:
        path = path.rsplit("/confirm/", 1)[1]
    return path.strip("/")


def _via(settings: Settings) -> str:
    """How the message left, for the admin: the Maildir, or the SMTP server."""
    if settings.mail.transport == "smtp":
        return f"via smtp {settings.mail.smtp.host}:{settings.mail.smtp.port}"
    return f"(outbox {settings.mail.outbox})"


@subscribers.command("import")
@click.argument("file", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option(
    "--confirmed",
    is_flag=True,
    help="New subscribers are active at once (their consent was confirmed elsewhere).",
)
@pass_app
def import_(app: AppContext, file: Path, confirmed: bool) -> None:
    """Import subscribers from a CSV file with the header email,name,categories,language.

    Only email is required, and the columns may come in any order; categories are separated
    by ";". Importing again is harmless: known addresses get the value of each column the
    file has (an empty cell too: no name, every category, or the site's first language),
    keep what it has no column for, and keep their status. Names are checked as on the web
    form, categories must be the site's ([site] categories in the config), and a language
    one of [site] languages, matched as `subscribers add --language` matches it. Bad lines
    are listed by number on stderr as they are found and the rest imported; the exit
    status is 1 if any line was rejected. The file is read as it goes and written 5,000
    lines per transaction, so a list of a million takes about a minute; if it stops
    half-way, importing it again finishes it. On a terminal a progress bar shows how far
    it is.

    \b
    Example:
      syndicate subscribers import members.csv
      syndicate subscribers import languages.csv
    members.csv:
      email,name,categories
      ann@example.org,Ann,Rivers;Field notes
      bob@example.org,,
    languages.csv (sets their language only: Thai, and the site's first):
      email,language
      ann@example.org,th
      bob@example.org,
    """
    from syndicate import subscribers as service
    from syndicate.categories import offered_categories
    from syndicate.cli.import_progress import import_progress

    now = app.clock.now()
    settings = app.settings

    with import_progress() as display:

        async def work(store: Store) -> service.ImportResult:
            offered = await offered_categories(settings, store)
            return await service.import_csv(
                store,
                file,
                now,
                confirmed=confirmed,
                offered=offered,
                languages=settings.site.offered_languages,
                on_reject=display.reject,
                on_progress=display.progress,
            )

        result = _with_store(app, work)
    click.echo(
        f"imported {result.imported}, updated {result.updated}, unchanged {result.unchanged}, "
        f"rejected {result.rejected}"
    )
    if result.rejected:
        raise SystemExit(1)


@subscribers.command("list")
@click.option(
    "--status",
    type=click.Choice([status.value for status in SubscriberStatus]),
    help="Only subscribers with this status.",
)
@pass_app
def list_(app: AppContext, status: str | None) -> None:
    """Show subscribers with their status and categories.

    \b
    Example:
      syndicate subscribers list --status active
    """
    from rich.table import Table

    from syndicate import subscribers as service

    found = _with_store(app, lambda store: service.list_subscribers(store, status))
    table = Table(show_edge=False, pad_edge=False)
    for column in ("email", "name", "status", "categories", "since", "source"):
        table.add_column(column, overflow="fold")
    for subscriber in found:
        table.add_row(
            *map(
                cell,
                (
                    subscriber.email,
                    subscriber.name,  # typed by anyone into the web form
                    subscriber.status,
                    ", ".join(subscriber.categories) or "all",
                    _day(_since(subscriber)),
                    subscriber.consent_source,
                ),
            )
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
    from syndicate import subscribers as service

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

    The rows are written as they are read, so a long list starts at once and takes no more
    memory than a short one.

    \b
    Example:
      syndicate subscribers export --format json > subscribers.json
    """
    from syndicate import subscribers as service

    def write(text: str) -> None:
        click.echo(text, nl=False)

    _with_store(app, lambda store: service.write_export(store, write, kind))


@subscribers.command()
@click.argument("email")
@pass_app
def forget(app: AppContext, email: str) -> None:
    """Erase a subscriber's personal data; only a hash stays, so they cannot be re-added.

    \b
    Example:
      syndicate subscribers forget ann@example.org
    """
    from syndicate import subscribers as service

    now = app.clock.now()
    _with_store(app, lambda store: service.forget(store, email, now))
    click.echo("forgotten: the record is deleted and the address suppressed")


@subscribers.command()
@click.argument("email")
@pass_app
def show(app: AppContext, email: str) -> None:
    """Show one subscriber: status, dates, their last copies, and every bounce, complaint or
    unsubscribe that came back by mail (newest first).

    \b
    Example:
      syndicate subscribers show ann@example.org
    """
    from rich.table import Table

    from syndicate.models import BounceEvent

    async def work(
        store: Store,
    ) -> tuple[
        Subscriber | None, list[BounceEvent], list[tuple[str, str, datetime | None, str | None]]
    ]:
        found = await store.subscriber_by_email(email)
        if found is None:
            return None, [], []
        return found, await store.bounce_events_of(found.id), await store.deliveries_of(found.id)

    subscriber, events, copies = _with_store(app, work)
    if subscriber is None:
        say(f"error: no subscriber {email}", err=True)
        sys.exit(1)
    tz = app.settings.site.tz
    rows = [
        ("email", subscriber.email),
        ("name", subscriber.name or "-"),
        ("status", subscriber.status),
        ("categories", ", ".join(subscriber.categories) or "all"),
        ("language", subscriber.language or f"{app.settings.site.offered_languages[0]} (default)"),
        (
            "other languages",
            subscriber.other_languages or f"{app.settings.digest.other_languages} (the site's)",
        ),
        ("consent", f"{subscriber.consent_source}, {_moment(subscriber.consented_at, tz)}"),
        ("confirmed", _moment(subscriber.confirmed_at, tz)),
        ("unsubscribed", _moment(subscriber.unsubscribed_at, tz)),
        ("hard bounces", str(subscriber.bounce_count)),
    ]
    for label, value in rows:
        say(f"{label:<13} {value}")
    if copies:
        table = Table(title="last issues", show_edge=False, pad_edge=False, title_justify="left")
        for column in ("issue", "status", "sent", "error"):
            table.add_column(column, overflow="fold")
        for period, status, sent_at, error in copies:
            table.add_row(*map(cell, (period, status, _moment(sent_at, tz), error or "")))
        app.out.print(table)
    if not events:
        click.echo("no bounces, complaints or unsubscribes by mail")
        return
    table = Table(title="returned mail", show_edge=False, pad_edge=False, title_justify="left")
    for column in ("received", "kind", "status", "issue", "diagnostic"):
        table.add_column(column, overflow="fold")
    for event in events:
        table.add_row(
            *map(
                cell,
                (
                    _moment(event.received_at, tz),
                    event.kind,
                    event.status_code or "-",
                    str(event.issue_id or "-"),
                    event.diagnostic,  # a remote server's words
                ),
            )
        )
    app.out.print(table)


def _moment(moment: datetime | None, tz: tzinfo) -> str:
    return moment.astimezone(tz).strftime("%Y-%m-%d %H:%M %Z") if moment else "-"


def offered_language(language: str | None, offered: list[str]) -> str | None:
    """The site's tag for `language`, by the import's rule (subscribers.pick_language: "TH"
    and "th-TH" are "th" when the site offers "th"); a usage error naming the offered ones
    for any other."""
    from syndicate.subscribers.checks import UnknownLanguage, pick_language

    if language is None:
        return None
    try:
        return pick_language(language, offered)
    except UnknownLanguage:
        raise click.UsageError(
            f"--language {language!r} is not one of the site's: {', '.join(offered)} "
            "([site] languages)"
        ) from None


def _since(subscriber: Subscriber) -> datetime | None:
    if subscriber.status == SubscriberStatus.UNSUBSCRIBED:
        return subscriber.unsubscribed_at
    return subscriber.confirmed_at or subscriber.consented_at


def _day(moment: datetime | None) -> str:
    return moment.strftime("%Y-%m-%d") if moment else "-"
