"""`syndicate bounces ...`: read bounces, complaints and unsubscribe mail (process, fetch)."""

from __future__ import annotations

import sys
from collections import Counter
from typing import TYPE_CHECKING

import click

from syndicate.cli.app import AppContext, cli, pass_app, run_async
from syndicate.errors import StoreError
from syndicate.terminal import say

if TYPE_CHECKING:
    from syndicate.bounces.intake import Processed

# sysexits.h EX_TEMPFAIL: a mail server's pipe keeps the message and tries again later.
TEMPFAIL = 75


@cli.group()
def bounces() -> None:
    """Read the mail that comes back: bounces, complaints, unsubscribe requests.

    A hard bounce marks its subscriber bounced ([bounces] hard_limit), soft ones count
    within [bounces] soft_window, a complaint unsubscribes and suppresses the address, and a
    mail to a subscriber's unsubscribe address ([mail] unsubscribe_mailbox) unsubscribes
    them. The README's "Bounces" section shows the Postfix and IMAP set-ups.

    \b
    Example:
      syndicate bounces process saved-bounce.eml
    """


@bounces.command()
@click.argument("source", required=False, default="-", metavar="[FILE|MAILDIR|MBOX|-]")
@click.option(
    "--recipient",
    envvar="ORIGINAL_RECIPIENT",
    metavar="ADDRESS",
    help="The address the mail was delivered to, when it is not in its headers (default: "
    "$ORIGINAL_RECIPIENT, which Postfix's local delivery sets for a pipe).",
)
@pass_app
def process(app: AppContext, source: str, recipient: str | None) -> None:
    """Process one message, an mbox or a Maildir ("-" or nothing: one message on stdin).

    For a mail server's alias or pipe: each mail acts once, however often it is given.
    Reading stdin, when the database cannot be written, the exit status is 75 (EX_TEMPFAIL), so a
    mail server keeps the message and delivers it again later.

    In /etc/aliases: bounces: "|syndicate --config /srv/news/config.toml bounces process"

    \b
    Example:
      syndicate bounces process ~/Maildir/.Bounces
    """
    from syndicate.bounces.intake import Intake
    from syndicate.bounces.mailfiles import MailFileError, read_mail_files
    from syndicate.store import Store

    settings = app.settings
    counts: Counter[str] = Counter()

    async def go() -> None:
        async with await Store.open(settings.database_url) as store:
            intake = Intake(settings, store, app.clock)
            for mail in read_mail_files(source):
                processed = await intake.process(mail.raw, "file", recipient)
                _tally(counts, processed)
                if not processed.duplicate:
                    say(f"{mail.where}: {processed.outcome}: {processed.detail}")

    try:
        run_async(go())
    except MailFileError as error:
        say(f"error: {error}", err=True)
        sys.exit(1)
    except StoreError as error:
        if source != "-":
            raise
        say(f"error: {error} (exit {TEMPFAIL}: the mail server keeps the mail)", err=True)
        sys.exit(TEMPFAIL)
    click.echo(_summary(counts))


@bounces.command()
@pass_app
def fetch(app: AppContext) -> None:
    """Poll the [bounces.imap] mailbox once, as `syndicate run` does every [bounces] every.

    Each mail is processed, its outcome stored, and only then moved to processed_folder
    (or deleted). The exit status is 1 when the mailbox cannot be used.

    \b
    Example:
      SYNDICATE_IMAP_PASSWORD=... syndicate bounces fetch
    """
    from syndicate.bounces.polling import poll_mailbox
    from syndicate.store import Store

    settings = app.settings
    imap = settings.bounces.imap
    if imap is None:
        raise click.UsageError("[bounces.imap] is not configured (see the README, Bounces)")

    def show(processed: Processed) -> None:
        if not processed.duplicate:
            say(f"{imap.folder}: {processed.outcome}: {processed.detail}")

    async def go() -> tuple[Counter[str], str | None]:
        async with await Store.open(settings.database_url) as store:
            report = await poll_mailbox(settings, store, app.clock, on_mail=show)
        counts = Counter(report.outcomes)
        if report.read_before:
            counts["read before"] = report.read_before
        return counts, report.error

    counts, error = run_async(go())
    click.echo(_summary(counts))
    if error is not None:
        say(f"error: {error}", err=True)
        sys.exit(1)


def _tally(counts: Counter[str], processed: Processed) -> None:
    counts["read before" if processed.duplicate else processed.outcome] += 1


def _summary(counts: Counter[str]) -> str:
    total = sum(counts.values())
    if not total:
        return "no mail"
    parts = ", ".join(f"{name} {counts[name]}" for name in sorted(counts))
    return f"{total} mail{'s' if total != 1 else ''}: {parts}"
