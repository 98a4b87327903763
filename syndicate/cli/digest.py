"""`syndicate digest ...`: build and preview the digest issue of a period."""

from __future__ import annotations

from email.message import EmailMessage
from email.utils import formataddr
from pathlib import Path

import click

from syndicate.cli.app import AppContext, cli, pass_app, run_async
from syndicate.config import Settings
from syndicate.digest.build import (
    BuildResult,
    build_issue,
    digest_context,
    for_categories,
    period_of,
    renderer_for,
)
from syndicate.digest.context import DigestSubscriber
from syndicate.errors import UsageError
from syndicate.store import Store
from syndicate.tokens import Tokens, signing_secret

period_option = click.option(
    "--month",
    "--week",
    "key",
    required=True,
    metavar="PERIOD",
    help="The period: YYYY-MM for a month, YYYY-Www for a week.",
)


@cli.group()
def digest() -> None:
    """Build, preview and send the periodic digest email."""


@digest.command()
@period_option
@pass_app
def build(app: AppContext, key: str) -> None:
    """Build and store the digest issue of a period (once; again returns the same issue).

    Also writes its "view in browser" copy to feeds/digest/PERIOD.html.

    \b
    Example:
      syndicate digest build --month 2015-12
    """
    settings = app.settings

    async def go() -> BuildResult:
        async with await Store.open(settings.database_url) as store:
            return await build_issue(settings, store, app.clock, key)

    result = run_async(go())
    if result.issue is None:
        click.echo(f"no posts in {result.period.label}: no issue built ([digest] skip_empty)")
        return
    state = "built" if result.created else "already built"
    click.echo(
        f"{result.period.key} {state}: {result.issue.subject!r}, {result.posts} posts"
        + (f" ({result.more} more on the archive page)" if result.more else "")
    )


@digest.command()
@period_option
@click.option(
    "--format",
    "kind",
    type=click.Choice(["html", "text", "eml"]),
    default="html",
    show_default=True,
    help="What to render.",
)
@click.option(
    "-o",
    "--output",
    type=click.Path(dir_okay=False, path_type=Path),
    help="Write to this file instead of standard output.",
)
@click.option(
    "--subscriber",
    "email",
    metavar="EMAIL",
    help="Personalise for this subscriber (name, categories, links).",
)
@pass_app
def preview(app: AppContext, key: str, kind: str, output: Path | None, email: str | None) -> None:
    """Render a period's digest without storing or sending anything.

    \b
    Example:
      syndicate digest preview --month 2015-12 --format text
    """
    settings = app.settings

    async def go() -> bytes:
        async with await Store.open(settings.database_url) as store:
            period = period_of(settings, key)
            context, _ = await digest_context(settings, store, period)
            person = await store.subscriber_by_email(email) if email else None
            if email and person is None:
                raise UsageError(f"no subscriber {email!r}")
            if person is not None:
                context = for_categories(
                    context, frozenset(person.categories), settings.digest.group_by
                )
            rendered = renderer_for(settings).render(context)
            if person is None:
                html, text = rendered.web_copy(), rendered.text_copy()
            else:
                tokens = Tokens(signing_secret(settings))
                html, text = rendered.personalise(
                    DigestSubscriber(person.name, person.email, greeting(person.name)),
                    f"{settings.site.url}/unsubscribe/{tokens.sign('unsubscribe', person.id)}",
                    f"{settings.site.url}/preferences/{tokens.sign('preferences', person.id)}",
                )
            if kind == "html":
                return html.encode()
            if kind == "text":
                return text.encode()
            return _eml(settings, rendered.subject, html, text, email)

    data = run_async(go())
    if output:
        output.write_bytes(data)
        click.echo(f"wrote {output}", err=True)
    else:
        click.echo(data.decode(), nl=False)


def greeting(name: str) -> str:
    return f"Hello {name}," if name.strip() else "Hello,"


def _eml(settings: Settings, subject: str, html: str, text: str, to: str | None) -> bytes:
    message = EmailMessage()
    message["Subject"] = subject
    message["From"] = settings.digest.sender
    message["To"] = formataddr(("", to or "preview@example.invalid"))
    message.set_content(text)
    message.add_alternative(html, subtype="html")
    return bytes(message)
