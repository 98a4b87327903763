"""Polling the bounce mailbox ([bounces.imap]): each mail processed once, then moved away.

    report = await poll_mailbox(settings, store, clock)

For each message (oldest first, at most `batch` a poll): fetch it without marking it read,
process it (syndicate.bounces.intake stores its outcome), and only then move it to
`processed_folder` or delete it. A worker killed in between leaves the mail in the folder;
the next poll finds its hash stored, skips it and moves it then. Nothing is removed before
its outcome is stored.

A mailbox that cannot be reached (down, TLS failing, password refused, folder missing) is
one error in the report, which the caller prints as one line (the worker as "bounces: ...",
and carries on to try at the next poll); the mail stays where it was.
A database that fails stops the poll with the mail left where it was.
"""

from __future__ import annotations

import asyncio
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field

from syndicate.bounces.imap import ImapMailbox, MailboxUnavailable
from syndicate.bounces.intake import Intake, Processed
from syndicate.clock import Clock
from syndicate.config import Settings, secret
from syndicate.store import Store


@dataclass
class PollReport:
    outcomes: Counter[str] = field(default_factory=Counter)  # InboundOutcome -> mails
    read_before: int = 0  # stored by an earlier poll that did not get to move them
    error: str | None = None  # the mailbox could not be used: why

    @property
    def mails(self) -> int:
        return sum(self.outcomes.values()) + self.read_before


async def poll_mailbox(
    settings: Settings,
    store: Store,
    clock: Clock,
    *,
    on_mail: Callable[[Processed], None] | None = None,
) -> PollReport:
    """One poll of [bounces.imap]; see the module docstring."""
    imap = settings.bounces.imap
    if imap is None:
        raise ValueError("[bounces.imap] is not configured")
    report = PollReport()
    intake = Intake(settings, store, clock)
    box = ImapMailbox(imap, secret(imap.password_env))
    try:
        await asyncio.to_thread(box.__enter__)
    except MailboxUnavailable as error:
        report.error = str(error)
        return report
    try:
        for uid in await asyncio.to_thread(box.uids, imap.batch):
            mail = await asyncio.to_thread(box.fetch, uid)
            if mail is None:  # gone since the search (another client took it)
                continue
            processed = await intake.process(mail.raw, origin="imap")
            if processed.duplicate:
                report.read_before += 1
            else:
                report.outcomes[processed.outcome] += 1
            if on_mail is not None:
                on_mail(processed)
            await asyncio.to_thread(box.done, uid)
    except MailboxUnavailable as error:
        report.error = str(error)
    finally:
        await asyncio.to_thread(box.__exit__, None, None, None)
    return report
