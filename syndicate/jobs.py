"""The periodic jobs, decided from the database so that a restart never misses or repeats one.

    run = await digest_if_due(settings, store, clock, owner)      # the period's digest, once
    reports = await send_approved(settings, store, clock)          # approved after review
    reports = await retry_deliveries(settings, store, clock)       # deferred and interrupted sends

A digest is due once the first `[digest] schedule` time at or after its period's end (in the
site's time zone) has passed. Only the most recent period that is due is considered: a worker
that was down across two due digests sends the latest one when it comes back, not the one
before (an October digest in December is stale; `digest send --month` sends it by hand).

Each digest is a `job_runs` row keyed `digest:<period>`: once it is done it is never run
again. Its work is safe to repeat and to share: the issue is built once per period, its
recipients are written into the ledger once, and each delivery is claimed by one sender; so
a run left "running" by a crash is simply taken over, and two workers running it at once
send each message once between them.

With `[digest] review` on, the run of an issue awaiting review is left "waiting": each
minute it is taken up again, which sends a proof of a new version, sends the issue once it
is approved or its window ended with `unreviewed = "send"`, and otherwise does nothing
(syndicate.digest.review). An older period's issue approved later is sent by send_approved.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from datetime import datetime, tzinfo

from syndicate.clock import Clock
from syndicate.config import Settings
from syndicate.cron import cron_trigger
from syndicate.digest import period as periods
from syndicate.digest.context import DigestPeriod
from syndicate.mail.dkim import dkim_signer_for
from syndicate.mail.proof import AwaitingReview
from syndicate.mail.send import LEASE, IssueSender, SendReport, send_period
from syndicate.mail.transport import open_transport
from syndicate.models import JobRun
from syndicate.statuses import RunStatus
from syndicate.store import Store


@dataclass(frozen=True, slots=True)
class DigestRun:
    period: DigestPeriod
    due_at: datetime
    # None: nothing to send (no posts and skip_empty); AwaitingReview: proofs sent, not it.
    report: SendReport | AwaitingReview | None

    @property
    def failed(self) -> bool:
        report = self.report
        if isinstance(report, AwaitingReview):
            proofs = report.proofs
            return proofs is not None and not proofs.sent
        return report is not None and bool(report.halted or report.counts.failed)

    def summary(self) -> str:
        report = self.report
        if report is None:
            return f"digest {self.period.key}: no posts, no issue ([digest] skip_empty)"
        if isinstance(report, AwaitingReview):
            return f"digest {self.period.key}: {proof_summary(report, self.due_at.tzinfo)}"
        counts = report.counts
        line = (
            f"digest {self.period.key}: sent {counts.sent}, deferred {counts.deferred}, "
            f"failed {counts.failed}, skipped {counts.skipped}"
        )
        if report.halted:
            return f"{line}; stopped: {report.halted}"
        if report.stopped:
            return f"{line}; stopped before the end (resumed at the next start)"
        return line


def due_time(settings: Settings, period: DigestPeriod) -> datetime:
    """When the digest of `period` is due: the schedule's first time at or after its end."""
    trigger = cron_trigger(settings.digest.schedule, settings.site.tz)
    fire = trigger.get_next_fire_time(None, period.end)
    assert fire is not None  # config refuses a schedule that never fires (syndicate.cron)
    return fire


def latest_due_period(settings: Settings, now: datetime) -> tuple[DigestPeriod, datetime] | None:
    """The most recent period whose digest is due at `now`, with when it fell due."""
    kind, tz = settings.digest.period, settings.site.tz
    period = periods.just_ended(now, kind, tz)
    for _ in range(2):  # the period that just ended may not be due yet: then the one before
        due = due_time(settings, period)
        if due <= now:
            return period, due
        period = periods.just_ended(period.start, kind, tz)
    return None


@dataclass(frozen=True, slots=True)
class PendingDigest:
    period: DigestPeriod
    due_at: datetime
    run: JobRun | None  # None: no worker has started it


