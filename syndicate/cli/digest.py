"""`syndicate digest ...`: build, preview, test, send and approve the issue of a period."""

from __future__ import annotations

import getpass
from collections.abc import Awaitable, Callable
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, TypeVar

import click

from syndicate.cli.app import AppContext, cli, pass_app, run_async
from syndicate.errors import UsageError
from syndicate.statuses import DeliveryStatus
from syndicate.terminal import say

if TYPE_CHECKING:
    from syndicate.config import Settings
    from syndicate.digest.build import BuildResult
    from syndicate.digest.context import DigestPeriod
    from syndicate.mail.proof import AwaitingReview
    from syndicate.mail.send import SendReport
    from syndicate.store import Store

T = TypeVar("T")

F = TypeVar("F", bound=Callable[..., object])
_EXAMPLES = {"month": ("--month", "2015-12"), "week": ("--week", "2015-W49")}


def period_options(command: F) -> F:
    """--month and --week: which one a command takes follows [digest] period."""
    command = click.option(
        "--week", metavar="YYYY-Www", help="The ISO week, when [digest] period is week."
    )(command)
    return click.option(
        "--month", metavar="YYYY-MM", help="The month, when [digest] period is month."
    )(command)


def chosen_period(settings: Settings, month: str | None, week: str | None) -> DigestPeriod:
    """The period the options name, checked before any work starts, so a mistake is one
    line naming the option (exit 2) rather than something found with a progress bar drawn."""
    from syndicate.digest.build import period_of

    kind = settings.digest.period
    wanted, example = _EXAMPLES[kind]
    given = {"--month": month, "--week": week}
    for option, value in given.items():
        if option != wanted and value is not None:
            raise UsageError(f'{option}: [digest] period is "{kind}"; use {wanted} {example}')
    value = given[wanted]
    if value is None:
        raise UsageError(f"{wanted} is required, e.g. {wanted} {example}")
    try:
        return period_of(settings, value)
    except UsageError as error:
        raise UsageError(f"{wanted}: {error}") from None


@cli.group()
def digest() -> None:
    """Build, preview and send the periodic digest email."""


@digest.command()
@period_options
@pass_app
def build(app: AppContext, month: str | None, week: str | None) -> None:
    """Build and store the digest issue of a period (once; again returns the same issue).

    Also writes its "view in browser" copy to feeds/digest/PERIOD.html.

    \b
    Example:
      syndicate digest build --month 2015-12
    """
    from syndicate.digest.build import build_issue
    from syndicate.store import Store

    settings = app.settings
    key = chosen_period(settings, month, week).key

    async def go() -> BuildResult:
        async with await Store.open(settings.database_url) as store:
            return await build_issue(settings, store, app.clock, key)

    result = run_async(go())
    if result.issue is None:
        click.echo(f"no posts in {result.period.label}: no issue built ([digest] skip_empty)")
        return
    state = "built" if result.created else "already built"
    if result.rebuilt:
        state = f"rebuilt as version {result.issue.version} (its content changed)"
    say(
        f"{result.period.key} {state}: {result.issue.subject!r}, {result.posts} posts"
        + (f" ({result.more} more on the archive page)" if result.more else "")
    )
    if result.issue.awaiting_review:
        click.echo(
            f"awaiting review ([digest] review): `syndicate digest send "
            f"{_period_option(result.issue.period)}` sends its proof to the reviewers"
        )