async def pending_digest(settings: Settings, store: Store, now: datetime) -> PendingDigest | None:
    """The most recent due digest whose run is not done; None when there is none. Reads
    only, so a worker can ask every minute."""
    found = latest_due_period(settings, now)
    if found is None:
        return None
    period, due = found
    run = await store.get_run(f"digest:{period.key}")
    if run is not None and run.status == RunStatus.DONE:
        return None
    return PendingDigest(period, due, run)


async def digest_if_due(
    settings: Settings,
    store: Store,
    clock: Clock,
    owner: str,
    *,
    stop: asyncio.Event | None = None,
) -> DigestRun | None:
    """Build and send the due digest unless its run is done; None when none is due or done.

    Setting `stop` ends the send early: what is in flight finishes, the rest stays in the
    ledger and the run is left to be taken up again."""
    now = clock.now()
    pending = await pending_digest(settings, store, now)
    if pending is None:
        return None
    period, due = pending.period, pending.due_at
    key = f"digest:{period.key}"
    if not await store.begin_run(key, owner, now):
        return None
    try:
        report = await send_period(settings, store, clock, period.key, stop=stop)
    except Exception as error:
        await store.finish_run(key, clock.now(), error=str(error) or type(error).__name__)
        raise
    if isinstance(report, AwaitingReview):
        await store.wait_run(key, clock.now())
        # Said when something happened (proofs went out or failed); a quiet wait is not news.
        return DigestRun(period, due, report) if report.proofs is not None else None
    run = DigestRun(period, due, report)
    # Done once every recipient was tried; a run halted (the mail server unusable) or stopped
    # (the worker shutting down) is left to be taken up again. Deferred rows are for
    # retry_deliveries.
    await store.finish_run(key, clock.now(), error=_unfinished(report))
    return run


def proof_summary(waiting: AwaitingReview, tz: tzinfo | None) -> str:
    """What became of an issue's proofs, in one line (times in `tz`)."""
    issue, proofs = waiting.issue, waiting.proofs
    version = f"version {issue.version}" + (
        " (rebuilt: its content changed)" if waiting.rebuilt else ""
    )
    if proofs is None:
        return f"{version} awaits approval"
    failed = "; ".join(f"{who} ({why})" for who, why in proofs.failed)
    if not proofs.sent:
        return f"proof of {version} not sent, tried again in a minute: {failed}"
    line = f"proof of {version} sent to {', '.join(proofs.sent)}"
    if failed:
        line += f"; not sent to {failed}"
    return f"{line}; awaiting approval until {proofs.deadline.astimezone(tz):%Y-%m-%d %H:%M %Z}"


async def send_approved(
    settings: Settings, store: Store, clock: Clock, *, stop: asyncio.Event | None = None
) -> list[SendReport]:
    """Send the issues approved after review whose sending has not begun: a held issue, or
    an older period's, approved on its preview page (the web app records the approval; the
    worker sends)."""
    reports = []
    for issue in await store.approved_unsent_issues():
        if stop is not None and stop.is_set():
            break
        report = await send_period(settings, store, clock, issue.period, stop=stop)
        if isinstance(report, SendReport):
            reports.append(report)
    return reports


def _unfinished(report: SendReport | None) -> str | None:
    if report is None:
        return None
    if report.halted:
        return report.halted
    return "stopped before every recipient was tried" if report.stopped else None


async def retry_deliveries(
    settings: Settings, store: Store, clock: Clock, *, stop: asyncio.Event | None = None
) -> list[SendReport]:
    """Send what is due in any issue's ledger: deferred rows whose time has come, and rows of
    a send that was interrupted."""
    now = clock.now()
    issue_ids = await store.issues_with_due_deliveries(now, now - LEASE)
    if not issue_ids:
        return []
    issues = {issue.id: issue for issue in await store.issues()}
    reports = []
    signer = dkim_signer_for(settings)
    transport = open_transport(settings)
    try:
        for issue_id in issue_ids:
            if stop is not None and stop.is_set():
                break
            issue = issues[issue_id]
            sender = IssueSender(settings, store, clock, issue, transport, signer=signer, stop=stop)
            reports.append(await sender.run())
    finally:
        await transport.close()
    return reports