@digest.command()
@period_options
@click.option(
    "--format",
    "kind",
    type=click.Choice(["html", "text", "eml"]),
    help="What to render.  [default: html]",
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
    help="Personalise for this subscriber (name, categories, language, links).",
)
@click.option(
    "--language",
    metavar="TAG",
    help="The copy for a reader of this language (default: the subscriber's, else the "
    "site's first).",
)
@click.option(
    "--serve",
    is_flag=True,
    help="Serve the issue on a local page that reloads when a template, the intro or the "
    "config changes, and lists its problems (default: the upcoming issue).",
)
@click.option("--host", default="127.0.0.1", show_default=True, help="With --serve.")
@click.option(
    "--port", type=click.IntRange(0, 65535), default=8025, show_default=True, help="With --serve."
)
@click.option(
    "--allow-remote",
    is_flag=True,
    help="With --serve: let --host be an address other machines reach (the page shows "
    "subscribers' copies).",
)
@click.option(
    "--no-link-check", is_flag=True, help="With --serve: do not request the issue's links."
)
@pass_app
def preview(
    app: AppContext,
    month: str | None,
    week: str | None,
    kind: str | None,
    output: Path | None,
    email: str | None,
    language: str | None,
    serve: bool,
    host: str,
    port: int,
    allow_remote: bool,
    no_link_check: bool,
) -> None:
    """Render a period's digest without storing or sending anything.

    With --serve, a page on this machine shows the issue at desktop and phone widths and
    its text part, as any subscriber gets it, and reloads when templates/, the intro
    (digest/intro/<period>.md) or the config changes. It lists the template errors (file
    and line), links that do not answer, images without alt text, a message Gmail would
    clip, and SpamAssassin's score when spamassassin is installed.

    \b
    Example:
      syndicate digest preview --month 2015-12 --format text
      syndicate digest preview --month 2015-12 --language th
      syndicate digest preview --serve
    """
    from syndicate.cli.subscribers import offered_language
    from syndicate.digest.build import issue_content, reader_words, renderer_for
    from syndicate.digest.context import DigestSubscriber
    from syndicate.store import Store
    from syndicate.tokens import Tokens, signing_secret

    settings = app.settings
    if language is not None:
        language = offered_language(language, settings.site.offered_languages)
    if serve:
        if kind is not None or output is not None:
            raise UsageError("--serve shows the issue on a page: leave out --format and -o")
        _serve_preview(app, month, week, email, language, host, port, allow_remote, no_link_check)
        return
    for flag, given in (("--allow-remote", allow_remote), ("--no-link-check", no_link_check)):
        if given:
            raise UsageError(f"{flag} goes with --serve")
    period = chosen_period(settings, month, week)
    kind = kind or "html"

    async def go() -> bytes:
        async with await Store.open(settings.database_url) as store:
            content = await issue_content(settings, store, period)
            person = await store.subscriber_by_email(email) if email else None
            if email and person is None:
                raise UsageError(f"no subscriber {email!r}")
            categories = frozenset(person.categories) if person is not None else frozenset()
            words = reader_words(settings, language or (person.language if person else None))
            context = content.for_reader(categories, words)
            rendered = renderer_for(settings).render(context)
            if person is None:
                html, text = rendered.web_copy(), rendered.text_copy()
            else:
                tokens = Tokens(signing_secret(settings), app.clock)
                html, text = rendered.personalise(
                    DigestSubscriber.of(person.name, person.email, words),
                    tokens.link(settings.site.url, "unsubscribe", person),
                    tokens.link(settings.site.url, "preferences", person),
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


def _serve_preview(
    app: AppContext,
    month: str | None,
    week: str | None,
    email: str | None,
    language: str | None,
    host: str,
    port: int,
    allow_remote: bool,
    no_link_check: bool,
) -> None:
    from urllib.parse import urlencode

    from syndicate.preview.render import upcoming_period
    from syndicate.preview.server import PreviewState, listening_socket, serve_preview, served_url
    from syndicate.store import Store

    settings = app.settings
    sock = listening_socket(host, port, allow_remote)
    url = served_url(sock)

    async def go() -> None:
        async with await Store.open(settings.database_url) as store:
            if month is None and week is None:
                key = (await upcoming_period(settings, store, app.clock.now())).key
            else:
                key = chosen_period(settings, month, week).key
            state = PreviewState(settings, store, app.clock, key, check_links=not no_link_check)
            query = urlencode({k: v for k, v in (("email", email), ("lang", language)) if v})
            link = f"{url}?{query}" if query else url

            def started() -> None:
                say(f"preview of {key} at {link} (Ctrl+C to stop)")
                click.echo(f"reloads when {', '.join(state.watched)} change", err=True)

            await serve_preview(state, sock, allow_remote=allow_remote, started=started)

    run_async(go())


def _eml(settings: Settings, subject: str, html: str, text: str, to: str | None) -> bytes:
    """The preview as a message file, its headers written and checked like a sent one's."""
    from syndicate.mail import headers
    from syndicate.mail.message import alternative_message

    fields = [
        headers.configured_mailbox("From", settings.digest.sender),
        headers.mailbox("To", "", to or "preview@example.invalid"),
        headers.text("Subject", subject),
    ]
    return alternative_message(fields, text, html)


@digest.command()
@period_options
@click.option(
    "--dry-run", is_flag=True, help="Say what would be sent; store, render and send nothing."
)
@pass_app
def send(app: AppContext, month: str | None, week: str | None, dry_run: bool) -> None:
    """Build the period's issue if needed and send it to every active subscriber.

    Each subscriber gets one copy: the delivery ledger records what was sent, so running
    again resumes where a crash or a stop left off. Transient failures are retried later
    (run again, or let `syndicate run` do it); the exit status is 1 if any delivery failed
    or is still waiting for a retry.

    \b
    Example:
      syndicate digest send --month 2015-12 --dry-run
      syndicate digest send --month 2015-12
    """
    from syndicate.cli.progress import send_progress
    from syndicate.mail.plan import plan_period
    from syndicate.mail.send import SendReport, send_period

    settings = app.settings
    key = chosen_period(settings, month, week).key
    if dry_run:
        plan = run_async(_with_store(settings, lambda store: plan_period(settings, store, key)))
        state = "built" if plan.issue else "not built yet"
        click.echo(
            f"{plan.period} ({state}, {plan.posts} posts): would send {plan.recipients} "
            f"messages via {transport_label(settings)}"
        )
        if plan.ledger:
            click.echo("ledger: " + _statuses(plan.ledger))
        if settings.digest.review is not None and (
            plan.issue is None or plan.issue.awaiting_review
        ):
            click.echo(
                f"but review is on: until it is approved only its proof goes out, to "
                f"{len(settings.digest.reviewers)} reviewer(s)"
            )
        return

    with send_progress() as on_progress:
        report = run_async(
            _with_store(
                settings,
                lambda store: send_period(settings, store, app.clock, key, on_progress=on_progress),
            )
        )
    if report is None:
        click.echo(f"{key}: no posts, no issue to send ([digest] skip_empty)")
        return
    if not isinstance(report, SendReport):
        _say_awaiting(settings, app.clock.now(), report)
        return
    _say_sent(settings, report)


def _say_sent(settings: Settings, report: SendReport) -> None:
    """What a send did, and exit 1 if any delivery failed or waits for a retry."""
    counts = report.counts
    click.echo(
        f"{report.issue.period}: sent {counts.sent}, deferred {counts.deferred}, "
        f"failed {counts.failed}, skipped {counts.skipped} via {transport_label(settings)}"
    )
    click.echo("ledger: " + _statuses(report.ledger))
    for error in report.errors:  # the mail server's words
        say(f"failed: {error}", err=True)
    if report.halted:
        say(f"error: sending stopped: {report.halted}", err=True)
        click.echo("nothing was lost: fix the problem and run this again", err=True)
    if report.next_retry_at is not None:
        local = report.next_retry_at.astimezone(settings.site.tz)
        click.echo(
            f"{report.ledger.get(DeliveryStatus.DEFERRED, 0)} deferred: next retry after "
            f"{local:%Y-%m-%d %H:%M %Z}; run this again then, or let `syndicate run` retry"
        )
    if report.halted or counts.failed or report.ledger.get(DeliveryStatus.DEFERRED):
        raise SystemExit(1)


def _say_awaiting(settings: Settings, now: datetime, waiting: AwaitingReview) -> None:
    """An issue held back for review: its proofs, its deadline, how to approve it; exit 1
    when its proofs could not be sent to anyone."""
    from syndicate.digest.review import describe

    issue, proofs = waiting.issue, waiting.proofs
    if waiting.rebuilt:
        click.echo(f"{issue.period}: rebuilt as version {issue.version}: its content changed")
    if proofs is not None and proofs.sent:
        click.echo(
            f"{issue.period}: proof of version {issue.version} sent to "
            f"{', '.join(proofs.sent)} via {transport_label(settings)}"
        )
    for address, error in proofs.failed if proofs else ():
        say(f"failed: proof to {address}: {error}", err=True)
    say(f"{issue.period}: {describe(settings.digest, issue, now, settings.site.tz)}")
    click.echo(
        "nothing was sent to subscribers; to send it: "
        f"syndicate digest approve {_period_option(issue.period)}"
    )
    if proofs is not None and not proofs.sent:
        raise SystemExit(1)


@digest.command()
@period_options
@click.option(
    "--version",
    "version",
    type=click.IntRange(min=1),
    help="The version you read (the proof says it); refused if the issue changed since.",
)
@click.option(
    "--no-send", is_flag=True, help="Only approve: `syndicate run` sends it within a minute."
)
@pass_app
def approve(
    app: AppContext, month: str | None, week: str | None, version: int | None, no_send: bool
) -> None:
    """Approve a period's issue awaiting review ([digest] review), then send it.

    The issue is checked first: if its posts, intro or templates changed since its proof,
    it is rebuilt as a new version, a new proof goes out, and nothing is approved (read the
    new proof, then approve again). With --version, only that version is approved.

    \b
    Example:
      syndicate digest approve --month 2015-12
      syndicate digest approve --month 2015-12 --version 2 --no-send
    """
    from syndicate.cli.progress import send_progress
    from syndicate.mail.approval import approve_period

    settings = app.settings
    key = chosen_period(settings, month, week).key
    who = f"{getpass.getuser()} (syndicate digest approve)"

    with send_progress() as on_progress:
        outcome = run_async(
            _with_store(
                settings,
                lambda store: approve_period(
                    settings,
                    store,
                    app.clock,
                    key,
                    by=who,
                    version=version,
                    send=not no_send,
                    on_progress=on_progress,
                ),
            )
        )
    if outcome.refused:
        say(f"error: {outcome.refused}", err=True)
        if outcome.waiting is not None:
            _say_awaiting(settings, app.clock.now(), outcome.waiting)
        raise SystemExit(1)
    assert outcome.issue is not None
    say(f"{key}: version {outcome.issue.version} approved by {outcome.issue.approved_by}")
    if outcome.report is None:
        click.echo("not sent now (--no-send): `syndicate run` sends it within a minute")
        return
    _say_sent(settings, outcome.report)


@digest.command("test")
@period_options
@click.option(
    "--to",
    "to",
    required=True,
    metavar="ADDRESS",
    help="Where the test copy goes (yours, a colleague's).",
)
@click.option(
    "--as",
    "as_email",
    metavar="SUBSCRIBER",
    help="Personalise it as this subscriber: their name, categories and language.",
)
@pass_app
def test_send(
    app: AppContext, month: str | None, week: str | None, to: str, as_email: str | None
) -> None:
    """Send one test copy of a period's digest to ADDRESS, outside the delivery ledger.

    The copy is the stored issue's when it is built (else the posts as they are now,
    storing nothing), personalised as SUBSCRIBER would get it, with "[Test]" before the
    subject. Its unsubscribe and preferences links lead to the site's home page, so nobody
    is unsubscribed by a click in a test copy. Nothing is recorded as sent: run it as often
    as you like.

    \b
    Example:
      syndicate digest test --month 2015-12 --to editor@example.org
      syndicate digest test --month 2015-12 --to editor@example.org --as somchai@example.org
    """
    from syndicate.mail.testsend import send_test
    from syndicate.subscribers import RejectedAddress, normalise_email

    settings = app.settings
    key = chosen_period(settings, month, week).key
    try:
        address = normalise_email(to)
    except RejectedAddress as error:
        raise UsageError(f"--to {to!r}: {error}") from None
    if as_email is not None:
        try:
            as_email = normalise_email(as_email)  # as stored: "Ann@Example.org" finds ann@
        except RejectedAddress as error:
            raise UsageError(f"--as {as_email!r}: {error}") from None
    sent = run_async(
        _with_store(
            settings,
            lambda store: send_test(settings, store, app.clock, key, address, as_email=as_email),
        )
    )
    source = "the stored issue" if sent.stored else "the posts as they are now (not stored)"
    who = f"as {sent.as_email}" if sent.as_email else "as a reader who chose nothing"
    click.echo(
        f"{sent.period}: sent a test copy to {sent.to} ({who}; {sent.language}; "
        f"{sent.posts} posts, from {source}) via {transport_label(settings)}"
    )
    click.echo(f"subject: {sent.subject}")


def _period_option(key: str) -> str:
    return f"--week {key}" if "-W" in key else f"--month {key}"


def transport_label(settings: Settings) -> str:
    if settings.mail.transport == "smtp":
        smtp = settings.mail.smtp
        return f"smtp {smtp.host}:{smtp.port}"
    return f"outbox {settings.outbox_dir}"


def _statuses(counts: dict[str, int]) -> str:
    return ", ".join(f"{status} {counts[status]}" for status in sorted(counts))


async def _with_store(settings: Settings, work: Callable[[Store], Awaitable[T]]) -> T:
    from syndicate.store import Store

    async with await Store.open(settings.database_url) as store:
        return await work(store)
